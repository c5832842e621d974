package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
	"github.com/convoy-dev/convoy/internal/render"
)

// ProjectReconciler pushes a Project's objects into every targeted service cluster, prunes
// them where they are no longer wanted, and reports the live state per cluster.
type ProjectReconciler struct {
	client.Client
	Fleet *remote.Fleet
	// DrainHelperImage is the convoy-drain image injected for PreStop hooks that need it.
	DrainHelperImage string
	// ResyncPeriod re-checks every cluster even without events. In steady state a resync reads
	// only caches and sends no request to service clusters.
	ResyncPeriod time.Duration
}

// +kubebuilder:rbac:groups=convoy.dev,resources=projects,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=projects/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=projects/finalizers,verbs=update
// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=convoy.dev,resources=gracefulshutdownpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=convoy.dev,resources=localityloadbalancings,verbs=get;list;watch

// Reconcile runs the phases: fetch, gather clusters, finalizer, sync or clean up per
// cluster, status.
func (r *ProjectReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	project := &convoyv1.Project{}
	if err := r.Get(ctx, req.NamespacedName, project); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// A failed list returns here, before any pruning: an empty answer from a broken list
	// must never look like "no clusters are targeted any more".
	var clusters convoyv1.ServiceClusterList
	if err := r.List(ctx, &clusters); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing ServiceClusters: %w", err)
	}
	if !project.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, project, clusters.Items)
	}
	if controllerutil.AddFinalizer(project, convoyv1.CleanupFinalizer) {
		if err := r.Update(ctx, project); err != nil {
			return ctrl.Result{}, err
		}
	}

	before := project.Status.DeepCopy()
	policies, missing, err := r.gatherPolicies(ctx, project)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(missing) > 0 {
		// Nothing is pushed half-way: a workload without its policy would drop requests.
		// The policy watch brings the Project back when the policy appears.
		r.setStalled(project, convoyv1.ReasonPolicyNotFound, strings.Join(missing, "; "))
		return ctrl.Result{}, r.patchStatus(ctx, project, before)
	}
	placement, err := render.Place(project, clusters.Items)
	if err != nil {
		// Unreachable with API-server validation in place; kept as a terminal user error.
		r.setStalled(project, convoyv1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{}, errors.Join(r.patchStatus(ctx, project, before), reconcile.TerminalError(err))
	}
	for _, sc := range placement.Targeted {
		policies.Regions = append(policies.Regions, sc.Spec.Region)
	}
	var statuses []convoyv1.ProjectClusterStatus
	var retry error
	for i := range clusters.Items {
		sc := &clusters.Items[i]
		if slices.Contains(placement.Targeted, sc) {
			st, err := r.syncCluster(ctx, project, sc, policies)
			statuses = append(statuses, st)
			retry = errors.Join(retry, err)
			continue
		}
		if st, err := r.cleanupCluster(ctx, project, sc); st != nil {
			statuses = append(statuses, *st)
			retry = errors.Join(retry, err)
		}
	}
	for _, name := range placement.MissingNames {
		statuses = append(statuses, convoyv1.ProjectClusterStatus{
			Name: name, Reason: convoyv1.ReasonClusterNotFound,
			Message: fmt.Sprintf("spec.placement.clusterNames names ServiceCluster %q, which does not exist", name),
		})
	}
	r.summarize(project, statuses, len(placement.Targeted))
	if err := r.patchStatus(ctx, project, before); err != nil {
		return ctrl.Result{}, err
	}
	if retry != nil {
		return ctrl.Result{}, retry
	}
	return ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
}

