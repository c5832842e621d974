// Package join registers a service cluster with convoy (`convoy join`) and removes what
// that created (`convoy unjoin`). It acts with the caller's own credentials: an admin of
// the service cluster, and someone who may create Secrets and ServiceClusters in the
// manager cluster. What it creates in the service cluster is internal/access's.
package join

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/access"
	"github.com/convoy-dev/convoy/internal/remote"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// FieldManager owns what join applies.
const FieldManager = "convoy-join"

// Options of Join.
type Options struct {
	// Name of the ServiceCluster.
	Name string
	// Service reaches the service cluster as an admin; Manager the manager cluster.
	Service *rest.Config
	Manager client.Client
	// Server is the service cluster's API address as the convoy manager reaches it; empty:
	// Service.Host.
	Server string
	// Region and Zones; empty: read from the nodes' topology labels.
	Region string
	Zones  []string
	// Labels of the ServiceCluster (what Projects select on).
	Labels map[string]string
	// SecretNamespace holds the kubeconfig Secret in the manager cluster.
	SecretNamespace string
	// TokenTTL is the lifetime of the identity's token; RotateToken issues a new one even
	// when the stored one still works.
	TokenTTL    time.Duration
	RotateToken bool
	// DryRun prints every object to Out instead of writing it.
	DryRun bool
	Out    io.Writer
}

// Result says what Join did.
type Result struct {
	Region      string
	Zones       []string
	TokenIssued bool
	Expires     time.Time
}

// Join sets up convoy's identity in the service cluster and registers the cluster in the
// manager. It is idempotent: a second run changes nothing but what differs, and keeps a
// stored token that still authenticates (RotateToken replaces it).
func Join(ctx context.Context, o Options) (*Result, error) {
	if o.SecretNamespace == "" {
		o.SecretNamespace = "convoy-system"
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = 365 * 24 * time.Hour
	}
	service, err := client.New(o.Service, client.Options{Scheme: convoyscheme.New()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the service cluster: %w", err)
	}
	if err := servesAdmissionPolicies(o.Service); err != nil {
		return nil, err
	}
	res := &Result{Region: o.Region, Zones: o.Zones}
	if res.Region == "" || len(res.Zones) == 0 {
		region, zones, err := topology(ctx, service)
		if err != nil {
			return nil, err
		}
		if res.Region == "" {
			res.Region = region
		}
		if len(res.Zones) == 0 {
			res.Zones = zones
		}
	}
	for _, obj := range access.JoinObjects() {
		if err := apply(ctx, service, obj.(client.Object), o); err != nil {
			return nil, fmt.Errorf("in the service cluster: %w", err)
		}
	}
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name + "-kubeconfig", Namespace: o.SecretNamespace, Labels: map[string]string{"app.kubernetes.io/name": "convoy"}},
	}
	kubeconfig, expires, err := credentials(ctx, service, o, secret)
	if err != nil {
		return nil, err
	}
	res.TokenIssued, res.Expires = expires != nil, ptrTime(expires)
	secret.Data = map[string][]byte{convoyv1.DefaultKubeconfigKey: kubeconfig}
	sc := &convoyv1.ServiceCluster{
		TypeMeta:   metav1.TypeMeta{APIVersion: convoyv1.GroupVersion.String(), Kind: "ServiceCluster"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: withRegionLabel(o.Labels, res.Region)},
		Spec: convoyv1.ServiceClusterSpec{
			KubeconfigSecretRef: convoyv1.SecretKeyReference{Namespace: o.SecretNamespace, Name: secret.Name, Key: convoyv1.DefaultKubeconfigKey},
			Region:              res.Region,
			Zones:               res.Zones,
			AccessScope:         convoyv1.AccessScopeManagedNamespaces,
		},
	}
	for _, obj := range []client.Object{secret, sc} {
		if err := apply(ctx, o.Manager, obj, o); err != nil {
			return nil, fmt.Errorf("in the manager cluster: %w", err)
		}
	}
	return res, nil
}

func ptrTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// credentials returns the kubeconfig the manager uses: the stored one while it still
// authenticates as convoy's identity (and no rotation is asked for), else one with a new
// token. expires is set when a token was issued.
func credentials(ctx context.Context, service client.Client, o Options, secret *corev1.Secret) ([]byte, *time.Time, error) {
	server := o.Server
	if server == "" {
		server = o.Service.Host
	}
	if o.DryRun {
		return kubeconfigFor(o.Name, server, caData(o.Service), "<token issued by the TokenRequest API>"), nil, nil
	}
	if !o.RotateToken {
		stored := &corev1.Secret{}
		err := o.Manager.Get(ctx, client.ObjectKeyFromObject(secret), stored)
		if err == nil && stillWorks(ctx, stored.Data[convoyv1.DefaultKubeconfigKey], server) {
			return stored.Data[convoyv1.DefaultKubeconfigKey], nil, nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("reading Secret %s/%s in the manager cluster: %w", secret.Namespace, secret.Name, err)
		}
	}
	seconds := int64(o.TokenTTL.Seconds())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: access.ServiceAccount, Namespace: access.Namespace}}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}
	if err := service.SubResource("token").Create(ctx, sa, req); err != nil {
		return nil, nil, fmt.Errorf("issuing a token for %s/%s in the service cluster: %w", sa.Namespace, sa.Name, err)
	}
	expires := req.Status.ExpirationTimestamp.Time
	return kubeconfigFor(o.Name, server, caData(o.Service), req.Status.Token), &expires, nil
}

// stillWorks reports whether a stored kubeconfig reaches server and authenticates as
// convoy's identity there.
func stillWorks(ctx context.Context, kubeconfig []byte, server string) bool {
	cfg, err := remote.RESTConfigFromKubeconfig(kubeconfig)
	if err != nil || cfg.Host != server {
		return false
	}
	c, err := client.New(cfg, client.Options{Scheme: convoyscheme.New()})
	if err != nil {
		return false
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return false
	}
	return review.Status.UserInfo.Username == serviceaccount.MakeUsername(access.Namespace, access.ServiceAccount)
}

func caData(cfg *rest.Config) []byte {
	if len(cfg.CAData) > 0 {
		return cfg.CAData
	}
	if cfg.CAFile != "" {
		if b, err := os.ReadFile(cfg.CAFile); err == nil {
			return b
		}
	}
	return nil
}

// kubeconfigFor is a self-contained kubeconfig of the kind convoy accepts: inline CA, a
// bearer token, no exec plugin or file path.
func kubeconfigFor(name, server string, ca []byte, token string) []byte {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["convoy"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "convoy"}
	cfg.CurrentContext = name
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		panic(err) // a config built here always serialises
	}
	return b
}

// servesAdmissionPolicies refuses a cluster without ValidatingAdmissionPolicy (Kubernetes
// 1.30+): without the policy, convoy's identity could bind its role in any namespace.
func servesAdmissionPolicies(cfg *rest.Config) error {
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	resources, err := disc.ServerResourcesForGroupVersion("admissionregistration.k8s.io/v1")
	if err != nil {
		return fmt.Errorf("discovering admissionregistration.k8s.io/v1 in the service cluster: %w", err)
	}
	if !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "validatingadmissionpolicies" }) {
		return errors.New("the service cluster does not serve ValidatingAdmissionPolicy (Kubernetes 1.30+), which keeps convoy's identity " +
			"to its own namespaces; upgrade the cluster, or register it by hand with accessScope Cluster (docs/install.md)")
	}
	return nil
}

// topology reads the region and zones from the nodes' well-known labels.
func topology(ctx context.Context, c client.Client) (string, []string, error) {
	nodes := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "NodeList"}}
	if err := c.List(ctx, nodes); err != nil {
		return "", nil, fmt.Errorf("listing nodes for their region and zones (or pass --region and --zones): %w", err)
	}
	var regions, zones []string
	for _, n := range nodes.Items {
		if r := n.Labels[corev1.LabelTopologyRegion]; r != "" && !slices.Contains(regions, r) {
			regions = append(regions, r)
		}
		if z := n.Labels[corev1.LabelTopologyZone]; z != "" && !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	if len(regions) > 1 {
		slices.Sort(regions)
		return "", nil, fmt.Errorf("the nodes are in several regions (%v): pass --region", regions)
	}
	slices.Sort(zones)
	region := ""
	if len(regions) == 1 {
		region = regions[0]
	}
	return region, zones, nil
}

// apply writes obj by server-side apply, or prints it with DryRun.
func apply(ctx context.Context, c client.Client, obj client.Object, o Options) error {
	if o.DryRun {
		return printObject(o.Out, obj)
	}
	u, err := toUnstructured(obj, c.Scheme())
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

func toUnstructured(obj client.Object, scheme *runtime.Scheme) (*unstructured.Unstructured, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: content}
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, err
	}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

func printObject(out io.Writer, obj client.Object) error {
	b, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "---\n%s", b)
	return err
}

// withRegionLabel adds the well-known region label to the ServiceCluster's labels unless the
// caller set it, so that placements and rollout waves can select clusters by region.
func withRegionLabel(labels map[string]string, region string) map[string]string {
	if region == "" || labels[convoyv1.RegionLabel] != "" {
		return labels
	}
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[convoyv1.RegionLabel] = region
	return out
}
