package controllers_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// hangingProxy forwards TCP to an API server until hang is called. From then on it keeps
// accepting connections but forwards nothing in either direction: the API server "accepts
// TLS and never answers", the hardest failure for a client without deadlines.
type hangingProxy struct {
	ln      net.Listener
	backend string
	hung    atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func startHangingProxy(backend string) *hangingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	p := &hangingProxy{ln: ln, backend: backend}
	go p.serve()
	DeferCleanup(p.close)
	return p
}

func (p *hangingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if p.hung.Load() {
			continue // held open, never answered
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(b)
		go p.pipe(c, b)
		go p.pipe(b, c)
	}
}

func (p *hangingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.hung.Load() {
			time.Sleep(20 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			return
		}
	}
}

func (p *hangingProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// close drops every connection, which also ends a hang.
func (p *hangingProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// reset ends a hang: existing connections are dropped (clients reconnect) and new ones are
// forwarded again.
func (p *hangingProxy) reset() {
	p.hung.Store(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *hangingProxy) addr() string { return p.ln.Addr().String() }

// kubeconfigVia rewrites a kubeconfig's server to go through addr.
func kubeconfigVia(kubeconfig []byte, addr string) []byte {
	cfg, err := clientcmd.Load(kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		Expect(err).NotTo(HaveOccurred())
		u.Host = addr
		c.Server = u.String()
	}
	out, err := clientcmd.Write(*cfg)
	Expect(err).NotTo(HaveOccurred())
	return out
}

func deploymentImage(g Gomega, sc *serviceCluster, namespace, name string) string {
	return remoteDeployment(g, sc, namespace, name).Spec.Template.Spec.Containers[0].Image
}

func lastContact(g Gomega, name string) time.Time {
	sc := &convoyv1.ServiceCluster{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, sc)).To(Succeed())
	g.Expect(sc.Status.LastContactTime).NotTo(BeNil())
	return sc.Status.LastContactTime.Time
}

var _ = Describe("Engine", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	It("keeps propagating to healthy clusters while one cluster's API server hangs", func() {
		// svc-0 sorts before svc-a: an engine that walked a Project's clusters in order would
		// make svc-a wait for it.
		svc0 := startServiceCluster("svc-0")
		u, err := url.Parse(svc0.env.Config.Host)
		Expect(err).NotTo(HaveOccurred())
		proxy := startHangingProxy(u.Host)
		svc0.kubeconfig = kubeconfigVia(svc0.kubeconfig, proxy.addr())
		registerCluster(svc0, map[string]string{"env": "hang-test"}, "ap-southeast-1")
		DeferCleanup(func() {
			proxy.reset()
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: "svc-0"}}))).To(Succeed())
			Eventually(func() bool {
				return k8sClient.Get(ctx, client.ObjectKey{Name: "svc-0"}, &convoyv1.ServiceCluster{}) != nil
			}, 2*timeout, interval).Should(BeTrue())
		})

		project := newProject(ns, selectNames("svc-a", "svc-0"), workload("api", "registry.example/api:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(deploymentImage(g, svcA, project.Name, "api")).To(Equal("registry.example/api:1.0"))
			g.Expect(deploymentImage(g, svc0, project.Name, "api")).To(Equal("registry.example/api:1.0"))
		}, timeout, interval).Should(Succeed())

		proxy.hung.Store(true)
		contactA := lastContact(Default, "svc-a")
		Eventually(func(g Gomega) {
			latest := getProject(g, project)
			latest.Spec.Workloads[0].Template.Spec.Containers[0].Image = "registry.example/api:2.0"
			g.Expect(k8sClient.Update(ctx, latest)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		changed := time.Now()

		// The healthy cluster converges within a few seconds, while the hung one is still
		// inside its request timeout (5 s here) or its breaker has opened.
		Eventually(func(g Gomega) {
			g.Expect(deploymentImage(g, svcA, project.Name, "api")).To(Equal("registry.example/api:2.0"))
		}, 4*time.Second, 50*time.Millisecond).Should(Succeed())
		GinkgoWriter.Printf("svc-a converged %s after the change while svc-0 hangs\n", time.Since(changed))
		Expect(clusterStatus(Default, getProject(Default, project), "svc-0").ObservedGeneration).NotTo(Equal(getProject(Default, project).Generation),
			"svc-0 cannot have synced the new generation through a hung API server")

		// The hung cluster turns Unreachable; the other clusters' probes go on.
		Eventually(func(g Gomega) {
			g.Expect(clusterReady(g, "svc-0")).To(Equal("NotReady:" + convoyv1.ReasonUnreachable))
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(lastContact(g, "svc-a")).To(BeTemporally(">", contactA))
			g.Expect(clusterStatus(g, project, "svc-0").Reason).To(Equal(convoyv1.ReasonUnreachable))
			g.Expect(clusterStatus(g, project, "svc-a").Synced).To(BeTrue())
		}, timeout, interval).Should(Succeed())

		// Back again: svc-0 catches up.
		proxy.reset()
		Eventually(func(g Gomega) {
			g.Expect(deploymentImage(g, svc0, project.Name, "api")).To(Equal("registry.example/api:2.0"))
		}, timeout, interval).Should(Succeed())
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func() bool {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{}) != nil
		}, timeout, interval).Should(BeTrue())
	})

	It("never writes through a kubeconfig Secret re-pointed at another registered cluster", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		var uid types.UID
		Eventually(func(g Gomega) {
			uid = remoteDeployment(g, svcA, project.Name, "api").UID
			g.Expect(clusterStatus(g, project, "svc-a").Synced).To(BeTrue())
		}, timeout, interval).Should(Succeed())

		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "convoy-system", Name: "svc-b-kubeconfig"}, secret)).To(Succeed())
		secret.Data["kubeconfig"] = svcA.kubeconfig
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		DeferCleanup(func() {
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "convoy-system", Name: "svc-b-kubeconfig"}, secret)).To(Succeed())
				secret.Data["kubeconfig"] = svcB.kubeconfig
				g.Expect(k8sClient.Update(ctx, secret)).To(Succeed())
			}, timeout, interval).Should(Succeed())
			Eventually(func(g Gomega) { g.Expect(clusterReady(g, "svc-b")).To(Equal(convoyv1.ReasonConnected)) }, timeout, interval).Should(Succeed())
		})

		Eventually(func(g Gomega) {
			sc := &convoyv1.ServiceCluster{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "svc-b"}, sc)).To(Succeed())
			c := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(convoyv1.ReasonIdentityChanged))
			g.Expect(c.Message).To(ContainSubstring(convoyv1.AcceptClusterIDAnnotation))
		}, timeout, interval).Should(Succeed())
		// Projects that target only svc-a are never "cleaned up" through the re-pointed
		// registration: the Deployment is the same object throughout.
		Consistently(func(g Gomega) {
			d := remoteDeployment(g, svcA, project.Name, "api")
			g.Expect(d.UID).To(Equal(uid))
			g.Expect(d.DeletionTimestamp).To(BeNil())
			g.Expect(gone(g, svcA, remoteNamespace(project.Name))).To(BeFalse())
		}, 3*time.Second, 100*time.Millisecond).Should(Succeed())
	})

	It("does not release a Project deleted right after its cluster reconnected before the objects are gone", func() {
		svcB.crash()
		stopped := true
		DeferCleanup(func() {
			if stopped {
				Expect(svcB.env.ControlPlane.APIServer.Start()).To(Succeed())
			}
		})
		Eventually(func(g Gomega) {
			g.Expect(clusterReady(g, "svc-b")).To(Equal("NotReady:" + convoyv1.ReasonUnreachable))
		}, timeout, interval).Should(Succeed())
		Expect(svcB.env.ControlPlane.APIServer.Start()).To(Succeed())
		stopped = false
		Eventually(func(g Gomega) { g.Expect(clusterReady(g, "svc-b")).To(Equal(convoyv1.ReasonConnected)) }, timeout, interval).Should(Succeed())

		project := newProject(ns, selectNames("svc-b"), workload("api", "registry.example/api:1.0", 1, true))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) { remoteDeployment(g, svcB, project.Name, "api") }, timeout, 20*time.Millisecond).Should(Succeed())
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func() bool {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{}) != nil
		}, timeout, interval).Should(BeTrue())
		// The finalizer was released only after the objects were deleted.
		Expect(gone(Default, svcB, remoteNamespace(project.Name))).To(BeTrue())
		d := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: project.Name, Name: "api"}}
		Expect(gone(Default, svcB, d)).To(BeTrue())
	})

	It("adds its finalizer without taking ownership of the user's spec", func() {
		project := newProject(ns, selectNames("svc-a"), workload("api", "registry.example/api:1.0", 1, false))
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getProject(g, project).Finalizers).To(ContainElement(convoyv1.CleanupFinalizer))
		}, timeout, interval).Should(Succeed())
		// A full Update would default and own template.metadata and resources and bump the
		// generation, which GitOps tools show as a diff.
		Expect(getProject(Default, project).Generation).To(Equal(int64(1)), "adding a finalizer must not change the spec")
	})
})
