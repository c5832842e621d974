package remote

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// TestSamplePoliciesSteadyStateSendsNoWrites renders the sample Project with both sample
// policies (config/samples) and applies the objects to a real API server that serves Istio's
// own DestinationRule CRD (from the istio.io/api module), the way Connection.Apply does: read
// the live object as the remote cache holds it (typed, so an Istio spec goes through its
// protobuf JSON mapping), skip it when upToDate, else server-side apply it as convoy. The
// second pass must send no write at all: a field that never compares equal makes convoy
// re-apply the object on every resync, in every cluster.
//
// The DestinationRule of the samples combines connectionPool (tcp keepalive, idle timeout,
// maxRequestsPerConnection: 0), loadBalancer.localityLbSetting with a failover ring and
// outlierDetection; the controllers' zero-write tests cover smaller shapes.
func TestSamplePoliciesSteadyStateSendsNoWrites(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: this test needs a real kube-apiserver and etcd; `make test` builds and sets them")
	}
	// One API server plays both roles: the manager cluster (convoy's CRDs, so the samples get
	// the API server's defaulting and validation) and a service cluster with Istio's CRDs.
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases"), istioCRDBundle(t)},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	var writes atomic.Int64
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &writeCounter{next: rt, writes: &writes} })
	scheme := convoyscheme.New()
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	project, policies := createSamples(ctx, t, cl)
	c := testConnection()

	current := convoyv1.ClusterCapabilities{
		PreStopSleep: true, PreStopSleepZero: true, NativeSidecars: true,
		DestinationRuleVersions: []string{"v1", "v1beta1"}, TrafficDistribution: "PreferSameZone",
	}
	for _, tc := range []struct {
		name      string
		namespace string
		caps      convoyv1.ClusterCapabilities
		// previous edits the DestinationRules of the first pass: what an earlier convoy applied.
		previous func(t *testing.T, dr *unstructured.Unstructured)
	}{
		{name: "networking.istio.io/v1, current Kubernetes", namespace: "shop-v1", caps: current},
		{name: "networking.istio.io/v1beta1, legacy sidecar and drain helper", namespace: "shop-v1beta1", caps: convoyv1.ClusterCapabilities{
			DestinationRuleVersions: []string{"v1beta1"},
		}},
		{
			name: "DestinationRules applied with maxRequestsPerConnection: 0 by an earlier convoy", namespace: "shop-upgraded", caps: current,
			previous: func(t *testing.T, dr *unstructured.Unstructured) {
				if err := unstructured.SetNestedField(dr.Object, int64(0), "spec", "trafficPolicy", "connectionPool", "http", "maxRequestsPerConnection"); err != nil {
					t.Fatal(err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := project.DeepCopy()
			p.Spec.Namespace = tc.namespace
			cluster := &convoyv1.ServiceCluster{}
			readSample(t, "servicecluster.yaml", cluster)
			cluster.Status.Capabilities = tc.caps
			objs, err := render.ForCluster(p, cluster, policies)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs.DestinationRules) == 0 {
				t.Fatal("the samples render no DestinationRule; this test would prove nothing")
			}

			// pass applies what is not up to date and returns the objects it wrote.
			pass := func(previous func(*testing.T, *unstructured.Unstructured)) []string {
				var written []string
				for _, desired := range objs.All() {
					if u, ok := desired.(*unstructured.Unstructured); ok && previous != nil {
						u = u.DeepCopy()
						previous(t, u)
						desired = u
					}
					gvk, err := apiutil.GVKForObject(desired, scheme)
					if err != nil {
						t.Fatal(err)
					}
					id := gvk.Kind + " " + client.ObjectKeyFromObject(desired).String()
					obj, err := scheme.New(gvk)
					if err != nil {
						t.Fatal(err)
					}
					live := obj.(client.Object)
					switch err := cl.Get(ctx, client.ObjectKeyFromObject(desired), live); {
					case err == nil:
						ok, err := c.upToDate(gvk, live, desired)
						if err != nil {
							t.Fatalf("%s: %v", id, err)
						}
						if ok {
							continue
						}
						written = append(written, id)
						t.Logf("%s is not up to date; live spec:\n%s", id, specJSON(t, live))
					case apierrors.IsNotFound(err):
					default:
						t.Fatalf("reading %s: %v", id, err)
					}
					u, err := applyPayload(desired, gvk)
					if err != nil {
						t.Fatal(err)
					}
					if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
						client.FieldOwner(convoyv1.FieldOwner), client.ForceOwnership); err != nil {
						t.Fatalf("applying %s: %v", id, err)
					}
				}
				return written
			}

			before := writes.Load()
			pass(tc.previous)
			if writes.Load() == before {
				t.Fatal("the first pass sent no writes: the write counter sees nothing")
			}
			before = writes.Load()
			written := pass(nil)
			if n := writes.Load() - before; n != 0 || len(written) > 0 {
				t.Errorf("the second pass over unchanged objects sent %d write requests; not up to date: %v", n, written)
			}
		})
	}
}

