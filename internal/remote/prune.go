package remote

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// Owned lists the objects in this cluster that belong to owner, read from the cache: the
// Project's namespace and what convoy put into it. The lookup is scoped to that namespace,
// so its cost grows with the Project, not with the fleet. A cache can lag behind the
// cluster; callers that conclude "nothing is left" from an empty answer use OwnedLive.
func (c *Connection) Owned(ctx context.Context, owner Owner, namespace string) ([]client.Object, error) {
	return c.owned(ctx, c.cache(), owner, namespace)
}

// OwnedLive is Owned read from the API server instead of the cache.
func (c *Connection) OwnedLive(ctx context.Context, owner Owner, namespace string) ([]client.Object, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	return c.owned(ctx, c.cluster.GetAPIReader(), owner, namespace)
}

func (c *Connection) owned(ctx context.Context, reader client.Reader, owner Owner, namespace string) ([]client.Object, error) {
	ns := &corev1.Namespace{}
	err := reader.Get(ctx, client.ObjectKey{Name: namespace}, ns)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading namespace %s in %s: %w", namespace, c.Name, err)
	}
	found := err == nil
	var objs []client.Object
	if found && owner.owns(ns) {
		objs = append(objs, ns)
	}
	if c.namespaces != nil && !(found && ns.DeletionTimestamp.IsZero() && ns.Labels[convoyv1.ManagedByLabel] == convoyv1.ManagedByValue) {
		// Convoy has rights only in its own namespaces. One that is gone or going takes
		// its contents with it; in any other convoy cannot have written anything.
		return objs, nil
	}
	kinds := namespacedWatchedTypes(c.drVersion)
	if _, fromCache := reader.(scopedReader); fromCache {
		kinds = c.cachedKinds(namespace)
	}
	contents, err := c.listOwned(ctx, reader, kinds, namespace, client.MatchingLabels{
		convoyv1.ProjectNamespaceLabel: owner.Namespace,
		convoyv1.ProjectNameLabel:      owner.Name,
	})
	if err != nil {
		return nil, err
	}
	return append(objs, contents...), nil
}

// OwnedByAnyoneLive lists every convoy-owned object in this cluster, read from the API server.
func (c *Connection) OwnedByAnyoneLive(ctx context.Context) ([]client.Object, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	namespaces := &corev1.NamespaceList{}
	if err := c.cluster.GetAPIReader().List(ctx, namespaces, client.MatchingLabels{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}); err != nil {
		return nil, fmt.Errorf("listing owned namespaces in %s: %w", c.Name, err)
	}
	owned := client.MatchingLabels{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}
	var objs []client.Object
	if c.namespaces == nil {
		var err error
		if objs, err = c.listOwned(ctx, c.cluster.GetAPIReader(), namespacedWatchedTypes(c.drVersion), "", owned); err != nil {
			return nil, err
		}
	}
	for i := range namespaces.Items {
		ns := &namespaces.Items[i]
		if c.namespaces != nil && ns.DeletionTimestamp.IsZero() {
			// Convoy may list only in its own namespaces, one by one.
			contents, err := c.listOwned(ctx, c.cluster.GetAPIReader(), namespacedWatchedTypes(c.drVersion), ns.Name, owned)
			if err != nil {
				return nil, err
			}
			objs = append(objs, contents...)
		}
		objs = append(objs, ns)
	}
	return objs, nil
}

// listOwned lists objects of kinds in namespace ("" for all).
func (c *Connection) listOwned(ctx context.Context, reader client.Reader, kinds []client.Object, namespace string, opts ...client.ListOption) ([]client.Object, error) {
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	var out []client.Object
	for _, obj := range kinds {
		gvk, err := apiutil.GVKForObject(obj, c.cluster.GetScheme())
		if err != nil {
			return nil, err
		}
		typed, err := c.cluster.GetScheme().New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err != nil {
			return nil, err
		}
		if err := reader.List(ctx, typed.(client.ObjectList), opts...); err != nil {
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
	if !obj.GetDeletionTimestamp().IsZero() {
		return nil
	}
	if _, isNamespace := obj.(*corev1.Namespace); isNamespace {
		unowned, err := c.unownedObjectsIn(ctx, obj.GetName())
		if err != nil {
			return err
		}
		if len(unowned) > 0 {
			c.wakeWhenUnblocked(obj, unowned)
			ids := make([]string, 0, len(unowned))
			for _, o := range unowned {
				ids = append(ids, o.id)
			}
			return &NamespaceNotEmptyError{Namespace: obj.GetName(), ClusterID: c.Name, Unowned: ids}
		}
	}
	uid := obj.GetUID()
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	err := c.cluster.GetClient().Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &uid})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s in cluster %s: %w", obj, client.ObjectKeyFromObject(obj), c.Name, err)
	}
	return nil
}

