package controllers

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
	"github.com/convoy-dev/convoy/internal/gate"
	"github.com/convoy-dev/convoy/internal/informer"
	"github.com/convoy-dev/convoy/internal/remote"
)

// Config holds what main (or a test) decides about the controllers.
type Config struct {
	Fleet                   *remote.Fleet
	MaxConcurrentReconciles int
	// ResyncPeriod re-checks every (Project, cluster) pair without events; in steady state a
	// resync reads only caches and sends nothing to service clusters.
	ResyncPeriod time.Duration
	// ClusterWorkers is the number of pairs synced at once in each cluster.
	ClusterWorkers int
	// SyncTimeout bounds one sync of a pair.
	SyncTimeout time.Duration
	// BatchDelay coalesces events: remote events of one pair, and results of one Project.
	BatchDelay time.Duration
	// NamespaceRecheck is how often a cleanup that waits for a person to empty a namespace
	// looks again.
	NamespaceRecheck time.Duration
	// DrainHelperImage is the convoy-drain image for PreStop hooks that need it.
	DrainHelperImage string
	// GateInterval is how often a soaking wave's health gates query Prometheus.
	GateInterval time.Duration
}

// CacheOptions are the manager cache's options: objects are cached without managedFields,
// which convoy never reads in the manager cluster and which is often the larger part of an
// object, and informers resume within seconds after the manager's API server was away
// (client-go's own backoff would leave changes waiting 30 s or more).
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(), NewInformer: informer.NewSharedIndexInformer,
		// Only convoy's revisions: StatefulSets and DaemonSets in the manager cluster keep
		// theirs as ControllerRevisions too.
		ByObject: map[client.Object]cache.ByObject{&appsv1.ControllerRevision{}: {
			Label: labels.SelectorFromSet(labels.Set{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}),
		}},
	}
}

// The metrics endpoint checks who asks (controller-runtime's authentication and
// authorization filter).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Setup registers every convoy controller and the per-cluster work queues with the manager.
func Setup(mgr ctrl.Manager, cfg Config) error {
	if cfg.BatchDelay == 0 {
		cfg.BatchDelay = 200 * time.Millisecond
	}
	if cfg.GateInterval == 0 {
		cfg.GateInterval = 30 * time.Second
	}
	if cfg.NamespaceRecheck == 0 {
		cfg.NamespaceRecheck = 30 * time.Second
	}
	// Reconciles read only the manager cluster; the timeout bounds a manager API server that
	// hangs. Remote work is bounded per pair by SyncTimeout.
	opts := controller.Options{MaxConcurrentReconciles: cfg.MaxConcurrentReconciles, ReconciliationTimeout: 30 * time.Second}
	in := newInputs(mgr.GetClient(), mgr.GetAPIReader(), cfg.DrainHelperImage)
	state := newPairState()
	results := make(chan event.GenericEvent, 4096)
	worker := &clusterSync{
		inputs: in, fleet: cfg.Fleet, state: state, resync: cfg.ResyncPeriod, namespaceRecheck: cfg.NamespaceRecheck,
		events: mgr.GetEventRecorder("convoy"),
		wake: func(project types.NamespacedName) {
			results <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: project.Namespace, Name: project.Name}}}
		},
	}
	collector := projectCollector{reader: mgr.GetCache()}
	ctrlmetrics.Registry.Unregister(collector) // a manager set up again in one process (tests) replaces the last one's
	if err := ctrlmetrics.Registry.Register(collector); err != nil {
		return err
	}
	queues := engine.New(engine.Options{Workers: cfg.ClusterWorkers, Timeout: cfg.SyncTimeout}, worker.Sync)
	if err := mgr.Add(queues); err != nil {
		return err
	}
	// Every change of a convoy-owned remote object re-checks its pair, after a short batch
	// period so that the echo of convoy's own writes costs one sync, not one per object.
	cfg.Fleet.OnObjectChange(func(cluster string, project types.NamespacedName) {
		queues.AddAfter(engine.Pair{Project: project, Cluster: cluster}, cfg.BatchDelay)
	})
	if err := (&ServiceClusterReconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		Fleet:           cfg.Fleet,
		Queues:          queues,
		DeletionRecheck: 5 * time.Second,
		Events:          mgr.GetEventRecorder("convoy"),
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
		inputs:       in,
		Queues:       queues,
		state:        state,
		ResyncPeriod: cfg.ResyncPeriod,
		Events:       mgr.GetEventRecorder("convoy"),
		Gates:        gate.NewEvaluator(cfg.GateInterval, 5*time.Second),
	}).SetupWithManager(mgr, opts, results, cfg.BatchDelay)
}