// gatherPolicies reads the policies the Project references. Missing ones are returned as
// messages naming the referencing field.
func (r *ProjectReconciler) gatherPolicies(ctx context.Context, project *convoyv1.Project) (render.Policies, []string, error) {
	policies := render.Policies{
		GracefulShutdown:      map[string]*convoyv1.GracefulShutdownPolicy{},
		LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{},
		DrainHelperImage:      r.DrainHelperImage,
	}
	var missing []string
	seen := map[policyKey]bool{}
	for _, ref := range policyRefs(project) {
		if seen[ref.policyKey] {
			continue
		}
		seen[ref.policyKey] = true
		var policy client.Object
		switch ref.kind {
		case convoyv1.KindGracefulShutdownPolicy:
			p := &convoyv1.GracefulShutdownPolicy{}
			policy, policies.GracefulShutdown[ref.name] = p, p
		case convoyv1.KindLocalityLoadBalancing:
			p := &convoyv1.LocalityLoadBalancing{}
			policy, policies.LocalityLoadBalancing[ref.name] = p, p
		}
		err := r.Get(ctx, client.ObjectKey{Namespace: project.Namespace, Name: ref.name}, policy)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, fmt.Sprintf("%s %s/%s referenced by %s does not exist; create it or remove the reference", ref.kind, project.Namespace, ref.name, ref.field))
		case err != nil:
			return policies, nil, err
		}
	}
	return policies, missing, nil
}

type policyKey struct{ kind, name string }

// indexValue is how a policy reference is stored in the Project policy index.
func (k policyKey) indexValue() string { return k.kind + "/" + k.name }

type policyRef struct {
	policyKey
	field string
}

// policyRefs lists every policy reference of a Project with the field holding it.
func policyRefs(project *convoyv1.Project) []policyRef {
	var refs []policyRef
	add := func(kind string, ref *convoyv1.PolicyReference, field string) {
		if ref != nil {
			refs = append(refs, policyRef{policyKey{kind, ref.Name}, field})
		}
	}
	add(convoyv1.KindGracefulShutdownPolicy, project.Spec.GracefulShutdownPolicy, "spec.gracefulShutdownPolicy")
	add(convoyv1.KindLocalityLoadBalancing, project.Spec.LocalityLoadBalancing, "spec.localityLoadBalancing")
	for i, w := range project.Spec.Workloads {
		add(convoyv1.KindGracefulShutdownPolicy, w.GracefulShutdownPolicy, fmt.Sprintf("spec.workloads[%d].gracefulShutdownPolicy", i))
		add(convoyv1.KindLocalityLoadBalancing, w.LocalityLoadBalancing, fmt.Sprintf("spec.workloads[%d].localityLoadBalancing", i))
	}
	return refs
}

func (r *ProjectReconciler) owner(p *convoyv1.Project) remote.Owner {
	return remote.Owner{Namespace: p.Namespace, Name: p.Name}
}

