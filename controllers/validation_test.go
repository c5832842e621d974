package controllers_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// These run against the real API server: the CRD schema and CEL rules are what users hit.
var _ = Describe("Admission validation", func() {
	validCluster := func() *convoyv1.ServiceCluster {
		return &convoyv1.ServiceCluster{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("invalid-sc")},
			Spec: convoyv1.ServiceClusterSpec{
				KubeconfigSecretRef: convoyv1.SecretKeyReference{Namespace: "convoy-system", Name: "x"},
				Region:              "ap-northeast-2",
				Zones:               []string{"ap-northeast-2a"},
			},
		}
	}

	DescribeTable("rejects ServiceClusters",
		func(mutate func(*convoyv1.ServiceCluster), wantField, wantRule string) {
			sc := validCluster()
			mutate(sc)
			err := k8sClient.Create(ctx, sc)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(wantField))
			Expect(err.Error()).To(ContainSubstring(wantRule))
		},
		Entry("without a Secret name", func(sc *convoyv1.ServiceCluster) { sc.Spec.KubeconfigSecretRef.Name = "" },
			"spec.kubeconfigSecretRef.name", "should be at least 1 chars long"),
		Entry("with an invalid Secret namespace", func(sc *convoyv1.ServiceCluster) { sc.Spec.KubeconfigSecretRef.Namespace = "Convoy_System" },
			"spec.kubeconfigSecretRef.namespace", "should match"),
		Entry("with an uppercase zone", func(sc *convoyv1.ServiceCluster) { sc.Spec.Zones = []string{"AP-2a"} },
			"spec.zones[0]", "should match"),
		Entry("with a duplicate zone", func(sc *convoyv1.ServiceCluster) { sc.Spec.Zones = []string{"a", "a"} },
			"spec.zones[1]", "Duplicate value"),
	)

	It("defaults the kubeconfig key", func() {
		sc := validCluster()
		Expect(k8sClient.Create(ctx, sc)).To(Succeed())
		Expect(sc.Spec.KubeconfigSecretRef.Key).To(Equal("kubeconfig"))
		deleteCluster(sc.Name)
	})

	var ns string
	BeforeEach(func() { ns = newTestNamespace() })
	validProject := func() *convoyv1.Project {
		return newProject(ns, selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, true))
	}

	DescribeTable("rejects Projects",
		func(mutate func(*convoyv1.Project), wantField, wantRule string) {
			p := validProject()
			mutate(p)
			err := k8sClient.Create(ctx, p)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(wantField))
			Expect(err.Error()).To(ContainSubstring(wantRule))
		},
		Entry("without any placement", func(p *convoyv1.Project) { p.Spec.Placement = convoyv1.ClusterSelection{} },
			"spec.placement", "set clusterSelector, clusterNames or both"),
		Entry("without an owner team", func(p *convoyv1.Project) { p.Spec.Owner.Team = "" },
			"spec.owner.team", "should be at least 1 chars long"),
		Entry("with an invalid workload name", func(p *convoyv1.Project) { p.Spec.Workloads[0].Name = "API_v1" },
			"spec.workloads[0].name", "should match"),
		Entry("with two workloads of one name", func(p *convoyv1.Project) { p.Spec.Workloads = append(p.Spec.Workloads, p.Spec.Workloads[0]) },
			"spec.workloads[1]", "Duplicate value"),
		Entry("with negative replicas", func(p *convoyv1.Project) { p.Spec.Workloads[0].Replicas = ptr.To[int32](-1) },
			"spec.workloads[0].replicas", "should be greater than or equal to 0"),
		Entry("with a workload without containers", func(p *convoyv1.Project) { p.Spec.Workloads[0].Template.Spec.Containers = nil },
			"spec.workloads[0].template.spec.containers", "Required value"),
		Entry("with port 0", func(p *convoyv1.Project) { p.Spec.Workloads[0].Ports[0].Port = 0 },
			"spec.workloads[0].ports[0].port", "should be greater than or equal to 1"),
		Entry("with an invalid namespace", func(p *convoyv1.Project) { p.Spec.Namespace = "Team.Shop" },
			"spec.namespace", "should match"),
		Entry("with an override that changes nothing", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-a")}}
		}, "spec.overrides[0]", "an override must set replicas or images"),
		Entry("with an override for an unknown workload", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-a"), Workloads: []string{"nope"}, Replicas: ptr.To[int32](1)}}
		}, "spec", "overrides[].workloads must name workloads of this Project"),
		Entry("with an override selecting no cluster", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Replicas: ptr.To[int32](1)}}
		}, "spec.overrides[0].clusters", "set clusterSelector, clusterNames or both"),
		Entry("with a name longer than a label value", func(p *convoyv1.Project) {
			p.Name = "a-very-long-project-name-that-cannot-be-a-label-value-in-service-clusters"
		}, "metadata.name", "must be a DNS label"),
	)

	It("keeps spec.namespace immutable", func() {
		p := validProject()
		p.Spec.Placement = selectNames("no-such-cluster")
		p.Spec.Namespace = uniqueName("fixed")
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		// Retry on write conflicts: the controller adds its finalizer concurrently.
		Eventually(func(g Gomega) {
			current := getProject(g, p)
			current.Spec.Namespace = "elsewhere"
			err := k8sClient.Update(ctx, current)
			g.Expect(apierrors.IsConflict(err)).To(BeFalse(), "retry on resourceVersion conflict")
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring("spec.namespace"))
			g.Expect(err.Error()).To(ContainSubstring("namespace is immutable"))
		}, timeout, interval).Should(Succeed())
	})
})

var _ = Describe("The samples in config/samples", func() {
	It("are accepted by the API server", func() {
		for _, file := range []string{"servicecluster.yaml", "gracefulshutdownpolicy.yaml", "gracefulshutdownpolicy-worker.yaml", "localityloadbalancing.yaml", "project.yaml"} {
			data, err := os.ReadFile(filepath.Join("..", "config", "samples", file))
			Expect(err).NotTo(HaveOccurred())
			obj := &unstructured.Unstructured{}
			Expect(yaml.Unmarshal(data, &obj.Object)).To(Succeed())
			Expect(k8sClient.Create(ctx, obj, client.DryRunAll)).To(Succeed(), file)
		}
	})
})
