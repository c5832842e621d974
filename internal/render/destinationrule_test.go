package render

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

func TestConnectionPoolDestinationRule(t *testing.T) {
	pool := &convoyv1.ConnectionTuning{
		TCPKeepalive:             &convoyv1.TCPKeepalive{Time: metav1.Duration{Duration: 300 * time.Second}, Interval: metav1.Duration{Duration: 1500 * time.Millisecond}, Probes: 9},
		IdleTimeout:              &metav1.Duration{Duration: 50 * time.Second},
		MaxRequestsPerConnection: ptr.To[int32](100),
		AppIdleTimeout:           &metav1.Duration{Duration: 60 * time.Second},
	}
	wantSpec := map[string]any{
		"host": "api.shop.svc.cluster.local",
		"trafficPolicy": map[string]any{"connectionPool": map[string]any{
			"tcp":  map[string]any{"tcpKeepalive": map[string]any{"time": "300s", "interval": "1.500s", "probes": int64(9)}},
			"http": map[string]any{"idleTimeout": "50s", "maxRequestsPerConnection": int64(100)},
		}},
	}
	tests := []struct {
		name        string
		served      []string
		ports       bool
		wantVersion string // "" = no DestinationRule
		wantWarning bool
	}{
		{"v1 preferred", []string{"v1", "v1alpha3", "v1beta1"}, true, "v1", false},
		{"v1beta1-only cluster", []string{"v1alpha3", "v1beta1"}, true, "v1beta1", false},
		{"no Istio: nothing rendered, the status says why", nil, true, "", true},
		{"no Service, no DestinationRule", []string{"v1"}, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := testProject(func(p *convoyv1.Project) {
				p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
				if !tt.ports {
					p.Spec.Workloads[0].Ports = nil
				}
			})
			sc := cluster("seoul-1", nil)
			sc.Status.Capabilities = convoyv1.ClusterCapabilities{PreStopSleep: true, DestinationRuleVersions: tt.served}
			policy := shutdownPolicy(both(sleepFor(5), func(p *convoyv1.GracefulShutdownPolicySpec) { p.ConnectionPool = pool }))
			got, err := ForCluster(project, sc, Policies{GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": policy}})
			if err != nil {
				t.Fatal(err)
			}
			if (len(got.Warnings) > 0) != tt.wantWarning {
				t.Errorf("warnings = %q", got.Warnings)
			}
			if tt.wantVersion == "" {
				if len(got.DestinationRules) != 0 {
					t.Fatalf("want no DestinationRule, got %v", got.DestinationRules)
				}
				return
			}
			if len(got.DestinationRules) != 1 {
				t.Fatalf("want 1 DestinationRule, got %d", len(got.DestinationRules))
			}
			dr := got.DestinationRules[0]
			if dr.GetAPIVersion() != "networking.istio.io/"+tt.wantVersion || dr.GetKind() != "DestinationRule" {
				t.Errorf("apiVersion/kind = %s/%s", dr.GetAPIVersion(), dr.GetKind())
			}
			if dr.GetName() != "api" || dr.GetNamespace() != "shop" {
				t.Errorf("name = %s/%s", dr.GetNamespace(), dr.GetName())
			}
			if diff := cmp.Diff(withWorkload(objectOwner(), "api"), dr.GetLabels()); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantSpec, dr.Object["spec"]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

// protoDuration must match protobuf's JSON mapping byte for byte: the live DestinationRule
// is read back through it, and any other spelling makes every resync a write.
func TestProtoDurationMatchesProtoJSON(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 100 * time.Millisecond, 1500 * time.Millisecond,
		10 * time.Second, 300 * time.Second, 1500 * time.Microsecond, 1234567 * time.Nanosecond, 90 * time.Minute} {
		want, err := protojson.Marshal(durationpb.New(d))
		if err != nil {
			t.Fatal(err)
		}
		if got := `"` + protoDuration(d) + `"`; got != string(want) {
			t.Errorf("protoDuration(%v) = %s, protojson = %s", d, got, want)
		}
	}
}
