package render

import (
	"time"

	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

func testProject(mutate ...func(*convoyv1.Project)) *convoyv1.Project {
	p := &convoyv1.Project{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team-a"},
		Spec: convoyv1.ProjectSpec{
			Owner:     convoyv1.ProjectOwner{Team: "payments"},
			Placement: convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}},
			Workloads: []convoyv1.Workload{{
				Name:     "api",
				Replicas: ptr.To[int32](2),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
					Spec: corev1.PodSpec{
						InitContainers: []corev1.Container{{Name: "migrate", Image: "api:1"}},
						Containers:     []corev1.Container{{Name: "app", Image: "api:1"}, {Name: "sidecar", Image: "log:1"}},
					},
				},
				Ports: []convoyv1.ServicePort{{Name: "http", Port: 80, TargetPort: ptr.To(intstr.FromString("http"))}, {Name: "grpc", Port: 9090}},
			}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func cluster(name string, labels map[string]string) *convoyv1.ServiceCluster {
	return &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func owner() map[string]string {
	return map[string]string{
		"app.kubernetes.io/managed-by": "convoy",
		"convoy.dev/project-namespace": "team-a",
		"convoy.dev/project-name":      "shop",
	}
}

// objectOwner are the labels of the objects convoy writes: ownership and the team (pods get
// no team label).
func objectOwner() map[string]string {
	l := owner()
	l["convoy.dev/team"] = "payments"
	return l
}

func withWorkload(l map[string]string, w string) map[string]string {
	l["convoy.dev/workload"] = w
	return l
}

func wantDeployment(mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	podLabels := withWorkload(owner(), "api")
	podLabels["app"] = "api"
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Labels: withWorkload(objectOwner(), "api")},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				"convoy.dev/project-namespace": "team-a", "convoy.dev/project-name": "shop", "convoy.dev/workload": "api",
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "migrate", Image: "api:1"}},
					Containers:     []corev1.Container{{Name: "app", Image: "api:1"}, {Name: "sidecar", Image: "log:1"}},
				},
			},
		},
	}
	for _, m := range mutate {
		m(d)
	}
	return d
}

