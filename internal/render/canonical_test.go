package render

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// canonicalSpec is a DestinationRule's spec as convoy reads it back from a service cluster:
// the remote cache decodes it into Istio's typed DestinationRule, whose spec is a protobuf
// message with protobuf's JSON mapping, and the no-op check converts that to unstructured.
func canonicalSpec(t *testing.T, dr *unstructured.Unstructured) any {
	t.Helper()
	raw, err := json.Marshal(dr.Object)
	if err != nil {
		t.Fatal(err)
	}
	var typed runtime.Object
	switch v := dr.GetAPIVersion(); v {
	case networkingv1.SchemeGroupVersion.String():
		typed = &networkingv1.DestinationRule{}
	case networkingv1beta1.SchemeGroupVersion.String():
		typed = &networkingv1beta1.DestinationRule{}
	default:
		t.Fatalf("unexpected apiVersion %s", v)
	}
	if err := json.Unmarshal(raw, typed); err != nil {
		t.Fatal(err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(typed)
	if err != nil {
		t.Fatal(err)
	}
	return u["spec"]
}

func samplePolicies(t *testing.T) (*convoyv1.ConnectionTuning, *convoyv1.LocalityLoadBalancingSpec) {
	t.Helper()
	gsp, llb := &convoyv1.GracefulShutdownPolicy{}, &convoyv1.LocalityLoadBalancing{}
	for file, into := range map[string]any{"gracefulshutdownpolicy.yaml": gsp, "localityloadbalancing.yaml": llb} {
		data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(data, into); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return gsp.Spec.ConnectionPool, &llb.Spec
}

// TestDestinationRuleIsCanonical checks that every rendered DestinationRule reads back from a
// cluster exactly as rendered. A value that protobuf's JSON mapping spells differently or
// omits (a proto3 zero such as maxRequestsPerConnection: 0, a duration as "0.1s") is stored
// by the API server and owned by convoy, but never compares equal to the live object, so
// convoy would re-apply the DestinationRule on every resync in every cluster.
func TestDestinationRuleIsCanonical(t *testing.T) {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	sampleTuning, sampleLocality := samplePolicies(t)
	tests := []struct {
		name     string
		pool     *convoyv1.ConnectionTuning
		locality *convoyv1.LocalityLoadBalancingSpec
		regions  []string
		// want is the expected trafficPolicy; nil checks canonical form only.
		want map[string]any
	}{
		{
			name: "the sample policies together", pool: sampleTuning, locality: sampleLocality,
			regions: []string{"ap-northeast-1", "ap-northeast-2"},
			want: map[string]any{
				"connectionPool": map[string]any{
					"tcp":  map[string]any{"tcpKeepalive": map[string]any{"time": "300s", "interval": "75s", "probes": int64(9)}},
					"http": map[string]any{"idleTimeout": "50s"}, // maxRequestsPerConnection: 0 is unset
				},
				"loadBalancer": map[string]any{"localityLbSetting": map[string]any{
					"enabled": true,
					"failover": []any{
						map[string]any{"from": "ap-northeast-1", "to": "ap-northeast-2"},
						map[string]any{"from": "ap-northeast-2", "to": "ap-northeast-1"},
					},
				}},
				"outlierDetection": map[string]any{
					"consecutive5xxErrors": int64(5), "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": int64(100),
				},
			},
		},
		{
			name: "maxRequestsPerConnection 0 (unlimited) is not rendered",
			pool: &convoyv1.ConnectionTuning{IdleTimeout: d(50 * time.Second), MaxRequestsPerConnection: ptr.To[int32](0)},
			want: map[string]any{"connectionPool": map[string]any{"http": map[string]any{"idleTimeout": "50s"}}},
		},
		{
			name: "maxRequestsPerConnection 1 disables keep-alive and is rendered",
			pool: &convoyv1.ConnectionTuning{MaxRequestsPerConnection: ptr.To[int32](1)},
			want: map[string]any{"connectionPool": map[string]any{"http": map[string]any{"maxRequestsPerConnection": int64(1)}}},
		},
		{
			name: "fractional durations",
			pool: &convoyv1.ConnectionTuning{
				TCPKeepalive: &convoyv1.TCPKeepalive{Time: metav1.Duration{Duration: 1500 * time.Millisecond}, Interval: metav1.Duration{Duration: 100 * time.Millisecond}, Probes: 1},
				IdleTimeout:  d(1500 * time.Microsecond),
			},
			locality: &convoyv1.LocalityLoadBalancingSpec{OutlierDetection: &convoyv1.OutlierDetection{
				Interval: d(250 * time.Millisecond), BaseEjectionTime: d(90 * time.Minute), MaxEjectionPercent: 50,
			}},
		},
		{
			name: "outlier detection as stored without admission defaulting",
			locality: &convoyv1.LocalityLoadBalancingSpec{OutlierDetection: &convoyv1.OutlierDetection{
				Consecutive5xxErrors: ptr.To[int32](0), ConsecutiveGatewayErrors: ptr.To[int32](0),
			}},
			want: map[string]any{
				"loadBalancer": map[string]any{"localityLbSetting": map[string]any{"enabled": true}},
				"outlierDetection": map[string]any{
					// Wrapper types: an explicit 0 is a value, not unset.
					"consecutive5xxErrors": int64(0), "consecutiveGatewayErrors": int64(0),
					"interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": int64(100),
				},
			},
		},
		{
			name: "distribute and minHealthPercent",
			locality: &convoyv1.LocalityLoadBalancingSpec{
				Distribute: []convoyv1.LocalityDistribution{{From: "ap-northeast-2/ap-northeast-2a/*", To: []convoyv1.LocalityWeight{
					{Locality: "ap-northeast-2/ap-northeast-2a/*", Weight: 80}, {Locality: "ap-northeast-2/ap-northeast-2b/*", Weight: 20},
				}}},
				OutlierDetection: &convoyv1.OutlierDetection{MaxEjectionPercent: 100, MinHealthPercent: 50},
			},
		},
		{
			name: "failoverPriority and explicit failover",
			locality: &convoyv1.LocalityLoadBalancingSpec{
				Failover:         []convoyv1.RegionFailover{{From: "us-east-1", To: "us-west-2"}},
				FailoverPriority: []string{"topology.kubernetes.io/region", "topology.kubernetes.io/zone"},
			},
		},
	}
	project := testProject()
	for _, tt := range tests {
		for _, version := range []string{"v1", "v1beta1"} {
			t.Run(tt.name+"/"+version, func(t *testing.T) {
				dr := destinationRule(project, "shop", "api", version, trafficPolicy(tt.pool, tt.locality, tt.regions))
				if diff := cmp.Diff(canonicalSpec(t, dr), dr.Object["spec"]); diff != "" {
					t.Errorf("rendered spec differs from what the cluster returns (-read back +rendered):\n%s", diff)
				}
				if tt.want == nil {
					return
				}
				spec := dr.Object["spec"].(map[string]any)
				if diff := cmp.Diff(tt.want, spec["trafficPolicy"]); diff != "" {
					t.Errorf("trafficPolicy (-want +got):\n%s", diff)
				}
			})
		}
	}
}
