package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
	"github.com/convoy-dev/convoy/internal/metrics"
	"github.com/convoy-dev/convoy/internal/remote"
	"github.com/convoy-dev/convoy/internal/render"
)

// clusterSync is the worker side of the engine: it makes one Project match in one service
// cluster (apply, prune, read status) or removes it from there. It runs on that cluster's
// own queue, so it never waits on another cluster, and it reports through pairState; the
// Project status controller turns the results into status.
type clusterSync struct {
	inputs
	fleet *remote.Fleet
	state *pairState
	// resync re-checks a synced pair without events; in steady state it reads only caches.
	resync time.Duration
	// namespaceRecheck is how often a cleanup that waits for a person to empty a namespace
	// looks again; the connection also watches the blocking objects and wakes the pair early.
	namespaceRecheck time.Duration
	// wake asks the Project status controller to aggregate a changed result.
	wake func(project types.NamespacedName)
	// events records what changed in each cluster on the Project.
	events events.EventRecorder
}

// Sync is the engine's SyncFunc.
func (s *clusterSync) Sync(ctx context.Context, p engine.Pair) (time.Duration, error) {
	pi, err := s.gather(ctx, p.Project)
	if err != nil {
		return 0, err
	}
	if pi == nil {
		s.state.forgetProject(p.Project)
		return 0, nil
	}
	sc := findCluster(pi.clusters, p.Cluster)
	if sc == nil {
		s.state.forgetCluster(p)
		s.wake(p.Project)
		return 0, nil
	}
	var res pairResult
	var syncErr error
	after := wait.Jitter(s.resync, 0.1)
	switch {
	case pi.deleting() || !pi.targets(sc.Name):
		res, syncErr = s.cleanup(ctx, pi, sc)
		switch {
		case res.clean:
			after = 0
		case res.waitsForPerson:
			after = wait.Jitter(s.namespaceRecheck, 0.1)
		}
	case pi.blocked():
		return 0, nil // the Project is Stalled and says why
	default:
		res.status, syncErr = s.sync(ctx, pi, sc)
		if slices.ContainsFunc(res.status.Workloads, func(w convoyv1.WorkloadStatus) bool { return w.Message == justWritten }) {
			// The write's watch event normally brings the pair back at once; a write the API
			// server found to change nothing sends none.
			after = writtenRecheck
		}
		warnOnNewReason(s.events, pi.project, sc, previous(pi.project, sc.Name), res.status)
		if queuedAt, ok := s.state.applied(p, res.status.Synced); ok {
			metrics.Propagation.WithLabelValues(sc.Name).Observe(time.Since(queuedAt).Seconds())
		}
	}
	if s.state.record(p, res) {
		s.wake(p.Project)
	}
	return after, syncErr
}

// writtenRecheck is when a pair that just wrote a Deployment reads its status again at the
// latest.
const writtenRecheck = 2 * time.Second

func findCluster(clusters []convoyv1.ServiceCluster, name string) *convoyv1.ServiceCluster {
	for i := range clusters {
		if clusters[i].Name == name {
			return &clusters[i]
		}
	}
	return nil
}

func ownerOf(p *convoyv1.Project) remote.Owner {
	return remote.Owner{Namespace: p.Namespace, Name: p.Name}
}

