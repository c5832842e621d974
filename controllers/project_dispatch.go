package controllers

import (
	"context"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
)

// projectDispatcher turns a Project's intent into work: it keeps the cleanup finalizer on the
// Project and queues every (Project, cluster) pair whose inputs changed, ahead of re-checks.
// It reads only the manager's caches and writes nothing but the finalizer, once, so a change
// is queued within milliseconds even while the status controller works through a backlog of
// status patches (a cluster that flips Ready wakes every Project that targets it, and status
// patches share the manager client's rate limit).
type projectDispatcher struct {
	inputs
	Queues *engine.Queues
	state  *pairState
}

// finalizerConflictRetry is how soon a finalizer patch that lost a race with a status patch
// is tried again: the cache catches up within milliseconds.
const finalizerConflictRetry = 50 * time.Millisecond

// afterFinalizerPatch turns the error of a finalizer patch into a result: a conflict with the
// other Project controller's write is retried shortly, without logging a reconcile error.
func afterFinalizerPatch(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: finalizerConflictRetry}, nil
	}
	return ctrl.Result{}, err
}

// Reconcile runs the phases: gather, finalizer, validate, queue pairs.
func (d *projectDispatcher) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pi, err := d.gather(ctx, req.NamespacedName)
	if err != nil || pi == nil {
		if pi == nil && err == nil {
			d.state.forgetProject(req.NamespacedName)
			d.checks.forget(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if pi.deleting() {
		if slices.Contains(pi.project.Finalizers, convoyv1.CleanupFinalizer) {
			d.queuePairs(pi) // cleanups; the status controller releases the finalizer
		}
		return ctrl.Result{}, nil
	}
	if res, err := afterFinalizerPatch(addFinalizer(ctx, d.Client, pi.project)); err != nil || res.RequeueAfter > 0 {
		return res, err
	}
	if pi.blocked() {
		return ctrl.Result{}, nil // the status controller reports Stalled
	}
	d.queuePairs(pi)
	return ctrl.Result{}, nil
}

// queuePairs queues every pair whose inputs changed since it was last queued: all of them
// after a restart, one per cluster after a Project change, none after a no-op event.
func (d *projectDispatcher) queuePairs(pi *projectInputs) {
	for i := range pi.clusters {
		sc := &pi.clusters[i]
		pair := engine.Pair{Project: client.ObjectKeyFromObject(pi.project), Cluster: sc.Name}
		if d.state.markQueued(pair, pi.pairInputsHash(sc)) {
			d.Queues.Add(pair, engine.PriorityChange)
		}
	}
}
