package controllers

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

// serviceInputs is a Project like the sample (two workloads, a ConfigMap, a disruption budget,
// an autoscaler) placed on n clusters.
func serviceInputs(t testing.TB, n int, mutate func(*convoyv1.Project)) *projectInputs {
	t.Helper()
	p := &convoyv1.Project{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team-a", Generation: 1},
		Spec: convoyv1.ProjectSpec{
			Owner:      convoyv1.ProjectOwner{Team: "payments"},
			Placement:  convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}},
			ConfigMaps: []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"LOG": "info"}}},
			Workloads: []convoyv1.Workload{{
				Name: "api", Replicas: ptr.To[int32](3),
				Ports:            []convoyv1.ServicePort{{Name: "http", Port: 80, TargetPort: ptr.To(intstr.FromString("http")), Protocol: corev1.ProtocolTCP}},
				DisruptionBudget: &convoyv1.DisruptionBudget{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "api:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
				}}}},
			}, {
				Name: "worker", Autoscaling: &convoyv1.WorkloadAutoscaling{MinReplicas: ptr.To[int32](2), MaxReplicas: 6},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "worker:1"}}}},
			}},
		},
	}
	if mutate != nil {
		mutate(p)
	}
	var clusters []convoyv1.ServiceCluster
	for i := range n {
		clusters = append(clusters, convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Labels: map[string]string{"env": "prod"}}})
	}
	placement, err := render.Place(p, clusters)
	if err != nil {
		t.Fatal(err)
	}
	return &projectInputs{project: p, clusters: clusters, placement: placement}
}

func TestRenderProblems(t *testing.T) {
	if got := renderProblems(serviceInputs(t, 3, nil)); len(got) != 0 {
		t.Errorf("a valid Project: %v", got)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*convoyv1.Project)
		want   string
	}{
		{"a template error, named in the Project's terms, once for all clusters", func(p *convoyv1.Project) {
			p.Spec.Workloads[1].Template.Spec.Containers[0].Name = "Worker"
		}, `spec.workloads[1].template.spec.containers[0].name: Invalid value: "Worker"`},
		{"an override that makes one cluster's template invalid", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: convoyv1.ClusterSelection{ClusterNames: []string{"svc-1"}}, Workloads: []string{"api"},
				Containers: []convoyv1.ContainerOverride{{Name: "app", Resources: &corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: mustParse("2Gi")}, Limits: corev1.ResourceList{corev1.ResourceMemory: mustParse("1Gi")}}}}}}
		}, "spec.workloads[0].template.spec.containers[0].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi (in svc-1)"},
		{"a Service port that names no container port is fine for Kubernetes; a bad ConfigMap key is not", func(p *convoyv1.Project) {
			p.Spec.ConfigMaps[0].Data = map[string]string{strings.Repeat("k", 254): "x"}
		}, "spec.configMaps[0].data"},
	} {
		got := strings.Join(renderProblems(serviceInputs(t, 3, tc.mutate)), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// BenchmarkRenderCheck measures checking one changed Project on 5 clusters, next to
// rendering it alone.
func BenchmarkRenderCheck(b *testing.B) {
	pi := serviceInputs(b, 5, nil)
	b.Run("render-only", func(b *testing.B) {
		for b.Loop() {
			for _, sc := range pi.placement.Targeted {
				if _, err := render.ForCluster(pi.project, sc, pi.policies); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("render-and-validate", func(b *testing.B) {
		for b.Loop() {
			if p := renderProblems(pi); len(p) != 0 {
				b.Fatal(p)
			}
		}
	})
	checks := newRenderChecks()
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			checks.problems(pi)
		}
	})
}

func mustParse(s string) resource.Quantity { return resource.MustParse(s) }
