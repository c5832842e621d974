package controllers_test

import (
	"bytes"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

// A whole service in one Project: config, Secrets, ServiceAccount, autoscaler and disruption
// budget in every targeted cluster, against real API servers.
var _ = Describe("A whole service in one Project", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	remote := func(g Gomega, sc *serviceCluster, obj client.Object) client.Object {
		g.Expect(sc.client.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		return obj
	}
	configHash := func(g Gomega, sc *serviceCluster, p *convoyv1.Project) string {
		return remoteDeployment(g, sc, p.Name, "api").Spec.Template.Annotations[render.ConfigHashAnnotation]
	}
	createSecret := func(name, password string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"password": password}}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		return s
	}
	// service is a Project whose api workload reads a ConfigMap and a Secret and has every
	// companion object.
	service := func() *convoyv1.Project {
		w := workload("api", "registry.example/api:1.0", 2, true)
		w.Replicas = nil
		w.Autoscaling = &convoyv1.WorkloadAutoscaling{MinReplicas: ptr.To[int32](2), MaxReplicas: 6}
		w.DisruptionBudget = &convoyv1.DisruptionBudget{MaxUnavailable: ptr.To(intstr.FromInt32(1))}
		w.ServiceAccount = &convoyv1.WorkloadServiceAccount{Annotations: map[string]string{"iam.example/role": "api-eu"}}
		app := &w.Template.Spec.Containers[0]
		app.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
		app.Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
		p := newProject(ns, selectEnv("prod"), w)
		p.Spec.ConfigMaps = []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"ENDPOINT": "https://eu.example", "LOG": "info"}}}
		p.Spec.Secrets = []convoyv1.ProjectSecret{{Name: "db"}}
		p.Spec.Overrides = []convoyv1.ClusterOverride{{
			Clusters:                  selectNames("svc-b"),
			ConfigMaps:                []convoyv1.ConfigMapOverride{{Name: "settings", Data: map[string]string{"ENDPOINT": "https://ap.example"}}},
			ServiceAccountAnnotations: map[string]string{"iam.example/role": "api-ap"},
			Autoscaling:               &convoyv1.AutoscalingOverride{MaxReplicas: ptr.To[int32](12)},
		}}
		return p
	}
	updateProject := func(p *convoyv1.Project, mutate func(*convoyv1.Project)) {
		Eventually(func(g Gomega) {
			current := getProject(g, p)
			mutate(current)
			g.Expect(k8sClient.Update(ctx, current)).To(Succeed())
		}, timeout, interval).Should(Succeed())
	}

	It("delivers, updates, repairs, prunes and deletes every kind in every cluster", func() {
		secret := createSecret("db", "first")
		project := service()
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		owner := map[string]string{convoyv1.ProjectNameLabel: project.Name, convoyv1.TeamLabel: "payments", convoyv1.ManagedByLabel: convoyv1.ManagedByValue}
		objects := func(sc *serviceCluster) []client.Object {
			key := metav1.ObjectMeta{Namespace: project.Name, Name: "api"}
			return []client.Object{
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "settings"}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "db"}},
				&corev1.ServiceAccount{ObjectMeta: key}, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: key},
				&policyv1.PodDisruptionBudget{ObjectMeta: key}, &appsv1.Deployment{ObjectMeta: key},
			}
		}

		By("every kind lands in both clusters with the owner labels and per-cluster overrides")
		hashes := map[string]string{}
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) {
				for _, obj := range objects(sc) {
					o := remote(g, sc, obj)
					for k, v := range owner {
						g.Expect(o.GetLabels()).To(HaveKeyWithValue(k, v), "%T", o)
					}
					g.Expect(o.GetAnnotations()).To(HaveKeyWithValue(convoyv1.ContactsAnnotation, "#payments-oncall"), "%T", o)
				}
				cm := remote(g, sc, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "settings"}}).(*corev1.ConfigMap)
				sa := remote(g, sc, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})
				hpa := remote(g, sc, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}}).(*autoscalingv2.HorizontalPodAutoscaler)
				s := remote(g, sc, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "db"}}).(*corev1.Secret)
				g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("first")))
				d := remoteDeployment(g, sc, project.Name, "api")
				g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal("api"))
				g.Expect(d.Spec.Template.Annotations).To(HaveKey(render.ConfigHashAnnotation))
				hashes[sc.name] = d.Spec.Template.Annotations[render.ConfigHashAnnotation]
				if sc == svcB {
					g.Expect(cm.Data).To(Equal(map[string]string{"ENDPOINT": "https://ap.example", "LOG": "info"}))
					g.Expect(sa.GetAnnotations()).To(HaveKeyWithValue("iam.example/role", "api-ap"))
					g.Expect(hpa.Spec.MaxReplicas).To(BeEquivalentTo(12))
				} else {
					g.Expect(cm.Data).To(Equal(map[string]string{"ENDPOINT": "https://eu.example", "LOG": "info"}))
					g.Expect(sa.GetAnnotations()).To(HaveKeyWithValue("iam.example/role", "api-eu"))
					g.Expect(hpa.Spec.MaxReplicas).To(BeEquivalentTo(6))
				}
			}, timeout, interval).Should(Succeed())
		}
		Expect(hashes["svc-a"]).NotTo(Equal(hashes["svc-b"]), "different config per cluster, different hash")
		Eventually(func(g Gomega) {
			g.Expect(clusterStatus(g, project, "svc-a").Synced).To(BeTrue())
			g.Expect(clusterStatus(g, project, "svc-b").Synced).To(BeTrue())
		}, timeout, interval).Should(Succeed())

		By("at rest, no writes")
		expectNoWritesDuringResyncs("svc-a", project.Name)

		By("a changed Secret in the manager reaches every cluster and rolls the workload")
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
			secret.Data = map[string][]byte{"password": []byte("rotated")}
			g.Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) {
				s := remote(g, sc, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "db"}}).(*corev1.Secret)
				g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("rotated")))
				g.Expect(configHash(g, sc, project)).NotTo(Equal(hashes[sc.name]))
			}, timeout, interval).Should(Succeed())
		}

		By("a remote edit of any of them is repaired")
		key := metav1.ObjectMeta{Namespace: project.Name, Name: "api"}
		for _, drift := range []struct {
			obj      client.Object
			edit     func(client.Object)
			repaired func(client.Object) bool
		}{
			{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "settings"}},
				func(o client.Object) { o.(*corev1.ConfigMap).Data["LOG"] = "debug" },
				func(o client.Object) bool { return o.(*corev1.ConfigMap).Data["LOG"] == "info" }},
			{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "db"}},
				func(o client.Object) { o.(*corev1.Secret).Data["password"] = []byte("tampered") },
				func(o client.Object) bool { return string(o.(*corev1.Secret).Data["password"]) == "rotated" }},
			{&corev1.ServiceAccount{ObjectMeta: key},
				func(o client.Object) { o.SetAnnotations(map[string]string{"iam.example/role": "admin"}) },
				func(o client.Object) bool { return o.GetAnnotations()["iam.example/role"] == "api-eu" }},
			{&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: key},
				func(o client.Object) { o.(*autoscalingv2.HorizontalPodAutoscaler).Spec.MaxReplicas = 100 },
				func(o client.Object) bool { return o.(*autoscalingv2.HorizontalPodAutoscaler).Spec.MaxReplicas == 6 }},
			{&policyv1.PodDisruptionBudget{ObjectMeta: key},
				func(o client.Object) {
					o.(*policyv1.PodDisruptionBudget).Spec.MaxUnavailable = ptr.To(intstr.FromInt32(5))
				},
				func(o client.Object) bool {
					return o.(*policyv1.PodDisruptionBudget).Spec.MaxUnavailable.IntValue() == 1
				}},
		} {
			Eventually(func(g Gomega) {
				o := remote(g, svcA, drift.obj)
				drift.edit(o)
				g.Expect(svcA.client.Update(ctx, o)).To(Succeed())
			}, timeout, interval).Should(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(drift.repaired(remote(g, svcA, drift.obj))).To(BeTrue(), "%T repaired", drift.obj)
			}, timeout, interval).Should(Succeed())
		}

		By("what the Project no longer wants is pruned")
		updateProject(project, func(p *convoyv1.Project) {
			p.Spec.Workloads[0].DisruptionBudget = nil
			p.Spec.Workloads[0].ServiceAccount = nil
			p.Spec.Overrides[0].ServiceAccountAnnotations = nil
		})
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) {
				g.Expect(gone(g, sc, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})).To(BeTrue())
				g.Expect(gone(g, sc, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})).To(BeTrue())
				g.Expect(remoteDeployment(g, sc, project.Name, "api").Spec.Template.Spec.ServiceAccountName).To(BeEmpty())
			}, timeout, interval).Should(Succeed())
		}

		By("deleting the Project removes everything")
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) {
				for _, obj := range objects(sc) {
					g.Expect(gone(g, sc, obj)).To(BeTrue(), "%T", obj)
				}
			}, timeout, interval).Should(Succeed())
		}
	})

	It("waits for a missing Secret without pushing anything, then delivers it", func() {
		project := service()
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getProject(g, project).Status.Conditions, convoyv1.StalledCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonSecretNotFound))
			g.Expect(c.Message).To(ContainSubstring("Secret " + ns + "/db referenced by spec.secrets[0] does not exist"))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(gone(g, svcA, remoteNamespace(project.Name))).To(BeTrue())
		}, 2*resyncPeriod, interval).Should(Succeed())

		createSecret("db", "late")
		Eventually(func(g Gomega) {
			s := remote(g, svcA, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "db"}}).(*corev1.Secret)
			g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("late")))
		}, timeout, interval).Should(Succeed())
	})

	It("never writes the replicas of an autoscaled workload, and keeps them when the autoscaler takes over", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 3, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(remoteDeployment(g, svcA, project.Name, "api").Spec.Replicas).To(HaveValue(BeEquivalentTo(3)))
		}, timeout, interval).Should(Succeed())

		By("the workload switches to autoscaling: the Deployment keeps its 3 replicas, not 1")
		updateProject(project, func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Replicas = nil
			p.Spec.Workloads[0].Autoscaling = &convoyv1.WorkloadAutoscaling{MinReplicas: ptr.To[int32](2), MaxReplicas: 8}
		})
		Eventually(func(g Gomega) {
			remote(g, svcA, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})
			g.Expect(clusterStatus(g, project, "svc-a").ObservedGeneration).To(Equal(getProject(g, project).Generation))
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(ownsReplicas(d, convoyv1.FieldOwner)).To(BeFalse(), "convoy must have released spec.replicas")
			g.Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(3)))
		}, timeout, interval).Should(Succeed())

		By("the autoscaler scales to 5; later changes of the Project leave that alone")
		Expect(scaleDeployment(svcA, project.Name, "api", 5)).To(Succeed())
		updateProject(project, func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Template.Spec.Containers[0].Image = "registry.example/api:1.1"
		})
		Eventually(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example/api:1.1"))
			g.Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(5)))
			g.Expect(ownsReplicas(d, convoyv1.FieldOwner)).To(BeFalse())
		}, timeout, interval).Should(Succeed())
	})

	It("applies env, resources and args overrides only in the selected clusters", func() {
		w := workload("api", "registry.example/api:1.0", 1, false)
		w.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "STAGE", Value: "prod"}, {Name: "DEBUG", Value: "1"}}
		project := newProject(ns, selectEnv("prod"), w)
		project.Spec.Overrides = []convoyv1.ClusterOverride{{
			Clusters: selectNames("svc-b"),
			Containers: []convoyv1.ContainerOverride{{
				Name: "app", Env: []corev1.EnvVar{{Name: "STAGE", Value: "canary"}}, RemoveEnv: []string{"DEBUG"},
				Resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: mustQuantity("256Mi")}},
				Args:      []string{"--verbose"},
			}},
			Labels: map[string]string{"tier": "canary"},
		}}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			b := remoteDeployment(g, svcB, project.Name, "api")
			app := b.Spec.Template.Spec.Containers[0]
			g.Expect(app.Env).To(Equal([]corev1.EnvVar{{Name: "STAGE", Value: "canary"}}))
			g.Expect(app.Args).To(Equal([]string{"--verbose"}))
			g.Expect(app.Resources.Limits.Memory().String()).To(Equal("256Mi"))
			g.Expect(b.Spec.Template.Labels).To(HaveKeyWithValue("tier", "canary"))

			a := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(a.Spec.Template.Spec.Containers[0].Env).To(Equal([]corev1.EnvVar{{Name: "STAGE", Value: "prod"}, {Name: "DEBUG", Value: "1"}}))
			g.Expect(a.Spec.Template.Spec.Containers[0].Args).To(BeEmpty())
			g.Expect(a.Spec.Template.Labels).NotTo(HaveKey("tier"))
		}, timeout, interval).Should(Succeed())
	})

	It("runs a cron workload as a CronJob: suspended per cluster, repaired, reported, pruned", func() {
		nightly := workload("nightly", "registry.example/report:1", 1, false)
		nightly.Replicas = nil
		nightly.CronJob = &convoyv1.CronJobSchedule{Schedule: "0 3 * * *", TimeZone: ptr.To("Asia/Seoul")}
		project := newProject(ns, selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, false), nightly)
		project.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-b"), Suspend: ptr.To(true)}}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		key := metav1.ObjectMeta{Namespace: project.Name, Name: "nightly"}
		Eventually(func(g Gomega) {
			a := remote(g, svcA, &batchv1.CronJob{ObjectMeta: key}).(*batchv1.CronJob)
			g.Expect(a.Spec.Schedule).To(Equal("0 3 * * *"))
			g.Expect(a.Spec.Suspend).To(SatisfyAny(BeNil(), HaveValue(BeFalse())))
			g.Expect(a.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy).To(Equal(corev1.RestartPolicyOnFailure))
			g.Expect(a.Labels).To(HaveKeyWithValue(convoyv1.TeamLabel, "payments"))
			b := remote(g, svcB, &batchv1.CronJob{ObjectMeta: key}).(*batchv1.CronJob)
			g.Expect(b.Spec.Suspend).To(HaveValue(BeTrue()))
			g.Expect(gone(g, svcA, &appsv1.Deployment{ObjectMeta: key})).To(BeTrue(), "no Deployment for a cron workload")
		}, timeout, interval).Should(Succeed())

		By("a run reported by the CronJob controller shows in status; the cron workload does not hold Ready back")
		markAvailable(svcA, project.Name, "api", 1)
		lastRun := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
		Eventually(func(g Gomega) {
			cj := remote(g, svcA, &batchv1.CronJob{ObjectMeta: key}).(*batchv1.CronJob)
			cj.Status.LastScheduleTime = &lastRun
			g.Expect(svcA.client.Status().Update(ctx, cj)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, project, "svc-a")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonSynced), st.Message)
			var cron *convoyv1.WorkloadStatus
			for i := range st.Workloads {
				if st.Workloads[i].Name == "nightly" {
					cron = &st.Workloads[i]
				}
			}
			g.Expect(cron).NotTo(BeNil())
			g.Expect(cron.Kind).To(Equal("CronJob"))
			g.Expect(cron.LastScheduleTime).To(HaveValue(Equal(lastRun)))
		}, timeout, interval).Should(Succeed())

		By("a remote edit of the schedule is repaired")
		Eventually(func(g Gomega) {
			cj := remote(g, svcA, &batchv1.CronJob{ObjectMeta: key}).(*batchv1.CronJob)
			cj.Spec.Schedule = "* * * * *"
			g.Expect(svcA.client.Update(ctx, cj)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(remote(g, svcA, &batchv1.CronJob{ObjectMeta: key}).(*batchv1.CronJob).Spec.Schedule).To(Equal("0 3 * * *"))
		}, timeout, interval).Should(Succeed())

		By("a removed cron workload is pruned")
		updateProject(project, func(p *convoyv1.Project) { p.Spec.Workloads = p.Spec.Workloads[:1]; p.Spec.Overrides = nil })
		Eventually(func(g Gomega) {
			g.Expect(gone(g, svcA, &batchv1.CronJob{ObjectMeta: key})).To(BeTrue())
			g.Expect(gone(g, svcB, &batchv1.CronJob{ObjectMeta: key})).To(BeTrue())
		}, timeout, interval).Should(Succeed())
	})

	It("stalls with the field named when an override names a container that does not exist, and pushes nothing", func() {
		project := newProject(ns, selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, false))
		project.Spec.Overrides = []convoyv1.ClusterOverride{{Clusters: selectNames("svc-b"), Workloads: []string{"api"},
			Containers: []convoyv1.ContainerOverride{{Name: "ap", Args: []string{"--x"}}}}}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getProject(g, project).Status.Conditions, convoyv1.StalledCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonInvalidSpec))
			g.Expect(c.Message).To(Equal(`spec.overrides[0].containers[0].name: workload api has no container named "ap"`))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(gone(g, svcA, remoteNamespace(project.Name))).To(BeTrue(), "not even the clusters the override does not select")
		}, 2*resyncPeriod, interval).Should(Succeed())
	})
})

// ownsReplicas reports whether manager's apply entry owns spec.replicas of d.
func ownsReplicas(d *appsv1.Deployment, manager string) bool {
	for _, e := range d.ManagedFields {
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationApply && e.FieldsV1 != nil {
			owned := &fieldpath.Set{}
			Expect(owned.FromJSON(bytes.NewReader(e.FieldsV1.Raw))).To(Succeed())
			return owned.Has(fieldpath.MakePathOrDie("spec", "replicas"))
		}
	}
	return false
}