// createSamples creates the sample policies and Project in the API server and returns them as
// stored (defaulted), with the render inputs the Project controller would gather.
func createSamples(ctx context.Context, t *testing.T, cl client.Client) (*convoyv1.Project, render.Policies) {
	t.Helper()
	gsp, worker, llb, project := &convoyv1.GracefulShutdownPolicy{}, &convoyv1.GracefulShutdownPolicy{}, &convoyv1.LocalityLoadBalancing{}, &convoyv1.Project{}
	secret := &corev1.Secret{}
	for file, obj := range map[string]client.Object{
		"gracefulshutdownpolicy.yaml": gsp, "gracefulshutdownpolicy-worker.yaml": worker,
		"localityloadbalancing.yaml": llb, "secret.yaml": secret, "project.yaml": project,
	} {
		readSample(t, file, obj)
		if err := cl.Create(ctx, obj); err != nil {
			t.Fatalf("creating the sample in %s: %v", file, err)
		}
	}
	if project.Spec.GracefulShutdownPolicy == nil || project.Spec.GracefulShutdownPolicy.Name != gsp.Name ||
		project.Spec.LocalityLoadBalancing == nil || project.Spec.LocalityLoadBalancing.Name != llb.Name {
		t.Fatal("the sample Project no longer references both sample policies")
	}
	return project, render.Policies{
		GracefulShutdown:      map[string]*convoyv1.GracefulShutdownPolicy{gsp.Name: gsp, worker.Name: worker},
		LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{llb.Name: llb},
		DrainHelperImage:      "ghcr.io/convoy-dev/convoy-drain:test",
		// As read back from the API server, which turned stringData into data.
		Secrets: map[string]*corev1.Secret{secret.Name: secret},
		// Two regions: the default failover ring has entries.
		Regions: []string{"ap-northeast-1", "ap-northeast-2"},
	}
}

func readSample(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// istioCRDBundle is Istio's CRD bundle from the istio.io/api module go.mod pins: the same file
// the local fleet installs into its service clusters.
func istioCRDBundle(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("go", "mod", "download", "istio.io/api").CombinedOutput(); err != nil {
		t.Fatalf("downloading istio.io/api: %v: %s", err, out)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("locating the istio.io/api module: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Istio's CRD bundle: %v", err)
	}
	return path
}

func specJSON(t *testing.T, obj runtime.Object) string {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err.Error()
	}
	out, _ := json.MarshalIndent(map[string]any{"spec": u["spec"], "managedFields": u["metadata"].(map[string]any)["managedFields"]}, "", "  ")
	return string(out)
}

// writeCounter counts the requests that are not reads.
type writeCounter struct {
	next   http.RoundTripper
	writes *atomic.Int64
}

func (w *writeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		w.writes.Add(1)
	}
	return w.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go cancel requests through the wrapper.
func (w *writeCounter) WrappedRoundTripper() http.RoundTripper { return w.next }
