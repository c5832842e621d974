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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
	"github.com/convoy-dev/convoy/internal/gate"
	"github.com/convoy-dev/convoy/internal/rollout"
)

// ProjectReconciler turns the results of a Project's (Project, cluster) pairs into its status
// and releases its finalizer once every cluster is clean. The projectDispatcher queues the
// pairs; this reconciler reads only the manager's caches and the pairs' in-memory results and
// never waits on a service cluster.
type ProjectReconciler struct {
	inputs
	Queues *engine.Queues
	state  *pairState
	// ResyncPeriod re-aggregates status without events; pairs resync on their own queues.
	ResyncPeriod time.Duration
	// Events records rollout transitions on the Project.
	Events events.EventRecorder
	// Gates evaluates the health gates of rollout strategies.
	Gates *gate.Evaluator
}

// +kubebuilder:rbac:groups=convoy.dev,resources=projects,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=projects/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=convoy.dev,resources=projects/finalizers,verbs=update
// +kubebuilder:rbac:groups=convoy.dev,resources=serviceclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=convoy.dev,resources=gracefulshutdownpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=convoy.dev,resources=localityloadbalancings,verbs=get;list;watch

// Reconcile runs the phases: gather, validate, status. The status is patched once, at the
// end, and only when it changed.
func (r *ProjectReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	pi, err := r.gather(ctx, req.NamespacedName)
	if err != nil || pi == nil {
		if pi == nil && err == nil {
			// A sync that finished after the finalizer was released may have recorded a
			// result since the dispatcher forgot the Project.
			r.state.forgetProject(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	project := pi.project
	before := project.Status.DeepCopy()
	var stepped rollout.Output
	defer func() {
		patchErr := r.patchStatus(ctx, project, before)
		switch {
		case apierrors.IsConflict(patchErr):
			// The rollout was computed from a Project the cache had not updated yet; computed
			// again from the newer one, it cannot mix two rollouts.
			result, patchErr = ctrl.Result{RequeueAfter: finalizerConflictRetry}, nil
		case patchErr == nil:
			r.announce(project, stepped)
		}
		err = errors.Join(err, patchErr)
	}()
	if pi.deleting() {
		return r.reconcileDelete(ctx, pi)
	}
	project.Status.ObservedGeneration = project.Generation
	if len(pi.invalid) > 0 {
		markStalled(&project.Status.Conditions, project.Generation, convoyv1.ReasonInvalidSpec, strings.Join(pi.invalid, "; "))
		return ctrl.Result{}, nil
	}
	if len(pi.missing) > 0 {
		// The policy and Secret watches bring the Project back when what it misses appears.
		markStalled(&project.Status.Conditions, project.Generation, convoyv1.ReasonPolicyNotFound, strings.Join(pi.missing, "; "))
		return ctrl.Result{}, nil
	}
	if len(pi.missingSecrets) > 0 {
		markStalled(&project.Status.Conditions, project.Generation, convoyv1.ReasonSecretNotFound, strings.Join(pi.missingSecrets, "; "))
		return ctrl.Result{}, nil
	}
	if pi.placementErr != nil {
		markStalled(&project.Status.Conditions, project.Generation, convoyv1.ReasonInvalidSpec, pi.placementErr.Error())
		return ctrl.Result{}, reconcile.TerminalError(pi.placementErr)
	}
	r.summarize(project, r.clusterStatuses(pi), len(pi.placement.Targeted))
	if stepped, err = r.advanceRollout(ctx, pi, project.Status.Clusters); err != nil {
		return ctrl.Result{}, err
	}
	rolloutConditions(project)
	resync := wait.Jitter(r.ResyncPeriod, 0.1)
	if after := stepped.RequeueAfter; after > 0 && after < resync {
		resync = after
	}
	return ctrl.Result{RequeueAfter: resync}, nil
}

// clusterStatuses builds the per-cluster status from the pairs' results: one entry per
// targeted cluster and per cluster that still holds objects to clean up.
func (r *ProjectReconciler) clusterStatuses(pi *projectInputs) []convoyv1.ProjectClusterStatus {
	project := pi.project
	var statuses []convoyv1.ProjectClusterStatus
	for i := range pi.clusters {
		sc := &pi.clusters[i]
		res, ok := r.state.result(engine.Pair{Project: client.ObjectKeyFromObject(project), Cluster: sc.Name})
		prev := previous(project, sc.Name)
		if !pi.targets(sc.Name) {
			switch {
			case ok && res.clean:
			case ok:
				statuses = append(statuses, res.status)
			case prev.Name != "":
				statuses = append(statuses, convoyv1.ProjectClusterStatus{Name: sc.Name, ObservedGeneration: project.Generation,
					Reason: convoyv1.ReasonCleanupPending, Message: "Queued: convoy removes this Project's objects from the cluster"})
			}
			continue
		}
		current := func(st convoyv1.ProjectClusterStatus) bool {
			if st.ObservedGeneration != project.Generation {
				return false
			}
			if pi.strategy != nil { // the revision says which policies the cluster should have
				// A cluster convoy cannot reach keeps the revision it ran; its entry says why.
				return st.Revision == pi.revisionFor(sc.Name) || notReachable(st.Reason)
			}
			return pi.policies.Current(st.AppliedPolicies)
		}
		switch {
		case ok && current(res.status) && res.status.Reason == convoyv1.ReasonConnecting && prev.Synced && current(prev):
			// Right after a manager restart a Ready cluster's connection is still being set up:
			// the last observation stands while it describes the current spec and policies.
			statuses = append(statuses, prev)
		case ok && current(res.status):
			statuses = append(statuses, res.status)
		case !ok && prev.Synced && current(prev):
			statuses = append(statuses, prev)
		default:
			statuses = append(statuses, pending(prev, sc.Name, project.Generation, r.Queues.Len(sc.Name)))
		}
	}
	for _, name := range pi.placement.MissingNames {
		statuses = append(statuses, convoyv1.ProjectClusterStatus{
			Name: name, Reason: convoyv1.ReasonClusterNotFound, ObservedGeneration: project.Generation,
			Message: fmt.Sprintf("spec.placement.clusterNames names ServiceCluster %q, which does not exist", name),
		})
	}
	return statuses
}

// notReachable: the pair could not reach the cluster, so its result says why, not what runs.
func notReachable(reason string) bool {
	return reason == convoyv1.ReasonUnreachable || reason == convoyv1.ReasonClusterNotReady || reason == convoyv1.ReasonConnecting
}

// pending is the entry of a cluster whose pair has not synced the current generation yet.
// What was last observed there (workloads, last sync) stays visible.
func pending(prev convoyv1.ProjectClusterStatus, cluster string, generation int64, queued int) convoyv1.ProjectClusterStatus {
	st := prev
	st.Name, st.Synced, st.Reason = cluster, false, convoyv1.ReasonPending
	st.Message = fmt.Sprintf("Generation %d is queued for this cluster (%d pairs waiting in its queue)", generation, queued)
	return st
}

// reconcileDelete releases the finalizer only when every pair has confirmed that its cluster
// holds nothing of the Project; the dispatcher queued the cleanups.
func (r *ProjectReconciler) reconcileDelete(ctx context.Context, pi *projectInputs) (ctrl.Result, error) {
	project := pi.project
	if !slices.Contains(project.Finalizers, convoyv1.CleanupFinalizer) {
		return ctrl.Result{}, nil
	}
	var pending []convoyv1.ProjectClusterStatus
	for i := range pi.clusters {
		name := pi.clusters[i].Name
		res, ok := r.state.result(engine.Pair{Project: client.ObjectKeyFromObject(project), Cluster: name})
		switch {
		case ok && res.deleting && res.clean:
		case ok && res.deleting:
			pending = append(pending, res.status)
		default:
			pending = append(pending, convoyv1.ProjectClusterStatus{Name: name, Reason: convoyv1.ReasonCleanupPending,
				ObservedGeneration: project.Generation, Message: "Queued: convoy checks the cluster for this Project's objects"})
		}
	}
	if len(pending) == 0 {
		return afterFinalizerPatch(removeFinalizer(ctx, r.Client, project))
	}
	names := make([]string, 0, len(pending))
	for _, p := range pending {
		names = append(names, p.Name)
	}
	project.Status.Clusters = pending
	markReconciling(&project.Status.Conditions, project.Generation, convoyv1.ReasonCleanupPending,
		"Deleting: waiting for cleanup in clusters "+strings.Join(names, ", "))
	// Pair results wake us; the requeue is a safety net.
	return ctrl.Result{RequeueAfter: wait.Jitter(r.ResyncPeriod, 0.1)}, nil
}

// summarize sets per-cluster status, the ready count and the kstatus conditions.
func (r *ProjectReconciler) summarize(project *convoyv1.Project, statuses []convoyv1.ProjectClusterStatus, targeted int) {
	slices.SortFunc(statuses, func(a, b convoyv1.ProjectClusterStatus) int { return strings.Compare(a.Name, b.Name) })
	project.Status.Clusters = statuses

	var ready int
	var stalled, waiting []string
	for _, st := range statuses {
		switch st.Reason {
		case convoyv1.ReasonSynced:
			ready++
		case convoyv1.ReasonConflict, convoyv1.ReasonInvalidSpec, convoyv1.ReasonClusterNotFound, convoyv1.ReasonRejected, convoyv1.ReasonWorkloadFailed:
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
	conds := &project.Status.Conditions
	switch {
	case len(stalled) > 0:
		markStalled(conds, project.Generation, convoyv1.ReasonClustersNotSynced, strings.Join(stalled, "; "))
	case targeted == 0:
		markStalled(conds, project.Generation, convoyv1.ReasonNoClusters, "spec.placement selects no ServiceCluster; check the selector and the clusters' labels")
	case len(waiting) > 0:
		markReconciling(conds, project.Generation, convoyv1.ReasonClustersNotSynced, "Not ready in: "+strings.Join(waiting, ", "))
	default:
		markReady(conds, project.Generation, convoyv1.ReasonAllClustersSynced, fmt.Sprintf("Synced and available in %d clusters", ready))
	}
}

func (r *ProjectReconciler) patchStatus(ctx context.Context, project *convoyv1.Project, before *convoyv1.ProjectStatus) error {
	if equality.Semantic.DeepEqual(before, &project.Status) {
		return nil
	}
	base := project.DeepCopy()
	base.Status = *before
	patch := client.MergeFrom(base)
	if before.Rollout != nil || project.Status.Rollout != nil {
		// A rollout step depends on the status it started from: a step computed from a stale
		// cache must not be merged into a newer rollout.
		patch = client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	}
	if err := r.Status().Patch(ctx, project, patch); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