// systemObjects are created in every namespace by Kubernetes and Istio, never by users.
var systemObjects = map[string]bool{
	"ConfigMap/kube-root-ca.crt":   true,
	"ConfigMap/istio-ca-root-cert": true,
	"ServiceAccount/default":       true,
}

// skippedGroups hold namespaced kinds that are records or views, not things a user would lose.
var skippedGroups = map[string]bool{"events.k8s.io": true, "metrics.k8s.io": true}

type namespacedObject struct {
	id       string
	uid      types.UID
	owners   []types.UID
	labelled bool
	// resource and listedAt (the list's resourceVersion) let a watch start where the list ended.
	resource schema.GroupVersionResource
	listedAt string
}

// unownedObjectsIn lists the objects in a namespace that convoy does not own, over every
// namespaced kind the cluster serves (custom resources included). An object counts as owned
// when it carries convoy's label or when an owner reference leads to such an object (pods of
// a convoy Deployment, EndpointSlices of a convoy Service).
func (c *Connection) unownedObjectsIn(ctx context.Context, namespace string) ([]namespacedObject, error) {
	resources, err := c.discovery.ServerPreferredNamespacedResources()
	if err != nil {
		// A group that cannot be listed could hold user data: do not guess.
		return nil, fmt.Errorf("discovering kinds to check namespace %s in cluster %s before deleting it: %w", namespace, c.Name, err)
	}
	var objects []namespacedObject
	for _, list := range resources {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil || skippedGroups[gv.Group] {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || (gv.Group == "" && r.Kind == "Event") {
				continue
			}
			items := &metav1.PartialObjectMetadataList{}
			items.SetGroupVersionKind(gv.WithKind(r.Kind + "List"))
			listCtx, cancel := c.bounded(ctx)
			err := c.cluster.GetAPIReader().List(listCtx, items, client.InNamespace(namespace))
			cancel()
			if err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
					continue
				}
				return nil, fmt.Errorf("checking %s in namespace %s of cluster %s before deleting it: %w", r.Kind, namespace, c.Name, err)
			}
			for _, item := range items.Items {
				o := namespacedObject{
					id:       r.Kind + "/" + item.Name,
					uid:      item.UID,
					labelled: item.Labels[convoyv1.ManagedByLabel] == convoyv1.ManagedByValue,
					resource: gv.WithResource(r.Name),
					listedAt: items.ResourceVersion,
				}
				for _, ref := range item.OwnerReferences {
					o.owners = append(o.owners, ref.UID)
				}
				objects = append(objects, o)
			}
		}
	}
	return unownedOf(objects), nil
}

// unownedOf returns the objects that are neither labelled by convoy, nor owned (through any
// chain of owner references) by a labelled object, nor created by the system.
func unownedOf(objects []namespacedObject) []namespacedObject {
	owned := map[types.UID]bool{}
	for _, o := range objects {
		if o.labelled {
			owned[o.uid] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, o := range objects {
			if !owned[o.uid] && slices.ContainsFunc(o.owners, func(u types.UID) bool { return owned[u] }) {
				owned[o.uid] = true
				changed = true
			}
		}
	}
	var unowned []namespacedObject
	for _, o := range objects {
		if !owned[o.uid] && !systemObjects[o.id] {
			unowned = append(unowned, o)
		}
	}
	slices.SortFunc(unowned, func(a, b namespacedObject) int { return strings.Compare(a.id, b.id) })
	return unowned
}

// Cached reads a convoy-owned object from the cache, slimmed as slimForCache leaves it.
func (c *Connection) Cached(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	return c.cache().Get(ctx, key, obj)
}
