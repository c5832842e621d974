package render

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

func localityPolicy(name string, spec convoyv1.LocalityLoadBalancingSpec) *convoyv1.LocalityLoadBalancing {
	return &convoyv1.LocalityLoadBalancing{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 3}, Spec: spec}
}

// defaultedOutlier is what admission stores for outlierDetection: {}.
var defaultedOutlier = &convoyv1.OutlierDetection{
	Consecutive5xxErrors: ptr.To[int32](5),
	Interval:             &metav1.Duration{Duration: 10 * time.Second},
	BaseEjectionTime:     &metav1.Duration{Duration: 30 * time.Second},
	MaxEjectionPercent:   100,
}

var wantOutlier = map[string]any{
	"consecutive5xxErrors": int64(5), "interval": "10s", "baseEjectionTime": "30s",
	"maxEjectionPercent": int64(100),
}

func TestLocalityDestinationRule(t *testing.T) {
	pool := &convoyv1.ConnectionTuning{IdleTimeout: &metav1.Duration{Duration: 50 * time.Second}}
	tests := []struct {
		name    string
		spec    convoyv1.LocalityLoadBalancingSpec
		regions []string
		pool    *convoyv1.ConnectionTuning
		want    map[string]any // trafficPolicy
	}{{
		name:    "default: ring failover over the Project's regions",
		spec:    convoyv1.LocalityLoadBalancingSpec{OutlierDetection: defaultedOutlier},
		regions: []string{"ap-northeast-2", "ap-northeast-1", "ap-northeast-2", "us-east-1"},
		want: map[string]any{
			"loadBalancer": map[string]any{"localityLbSetting": map[string]any{"enabled": true, "failover": []any{
				map[string]any{"from": "ap-northeast-1", "to": "ap-northeast-2"},
				map[string]any{"from": "ap-northeast-2", "to": "us-east-1"},
				map[string]any{"from": "us-east-1", "to": "ap-northeast-1"},
			}}},
			"outlierDetection": wantOutlier,
		},
	}, {
		name:    "default with one region: stay local, nothing to fail over to",
		spec:    convoyv1.LocalityLoadBalancingSpec{OutlierDetection: defaultedOutlier},
		regions: []string{"ap-northeast-2", "ap-northeast-2"},
		want: map[string]any{
			"loadBalancer":     map[string]any{"localityLbSetting": map[string]any{"enabled": true}},
			"outlierDetection": wantOutlier,
		},
	}, {
		name: "explicit failover wins over the derived ring",
		spec: convoyv1.LocalityLoadBalancingSpec{
			Failover:         []convoyv1.RegionFailover{{From: "ap-northeast-2", To: "ap-northeast-1"}},
			OutlierDetection: &convoyv1.OutlierDetection{ConsecutiveGatewayErrors: ptr.To[int32](3), MaxEjectionPercent: 50, MinHealthPercent: 20},
		},
		regions: []string{"ap-northeast-2", "us-east-1"},
		want: map[string]any{
			"loadBalancer": map[string]any{"localityLbSetting": map[string]any{"enabled": true, "failover": []any{
				map[string]any{"from": "ap-northeast-2", "to": "ap-northeast-1"},
			}}},
			"outlierDetection": map[string]any{
				"consecutive5xxErrors": int64(5), "consecutiveGatewayErrors": int64(3), "interval": "10s", "baseEjectionTime": "30s",
				"maxEjectionPercent": int64(50), "minHealthPercent": int64(20),
			},
		},
	}, {
		name: "distribute without outlier detection, composed with connection tuning",
		spec: convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{{
			From: "ap-northeast-2/ap-northeast-2a/*",
			To:   []convoyv1.LocalityWeight{{Locality: "ap-northeast-2/ap-northeast-2a/*", Weight: 80}, {Locality: "ap-northeast-2/ap-northeast-2b/*", Weight: 20}},
		}}},
		regions: []string{"ap-northeast-2", "ap-northeast-1"},
		pool:    pool,
		want: map[string]any{
			"connectionPool": map[string]any{"http": map[string]any{"idleTimeout": "50s"}},
			"loadBalancer": map[string]any{"localityLbSetting": map[string]any{"enabled": true, "distribute": []any{
				map[string]any{"from": "ap-northeast-2/ap-northeast-2a/*", "to": map[string]any{"ap-northeast-2/ap-northeast-2a/*": int64(80), "ap-northeast-2/ap-northeast-2b/*": int64(20)}},
			}}},
		},
	}, {
		name: "failoverPriority, no derived failover",
		spec: convoyv1.LocalityLoadBalancingSpec{
			FailoverPriority: []string{"topology.kubernetes.io/region", "topology.kubernetes.io/zone"},
			OutlierDetection: defaultedOutlier,
		},
		regions: []string{"ap-northeast-2", "ap-northeast-1"},
		want: map[string]any{
			"loadBalancer": map[string]any{"localityLbSetting": map[string]any{"enabled": true,
				"failoverPriority": []any{"topology.kubernetes.io/region", "topology.kubernetes.io/zone"}}},
			"outlierDetection": wantOutlier,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := testProject(func(p *convoyv1.Project) {
				p.Spec.LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "zonal"}
				if tt.pool != nil {
					p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
				}
			})
			sc := cluster("seoul-1", nil)
			sc.Status.Capabilities = convoyv1.ClusterCapabilities{PreStopSleep: true, DestinationRuleVersions: []string{"v1", "v1beta1"}}
			policies := Policies{
				LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{"zonal": localityPolicy("zonal", tt.spec)},
				GracefulShutdown:      map[string]*convoyv1.GracefulShutdownPolicy{"web": shutdownPolicy(both(sleepFor(5), func(p *convoyv1.GracefulShutdownPolicySpec) { p.ConnectionPool = tt.pool }))},
				Regions:               tt.regions,
			}
			got, err := ForCluster(project, sc, policies)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.DestinationRules) != 1 {
				t.Fatalf("want one DestinationRule for the workload, got %d", len(got.DestinationRules))
			}
			spec := got.DestinationRules[0].Object["spec"].(map[string]any)
			if spec["host"] != "api.shop.svc.cluster.local" {
				t.Errorf("host = %v", spec["host"])
			}
			if diff := cmp.Diff(tt.want, spec["trafficPolicy"]); diff != "" {
				t.Errorf("trafficPolicy (-want +got):\n%s", diff)
			}
			if got.Services[0].Spec.TrafficDistribution != nil {
				t.Errorf("trafficDistribution set although Istio handles locality: %v", *got.Services[0].Spec.TrafficDistribution)
			}
			wantApplied := convoyv1.AppliedPolicy{Kind: "LocalityLoadBalancing", Name: "zonal", Generation: 3}
			if !containsApplied(got.AppliedPolicies, wantApplied) {
				t.Errorf("appliedPolicies %v lack %v", got.AppliedPolicies, wantApplied)
			}
		})
	}
}

