package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

func TestRevisionNames(t *testing.T) {
	project := func(image string, strategy string) *convoyv1.Project {
		p := &convoyv1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team"}}
		p.Spec.Workloads = []convoyv1.Workload{{Name: "api"}}
		p.Spec.Workloads[0].Template.Spec.Containers = append(p.Spec.Workloads[0].Template.Spec.Containers, corev1Container(image))
		if strategy != "" {
			p.Spec.RolloutStrategy = &convoyv1.PolicyReference{Name: strategy}
		}
		return p
	}
	policies := func(seconds int32, generation int64) render.Policies {
		return render.Policies{GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": {
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team", Generation: generation, ResourceVersion: "123"},
			Spec:       convoyv1.GracefulShutdownPolicySpec{PreStop: convoyv1.PreStop{Sleep: &convoyv1.SleepPreStop{Seconds: seconds}}},
		}}}
	}
	name := func(p *convoyv1.Project, pol render.Policies) string {
		t.Helper()
		n, _, err := newRevisionInputs(p, pol).name(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := name(project("api:v1", "regions"), policies(5, 1))
	for _, tc := range []struct {
		desc string
		got  string
		same bool
	}{
		{"the same inputs", name(project("api:v1", "regions"), policies(5, 1)), true},
		{"another strategy: how a change rolls out is not what runs", name(project("api:v1", "other"), policies(5, 1)), true},
		{"a policy's new generation with the same spec", name(project("api:v1", "regions"), policies(5, 7)), true},
		{"another placement: where it runs is not what runs", name(withPlacement(project("api:v1", "regions"), "tokyo-1"), policies(5, 1)), true},
		{"another image", name(project("api:v2", "regions"), policies(5, 1)), false},
		{"another policy spec", name(project("api:v1", "regions"), policies(20, 2)), false},
	} {
		if (tc.got == base) != tc.same {
			t.Errorf("%s: revision %s, base %s; want same=%v", tc.desc, tc.got, base, tc.same)
		}
	}
}

func TestRevisionInputsRenderTheirSpecWithLiveSecrets(t *testing.T) {
	old := &convoyv1.Project{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team", Generation: 3}}
	old.Spec.Workloads = []convoyv1.Workload{{Name: "api"}}
	old.Spec.Workloads[0].Template.Spec.Containers = append(old.Spec.Workloads[0].Template.Spec.Containers, corev1Container("api:v1"))
	oldPolicies := render.Policies{GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": {ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 1}}}}
	in := newRevisionInputs(old, oldPolicies)

	live := old.DeepCopy()
	live.Generation = 4
	live.Spec.Workloads[0].Template.Spec.Containers[0].Image = "api:v2"
	live.Spec.RolloutStrategy = &convoyv1.PolicyReference{Name: "regions"}
	livePolicies := render.Policies{
		GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": {ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 2}}},
		DrainHelperImage: "drain:v9", Regions: []string{"ap-northeast-2"},
	}
	p, pol := in.apply(live, livePolicies)
	if got := p.Spec.Workloads[0].Template.Spec.Containers[0].Image; got != "api:v1" {
		t.Errorf("image %s, want the revision's api:v1", got)
	}
	if p.Generation != 4 || p.Spec.RolloutStrategy == nil || live.Spec.Workloads[0].Template.Spec.Containers[0].Image != "api:v2" {
		t.Errorf("the live Project's metadata and strategy must stay, and the live Project must not change: %+v", p.ObjectMeta)
	}
	if pol.GracefulShutdown["web"].Generation != 1 || pol.DrainHelperImage != "drain:v9" || len(pol.Regions) != 1 {
		t.Errorf("policies %+v: want the revision's policy and the live drain helper and regions", pol)
	}
}

func withPlacement(p *convoyv1.Project, clusters ...string) *convoyv1.Project {
	p.Spec.Placement.ClusterNames = clusters
	return p
}

func corev1Container(image string) corev1.Container {
	return corev1.Container{Name: "app", Image: image}
}
