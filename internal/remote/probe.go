package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// IstioNetworkingGroup serves DestinationRules.
const IstioNetworkingGroup = "networking.istio.io"

// ProbeResult is what a health probe learned about a cluster.
type ProbeResult struct {
	// ClusterID is the UID of the kube-system namespace: stable for the life of a cluster and
	// the same whichever ServiceCluster (or credentials) reaches it.
	ClusterID         string
	KubernetesVersion string
	Capabilities      convoyv1.ClusterCapabilities
}

// Probe checks that the cluster answers with these credentials and discovers its capabilities.
func (c *Connection) Probe(ctx context.Context) (ProbeResult, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	res, err := probe(ctx, c.discovery)
	if err != nil {
		return res, err
	}
	kubeSystem := &metav1.PartialObjectMetadata{}
	kubeSystem.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.cluster.GetAPIReader().Get(ctx, client.ObjectKey{Name: metav1.NamespaceSystem}, kubeSystem); err != nil {
		return res, fmt.Errorf("reading namespace kube-system for the cluster's identity: %w", err)
	}
	res.ClusterID = string(kubeSystem.UID)
	c.nativeSidecarsOnNodes(ctx, &res.Capabilities)
	return res, nil
}

// nativeSidecarsOnNodes narrows NativeSidecars to what Istio's automatic mode decides: native
// only when every node's kubelet is 1.33 or newer. A cluster whose nodes convoy cannot read,
// or has none, gets legacy settings, as Istio does without node information.
func (c *Connection) nativeSidecarsOnNodes(ctx context.Context, caps *convoyv1.ClusterCapabilities) {
	if c.placementErr != nil {
		caps.NativeSidecars = false
		return
	}
	var nodes corev1.NodeList
	if err := c.cluster.GetCache().List(ctx, &nodes); err != nil {
		caps.NativeSidecars = false
		return
	}
	oldest, ok := oldestKubelet(nodes.Items)
	if !ok {
		caps.NativeSidecars = false
		return
	}
	caps.OldestKubeletVersion = fmt.Sprintf("v%d.%d", oldest.Major(), oldest.Minor())
	caps.NativeSidecars = caps.NativeSidecars && oldest.AtLeast(version.MajorMinor(1, 33))
}

// probe reads the version and the DestinationRule support. Discovery's own methods take no
// context, so the requests are made through its REST client with ctx: a probe that hangs
// ends at the probe timeout, not at the client's request timeout.
func probe(ctx context.Context, disc discovery.DiscoveryInterface) (ProbeResult, error) {
	rc := disc.RESTClient()
	var info apimachineryversion.Info
	if err := getJSON(ctx, rc, "/version", &info); err != nil {
		return ProbeResult{}, fmt.Errorf("reading server version: %w", err)
	}
	res := ProbeResult{KubernetesVersion: info.GitVersion}
	if v, err := version.ParseGeneric(info.GitVersion); err == nil {
		res.Capabilities.PreStopSleep = v.AtLeast(version.MajorMinor(1, 30))
		res.Capabilities.PreStopSleepZero = v.AtLeast(version.MajorMinor(1, 33))
		res.Capabilities.NativeSidecars = v.AtLeast(version.MajorMinor(1, 33))
		res.Capabilities.TrafficDistribution = trafficDistribution(v)
	}
	versions, err := destinationRuleVersions(ctx, rc)
	if err != nil {
		return ProbeResult{}, err
	}
	res.Capabilities.DestinationRuleVersions = versions
	return res, nil
}

func getJSON(ctx context.Context, rc rest.Interface, path string, into any) error {
	raw, err := rc.Get().AbsPath(path).Do(ctx).Raw()
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

// trafficDistribution is the zone-local Service trafficDistribution enabled by default at
// this version: PreferSameZone is beta (on) from 1.34, PreferClose from 1.31.
func trafficDistribution(v *version.Version) string {
	switch {
	case v.AtLeast(version.MajorMinor(1, 34)):
		return "PreferSameZone"
	case v.AtLeast(version.MajorMinor(1, 31)):
		return "PreferClose"
	}
	return ""
}

// destinationRuleVersions lists the networking.istio.io versions that serve DestinationRule,
// the server's preferred version first.
func destinationRuleVersions(ctx context.Context, rc rest.Interface) ([]string, error) {
	var group metav1.APIGroup
	if err := getJSON(ctx, rc, "/apis/"+IstioNetworkingGroup, &group); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading API group %s: %w", IstioNetworkingGroup, err)
	}
	var versions []string
	for _, gv := range group.Versions {
		var resources metav1.APIResourceList
		if err := getJSON(ctx, rc, "/apis/"+gv.GroupVersion, &resources); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("listing %s resources: %w", gv.GroupVersion, err)
		}
		if slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "destinationrules" }) {
			versions = append(versions, gv.Version)
		}
	}
	// Put the preferred version first so callers can take versions[0].
	slices.SortStableFunc(versions, func(a, b string) int {
		switch {
		case a == group.PreferredVersion.Version:
			return -1
		case b == group.PreferredVersion.Version:
			return 1
		}
		return 0
	})
	return versions, nil
}
