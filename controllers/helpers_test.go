package controllers_test

import (
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

var nameSeq atomic.Int32

// uniqueName keeps tests apart: every Project gets its own remote namespace.
func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1)) }

// newTestNamespace creates a manager-cluster namespace for one test.
func newTestNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("team")}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func workload(name, image string, replicas int32, withService bool) convoyv1.Workload {
	w := convoyv1.Workload{
		Name:     name,
		Replicas: ptr.To(replicas),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: image,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}},
		},
	}
	if withService {
		w.Ports = []convoyv1.ServicePort{{Name: "http", Port: 80, TargetPort: ptr.To(intOrString("http"))}}
	}
	return w
}

func newProject(namespace string, placement convoyv1.ClusterSelection, workloads ...convoyv1.Workload) *convoyv1.Project {
	return &convoyv1.Project{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("shop"), Namespace: namespace},
		Spec: convoyv1.ProjectSpec{
			Owner:     convoyv1.ProjectOwner{Team: "payments", Contacts: []string{"#payments-oncall"}},
			Placement: placement,
			Workloads: workloads,
		},
	}
}

func selectEnv(env string) convoyv1.ClusterSelection {
	return convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": env}}}
}

func selectNames(names ...string) convoyv1.ClusterSelection {
	return convoyv1.ClusterSelection{ClusterNames: names}
}

// clusterReady returns the ServiceCluster's Ready reason, prefixed with "NotReady:" when not True.
func clusterReady(g Gomega, name string) string {
	sc := &convoyv1.ServiceCluster{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, sc)).To(Succeed())
	c := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
	if c == nil {
		return "NotReady:none"
	}
	if c.Status != metav1.ConditionTrue {
		return "NotReady:" + c.Reason
	}
	return c.Reason
}

func getProject(g Gomega, p *convoyv1.Project) *convoyv1.Project {
	out := &convoyv1.Project{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), out)).To(Succeed())
	return out
}

// clusterStatus returns the Project's status entry for one cluster (zero value when absent).
func clusterStatus(g Gomega, p *convoyv1.Project, cluster string) convoyv1.ProjectClusterStatus {
	for _, st := range getProject(g, p).Status.Clusters {
		if st.Name == cluster {
			return st
		}
	}
	return convoyv1.ProjectClusterStatus{}
}

func remoteDeployment(g Gomega, sc *serviceCluster, namespace, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(sc.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d)).To(Succeed())
	return d
}

// gone reports whether a remote object is deleted or being deleted. envtest has no namespace
// controller, so a deleted namespace stays Terminating.
func gone(g Gomega, sc *serviceCluster, obj client.Object) bool {
	err := sc.client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if err != nil {
		g.Expect(client.IgnoreNotFound(err)).To(Succeed())
		return true
	}
	return !obj.GetDeletionTimestamp().IsZero()
}

func remoteNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func intOrString(s string) intstr.IntOrString { return intstr.FromString(s) }

// markAvailable plays the Deployment controller, which envtest does not run.
func markAvailable(sc *serviceCluster, namespace, name string, replicas int32) {
	Eventually(func(g Gomega) {
		d := remoteDeployment(g, sc, namespace, name)
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: replicas, ReadyReplicas: replicas,
			UpdatedReplicas: replicas, AvailableReplicas: replicas,
		}
		g.Expect(sc.client.Status().Update(ctx, d)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

// scaleDeployment writes the scale subresource, as the HorizontalPodAutoscaler does.
func scaleDeployment(sc *serviceCluster, namespace, name string, replicas int32) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	return sc.client.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(scale), client.FieldOwner("horizontal-pod-autoscaler"))
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// reconcileCount reads controller-runtime's reconcile counter for one controller.
func reconcileCount(controller string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var total float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// expectNoWritesDuringResyncs lets the Projects settle for one resync period, then checks
// that the next three resyncs send no write to the project namespace in the cluster: steady
// state costs nothing. Writes elsewhere may come from other tests' cleanups.
func expectNoWritesDuringResyncs(cluster, projectNamespace string) {
	GinkgoHelper()
	time.Sleep(resyncPeriod)
	before := writes.Get(cluster)
	time.Sleep(3 * resyncPeriod)
	Expect(writes.InNamespace(cluster, before, projectNamespace)).To(BeEmpty())
}