// syncCluster applies the Project's objects in one cluster and prunes what it no longer wants.
// It returns an error only for failures worth retrying with backoff.
func (r *ProjectReconciler) syncCluster(ctx context.Context, project *convoyv1.Project, sc *convoyv1.ServiceCluster, policies render.Policies) (convoyv1.ProjectClusterStatus, error) {
	prev := previous(project, sc.Name)
	st := convoyv1.ProjectClusterStatus{Name: sc.Name, LastSyncTime: prev.LastSyncTime, AppliedPolicies: prev.AppliedPolicies}
	desired, err := render.ForCluster(project, sc, policies)
	conn, ok := r.reachable(sc, &st)
	if !ok {
		// Right after a manager restart, a Ready cluster's connection is still being set up:
		// keep what was last observed instead of flapping every Project to not-ready, but
		// only while it describes the current spec and policies. The connection event brings
		// the Project back; a cluster that does not come back turns Unreachable, which the
		// ServiceCluster watch delivers.
		if st.Reason == convoyv1.ReasonConnecting && prev.Name != "" && err == nil &&
			project.Status.ObservedGeneration == project.Generation &&
			equality.Semantic.DeepEqual(prev.AppliedPolicies, desired.AppliedPolicies) {
			return prev, nil
		}
		return st, nil
	}
	if err != nil {
		st.Reason, st.Message = convoyv1.ReasonInvalidSpec, err.Error()
		return st, nil
	}
	owner := r.owner(project)
	wanted := map[string]bool{}
	var conflicts, failures []string
	var changed bool
	for _, obj := range desired.All() {
		id, err := conn.ObjectID(obj)
		if err != nil {
			return st, err
		}
		wanted[id] = true
		wrote, err := conn.Apply(ctx, owner, obj)
		changed = changed || wrote
		var conflict *remote.ConflictError
		switch {
		case errors.As(err, &conflict):
			conflicts = append(conflicts, conflict.Error())
		case err != nil:
			failures = append(failures, err.Error())
		}
		if err != nil && obj == desired.Namespace {
			break // nothing can go into a namespace convoy does not hold
		}
	}
	if len(conflicts) == 0 && len(failures) == 0 {
		if err := r.prune(ctx, conn, owner, wanted); err != nil {
			failures = append(failures, err.Error())
		}
	}
	var zonesWarning string
	st.Workloads, zonesWarning = workloadStatuses(ctx, conn, sc, desired)
	if zonesWarning != "" {
		desired.Warnings = append(desired.Warnings, zonesWarning)
	}
	switch {
	case len(conflicts) > 0:
		st.Reason, st.Message = convoyv1.ReasonConflict, strings.Join(conflicts, "; ")
		return st, nil
	case len(failures) > 0:
		st.Reason, st.Message = convoyv1.ReasonApplyFailed, strings.Join(failures, "; ")
		return st, fmt.Errorf("cluster %s: %s", sc.Name, st.Message)
	}
	st.Synced = true
	st.AppliedPolicies = desired.AppliedPolicies
	if changed || st.LastSyncTime == nil || !prev.Synced {
		now := metav1.Now()
		st.LastSyncTime = &now
	}
	if notReady := notAvailable(st.Workloads); len(notReady) > 0 {
		st.Reason, st.Message = convoyv1.ReasonProgressing, "Waiting for workloads to become available: "+strings.Join(notReady, ", ")
	} else {
		st.Reason, st.Message = convoyv1.ReasonSynced, "All objects applied and all workloads available"
	}
	if len(desired.Warnings) > 0 {
		st.Message += ". " + strings.Join(desired.Warnings, "; ")
	}
	if w := probeWarning(sc); w != "" {
		st.Message += ". " + w
		st.LastContactTime = sc.Status.LastContactTime
	}
	return st, nil
}

// prune deletes what the Project owns in the cluster but no longer wants.
func (r *ProjectReconciler) prune(ctx context.Context, conn *remote.Connection, owner remote.Owner, wanted map[string]bool) error {
	owned, err := conn.Owned(ctx, owner)
	if err != nil {
		return err
	}
	var errs []error
	for _, obj := range owned {
		id, err := conn.ObjectID(obj)
		if err != nil {
			return err
		}
		if !wanted[id] {
			errs = append(errs, conn.Delete(ctx, obj))
		}
	}
	return errors.Join(errs...)
}

// cleanupCluster removes the Project's objects from a cluster it does not target (any more).
// It returns nil when there is nothing to report: the cluster holds nothing of the Project.
func (r *ProjectReconciler) cleanupCluster(ctx context.Context, project *convoyv1.Project, sc *convoyv1.ServiceCluster) (*convoyv1.ProjectClusterStatus, error) {
	st := &convoyv1.ProjectClusterStatus{Name: sc.Name, Reason: convoyv1.ReasonCleanupPending}
	prev := previous(project, sc.Name)
	conn, ok := r.reachable(sc, st)
	if !ok {
		if prev.Name == "" {
			// Never reported as holding anything of this Project: nothing to wait for.
			return nil, nil
		}
		st.Reason = convoyv1.ReasonCleanupPending
		st.Message = "Objects of this Project may remain in the cluster, which is not reachable; convoy removes them when it returns. " + st.Message
		return st, nil
	}
	owned, err := conn.Owned(ctx, r.owner(project))
	if err != nil {
		st.Message = err.Error()
		return st, err
	}
	if len(live(owned)) == 0 {
		return nil, nil
	}
	var errs []error
	for _, obj := range owned {
		errs = append(errs, conn.Delete(ctx, obj))
	}
	err = errors.Join(errs...)
	st.Message = fmt.Sprintf("Removing %d objects: %s", len(live(owned)), describe(live(owned), 5))
	var notEmpty *remote.NamespaceNotEmptyError
	if errors.As(err, &notEmpty) {
		st.Message = notEmpty.Error()
		return st, nil // waits for a person; events bring us back
	}
	return st, err
}

