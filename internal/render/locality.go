package render

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// Istio's outlier detection defaults, used when a policy was stored without admission
// defaulting (for example in unit tests).
const (
	defaultConsecutive5xxErrors = 5
	defaultOutlierInterval      = 10 * time.Second
	defaultBaseEjectionTime     = 30 * time.Second
	// convoy's own default (the CRD's), not Istio's 10.
	defaultMaxEjectionPercent = 100
)

// localityLbSetting renders trafficPolicy.loadBalancer.localityLbSetting. Without explicit
// distribute, failover or failoverPriority, each region fails over to the next one (in name
// order) among regions, the regions of every cluster the Project runs in.
func localityLbSetting(spec *convoyv1.LocalityLoadBalancingSpec, regions []string) map[string]any {
	out := map[string]any{"enabled": true}
	if len(spec.Distribute) > 0 {
		distribute := make([]any, 0, len(spec.Distribute))
		for _, d := range spec.Distribute {
			to := make(map[string]any, len(d.To))
			for _, w := range d.To {
				to[string(w.Locality)] = int64(w.Weight)
			}
			distribute = append(distribute, map[string]any{"from": string(d.From), "to": to})
		}
		out["distribute"] = distribute
	}
	failover := spec.Failover
	if len(spec.Distribute) == 0 && len(spec.Failover) == 0 && len(spec.FailoverPriority) == 0 {
		failover = RegionRing(regions)
	}
	if len(failover) > 0 {
		entries := make([]any, 0, len(failover))
		for _, f := range failover {
			entries = append(entries, map[string]any{"from": f.From, "to": f.To})
		}
		out["failover"] = entries
	}
	if len(spec.FailoverPriority) > 0 {
		out["failoverPriority"] = toAnySlice(spec.FailoverPriority)
	}
	return out
}

// RegionRing is the default failover: every region hands its traffic to the next region in
// name order, the last one to the first. One region (or none) has nowhere to fail over to.
func RegionRing(regions []string) []convoyv1.RegionFailover {
	sorted := slices.Compact(slices.Sorted(slices.Values(regions)))
	sorted = slices.DeleteFunc(sorted, func(r string) bool { return r == "" })
	if len(sorted) < 2 {
		return nil
	}
	ring := make([]convoyv1.RegionFailover, 0, len(sorted))
	for i, r := range sorted {
		ring = append(ring, convoyv1.RegionFailover{From: r, To: sorted[(i+1)%len(sorted)]})
	}
	return ring
}

func outlierDetection(od *convoyv1.OutlierDetection) map[string]any {
	out := map[string]any{
		"consecutive5xxErrors": int64(ptr.Deref(od.Consecutive5xxErrors, defaultConsecutive5xxErrors)),
		"interval":             protoDuration(durationOr(od.Interval, defaultOutlierInterval)),
		"baseEjectionTime":     protoDuration(durationOr(od.BaseEjectionTime, defaultBaseEjectionTime)),
		// Admission defaults 0 to 100 and rejects an explicit 0; rendering 0 (a proto3
		// zero, omitted when read back) would make every resync a write.
		"maxEjectionPercent": int64(cmp.Or(od.MaxEjectionPercent, defaultMaxEjectionPercent)),
	}
	// Plain proto3 integers: 0 is "unset" and the live object omits it, so rendering it would
	// make convoy rewrite the DestinationRule on every resync.
	if od.MinHealthPercent != 0 {
		out["minHealthPercent"] = int64(od.MinHealthPercent)
	}
	if od.ConsecutiveGatewayErrors != nil {
		out["consecutiveGatewayErrors"] = int64(*od.ConsecutiveGatewayErrors)
	}
	return out
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

// applyZoneSpread adds a topology spread constraint over zones to the pod template. A
// constraint the template already has on the zone key wins: the returned warning says so.
func applyZoneSpread(spec *corev1.PodSpec, selector map[string]string, zs convoyv1.ZoneSpread, clusterZones int) string {
	if !zs.IsEnabled() {
		return ""
	}
	for _, c := range spec.TopologySpreadConstraints {
		if c.TopologyKey == convoyv1.ZoneLabel {
			return "the pod template's own topologySpreadConstraint on " + convoyv1.ZoneLabel + " is kept instead of the policy's zone spread"
		}
	}
	c := corev1.TopologySpreadConstraint{
		MaxSkew:           max(zs.MaxSkew, 1),
		TopologyKey:       convoyv1.ZoneLabel,
		WhenUnsatisfiable: zs.WhenUnsatisfiable,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: maps.Clone(selector)},
		// Counting only pods of the same ReplicaSet keeps a rollout from being skewed by the
		// old pods it is replacing.
		MatchLabelKeys: []string{"pod-template-hash"},
	}
	if c.WhenUnsatisfiable == "" {
		c.WhenUnsatisfiable = corev1.DoNotSchedule
	}
	// minDomains makes an empty zone count (the global minimum is then 0), so pods cannot
	// pile up in the zones that happen to have nodes; it only exists for DoNotSchedule. A
	// template that restricts its nodes may reach fewer zones than the cluster has, and
	// minDomains would then hold most of its pods Pending.
	restricted := len(spec.NodeSelector) > 0 || (spec.Affinity != nil && spec.Affinity.NodeAffinity != nil)
	if c.WhenUnsatisfiable == corev1.DoNotSchedule && clusterZones > 1 && !restricted {
		c.MinDomains = ptr.To(int32(clusterZones))
	}
	spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, c)
	return ""
}

// trafficDistributionFallback keeps Service traffic in its zone where no DestinationRule can
// be written. It returns the warning that goes into the Project's status.
func trafficDistributionFallback(svc *corev1.Service, policy string, supported string) string {
	if supported == "" {
		return fmt.Sprintf("LocalityLoadBalancing %s has no effect on Service %s: the cluster serves no networking.istio.io DestinationRule and its Kubernetes version has no Service trafficDistribution", policy, svc.Name)
	}
	svc.Spec.TrafficDistribution = ptr.To(supported)
	return fmt.Sprintf("LocalityLoadBalancing %s: the cluster serves no networking.istio.io DestinationRule, so Service %s uses trafficDistribution %s instead (zone-local routing without failover rules or outlier detection)", policy, svc.Name, supported)
}

func toAnySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
