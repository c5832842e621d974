package join

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// The kubeconfig join writes must be one the manager accepts.
func TestKubeconfigIsAccepted(t *testing.T) {
	cfg, err := remote.RESTConfigFromKubeconfig(kubeconfigFor("seoul-1", "https://10.0.0.1:6443", []byte("ca"), "tok"))
	if err != nil {
		t.Fatalf("convoy refuses the kubeconfig join writes: %v", err)
	}
	if cfg.Host != "https://10.0.0.1:6443" || cfg.BearerToken != "tok" || string(cfg.CAData) != "ca" {
		t.Errorf("config = host %q token %q ca %q", cfg.Host, cfg.BearerToken, cfg.CAData)
	}
}

func node(name, region, zone string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelTopologyRegion: region, corev1.LabelTopologyZone: zone}}}
}

func TestTopology(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nodes   []*corev1.Node
		region  string
		zones   []string
		wantErr string
	}{
		{"one region", []*corev1.Node{node("a", "eu", "eu-b"), node("b", "eu", "eu-a"), node("c", "eu", "eu-a")}, "eu", []string{"eu-a", "eu-b"}, ""},
		{"no labels", []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}, "", nil, ""},
		{"two regions", []*corev1.Node{node("a", "eu", "eu-a"), node("b", "us", "us-a")}, "", nil, "several regions ([eu us]): pass --region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(convoyscheme.New())
			for _, n := range tc.nodes {
				b = b.WithObjects(n)
			}
			region, zones, err := topology(context.Background(), b.Build())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || region != tc.region || strings.Join(zones, ",") != strings.Join(tc.zones, ",") {
				t.Errorf("topology = %q %v %v, want %q %v", region, zones, err, tc.region, tc.zones)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	sc := &convoyv1.ServiceCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "seoul-1"},
		Spec:       convoyv1.ServiceClusterSpec{Region: "ap-northeast-2", AccessScope: convoyv1.AccessScopeManagedNamespaces},
		Status: convoyv1.ServiceClusterStatus{
			LastContactTime: &metav1.Time{Time: now.Add(-90 * time.Second)},
			Conditions:      []metav1.Condition{{Type: convoyv1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Connected", Message: "Connected to Kubernetes v1.36.3"}},
		},
	}
	p := &convoyv1.Project{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "shop"},
		Status: convoyv1.ProjectStatus{
			ReadyClusters: "0/1",
			Conditions:    []metav1.Condition{{Type: convoyv1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "WorkloadFailed", Message: "api failed in seoul-1"}},
			Clusters: []convoyv1.ProjectClusterStatus{{Name: "seoul-1", Reason: "WorkloadFailed", Message: "ProgressDeadlineExceeded",
				Workloads: []convoyv1.WorkloadStatus{{Name: "api", Replicas: 3, AvailableReplicas: 1}, {Name: "report", Kind: "CronJob"}}}},
		},
	}
	c := fake.NewClientBuilder().WithScheme(convoyscheme.New()).WithObjects(sc, p).WithStatusSubresource(sc, p).Build()
	var out bytes.Buffer
	if err := Status(context.Background(), c, "", now, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"seoul-1  ap-northeast-2  ManagedNamespaces  True   Connected  90s ago",
		"team/shop  *        WorkloadFailed  0/1",
		"seoul-1  WorkloadFailed  api 1/3, report (cron)  ProgressDeadlineExceeded",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	if err := Status(context.Background(), c, "team/nope", now, &out); err == nil || !strings.Contains(err.Error(), "no Project team/nope") {
		t.Errorf("unknown Project: err = %v", err)
	}
}

func TestWithRegionLabel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		region string
		want   map[string]string
	}{
		{"added", map[string]string{"env": "prod"}, "ap-northeast-2", map[string]string{"env": "prod", convoyv1.RegionLabel: "ap-northeast-2"}},
		{"added to no labels", nil, "ap-northeast-2", map[string]string{convoyv1.RegionLabel: "ap-northeast-2"}},
		{"the caller's label wins", map[string]string{convoyv1.RegionLabel: "seoul"}, "ap-northeast-2", map[string]string{convoyv1.RegionLabel: "seoul"}},
		{"no region, no label", map[string]string{"env": "prod"}, "", map[string]string{"env": "prod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := maps.Clone(tc.labels)
			if diff := cmp.Diff(tc.want, withRegionLabel(tc.labels, tc.region)); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if !maps.Equal(in, tc.labels) {
				t.Errorf("the caller's map was modified: %v", tc.labels)
			}
		})
	}
}
