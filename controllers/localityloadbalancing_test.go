package controllers_test

import (
	"bytes"
	"os"
	"path/filepath"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

// istioV1beta1OnlyCRDs writes Istio's DestinationRule CRD as an older Istio serves it: no
// networking.istio.io/v1, v1beta1 stored.
func istioV1beta1OnlyCRDs() string {
	data, err := os.ReadFile(istioCRDs())
	Expect(err).NotTo(HaveOccurred())
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if yaml.Unmarshal(doc, crd) != nil || crd.Name != "destinationrules.networking.istio.io" {
			continue
		}
		var versions []apiextensionsv1.CustomResourceDefinitionVersion
		for _, v := range crd.Spec.Versions {
			if v.Name == "v1" {
				continue
			}
			v.Storage = v.Name == "v1beta1"
			versions = append(versions, v)
		}
		crd.Spec.Versions = versions
		out, err := yaml.Marshal(crd)
		Expect(err).NotTo(HaveOccurred())
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "destinationrule.yaml"), out, 0o600)).To(Succeed())
		return dir
	}
	Fail("no DestinationRule CRD in Istio's bundle")
	return ""
}

func localityPolicy(ns, name string) *convoyv1.LocalityLoadBalancing {
	return &convoyv1.LocalityLoadBalancing{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       convoyv1.LocalityLoadBalancingSpec{OutlierDetection: &convoyv1.OutlierDetection{}},
	}
}

