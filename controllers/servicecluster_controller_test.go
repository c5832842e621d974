package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// kubeconfigWith rewrites a working kubeconfig: same server and CA, different credentials.
func kubeconfigWith(base []byte, mutate func(*clientcmdapi.AuthInfo)) []byte {
	cfg, err := clientcmd.Load(base)
	Expect(err).NotTo(HaveOccurred())
	for _, a := range cfg.AuthInfos {
		mutate(a)
	}
	out, err := clientcmd.Write(*cfg)
	Expect(err).NotTo(HaveOccurred())
	return out
}

func createClusterWithSecret(name string, labels map[string]string, kubeconfig []byte) *convoyv1.ServiceCluster {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-kubeconfig", Namespace: "convoy-system"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	}
	Expect(k8sClient.Create(ctx, secret)).To(Succeed())
	sc := &convoyv1.ServiceCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: convoyv1.ServiceClusterSpec{
			KubeconfigSecretRef: convoyv1.SecretKeyReference{Namespace: "convoy-system", Name: secret.Name},
		},
	}
	Expect(k8sClient.Create(ctx, sc)).To(Succeed())
	return sc
}

func readyCondition(g Gomega, name string) *metav1.Condition {
	sc := &convoyv1.ServiceCluster{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, sc)).To(Succeed())
	c := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
	g.Expect(c).NotTo(BeNil())
	return c
}

func deleteCluster(name string) {
	sc := &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
	Expect(k8sClient.Delete(ctx, sc)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(sc), sc))).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

var _ = Describe("ServiceCluster", func() {
	It("discovers version and capabilities", func() {
		sc := &convoyv1.ServiceCluster{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "svc-a"}, sc)).To(Succeed())
		Expect(sc.Status.KubernetesVersion).To(HavePrefix("v1."))
		Expect(sc.Status.KubernetesVersion).NotTo(ContainSubstring("master"), "version ldflags must be set when building kube-apiserver")
		Expect(sc.Status.Capabilities.PreStopSleep).To(BeTrue())
		Expect(sc.Status.Capabilities.DestinationRuleVersions).To(ContainElements("v1", "v1beta1"), "Istio's CRDs are installed in svc-a")
		Expect(sc.Status.Capabilities.DestinationRuleVersions[0]).To(Equal("v1"), "preferred version first")
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "svc-b"}, sc)).To(Succeed())
		Expect(sc.Status.Capabilities.DestinationRuleVersions).To(BeEmpty(), "no Istio CRDs in svc-b")
		Expect(sc.Status.LastContactTime).NotTo(BeNil())
		Expect(sc.Finalizers).To(ContainElement(convoyv1.CleanupFinalizer))
	})

	It("refuses kubeconfigs that run programs, read files or skip TLS verification", func() {
		exec := kubeconfigWith(svcA.kubeconfig, func(a *clientcmdapi.AuthInfo) {
			a.Exec = &clientcmdapi.ExecConfig{Command: "/bin/sh", APIVersion: "client.authentication.k8s.io/v1"}
		})
		tokenFile := kubeconfigWith(svcA.kubeconfig, func(a *clientcmdapi.AuthInfo) {
			a.ClientCertificateData, a.ClientKeyData, a.TokenFile = nil, nil, "/var/run/secrets/token"
		})
		createClusterWithSecret("refused-exec", nil, exec)
		createClusterWithSecret("refused-tokenfile", nil, tokenFile)
		Eventually(func(g Gomega) {
			c := readyCondition(g, "refused-exec")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonInvalidKubeconfig))
			g.Expect(c.Message).To(ContainSubstring("exec plugins are not allowed"))
			c = readyCondition(g, "refused-tokenfile")
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonInvalidKubeconfig))
			g.Expect(c.Message).To(ContainSubstring("tokenFile paths are not allowed"))
		}, timeout, interval).Should(Succeed())
		sc := &convoyv1.ServiceCluster{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "refused-exec"}, sc)).To(Succeed())
		Expect(meta.IsStatusConditionTrue(sc.Status.Conditions, convoyv1.StalledCondition)).To(BeTrue())
		deleteCluster("refused-exec")
		deleteCluster("refused-tokenfile")
	})

	It("refuses a second registration of the same cluster, which would prune the first one's objects", func() {
		project := newProject(newTestNamespace(), selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcA, project.Name, "api") }, timeout, interval).Should(Succeed())

		createClusterWithSecret("svc-a-again", map[string]string{"env": "staging"}, svcA.kubeconfig)
		Eventually(func(g Gomega) {
			c := readyCondition(g, "svc-a-again")
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonDuplicateCluster))
			g.Expect(c.Message).To(ContainSubstring("already registered as ServiceCluster svc-a"))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(gone(g, svcA, remoteNamespace(project.Name))).To(BeFalse())
		}, 3*resyncPeriod, 200*time.Millisecond).Should(Succeed())
		deleteCluster("svc-a-again")
		remoteDeployment(Default, svcA, project.Name, "api")
	})
})

