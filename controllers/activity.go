package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/metrics"
)

// maxListedInEvent bounds how many objects one Event names.
const maxListedInEvent = 10

// activity is what one pair sync changed in one cluster. Each write or delete is logged and
// counted as it happens; the sync ends with one Event on the Project per kind of change
// (Created, Updated, Pruned, Removed) naming the objects, with the ServiceCluster as related
// object. events.k8s.io aggregates repeats of a reason for the same Project and cluster into
// a series (a count on the first Event), so a flapping object does not flood the Project;
// the log has every single write.
type activity struct {
	cluster string
	// deleteReason is the Event reason of deletes: Pruned (no longer wanted) or Removed
	// (the Project is deleted or no longer targets the cluster).
	deleteReason string
	changes      map[string][]string // by Event reason: "Kind namespace/name"
	order        []string
}

func newActivity(cluster, deleteReason string) *activity {
	return &activity{cluster: cluster, deleteReason: deleteReason, changes: map[string][]string{}}
}

// record logs and counts one write: operation is create, update or delete; why says what
// made it necessary.
func (a *activity) record(ctx context.Context, operation, kind string, obj client.Object, why string) {
	ref := obj.GetName()
	if obj.GetNamespace() != "" {
		ref = obj.GetNamespace() + "/" + ref
	}
	log.FromContext(ctx).Info("Wrote to service cluster", "cluster", a.cluster, "operation", operation, "kind", kind, "object", ref, "why", why)
	metrics.RemoteWrites.WithLabelValues(a.cluster, kind, operation).Inc()
	reason := map[string]string{"create": "Created", "update": "Updated", "delete": a.deleteReason}[operation]
	if _, seen := a.changes[reason]; !seen {
		a.order = append(a.order, reason)
	}
	a.changes[reason] = append(a.changes[reason], kind+" "+ref)
}

// changed reports whether anything was written.
func (a *activity) changed() bool { return len(a.order) > 0 }

// failed counts a write the cluster did not take.
func (a *activity) failed(kind, reason string) {
	metrics.RemoteWriteFailures.WithLabelValues(a.cluster, kind, reason).Inc()
}

// emit sends the Events for what changed.
func (a *activity) emit(recorder events.EventRecorder, project *convoyv1.Project, sc *convoyv1.ServiceCluster) {
	for _, reason := range a.order {
		objs := a.changes[reason]
		listed := objs
		if len(listed) > maxListedInEvent {
			listed = listed[:maxListedInEvent]
		}
		note := strings.Join(listed, ", ")
		if len(objs) > len(listed) {
			note += fmt.Sprintf(" and %d more", len(objs)-len(listed))
		}
		action := "Apply"
		if reason == a.deleteReason {
			action = "Delete"
		}
		recorder.Eventf(project, sc, corev1.EventTypeNormal, reason, action, "%s: %s", a.cluster, note)
	}
}

// warnOnNewReason sends a Warning Event on the Project when a cluster enters a failed state
// (Conflict, Rejected, ApplyFailed, WorkloadFailed, InvalidSpec). The same state at the next
// sync sends nothing: Events say what changed, status says what is.
func warnOnNewReason(recorder events.EventRecorder, project *convoyv1.Project, sc *convoyv1.ServiceCluster, prev, now convoyv1.ProjectClusterStatus) {
	switch now.Reason {
	case convoyv1.ReasonConflict, convoyv1.ReasonRejected, convoyv1.ReasonApplyFailed, convoyv1.ReasonWorkloadFailed, convoyv1.ReasonInvalidSpec:
	default:
		return
	}
	if prev.Reason == now.Reason && prev.ObservedGeneration == now.ObservedGeneration {
		return
	}
	recorder.Eventf(project, sc, corev1.EventTypeWarning, now.Reason, "Sync", "%s: %s", sc.Name, truncate(now.Message, 1024))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
