package remote

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// NamespaceNotEmptyError says that convoy did not delete a namespace it owns because it holds
// objects convoy does not own: deleting the namespace would delete them too.
type NamespaceNotEmptyError struct {
	Namespace, ClusterID string
	Unowned              []string
}

func (e *NamespaceNotEmptyError) Error() string {
	return fmt.Sprintf("namespace %s in cluster %s holds objects convoy does not own (%s); move or delete them, "+
		"or remove the label %s from the namespace to keep it, and convoy will finish the cleanup",
		e.Namespace, e.ClusterID, strings.Join(e.Unowned, ", "), convoyv1.ManagedByLabel)
}

// Owned lists the objects in this cluster that belong to owner, read from the cache.
func (c *Connection) Owned(ctx context.Context, owner Owner) ([]client.Object, error) {
	return c.listOwned(ctx, client.MatchingLabels{
		convoyv1.ProjectNamespaceLabel: owner.Namespace,
		convoyv1.ProjectNameLabel:      owner.Name,
	})
}

// OwnedByAnyone lists every convoy-owned object in this cluster, read from the cache.
func (c *Connection) OwnedByAnyone(ctx context.Context) ([]client.Object, error) {
	return c.listOwned(ctx)
}

func (c *Connection) listOwned(ctx context.Context, opts ...client.ListOption) ([]client.Object, error) {
	var out []client.Object
	for _, obj := range watchedTypes(c.drVersion) {
		gvk, err := apiutil.GVKForObject(obj, c.cluster.GetScheme())
		if err != nil {
			return nil, err
		}
		typed, err := c.cluster.GetScheme().New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err != nil {
			return nil, err
		}
		if err := c.cluster.GetCache().List(ctx, typed.(client.ObjectList), opts...); err != nil {
			return nil, fmt.Errorf("listing owned objects in %s: %w", c.Name, err)
		}
		items, err := apimeta.ExtractList(typed)
		if err != nil {
			return nil, err
		}
		for _, item := range items {
			out = append(out, item.(client.Object))
		}
	}
	return out, nil
}

// Delete removes an object convoy owns. It is a no-op for objects already being deleted or
// gone, and it refuses (NamespaceNotEmptyError) to delete a namespace that holds objects
// convoy does not own. The UID precondition keeps it from deleting a replacement object.
func (c *Connection) Delete(ctx context.Context, obj client.Object) error {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	if !obj.GetDeletionTimestamp().IsZero() {
		return nil
	}
	if _, isNamespace := obj.(*corev1.Namespace); isNamespace {
		unowned, err := c.unownedObjectsIn(ctx, obj.GetName())
		if err != nil {
			return err
		}
		if len(unowned) > 0 {
			return &NamespaceNotEmptyError{Namespace: obj.GetName(), ClusterID: c.Name, Unowned: unowned}
		}
	}
	uid := obj.GetUID()
	err := c.cluster.GetClient().Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &uid})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s in cluster %s: %w", obj, client.ObjectKeyFromObject(obj), c.Name, err)
	}
	return nil
}

// namespaceContentKinds are the kinds checked before deleting a namespace. Objects with an
// owner reference (pods of a ReplicaSet, ...) are derived and not listed.
var namespaceContentKinds = []schema.GroupVersionKind{
	appsv1.SchemeGroupVersion.WithKind("Deployment"),
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
	appsv1.SchemeGroupVersion.WithKind("DaemonSet"),
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
	corev1.SchemeGroupVersion.WithKind("Pod"),
	corev1.SchemeGroupVersion.WithKind("Service"),
	corev1.SchemeGroupVersion.WithKind("ConfigMap"),
	corev1.SchemeGroupVersion.WithKind("Secret"),
	corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"),
}

// systemConfigMaps are published into every namespace by Kubernetes and Istio.
var systemConfigMaps = []string{"kube-root-ca.crt", "istio-ca-root-cert"}

func (c *Connection) unownedObjectsIn(ctx context.Context, namespace string) ([]string, error) {
	var unowned []string
	for _, gvk := range namespaceContentKinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.cluster.GetAPIReader().List(ctx, list, client.InNamespace(namespace)); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("checking namespace %s in cluster %s before deleting it: %w", namespace, c.Name, err)
		}
		for _, item := range list.Items {
			if item.Labels[convoyv1.ManagedByLabel] == convoyv1.ManagedByValue || len(item.OwnerReferences) > 0 ||
				(gvk.Kind == "ConfigMap" && slices.Contains(systemConfigMaps, item.Name)) {
				continue
			}
			unowned = append(unowned, gvk.Kind+"/"+item.Name)
		}
	}
	return unowned, nil
}

// Deployment reads a convoy-owned Deployment from the cache.
func (c *Connection) Deployment(ctx context.Context, key client.ObjectKey) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	if err := c.cluster.GetCache().Get(ctx, key, d); err != nil {
		return nil, err
	}
	return d, nil
}