// One extra service cluster walks through a ServiceCluster's life: no Secret yet, rejected
// credentials, rotation, use by a Project, deletion.
var _ = Describe("A ServiceCluster's lifecycle", Ordered, func() {
	var svcC *serviceCluster
	var project *convoyv1.Project

	BeforeAll(func() { svcC = startServiceCluster("svc-c") })

	It("reports a missing Secret", func() {
		sc := &convoyv1.ServiceCluster{
			ObjectMeta: metav1.ObjectMeta{Name: svcC.name, Labels: map[string]string{"env": "retiring"}},
			Spec: convoyv1.ServiceClusterSpec{KubeconfigSecretRef: convoyv1.SecretKeyReference{
				Namespace: "convoy-system", Name: "svc-c-kubeconfig"}},
		}
		Expect(k8sClient.Create(ctx, sc)).To(Succeed())
		Eventually(func(g Gomega) {
			c := readyCondition(g, svcC.name)
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonSecretNotFound))
			g.Expect(c.Message).To(ContainSubstring("convoy-system/svc-c-kubeconfig"))
		}, timeout, interval).Should(Succeed())
	})

	It("reports credentials the cluster rejects, then picks up rotated ones without a restart", func() {
		bogus := kubeconfigWith(svcC.kubeconfig, func(a *clientcmdapi.AuthInfo) {
			a.ClientCertificateData, a.ClientKeyData, a.Token = nil, nil, "not-a-valid-token"
		})
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "svc-c-kubeconfig", Namespace: "convoy-system"},
			Data:       map[string][]byte{"kubeconfig": bogus},
		}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		Eventually(func(g Gomega) {
			c := readyCondition(g, svcC.name)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonUnauthorized))
		}, timeout, interval).Should(Succeed())

		_, rotated := addAdmin(svcC.env, "convoy-rotated")
		secret.Data["kubeconfig"] = rotated
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(clusterReady(g, svcC.name)).To(Equal(convoyv1.ReasonConnected))
		}, timeout, interval).Should(Succeed())
	})

	It("holds its finalizer until Projects have removed their objects from the cluster", func() {
		project = newProject(newTestNamespace(), selectEnv("retiring"), workload("api", "registry.example/api:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcC, project.Name, "api") }, timeout, interval).Should(Succeed())

		deleteCluster(svcC.name)
		Expect(gone(Default, svcC, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}})).To(BeTrue())
		Expect(gone(Default, svcC, remoteNamespace(project.Name))).To(BeTrue())
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			g.Expect(p.Status.ReadyClusters).To(Equal("0/0"))
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, convoyv1.ReadyCondition).Reason).To(Equal(convoyv1.ReasonNoClusters))
		}, timeout, interval).Should(Succeed())
	})
})

var _ = Describe("A service cluster outage", Ordered, func() {
	var stable, leaving *convoyv1.Project
	var stopped bool

	// Never leave svc-b down for the specs that follow, even when a spec here fails.
	AfterAll(func() {
		if stopped {
			Expect(svcB.env.ControlPlane.APIServer.Start()).To(Succeed())
		}
	})

	BeforeAll(func() {
		ns := newTestNamespace()
		stable = newProject(ns, selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, false))
		leaving = newProject(ns, selectEnv("prod"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, stable)).To(Succeed())
		Expect(k8sClient.Create(ctx, leaving)).To(Succeed())
		for _, sc := range []*serviceCluster{svcA, svcB} {
			Eventually(func(g Gomega) {
				remoteDeployment(g, sc, stable.Name, "api")
				remoteDeployment(g, sc, leaving.Name, "api")
			}, timeout, interval).Should(Succeed())
		}
	})

	It("marks the cluster Unreachable and shows it in Projects, without stale data", func() {
		svcB.crash()
		stopped = true
		Eventually(func(g Gomega) {
			c := readyCondition(g, "svc-b")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonUnreachable))
			g.Expect(c.Message).To(ContainSubstring("last contact"))
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			st := clusterStatus(g, stable, "svc-b")
			g.Expect(st.Reason).To(Equal(convoyv1.ReasonUnreachable))
			g.Expect(st.Synced).To(BeFalse())
			g.Expect(st.LastContactTime).NotTo(BeNil())
			g.Expect(st.Workloads).To(BeEmpty(), "no stale numbers for an unreachable cluster")
			g.Expect(getProject(g, stable).Status.ReadyClusters).To(HaveSuffix("/2"))
		}, timeout, interval).Should(Succeed())
	})

	It("keeps serving the reachable cluster and holds deletion for the unreachable one", func() {
		Eventually(func(g Gomega) {
			p := getProject(g, stable)
			p.Spec.Workloads = append(p.Spec.Workloads, workload("extra", "registry.example/extra:1.0", 1, false))
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcA, stable.Name, "extra") }, timeout, interval).Should(Succeed())

		Expect(k8sClient.Delete(ctx, leaving)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(gone(g, svcA, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: leaving.Name, Name: "api"}})).To(BeTrue())
			p := getProject(g, leaving)
			g.Expect(p.Finalizers).To(ContainElement(convoyv1.CleanupFinalizer))
			g.Expect(p.Status.Clusters).To(ConsistOf(HaveField("Name", "svc-b")))
			g.Expect(p.Status.Clusters[0].Reason).To(Equal(convoyv1.ReasonCleanupPending))
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, convoyv1.ReadyCondition).Message).To(ContainSubstring("svc-b"))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(leaving), &convoyv1.Project{})).To(Succeed())
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("converges everything when the cluster returns", func() {
		Expect(svcB.env.ControlPlane.APIServer.Start()).To(Succeed())
		stopped = false
		Eventually(func(g Gomega) { g.Expect(clusterReady(g, "svc-b")).To(Equal(convoyv1.ReasonConnected)) }, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			remoteDeployment(g, svcB, stable.Name, "extra")
			g.Expect(clusterStatus(g, stable, "svc-b").Synced).To(BeTrue())
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(leaving), &convoyv1.Project{}))).To(BeTrue())
			g.Expect(gone(g, svcB, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: leaving.Name, Name: "api"}})).To(BeTrue())
		}, 2*timeout, interval).Should(Succeed())
	})
})
