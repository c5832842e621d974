// Package chart tests the Helm chart in charts/convoy: helm lint, the values schema, what
// the templates render, the RBAC and CRDs against what controller-gen generates into
// config/, and the rendered objects against a real API server (envtest): every object is
// server-side applied with dry-run, and the chart is installed, upgraded, uninstalled and
// installed again with helm itself.
//
// helm comes from $HELM, else from hack/helm.sh (built from the Go module proxy and cached
// under ${XDG_CACHE_HOME:-~/.cache}/convoy; the first build takes a few minutes). The tests
// fail when neither works. The API server tests need KUBEBUILDER_ASSETS, as `make test` sets.
package chart

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/convoy-dev/convoy/internal/manifest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	repoRoot    = "../.."
	namespace   = "convoy-system"
	releaseName = "convoy"
)

var (
	chartDir   = filepath.Join(repoRoot, "charts", "convoy")
	allValues  = filepath.Join("testdata", "all-values.yaml")
	minValues  = filepath.Join("testdata", "minimal-values.yaml")
	helmOnce   sync.Once
	helmBin    string
	helmErr    error
	helmHome   string
	helmHomeMu sync.Mutex
)

// valueSets are the values files every rendering test runs with: the defaults, every
// optional part on, every optional part off.
var valueSets = []struct {
	name  string
	files []string
}{
	{"defaults", nil},
	{"all-optional-on", []string{allValues}},
	{"all-optional-off", []string{minValues}},
}

// helm returns the path of the helm binary: $HELM, else what hack/helm.sh prints (it builds
// helm once and caches it). It fails the test when neither gives one.
func helm(t testing.TB) string {
	t.Helper()
	helmOnce.Do(func() {
		if p := os.Getenv("HELM"); p != "" {
			helmBin, helmErr = exec.LookPath(p)
			return
		}
		cmd := exec.Command(filepath.Join(repoRoot, "hack", "helm.sh"))
		cmd.Stderr = os.Stderr // progress of a cold build
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("hack/helm.sh: %w", err)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		helmBin = strings.TrimSpace(lines[len(lines)-1])
		if _, err := os.Stat(helmBin); err != nil {
			helmErr = fmt.Errorf("hack/helm.sh printed %q: %w", helmBin, err)
		}
	})
	if helmErr != nil {
		t.Fatalf("cannot get helm (set HELM to a helm binary, or fix hack/helm.sh): %v", helmErr)
	}
	return helmBin
}

// helmEnv isolates helm from the user's configuration, cache and repositories.
func helmEnv(t testing.TB) []string {
	t.Helper()
	helmHomeMu.Lock()
	defer helmHomeMu.Unlock()
	if helmHome == "" {
		dir, err := os.MkdirTemp("", "convoy-chart-test-helm-")
		if err != nil {
			t.Fatal(err)
		}
		helmHome = dir
	}
	env := os.Environ()
	for _, kv := range [][2]string{
		{"HELM_CACHE_HOME", "cache"}, {"HELM_CONFIG_HOME", "config"}, {"HELM_DATA_HOME", "data"},
	} {
		env = append(env, kv[0]+"="+filepath.Join(helmHome, kv[1]))
	}
	return append(env, "HELM_NO_PLUGINS=1", "KUBECONFIG="+filepath.Join(helmHome, "no-kubeconfig"))
}

// runHelm runs helm with args and returns its stdout, or an error carrying its stderr.
func runHelm(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = helmEnv(t)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// template renders the chart with the given values files and --set flags (or other flags,
// when an argument starts with "--").
func template(t testing.TB, files []string, sets ...string) (string, error) {
	t.Helper()
	args := []string{"template", releaseName, chartDir, "--namespace", namespace}
	for _, f := range files {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		if strings.HasPrefix(s, "--") {
			args = append(args, s)
			continue
		}
		args = append(args, "--set", s)
	}
	return runHelm(t, nil, args...)
}

// showOnly is a template argument that renders only one template file.
func showOnly(file string) string { return "--show-only=templates/" + file }

// render renders the chart and decodes every object.
func render(t testing.TB, files []string, sets ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := template(t, files, sets...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// find returns the rendered objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// findOne returns the only rendered object of a kind whose name ends with suffix.
func findOne(t testing.TB, objs []*unstructured.Unstructured, kind, suffix string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range find(objs, kind) {
		if strings.HasSuffix(o.GetName(), suffix) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s named *%s, found %d", kind, suffix, len(found))
	}
	return found[0]
}
