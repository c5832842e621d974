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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
)

// ServiceClusterReconciler keeps one connection per ServiceCluster, probes its health and
// reports it. On deletion it waits until no convoy-owned object is left in the cluster.
type ServiceClusterReconciler struct {
	client.Client
	// APIReader reads kubeconfig Secrets without caching every Secret of the manager cluster.
	APIReader client.Reader
	Fleet     *remote.Fleet
	// ProbeInterval is the time between health probes.
	ProbeInterval time.Duration
	// FailureThreshold is how many consecutive failed probes turn a Ready cluster NotReady.
	FailureThreshold int32
}

// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// Reconcile connects, probes and reports one ServiceCluster.
func (r *ServiceClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sc := &convoyv1.ServiceCluster{}
	if err := r.Get(ctx, req.NamespacedName, sc); err != nil {
		if apierrors.IsNotFound(err) {
			r.Fleet.Disconnect(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !sc.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, sc)
	}
	if controllerutil.AddFinalizer(sc, convoyv1.CleanupFinalizer) {
		if err := r.Update(ctx, sc); err != nil {
			return ctrl.Result{}, err
		}
	}

	before := sc.Status.DeepCopy()
	conn, contactErr := r.connect(ctx, sc)
	var probe remote.ProbeResult
	if contactErr == nil {
		probe, contactErr = conn.Probe(ctx)
	}
	if contactErr == nil && probe.Capabilities.DestinationRuleVersion() != conn.DestinationRuleVersion() {
		// Istio's CRDs were installed or removed: the connection must watch other kinds.
		log.FromContext(ctx).Info("DestinationRule support changed; reconnecting",
			"from", conn.DestinationRuleVersion(), "to", probe.Capabilities.DestinationRuleVersion())
		r.Fleet.Disconnect(sc.Name)
		_, contactErr = r.connect(ctx, sc)
	}
	var original string
	if contactErr == nil {
		original, contactErr = r.registeredEarlier(ctx, sc, probe.ClusterID)
	}
	switch {
	case contactErr != nil:
		r.recordFailure(sc, contactErr)
	case original != "":
		sc.Status.ClusterID = probe.ClusterID
		setKstatus(&sc.Status.Conditions, sc.Generation, metav1.ConditionFalse, false, true, convoyv1.ReasonDuplicateCluster,
			fmt.Sprintf("This cluster (kube-system UID %s) is already registered as ServiceCluster %s; convoy does not use it twice. Delete one of the two ServiceClusters", probe.ClusterID, original))
	default:
		r.recordSuccess(sc, probe)
	}
	sc.Status.ObservedGeneration = sc.Generation
	if err := r.patchStatus(ctx, sc, before); err != nil {
		return ctrl.Result{}, err
	}
	if se := (*secretError)(nil); errors.As(contactErr, &se) {
		// Only a change of the Secret can fix this; the Secret watch brings us back.
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: r.ProbeInterval}, nil
}

// registeredEarlier returns the name of another ServiceCluster for the same physical cluster
// that was registered before this one. Using one cluster under two names would make each
// registration prune the other's objects.
func (r *ServiceClusterReconciler) registeredEarlier(ctx context.Context, sc *convoyv1.ServiceCluster, clusterID string) (string, error) {
	var list convoyv1.ServiceClusterList
	if err := r.List(ctx, &list, client.MatchingFields{clusterIDIndex: clusterID}); err != nil {
		return "", err
	}
	for _, other := range list.Items {
		if other.Name == sc.Name || !other.DeletionTimestamp.IsZero() || isDuplicate(&other) {
			continue
		}
		if other.CreationTimestamp.Before(&sc.CreationTimestamp) ||
			(other.CreationTimestamp.Equal(&sc.CreationTimestamp) && other.Name < sc.Name) {
			return other.Name, nil
		}
	}
	// Status in the cache can lag: the in-process claim settles registrations that
	// connect at the same moment.
	if holder := r.Fleet.Claim(clusterID, sc.Name); holder != sc.Name {
		return holder, nil
	}
	return "", nil
}

func isDuplicate(sc *convoyv1.ServiceCluster) bool {
	c := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
	return c != nil && c.Reason == convoyv1.ReasonDuplicateCluster
}

// secretError is a kubeconfig problem the user has to fix in the manager cluster.
type secretError struct{ reason, msg string }

func (e *secretError) Error() string { return e.msg }

func (r *ServiceClusterReconciler) connect(ctx context.Context, sc *convoyv1.ServiceCluster) (*remote.Connection, error) {
	ref := sc.Spec.KubeconfigSecretRef
	key := ref.Key
	if key == "" {
		key = convoyv1.DefaultKubeconfigKey
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			r.Fleet.Disconnect(sc.Name)
			return nil, &secretError{convoyv1.ReasonSecretNotFound, fmt.Sprintf("Secret %s/%s named in spec.kubeconfigSecretRef does not exist; create it with the kubeconfig under key %q", ref.Namespace, ref.Name, key)}
		}
		return nil, fmt.Errorf("reading Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	data, ok := secret.Data[key]
	if !ok || len(data) == 0 {
		r.Fleet.Disconnect(sc.Name)
		return nil, &secretError{convoyv1.ReasonInvalidKubeconfig, fmt.Sprintf("Secret %s/%s has no key %q; put the kubeconfig there or set spec.kubeconfigSecretRef.key", ref.Namespace, ref.Name, key)}
	}
	conn, err := r.Fleet.Connect(ctx, sc.Name, data)
	if errors.Is(err, remote.ErrInvalidKubeconfig) {
		r.Fleet.Disconnect(sc.Name)
		return nil, &secretError{convoyv1.ReasonInvalidKubeconfig, fmt.Sprintf("Secret %s/%s key %q: %v", ref.Namespace, ref.Name, key, err)}
	}
	return conn, err
}

func (r *ServiceClusterReconciler) recordSuccess(sc *convoyv1.ServiceCluster, probe remote.ProbeResult) {
	now := metav1.Now()
	sc.Status.LastContactTime = &now
	sc.Status.ConsecutiveFailures = 0
	sc.Status.ClusterID = probe.ClusterID
	sc.Status.KubernetesVersion = probe.KubernetesVersion
	sc.Status.Capabilities = probe.Capabilities
	setKstatus(&sc.Status.Conditions, sc.Generation, metav1.ConditionTrue, false, false, convoyv1.ReasonConnected,
		fmt.Sprintf("Connected to Kubernetes %s", probe.KubernetesVersion))
}

// recordFailure applies hysteresis: a cluster that was Ready stays Ready until
// FailureThreshold probes in a row have failed, so one lost packet does not flap every Project.
func (r *ServiceClusterReconciler) recordFailure(sc *convoyv1.ServiceCluster, err error) {
	sc.Status.ConsecutiveFailures++
	reason := remote.FailureReason(err)
	var se *secretError
	if errors.As(err, &se) {
		reason = se.reason
	}
	msg := failureMessage(sc, reason, err)
	wasReady := meta.IsStatusConditionTrue(sc.Status.Conditions, convoyv1.ReadyCondition)
	if wasReady && se == nil && sc.Status.ConsecutiveFailures < r.FailureThreshold {
		setKstatus(&sc.Status.Conditions, sc.Generation, metav1.ConditionTrue, false, false, convoyv1.ReasonConnected,
			fmt.Sprintf("%d of %d allowed consecutive probes failed: %s", sc.Status.ConsecutiveFailures, r.FailureThreshold, msg))
		return
	}
	userMustAct := se != nil || reason == convoyv1.ReasonUnauthorized
	setKstatus(&sc.Status.Conditions, sc.Generation, metav1.ConditionFalse, !userMustAct, userMustAct, reason, msg)
}

func failureMessage(sc *convoyv1.ServiceCluster, reason string, err error) string {
	switch reason {
	case convoyv1.ReasonUnauthorized:
		return fmt.Sprintf("The cluster rejected convoy's credentials (%v); update the kubeconfig Secret with valid credentials", err)
	case convoyv1.ReasonUnreachable:
		last := "never"
		if sc.Status.LastContactTime != nil {
			last = sc.Status.LastContactTime.UTC().Format(time.RFC3339)
		}
		return fmt.Sprintf("Cannot reach the cluster (last contact: %s): %v", last, err)
	}
	return err.Error()
}

func (r *ServiceClusterReconciler) patchStatus(ctx context.Context, sc *convoyv1.ServiceCluster, before *convoyv1.ServiceClusterStatus) error {
	if equality.Semantic.DeepEqual(before, &sc.Status) {
		return nil
	}
	patch := &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: sc.Name}, Status: *before}
	return r.Status().Patch(ctx, sc, client.MergeFrom(patch))
}

