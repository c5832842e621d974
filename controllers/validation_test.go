package controllers_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery"
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
		}, "spec.overrides[0]", "an override must change something"),
		Entry("with an override for an unknown workload", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-a"), Workloads: []string{"nope"}, Replicas: ptr.To[int32](1)}}
		}, "spec", "overrides[].workloads must name workloads of this Project"),
		Entry("with an override selecting no cluster", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Replicas: ptr.To[int32](1)}}
		}, "spec.overrides[0].clusters", "set clusterSelector, clusterNames or both"),
		Entry("with replicas and autoscaling", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Autoscaling = &convoyv1.WorkloadAutoscaling{MaxReplicas: 4}
		}, "spec.workloads[0]", "set replicas or autoscaling, not both"),
		Entry("with minReplicas above maxReplicas", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Replicas = nil
			p.Spec.Workloads[0].Autoscaling = &convoyv1.WorkloadAutoscaling{MinReplicas: ptr.To[int32](5), MaxReplicas: 4}
		}, "spec.workloads[0].autoscaling", "minReplicas must not exceed maxReplicas"),
		Entry("with a replicas override of an autoscaled workload", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Replicas = nil
			p.Spec.Workloads[0].Autoscaling = &convoyv1.WorkloadAutoscaling{MaxReplicas: 4}
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-a"), Replicas: ptr.To[int32](2)}}
		}, "spec", "overrides[].replicas must not apply to a workload with autoscaling"),
		Entry("with a disruption budget setting both limits", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].DisruptionBudget = &convoyv1.DisruptionBudget{MinAvailable: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromString("10%"))}
		}, "spec.workloads[0].disruptionBudget", "set exactly one of minAvailable and maxUnavailable"),
		Entry("with a disruption budget of 120%", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].DisruptionBudget = &convoyv1.DisruptionBudget{MaxUnavailable: ptr.To(intstr.FromString("120%"))}
		}, "spec.workloads[0].disruptionBudget.maxUnavailable", "should match"),
		Entry("with a serviceAccount and a serviceAccountName", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].ServiceAccount = &convoyv1.WorkloadServiceAccount{}
			p.Spec.Workloads[0].Template.Spec.ServiceAccountName = "mine"
		}, "spec.workloads[0]", "remove template.spec.serviceAccountName"),
		Entry("with a ConfigMap key that is not a file name", func(p *convoyv1.Project) {
			p.Spec.ConfigMaps = []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"a/b": "x"}}}
		}, "spec.configMaps[0].data", "data keys must consist of"),
		Entry("with an override of an unknown ConfigMap key", func(p *convoyv1.Project) {
			p.Spec.ConfigMaps = []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"endpoint": "x"}}}
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-a"),
				ConfigMaps: []convoyv1.ConfigMapOverride{{Name: "settings", Data: map[string]string{"endpiont": "y"}}}}}
		}, "spec", "overrides[].configMaps must name ConfigMaps of spec.configMaps and keys they have"),
		Entry("with an override of an unknown ConfigMap", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-a"),
				ConfigMaps: []convoyv1.ConfigMapOverride{{Name: "settings", Data: map[string]string{"endpoint": "y"}}}}}
		}, "spec", "overrides[].configMaps must name ConfigMaps of spec.configMaps"),
		Entry("with an override that sets an ownership label", func(p *convoyv1.Project) {
			p.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-a"), Labels: map[string]string{convoyv1.ProjectNameLabel: "other"}}}
		}, "spec.overrides[0]", "labels must not set convoy.dev/ labels"),
		Entry("with a Secret name that is not a DNS subdomain", func(p *convoyv1.Project) {
			p.Spec.Secrets = []convoyv1.ProjectSecret{{Name: "Db_Password"}}
		}, "spec.secrets[0].name", "should match"),
		Entry("with a cron workload that has replicas", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports = nil
			p.Spec.Workloads[0].CronJob = &convoyv1.CronJobSchedule{Schedule: "@hourly"}
		}, "spec.workloads[0]", "a cronJob workload runs Jobs: replicas, autoscaling, disruptionBudget and ports do not apply"),
		Entry("with a cron workload whose pods restart Always", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports, p.Spec.Workloads[0].Replicas = nil, nil
			p.Spec.Workloads[0].CronJob = &convoyv1.CronJobSchedule{Schedule: "@hourly"}
			p.Spec.Workloads[0].Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}, "spec.workloads[0]", "must have restartPolicy OnFailure or Never"),
		Entry("with a cron workload of an unknown concurrency policy", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports, p.Spec.Workloads[0].Replicas = nil, nil
			p.Spec.Workloads[0].CronJob = &convoyv1.CronJobSchedule{Schedule: "@hourly", ConcurrencyPolicy: "Sometimes"}
		}, "spec.workloads[0].cronJob.concurrencyPolicy", "Unsupported value"),
		Entry("with two Service ports of one number", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports = append(p.Spec.Workloads[0].Ports, convoyv1.ServicePort{Name: "other", Port: 80})
		}, "spec.workloads[0]", "ports[].port must be unique per protocol"),
		Entry("with a target port name that is not a port name", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports[0].TargetPort = ptr.To(intOrString("HTTP_Port"))
		}, "spec.workloads[0].ports[0].targetPort", "should match"),
		Entry("with a target port out of range", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports[0].TargetPort = ptr.To(intstr.FromInt32(70000))
		}, "spec.workloads[0].ports[0].targetPort", "targetPort must be a port number from 1 to 65535 or a port name"),
		Entry("with a negative disruption budget", func(p *convoyv1.Project) {
			p.Spec.Workloads[0].DisruptionBudget = &convoyv1.DisruptionBudget{MinAvailable: ptr.To(intstr.FromInt32(-1))}
		}, "spec.workloads[0].disruptionBudget", "must not be negative"),
		Entry("with a policy name that is not a DNS subdomain", func(p *convoyv1.Project) {
			p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "Web_Policy"}
		}, "spec.gracefulShutdownPolicy.name", "should match"),
		Entry("with a name longer than a label value", func(p *convoyv1.Project) {
			p.Name = "a-very-long-project-name-that-cannot-be-a-label-value-in-service-clusters"
		}, "metadata.name", "must be a DNS label"),
	)

	It("refuses a Secret reference into another namespace", func() {
		// A reference has no namespace: with kubectl's default strict field validation the
		// field is an error, not silently dropped.
		p := validProject()
		u := &unstructured.Unstructured{}
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
		Expect(err).NotTo(HaveOccurred())
		u.Object = raw
		u.SetGroupVersionKind(convoyv1.GroupVersion.WithKind("Project"))
		Expect(unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "db", "namespace": "kube-system"}}, "spec", "secrets")).To(Succeed())
		err = k8sClient.Create(ctx, u, client.FieldValidation("Strict"))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`unknown field "spec.secrets[0].namespace"`))
	})

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

