package render

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// destinationRule renders a workload's DestinationRule in the given networking.istio.io version.
// One DestinationRule per workload carries both policies: Istio merges nothing across
// DestinationRules for one host, so a second one would be ignored.
func destinationRule(project *convoyv1.Project, ns, workload, version string, trafficPolicy map[string]any) *unstructured.Unstructured {
	metadata := map[string]any{
		"name":      workload,
		"namespace": ns,
		"labels":    toAny(objectLabels(project, workload)),
	}
	if a := objectAnnotations(project); a != nil {
		metadata["annotations"] = toAny(a)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/" + version,
		"kind":       "DestinationRule",
		"metadata":   metadata,
		"spec": map[string]any{
			"host":          workload + "." + ns + ".svc.cluster.local",
			"trafficPolicy": trafficPolicy,
		},
	}}
}

// trafficPolicy composes the DestinationRule's trafficPolicy from a GracefulShutdownPolicy's
// connection tuning and a LocalityLoadBalancing; either may be nil. It is built as
// unstructured content because Istio's specs are protobuf messages: convoy never compares
// them with reflection.
func trafficPolicy(pool *convoyv1.ConnectionTuning, locality *convoyv1.LocalityLoadBalancingSpec, regions []string) map[string]any {
	out := map[string]any{}
	if pool != nil {
		out["connectionPool"] = connectionPool(pool)
	}
	if locality != nil {
		out["loadBalancer"] = map[string]any{"localityLbSetting": localityLbSetting(locality, regions)}
		if locality.OutlierDetection != nil {
			out["outlierDetection"] = outlierDetection(locality.OutlierDetection)
		}
	}
	return out
}

func connectionPool(p *convoyv1.ConnectionTuning) map[string]any {
	out := map[string]any{}
	if k := p.TCPKeepalive; k != nil {
		out["tcp"] = map[string]any{"tcpKeepalive": map[string]any{
			"time": protoDuration(k.Time.Duration), "interval": protoDuration(k.Interval.Duration), "probes": int64(k.Probes),
		}}
	}
	http := map[string]any{}
	if p.IdleTimeout != nil {
		http["idleTimeout"] = protoDuration(p.IdleTimeout.Duration)
	}
	// A plain proto3 integer: 0 (unlimited, Envoy's default) is the unset value, which
	// protobuf's JSON mapping never writes. The API server stores an applied 0 and records
	// convoy as its owner, but the live DestinationRule is read back through Istio's typed
	// spec, which drops it, so the owned field would never compare equal and every resync
	// would re-apply the DestinationRule. Leaving it out means the same to Istio.
	if n := ptr.Deref(p.MaxRequestsPerConnection, 0); n != 0 {
		http["maxRequestsPerConnection"] = int64(n)
	}
	if len(http) > 0 {
		out["http"] = http
	}
	return out
}

// protoDuration formats a duration exactly as protobuf's JSON mapping does (and therefore as
// the live DestinationRule reads back): whole seconds, or 3, 6 or 9 fractional digits. Any
// other spelling ("0.1s" for "0.100s") would never compare equal and convoy would re-apply
// the DestinationRule on every resync.
func protoDuration(d time.Duration) string {
	secs, nanos := int64(d/time.Second), int64(d%time.Second)
	switch {
	case nanos == 0:
		return fmt.Sprintf("%ds", secs)
	case nanos%1e6 == 0:
		return fmt.Sprintf("%d.%03ds", secs, nanos/1e6)
	case nanos%1e3 == 0:
		return fmt.Sprintf("%d.%06ds", secs, nanos/1e3)
	default:
		return fmt.Sprintf("%d.%09ds", secs, nanos)
	}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
