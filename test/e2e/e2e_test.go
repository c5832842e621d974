//go:build e2e

// Package e2e runs convoy against the local fleet of make demo: real kube-apiservers,
// controller-managers and schedulers, with kwok playing the kubelets of fake nodes in three
// zones per cluster. Run it with make e2e.
package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
	"github.com/convoy-dev/convoy/test/fleet"
)

const (
	timeout  = 3 * time.Minute
	interval = 2 * time.Second
)

var (
	ctx     = context.Background()
	f       *fleet.Fleet
	manager client.Client
	remotes = map[string]client.Client{}
	// The fleet's service clusters (hack/fleet.sh), each with zones a/b/c or 1a/1c/1d.
	clusters = []string{"seoul-1", "seoul-2", "tokyo-1"}
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "convoy end-to-end on the local fleet")
}

var _ = BeforeSuite(func() {
	dir := os.Getenv("FLEET_DIR")
	Expect(dir).NotTo(BeEmpty(), "FLEET_DIR must point at the fleet of hack/fleet.sh (run make e2e)")
	f = fleet.New(dir, "manager")
	var err error
	manager, err = f.Manager()
	Expect(err).NotTo(HaveOccurred())
	for _, c := range clusters {
		remotes[c], err = f.Client(c)
		Expect(err).NotTo(HaveOccurred())
	}
	SetDefaultEventuallyTimeout(timeout)
	SetDefaultEventuallyPollingInterval(interval)
})

// zonesOfPods counts a workload's running pods per zone from the cluster itself: pods and the
// zone label of their nodes, independently of convoy's status.
func zonesOfPods(g Gomega, cluster, ns string, selector map[string]string) map[string]int32 {
	c := remotes[cluster]
	var pods corev1.PodList
	g.Expect(c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(selector))).To(Succeed())
	counts := map[string]int32{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		node := &corev1.Node{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: p.Spec.NodeName}, node)).To(Succeed())
		counts[node.Labels[convoyv1.ZoneLabel]]++
	}
	return counts
}

func statusZones(ws convoyv1.WorkloadStatus) map[string]int32 {
	out := map[string]int32{}
	for _, z := range ws.Zones {
		if z.Pods > 0 {
			out[z.Zone] = z.Pods
		}
	}
	return out
}

func getProject(g Gomega, p *convoyv1.Project) *convoyv1.Project {
	out := &convoyv1.Project{}
	g.Expect(manager.Get(ctx, client.ObjectKeyFromObject(p), out)).To(Succeed())
	return out
}

func clusterStatus(g Gomega, p *convoyv1.Project, cluster string) convoyv1.ProjectClusterStatus {
	for _, st := range getProject(g, p).Status.Clusters {
		if st.Name == cluster {
			return st
		}
	}
	g.Expect(cluster).To(BeEmpty(), "no status for cluster %s", cluster)
	return convoyv1.ProjectClusterStatus{}
}