func containsApplied(list []convoyv1.AppliedPolicy, want convoyv1.AppliedPolicy) bool {
	for _, a := range list {
		if a == want {
			return true
		}
	}
	return false
}

func TestLocalityWithoutIstio(t *testing.T) {
	tests := []struct {
		name        string
		supported   string
		want        *string
		wantWarning string
	}{
		{"PreferSameZone where the server has it", "PreferSameZone", ptr.To("PreferSameZone"), "uses trafficDistribution PreferSameZone instead"},
		{"PreferClose on older servers", "PreferClose", ptr.To("PreferClose"), "uses trafficDistribution PreferClose instead"},
		{"neither: the status says it has no effect", "", nil, "has no effect on Service api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := testProject(func(p *convoyv1.Project) { p.Spec.LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "zonal"} })
			sc := cluster("seoul-1", nil)
			sc.Status.Capabilities = convoyv1.ClusterCapabilities{TrafficDistribution: tt.supported}
			got, err := ForCluster(project, sc, Policies{LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{
				"zonal": localityPolicy("zonal", convoyv1.LocalityLoadBalancingSpec{OutlierDetection: defaultedOutlier}),
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.DestinationRules) != 0 {
				t.Fatalf("no Istio, but %d DestinationRules", len(got.DestinationRules))
			}
			if diff := cmp.Diff(tt.want, got.Services[0].Spec.TrafficDistribution); diff != "" {
				t.Errorf("trafficDistribution (-want +got):\n%s", diff)
			}
			if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], tt.wantWarning) {
				t.Errorf("warnings = %q, want one containing %q", got.Warnings, tt.wantWarning)
			}
		})
	}
}

