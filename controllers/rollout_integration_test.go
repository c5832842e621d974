package controllers_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/gate/gatetest"
	"github.com/convoy-dev/convoy/internal/manifest"
	"github.com/convoy-dev/convoy/internal/metrics"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// brokenSuffix marks images whose rollout the simulated Deployment controller fails.
const brokenSuffix = "-broken"

// runDeploymentController plays the Deployment controller (envtest runs none) in the given
// clusters' namespace until ctx ends: a Deployment whose image ends in brokenSuffix exceeds
// its progress deadline, any other becomes available.
func runDeploymentController(ctx context.Context, namespace string, clusters ...*serviceCluster) {
	go func() {
		defer GinkgoRecover()
		for ctx.Err() == nil {
			for _, sc := range clusters {
				var list appsv1.DeploymentList
				if err := sc.client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
					continue
				}
				for i := range list.Items {
					d := &list.Items[i]
					want := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
					if strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, brokenSuffix) {
						want = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UnavailableReplicas: 1, Conditions: []appsv1.DeploymentCondition{{
							Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
							Message: "ReplicaSet has timed out progressing.",
						}}}
					}
					if d.Status.ObservedGeneration != want.ObservedGeneration || d.Status.AvailableReplicas != want.AvailableReplicas || len(d.Status.Conditions) != len(want.Conditions) {
						d.Status = want
						_ = sc.client.Status().Update(ctx, d)
					}
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
}

// applyManifest creates every object of a YAML file of the repository in the manager cluster.
func applyManifest(path string) {
	objs, err := manifest.DecodeFile(path)
	Expect(err).NotTo(HaveOccurred())
	for _, obj := range objs {
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, obj))).To(Succeed())
	}
}

// clientAs is a manager-cluster client that impersonates a user.
func clientAs(user string) client.Client {
	cfg := rest.CopyConfig(managerCfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: convoyscheme.New()})
	Expect(err).NotTo(HaveOccurred())
	return c
}