var _ = Describe("convoy on the local fleet", Ordered, func() {
	var project *convoyv1.Project
	var selector map[string]string

	BeforeAll(func() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
		Expect(manager.Create(ctx, ns)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(manager.Delete(ctx, ns))).To(Succeed()) })

		Expect(manager.Create(ctx, &convoyv1.LocalityLoadBalancing{
			ObjectMeta: metav1.ObjectMeta{Name: "zonal", Namespace: ns.Name},
			Spec:       convoyv1.LocalityLoadBalancingSpec{OutlierDetection: &convoyv1.OutlierDetection{}},
		})).To(Succeed())
		project = &convoyv1.Project{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + strconv.FormatInt(time.Now().Unix()%100000, 10), Namespace: ns.Name},
			Spec: convoyv1.ProjectSpec{
				Owner:                 convoyv1.ProjectOwner{Team: "e2e"},
				Placement:             convoyv1.ClusterSelection{ClusterNames: clusters},
				LocalityLoadBalancing: &convoyv1.PolicyReference{Name: "zonal"},
				Workloads: []convoyv1.Workload{{
					Name:     "api",
					Replicas: ptr.To[int32](6),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "app", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53", Args: []string{"netexec"},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					}}}},
					Ports: []convoyv1.ServicePort{{Name: "http", Port: 80}},
				}},
			},
		}
		Expect(manager.Create(ctx, project)).To(Succeed())
		selector = render.SelectorLabels(project, "api")
	})

	It("makes the Deployments Available in every targeted cluster, with pods spread evenly over zones", func() {
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.ReadyCondition)).To(BeTrue(), "Project Ready")
			g.Expect(p.Status.ReadyClusters).To(Equal("3/3"))
		}).Should(Succeed())
		for _, c := range clusters {
			Eventually(func(g Gomega) {
				d := &appsv1.Deployment{}
				g.Expect(remotes[c].Get(ctx, client.ObjectKey{Namespace: project.Name, Name: "api"}, d)).To(Succeed())
				g.Expect(d.Status.AvailableReplicas).To(Equal(int32(6)), c)
				live := zonesOfPods(g, c, project.Name, selector)
				g.Expect(live).To(HaveLen(3), "%s: pods in every zone: %v", c, live)
				for zone, n := range live {
					g.Expect(n).To(Equal(int32(2)), "%s/%s: %v", c, zone, live)
				}
				ws := clusterStatus(g, project, c).Workloads
				g.Expect(ws).To(HaveLen(1))
				g.Expect(statusZones(ws[0])).To(Equal(live), "%s: the status reports where pods really run", c)
				g.Expect(ws[0].ZoneSkew).To(Equal(ptr.To[int32](0)))
			}).Should(Succeed())
		}
	})

	It("keeps traffic local: Istio locality failover between the regions where Istio runs, trafficDistribution where it does not", func() {
		key := client.ObjectKey{Namespace: project.Name, Name: "api"}
		for _, c := range []string{"seoul-1", "seoul-2"} {
			dr := &unstructured.Unstructured{}
			dr.SetAPIVersion("networking.istio.io/v1")
			dr.SetKind("DestinationRule")
			Expect(remotes[c].Get(ctx, key, dr)).To(Succeed(), c)
			Expect(fleet.LocalityMode(dr)).To(Equal("DestinationRule v1: Failover ap-northeast-1->ap-northeast-2, ap-northeast-2->ap-northeast-1"), c)
			maxEjection, _, _ := unstructured.NestedInt64(dr.Object, "spec", "trafficPolicy", "outlierDetection", "maxEjectionPercent")
			Expect(maxEjection).To(Equal(int64(100)), c)
		}
		svc := &corev1.Service{}
		Expect(remotes["tokyo-1"].Get(ctx, key, svc)).To(Succeed())
		Expect(svc.Spec.TrafficDistribution).To(Equal(ptr.To("PreferSameZone")))
		Eventually(func(g Gomega) {
			g.Expect(clusterStatus(g, project, "tokyo-1").Message).To(ContainSubstring("uses trafficDistribution PreferSameZone instead"))
		}).Should(Succeed())
	})

	It("shows a scale-in that ignores topology as ZoneImbalanced, and a restart rebalances", func() {
		const cluster = "seoul-2"
		c := remotes[cluster]
		By("making the two pods of one zone the cheapest to delete, as a scale-in might pick them")
		var pods corev1.PodList
		Expect(c.List(ctx, &pods, client.InNamespace(project.Name), client.MatchingLabels(selector))).To(Succeed())
		victimZone := ""
		for _, p := range pods.Items {
			node := &corev1.Node{}
			Expect(c.Get(ctx, client.ObjectKey{Name: p.Spec.NodeName}, node)).To(Succeed())
			zone := node.Labels[convoyv1.ZoneLabel]
			if victimZone == "" {
				victimZone = zone
			}
			if zone != victimZone {
				continue
			}
			patch := client.MergeFrom(p.DeepCopy())
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations["controller.kubernetes.io/pod-deletion-cost"] = "-1000"
			Expect(c.Patch(ctx, &p, patch)).To(Succeed())
		}

		By("scaling " + cluster + " in from 6 to 4 through a Project override")
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.Overrides = []convoyv1.ClusterOverride{{
				Clusters: convoyv1.ClusterSelection{ClusterNames: []string{cluster}}, Replicas: ptr.To[int32](4),
			}}
			g.Expect(manager.Update(ctx, p)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			live := zonesOfPods(g, cluster, project.Name, selector)
			g.Expect(live).NotTo(HaveKey(victimZone))
			p := getProject(g, project)
			ws := clusterStatus(g, p, cluster).Workloads[0]
			g.Expect(ws.Replicas).To(Equal(int32(4)))
			g.Expect(ws.ZoneSkew).To(Equal(ptr.To[int32](2)))
			cond := meta.FindStatusCondition(p.Status.Conditions, convoyv1.ZoneImbalancedCondition)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Message).To(ContainSubstring(fmt.Sprintf("%s/api: ", cluster)))
			g.Expect(cond.Message).To(ContainSubstring(victimZone + "=0"))
			g.Expect(cond.Message).To(ContainSubstring("(skew 2 > maxSkew 1)"))
		}).Should(Succeed())

		By("restarting the workload (kubectl rollout restart): the new ReplicaSet is spread again")
		Eventually(func(g Gomega) {
			d := &appsv1.Deployment{}
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: project.Name, Name: "api"}, d)).To(Succeed())
			patch := client.MergeFrom(d.DeepCopy())
			if d.Spec.Template.Annotations == nil {
				d.Spec.Template.Annotations = map[string]string{}
			}
			d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339)
			g.Expect(c.Patch(ctx, d, patch, client.FieldOwner("kubectl-rollout"))).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			ws := clusterStatus(g, p, cluster).Workloads[0]
			g.Expect(ws.AvailableReplicas).To(Equal(int32(4)))
			g.Expect(*ws.ZoneSkew).To(BeNumerically("<=", 1))
			g.Expect(zonesOfPods(g, cluster, project.Name, selector)).To(HaveLen(3))
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, convoyv1.ZoneImbalancedCondition)).To(BeNil())
		}).Should(Succeed())
	})

	It("reports a stopped service cluster as Unreachable and converges when it returns", func() {
		const cluster = "tokyo-1"
		_, err := f.Kwokctl(ctx, "stop", "cluster", "--name", cluster)
		Expect(err).NotTo(HaveOccurred())
		started := false
		DeferCleanup(func() {
			if !started {
				_, _ = f.Kwokctl(ctx, "start", "cluster", "--name", cluster)
			}
		})
		Eventually(func(g Gomega) {
			sc := &convoyv1.ServiceCluster{}
			g.Expect(manager.Get(ctx, client.ObjectKey{Name: cluster}, sc)).To(Succeed())
			ready := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(convoyv1.ReasonUnreachable))
			st := clusterStatus(g, project, cluster)
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonUnreachable))
			g.Expect(st.LastContactTime).NotTo(BeNil())
			g.Expect(st.Workloads).To(BeEmpty(), "no stale numbers for an unreachable cluster")
			p := getProject(g, project)
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.ReadyCondition)).To(BeFalse())
			g.Expect(p.Status.ReadyClusters).To(Equal("2/3"))
		}).Should(Succeed())

		_, err = f.Kwokctl(ctx, "start", "cluster", "--name", cluster)
		Expect(err).NotTo(HaveOccurred())
		started = true
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			g.Expect(p.Status.ReadyClusters).To(Equal("3/3"))
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.ReadyCondition)).To(BeTrue())
			g.Expect(clusterStatus(g, project, cluster).Workloads[0].AvailableReplicas).To(Equal(int32(6)))
		}).Should(Succeed())
	})

	It("cleans every cluster when the Project is deleted", func() {
		Expect(manager.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			err := manager.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the finalizer is released")
		}).Should(Succeed())
		// The finalizer goes once convoy has deleted everything it owns; the namespace
		// controller then deletes the pods and finalizes the namespace.
		Eventually(func(g Gomega) {
			for _, c := range clusters {
				key := client.ObjectKey{Namespace: project.Name, Name: "api"}
				g.Expect(apierrors.IsNotFound(remotes[c].Get(ctx, key, &appsv1.Deployment{}))).To(BeTrue(), "Deployment in %s", c)
				g.Expect(apierrors.IsNotFound(remotes[c].Get(ctx, key, &corev1.Service{}))).To(BeTrue(), "Service in %s", c)
				err := remotes[c].Get(ctx, client.ObjectKey{Name: project.Name}, &corev1.Namespace{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace %s is gone from %s", project.Name, c)
			}
		}).Should(Succeed())
	})
})
