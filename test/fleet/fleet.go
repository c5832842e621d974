// Package fleet reaches the local fleet that hack/fleet.sh runs (make demo): a manager
// cluster and service clusters, each a kwokctl cluster with a kubeconfig under one directory.
// The demo summary and the end-to-end suite use it.
package fleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-dev/convoy/internal/scheme"
)

// Fleet is a running local fleet.
type Fleet struct {
	// Dir is the fleet's state directory (FLEET_DIR of hack/fleet.sh).
	Dir string
	// ManagerName is the kwokctl cluster that runs convoy's CRDs.
	ManagerName string
}

// New returns the fleet whose state lives in dir.
func New(dir, manager string) *Fleet { return &Fleet{Dir: dir, ManagerName: manager} }

// KubeconfigPath is the self-contained kubeconfig of a cluster of the fleet.
func (f *Fleet) KubeconfigPath(cluster string) string {
	return filepath.Join(f.Dir, "kubeconfig", cluster+".yaml")
}

// Client returns a client for a cluster of the fleet, knowing convoy's and Istio's types.
func (f *Fleet) Client(cluster string) (client.Client, error) {
	data, err := os.ReadFile(f.KubeconfigPath(cluster))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w (is the fleet up? make demo)", cluster, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return client.New(cfg, client.Options{Scheme: scheme.New()})
}

// Manager returns a client for the manager cluster.
func (f *Fleet) Manager() (client.Client, error) { return f.Client(f.ManagerName) }

// Kwokctl runs kwokctl against the fleet's private KWOK_WORKDIR.
func (f *Fleet) Kwokctl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(f.Dir, "bin", "kwokctl"), args...)
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+filepath.Join(f.Dir, "kwok"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kwokctl %v: %w: %s", args, err, out)
	}
	return out, nil
}

// MetricsURL is where the fleet's convoy manager serves its metrics (HTTPS, authorized
// identities only).
func (f *Fleet) MetricsURL() (string, error) {
	port, err := os.ReadFile(filepath.Join(f.Dir, "ports", "manager-metrics"))
	if err != nil {
		return "", fmt.Errorf("the fleet's metrics port: %w (a fleet from an older hack/fleet.sh: restart it with make demo)", err)
	}
	return "https://127.0.0.1:" + strings.TrimSpace(string(port)) + "/metrics", nil
}
