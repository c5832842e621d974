//go:build e2e

package e2e

import (
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

// A whole service on the fleet: the clusters' own controllers act on what convoy delivers
// (the HorizontalPodAutoscaler controller scales the worker, the disruption controller
// counts the api's pods, the Deployment controller rolls on a Secret change).
var _ = Describe("A whole service on the local fleet", Ordered, func() {
	var project *convoyv1.Project
	var secret *corev1.Secret

	BeforeAll(func() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-svc-"}}
		Expect(manager.Create(ctx, ns)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(manager.Delete(ctx, ns))).To(Succeed()) })
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "db"}, StringData: map[string]string{"password": "first"}}
		Expect(manager.Create(ctx, secret)).To(Succeed())

		agnhost := func(args ...string) corev1.Container {
			return corev1.Container{Name: "app", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53", Args: args}
		}
		api := agnhost("netexec")
		api.EnvFrom = []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}},
		}
		project = &convoyv1.Project{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-svc-" + strconv.FormatInt(time.Now().Unix()%100000, 10), Namespace: ns.Name},
			Spec: convoyv1.ProjectSpec{
				Owner:      convoyv1.ProjectOwner{Team: "e2e"},
				Placement:  convoyv1.ClusterSelection{ClusterNames: clusters},
				ConfigMaps: []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"REGION_ENDPOINT": "https://seoul.example"}}},
				Secrets:    []convoyv1.ProjectSecret{{Name: "db"}},
				Workloads: []convoyv1.Workload{{
					Name: "api", Replicas: ptr.To[int32](3),
					Template:         corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{api}}},
					DisruptionBudget: &convoyv1.DisruptionBudget{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
					ServiceAccount:   &convoyv1.WorkloadServiceAccount{},
				}, {
					Name:        "worker",
					Template:    corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{agnhost("pause")}}},
					Autoscaling: &convoyv1.WorkloadAutoscaling{MinReplicas: ptr.To[int32](2), MaxReplicas: 4},
				}},
				Overrides: []convoyv1.ClusterOverride{{
					Clusters:    convoyv1.ClusterSelection{ClusterNames: []string{"tokyo-1"}},
					ConfigMaps:  []convoyv1.ConfigMapOverride{{Name: "settings", Data: map[string]string{"REGION_ENDPOINT": "https://tokyo.example"}}},
					Autoscaling: &convoyv1.AutoscalingOverride{MinReplicas: ptr.To[int32](3)},
				}},
			},
		}
		Expect(manager.Create(ctx, project)).To(Succeed())
	})

	get := func(g Gomega, cluster string, obj client.Object, name string) {
		g.Expect(remotes[cluster].Get(ctx, client.ObjectKey{Namespace: project.Name, Name: name}, obj)).To(Succeed(), "%T %s in %s", obj, name, cluster)
	}

	It("delivers config, the Secret, a ServiceAccount, an autoscaler the cluster acts on and a disruption budget", func() {
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.ReadyCondition)).To(BeTrue(), "Project Ready: %v", p.Status.Conditions)
		}).Should(Succeed())
		for _, c := range clusters {
			Eventually(func(g Gomega) {
				cm := &corev1.ConfigMap{}
				get(g, c, cm, "settings")
				want := "https://seoul.example"
				minWorkers := int32(2)
				if c == "tokyo-1" {
					want, minWorkers = "https://tokyo.example", 3
				}
				g.Expect(cm.Data).To(HaveKeyWithValue("REGION_ENDPOINT", want))
				s := &corev1.Secret{}
				get(g, c, s, "db")
				g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("first")))
				get(g, c, &corev1.ServiceAccount{}, "api")

				// The cluster's HPA controller raises the worker from 1 to its minimum; convoy
				// never writes the worker's replicas.
				hpa := &autoscalingv2.HorizontalPodAutoscaler{}
				get(g, c, hpa, "worker")
				g.Expect(*hpa.Spec.MinReplicas).To(Equal(minWorkers))
				worker := &appsv1.Deployment{}
				get(g, c, worker, "worker")
				g.Expect(worker.Spec.Replicas).To(HaveValue(Equal(minWorkers)), "%s: scaled by the HPA controller", c)

				// The disruption controller counts the api's pods under its budget.
				pdb := &policyv1.PodDisruptionBudget{}
				get(g, c, pdb, "api")
				g.Expect(pdb.Status.ExpectedPods).To(Equal(int32(3)), c)
				g.Expect(pdb.Status.DisruptionsAllowed).To(Equal(int32(1)), c)
			}).Should(Succeed())
		}
	})

	It("tells what it did in every cluster as Events on the Project", func() {
		Eventually(func(g Gomega) {
			var list eventsv1.EventList
			g.Expect(manager.List(ctx, &list, client.InNamespace(project.Namespace))).To(Succeed())
			applied := map[string]bool{}
			for _, e := range list.Items {
				if e.Regarding.Name == project.Name && e.Reason == "Created" && e.Related != nil {
					applied[e.Related.Name] = applied[e.Related.Name] || strings.Contains(e.Note, "Namespace "+project.Name)
				}
			}
			for _, c := range clusters {
				g.Expect(applied).To(HaveKeyWithValue(c, true), "a Created Event for %s", c)
			}
		}).Should(Succeed())
	})

	It("rolls the api in every cluster when the Secret changes", func() {
		hashes := map[string]string{}
		for _, c := range clusters {
			Eventually(func(g Gomega) {
				d := &appsv1.Deployment{}
				get(g, c, d, "api")
				hashes[c] = d.Spec.Template.Annotations[render.ConfigHashAnnotation]
				g.Expect(hashes[c]).NotTo(BeEmpty())
			}).Should(Succeed())
		}
		Eventually(func(g Gomega) {
			g.Expect(manager.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
			secret.Data = map[string][]byte{"password": []byte("rotated")}
			g.Expect(manager.Update(ctx, secret)).To(Succeed())
		}).Should(Succeed())
		for _, c := range clusters {
			Eventually(func(g Gomega) {
				s := &corev1.Secret{}
				get(g, c, s, "db")
				g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("rotated")))
				d := &appsv1.Deployment{}
				get(g, c, d, "api")
				g.Expect(d.Spec.Template.Annotations[render.ConfigHashAnnotation]).NotTo(Equal(hashes[c]))
				// The Deployment controller finished the rollout of the new template.
				g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
				g.Expect(d.Status.UpdatedReplicas).To(Equal(int32(3)), c)
				g.Expect(d.Status.AvailableReplicas).To(Equal(int32(3)), c)
			}).Should(Succeed())
		}
	})

	It("removes every kind from every cluster when the Project is deleted", func() {
		Expect(manager.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			err := manager.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the finalizer is released")
			for _, c := range clusters {
				err := remotes[c].Get(ctx, client.ObjectKey{Name: project.Name}, &corev1.Namespace{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace %s is gone from %s", project.Name, c)
			}
		}).Should(Succeed())
	})
})