var _ = Describe("LocalityLoadBalancing", Ordered, func() {
	var ns string
	var beta *serviceCluster

	BeforeAll(func() {
		ns = newTestNamespace()
		beta = startServiceCluster("svc-beta", istioV1beta1OnlyCRDs())
		registerCluster(beta, map[string]string{"istio": "old"}, "us-east-1")
		Eventually(func(g Gomega) {
			sc := &convoyv1.ServiceCluster{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: beta.name}, sc)).To(Succeed())
			g.Expect(sc.Status.Capabilities.DestinationRuleVersions).NotTo(ContainElement("v1"))
			g.Expect(sc.Status.Capabilities.DestinationRuleVersion()).To(Equal("v1beta1"))
		}, timeout, interval).Should(Succeed())
	})
	// Deregistering closes convoy's watches, so the API server can stop promptly.
	AfterAll(func() { deleteCluster(beta.name) })

	It("renders one DestinationRule per workload in each cluster, falls back to trafficDistribution without Istio, re-pushes changes and removes what it no longer wants", func() {
		Expect(k8sClient.Create(ctx, localityPolicy(ns, "zonal"))).To(Succeed())
		pooled := &convoyv1.GracefulShutdownPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "pooled", Namespace: ns},
			Spec: convoyv1.GracefulShutdownPolicySpec{
				PreStop:        convoyv1.PreStop{Sleep: &convoyv1.SleepPreStop{Seconds: 5}},
				ConnectionPool: &convoyv1.ConnectionTuning{IdleTimeout: dur(50 * time.Second)},
			},
		}
		Expect(k8sClient.Create(ctx, pooled)).To(Succeed())
		web := workload("web", "registry.example/web:1.0", 2, true)
		web.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "pooled"}
		project := newProject(ns, selectNames("svc-a", "svc-b", beta.name), workload("api", "registry.example/api:1.0", 2, true), web)
		project.Spec.LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "zonal"}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())

		// The default failover is a ring over the targeted clusters' regions.
		ring := []struct{ from, to string }{{"ap-northeast-1", "ap-northeast-2"}, {"ap-northeast-2", "us-east-1"}, {"us-east-1", "ap-northeast-1"}}
		key := func(w string) client.ObjectKey { return client.ObjectKey{Namespace: project.Name, Name: w} }
		Eventually(func(g Gomega) {
			for _, c := range []string{"svc-a", "svc-b", beta.name} {
				g.Expect(clusterStatus(g, project, c).Synced).To(BeTrue(), c)
			}
			dr := &networkingv1.DestinationRule{}
			g.Expect(svcA.client.Get(ctx, key("web"), dr)).To(Succeed())
			g.Expect(dr.Spec.GetHost()).To(Equal("web." + project.Name + ".svc.cluster.local"))
			tp := dr.Spec.GetTrafficPolicy()
			g.Expect(tp.GetConnectionPool().GetHttp().GetIdleTimeout().AsDuration()).To(Equal(50*time.Second), "composed with the GracefulShutdownPolicy")
			lb := tp.GetLoadBalancer().GetLocalityLbSetting()
			g.Expect(lb.GetEnabled().GetValue()).To(BeTrue())
			g.Expect(lb.GetFailover()).To(HaveLen(3))
			for i, f := range ring {
				g.Expect(lb.GetFailover()[i].GetFrom()).To(Equal(f.from))
				g.Expect(lb.GetFailover()[i].GetTo()).To(Equal(f.to))
			}
			od := tp.GetOutlierDetection()
			g.Expect(od.GetConsecutive_5XxErrors().GetValue()).To(Equal(uint32(5)))
			g.Expect(od.GetMaxEjectionPercent()).To(Equal(int32(100)))
			g.Expect(od.GetBaseEjectionTime().AsDuration()).To(Equal(30 * time.Second))

			api := &networkingv1.DestinationRule{}
			g.Expect(svcA.client.Get(ctx, key("api"), api)).To(Succeed())
			g.Expect(api.Spec.GetTrafficPolicy().GetConnectionPool()).To(BeNil(), "api has no GracefulShutdownPolicy")
			g.Expect(api.Spec.GetTrafficPolicy().GetLoadBalancer().GetLocalityLbSetting().GetFailover()).To(HaveLen(3))

			old := &networkingv1beta1.DestinationRule{}
			g.Expect(beta.client.Get(ctx, key("api"), old)).To(Succeed())
			g.Expect(old.Spec.GetTrafficPolicy().GetLoadBalancer().GetLocalityLbSetting().GetFailover()).To(HaveLen(3))
			g.Expect(old.Spec.GetTrafficPolicy().GetOutlierDetection().GetInterval().AsDuration()).To(Equal(10 * time.Second))

			svc := &corev1.Service{}
			g.Expect(svcB.client.Get(ctx, key("api"), svc)).To(Succeed())
			g.Expect(svc.Spec.TrafficDistribution).To(Equal(ptr.To("PreferSameZone")))
			g.Expect(clusterStatus(g, project, "svc-b").Message).To(ContainSubstring("Service api uses trafficDistribution PreferSameZone instead"))
			g.Expect(svcA.client.Get(ctx, key("api"), svc)).To(Succeed())
			g.Expect(svc.Spec.TrafficDistribution).To(BeNil(), "Istio does the locality routing where it runs")

			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.Spec.Template.Spec.TopologySpreadConstraints).To(ConsistOf(And(
				HaveField("TopologyKey", convoyv1.ZoneLabel),
				HaveField("MaxSkew", int32(1)),
				HaveField("MinDomains", Equal(ptr.To[int32](2))),
				HaveField("MatchLabelKeys", ConsistOf("pod-template-hash")),
				HaveField("LabelSelector.MatchLabels", render.SelectorLabels(project, "api")),
			)))
			g.Expect(clusterStatus(g, project, "svc-a").AppliedPolicies).To(ContainElement(
				convoyv1.AppliedPolicy{Kind: "LocalityLoadBalancing", Name: "zonal", Generation: 1}))
		}, timeout, interval).Should(Succeed())

		By("the policy reports its mode")
		Eventually(func(g Gomega) {
			p := &convoyv1.LocalityLoadBalancing{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "zonal"}, p)).To(Succeed())
			g.Expect(p.Status.Mode).To(Equal(convoyv1.LocalityModeFailover))
		}, timeout, interval).Should(Succeed())

		By("steady state: resyncs send no writes")
		expectNoWritesDuringResyncs("svc-a", project.Name)

		By("changing the policy to distribute re-pushes every Project using it")
		Eventually(func(g Gomega) {
			p := &convoyv1.LocalityLoadBalancing{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "zonal"}, p)).To(Succeed())
			p.Spec.Distribute = []convoyv1.LocalityDistribution{{
				From: "ap-northeast-2/ap-northeast-2a/*",
				To:   []convoyv1.LocalityWeight{{Locality: "ap-northeast-2/ap-northeast-2a/*", Weight: 80}, {Locality: "ap-northeast-2/ap-northeast-2b/*", Weight: 20}},
			}}
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			dr := &networkingv1.DestinationRule{}
			g.Expect(svcA.client.Get(ctx, key("api"), dr)).To(Succeed())
			lb := dr.Spec.GetTrafficPolicy().GetLoadBalancer().GetLocalityLbSetting()
			g.Expect(lb.GetFailover()).To(BeEmpty())
			g.Expect(lb.GetDistribute()).To(HaveLen(1))
			g.Expect(lb.GetDistribute()[0].GetTo()).To(Equal(map[string]uint32{"ap-northeast-2/ap-northeast-2a/*": 80, "ap-northeast-2/ap-northeast-2b/*": 20}))
			g.Expect(clusterStatus(g, project, "svc-a").AppliedPolicies).To(ContainElement(
				convoyv1.AppliedPolicy{Kind: "LocalityLoadBalancing", Name: "zonal", Generation: 2}))
		}, timeout, interval).Should(Succeed())

		By("removing the reference removes what the policy added, and nothing else")
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.LocalityLoadBalancing = nil
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(apierrors.IsNotFound(svcA.client.Get(ctx, key("api"), &networkingv1.DestinationRule{}))).To(BeTrue())
			g.Expect(apierrors.IsNotFound(beta.client.Get(ctx, key("api"), &networkingv1beta1.DestinationRule{}))).To(BeTrue())
			dr := &networkingv1.DestinationRule{}
			g.Expect(svcA.client.Get(ctx, key("web"), dr)).To(Succeed(), "web keeps its connection tuning")
			g.Expect(dr.Spec.GetTrafficPolicy().GetLoadBalancer()).To(BeNil())
			g.Expect(dr.Spec.GetTrafficPolicy().GetOutlierDetection()).To(BeNil())
			g.Expect(dr.Spec.GetTrafficPolicy().GetConnectionPool()).NotTo(BeNil())
			svc := &corev1.Service{}
			g.Expect(svcB.client.Get(ctx, key("api"), svc)).To(Succeed())
			g.Expect(svc.Spec.TrafficDistribution).To(BeNil())
			g.Expect(remoteDeployment(g, svcA, project.Name, "api").Spec.Template.Spec.TopologySpreadConstraints).To(BeEmpty())
		}, timeout, interval).Should(Succeed())
	})

	It("reports pods per zone and ZoneImbalanced when a scale-in leaves the zones uneven", func() {
		Expect(k8sClient.Create(ctx, localityPolicy(ns, "spread"))).To(Succeed())
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 3, true))
		project.Spec.LocalityLoadBalancing = &convoyv1.PolicyReference{Name: "spread"}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())

		// envtest has no scheduler: nodes and scheduled pods are created by hand.
		for _, n := range []struct{ name, zone string }{{"node-a", "ap-northeast-2a"}, {"node-b", "ap-northeast-2b"}} {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{convoyv1.ZoneLabel: n.zone}}}
			Expect(client.IgnoreAlreadyExists(svcA.client.Create(ctx, node))).To(Succeed())
		}
		Eventually(func(g Gomega) { remoteDeployment(g, svcA, project.Name, "api") }, timeout, interval).Should(Succeed())
		labels := render.SelectorLabels(project, "api")
		labels[convoyv1.ManagedByLabel] = convoyv1.ManagedByValue
		pod := func(name, node string) *corev1.Pod {
			return &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: project.Name, Labels: labels},
				Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example/api:1.0"}}},
			}
		}
		for _, p := range []*corev1.Pod{pod("api-1", "node-a"), pod("api-2", "node-a"), pod("api-3", "node-a")} {
			Expect(svcA.client.Create(ctx, p)).To(Succeed())
		}
		markAvailable(svcA, project.Name, "api", 3)

		Eventually(func(g Gomega) {
			p := getProject(g, project)
			ws := clusterStatus(g, p, "svc-a").Workloads
			g.Expect(ws).To(HaveLen(1))
			g.Expect(ws[0].Zones).To(Equal([]convoyv1.ZonePods{{Zone: "ap-northeast-2a", Pods: 3}, {Zone: "ap-northeast-2b", Pods: 0}}))
			g.Expect(ws[0].ZoneSkew).To(Equal(ptr.To[int32](3)))
			g.Expect(ws[0].MaxSkew).To(Equal(ptr.To[int32](1)))
			c := meta.FindStatusCondition(p.Status.Conditions, convoyv1.ZoneImbalancedCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Message).To(ContainSubstring("svc-a/api: ap-northeast-2a=3 ap-northeast-2b=0 (skew 3 > maxSkew 1)"))
		}, timeout, interval).Should(Succeed())

		By("rebalancing clears the condition")
		Expect(svcA.client.Delete(ctx, pod("api-3", ""), client.GracePeriodSeconds(0))).To(Succeed())
		Expect(svcA.client.Create(ctx, pod("api-4", "node-b"))).To(Succeed())
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			g.Expect(clusterStatus(g, p, "svc-a").Workloads[0].Zones).To(Equal([]convoyv1.ZonePods{{Zone: "ap-northeast-2a", Pods: 2}, {Zone: "ap-northeast-2b", Pods: 1}}))
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, convoyv1.ZoneImbalancedCondition)).To(BeNil())
		}, timeout, interval).Should(Succeed())
	})
})