var _ = Describe("kubectl names", func() {
	It("gives convoy's kinds short names no other resource uses", func() {
		dc, err := discovery.NewDiscoveryClientForConfig(managerCfg)
		Expect(err).NotTo(HaveOccurred())
		_, lists, err := dc.ServerGroupsAndResources()
		Expect(err).NotTo(HaveOccurred())
		owners := map[string][]string{}
		for _, list := range lists {
			for _, r := range list.APIResources {
				for _, short := range r.ShortNames {
					owners[short] = append(owners[short], list.GroupVersion+"/"+r.Name)
				}
			}
		}
		for _, short := range []string{"scl", "proj", "gsp", "llb"} {
			Expect(owners[short]).To(HaveLen(1), "short name %s: %v", short, owners[short])
			Expect(owners[short][0]).To(HavePrefix(convoyv1.GroupVersion.String()))
		}
	})
})

var _ = Describe("The samples in config/samples", func() {
	It("are accepted by the API server", func() {
		for _, file := range []string{"servicecluster.yaml", "gracefulshutdownpolicy.yaml", "gracefulshutdownpolicy-worker.yaml", "localityloadbalancing.yaml", "secret.yaml", "rolloutstrategy.yaml", "project.yaml"} {
			data, err := os.ReadFile(filepath.Join("..", "config", "samples", file))
			Expect(err).NotTo(HaveOccurred())
			obj := &unstructured.Unstructured{}
			Expect(yaml.Unmarshal(data, &obj.Object)).To(Succeed())
			Expect(k8sClient.Create(ctx, obj, client.DryRunAll)).To(Succeed(), file)
		}
	})
})
