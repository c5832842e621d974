package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/scheme"
)

const managerCluster = "manager"

// benchFleet is the local fleet of hack/fleet.sh the bench runs against.
type benchFleet struct {
	root, dir string
	clusters  []string // service clusters, sorted

	mgrCfg  *rest.Config
	mgr     client.Client
	mgrCS   kubernetes.Interface
	remotes map[string]kubernetes.Interface
}

func (f *benchFleet) kwokDir() string { return filepath.Join(f.dir, "kwok") }

// kubeconfigPath accepts both layouts hack/fleet.sh has used (kubeconfigs/ and kubeconfig/).
func (f *benchFleet) kubeconfigPath(cluster string) string {
	for _, sub := range []string{"kubeconfigs", "kubeconfig"} {
		p := filepath.Join(f.dir, sub, cluster+".yaml")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join(f.dir, "kubeconfigs", cluster+".yaml")
}

// restConfig loads a cluster's kubeconfig with a high client-side rate limit: the bench must
// not be the bottleneck it measures.
func (f *benchFleet) restConfig(cluster string, qps float32) (*rest.Config, error) {
	data, err := os.ReadFile(f.kubeconfigPath(cluster))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of %s: %w", cluster, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of %s: %w", cluster, err)
	}
	cfg.QPS, cfg.Burst = qps, int(2*qps)
	cfg.UserAgent = "convoy-bench"
	return cfg, nil
}

func (f *benchFleet) managerPID() (int, error) {
	data, err := os.ReadFile(filepath.Join(f.dir, "manager.pid"))
	if err != nil {
		return 0, fmt.Errorf("convoy manager pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("convoy manager pid file: %w", err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, fmt.Errorf("convoy manager (pid %d) is not running: %w; see %s", pid, err, filepath.Join(f.dir, "manager.log"))
	}
	return pid, nil
}

// running says whether a fleet is up in dir: the manager process lives and the manager
// cluster answers.
func (f *benchFleet) running(ctx context.Context) bool {
	if _, err := f.managerPID(); err != nil {
		return false
	}
	cfg, err := f.restConfig(managerCluster, 5)
	if err != nil {
		return false
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	_, err = cs.Discovery().ServerVersion()
	return err == nil
}

// script runs hack/fleet.sh with the bench's fleet directory, streaming its output.
func (f *benchFleet) script(ctx context.Context, timeout time.Duration, env []string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(f.root, "hack", "fleet.sh"), args...)
	cmd.Dir = f.root
	cmd.Env = append(append(os.Environ(), "FLEET_DIR="+f.dir), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("hack/fleet.sh %s: not done within %s", strings.Join(args, " "), timeout)
		}
		return fmt.Errorf("hack/fleet.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// connect builds the clients and finds the service clusters (every registered ServiceCluster).
func (f *benchFleet) connect(ctx context.Context, want int, readyTimeout time.Duration) error {
	var err error
	if f.mgrCfg, err = f.restConfig(managerCluster, 1000); err != nil {
		return err
	}
	writeCfg := rest.CopyConfig(f.mgrCfg)
	writeCfg.Timeout = 60 * time.Second
	if f.mgr, err = client.New(writeCfg, client.Options{Scheme: scheme.New()}); err != nil {
		return err
	}
	if f.mgrCS, err = kubernetes.NewForConfig(writeCfg); err != nil {
		return err
	}
	// Every registered ServiceCluster must be Ready before anything is measured.
	deadline := time.Now().Add(readyTimeout)
	for {
		var list convoyv1.ServiceClusterList
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := f.mgr.List(lctx, &list)
		cancel()
		if err != nil {
			return fmt.Errorf("listing ServiceClusters: %w", err)
		}
		f.clusters = f.clusters[:0]
		var notReady []string
		for _, sc := range list.Items {
			f.clusters = append(f.clusters, sc.Name)
			if !meta.IsStatusConditionTrue(sc.Status.Conditions, convoyv1.ReadyCondition) {
				notReady = append(notReady, sc.Name)
			}
		}
		sort.Strings(f.clusters)
		if len(f.clusters) != want {
			return fmt.Errorf("the fleet in %s has %d ServiceClusters %v, the bench wants %d: "+
				"set CLUSTERS=%d, or remove that fleet (FLEET_DIR=%s hack/fleet.sh down) and let the bench start one",
				f.dir, len(f.clusters), f.clusters, want, len(f.clusters), f.dir)
		}
		if len(notReady) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ServiceClusters not Ready after %s: %v (see %s)", readyTimeout, notReady, filepath.Join(f.dir, "manager.log"))
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	f.remotes = map[string]kubernetes.Interface{}
	for _, c := range f.clusters {
		cfg, err := f.restConfig(c, 200)
		if err != nil {
			return err
		}
		if f.remotes[c], err = kubernetes.NewForConfig(cfg); err != nil {
			return err
		}
	}
	return nil
}

// ensurePodCapacity adds one fake node per zone to each service cluster when its nodes
// cannot hold pods pods (the demo fleet has 6 nodes of 110 pods; a rollout briefly runs two
// pods per Deployment).
func (f *benchFleet) ensurePodCapacity(ctx context.Context, pods int) error {
	for _, c := range f.clusters {
		cs := f.remotes[c]
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		nodes, err := cs.CoreV1().Nodes().List(lctx, metav1.ListOptions{})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: listing nodes: %w", c, err)
		}
		have := int64(0)
		zones := map[string]string{} // zone -> region
		for _, n := range nodes.Items {
			if q, ok := n.Status.Allocatable[corev1.ResourcePods]; ok {
				have += q.Value()
			}
			if z := n.Labels[corev1.LabelTopologyZone]; z != "" {
				zones[z] = n.Labels[corev1.LabelTopologyRegion]
			}
		}
		if have >= int64(pods) {
			continue
		}
		if len(zones) == 0 {
			return fmt.Errorf("%s: no node carries %s; is this a fleet of hack/fleet.sh?", c, corev1.LabelTopologyZone)
		}
		perZone := (int64(pods)-have)/int64(len(zones)) + 1
		for zone, region := range zones {
			name := "bench-" + zone
			node := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{
					Name:        name,
					Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
					Labels: map[string]string{
						"type": "kwok", corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
						corev1.LabelTopologyRegion: region, corev1.LabelTopologyZone: zone,
					},
				},
				Status: corev1.NodeStatus{
					Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000"), corev1.ResourceMemory: resource.MustParse("4Ti"), corev1.ResourcePods: *resource.NewQuantity(perZone, resource.DecimalSI)},
					Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000"), corev1.ResourceMemory: resource.MustParse("4Ti"), corev1.ResourcePods: *resource.NewQuantity(perZone, resource.DecimalSI)},
				},
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := cs.CoreV1().Nodes().Create(cctx, node, metav1.CreateOptions{})
			cancel()
			if apierrors.IsAlreadyExists(err) {
				// A node of an earlier run with too few pods: replace it.
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err = cs.CoreV1().Nodes().Delete(dctx, name, metav1.DeleteOptions{})
				if err == nil {
					_, err = cs.CoreV1().Nodes().Create(dctx, node, metav1.CreateOptions{})
				}
				cancel()
			}
			if err != nil {
				return fmt.Errorf("%s: adding fake node %s: %w", c, name, err)
			}
		}
		logf("%s: added %d fake nodes of %d pods (had room for %d pods, need %d)", c, len(zones), perZone, have, pods)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/convoy-dev/convoy\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench from the convoy repository (make bench)")
		}
		dir = parent
	}
}
