// Command manager runs convoy's controllers in the manager cluster.
package main

import (
	"flag"
	"os"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/convoy-dev/convoy/controllers"
	"github.com/convoy-dev/convoy/internal/remote"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

func main() {
	var (
		metricsAddr, probeAddr  string
		leaderElect             bool
		maxConcurrentReconciles int
		resyncPeriod            time.Duration
		clusterProbeInterval    time.Duration
		clusterFailureThreshold int
		remoteRequestTimeout    time.Duration
		leaderElectionNamespace string
		drainHelperImage        string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; \"0\" disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Enable leader election so that only one replica reconciles.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (defaults to the pod's namespace).")
	flag.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", 4, "Projects reconciled in parallel.")
	flag.DurationVar(&resyncPeriod, "resync-period", 10*time.Minute, "How often every Project is re-checked against its clusters without an event. A resync that finds nothing to change sends no write to service clusters.")
	flag.DurationVar(&clusterProbeInterval, "cluster-probe-interval", 30*time.Second, "Time between health probes of each service cluster.")
	flag.IntVar(&clusterFailureThreshold, "cluster-failure-threshold", 3, "Consecutive failed probes before a Ready service cluster is reported unreachable.")
	flag.DurationVar(&remoteRequestTimeout, "remote-request-timeout", 15*time.Second, "Timeout of each request to a service cluster.")
	flag.StringVar(&drainHelperImage, "drain-helper-image", "ghcr.io/convoy-dev/convoy-drain:v0.1.0", "Image of convoy-drain, injected for PreStop hooks that need it (a GracefulShutdownPolicy's spec.helperImage wins).")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	logger := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	setupLog := ctrl.Log.WithName("setup")

	scheme := convoyscheme.New()
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "convoy-manager.convoy.dev",
		LeaderElectionNamespace: leaderElectionNamespace,
		// Remote connections stop with the process; nothing must outlive leadership.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		setupLog.Error(err, "Unable to create manager")
		os.Exit(1)
	}

	fleet := remote.NewFleet(remote.Options{Scheme: scheme, RequestTimeout: remoteRequestTimeout})
	defer fleet.Stop()
	if err := controllers.Setup(mgr, controllers.Config{
		Fleet:                   fleet,
		MaxConcurrentReconciles: maxConcurrentReconciles,
		ResyncPeriod:            resyncPeriod,
		ClusterProbeInterval:    clusterProbeInterval,
		ClusterFailureThreshold: int32(clusterFailureThreshold),
		DrainHelperImage:        drainHelperImage,
	}); err != nil {
		setupLog.Error(err, "Unable to set up controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Manager exited with an error")
		os.Exit(1)
	}
}
