package controllers_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/controllers"
	"github.com/convoy-dev/convoy/internal/remote"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// The suite runs one manager API server and two service-cluster API servers, each a real
// kube-apiserver + etcd, and the convoy manager in-process against them.

const (
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond

	// resyncPeriod is short so that the zero-write test sees several resyncs.
	resyncPeriod = 2 * time.Second
)

var (
	ctx    context.Context
	cancel context.CancelFunc

	managerEnv *envtest.Environment
	managerCfg *rest.Config
	k8sClient  client.Client // manager cluster
	fleet      *remote.Fleet

	// service clusters by ServiceCluster name
	svcA, svcB *serviceCluster

	writes = newRequestCounter()
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers integration suite")
}

// serviceCluster is a service-cluster API server plus what the tests need to reach it.
type serviceCluster struct {
	name       string
	env        *envtest.Environment
	client     client.Client
	kubeconfig []byte
	user       *envtest.AuthenticatedUser
	certDir    string
}

// crash kills the cluster's kube-apiserver, as a crash or a network partition would. A graceful
// stop would wait up to a minute for open watches to drain.
func (sc *serviceCluster) crash() {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	Expect(err).NotTo(HaveOccurred())
	killed := 0
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmdline, []byte("kube-apiserver")) || !bytes.Contains(cmdline, []byte(sc.certDir)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		Expect(err).NotTo(HaveOccurred())
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		killed++
	}
	Expect(killed).To(Equal(1), "exactly one kube-apiserver serves %s", sc.name)
	// Stop only collects the exited process now.
	Expect(sc.env.ControlPlane.APIServer.Stop()).To(Succeed())
}

// requestCounter counts write requests (anything but GET/HEAD/OPTIONS) per service cluster.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]*atomic.Int64
	log    map[string][]string
}

func newRequestCounter() *requestCounter {
	return &requestCounter{counts: map[string]*atomic.Int64{}, log: map[string][]string{}}
}

func (c *requestCounter) counter(cluster string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[cluster] == nil {
		c.counts[cluster] = &atomic.Int64{}
	}
	return c.counts[cluster]
}

// Get is the number of writes sent to a cluster so far.
func (c *requestCounter) Get(cluster string) int64 { return c.counter(cluster).Load() }

// InNamespace lists the writes sent to a cluster after the first `after` of them that touch
// namespace (objects in it, or the namespace itself; "" for every write), as "METHOD path".
func (c *requestCounter) InNamespace(cluster string, after int64, namespace string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, w := range c.log[cluster][min(after, int64(len(c.log[cluster]))):] {
		if namespace == "" || strings.Contains(w, "/namespaces/"+namespace+"/") || strings.HasSuffix(w, "/namespaces/"+namespace) {
			out = append(out, w)
		}
	}
	return out
}

func (c *requestCounter) record(cluster, write string) {
	c.mu.Lock()
	c.log[cluster] = append(c.log[cluster], write)
	c.mu.Unlock()
	c.counter(cluster).Add(1)
}

func (c *requestCounter) wrap(cluster string, rt http.RoundTripper) http.RoundTripper {
	return &countingTransport{next: rt, record: func(w string) { c.record(cluster, w) }}
}

type countingTransport struct {
	next   http.RoundTripper
	record func(write string)
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		t.record(req.Method + " " + req.URL.Path)
	}
	return t.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go cancel requests through the wrapper.
func (t *countingTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

// istioCRDs is Istio's CRD bundle, read from the istio.io/api module at the version in go.mod.
func istioCRDs() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	Expect(err).NotTo(HaveOccurred(), "locating the istio.io/api module")
	path := filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
	Expect(path).To(BeAnExistingFile())
	return path
}

func startServiceCluster(name string, crdPaths ...string) *serviceCluster {
	// A fixed certificate directory lets the API server be stopped and started again with
	// the same serving certificate and client CA, like a real outage.
	certDir, err := os.MkdirTemp("", "convoy-"+name+"-")
	Expect(err).NotTo(HaveOccurred())
	env := &envtest.Environment{CRDDirectoryPaths: crdPaths, ErrorIfCRDPathMissing: true}
	env.ControlPlane.GetAPIServer().CertDir = certDir
	cfg, err := env.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(env.Stop()).To(Succeed())
		_ = os.RemoveAll(certDir)
	})
	sc := &serviceCluster{name: name, env: env, certDir: certDir}
	sc.client, err = client.New(cfg, client.Options{Scheme: convoyscheme.New()})
	Expect(err).NotTo(HaveOccurred())
	sc.user, sc.kubeconfig = addAdmin(env, "convoy")
	return sc
}