// reachable returns the cluster's connection, or fills st with why there is none. Status of
// an unreachable cluster carries its last contact time and no workload data: convoy shows no
// stale numbers as if they were live.
func (r *ProjectReconciler) reachable(sc *convoyv1.ServiceCluster, st *convoyv1.ProjectClusterStatus) (*remote.Connection, bool) {
	ready := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
	// A ServiceCluster being deleted reports Ready=False/Deleting while it waits for Projects
	// to clean up; the cleanup must still go through its live connection.
	deleting := !sc.DeletionTimestamp.IsZero() && ready != nil && ready.Reason == convoyv1.ReasonDeleting
	if !deleting && (ready == nil || ready.Status != metav1.ConditionTrue) {
		st.Reason = convoyv1.ReasonClusterNotReady
		if ready != nil && ready.Reason == convoyv1.ReasonUnreachable {
			st.Reason = convoyv1.ReasonUnreachable
		}
		st.LastContactTime = sc.Status.LastContactTime
		st.Message = fmt.Sprintf("ServiceCluster %s is not ready", sc.Name)
		if ready != nil {
			st.Message += ": " + ready.Message
		}
		return nil, false
	}
	conn, err := r.Fleet.Get(sc.Name)
	if err != nil {
		st.Reason, st.Message = convoyv1.ReasonConnecting, fmt.Sprintf("ServiceCluster %s is ready; its connection is being established", sc.Name)
		st.LastContactTime = sc.Status.LastContactTime
		return nil, false
	}
	return conn, true
}