func TestZoneSpread(t *testing.T) {
	selector := map[string]string{"convoy.dev/project-namespace": "team-a", "convoy.dev/project-name": "shop", "convoy.dev/workload": "api"}
	constraint := func(mutate func(*corev1.TopologySpreadConstraint)) []corev1.TopologySpreadConstraint {
		c := corev1.TopologySpreadConstraint{
			MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: selector}, MatchLabelKeys: []string{"pod-template-hash"},
			MinDomains: ptr.To[int32](3),
		}
		if mutate != nil {
			mutate(&c)
		}
		return []corev1.TopologySpreadConstraint{c}
	}
	hostSpread := corev1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway}
	userZone := corev1.TopologySpreadConstraint{MaxSkew: 2, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway}
	tests := []struct {
		name         string
		spread       convoyv1.ZoneSpread
		zones        []string
		template     []corev1.TopologySpreadConstraint
		nodeSelector map[string]string
		want         []corev1.TopologySpreadConstraint
		wantWarning  bool
	}{
		{name: "default: DoNotSchedule, maxSkew 1, minDomains = cluster zones", zones: []string{"a", "b", "c"}, want: constraint(nil)},
		{name: "one zone: no minDomains", zones: []string{"a"}, want: constraint(func(c *corev1.TopologySpreadConstraint) { c.MinDomains = nil })},
		{name: "ScheduleAnyway cannot carry minDomains", zones: []string{"a", "b", "c"},
			spread: convoyv1.ZoneSpread{MaxSkew: 2, WhenUnsatisfiable: corev1.ScheduleAnyway},
			want: constraint(func(c *corev1.TopologySpreadConstraint) {
				c.MaxSkew, c.WhenUnsatisfiable, c.MinDomains = 2, corev1.ScheduleAnyway, nil
			})},
		{name: "switched off", zones: []string{"a", "b"}, spread: convoyv1.ZoneSpread{Enabled: ptr.To(false)}},
		{name: "a nodeSelector may reach fewer zones: no minDomains", zones: []string{"a", "b", "c"}, nodeSelector: map[string]string{"pool": "spot"},
			want: constraint(func(c *corev1.TopologySpreadConstraint) { c.MinDomains = nil })},
		{name: "other constraints of the template are kept", zones: []string{"a", "b", "c"},
			template: []corev1.TopologySpreadConstraint{hostSpread},
			want:     append([]corev1.TopologySpreadConstraint{hostSpread}, constraint(nil)...)},
		{name: "the template's own zone constraint wins, with a warning", zones: []string{"a", "b", "c"},
			template: []corev1.TopologySpreadConstraint{userZone}, want: []corev1.TopologySpreadConstraint{userZone}, wantWarning: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := testProject(func(p *convoyv1.Project) {
				p.Spec.LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "zonal"}
				p.Spec.Workloads[0].Template.Spec.TopologySpreadConstraints = tt.template
				p.Spec.Workloads[0].Template.Spec.NodeSelector = tt.nodeSelector
			})
			sc := cluster("seoul-1", nil)
			sc.Spec.Zones = tt.zones
			sc.Status.Capabilities.DestinationRuleVersions = []string{"v1"}
			got, err := ForCluster(project, sc, Policies{LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{
				"zonal": localityPolicy("zonal", convoyv1.LocalityLoadBalancingSpec{OutlierDetection: defaultedOutlier, ZoneSpread: tt.spread}),
			}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Deployments[0].Spec.Template.Spec.TopologySpreadConstraints); diff != "" {
				t.Errorf("topologySpreadConstraints (-want +got):\n%s", diff)
			}
			if (len(got.Warnings) > 0) != tt.wantWarning {
				t.Errorf("warnings = %q", got.Warnings)
			}
		})
	}
}

func TestLocalityPolicyPerWorkload(t *testing.T) {
	project := testProject(func(p *convoyv1.Project) {
		p.Spec.LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "zonal"}
		p.Spec.Workloads = append(p.Spec.Workloads, *p.Spec.Workloads[0].DeepCopy())
		p.Spec.Workloads[1].Name = "worker"
		p.Spec.Workloads[1].LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "missing"}
	})
	sc := cluster("seoul-1", nil)
	_, err := ForCluster(project, sc, Policies{LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{
		"zonal": localityPolicy("zonal", convoyv1.LocalityLoadBalancingSpec{}),
	}})
	if err == nil || !strings.Contains(err.Error(), `spec.workloads[1] (worker): LocalityLoadBalancing "missing" not found`) {
		t.Fatalf("err = %v, want the workload's own reference to win and be reported", err)
	}
}

// BenchmarkForClusterWithPolicies renders 10 workloads with a GracefulShutdownPolicy and a
// LocalityLoadBalancing: PreStop, zone spread and a composed DestinationRule per workload.
func BenchmarkForClusterWithPolicies(b *testing.B) {
	p := testProject(func(p *convoyv1.Project) {
		base := p.Spec.Workloads[0]
		p.Spec.Workloads = nil
		for i := range 10 {
			w := *base.DeepCopy()
			w.Name = "w" + string(rune('a'+i))
			p.Spec.Workloads = append(p.Spec.Workloads, w)
		}
		p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
		p.Spec.LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "zonal"}
	})
	sc := cluster("seoul-1", nil)
	sc.Spec.Zones = []string{"a", "b", "c"}
	sc.Status.Capabilities = convoyv1.ClusterCapabilities{PreStopSleep: true, DestinationRuleVersions: []string{"v1"}}
	policies := Policies{
		GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": shutdownPolicy(both(sleepFor(5), func(p *convoyv1.GracefulShutdownPolicySpec) {
			p.ConnectionPool = &convoyv1.ConnectionTuning{IdleTimeout: &metav1.Duration{Duration: 50 * time.Second}}
		}))},
		LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{"zonal": localityPolicy("zonal", convoyv1.LocalityLoadBalancingSpec{OutlierDetection: defaultedOutlier})},
		Regions:               []string{"ap-northeast-2", "ap-northeast-1", "us-east-1"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ForCluster(p, sc, policies); err != nil {
			b.Fatal(err)
		}
	}
}