func TestForCluster(t *testing.T) {
	wantService := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Labels: withWorkload(objectOwner(), "api")},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"convoy.dev/project-namespace": "team-a", "convoy.dev/project-name": "shop", "convoy.dev/workload": "api"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
				{Name: "grpc", Port: 9090, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	wantNamespace := func(name string) *corev1.Namespace {
		return &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: objectOwner()},
		}
	}
	canary := cluster("seoul-1", map[string]string{"stage": "canary"})

	tests := []struct {
		name    string
		project *convoyv1.Project
		cluster *convoyv1.ServiceCluster
		want    *ClusterObjects
	}{{
		name:    "namespace defaults to the Project name; workload with ports gets a Service",
		project: testProject(),
		cluster: canary,
		want:    &ClusterObjects{Namespace: wantNamespace("shop"), Deployments: []*appsv1.Deployment{wantDeployment()}, Services: []*corev1.Service{wantService}},
	}, {
		name: "explicit namespace, no ports, no Service",
		project: testProject(func(p *convoyv1.Project) {
			p.Spec.Namespace = "payments"
			p.Spec.Workloads[0].Ports = nil
		}),
		cluster: canary,
		want: &ClusterObjects{Namespace: wantNamespace("payments"), Deployments: []*appsv1.Deployment{wantDeployment(func(d *appsv1.Deployment) {
			d.Namespace = "payments"
		})}},
	}, {
		name:    "unset replicas stay unset so an autoscaler owns them",
		project: testProject(func(p *convoyv1.Project) { p.Spec.Workloads[0].Replicas = nil; p.Spec.Workloads[0].Ports = nil }),
		cluster: canary,
		want: &ClusterObjects{Namespace: wantNamespace("shop"), Deployments: []*appsv1.Deployment{wantDeployment(func(d *appsv1.Deployment) {
			d.Spec.Replicas = nil
		})}},
	}, {
		name: "convoy's labels win over template labels of the same key",
		project: testProject(func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Template.Labels["convoy.dev/workload"] = "spoofed"
			p.Spec.Workloads[0].Ports = nil
		}),
		cluster: canary,
		want:    &ClusterObjects{Namespace: wantNamespace("shop"), Deployments: []*appsv1.Deployment{wantDeployment()}},
	}, {
		name: "matching overrides apply in order, images of init and regular containers",
		project: testProject(func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports = nil
			p.Spec.Overrides = []convoyv1.ClusterOverride{
				{Clusters: convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"stage": "canary"}}},
					Replicas: ptr.To[int32](1), Images: []convoyv1.ImageOverride{{Container: "app", Image: "api:2-rc"}, {Container: "migrate", Image: "api:2-rc"}}},
				{Clusters: convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}}, Replicas: ptr.To[int32](3)},
				{Clusters: convoyv1.ClusterSelection{ClusterNames: []string{"tokyo-1"}}, Replicas: ptr.To[int32](9)},
			}
		}),
		cluster: canary,
		want: &ClusterObjects{Namespace: wantNamespace("shop"), Deployments: []*appsv1.Deployment{wantDeployment(func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptr.To[int32](3)
			d.Spec.Template.Spec.Containers[0].Image = "api:2-rc"
			d.Spec.Template.Spec.InitContainers[0].Image = "api:2-rc"
		})}},
	}, {
		name: "an override limited to other workloads changes nothing",
		project: testProject(func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports = nil
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}},
				Workloads: []string{"worker"}, Replicas: ptr.To[int32](7)}}
		}),
		cluster: canary,
		want:    &ClusterObjects{Namespace: wantNamespace("shop"), Deployments: []*appsv1.Deployment{wantDeployment()}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.project.DeepCopy()
			got, err := ForCluster(tt.project, tt.cluster, Policies{})
			if err != nil {
				t.Fatalf("ForCluster: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ForCluster() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.project); diff != "" {
				t.Errorf("ForCluster modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPlace(t *testing.T) {
	deleting := cluster("old", map[string]string{"env": "prod"})
	deleting.DeletionTimestamp = ptr.To(metav1.Unix(1, 0))
	clusters := []convoyv1.ServiceCluster{
		*cluster("tokyo-1", map[string]string{"env": "prod"}),
		*cluster("seoul-1", map[string]string{"env": "prod", "stage": "canary"}),
		*cluster("seoul-2", map[string]string{"env": "staging"}),
		*deleting,
	}
	tests := []struct {
		name        string
		placement   convoyv1.ClusterSelection
		wantNames   []string
		wantMissing []string
	}{
		{"selector", convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}, []string{"seoul-1", "tokyo-1"}, nil},
		{"names", convoyv1.ClusterSelection{ClusterNames: []string{"seoul-2", "nowhere"}}, []string{"seoul-2"}, []string{"nowhere"}},
		{"selector or names", convoyv1.ClusterSelection{
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"stage": "canary"}},
			ClusterNames:    []string{"seoul-2"}}, []string{"seoul-1", "seoul-2"}, nil},
		{"expression", convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"prod"}}}}}, []string{"seoul-2"}, nil},
		{"a cluster being deleted is never targeted", convoyv1.ClusterSelection{ClusterNames: []string{"old"}}, nil, nil},
		{"empty selector selects all", convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{}}, []string{"seoul-1", "seoul-2", "tokyo-1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testProject(func(p *convoyv1.Project) { p.Spec.Placement = tt.placement })
			got, err := Place(p, clusters)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range got.Targeted {
				names = append(names, c.Name)
			}
			if diff := cmp.Diff(tt.wantNames, names); diff != "" {
				t.Errorf("targeted (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMissing, got.MissingNames); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("invalid selector is an error naming the field", func(t *testing.T) {
		p := testProject(func(p *convoyv1.Project) {
			p.Spec.Placement = convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "env", Operator: "Bogus"}}}}
		})
		if _, err := Place(p, clusters); err == nil || !contains(err.Error(), "spec.placement") {
			t.Fatalf("want error naming spec.placement, got %v", err)
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// BenchmarkForCluster renders a Project of 10 workloads with 3 overrides for one cluster, the
// work done per targeted cluster on every reconcile.
func BenchmarkForCluster(b *testing.B) {
	p := testProject(func(p *convoyv1.Project) {
		base := p.Spec.Workloads[0]
		p.Spec.Workloads = nil
		for i := range 10 {
			w := *base.DeepCopy()
			w.Name = fmt.Sprintf("w%d", i)
			p.Spec.Workloads = append(p.Spec.Workloads, w)
		}
		for range 3 {
			p.Spec.Overrides = append(p.Spec.Overrides, convoyv1.ClusterOverride{
				Clusters: convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"stage": "canary"}}},
				Replicas: ptr.To[int32](1),
				Images:   []convoyv1.ImageOverride{{Container: "app", Image: "api:2"}},
			})
		}
	})
	c := cluster("seoul-1", map[string]string{"stage": "canary"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ForCluster(p, c, Policies{}); err != nil {
			b.Fatal(err)
		}
	}
}

// The owner's team and contacts are on every object convoy writes, never on pods: a team
// change must not roll every workload.
func TestOwnerOnEveryObject(t *testing.T) {
	project := testProject(func(p *convoyv1.Project) {
		p.Spec.Owner.Contacts = []string{"#payments-oncall", "payments@example.com"}
		p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
	})
	sc := cluster("seoul-1", nil)
	sc.Status.Capabilities = newCluster
	objs, err := ForCluster(project, sc, Policies{
		GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": shutdownPolicy(both(sleepFor(5), func(p *convoyv1.GracefulShutdownPolicySpec) {
			p.ConnectionPool = &convoyv1.ConnectionTuning{IdleTimeout: &metav1.Duration{Duration: 50 * time.Second}}
		}))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.DestinationRules) == 0 || len(objs.Services) == 0 {
		t.Fatal("the test wants a Service and a DestinationRule")
	}
	for _, o := range objs.All() {
		if got := o.GetLabels()["convoy.dev/team"]; got != "payments" {
			t.Errorf("%T %s: team label %q", o, o.GetName(), got)
		}
		if got := o.GetAnnotations()["convoy.dev/contacts"]; got != "#payments-oncall, payments@example.com" {
			t.Errorf("%T %s: contacts annotation %q", o, o.GetName(), got)
		}
	}
	pod := objs.Deployments[0].Spec.Template
	if _, ok := pod.Labels["convoy.dev/team"]; ok {
		t.Errorf("pod template has the team label: %v", pod.Labels)
	}
	if _, ok := pod.Annotations["convoy.dev/contacts"]; ok {
		t.Errorf("pod template has the contacts annotation: %v", pod.Annotations)
	}
}