// addAdmin provisions a client-certificate user in a service cluster and returns its kubeconfig.
func addAdmin(env *envtest.Environment, user string) (*envtest.AuthenticatedUser, []byte) {
	u, err := env.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, &rest.Config{})
	Expect(err).NotTo(HaveOccurred())
	kubeconfig, err := u.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	return u, kubeconfig
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())

	managerEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := managerEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	managerCfg = cfg
	DeferCleanup(func() { Expect(managerEnv.Stop()).To(Succeed()) })

	scheme := convoyscheme.New()
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	svcA = startServiceCluster("svc-a", istioCRDs()) // svc-b has no Istio
	svcB = startServiceCluster("svc-b")

	startManager()
	// Cleanups run last-in first-out: stop the manager and the fleet before the API servers.
	DeferCleanup(func() { stopManager() })

	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "convoy-system"}})).To(Succeed())
	registerCluster(svcA, map[string]string{"env": "prod", "stage": "canary"}, "ap-northeast-2")
	registerCluster(svcB, map[string]string{"env": "prod"}, "ap-northeast-1")
})

// startManager starts the convoy manager, with a fleet of its own, against the manager API
// server; stopManager stops both.
func startManager() {
	scheme := convoyscheme.New()
	fleet = remote.NewFleet(remote.Options{
		Scheme:         scheme,
		ConnectTimeout: 10 * time.Second,
		RequestTimeout: 5 * time.Second,
		ProbeTimeout:   2 * time.Second,
		ProbeInterval:  time.Second,
		MaxBackoff:     2 * time.Second,
		Thresholds:     remote.Thresholds{Failures: 2, Successes: 2},
		WrapTransport:  writes.wrap,
	})
	mgr, err := ctrl.NewManager(managerCfg, ctrl.Options{
		Scheme:  scheme,
		Cache:   controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		// A restarted manager registers its controllers under the same names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.Setup(mgr, controllers.Config{
		Fleet:                   fleet,
		MaxConcurrentReconciles: 2,
		ResyncPeriod:            resyncPeriod,
		ClusterWorkers:          2,
		SyncTimeout:             20 * time.Second,
		// Cleanups that wait for a person are woken by watches; the fallback recheck is kept
		// far away so that the tests prove it.
		NamespaceRecheck: 5 * time.Minute,
		DrainHelperImage: "ghcr.io/convoy-dev/convoy-drain:test",
		GateInterval:     time.Second,
	})).To(Succeed())
	mgrCtx, mgrCancel := context.WithCancel(ctx)
	managerDone := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(managerDone)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	current := fleet
	stopManager = func() {
		mgrCancel()
		<-managerDone
		current.Stop()
	}
}

// stopManager stops the manager startManager started.
var stopManager func()

// registerCluster creates the kubeconfig Secret and the ServiceCluster, and waits until it is Ready.
func registerCluster(sc *serviceCluster, labels map[string]string, region string) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: sc.name + "-kubeconfig", Namespace: "convoy-system"},
		Data:       map[string][]byte{"kubeconfig": sc.kubeconfig},
	}
	Expect(k8sClient.Create(ctx, secret)).To(Succeed())
	Expect(k8sClient.Create(ctx, &convoyv1.ServiceCluster{
		ObjectMeta: metav1.ObjectMeta{Name: sc.name, Labels: labels},
		Spec: convoyv1.ServiceClusterSpec{
			KubeconfigSecretRef: convoyv1.SecretKeyReference{Namespace: "convoy-system", Name: secret.Name},
			Region:              region,
			Zones:               []string{region + "a", region + "b"},
		},
	})).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(clusterReady(g, sc.name)).To(Equal(convoyv1.ReasonConnected))
	}, timeout, interval).Should(Succeed())
}
