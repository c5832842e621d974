package controllers_test

import (
	"strings"
	"time"

	"context"
	"errors"

	"github.com/convoy-dev/convoy/controllers"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
)

var _ = Describe("Project", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	It("propagates only to selected clusters, with labels and per-cluster overrides", func() {
		project := newProject(ns, selectEnv("prod"),
			workload("api", "registry.example/api:1.0", 2, true),
			workload("worker", "registry.example/worker:1.0", 1, false))
		project.Spec.Overrides = []convoyv1.ClusterOverride{{
			Clusters:  selectNames("svc-b"),
			Workloads: []string{"api"},
			Replicas:  ptr.To[int32](5),
			Images:    []convoyv1.ImageOverride{{Container: "app", Image: "registry.example/api:1.1-canary"}},
		}}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())

		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) {
				remoteNS := &corev1.Namespace{}
				g.Expect(sc.client.Get(ctx, client.ObjectKey{Name: project.Name}, remoteNS)).To(Succeed())
				g.Expect(remoteNS.Labels).To(HaveKeyWithValue(convoyv1.ManagedByLabel, "convoy"))
				g.Expect(remoteNS.Labels).To(HaveKeyWithValue(convoyv1.ProjectNamespaceLabel, ns))
				g.Expect(remoteNS.Labels).To(HaveKeyWithValue(convoyv1.ProjectNameLabel, project.Name))

				api := remoteDeployment(g, sc, project.Name, "api")
				g.Expect(api.Labels).To(HaveKeyWithValue(convoyv1.WorkloadLabel, "api"))
				g.Expect(api.Spec.Template.Labels).To(HaveKeyWithValue("app", "api"))
				g.Expect(api.Spec.Template.Labels).To(HaveKeyWithValue(convoyv1.WorkloadLabel, "api"))
				remoteDeployment(g, sc, project.Name, "worker")

				svc := &corev1.Service{}
				g.Expect(sc.client.Get(ctx, client.ObjectKey{Namespace: project.Name, Name: "api"}, svc)).To(Succeed())
				g.Expect(svc.Spec.Selector).To(HaveKeyWithValue(convoyv1.WorkloadLabel, "api"))
				g.Expect(svc.Spec.Ports).To(HaveLen(1))
				g.Expect(svc.Spec.Ports[0].TargetPort.StrVal).To(Equal("http"))
				err := sc.client.Get(ctx, client.ObjectKey{Namespace: project.Name, Name: "worker"}, &corev1.Service{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "worker has no ports, so no Service")
			}, timeout, interval).Should(Succeed())
		}

		Eventually(func(g Gomega) {
			a := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(*a.Spec.Replicas).To(Equal(int32(2)))
			g.Expect(a.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example/api:1.0"))
			b := remoteDeployment(g, svcB, project.Name, "api")
			g.Expect(*b.Spec.Replicas).To(Equal(int32(5)))
			g.Expect(b.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example/api:1.1-canary"))
			w := remoteDeployment(g, svcB, project.Name, "worker")
			g.Expect(*w.Spec.Replicas).To(Equal(int32(1)), "override limited to api")
		}, timeout, interval).Should(Succeed())

		canary := newProject(ns, convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"stage": "canary"}}}, workload("api", "registry.example/api:2.0", 1, false))
		Expect(k8sClient.Create(ctx, canary)).To(Succeed())
		Eventually(func(g Gomega) {
			remoteDeployment(g, svcA, canary.Name, "api")
			g.Expect(clusterStatus(g, canary, "svc-a").Reason).To(Equal(convoyv1.ReasonProgressing))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			err := svcB.client.Get(ctx, client.ObjectKey{Name: canary.Name}, &corev1.Namespace{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "svc-b is not labelled stage=canary")
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(getProject(Default, canary).Status.Clusters).To(HaveLen(1))
	})

	It("reports live Deployment status per cluster and aggregates readiness", func() {
		project := newProject(ns, selectNames("svc-a", "svc-b"), workload("api", "registry.example/api:1.0", 3, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())

		Eventually(func(g Gomega) {
			p := getProject(g, project)
			g.Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))
			g.Expect(p.Status.ReadyClusters).To(Equal("0/2"))
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.ReconcilingCondition)).To(BeTrue())
			st := clusterStatus(g, project, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonProgressing))
			g.Expect(st.Synced).To(BeTrue())
			g.Expect(st.LastSyncTime).NotTo(BeNil())
			// No pods yet: every zone of the ServiceCluster is listed, empty.
			g.Expect(st.Workloads).To(ConsistOf(convoyv1.WorkloadStatus{Name: "api", Kind: "Deployment", Replicas: 3, Images: []string{"registry.example/api:1.0"},
				Zones: []convoyv1.ZonePods{{Zone: "ap-northeast-2a"}, {Zone: "ap-northeast-2b"}}, ZoneSkew: ptr.To[int32](0)}))
		}, timeout, interval).Should(Succeed())

		// envtest runs no controller-manager: play the Deployment controller in each cluster.
		for _, sc := range []*serviceCluster{svcA, svcB} {
			markAvailable(sc, project.Name, "api", 3)
		}
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			g.Expect(p.Status.ReadyClusters).To(Equal("2/2"))
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.ReadyCondition)).To(BeTrue())
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, convoyv1.ReconcilingCondition)).To(BeNil())
			g.Expect(clusterStatus(g, project, "svc-b").Workloads).To(ConsistOf(And(
				HaveField("Name", "api"), HaveField("Replicas", int32(3)), HaveField("ReadyReplicas", int32(3)),
				HaveField("UpdatedReplicas", int32(3)), HaveField("AvailableReplicas", int32(3)))))
		}, timeout, interval).Should(Succeed())
	})

	It("puts back remote edits and deletions, and leaves fields that others own alone", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 2, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcA, project.Name, "api") }, timeout, interval).Should(Succeed())

		By("editing the image and replicas in the service cluster, as kubectl edit would")
		Eventually(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			d.Spec.Template.Spec.Containers[0].Image = "evil/image:latest"
			d.Spec.Replicas = ptr.To[int32](7)
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations["team.example/note"] = "kept"
			g.Expect(svcA.client.Update(ctx, d, client.FieldOwner("kubectl-edit"))).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example/api:1.0"))
			g.Expect(*d.Spec.Replicas).To(Equal(int32(2)))
			g.Expect(d.Annotations).To(HaveKeyWithValue("team.example/note", "kept"), "a field convoy does not own stays")
		}, timeout, interval).Should(Succeed())

		By("deleting the Service and the Deployment in the service cluster")
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}}
		Expect(svcA.client.Delete(ctx, svc)).To(Succeed())
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}}
		oldUID := remoteDeployment(Default, svcA, project.Name, "api").UID
		Expect(svcA.client.Delete(ctx, dep)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(svcA.client.Get(ctx, client.ObjectKeyFromObject(svc), &corev1.Service{})).To(Succeed())
			g.Expect(remoteDeployment(g, svcA, project.Name, "api").UID).NotTo(Equal(oldUID))
		}, timeout, interval).Should(Succeed())
	})

	It("leaves spec.replicas to an autoscaler when the workload does not set replicas", func() {
		w := workload("api", "registry.example/api:1.0", 0, false)
		w.Replicas = nil
		project := newProject(ns, selectNames("svc-a"), w)
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(*remoteDeployment(g, svcA, project.Name, "api").Spec.Replicas).To(Equal(int32(1)))
		}, timeout, interval).Should(Succeed())

		By("scaling through the scale subresource, as the HorizontalPodAutoscaler does")
		Expect(scaleDeployment(svcA, project.Name, "api", 4)).To(Succeed())
		before := writes.Get("svc-a")
		Consistently(func(g Gomega) {
			g.Expect(*remoteDeployment(g, svcA, project.Name, "api").Spec.Replicas).To(Equal(int32(4)))
		}, 3*resyncPeriod, 200*time.Millisecond).Should(Succeed())
		Expect(writes.InNamespace("svc-a", before, project.Name)).To(BeEmpty(), "convoy must not fight the autoscaler")
	})

	It("prunes a removed workload and clusters that are no longer targeted", func() {
		project := newProject(ns, selectEnv("prod"),
			workload("api", "registry.example/api:1.0", 1, true),
			workload("worker", "registry.example/worker:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) { remoteDeployment(g, sc, project.Name, "worker") }, timeout, interval).Should(Succeed())
		}

		By("removing the worker workload")
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.Workloads = p.Spec.Workloads[:1]
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) {
				g.Expect(gone(g, sc, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "worker"}})).To(BeTrue())
				g.Expect(gone(g, sc, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "worker"}})).To(BeTrue())
				remoteDeployment(g, sc, project.Name, "api")
			}, timeout, interval).Should(Succeed())
		}

		By("narrowing placement to svc-a")
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.Placement = selectNames("svc-a")
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(gone(g, svcB, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})).To(BeTrue())
			g.Expect(gone(g, svcB, remoteNamespace(project.Name))).To(BeTrue())
			g.Expect(getProject(g, project).Status.Clusters).To(HaveLen(1))
		}, timeout, interval).Should(Succeed())
		remoteDeployment(Default, svcA, project.Name, "api")
	})

	It("removes everything from every cluster when the Project is deleted", func() {
		project := newProject(ns, selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) { remoteDeployment(g, sc, project.Name, "api") }, timeout, interval).Should(Succeed())
		}
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Expect(gone(Default, sc, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})).To(BeTrue())
			Expect(gone(Default, sc, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})).To(BeTrue())
			Expect(gone(Default, sc, remoteNamespace(project.Name))).To(BeTrue())
		}
	})

	It("keeps a namespace that holds objects it does not own, and says what blocks the deletion", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcA, project.Name, "api") }, timeout, interval).Should(Succeed())
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "team-reader"}}
		Expect(svcA.client.Create(ctx, role)).To(Succeed())

		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonCleanupPending))
			g.Expect(st.Message).To(ContainSubstring("holds objects convoy does not own (Role/team-reader)"))
			g.Expect(gone(g, svcA, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		Expect(gone(Default, svcA, remoteNamespace(project.Name))).To(BeFalse(), "the namespace and the Role survive")

		By("removing the foreign object lets the deletion finish at once: convoy watches what blocks it")
		// The suite's periodic namespace recheck is minutes away: only the watch is fast enough.
		Expect(svcA.client.Delete(ctx, role)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{}))).To(BeTrue())
			g.Expect(gone(g, svcA, remoteNamespace(project.Name))).To(BeTrue())
		}, 10*time.Second, interval).Should(Succeed())
	})

	It("refuses to touch an object it does not own and reports a Conflict", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, false))
		existing := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: project.Name, Labels: map[string]string{"owner": "someone-else"}}}
		Expect(svcA.client.Create(ctx, existing)).To(Succeed())
		Expect(svcA.client.Get(ctx, client.ObjectKeyFromObject(existing), existing)).To(Succeed())
		Expect(k8sClient.Create(ctx, project)).To(Succeed())

		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonConflict))
			g.Expect(st.Message).To(ContainSubstring("was not created by convoy"))
			p := getProject(g, project)
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.StalledCondition)).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		after := &corev1.Namespace{}
		Expect(svcA.client.Get(ctx, client.ObjectKeyFromObject(existing), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(existing.ResourceVersion), "the unowned namespace is untouched")
		err := svcA.client.Get(ctx, client.ObjectKey{Namespace: project.Name, Name: "api"}, &appsv1.Deployment{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is created inside a namespace convoy does not own")

		By("deleting the Project: the foreign namespace must survive")
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{}))).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		Expect(svcA.client.Get(ctx, client.ObjectKeyFromObject(existing), after)).To(Succeed())
		Expect(after.DeletionTimestamp).To(BeNil())
	})

	It("gives the later of two Projects claiming one namespace the Conflict", func() {
		first := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, first)).To(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcA, first.Name, "api") }, timeout, interval).Should(Succeed())

		second := newProject(ns, selectNames("svc-a"), workload("web", "registry.example/web:1.0", 1, false))
		second.Spec.Namespace = first.Name
		Expect(k8sClient.Create(ctx, second)).To(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, second, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonConflict))
			g.Expect(st.Message).To(ContainSubstring("already belongs to Project " + ns + "/" + first.Name))
		}, timeout, interval).Should(Succeed())
		remoteNS := &corev1.Namespace{}
		Expect(svcA.client.Get(ctx, client.ObjectKey{Name: first.Name}, remoteNS)).To(Succeed())
		Expect(remoteNS.Labels).To(HaveKeyWithValue(convoyv1.ProjectNameLabel, first.Name))
		err := svcA.client.Get(ctx, client.ObjectKey{Namespace: first.Name, Name: "web"}, &appsv1.Deployment{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})

	It("sends no write to service clusters when a resync finds nothing to change", func() {
		project := newProject(ns, selectEnv("prod"),
			workload("api", "registry.example/api:1.0", 2, true),
			workload("worker", "registry.example/worker:1.0", 1, false))
		project.Spec.Workloads[0].Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("0.5"), corev1.ResourceMemory: mustQuantity("256Mi")},
		}
		project.Spec.Workloads[0].Template.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		project.Spec.Workloads[0].Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			for _, c := range []string{"svc-a", "svc-b"} {
				g.Expect(clusterStatus(g, project, c).Synced).To(BeTrue())
			}
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.Spec.Template.Spec.Volumes[0].EmptyDir).NotTo(BeNil())
		}, timeout, interval).Should(Succeed())
		// Let in-flight reconciles of other tests' objects settle before counting.
		time.Sleep(resyncPeriod)

		reconcilesBefore := reconcileCount("project")
		writesA, writesB := writes.Get("svc-a"), writes.Get("svc-b")
		Expect(writesA).To(BeNumerically(">", 0), "the counter must see the writes that created the objects")
		time.Sleep(3 * resyncPeriod)
		Expect(reconcileCount("project")-reconcilesBefore).To(BeNumerically(">=", 2), "resyncs must have run")
		// Counted in the Project's namespace: other tests' cleanups may still write elsewhere.
		Expect(writes.InNamespace("svc-a", writesA, project.Name)).To(BeEmpty(), "writes to svc-a during no-op resyncs")
		Expect(writes.InNamespace("svc-b", writesB, project.Name)).To(BeEmpty(), "writes to svc-b during no-op resyncs")
		GinkgoWriter.Printf("All writes during the window: svc-a %v, svc-b %v\n", writes.InNamespace("svc-a", writesA, ""), writes.InNamespace("svc-b", writesB, ""))
	})

	It("prunes nothing when listing ServiceClusters fails", func() {
		project := newProject(ns, selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			for _, c := range []string{"svc-a", "svc-b"} {
				g.Expect(clusterStatus(g, project, c).Synced).To(BeTrue())
			}
		}, timeout, interval).Should(Succeed())

		// A reconciler whose manager-cluster client fails to list ServiceClusters, as during an
		// etcd hiccup. The real reconciler keeps running; this one is driven by hand.
		base, err := client.NewWithWatch(managerCfg, client.Options{Scheme: k8sClient.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		failing := interceptor.NewClient(base, interceptor.Funcs{
			List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				if _, ok := list.(*convoyv1.ServiceClusterList); ok {
					return errors.New("etcdserver: request timed out")
				}
				return c.List(ctx, list, opts...)
			},
		})
		sync := controllers.PairSyncer(failing, fleet)
		writesA, writesB := writes.Get("svc-a"), writes.Get("svc-b")
		for _, c := range []string{"svc-a", "svc-b"} {
			_, err = sync(ctx, engine.Pair{Project: client.ObjectKeyFromObject(project), Cluster: c})
			Expect(err).To(MatchError(ContainSubstring("listing ServiceClusters")))
		}
		// Counted in the Project's namespace: other tests' cleanups may still write elsewhere.
		Expect(writes.InNamespace("svc-a", writesA, project.Name)).To(BeEmpty())
		Expect(writes.InNamespace("svc-b", writesB, project.Name)).To(BeEmpty())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Expect(gone(Default, sc, remoteNamespace(project.Name))).To(BeFalse())
			remoteDeployment(Default, sc, project.Name, "api")
		}
	})

	It("names unknown clusters in status", func() {
		project := newProject(ns, selectNames("svc-a", "does-not-exist"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, "does-not-exist")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonClusterNotFound))
			ready := meta.FindStatusCondition(getProject(g, project).Status.Conditions, convoyv1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(strings.Contains(ready.Message, "does-not-exist")).To(BeTrue())
		}, timeout, interval).Should(Succeed())
	})
})