// Upgrades must not cost a cluster whose convoy identity predates pods per zone: without
// permission on nodes the cluster still gets its objects and the status says what is missing.
var _ = Describe("A service cluster where convoy may not read nodes", Ordered, func() {
	var limited *serviceCluster

	BeforeAll(func() {
		limited = startServiceCluster("svc-limited")
		// Everything convoy needs except nodes: its own kinds, and list on every namespaced
		// kind for the check before it deletes a namespace (nodes are cluster-scoped).
		role := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "convoy-without-nodes"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"", "apps"}, Resources: []string{"namespaces", "services", "deployments", "pods"}, Verbs: []string{"*"}},
			},
		}
		disc, err := discovery.NewDiscoveryClientForConfig(limited.env.Config)
		Expect(err).NotTo(HaveOccurred())
		namespaced, err := disc.ServerPreferredNamespacedResources()
		Expect(err).NotTo(HaveOccurred())
		for _, list := range namespaced {
			gv, err := schema.ParseGroupVersion(list.GroupVersion)
			Expect(err).NotTo(HaveOccurred())
			rule := rbacv1.PolicyRule{APIGroups: []string{gv.Group}, Verbs: []string{"list"}}
			for _, r := range list.APIResources {
				rule.Resources = append(rule.Resources, r.Name)
			}
			role.Rules = append(role.Rules, rule)
		}
		Expect(limited.client.Create(ctx, role)).To(Succeed())
		Expect(limited.client.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "convoy-without-nodes"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "convoy-limited"}},
		})).To(Succeed())
		user, err := limited.env.AddUser(envtest.User{Name: "convoy-limited"}, &rest.Config{})
		Expect(err).NotTo(HaveOccurred())
		limited.kubeconfig, err = user.KubeConfig()
		Expect(err).NotTo(HaveOccurred())
		registerCluster(limited, map[string]string{"rbac": "limited"}, "eu-west-1")
	})
	AfterAll(func() { deleteCluster(limited.name) })

	It("syncs the Project and reports why pods per zone are missing", func() {
		ns := newTestNamespace()
		project := newProject(ns, selectNames(limited.name), workload("api", "registry.example/api:1.0", 2, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, limited.name)
			g.Expect(st.Synced).To(BeTrue())
			g.Expect(st.Message).To(ContainSubstring("pods per zone are not reported for svc-limited: convoy cannot list nodes there (grant list and watch on pods and nodes)"))
			g.Expect(st.Workloads).To(ConsistOf(And(HaveField("Name", "api"), HaveField("Replicas", int32(2)), HaveField("Zones", BeEmpty()))))
			remoteDeployment(g, limited, project.Name, "api")
		}, timeout, interval).Should(Succeed())

		By("deleting the Project cleans up there too")
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{}))).To(BeTrue())
		}, timeout, interval).Should(Succeed())
	})
})
