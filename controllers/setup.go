package controllers

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/convoy-dev/convoy/internal/remote"
)

// Config holds what main (or a test) decides about the controllers.
type Config struct {
	Fleet                   *remote.Fleet
	MaxConcurrentReconciles int
	ResyncPeriod            time.Duration
	ClusterProbeInterval    time.Duration
	ClusterFailureThreshold int32
	// DrainHelperImage is the convoy-drain image for PreStop hooks that need it.
	DrainHelperImage string
}

// Setup registers every convoy controller with the manager.
func Setup(mgr ctrl.Manager, cfg Config) error {
	opts := controller.Options{MaxConcurrentReconciles: cfg.MaxConcurrentReconciles}
	if err := (&ServiceClusterReconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		Fleet:            cfg.Fleet,
		ProbeInterval:    cfg.ClusterProbeInterval,
		FailureThreshold: cfg.ClusterFailureThreshold,
	}).SetupWithManager(mgr, opts); err != nil {
		return err
	}
	if err := (&GracefulShutdownPolicyReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&LocalityLoadBalancingReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&ProjectReconciler{
		Client:           mgr.GetClient(),
		Fleet:            cfg.Fleet,
		ResyncPeriod:     cfg.ResyncPeriod,
		DrainHelperImage: cfg.DrainHelperImage,
	}).SetupWithManager(mgr, opts)
}
