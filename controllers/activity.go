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
// counted as it happens; the sync ends with one Event on the Project for all of them, so a
// Project's Events read "what did convoy change, where, and when" without one per object.
type activity struct {
	cluster string
	changes map[string][]string // by verb (created, updated, deleted): "Kind namespace/name"
	order   []string
}

func newActivity(cluster string) *activity {
	return &activity{cluster: cluster, changes: map[string][]string{}}
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
	verb := map[string]string{"create": "created", "update": "updated", "delete": "deleted"}[operation]
	if _, seen := a.changes[verb]; !seen {
		a.order = append(a.order, verb)
	}
	a.changes[verb] = append(a.changes[verb], kind+" "+ref)
}

// failed counts a write the cluster did not take.
func (a *activity) failed(kind, reason string) {
	metrics.RemoteWriteFailures.WithLabelValues(a.cluster, kind, reason).Inc()
}

// emit sends one Normal Event on the Project naming what changed, if anything did.
func (a *activity) emit(recorder events.EventRecorder, project *convoyv1.Project, sc *convoyv1.ServiceCluster, reason, action string) {
	if len(a.order) == 0 {
		return
	}
	var parts []string
	for _, verb := range a.order {
		objs := a.changes[verb]
		listed := objs
		if len(listed) > maxListedInEvent {
			listed = listed[:maxListedInEvent]
		}
		part := verb + " " + strings.Join(listed, ", ")
		if len(objs) > len(listed) {
			part += fmt.Sprintf(" and %d more", len(objs)-len(listed))
		}
		parts = append(parts, part)
	}
	recorder.Eventf(project, sc, corev1.EventTypeNormal, reason, action, "%s: %s", a.cluster, strings.Join(parts, "; "))
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
