package remote

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxPodMessage bounds the messages kept from a pod's status: enough to name the image or the
// missing ConfigMap, small enough that caching every pod of a large workload stays cheap.
const maxPodMessage = 256

// podForStatus strips a cached Pod down to what workload status reads: where it runs (zone
// counts), and why it is not ready (scheduling, containers' waiting reasons).
func podForStatus(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Labels: pod.Labels, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, c := range pod.Status.Conditions {
		if (c.Type == corev1.PodScheduled || c.Type == corev1.PodReady) && c.Status != corev1.ConditionTrue {
			slim.Status.Conditions = append(slim.Status.Conditions, corev1.PodCondition{
				Type: c.Type, Status: c.Status, Reason: c.Reason, Message: shorten(c.Message),
			})
		}
	}
	slim.Status.InitContainerStatuses = waitingOnly(pod.Status.InitContainerStatuses)
	slim.Status.ContainerStatuses = waitingOnly(pod.Status.ContainerStatuses)
	return slim, nil
}

func waitingOnly(statuses []corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, s := range statuses {
		if w := s.State.Waiting; w != nil {
			out = append(out, corev1.ContainerStatus{Name: s.Name, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: w.Reason, Message: shorten(w.Message)},
			}})
		}
	}
	return out
}

func shorten(s string) string {
	if len(s) <= maxPodMessage {
		return s
	}
	return s[:maxPodMessage-3] + "..."
}

// Current reports whether a pod counts for its workload: not terminating, not finished.
func Current(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// PodProblem says why a current pod is not ready: Unschedulable (or the scheduling
// condition's reason), the first waiting reason of its init containers, then of its
// containers, or the Ready condition's reason. ok is false for a ready pod.
func PodProblem(p *corev1.Pod) (reason, message string, ok bool) {
	var ready *corev1.PodCondition
	for i, c := range p.Status.Conditions {
		switch {
		case c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse:
			return nonEmpty(c.Reason, corev1.PodReasonUnschedulable), c.Message, true
		case c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue:
			ready = &p.Status.Conditions[i]
		}
	}
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range statuses {
			if w := s.State.Waiting; w != nil && w.Reason != "" {
				return w.Reason, w.Message, true
			}
		}
	}
	if ready != nil {
		return nonEmpty(ready.Reason, "NotReady"), ready.Message, true
	}
	return "", "", false
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// podChanged passes pod updates that can change workload status: where the pod runs, its
// phase, its labels, the start of its deletion, or why it is not ready. Other status writes
// do not wake the Project.
func podChanged(oldObj, newObj any) bool {
	o, ok1 := oldObj.(*corev1.Pod)
	n, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return true
	}
	if o.Spec.NodeName != n.Spec.NodeName || o.Status.Phase != n.Status.Phase ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) || !maps.Equal(o.Labels, n.Labels) {
		return true
	}
	oReason, _, oProblem := PodProblem(o)
	nReason, _, nProblem := PodProblem(n)
	return oProblem != nProblem || oReason != nReason
}

// WorkloadPods lists the pods matching selector in namespace from the cache, as
// podForStatus keeps them.
func (c *Connection) WorkloadPods(ctx context.Context, namespace string, selector map[string]string) ([]corev1.Pod, error) {
	if c.placementErr != nil {
		return nil, c.placementErr
	}
	var pods corev1.PodList
	if err := c.cache().List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels(selector)); err != nil {
		return nil, fmt.Errorf("listing pods in %s/%s: %w", c.Name, namespace, err)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods.Items, nil
}
