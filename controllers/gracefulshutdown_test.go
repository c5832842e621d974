package controllers_test

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// startOldCluster runs a real API server behind a TLS reverse proxy that reports an older
// Kubernetes version on /version and forwards everything else. convoy's capability discovery
// then sees an old cluster while every write still hits a real API server.
func startOldCluster(name, gitVersion, minor string) *serviceCluster {
	sc := startServiceCluster(name, istioCRDs())
	target, err := url.Parse(sc.env.Config.Host)
	Expect(err).NotTo(HaveOccurred())
	transport, err := rest.TransportFor(sc.env.Config)
	Expect(err).NotTo(HaveOccurred())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = transport
	proxy.FlushInterval = -1 // stream watches
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(version.Info{Major: "1", Minor: minor, GitVersion: gitVersion})
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	// Close would wait for the manager's open watches; cut them first.
	DeferCleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   srv.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
	}
	cfg.AuthInfos["convoy"] = &clientcmdapi.AuthInfo{Token: "the-proxy-authenticates-upstream"}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "convoy"}
	cfg.CurrentContext = name
	sc.kubeconfig, err = clientcmd.Write(*cfg)
	Expect(err).NotTo(HaveOccurred())
	return sc
}

var _ = Describe("GracefulShutdownPolicy", Ordered, func() {
	var ns string
	var oldCluster *serviceCluster

	BeforeAll(func() {
		ns = newTestNamespace()
		oldCluster = startOldCluster("svc-old", "v1.29.4", "29")
		registerCluster(oldCluster, map[string]string{"env": "legacy"}, "ap-northeast-1")
		sc := &convoyv1.ServiceCluster{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: oldCluster.name}, sc)).To(Succeed())
		Expect(sc.Status.KubernetesVersion).To(Equal("v1.29.4"))
		Expect(sc.Status.Capabilities.PreStopSleep).To(BeFalse())
		Expect(sc.Status.Capabilities.NativeSidecars).To(BeFalse())
	})

	sleepPolicy := func(name string, seconds int32) *convoyv1.GracefulShutdownPolicy {
		return &convoyv1.GracefulShutdownPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       convoyv1.GracefulShutdownPolicySpec{PreStop: convoyv1.PreStop{Sleep: &convoyv1.SleepPreStop{Seconds: seconds}}},
		}
	}

	It("renders the native sleep on a new cluster and the exec fallback on an old one, and reports what it applied", func() {
		policy := sleepPolicy("web", 10)
		Expect(k8sClient.Create(ctx, policy)).To(Succeed())
		project := newProject(ns, selectNames("svc-a", oldCluster.name), workload("api", "registry.example/api:1.0", 1, true))
		project.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())

		Eventually(func(g Gomega) {
			g.Expect(getProject(g, project).Status.Clusters).To(HaveEach(HaveField("Synced", BeTrue())))
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Sleep).To(Equal(&corev1.SleepAction{Seconds: 10}))
			g.Expect(*d.Spec.Template.Spec.TerminationGracePeriodSeconds).To(Equal(int64(25)))
			g.Expect(d.Spec.Template.Spec.InitContainers).To(BeEmpty())

			old := remoteDeployment(g, oldCluster, project.Name, "api")
			g.Expect(old.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Exec.Command).To(Equal(
				[]string{"/convoy/bin/convoy-drain", "sleep", "--duration", "10s"}))
			g.Expect(old.Spec.Template.Spec.InitContainers).To(ConsistOf(HaveField("Name", "convoy-drain-install")))
			g.Expect(old.Spec.Template.Spec.Volumes).To(ConsistOf(HaveField("Name", "convoy-drain")))
			// Auto mode on 1.29: a legacy sidecar, pinned, kept alive for the budget plus the app's shutdown.
			g.Expect(old.Spec.Template.Annotations).To(HaveKeyWithValue("sidecar.istio.io/nativeSidecar", "false"))
			g.Expect(old.Spec.Template.Annotations).To(HaveKeyWithValue("proxy.istio.io/config", "terminationDrainDuration: 20s\n"))
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			for _, c := range []string{"svc-a", oldCluster.name} {
				st := clusterStatus(g, project, c)
				g.Expect(st.Synced).To(BeTrue())
				g.Expect(st.AppliedPolicies).To(Equal([]convoyv1.AppliedPolicy{{Kind: "GracefulShutdownPolicy", Name: "web", Generation: 1}}))
			}
		}, timeout, interval).Should(Succeed())

		By("changing the policy: every Project using it is re-rendered and re-pushed")
		Eventually(func(g Gomega) {
			p := &convoyv1.GracefulShutdownPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), p)).To(Succeed())
			p.Spec.PreStop.Sleep.Seconds = 20
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Sleep.Seconds).To(Equal(int64(20)))
			g.Expect(*d.Spec.Template.Spec.TerminationGracePeriodSeconds).To(Equal(int64(35)))
			old := remoteDeployment(g, oldCluster, project.Name, "api")
			g.Expect(old.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Exec.Command).To(ContainElement("20s"))
			g.Expect(clusterStatus(g, project, "svc-a").AppliedPolicies[0].Generation).To(Equal(int64(2)))
		}, timeout, interval).Should(Succeed())

		By("removing the reference: the hook, the grace period and the helper go away")
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.GracefulShutdownPolicy = nil
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			old := remoteDeployment(g, oldCluster, project.Name, "api")
			g.Expect(old.Spec.Template.Spec.Containers[0].Lifecycle).To(BeNil())
			g.Expect(old.Spec.Template.Spec.InitContainers).To(BeEmpty())
			g.Expect(old.Spec.Template.Annotations).NotTo(HaveKey("proxy.istio.io/config"))
			g.Expect(clusterStatus(g, project, oldCluster.name).AppliedPolicies).To(BeEmpty())
		}, timeout, interval).Should(Succeed())
	})

	It("decides native sidecars from every node's kubelet, as Istio does, and pins the choice", func() {
		mesh := startServiceCluster("svc-mesh", istioCRDs())
		setKubelet := func(name, version string) {
			GinkgoHelper()
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
			Expect(client.IgnoreAlreadyExists(mesh.client.Create(ctx, node))).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(mesh.client.Get(ctx, client.ObjectKeyFromObject(node), node)).To(Succeed())
				node.Status.NodeInfo.KubeletVersion = version
				g.Expect(mesh.client.Status().Update(ctx, node)).To(Succeed())
			}, timeout, interval).Should(Succeed())
		}
		setKubelet("node-new", "v1.36.3")
		setKubelet("node-old", "v1.32.9-eks-1234")
		registerCluster(mesh, map[string]string{"env": "mesh"}, "ap-northeast-1")
		DeferCleanup(func() { // before the API server stops
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: mesh.name}}))).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: mesh.name}, &convoyv1.ServiceCluster{}))
			}, 2*timeout, interval).Should(BeTrue())
		})
		capabilities := func(g Gomega) convoyv1.ClusterCapabilities {
			sc := &convoyv1.ServiceCluster{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: mesh.name}, sc)).To(Succeed())
			return sc.Status.Capabilities
		}
		Eventually(func(g Gomega) {
			caps := capabilities(g)
			g.Expect(caps.OldestKubeletVersion).To(Equal("v1.32"))
			g.Expect(caps.NativeSidecars).To(BeFalse(), "one node's kubelet is older than 1.33")
		}, timeout, interval).Should(Succeed())

		Expect(k8sClient.Create(ctx, sleepPolicy("mesh", 5))).To(Succeed())
		project := newProject(ns, selectNames(mesh.name), workload("api", "registry.example/api:1.0", 1, true))
		project.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "mesh"}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			d := remoteDeployment(g, mesh, project.Name, "api")
			g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("sidecar.istio.io/nativeSidecar", "false"))
			g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("proxy.istio.io/config", "terminationDrainDuration: 15s\n"))
		}, timeout, interval).Should(Succeed())

		By("upgrading the last old node: native sidecars, pinned, and no legacy drain settings")
		setKubelet("node-old", "v1.33.1")
		Eventually(func(g Gomega) {
			caps := capabilities(g)
			g.Expect(caps.OldestKubeletVersion).To(Equal("v1.33"))
			g.Expect(caps.NativeSidecars).To(BeTrue())
			d := remoteDeployment(g, mesh, project.Name, "api")
			g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("sidecar.istio.io/nativeSidecar", "true"))
			g.Expect(d.Spec.Template.Annotations).NotTo(HaveKey("proxy.istio.io/config"))
		}, timeout, interval).Should(Succeed())
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{}))
		}, timeout, interval).Should(BeTrue())
	})

	It("tunes Envoy's connection pool through a DestinationRule where Istio is installed", func() {
		policy := sleepPolicy("pooled", 5)
		policy.Spec.ConnectionPool = &convoyv1.ConnectionTuning{
			TCPKeepalive:   &convoyv1.TCPKeepalive{Time: metav1.Duration{Duration: 300 * time.Second}, Interval: metav1.Duration{Duration: 75 * time.Second}, Probes: 9},
			IdleTimeout:    &metav1.Duration{Duration: 50 * time.Second},
			AppIdleTimeout: &metav1.Duration{Duration: 60 * time.Second},
		}
		Expect(k8sClient.Create(ctx, policy)).To(Succeed())
		project := newProject(ns, selectNames("svc-a", "svc-b"), workload("api", "registry.example/api:1.0", 1, true))
		project.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "pooled"}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())

		key := client.ObjectKey{Namespace: project.Name, Name: "api"}
		Eventually(func(g Gomega) {
			dr := &networkingv1.DestinationRule{}
			g.Expect(svcA.client.Get(ctx, key, dr)).To(Succeed())
			g.Expect(dr.Labels).To(HaveKeyWithValue(convoyv1.ManagedByLabel, "convoy"))
			g.Expect(dr.Spec.GetHost()).To(Equal("api." + project.Name + ".svc.cluster.local"))
			pool := dr.Spec.GetTrafficPolicy().GetConnectionPool()
			g.Expect(pool.GetHttp().GetIdleTimeout().AsDuration()).To(Equal(50 * time.Second))
			g.Expect(pool.GetTcp().GetTcpKeepalive().GetProbes()).To(Equal(uint32(9)))
			g.Expect(pool.GetTcp().GetTcpKeepalive().GetInterval().AsDuration()).To(Equal(75 * time.Second))
			g.Expect(clusterStatus(g, project, "svc-b").Message).To(ContainSubstring("the cluster serves no networking.istio.io DestinationRule"))
		}, timeout, interval).Should(Succeed())

		By("steady state: resyncs send no writes, DestinationRule included")
		expectNoWritesDuringResyncs("svc-a", project.Name)

		By("a remote edit of the DestinationRule is put back")
		Eventually(func(g Gomega) {
			dr := &networkingv1.DestinationRule{}
			g.Expect(svcA.client.Get(ctx, key, dr)).To(Succeed())
			dr.Spec.TrafficPolicy.ConnectionPool.Http.IdleTimeout = durationpb.New(time.Hour)
			g.Expect(svcA.client.Update(ctx, dr)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			dr := &networkingv1.DestinationRule{}
			g.Expect(svcA.client.Get(ctx, key, dr)).To(Succeed())
			g.Expect(dr.Spec.GetTrafficPolicy().GetConnectionPool().GetHttp().GetIdleTimeout().AsDuration()).To(Equal(50 * time.Second))
		}, timeout, interval).Should(Succeed())

		By("dropping the connection tuning prunes the DestinationRule")
		Eventually(func(g Gomega) {
			p := &convoyv1.GracefulShutdownPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), p)).To(Succeed())
			p.Spec.ConnectionPool = nil
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			err := svcA.client.Get(ctx, key, &networkingv1.DestinationRule{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}, timeout, interval).Should(Succeed())
	})

	It("pushes nothing while a referenced policy is missing, and converges once it exists", func() {
		w := workload("api", "registry.example/api:1.0", 1, false)
		w.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "later"}
		project := newProject(ns, selectNames("svc-a"), workload("worker", "registry.example/worker:1.0", 1, false), w)
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			stalled := meta.FindStatusCondition(p.Status.Conditions, convoyv1.StalledCondition)
			g.Expect(stalled).NotTo(BeNil())
			g.Expect(stalled.Reason).To(Equal(convoyv1.ReasonPolicyNotFound))
			g.Expect(stalled.Message).To(ContainSubstring("GracefulShutdownPolicy " + ns + "/later referenced by spec.workloads[1].gracefulShutdownPolicy does not exist"))
		}, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) {
			err := svcA.client.Get(ctx, client.ObjectKey{Name: project.Name}, &corev1.Namespace{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no workload is pushed half-way")
		}, 2*resyncPeriod, 200*time.Millisecond).Should(Succeed())

		Expect(k8sClient.Create(ctx, sleepPolicy("later", 5))).To(Succeed())
		Eventually(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Sleep.Seconds).To(Equal(int64(5)))
			worker := remoteDeployment(g, svcA, project.Name, "worker")
			g.Expect(worker.Spec.Template.Spec.Containers[0].Lifecycle).To(BeNil(), "the policy is only the api workload's")
		}, timeout, interval).Should(Succeed())
	})

	It("reports the derived timeline and warns when it does not fit a spot interruption notice", func() {
		policy := &convoyv1.GracefulShutdownPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "spot", Namespace: ns},
			Spec: convoyv1.GracefulShutdownPolicySpec{
				PreStop: convoyv1.PreStop{DrainConnections: &convoyv1.DrainConnectionsPreStop{Ports: []int32{8080}, TimeoutSeconds: 100}},
				Spot:    true,
			},
		}
		Expect(k8sClient.Create(ctx, policy)).To(Succeed())
		Eventually(func(g Gomega) {
			p := &convoyv1.GracefulShutdownPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), p)).To(Succeed())
			g.Expect(p.Status.PreStopBudgetSeconds).To(Equal(int64(100)))
			g.Expect(p.Status.TerminationGracePeriodSeconds).To(Equal(int64(115)))
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, convoyv1.SpotNoticeExceededCondition)).To(BeNil())
		}, timeout, interval).Should(Succeed())

		Eventually(func(g Gomega) {
			p := &convoyv1.GracefulShutdownPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), p)).To(Succeed())
			p.Spec.AppShutdownSeconds = 30
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			p := &convoyv1.GracefulShutdownPolicy{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), p)).To(Succeed())
			c := meta.FindStatusCondition(p.Status.Conditions, convoyv1.SpotNoticeExceededCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Message).To(ContainSubstring("grace period (135s) is longer than a spot interruption notice (120s)"))
		}, timeout, interval).Should(Succeed())
	})
})
