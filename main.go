// Command manager runs convoy's controllers in the manager cluster.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/convoy-dev/convoy/controllers"
	"github.com/convoy-dev/convoy/internal/remote"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
	"github.com/convoy-dev/convoy/internal/version"
)

func main() {
	var (
		metricsAddr, probeAddr, pprofAddr string
		leaderElect, secureMetrics        bool
		printVersion                      bool
		maxConcurrentReconciles           int
		resyncPeriod                      time.Duration
		clusterProbeInterval              time.Duration
		clusterFailureThreshold           int
		clusterSuccessThreshold           int
		clusterProbeTimeout               time.Duration
		clusterConnectTimeout             time.Duration
		clusterMaxBackoff                 time.Duration
		clusterWorkers                    int
		syncTimeout                       time.Duration
		gateInterval                      time.Duration
		remoteQPS, kubeAPIQPS             float64
		remoteBurst, kubeBurst            int
		remoteRequestTimeout              time.Duration
		leaderElectionNamespace           string
		drainHelperImage                  string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; \"0\" disables it.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS to identities the manager cluster authorizes for GET /metrics (checked with TokenReview and SubjectAccessReview); false serves plain HTTP to anyone who reaches the port.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address the Go profiling endpoints (/debug/pprof) bind to; \"0\" disables them. Bind to loopback only: profiles reveal memory contents.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Enable leader election so that only one replica reconciles.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (defaults to the pod's namespace).")
	flag.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", 4, "Reconciles at once of each manager-side controller (Project dispatch, Project status, ServiceCluster); none of them waits on a service cluster.")
	flag.IntVar(&clusterWorkers, "cluster-workers", 4, "(Project, cluster) pairs synced at once in each service cluster.")
	flag.DurationVar(&syncTimeout, "sync-timeout", time.Minute, "Upper bound of one sync of a Project in one cluster.")
	flag.DurationVar(&gateInterval, "gate-interval", 30*time.Second, "How often the health gates of a soaking rollout wave query Prometheus; results are shared for this long.")
	flag.DurationVar(&resyncPeriod, "resync-period", 10*time.Minute, "How often every Project is re-checked in each cluster without an event (jittered by 10%). A resync that finds nothing to change sends no write to service clusters.")
	flag.DurationVar(&clusterProbeInterval, "cluster-probe-interval", 30*time.Second, "Time between health probes of each service cluster.")
	flag.DurationVar(&clusterProbeTimeout, "cluster-probe-timeout", 5*time.Second, "A probe that takes longer counts as failed: a cluster that answers too slowly is treated as down.")
	flag.DurationVar(&clusterConnectTimeout, "cluster-connect-timeout", 30*time.Second, "Upper bound for connecting to a service cluster. Its caches get as long to sync, and up to ten times as long while the cluster keeps answering probes.")
	flag.DurationVar(&clusterMaxBackoff, "cluster-max-backoff", time.Minute, "Upper bound of the exponential backoff between attempts to reach a cluster that is down.")
	flag.IntVar(&clusterFailureThreshold, "cluster-failure-threshold", 3, "Consecutive failed probes before a Ready service cluster is reported unreachable and its circuit breaker opens.")
	flag.IntVar(&clusterSuccessThreshold, "cluster-success-threshold", 2, "Consecutive successful probes before a cluster that was down is used again.")
	flag.DurationVar(&remoteRequestTimeout, "remote-request-timeout", 15*time.Second, "Timeout of each request to a service cluster.")
	flag.Float64Var(&remoteQPS, "remote-qps", 50, "Client-side request rate limit per service cluster.")
	flag.IntVar(&remoteBurst, "remote-burst", 100, "Client-side request burst per service cluster.")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", 50, "Client-side request rate limit towards the manager cluster.")
	flag.IntVar(&kubeBurst, "kube-api-burst", 100, "Client-side request burst towards the manager cluster.")
	flag.StringVar(&drainHelperImage, "drain-helper-image", "ghcr.io/convoy-dev/convoy-drain:v0.1.0", "Image of convoy-drain, injected for PreStop hooks that need it (a GracefulShutdownPolicy's spec.helperImage wins).")
	flag.BoolVar(&printVersion, "version", false, "Print the version and exit.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if printVersion {
		fmt.Println(version.String())
		return
	}

	logger := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	setupLog := ctrl.Log.WithName("setup")
	setupLog.Info("Starting convoy", "version", version.String())

	scheme := convoyscheme.New()
	restCfg := ctrl.GetConfigOrDie()
	restCfg.QPS, restCfg.Burst = float32(kubeAPIQPS), kubeBurst
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metricsOptions(metricsAddr, secureMetrics),
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
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

	fleet := remote.NewFleet(remote.Options{
		Scheme:         scheme,
		ConnectTimeout: clusterConnectTimeout,
		RequestTimeout: remoteRequestTimeout,
		ProbeTimeout:   clusterProbeTimeout,
		ProbeInterval:  clusterProbeInterval,
		MaxBackoff:     clusterMaxBackoff,
		Thresholds:     remote.Thresholds{Failures: int32(clusterFailureThreshold), Successes: int32(clusterSuccessThreshold)},
		QPS:            float32(remoteQPS),
		Burst:          remoteBurst,
	})
	defer fleet.Stop()
	if err := controllers.Setup(mgr, controllers.Config{
		Fleet:                   fleet,
		MaxConcurrentReconciles: maxConcurrentReconciles,
		ResyncPeriod:            resyncPeriod,
		ClusterWorkers:          clusterWorkers,
		SyncTimeout:             syncTimeout,
		GateInterval:            gateInterval,
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

// metricsOptions serves metrics over HTTPS (a self-signed certificate unless one is mounted)
// behind controller-runtime's authentication and authorization filter, as current
// kubebuilder projects do; or over plain HTTP when secure is false.
func metricsOptions(addr string, secure bool) metricsserver.Options {
	if !secure {
		return metricsserver.Options{BindAddress: addr}
	}
	return metricsserver.Options{BindAddress: addr, SecureServing: true, FilterProvider: filters.WithAuthenticationAndAuthorization}
}
