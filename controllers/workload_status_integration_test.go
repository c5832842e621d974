package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

var _ = Describe("Status that says why", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	stalledMessage := func(g Gomega, project *convoyv1.Project) string {
		c := meta.FindStatusCondition(getProject(g, project).Status.Conditions, convoyv1.StalledCondition)
		g.Expect(c).NotTo(BeNil(), "Stalled")
		return c.Message
	}

	It("reports what the pods wait for, and a rollout past its deadline as WorkloadFailed", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:typo", 2, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcA, project.Name, "api") }, timeout, interval).Should(Succeed())

		By("pods that cannot pull their image (envtest runs no kubelet: the test writes their status)")
		labels := render.SelectorLabels(project, "api")
		labels[convoyv1.ManagedByLabel] = convoyv1.ManagedByValue
		for _, name := range []string{"api-1", "api-2"} {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: project.Name, Labels: labels},
				Spec:       corev1.PodSpec{NodeName: "node-x", Containers: []corev1.Container{{Name: "app", Image: "registry.example/api:typo"}}},
			}
			Expect(svcA.client.Create(ctx, pod)).To(Succeed())
			pod.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", Image: "registry.example/api:typo",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry.example/api:typo"`}},
			}}}
			Expect(svcA.client.Status().Update(ctx, pod)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonProgressing))
			g.Expect(st.Workloads).To(HaveLen(1))
			g.Expect(st.Workloads[0].PodProblems).To(Equal([]convoyv1.PodProblem{
				{Reason: "ImagePullBackOff", Pods: 2, Message: `Back-off pulling image "registry.example/api:typo"`},
			}))
			g.Expect(st.Message).To(ContainSubstring(`api: 2 ImagePullBackOff (Back-off pulling image "registry.example/api:typo")`))
		}, timeout, interval).Should(Succeed())

		By("the Deployment controller gives up after progressDeadlineSeconds")
		// Its revision annotation first: an annotation change bumps a Deployment's generation.
		Expect(svcA.client.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}},
			client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"deployment.kubernetes.io/revision":"3"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			d.Status = appsv1.DeploymentStatus{
				ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2,
				Conditions: []appsv1.DeploymentCondition{{
					Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
					Message: `ReplicaSet "api-6d4cf56db6" has timed out progressing.`,
				}},
			}
			g.Expect(svcA.client.Status().Update(ctx, d)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonWorkloadFailed), "%+v", st)
			ws := st.Workloads[0]
			g.Expect(ws.Failed).To(BeTrue())
			g.Expect(ws.Revision).To(Equal("3"))
			g.Expect(ws.Images).To(Equal([]string{"registry.example/api:typo"}))
			g.Expect(stalledMessage(g, project)).To(ContainSubstring(
				`svc-a: Rollout failed: api: ProgressDeadlineExceeded: ReplicaSet "api-6d4cf56db6" has timed out progressing.; 2 ImagePullBackOff`))
		}, timeout, interval).Should(Succeed())
	})

	It("refuses a template that Kubernetes refuses before pushing anything, naming the Project field", func() {
		w := workload("api", "registry.example/api:1.0", 1, false)
		w.Template.Spec.Containers[0].Name = "Bad_Name" // not a DNS label: every API server refuses it
		project := newProject(ns, selectEnv("prod"), w)
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getProject(g, project).Status.Conditions, convoyv1.StalledCondition)
			g.Expect(c).NotTo(BeNil(), "Stalled")
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonInvalidSpec))
			g.Expect(c.Message).To(HavePrefix(`spec.workloads[0].template.spec.containers[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label`))
			g.Expect(c.Message).To(HaveSuffix("(in svc-a, svc-b)"))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(gone(g, svcA, remoteNamespace(project.Name))).To(BeTrue(), "nothing is pushed")
			g.Expect(gone(g, svcB, remoteNamespace(project.Name))).To(BeTrue(), "nothing is pushed")
		}, 2*resyncPeriod, interval).Should(Succeed())

		By("fixing the Project delivers it")
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.Workloads[0].Template.Spec.Containers[0].Name = "app"
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(remoteDeployment(g, svcA, project.Name, "api").Spec.Template.Spec.Containers[0].Name).To(Equal("app"))
			g.Expect(remoteDeployment(g, svcB, project.Name, "api").Spec.Template.Spec.Containers[0].Name).To(Equal("app"))
		}, timeout, interval).Should(Succeed())
	})

	It("stalls with the cluster's message when its own admission refuses an object, without a retry storm", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "forbidden.example/api:1.0", 1, false))
		By("a ValidatingAdmissionPolicy in svc-a refuses images of forbidden.example in the Project's namespace")
		policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: project.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: ptr.To(admissionregistrationv1.Fail),
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					},
				}}},
				Validations: []admissionregistrationv1.Validation{{
					Expression: "object.spec.template.spec.containers.all(c, !c.image.startsWith('forbidden.example/'))",
					Message:    "images from forbidden.example are not allowed in this cluster",
				}},
			},
		}
		binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: project.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        project.Name,
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
				MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{corev1.LabelMetadataName: project.Name},
				}},
			},
		}
		Expect(svcA.client.Create(ctx, policy)).To(Succeed())
		Expect(svcA.client.Create(ctx, binding)).To(Succeed())
		DeferCleanup(func() {
			Expect(svcA.client.Delete(ctx, binding)).To(Succeed())
			Expect(svcA.client.Delete(ctx, policy)).To(Succeed())
		})
		time.Sleep(2 * time.Second) // the API server compiles a new policy before it enforces it

		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonRejected))
			g.Expect(st.Message).To(ContainSubstring("images from forbidden.example are not allowed in this cluster"))
			g.Expect(stalledMessage(g, project)).To(ContainSubstring("images from forbidden.example are not allowed"))
		}, timeout, interval).Should(Succeed())

		// Only resyncs try again (every 2 s in this suite); a retry with backoff would send
		// dozens of requests in the same time.
		before := writes.Get("svc-a")
		time.Sleep(3 * resyncPeriod)
		Expect(len(writes.InNamespace("svc-a", before, project.Name))).To(BeNumerically("<=", 5))

		By("fixing the Project clears it")
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.Workloads[0].Template.Spec.Containers[0].Image = "registry.example/api:1.0"
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(remoteDeployment(g, svcA, project.Name, "api").Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example/api:1.0"))
			g.Expect(clusterStatus(g, project, "svc-a").Reason).NotTo(Equal(convoyv1.ReasonRejected))
		}, timeout, interval).Should(Succeed())
	})
})