// reconcileDelete holds the finalizer until Projects have pruned everything convoy put into
// the cluster (Projects stop targeting a ServiceCluster that is being deleted).
func (r *ServiceClusterReconciler) reconcileDelete(ctx context.Context, sc *convoyv1.ServiceCluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(sc, convoyv1.CleanupFinalizer) {
		r.Fleet.Disconnect(sc.Name)
		return ctrl.Result{}, nil
	}
	if sc.Status.LastContactTime == nil || isDuplicate(sc) {
		// convoy never reached this cluster, or reached it only as a refused duplicate: nothing
		// was written through this registration.
		r.Fleet.Disconnect(sc.Name)
		controllerutil.RemoveFinalizer(sc, convoyv1.CleanupFinalizer)
		return ctrl.Result{}, r.Update(ctx, sc)
	}
	before := sc.Status.DeepCopy()
	conn, err := r.connect(ctx, sc)
	var remaining []client.Object
	if err == nil {
		remaining, err = conn.OwnedByAnyone(ctx)
	}
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("Cannot reach the cluster to confirm that convoy's objects are gone (%v). Restore access, or remove the finalizer %s to abandon them", err, convoyv1.CleanupFinalizer)
	case len(live(remaining)) > 0:
		msg = fmt.Sprintf("Waiting for Projects to remove %d objects: %s", len(live(remaining)), describe(live(remaining), 5))
	default:
		log.FromContext(ctx).Info("No convoy-owned objects left; releasing ServiceCluster")
		r.Fleet.Disconnect(sc.Name)
		controllerutil.RemoveFinalizer(sc, convoyv1.CleanupFinalizer)
		return ctrl.Result{}, r.Update(ctx, sc)
	}
	setKstatus(&sc.Status.Conditions, sc.Generation, metav1.ConditionFalse, true, false, convoyv1.ReasonDeleting, msg)
	if err := r.patchStatus(ctx, sc, before); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: min(r.ProbeInterval, 5*time.Second)}, nil
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