var _ = Describe("Staged rollout", Ordered, func() {
	var (
		namespace, remoteNS string
		svcRest, svcJoiner  *serviceCluster
		project             *convoyv1.Project
		strategy            *convoyv1.RolloutStrategy
		clusters            []*serviceCluster
	)

	image := func(g Gomega, sc *serviceCluster) string {
		return remoteDeployment(g, sc, remoteNS, "api").Spec.Template.Spec.Containers[0].Image
	}
	images := func(g Gomega) map[string]string {
		out := map[string]string{}
		for _, sc := range clusters {
			out[sc.name] = image(g, sc)
		}
		return out
	}
	rolloutOf := func(g Gomega) *convoyv1.ProjectRolloutStatus {
		ro := getProject(g, project).Status.Rollout
		g.Expect(ro).NotTo(BeNil())
		return ro
	}
	wave := func(ro *convoyv1.ProjectRolloutStatus, name string) convoyv1.RolloutWaveStatus {
		for _, w := range ro.Waves {
			if w.Name == name {
				return w
			}
		}
		return convoyv1.RolloutWaveStatus{}
	}
	setImage := func(img string) {
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.Workloads[0].Template.Spec.Containers[0].Image = img
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
	}
	updateStrategy := func(change func(*convoyv1.RolloutStrategySpec)) {
		Eventually(func(g Gomega) {
			s := &convoyv1.RolloutStrategy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(strategy), s)).To(Succeed())
			change(&s.Spec)
			g.Expect(k8sClient.Update(ctx, s)).To(Succeed())
		}, timeout, interval).Should(Succeed())
	}
	expectComplete := func(img string) {
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutComplete), ro.Message)
			g.Expect(ro.StableRevision).To(Equal(ro.TargetRevision))
			for _, st := range getProject(g, project).Status.Clusters {
				g.Expect(st.Revision).To(Equal(ro.TargetRevision), st.Name)
			}
			for name, got := range images(g) {
				g.Expect(got).To(Equal(img), name)
			}
		}, timeout, interval).Should(Succeed())
	}

	BeforeAll(func() {
		svcRest = startServiceCluster("svc-rest")
		svcJoiner = startServiceCluster("svc-joiner") // registered mid-rollout
		registerCluster(svcRest, map[string]string{"env": "rollout"}, "ap-northeast-1")
		clusters = []*serviceCluster{svcA, svcB, svcRest}
		namespace = newTestNamespace()
		strategy = &convoyv1.RolloutStrategy{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "canary-first"},
			Spec: convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{
				{Name: "canary", SoakTime: &metav1.Duration{Duration: 5 * time.Second}, Clusters: &convoyv1.ClusterSelection{
					ClusterNames:    []string{"svc-a"},
					ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"wave": "canary"}},
				}},
				{Name: "second", Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{"svc-b"}}},
			}},
		}
		Expect(k8sClient.Create(ctx, strategy)).To(Succeed())
		placement := selectNames("svc-a", "svc-b", "svc-rest")
		placement.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rollout-joiner": "yes"}}
		project = newProject(namespace, placement, workload("api", "registry.example/api:v1", 1, false))
		project.Spec.RolloutStrategy = &convoyv1.PolicyReference{Name: strategy.Name}
		Expect(k8sClient.Create(ctx, &convoyv1.GracefulShutdownPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "web"},
			Spec:       convoyv1.GracefulShutdownPolicySpec{PreStop: convoyv1.PreStop{Sleep: &convoyv1.SleepPreStop{Seconds: 5}}},
		})).To(Succeed())
		project.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
		remoteNS = project.Name
		controllerCtx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		runDeploymentController(controllerCtx, remoteNS, svcA, svcB, svcRest, svcJoiner)
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		DeferCleanup(func() {
			Expect(k8sClient.Delete(ctx, project)).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{}))
			}, timeout, interval).Should(BeTrue())
			for _, name := range []string{"svc-rest", "svc-joiner"} {
				sc := &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, sc))).To(Succeed())
				Eventually(func() bool {
					return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(sc), sc))
				}, timeout, interval).Should(BeTrue())
				secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "convoy-system", Name: name + "-kubeconfig"}}
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, secret))).To(Succeed())
			}
		})
	})

	It("puts the first revision everywhere at once and keeps it as a ControllerRevision", func() {
		expectComplete("registry.example/api:v1")
		var revs appsv1.ControllerRevisionList
		Expect(k8sClient.List(ctx, &revs, client.InNamespace(namespace))).To(Succeed())
		Expect(revs.Items).To(HaveLen(1))
		Expect(revs.Items[0].OwnerReferences).To(ContainElement(HaveField("Name", project.Name)))
	})

	It("rolls a change out wave by wave: canary, soak, second, the rest", func() {
		setImage("registry.example/api:v2")
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(wave(ro, "canary").Phase).To(Equal(convoyv1.WaveSoaking))
			g.Expect(ro.CurrentWave).To(Equal("canary"))
		}, timeout, interval).Should(Succeed())
		// While the canary soaks, the later waves keep the previous image.
		Consistently(func(g Gomega) {
			g.Expect(images(g)).To(Equal(map[string]string{"svc-a": "registry.example/api:v2", "svc-b": "registry.example/api:v1", "svc-rest": "registry.example/api:v1"}))
		}, 2*time.Second, interval).Should(Succeed())
		expectComplete("registry.example/api:v2")
		ro := rolloutOf(Default)
		Expect(ro.Waves).To(HaveLen(3))
		for _, w := range ro.Waves {
			Expect(w.Phase).To(Equal(convoyv1.WaveSucceeded), w.Name)
			Expect(w.StartTime).NotTo(BeNil(), w.Name)
			Expect(w.CompletionTime).NotTo(BeNil(), w.Name)
		}
		Expect(wave(ro, "second").StartTime.Time).NotTo(BeTemporally("<", wave(ro, "canary").CompletionTime.Time))
		Expect(wave(ro, convoyv1.RestWave).Clusters).To(Equal([]string{"svc-rest"}))
	})

	It("rolls a change of a policy the Project uses through the same waves", func() {
		grace := func(g Gomega, sc *serviceCluster) int64 {
			return *remoteDeployment(g, sc, remoteNS, "api").Spec.Template.Spec.TerminationGracePeriodSeconds
		}
		before := grace(Default, svcB)
		Eventually(func(g Gomega) {
			p := &convoyv1.GracefulShutdownPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "web"}, p)).To(Succeed())
			p.Spec.PreStop.Sleep.Seconds = 20
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(wave(rolloutOf(g), "canary").Phase).To(Equal(convoyv1.WaveSoaking))
			g.Expect(grace(g, svcA)).To(BeNumerically(">", before))
		}, timeout, interval).Should(Succeed())
		Expect(grace(Default, svcB)).To(Equal(before), "the second wave has not started")
		Expect(grace(Default, svcRest)).To(Equal(before), "the last wave has not started")
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutComplete))
			g.Expect(grace(g, svcRest)).To(Equal(grace(g, svcA)))
		}, timeout, interval).Should(Succeed())
	})

	It("halts at a failed wave: later clusters keep the previous image and the Project says why", func() {
		setImage("registry.example/api:v3" + brokenSuffix)
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutHalted))
			g.Expect(ro.CurrentWave).To(Equal("canary"))
			g.Expect(wave(ro, "canary").Phase).To(Equal(convoyv1.WaveFailed))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(images(g)).To(Equal(map[string]string{"svc-a": "registry.example/api:v3" + brokenSuffix, "svc-b": "registry.example/api:v2", "svc-rest": "registry.example/api:v2"}))
		}, 2*time.Second, interval).Should(Succeed())
		p := getProject(Default, project)
		stalled := meta.FindStatusCondition(p.Status.Conditions, convoyv1.StalledCondition)
		Expect(stalled).NotTo(BeNil())
		Expect(stalled.Reason).To(Equal(convoyv1.ReasonRolloutHalted))
		Expect(stalled.Message).To(And(ContainSubstring("wave canary failed"), ContainSubstring("svc-a"), ContainSubstring("ProgressDeadlineExceeded")))
		Expect(meta.IsStatusConditionTrue(p.Status.Conditions, convoyv1.ReadyCondition)).To(BeFalse())
		Eventually(func(g Gomega) {
			var events eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &events, client.InNamespace(namespace))).To(Succeed())
			g.Expect(events.Items).To(ContainElement(And(HaveField("Reason", "WaveFailed"), HaveField("Type", corev1.EventTypeWarning))))
		}, timeout, interval).Should(Succeed())
	})

	It("starts a new change from the first wave, and rolls a failed wave back automatically", func() {
		updateStrategy(func(s *convoyv1.RolloutStrategySpec) { s.Rollback = convoyv1.RollbackAutomatic })
		setImage("registry.example/api:v4" + brokenSuffix)
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutRolledBack))
			g.Expect(wave(ro, "canary").Phase).To(Equal(convoyv1.WaveRolledBack))
			// The canary runs the last revision that reached every wave again.
			g.Expect(images(g)).To(Equal(map[string]string{"svc-a": "registry.example/api:v2", "svc-b": "registry.example/api:v2", "svc-rest": "registry.example/api:v2"}))
			g.Expect(clusterStatus(g, project, "svc-a").Revision).To(Equal(ro.StableRevision))
		}, timeout, interval).Should(Succeed())
	})

	It("waits for an approval by an authorized user, resumes after a manager restart and gives a joining cluster its wave's revision", func() {
		applyManifest(filepath.Join("..", "config", "admission", "rollout-approval-policy.yaml"))
		applyManifest(filepath.Join("..", "config", "rbac", "rollout_approver_role.yaml"))
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "approvers"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "rollout-approver"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"}},
		})).To(Succeed())
		updateStrategy(func(s *convoyv1.RolloutStrategySpec) { s.Waves[1].RequireApproval = true })
		setImage("registry.example/api:v5")
		var target string
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutWaitingForApproval))
			g.Expect(ro.CurrentWave).To(Equal("second"))
			target = ro.TargetRevision
		}, timeout, interval).Should(Succeed())

		By("restarting the manager while the rollout waits")
		before := writes.Get("svc-b")
		stopManager()
		startManager()
		Consistently(func(g Gomega) {
			g.Expect(rolloutOf(g).CurrentWave).To(Equal("second"))
			g.Expect(images(g)).To(Equal(map[string]string{"svc-a": "registry.example/api:v5", "svc-b": "registry.example/api:v2", "svc-rest": "registry.example/api:v2"}))
		}, 3*time.Second, interval).Should(Succeed())
		Expect(writes.InNamespace("svc-b", before, remoteNS)).To(BeEmpty(), "the restarted manager rewrote a cluster whose wave has not started")

		By("a cluster joining the canary wave, which has succeeded, gets the target revision")
		registerCluster(svcJoiner, map[string]string{"wave": "canary", "rollout-joiner": "yes"}, "ap-northeast-2")
		Eventually(func(g Gomega) {
			g.Expect(image(g, svcJoiner)).To(Equal("registry.example/api:v5"))
			g.Expect(clusterStatus(g, project, "svc-joiner").Revision).To(Equal(target))
		}, timeout, interval).Should(Succeed())

		approval := func(approver string) *convoyv1.RolloutApproval {
			return &convoyv1.RolloutApproval{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "approve-"},
				Spec:       convoyv1.RolloutApprovalSpec{Project: project.Name, Revision: target, Wave: "second", Approver: approver},
			}
		}
		By("refusing an approval by a user RBAC does not allow")
		err := clientAs("mallory").Create(ctx, approval("mallory"))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "mallory may not approve: %v", err)
		By("refusing an approval in someone else's name")
		Eventually(func() string {
			err := clientAs("alice").Create(ctx, approval("bob"))
			if err == nil {
				return "created"
			}
			return err.Error()
		}, timeout, interval).Should(ContainSubstring("spec.approver must be the user creating the approval (alice)"))
		Consistently(func(g Gomega) {
			g.Expect(rolloutOf(g).Phase).To(Equal(convoyv1.RolloutWaitingForApproval))
		}, time.Second, interval).Should(Succeed())

		By("approving as alice")
		Expect(clientAs("alice").Create(ctx, approval("alice"))).To(Succeed())
		clusters = append(clusters, svcJoiner)
		expectComplete("registry.example/api:v5")
		Expect(wave(rolloutOf(Default), "second").ApprovedBy).To(Equal("alice"))
	})

	It("fails a wave whose health gate, evaluated by a real Prometheus, is breached during the soak", func() {
		errorRatio := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "convoy_test_error_ratio", Help: "5xx ratio per cluster."}, []string{"cluster"})
		registry := prometheus.NewRegistry()
		registry.MustRegister(errorRatio)
		exporter := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
		DeferCleanup(exporter.Close)
		errorRatio.WithLabelValues("svc-a").Set(0.01)
		address := gatetest.StartPrometheus(GinkgoT(), strings.TrimPrefix(exporter.URL, "http://"))
		updateStrategy(func(s *convoyv1.RolloutStrategySpec) {
			s.Gates = []convoyv1.HealthGate{{Name: "error-ratio", Prometheus: convoyv1.PrometheusGate{
				Address: address, Query: `max(convoy_test_error_ratio{cluster="{{cluster}}"}) or vector(0)`, Max: resource.MustParse("0.05"),
			}}}
		})

		By("a gate that holds lets the canary through")
		setImage("registry.example/api:v6")
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(wave(ro, "canary").Phase).To(Equal(convoyv1.WaveSucceeded), ro.Message)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutWaitingForApproval))
		}, timeout, interval).Should(Succeed())

		By("a breach during the next soak fails the canary and rolls it back")
		errorRatio.WithLabelValues("svc-a").Set(0.5)
		setImage("registry.example/api:v7")
		Eventually(func(g Gomega) {
			ro := rolloutOf(g)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutRolledBack), ro.Message)
			g.Expect(wave(ro, "canary").Message).To(ContainSubstring("gate error-ratio in cluster svc-a: 0.5 > max 0.05"))
			g.Expect(images(g)).To(Equal(map[string]string{
				"svc-a": "registry.example/api:v5", "svc-b": "registry.example/api:v5", "svc-rest": "registry.example/api:v5", "svc-joiner": "registry.example/api:v5",
			}))
		}, timeout, interval).Should(Succeed())

		By("counting rollouts and failed waves in the manager's metrics")
		Expect(testutil.ToFloat64(metrics.Rollouts.WithLabelValues("complete"))).To(BeNumerically(">=", 4))
		Expect(testutil.ToFloat64(metrics.Rollouts.WithLabelValues("halted"))).To(BeNumerically(">=", 1))
		Expect(testutil.ToFloat64(metrics.Rollouts.WithLabelValues("rolled_back"))).To(BeNumerically(">=", 2))
		Expect(testutil.ToFloat64(metrics.WaveFailures.WithLabelValues("canary"))).To(BeNumerically(">=", 3))
	})
})
