package remote

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// nodeZoneAndKubelet strips a cached Node down to its labels (zones) and kubelet version
// (whether Istio may inject native sidecars), so caching every node costs little memory.
func nodeZoneAndKubelet(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, UID: node.UID, ResourceVersion: node.ResourceVersion, Labels: node.Labels},
		Status:     corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: node.Status.NodeInfo.KubeletVersion}},
	}, nil
}

// oldestKubelet is the lowest kubelet version among nodes, and whether every version parsed.
func oldestKubelet(nodes []corev1.Node) (*version.Version, bool) {
	var oldest *version.Version
	for _, n := range nodes {
		v, err := version.ParseGeneric(n.Status.NodeInfo.KubeletVersion)
		if err != nil {
			return nil, false
		}
		if oldest == nil || v.LessThan(oldest) {
			oldest = v
		}
	}
	return oldest, oldest != nil
}

// canReadPlacement checks that convoy may list nodes and (podsClusterWide) its pods in the
// cluster; with AccessScopeManagedNamespaces pods are read per namespace, where convoy's
// role grants it. Older convoy versions did not need these rights, and without this check a
// missing permission would stall the cache sync and cost the whole cluster. A Forbidden answer is returned wrapped, so
// apierrors.IsForbidden tells it apart from a cluster that did not answer.
func canReadPlacement(ctx context.Context, reader client.Reader, cluster string, podsClusterWide bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	checks := []struct {
		what string
		list client.ObjectList
		opts []client.ListOption
	}{
		{"nodes", &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "NodeList"}}, nil},
		{"pods", &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}},
			[]client.ListOption{client.MatchingLabels{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}}},
	}
	if !podsClusterWide {
		checks = checks[:1]
	}
	for _, c := range checks {
		if err := reader.List(ctx, c.list, append(c.opts, client.Limit(1))...); err != nil {
			return fmt.Errorf("pods per zone are not reported for %s: convoy cannot list %s there (grant list and watch on pods and nodes): %w", cluster, c.what, err)
		}
	}
	return nil
}

// NodeZones knows the zone and labels of every node, from a slim cache of every node in the
// cluster.
type NodeZones struct {
	nodes  []corev1.Node
	zoneOf map[string]string
}

// NodeZones reads the zone of every node.
func (c *Connection) NodeZones(ctx context.Context) (*NodeZones, error) {
	if c.placementErr != nil {
		return nil, c.placementErr
	}
	var nodes corev1.NodeList
	if err := c.cluster.GetCache().List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("listing nodes in %s: %w", c.Name, err)
	}
	return NodeZonesOf(nodes.Items), nil
}

// NodeZonesOf indexes nodes by zone.
func NodeZonesOf(nodes []corev1.Node) *NodeZones {
	nz := &NodeZones{nodes: nodes, zoneOf: make(map[string]string, len(nodes))}
	for _, n := range nodes {
		nz.zoneOf[n.Name] = n.Labels[convoyv1.ZoneLabel]
	}
	return nz
}

// Zones lists, sorted, the zones of the nodes whose labels pass match (all nodes when match
// is nil): the domains the scheduler spreads a pod over.
func (nz *NodeZones) Zones(match func(labels map[string]string) bool) []string {
	seen := map[string]bool{}
	for _, n := range nz.nodes {
		if z := n.Labels[convoyv1.ZoneLabel]; z != "" && (match == nil || match(n.Labels)) {
			seen[z] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// PodsPerZone counts pods by the zone of their node. Pods that are not scheduled, are
// terminating or have finished do not count: they serve no traffic.
func (nz *NodeZones) PodsPerZone(pods []corev1.Pod) map[string]int32 {
	counts := map[string]int32{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || !Current(&p) {
			continue
		}
		if z := nz.zoneOf[p.Spec.NodeName]; z != "" {
			counts[z]++
		}
	}
	return counts
}
