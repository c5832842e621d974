package chart

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const fieldOwner = client.FieldOwner("helm-test")

var (
	envOnce sync.Once
	testEnv *envtest.Environment
	k8s     client.Client
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testEnv != nil {
		if err := testEnv.Stop(); err != nil {
			println("stopping the API server:", err.Error())
		}
	}
	if helmHome != "" {
		_ = os.RemoveAll(helmHome)
	}
	os.Exit(code)
}

// apiServer starts one kube-apiserver and etcd for the package (envtest) with the minimal
// ServiceMonitor CRD of testdata installed, and returns an admin client.
func apiServer(t *testing.T) client.Client {
	t.Helper()
	envOnce.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			envErr = errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or set it to the directory hack/k8s-binaries.sh prints")
			return
		}
		scheme := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(scheme); err != nil {
			envErr = err
			return
		}
		if err := apiextensionsv1.AddToScheme(scheme); err != nil {
			envErr = err
			return
		}
		testEnv = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("testdata", "servicemonitor-crd.yaml")},
			ErrorIfCRDPathMissing: true,
		}
		cfg, err := testEnv.Start()
		if err != nil {
			envErr = err
			return
		}
		k8s, envErr = client.New(cfg, client.Options{Scheme: scheme})
	})
	if envErr != nil {
		t.Fatalf("starting the API server: %v", envErr)
	}
	return k8s
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestServerSideApplyDryRun sends every rendered object to a real API server as a
// server-side apply with dry-run: schema, defaulting, validation and admission run, nothing
// is stored. Server-side apply rejects fields a kind does not declare.
func TestServerSideApplyDryRun(t *testing.T) {
	c := apiServer(t)
	ensureNamespace(t, c, namespace)
	ctx := context.Background()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			objs := render(t, vs.files)
			if len(objs) == 0 {
				t.Fatal("nothing rendered")
			}
			for _, o := range objs {
				if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), fieldOwner, client.DryRunAll); err != nil {
					t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
				}
			}
		})
	}

	// The check is only as good as the server's strictness: a field the kind does not
	// declare must fail.
	t.Run("unknown field is refused", func(t *testing.T) {
		objs := render(t, nil, showOnly("deployment.yaml"))
		d := objs[0]
		if err := unstructured.SetNestedField(d.Object, "yes", "spec", "template", "spec", "runAsManager"); err != nil {
			t.Fatal(err)
		}
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(d), fieldOwner, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "runAsManager") {
			t.Fatalf("want an error about the unknown field, got %v", err)
		}
	})
}

// TestHelmInstallUpgradeUninstall installs the chart with helm into the API server,
// upgrades it with changed CRDs, uninstalls it and installs it again: helm upgrades the CRDs
// (they are templates) and keeps them on uninstall (helm.sh/resource-policy: keep), and a
// later install adopts the kept CRDs.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	c := apiServer(t)
	ctx := context.Background()
	user, err := testEnv.AddUser(envtest.User{Name: "helm-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(helmEnv(t), "KUBECONFIG="+kubeconfigPath)
	const ns, release = "convoy-helm", "convoy-release"
	helmDo := func(args ...string) string {
		t.Helper()
		out, err := runHelm(t, env, append(args, "--namespace", ns)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	categories := func() []string {
		t.Helper()
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: "serviceclusters.convoy.dev"}, crd); err != nil {
			t.Fatal(err)
		}
		if crd.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s lacks helm.sh/resource-policy: keep", crd.Name)
		}
		return crd.Spec.Names.Categories
	}

	// An "older" chart whose ServiceCluster CRD has one more category.
	old := copyChart(t, func(path string, data []byte) []byte {
		if filepath.Base(path) != "convoy.dev_serviceclusters.yaml" {
			return data
		}
		const from = "    categories:\n    - convoy\n"
		if !strings.Contains(string(data), from) {
			t.Fatalf("%s: no %q to change", path, from)
		}
		return []byte(strings.Replace(string(data), from, from+"    - convoy-old\n", 1))
	})
	helmDo("install", release, old, "--create-namespace")
	if got := categories(); !slices.Equal(got, []string{"convoy", "convoy-old"}) {
		t.Fatalf("installed CRD categories %v", got)
	}

	helmDo("upgrade", release, chartDir, "--set", "replicas=3")
	if got := categories(); !slices.Equal(got, []string{"convoy"}) {
		t.Errorf("helm upgrade left the CRD's categories at %v, want [convoy]", got)
	}
	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release}, dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %d after the upgrade, want 3", *dep.Spec.Replicas)
	}

	// Helm keeps each revision, chart files and manifest included, gzip'd in a Secret of at
	// most 1 MiB; the Project CRD is most of it.
	secrets := &corev1.SecretList{}
	if err := c.List(ctx, secrets, client.InNamespace(ns), client.MatchingLabels{"owner": "helm", "name": release}); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 2 {
		t.Errorf("%d release Secrets, want 2", len(secrets.Items))
	}
	for _, s := range secrets.Items {
		size := len(s.Data["release"])
		t.Logf("release Secret %s: %d KiB", s.Name, size/1024)
		if size > 768*1024 {
			t.Errorf("release Secret %s holds %d KiB: close to the 1 MiB limit of a Secret", s.Name, size/1024)
		}
	}

	helmDo("uninstall", release)
	for _, name := range []string{"serviceclusters", "projects", "gracefulshutdownpolicies", "localityloadbalancings"} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: name + ".convoy.dev"}, crd); err != nil {
			t.Errorf("CRD %s.convoy.dev after helm uninstall: %v", name, err)
		}
	}
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: release}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("Deployment after helm uninstall: %v, want NotFound", err)
	}

	out := helmDo("install", release, chartDir)
	if want := "convoy v0.1.0 is installed in namespace " + ns; !strings.Contains(out, want) {
		t.Errorf("helm install printed no NOTES with %q:\n%s", want, out)
	}
	helmDo("uninstall", release, "--timeout", (30 * time.Second).String())
}

// copyChart copies the chart into a temporary directory, passing each file through edit.
func copyChart(t *testing.T, edit func(path string, data []byte) []byte) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "convoy")
	err := filepath.WalkDir(chartDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(chartDir, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, edit(rel, data), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
