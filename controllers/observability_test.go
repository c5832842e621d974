package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// eventsAbout lists the events.k8s.io Events regarding an object.
func eventsAbout(g Gomega, kind, namespace, name string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8sClient.List(ctx, &list)).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Namespace == namespace && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// metricValue sums a counter's or histogram's count over the series whose labels include want.
func metricValue(name string, want map[string]string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var total float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

var _ = Describe("What convoy did, where people look", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	It("records every remote write as an Event on the Project and in metrics, and a conflict as a Warning", func() {
		createsBefore := metricValue("convoy_remote_writes_total", map[string]string{"cluster": "svc-b", "kind": "Deployment", "operation": "create"})
		propagationBefore := metricValue("convoy_propagation_seconds", map[string]string{"cluster": "svc-b"})
		project := newProject(ns, selectNames("svc-b"), workload("api", "registry.example/api:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			var applied *eventsv1.Event
			for _, e := range eventsAbout(g, "Project", ns, project.Name) {
				if e.Reason == "Created" {
					applied = &e
				}
			}
			g.Expect(applied).NotTo(BeNil(), "a Created Event")
			g.Expect(applied.Type).To(Equal(corev1.EventTypeNormal))
			g.Expect(applied.Note).To(Equal("svc-b: Namespace " + project.Name + ", Deployment " + project.Name + "/api, Service " + project.Name + "/api"))
			g.Expect(applied.Related).NotTo(BeNil())
			g.Expect(applied.Related.Name).To(Equal("svc-b"))
			g.Expect(metricValue("convoy_remote_writes_total", map[string]string{"cluster": "svc-b", "kind": "Deployment", "operation": "create"})).To(BeNumerically(">", createsBefore))
			g.Expect(metricValue("convoy_propagation_seconds", map[string]string{"cluster": "svc-b"})).To(BeNumerically(">", propagationBefore))
		}, timeout, interval).Should(Succeed())

		By("a remote edit is repaired and reported as an update")
		Eventually(func(g Gomega) {
			svc := &corev1.Service{}
			g.Expect(svcB.client.Get(ctx, client.ObjectKey{Namespace: project.Name, Name: "api"}, svc)).To(Succeed())
			svc.Spec.Ports[0].TargetPort = intstr.FromInt32(9999)
			g.Expect(svcB.client.Update(ctx, svc)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			notes := []string{}
			for _, e := range eventsAbout(g, "Project", ns, project.Name) {
				if e.Reason == "Updated" {
					notes = append(notes, e.Note)
				}
			}
			g.Expect(notes).To(Equal([]string{"svc-b: Service " + project.Name + "/api"}))
		}, timeout, interval).Should(Succeed())

		By("a conflict is a Warning, once")
		other := newProject(ns, selectNames("svc-b"), workload("api", "registry.example/api:1.0", 1, false))
		other.Spec.Namespace = project.Name
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		Eventually(func(g Gomega) {
			var warnings []eventsv1.Event
			for _, e := range eventsAbout(g, "Project", ns, other.Name) {
				if e.Type == corev1.EventTypeWarning && e.Reason == convoyv1.ReasonConflict {
					warnings = append(warnings, e)
				}
			}
			g.Expect(warnings).To(HaveLen(1))
			g.Expect(warnings[0].Note).To(ContainSubstring("already belongs to Project " + ns + "/" + project.Name))
			g.Expect(metricValue("convoy_remote_write_failures_total", map[string]string{"cluster": "svc-b", "kind": "Namespace", "reason": "conflict"})).To(BeNumerically(">", 0))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			n := 0
			for _, e := range eventsAbout(g, "Project", ns, other.Name) {
				if e.Reason == convoyv1.ReasonConflict {
					n++
				}
			}
			g.Expect(n).To(Equal(1), "resyncs of the same conflict send no new Event")
		}, 3*resyncPeriod, interval).Should(Succeed())

		By("deleting the Project reports what was removed")
		Expect(k8sClient.Delete(ctx, other)).To(Succeed())
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			notes := []string{}
			for _, e := range eventsAbout(g, "Project", ns, project.Name) {
				if e.Reason == "Removed" {
					notes = append(notes, e.Note)
				}
			}
			g.Expect(notes).To(ContainElement(And(HavePrefix("svc-b: "), ContainSubstring("Deployment "+project.Name+"/api"))))
		}, timeout, interval).Should(Succeed())
	})

	It("counts Projects by state", func() {
		project := newProject(ns, selectNames("no-such-cluster"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			var list convoyv1.ProjectList
			g.Expect(k8sClient.List(ctx, &list)).To(Succeed())
			total := 0.0
			for _, state := range []string{"ready", "stalled", "reconciling"} {
				total += metricValue("convoy_projects", map[string]string{"state": state})
			}
			g.Expect(total).To(BeEquivalentTo(len(list.Items)))
			g.Expect(metricValue("convoy_projects", map[string]string{"state": "stalled"})).To(BeNumerically(">=", 1), "the Project that targets a missing cluster")
		}, timeout, interval).Should(Succeed())
	})

	It("exports each cluster's health and reports its Ready changes as Events", func() {
		Eventually(func(g Gomega) {
			g.Expect(metricValue("convoy_cluster_ready", map[string]string{"cluster": "svc-a"})).To(Equal(1.0))
			g.Expect(metricValue("convoy_cluster_last_contact_timestamp_seconds", map[string]string{"cluster": "svc-a"})).To(BeNumerically(">", float64(metav1.Now().Unix()-60)))
			g.Expect(metricValue("convoy_remote_request_duration_seconds", map[string]string{"cluster": "svc-a", "method": "GET"})).To(BeNumerically(">", 0))
			var connected bool
			for _, e := range eventsAbout(g, "ServiceCluster", "", "svc-a") {
				connected = connected || (e.Reason == convoyv1.ReasonConnected && e.Type == corev1.EventTypeNormal)
			}
			g.Expect(connected).To(BeTrue(), "a Connected Event on the ServiceCluster")
		}, timeout, interval).Should(Succeed())
	})
})