// probeWarning says how old the cluster's data may be while failed probes are within the
// hysteresis threshold: the cluster still counts as Ready, but the cache may have stopped
// updating.
func probeWarning(sc *convoyv1.ServiceCluster) string {
	if sc.Status.ConsecutiveFailures == 0 {
		return ""
	}
	last := "never"
	if sc.Status.LastContactTime != nil {
		last = sc.Status.LastContactTime.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%d recent health probes failed; data is as of the last contact (%s)", sc.Status.ConsecutiveFailures, last)
}

// reconcileDelete removes the Project's objects from every cluster and releases the
// finalizer only when no cluster may still hold any.
func (r *ProjectReconciler) reconcileDelete(ctx context.Context, project *convoyv1.Project, clusters []convoyv1.ServiceCluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(project, convoyv1.CleanupFinalizer) {
		return ctrl.Result{}, nil
	}
	before := project.Status.DeepCopy()
	var pending []convoyv1.ProjectClusterStatus
	var retry error
	for i := range clusters {
		st, err := r.cleanupCluster(ctx, project, &clusters[i])
		if st != nil {
			pending = append(pending, *st)
		}
		retry = errors.Join(retry, err)
	}
	if len(pending) == 0 && retry == nil {
		controllerutil.RemoveFinalizer(project, convoyv1.CleanupFinalizer)
		return ctrl.Result{}, r.Update(ctx, project)
	}
	names := make([]string, 0, len(pending))
	for _, p := range pending {
		names = append(names, p.Name)
	}
	project.Status.Clusters = pending
	setKstatus(&project.Status.Conditions, project.Generation, metav1.ConditionFalse, true, false, convoyv1.ReasonCleanupPending,
		"Deleting: waiting for cleanup in clusters "+strings.Join(names, ", "))
	if err := r.patchStatus(ctx, project, before); err != nil {
		return ctrl.Result{}, err
	}
	if retry != nil {
		return ctrl.Result{}, retry
	}
	// Unreachable clusters wake us when they return; the requeue is a safety net.
	return ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
}

// summarize sets per-cluster status, the ready count and the kstatus conditions.
func (r *ProjectReconciler) summarize(project *convoyv1.Project, statuses []convoyv1.ProjectClusterStatus, targeted int) {
	slices.SortFunc(statuses, func(a, b convoyv1.ProjectClusterStatus) int { return strings.Compare(a.Name, b.Name) })
	project.Status.Clusters = statuses
	project.Status.ObservedGeneration = project.Generation

	var ready int
	var stalled, waiting []string
	for _, st := range statuses {
		switch st.Reason {
		case convoyv1.ReasonSynced:
			ready++
		case convoyv1.ReasonConflict, convoyv1.ReasonInvalidSpec, convoyv1.ReasonClusterNotFound:
			stalled = append(stalled, st.Name+": "+st.Message)
		default:
			waiting = append(waiting, st.Name+" ("+st.Reason+")")
		}
	}
	project.Status.ReadyClusters = fmt.Sprintf("%d/%d", ready, targeted)
	var imbalanced []string
	for _, st := range statuses {
		for _, ws := range st.Workloads {
			if msg := zoneImbalance(st.Name, ws); msg != "" {
				imbalanced = append(imbalanced, msg)
			}
		}
	}
	// Scale-in removes pods without regard to topology spread; convoy reports the result
	// rather than deleting pods itself.
	setOrRemove(&project.Status.Conditions, convoyv1.ZoneImbalancedCondition, len(imbalanced) > 0, project.Generation, convoyv1.ReasonSkewExceeded,
		"Pods are unevenly spread over zones, so zone-local traffic overloads the emptier zones: "+strings.Join(imbalanced, "; ")+
			". Restart the workload (kubectl rollout restart) or run the descheduler's RemovePodsViolatingTopologySpreadConstraint to rebalance")
	switch {
	case len(stalled) > 0:
		r.setStalled(project, convoyv1.ReasonClustersNotSynced, strings.Join(stalled, "; "))
	case targeted == 0:
		setKstatus(&project.Status.Conditions, project.Generation, metav1.ConditionFalse, false, true, convoyv1.ReasonNoClusters,
			"spec.placement selects no ServiceCluster; check the selector and the clusters' labels")
	case len(waiting) > 0:
		setKstatus(&project.Status.Conditions, project.Generation, metav1.ConditionFalse, true, false, convoyv1.ReasonClustersNotSynced,
			"Not ready in: "+strings.Join(waiting, ", "))
	default:
		setKstatus(&project.Status.Conditions, project.Generation, metav1.ConditionTrue, false, false, convoyv1.ReasonAllClustersSynced,
			fmt.Sprintf("Synced and available in %d clusters", ready))
	}
}

func (r *ProjectReconciler) setStalled(project *convoyv1.Project, reason, msg string) {
	project.Status.ObservedGeneration = project.Generation
	setKstatus(&project.Status.Conditions, project.Generation, metav1.ConditionFalse, false, true, reason, msg)
}

func (r *ProjectReconciler) patchStatus(ctx context.Context, project *convoyv1.Project, before *convoyv1.ProjectStatus) error {
	if equality.Semantic.DeepEqual(before, &project.Status) {
		return nil
	}
	base := project.DeepCopy()
	base.Status = *before
	if err := r.Status().Patch(ctx, project, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func previous(project *convoyv1.Project, cluster string) convoyv1.ProjectClusterStatus {
	for _, st := range project.Status.Clusters {
		if st.Name == cluster {
			return st
		}
	}
	return convoyv1.ProjectClusterStatus{}
}
