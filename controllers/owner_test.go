package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

var _ = Describe("Ownership where people look", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	It("labels every remote object with the team, names the contacts, and finds Projects by team", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, true))
		project.Spec.Owner = convoyv1.ProjectOwner{Team: "checkout", Contacts: []string{"#checkout-oncall"}}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		other := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, other)).To(Succeed()) // team "payments", from newProject

		Eventually(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			svc := &corev1.Service{}
			g.Expect(svcA.client.Get(ctx, client.ObjectKey{Namespace: project.Name, Name: "api"}, svc)).To(Succeed())
			remoteNS := &corev1.Namespace{}
			g.Expect(svcA.client.Get(ctx, client.ObjectKey{Name: project.Name}, remoteNS)).To(Succeed())
			for _, o := range []client.Object{d, svc, remoteNS} {
				g.Expect(o.GetLabels()).To(HaveKeyWithValue(convoyv1.TeamLabel, "checkout"), "%T", o)
				g.Expect(o.GetAnnotations()).To(HaveKeyWithValue(convoyv1.ContactsAnnotation, "#checkout-oncall"), "%T", o)
			}
			g.Expect(d.Spec.Template.Labels).NotTo(HaveKey(convoyv1.TeamLabel), "pods: a team change must not roll them")
		}, timeout, interval).Should(Succeed())

		By("kubectl get projects --field-selector spec.owner.team=checkout")
		var byTeam convoyv1.ProjectList
		Expect(k8sClient.List(ctx, &byTeam, client.InNamespace(ns), client.MatchingFields{"spec.owner.team": "checkout"})).To(Succeed())
		Expect(byTeam.Items).To(HaveLen(1))
		Expect(byTeam.Items[0].Name).To(Equal(project.Name))
	})

	It("refuses a team that cannot be a label value", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, false))
		project.Spec.Owner.Team = "Payments Team"
		err := k8sClient.Create(ctx, project)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.owner.team"))
		Expect(err.Error()).To(ContainSubstring("team must be a valid label value"))
	})
})
