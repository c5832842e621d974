package controllers

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
	"github.com/convoy-dev/convoy/internal/render"
)

// justWritten is the message of a workload whose Deployment the sync just wrote.
const justWritten = "Updated; waiting for the Deployment controller to observe the change"

// workloadStatuses reads each workload's live Deployment, and its pods, from the cluster's
// caches; written names the Deployments ("Deployment/name") the sync just wrote, whose
// cached status may predate the write. Pods (where they run, why they are not ready) are extra information: when they
// cannot be read, the returned warning says why and the rest of the status stands.
func workloadStatuses(ctx context.Context, conn *remote.Connection, sc *convoyv1.ServiceCluster, desired *render.ClusterObjects, written map[string]bool) ([]convoyv1.WorkloadStatus, string) {
	nodes, podsErr := conn.NodeZones(ctx)
	out := make([]convoyv1.WorkloadStatus, 0, len(desired.Deployments))
	for _, d := range desired.Deployments {
		// A Deployment not (yet) in the cache wants its replicas and has none available.
		ws := convoyv1.WorkloadStatus{Name: d.Name, Kind: "Deployment", Replicas: ptrOr(d.Spec.Replicas, 1)}
		live := &appsv1.Deployment{}
		switch {
		case written["Deployment/"+d.Name]:
			// The cache may still hold the Deployment as it was before this write, with the
			// old generation observed: its status says nothing about what was just applied.
			// The write's own watch event brings the pair back to read it.
			ws.Message = justWritten
		case conn.Cached(ctx, client.ObjectKeyFromObject(d), live) == nil:
			deploymentStatus(&ws, live)
		}
		if podsErr == nil {
			var pods []corev1.Pod
			if pods, podsErr = conn.WorkloadPods(ctx, d.Namespace, d.Spec.Selector.MatchLabels); podsErr == nil {
				ws.Zones, ws.ZoneSkew = zoneCounts(eligibleZones(sc, nodes, &d.Spec.Template), nodes.PodsPerZone(pods))
				for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
					if c.TopologyKey == convoyv1.ZoneLabel {
						ws.MaxSkew = &c.MaxSkew
					}
				}
				if !available(ws) {
					ws.PodProblems = podProblems(pods)
				}
			}
		}
		ws.Message = workloadMessage(ws)
		out = append(out, ws)
	}
	for _, cj := range desired.CronJobs {
		// A cron workload is never waited for: between runs there is nothing to become ready.
		ws := convoyv1.WorkloadStatus{Name: cj.Name, Kind: "CronJob"}
		live := &batchv1.CronJob{}
		if conn.Cached(ctx, client.ObjectKeyFromObject(cj), live) == nil {
			ws.LastScheduleTime, ws.LastSuccessfulTime = live.Status.LastScheduleTime, live.Status.LastSuccessfulTime
			ws.ActiveJobs = int32(len(live.Status.Active))
		}
		out = append(out, ws)
	}
	if podsErr != nil {
		return out, podsErr.Error()
	}
	return out, ""
}

// deploymentStatus copies what the live Deployment says into ws: counts once the controller
// has seen the current spec, the revision and images, and a rollout past its deadline.
func deploymentStatus(ws *convoyv1.WorkloadStatus, live *appsv1.Deployment) {
	ws.Replicas = ptrOr(live.Spec.Replicas, 1)
	ws.Revision = live.Annotations[deploymentRevisionAnnotation]
	ws.Images = nil
	for _, c := range live.Spec.Template.Spec.Containers {
		ws.Images = append(ws.Images, c.Image)
	}
	if live.Status.ObservedGeneration < live.Generation {
		return
	}
	ws.ReadyReplicas = live.Status.ReadyReplicas
	ws.UpdatedReplicas = live.Status.UpdatedReplicas
	ws.AvailableReplicas = live.Status.AvailableReplicas
	for _, c := range live.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == progressDeadlineExceeded {
			ws.Failed = true
			ws.Message = c.Reason + ": " + c.Message
		}
	}
}

// The Deployment controller's revision annotation and the Progressing reason of a rollout
// past its progressDeadlineSeconds (k8s.io/kubernetes/pkg/controller/deployment/util).
const (
	deploymentRevisionAnnotation = "deployment.kubernetes.io/revision"
	progressDeadlineExceeded     = "ProgressDeadlineExceeded"
)

