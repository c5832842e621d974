package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
	"github.com/convoy-dev/convoy/internal/metrics"
	"github.com/convoy-dev/convoy/internal/remote"
)

// ServiceClusterReconciler registers each ServiceCluster's kubeconfig with the connection
// manager and reports the health its supervisor observes. It never contacts the cluster
// itself: connecting and probing happen on the cluster's own supervisor, which wakes this
// reconciler on every probe. On deletion it waits until no convoy-owned object is left.
type ServiceClusterReconciler struct {
	client.Client
	// APIReader reads kubeconfig Secrets without caching every Secret of the manager cluster.
	APIReader client.Reader
	Fleet     *remote.Fleet
	// Queues are the per-cluster work queues; a released cluster's queue is removed.
	Queues *engine.Queues
	// DeletionRecheck is how often a ServiceCluster being deleted checks for remaining objects.
	DeletionRecheck time.Duration
	// Events records the cluster's state changes on the ServiceCluster.
	Events events.EventRecorder
}

// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile registers and reports one ServiceCluster. Its status is patched once, at the end.
func (r *ServiceClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	sc := &convoyv1.ServiceCluster{}
	if err := r.Get(ctx, req.NamespacedName, sc); err != nil {
		if apierrors.IsNotFound(err) {
			r.release(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := sc.Status.DeepCopy()
	defer func() {
		r.reportState(sc, before)
		err = errors.Join(err, r.patchStatus(ctx, sc, before))
	}()
	if !sc.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, sc)
	}
	if err := addFinalizer(ctx, r.Client, sc); err != nil {
		return ctrl.Result{}, err
	}
	sc.Status.ObservedGeneration = sc.Generation
	if err := r.register(ctx, sc); err != nil {
		var se *secretError
		if errors.As(err, &se) {
			// Only a change of the Secret can fix this; the Secret watch brings us back.
			sc.Status.ConsecutiveFailures = 0
			markStalled(&sc.Status.Conditions, sc.Generation, se.reason, se.msg)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if h, ok := r.Fleet.Health(sc.Name); ok {
		reportHealth(sc, h)
	}
	return ctrl.Result{}, nil
}

// reportState exports the cluster's state as metrics and sends an Event when its Ready
// condition changed (status or reason): Connected, Unreachable, Unauthorized, and so on.
func (r *ServiceClusterReconciler) reportState(sc *convoyv1.ServiceCluster, before *convoyv1.ServiceClusterStatus) {
	ready := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
	if ready == nil {
		return
	}
	value := 0.0
	if ready.Status == metav1.ConditionTrue {
		value = 1
	}
	metrics.ClusterReady.WithLabelValues(sc.Name).Set(value)
	if sc.Status.LastContactTime != nil {
		metrics.ClusterLastContact.WithLabelValues(sc.Name).Set(float64(sc.Status.LastContactTime.Unix()))
	}
	was := meta.FindStatusCondition(before.Conditions, convoyv1.ReadyCondition)
	if was != nil && was.Status == ready.Status && was.Reason == ready.Reason {
		return
	}
	eventType := corev1.EventTypeNormal
	if ready.Status != metav1.ConditionTrue && ready.Reason != convoyv1.ReasonConnecting {
		eventType = corev1.EventTypeWarning
	}
	r.Events.Eventf(sc, nil, eventType, ready.Reason, "Probe", "%s", truncate(ready.Message, 1024))
}

// reportHealth writes what the cluster's supervisor observed into the status.
func reportHealth(sc *convoyv1.ServiceCluster, h remote.Health) {
	st := &sc.Status
	if !h.LastContact.IsZero() {
		last := metav1.NewTime(h.LastContact)
		st.LastContactTime = &last
	}
	st.ConsecutiveFailures = h.ConsecutiveFailures
	switch h.State {
	case remote.StateConnected:
		st.ClusterID = h.Probe.ClusterID
		st.KubernetesVersion = h.Probe.KubernetesVersion
		st.Capabilities = h.Probe.Capabilities
		markReady(&st.Conditions, sc.Generation, h.Reason, h.Message)
	case remote.StateConnecting:
		// Right after a manager restart a Ready cluster keeps its condition until its
		// supervisor has decided: Projects must not flap while connections are set up.
		if !meta.IsStatusConditionTrue(st.Conditions, convoyv1.ReadyCondition) {
			markReconciling(&st.Conditions, sc.Generation, convoyv1.ReasonConnecting, "Connecting to the cluster")
		}
	case remote.StateRefused:
		markStalled(&st.Conditions, sc.Generation, h.Reason, h.Message)
	default:
		if h.Reason == convoyv1.ReasonUnauthorized {
			markStalled(&st.Conditions, sc.Generation, h.Reason, h.Message)
			return
		}
		markReconciling(&st.Conditions, sc.Generation, h.Reason, h.Message)
	}
}

func isDuplicate(sc *convoyv1.ServiceCluster) bool {
	c := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
	return c != nil && c.Reason == convoyv1.ReasonDuplicateCluster
}

// secretError is a kubeconfig problem the user has to fix in the manager cluster.
type secretError struct{ reason, msg string }

func (e *secretError) Error() string { return e.msg }

// register reads the kubeconfig Secret and hands it to the connection manager. It does not
// wait for the cluster.
func (r *ServiceClusterReconciler) register(ctx context.Context, sc *convoyv1.ServiceCluster) error {
	ref := sc.Spec.KubeconfigSecretRef
	key := ref.Key
	if key == "" {
		key = convoyv1.DefaultKubeconfigKey
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			r.Fleet.Unregister(sc.Name)
			return &secretError{convoyv1.ReasonSecretNotFound, fmt.Sprintf("Secret %s/%s named in spec.kubeconfigSecretRef does not exist; create it with the kubeconfig under key %q", ref.Namespace, ref.Name, key)}
		}
		return fmt.Errorf("reading Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	data, ok := secret.Data[key]
	if !ok || len(data) == 0 {
		r.Fleet.Unregister(sc.Name)
		return &secretError{convoyv1.ReasonInvalidKubeconfig, fmt.Sprintf("Secret %s/%s has no key %q; put the kubeconfig there or set spec.kubeconfigSecretRef.key", ref.Namespace, ref.Name, key)}
	}
	recorded := sc.Status.ClusterID
	if isDuplicate(sc) {
		recorded = ""
	}
	err := r.Fleet.Register(sc.Name, remote.Registration{
		Kubeconfig: data, RecordedID: recorded, AcceptID: sc.Annotations[convoyv1.AcceptClusterIDAnnotation],
		Scope: sc.Spec.AccessScope,
	})
	if errors.Is(err, remote.ErrInvalidKubeconfig) {
		return &secretError{convoyv1.ReasonInvalidKubeconfig, fmt.Sprintf("Secret %s/%s key %q: %v", ref.Namespace, ref.Name, key, err)}
	}
	return err
}

func (r *ServiceClusterReconciler) patchStatus(ctx context.Context, sc *convoyv1.ServiceCluster, before *convoyv1.ServiceClusterStatus) error {
	if equality.Semantic.DeepEqual(before, &sc.Status) {
		return nil
	}
	patch := &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: sc.Name}, Status: *before}
	return client.IgnoreNotFound(r.Status().Patch(ctx, sc, client.MergeFrom(patch)))
}

// release forgets a cluster: its connection, claim and work queue.
func (r *ServiceClusterReconciler) release(name string) {
	r.Fleet.Unregister(name)
	r.Queues.RemoveCluster(name)
	metrics.ForgetCluster(name)
}

// reconcileDelete holds the finalizer until Projects have pruned everything convoy put into
// the cluster (Projects stop targeting a ServiceCluster that is being deleted). What is left
// is read from the API server, not from a cache that may be stale.
func (r *ServiceClusterReconciler) reconcileDelete(ctx context.Context, sc *convoyv1.ServiceCluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(sc, convoyv1.CleanupFinalizer) {
		r.release(sc.Name)
		return ctrl.Result{}, nil
	}
	if sc.Status.LastContactTime == nil || isDuplicate(sc) {
		// convoy never reached this cluster, or reached it only as a refused duplicate: nothing
		// was written through this registration.
		r.release(sc.Name)
		return ctrl.Result{}, removeFinalizer(ctx, r.Client, sc)
	}
	// Keep the connection current (a rotated Secret) while Projects clean up through it.
	regErr := r.register(ctx, sc)
	conn, err := r.Fleet.Get(sc.Name)
	if regErr != nil {
		err = regErr
	}
	var remaining []client.Object
	if err == nil {
		remaining, err = conn.OwnedByAnyoneLive(ctx)
	}
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("Cannot reach the cluster to confirm that convoy's objects are gone (%v). Restore access, or remove the finalizer %s to abandon them", err, convoyv1.CleanupFinalizer)
	case len(live(remaining)) > 0:
		msg = fmt.Sprintf("Waiting for Projects to remove %d objects: %s", len(live(remaining)), describe(live(remaining), 5))
	default:
		log.FromContext(ctx).Info("No convoy-owned objects left; releasing ServiceCluster")
		r.release(sc.Name)
		return ctrl.Result{}, removeFinalizer(ctx, r.Client, sc)
	}
	markReconciling(&sc.Status.Conditions, sc.Generation, convoyv1.ReasonDeleting, msg)
	return ctrl.Result{RequeueAfter: r.DeletionRecheck}, nil
}

// live drops objects whose deletion is already under way (a namespace being finalized).
func live(objs []client.Object) []client.Object {
	var out []client.Object
	for _, o := range objs {
		if o.GetDeletionTimestamp().IsZero() {
			out = append(out, o)
		}
	}
	return out
}

func describe(objs []client.Object, max int) string {
	var parts []string
	for i, o := range objs {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(objs)-max))
			break
		}
		kind := strings.TrimPrefix(fmt.Sprintf("%T", o), "*v1.")
		parts = append(parts, kind+" "+client.ObjectKeyFromObject(o).String())
	}
	return strings.Join(parts, ", ")
}
