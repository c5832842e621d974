package join

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/access"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// UnjoinOptions of Unjoin.
type UnjoinOptions struct {
	Name            string
	Service         *rest.Config
	Manager         client.Client
	SecretNamespace string
	// Force removes convoy's identity even though namespaces convoy created remain; they
	// stay behind, no longer managed.
	Force  bool
	DryRun bool
	Out    io.Writer
}

// Unjoin removes what Join created, once the ServiceCluster is gone: convoy's identity,
// its roles and admission policy in the service cluster, and the kubeconfig Secret in the
// manager cluster. It refuses while the ServiceCluster exists (convoy removes its objects
// when the ServiceCluster is deleted, and needs the identity for that), and while namespaces
// convoy created remain (they would be left without an owner), unless Force.
func Unjoin(ctx context.Context, o UnjoinOptions) error {
	if o.SecretNamespace == "" {
		o.SecretNamespace = "convoy-system"
	}
	sc := &convoyv1.ServiceCluster{}
	switch err := o.Manager.Get(ctx, client.ObjectKey{Name: o.Name}, sc); {
	case err == nil:
		return fmt.Errorf("ServiceCluster %s still exists: delete it first (kubectl delete servicecluster %s); convoy removes its objects from the cluster, "+
			"then the ServiceCluster goes, and unjoin can remove convoy's identity", o.Name, o.Name)
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading ServiceCluster %s in the manager cluster: %w", o.Name, err)
	}
	service, err := client.New(o.Service, client.Options{Scheme: convoyscheme.New()})
	if err != nil {
		return fmt.Errorf("connecting to the service cluster: %w", err)
	}
	namespaces := &corev1.NamespaceList{}
	if err := service.List(ctx, namespaces, client.MatchingLabels{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}); err != nil {
		return fmt.Errorf("listing convoy's namespaces in the service cluster: %w", err)
	}
	var left []string
	for _, ns := range namespaces.Items {
		if ns.DeletionTimestamp.IsZero() {
			left = append(left, ns.Name)
		}
	}
	if len(left) > 0 && !o.Force {
		return fmt.Errorf("namespaces convoy created remain in the service cluster (%s): another ServiceCluster may still manage this cluster, "+
			"or they were abandoned; delete them, or pass --force to leave them unmanaged", strings.Join(left, ", "))
	}
	objs := access.JoinObjects()
	slices.Reverse(objs)
	for _, obj := range objs {
		if err := remove(ctx, service, obj.(client.Object), o); err != nil {
			return fmt.Errorf("in the service cluster: %w", err)
		}
	}
	secret := &corev1.Secret{}
	switch err := o.Manager.Get(ctx, client.ObjectKey{Namespace: o.SecretNamespace, Name: o.Name + "-kubeconfig"}, secret); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading the kubeconfig Secret in the manager cluster: %w", err)
	}
	if secret.Labels["app.kubernetes.io/name"] != "convoy" {
		fmt.Fprintf(o.Out, "Kept Secret %s/%s in the manager cluster: `convoy join` did not create it\n", secret.Namespace, secret.Name)
		return nil
	}
	return remove(ctx, o.Manager, secret, o)
}

func remove(ctx context.Context, c client.Client, obj client.Object, o UnjoinOptions) error {
	kind := "object"
	if gvk, err := apiutil.GVKForObject(obj, c.Scheme()); err == nil {
		kind = gvk.Kind
	}
	if o.DryRun {
		_, err := fmt.Fprintf(o.Out, "would delete %s %s\n", kind, client.ObjectKeyFromObject(obj))
		return err
	}
	if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s: %w", kind, client.ObjectKeyFromObject(obj), err)
	}
	fmt.Fprintf(o.Out, "deleted %s %s\n", kind, client.ObjectKeyFromObject(obj))
	return nil
}