// podProblems counts the current pods that are not ready by reason, most frequent first,
// with one message for each reason.
func podProblems(pods []corev1.Pod) []convoyv1.PodProblem {
	index := map[string]int{}
	var out []convoyv1.PodProblem
	for i := range pods {
		if !remote.Current(&pods[i]) {
			continue
		}
		reason, message, ok := remote.PodProblem(&pods[i])
		if !ok {
			continue
		}
		if _, seen := index[reason]; !seen {
			index[reason] = len(out)
			out = append(out, convoyv1.PodProblem{Reason: reason, Message: message})
		}
		out[index[reason]].Pods++
	}
	slices.SortStableFunc(out, func(a, b convoyv1.PodProblem) int {
		if a.Pods != b.Pods {
			return int(b.Pods - a.Pods)
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return out
}

// workloadMessage says why a workload is not available: its failed rollout, then what its
// pods wait for. Empty for an available workload.
func workloadMessage(ws convoyv1.WorkloadStatus) string {
	if available(ws) && !ws.Failed {
		return ""
	}
	var parts []string
	if ws.Failed {
		parts = append(parts, ws.Message)
	}
	for _, p := range ws.PodProblems {
		part := fmt.Sprintf("%d %s", p.Pods, p.Reason)
		if p.Message != "" {
			part += " (" + p.Message + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

// eligibleZones are the zones a workload's pods can run in; a zone without pods counts for
// skew only if it is one of them. For a pod template that does not restrict its nodes they
// are the ServiceCluster's zones, or, when it lists none, the zones its nodes are in. A
// template with a nodeSelector or required node affinity gets the zones of the nodes it
// matches, as the scheduler's spreading does: a workload pinned to two zones is not
// imbalanced for having no pods in the third.
func eligibleZones(sc *convoyv1.ServiceCluster, nodes *remote.NodeZones, template *corev1.PodTemplateSpec) []string {
	spec := &template.Spec
	if len(spec.NodeSelector) == 0 && (spec.Affinity == nil || spec.Affinity.NodeAffinity == nil) {
		if len(sc.Spec.Zones) > 0 {
			return sc.Spec.Zones
		}
		return nodes.Zones(nil)
	}
	required := nodeaffinity.GetRequiredNodeAffinity(&corev1.Pod{Spec: *spec})
	return nodes.Zones(func(labels map[string]string) bool {
		ok, err := required.Match(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: labels}})
		return err == nil && ok
	})
}

// zoneCounts lists every zone with its pod count (zones holding pods but missing from zones
// are added) and the skew between the fullest and the emptiest. No zones, no skew.
func zoneCounts(zones []string, counts map[string]int32) ([]convoyv1.ZonePods, *int32) {
	all := map[string]int32{}
	for _, z := range zones {
		all[z] = 0
	}
	maps.Copy(all, counts)
	if len(all) == 0 {
		return nil, nil
	}
	out := make([]convoyv1.ZonePods, 0, len(all))
	lo, hi := int32(math.MaxInt32), int32(0)
	for _, z := range slices.Sorted(maps.Keys(all)) {
		n := all[z]
		out = append(out, convoyv1.ZonePods{Zone: z, Pods: n})
		lo, hi = min(lo, n), max(hi, n)
	}
	skew := hi - lo
	return out, &skew
}

// zoneImbalance describes a rolled-out workload whose pods are spread over zones more
// unevenly than its constraint allows, or returns "". A workload that is still rolling out
// or scaling is skipped: its skew is transient.
func zoneImbalance(cluster string, ws convoyv1.WorkloadStatus) string {
	if ws.MaxSkew == nil || ws.ZoneSkew == nil || *ws.ZoneSkew <= *ws.MaxSkew {
		return ""
	}
	if ws.UpdatedReplicas != ws.Replicas || ws.AvailableReplicas != ws.Replicas {
		return ""
	}
	parts := make([]string, 0, len(ws.Zones))
	for _, z := range ws.Zones {
		parts = append(parts, fmt.Sprintf("%s=%d", z.Zone, z.Pods))
	}
	return fmt.Sprintf("%s/%s: %s (skew %d > maxSkew %d)", cluster, ws.Name, strings.Join(parts, " "), *ws.ZoneSkew, *ws.MaxSkew)
}

// available reports whether a workload's Deployment is fully rolled out and available.
func available(w convoyv1.WorkloadStatus) bool {
	return w.UpdatedReplicas >= w.Replicas && w.AvailableReplicas >= w.Replicas
}

// notAvailable describes the workloads that are not fully rolled out and available, with
// why when it is known, and the ones whose rollout failed.
func notAvailable(ws []convoyv1.WorkloadStatus) (waiting, failed []string) {
	for _, w := range ws {
		desc := w.Name
		if w.Message != "" {
			desc += ": " + w.Message
		}
		switch {
		case w.Failed:
			failed = append(failed, desc)
		case !available(w):
			waiting = append(waiting, desc)
		}
	}
	return waiting, failed
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
