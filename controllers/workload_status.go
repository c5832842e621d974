package controllers

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
	"github.com/convoy-dev/convoy/internal/render"
)

// workloadStatuses reads each workload's live Deployment, and where its pods run, from the
// cluster's caches. Pods per zone are extra information: when they cannot be read, the
// returned warning says why and the rest of the status stands.
func workloadStatuses(ctx context.Context, conn *remote.Connection, sc *convoyv1.ServiceCluster, desired *render.ClusterObjects) ([]convoyv1.WorkloadStatus, string) {
	nodes, zonesErr := conn.NodeZones(ctx)
	out := make([]convoyv1.WorkloadStatus, 0, len(desired.Deployments))
	for _, d := range desired.Deployments {
		// A Deployment not (yet) in the cache wants its replicas and has none available.
		ws := convoyv1.WorkloadStatus{Name: d.Name, Replicas: ptrOr(d.Spec.Replicas, 1)}
		live, err := conn.Deployment(ctx, client.ObjectKeyFromObject(d))
		if err == nil {
			ws.Replicas = ptrOr(live.Spec.Replicas, 1)
			if live.Status.ObservedGeneration >= live.Generation {
				ws.ReadyReplicas = live.Status.ReadyReplicas
				ws.UpdatedReplicas = live.Status.UpdatedReplicas
				ws.AvailableReplicas = live.Status.AvailableReplicas
			}
		}
		out = append(out, ws)
		if zonesErr != nil {
			continue
		}
		var counts map[string]int32
		if counts, zonesErr = conn.PodsPerZone(ctx, d.Namespace, d.Spec.Selector.MatchLabels, nodes); zonesErr != nil {
			continue
		}
		w := &out[len(out)-1]
		w.Zones, w.ZoneSkew = zoneCounts(eligibleZones(sc, nodes, &d.Spec.Template), counts)
		for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
			if c.TopologyKey == convoyv1.ZoneLabel {
				w.MaxSkew = &c.MaxSkew
			}
		}
	}
	if zonesErr != nil {
		return out, zonesErr.Error()
	}
	return out, ""
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

// notAvailable names the workloads whose Deployment is not fully rolled out and available.
func notAvailable(ws []convoyv1.WorkloadStatus) []string {
	var names []string
	for _, w := range ws {
		if w.UpdatedReplicas < w.Replicas || w.AvailableReplicas < w.Replicas {
			names = append(names, w.Name)
		}
	}
	return names
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