// sync applies the Project's objects in one cluster and prunes what it no longer wants.
// It returns an error only for failures worth retrying with backoff.
func (s *clusterSync) sync(ctx context.Context, pi *projectInputs, sc *convoyv1.ServiceCluster) (convoyv1.ProjectClusterStatus, error) {
	project := pi.project
	prev := previous(project, sc.Name)
	st := convoyv1.ProjectClusterStatus{Name: sc.Name, ObservedGeneration: project.Generation, LastSyncTime: prev.LastSyncTime, AppliedPolicies: prev.AppliedPolicies, Revision: prev.Revision}
	conn, ok := s.reachable(sc, &st)
	if !ok {
		return st, nil
	}
	// Under a rollout strategy the cluster runs the revision its wave is at, not the live spec.
	rendered, policies := project, pi.policies
	if st.Revision = pi.revisionFor(sc.Name); st.Revision != "" {
		in, err := s.revisions.load(ctx, project.Namespace, st.Revision)
		if err != nil {
			st.Reason, st.Message = convoyv1.ReasonApplyFailed, err.Error()
			return st, err
		}
		rendered, policies = in.apply(project, pi.policies)
	}
	// Render for the capabilities the connection verified, not for what the ServiceCluster
	// recorded earlier: a cluster whose Istio was just removed must not get DestinationRules.
	verified := sc.DeepCopy()
	verified.Status.Capabilities = conn.Identity().Capabilities
	desired, err := render.ForCluster(rendered, verified, policies)
	if err != nil {
		st.Reason, st.Message = convoyv1.ReasonInvalidSpec, err.Error()
		return st, nil
	}
	owner := ownerOf(project)
	wanted, written := map[string]bool{}, map[string]bool{}
	var conflicts, rejected, failures []string
	act := newActivity(sc.Name, "Pruned")
	defer act.emit(s.events, project, sc)
	for _, obj := range desired.All() {
		id, err := conn.ObjectID(obj)
		if err != nil {
			return st, err
		}
		wanted[id] = true
		kind := obj.GetObjectKind().GroupVersionKind().Kind // rendered objects carry their kind
		write, err := conn.Apply(ctx, owner, obj)
		if write != remote.NoWrite {
			act.record(ctx, string(write), kind, obj, whyWritten[write])
			written[kind+"/"+obj.GetName()] = true
		}
		var conflict *remote.ConflictError
		switch {
		case errors.As(err, &conflict):
			conflicts = append(conflicts, conflict.Error())
			act.failed(kind, "conflict")
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			// Retrying cannot help: only a change to the Project (or the cluster) can.
			rejected = append(rejected, err.Error())
			act.failed(kind, "rejected")
		case err != nil:
			failures = append(failures, err.Error())
			act.failed(kind, "error")
		}
		if err != nil && obj == desired.Namespace {
			break // nothing can go into a namespace convoy does not hold
		}
	}
	if len(conflicts) == 0 && len(rejected) == 0 && len(failures) == 0 {
		if err := prune(ctx, conn, owner, project.RemoteNamespace(), wanted, act); err != nil {
			failures = append(failures, err.Error())
		}
	}
	changed := act.changed()
	var zonesWarning string
	st.Workloads, zonesWarning = workloadStatuses(ctx, conn, sc, desired, written)
	if zonesWarning != "" {
		desired.Warnings = append(desired.Warnings, zonesWarning)
	}
	switch {
	case len(conflicts) > 0:
		st.Reason, st.Message = convoyv1.ReasonConflict, strings.Join(conflicts, "; ")
		return st, nil
	case len(rejected) > 0:
		st.Reason, st.Message = convoyv1.ReasonRejected, "The cluster's API server refused the rendered objects: "+strings.Join(rejected, "; ")+
			". Fix the Project; or, if someone changed a list key of the object in the cluster (a Service port number), delete the object there and convoy recreates it"
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
	switch waiting, failed := notAvailable(st.Workloads); {
	case len(failed) > 0:
		st.Reason, st.Message = convoyv1.ReasonWorkloadFailed, "Rollout failed: "+strings.Join(failed, "; ")+
			". Fix the workload (image, config, resources) in the Project; the next change rolls it out again"
	case len(waiting) > 0:
		st.Reason, st.Message = convoyv1.ReasonProgressing, "Waiting for workloads to become available: "+strings.Join(waiting, "; ")
	default:
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

// prune deletes what the Project owns in the cluster but no longer wants. It reads the
// cache: an object the cache has not seen yet is pruned when its event arrives.
func prune(ctx context.Context, conn *remote.Connection, owner remote.Owner, namespace string, wanted map[string]bool, act *activity) error {
	owned, err := conn.Owned(ctx, owner, namespace)
	if err != nil {
		return err
	}
	var errs []error
	for _, obj := range owned {
		id, err := conn.ObjectID(obj)
		if err != nil {
			return err
		}
		if !wanted[id] && obj.GetDeletionTimestamp().IsZero() {
			errs = append(errs, deleteRecorded(ctx, conn, obj, act, "the Project no longer wants it"))
		}
	}
	return errors.Join(errs...)
}

// deleteRecorded deletes an object convoy owns and records the deletion.
func deleteRecorded(ctx context.Context, conn *remote.Connection, obj client.Object, act *activity, why string) error {
	kind := conn.KindOf(obj)
	if err := conn.Delete(ctx, obj); err != nil {
		var notEmpty *remote.NamespaceNotEmptyError
		if !errors.As(err, &notEmpty) { // that one waits for a person, it is no failure
			act.failed(kind, "error")
		}
		return err
	}
	act.record(ctx, "delete", kind, obj, why)
	return nil
}

// whyWritten says, for the log, what made a write necessary.
var whyWritten = map[remote.Write]string{
	remote.Created: "it is not in the cluster",
	remote.Updated: "fields convoy owns differ: the Project or what it uses changed, or someone edited them in the cluster",
}

// cleanup removes the Project's objects from a cluster it does not target (any more), or
// from every cluster while the Project is deleted. "Nothing left" is concluded only from a
// live list when something may have been there: a cache that has not caught up since a
// reconnect must never release a finalizer over objects it has not seen.
func (s *clusterSync) cleanup(ctx context.Context, pi *projectInputs, sc *convoyv1.ServiceCluster) (pairResult, error) {
	project := pi.project
	res := pairResult{deleting: pi.deleting()}
	res.status = convoyv1.ProjectClusterStatus{Name: sc.Name, ObservedGeneration: project.Generation, Reason: convoyv1.ReasonCleanupPending}
	prev := previous(project, sc.Name)
	conn, ok := s.reachable(sc, &res.status)
	if !ok {
		if prev.Name == "" {
			// Never reported as holding anything of this Project: nothing to wait for.
			res.clean = true
			return res, nil
		}
		res.status.Reason = convoyv1.ReasonCleanupPending
		res.status.Message = "Objects of this Project may remain in the cluster, which is not reachable; convoy removes them when it returns. " + res.status.Message
		return res, nil
	}
	owner, namespace := ownerOf(project), project.RemoteNamespace()
	owned, err := conn.Owned(ctx, owner, namespace)
	if err == nil && len(live(owned)) == 0 && (pi.deleting() || prev.Name != "") {
		owned, err = conn.OwnedLive(ctx, owner, namespace)
	}
	if err != nil {
		res.status.Message = err.Error()
		return res, err
	}
	if len(live(owned)) == 0 {
		res.clean = true
		return res, nil
	}
	why := "the Project is deleted"
	if !pi.deleting() {
		why = "the Project no longer targets the cluster"
	}
	act := newActivity(sc.Name, "Removed")
	defer act.emit(s.events, project, sc)
	var errs []error
	for _, obj := range owned {
		if obj.GetDeletionTimestamp().IsZero() {
			errs = append(errs, deleteRecorded(ctx, conn, obj, act, why))
		}
	}
	err = errors.Join(errs...)
	res.status.Message = fmt.Sprintf("Removing %d objects: %s", len(live(owned)), describe(live(owned), 5))
	var notEmpty *remote.NamespaceNotEmptyError
	if errors.As(err, &notEmpty) {
		res.status.Message, res.waitsForPerson = notEmpty.Error(), true
		return res, nil // waits for a person; rechecked every namespaceRecheck
	}
	return res, err
}

// reachable returns the cluster's connection, or fills st with why there is none. Status of
// an unreachable cluster carries its last contact time and no workload data: convoy shows no
// stale numbers as if they were live. A connection is used only for the cluster identity
// the ServiceCluster recorded, so objects never go to a cluster a re-pointed kubeconfig
// reaches before the ServiceCluster has been checked.
func (s *clusterSync) reachable(sc *convoyv1.ServiceCluster, st *convoyv1.ProjectClusterStatus) (*remote.Connection, bool) {
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
	conn, err := s.fleet.Get(sc.Name)
	if err == nil && conn.Identity().ClusterID != sc.Status.ClusterID {
		err = fmt.Errorf("the connection's cluster identity is not recorded on the ServiceCluster yet")
	}
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

// previous is the Project's last reported status entry for a cluster.
func previous(project *convoyv1.Project, cluster string) convoyv1.ProjectClusterStatus {
	for _, st := range project.Status.Clusters {
		if st.Name == cluster {
			return st
		}
	}
	return convoyv1.ProjectClusterStatus{}
}
