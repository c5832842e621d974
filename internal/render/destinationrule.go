package render

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// destinationRule renders a workload's DestinationRule in the given networking.istio.io version.
// One DestinationRule per workload carries both policies: Istio merges nothing across
// DestinationRules for one host, so a second one would be ignored.
func destinationRule(project *convoyv1.Project, ns, workload, version string, trafficPolicy map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/" + version,
		"kind":       "DestinationRule",
		"metadata": map[string]any{
			"name":      workload,
			"namespace": ns,
			"labels":    toAny(workloadLabels(project, workload)),
		},
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
	if p.MaxRequestsPerConnection != nil {
		http["maxRequestsPerConnection"] = int64(*p.MaxRequestsPerConnection)
	}
	if len(http) > 0 {
		out["http"] = http
	}
	return out
}

// protoDuration formats a duration as protobuf's JSON mapping does: seconds with a fraction.
func protoDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
