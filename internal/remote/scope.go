package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/access"
)

// With AccessScopeManagedNamespaces, convoy's identity may read namespaced kinds only in the
// namespaces convoy created, where it binds access.NamespaceClusterRole itself. So the
// connection's cluster-wide cache holds only Namespaces and Nodes, and each of convoy's
// namespaces gets a cache of its own, opened once convoy's RoleBinding is there and closed
// when the namespace goes. Reads are routed by namespace (scopedReader).
//
// An informer costs a dozen goroutines, queues and a watch stream, so a namespace's cache
// watches only the kinds convoy has there: those holding convoy's objects when the cache
// opens (probed in the background, one list per kind, once), and each kind convoy reads
// later (Apply reads before it writes). Prune looks only at watched kinds: a stale object
// of a kind the probe has not reached yet is pruned once its informer starts.

// namespaceCaches are a connection's per-namespace caches.
type namespaceCaches struct {
	mu     sync.Mutex
	byName map[string]*namespaceCache
	// open builds and starts a cache of namespace, watching only convoy's RoleBinding; it
	// returns without waiting for the sync.
	open func(ctx context.Context, namespace string) (cache.Cache, error)
	// kinds are what a namespace's cache may watch, with their event handlers.
	kinds  map[schema.GroupVersionKind]watchedKind
	scheme *runtime.Scheme
}

type watchedKind struct {
	obj      client.Object
	handlers []toolscache.ResourceEventHandler
}

type namespaceCache struct {
	cache  cache.Cache
	cancel context.CancelFunc
	synced bool
	// kindMu guards watched, the kinds whose informers run with their handlers.
	kindMu  sync.Mutex
	watched map[schema.GroupVersionKind]bool
}

// ready returns the namespace's cache once it has synced, nil otherwise.
func (n *namespaceCaches) ready(namespace string) *namespaceCache {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nc := n.byName[namespace]; nc != nil && nc.synced {
		return nc
	}
	return nil
}

// watch makes the namespace's cache watch kind (with its handlers), waiting for its sync.
func (n *namespaceCaches) watch(ctx context.Context, nc *namespaceCache, kind schema.GroupVersionKind) error {
	nc.kindMu.Lock()
	defer nc.kindMu.Unlock()
	if nc.watched[kind] {
		return nil
	}
	k, ok := n.kinds[kind]
	if !ok {
		return fmt.Errorf("convoy does not cache %s", kind)
	}
	if err := (handlers{k.obj: k.handlers}).watch(ctx, nc.cache); err != nil {
		return err
	}
	nc.watched[kind] = true
	return nil
}

// watching reports whether the namespace's cache watches kind.
func (nc *namespaceCache) watching(kind schema.GroupVersionKind) bool {
	nc.kindMu.Lock()
	defer nc.kindMu.Unlock()
	return nc.watched[kind]
}

// ensure opens the namespace's cache if needed and waits, bounded by ctx, for its sync.
func (n *namespaceCaches) ensure(ctx, runCtx context.Context, namespace string) error {
	nc, err := n.start(runCtx, namespace)
	if err != nil {
		return err
	}
	return n.wait(ctx, namespace, nc)
}

// start opens the namespace's cache unless it is open.
func (n *namespaceCaches) start(runCtx context.Context, namespace string) (*namespaceCache, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nc := n.byName[namespace]; nc != nil {
		return nc, nil
	}
	cacheCtx, cancel := context.WithCancel(runCtx)
	c, err := n.open(cacheCtx, namespace)
	if err != nil {
		cancel()
		return nil, err
	}
	nc := &namespaceCache{cache: c, cancel: cancel, watched: map[schema.GroupVersionKind]bool{rbacv1.SchemeGroupVersion.WithKind("RoleBinding"): true}}
	n.byName[namespace] = nc
	return nc, nil
}

// wait waits, bounded by ctx, until the namespace's cache has synced.
func (n *namespaceCaches) wait(ctx context.Context, namespace string, nc *namespaceCache) error {
	n.mu.Lock()
	synced := nc.synced
	n.mu.Unlock()
	if synced {
		return nil
	}
	if !nc.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("convoy's caches of namespace %s did not sync: %w", namespace, context.Cause(ctx))
	}
	n.mu.Lock()
	nc.synced = true
	n.mu.Unlock()
	return nil
}

// close stops the namespace's cache: the namespace is gone or going, and so are convoy's
// rights in it.
func (n *namespaceCaches) close(namespace string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nc := n.byName[namespace]; nc != nil {
		nc.cancel()
		delete(n.byName, namespace)
	}
}

// closeWhenGone is the Namespace event handler that closes a namespace's cache once the
// namespace is terminating, gone, or no longer convoy's.
func (n *namespaceCaches) closeWhenGone() toolscache.ResourceEventHandler {
	check := func(obj any, deleted bool) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		ns, ok := obj.(client.Object)
		if !ok {
			return
		}
		if deleted || !ns.GetDeletionTimestamp().IsZero() || ns.GetLabels()[convoyv1.ManagedByLabel] != convoyv1.ManagedByValue {
			n.close(ns.GetName())
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { check(obj, false) },
		DeleteFunc: func(obj any) { check(obj, true) },
	}
}

// scopedReader reads cluster-scoped kinds from the cluster-wide cache and namespaced kinds
// from their namespace's cache. A namespace without a synced cache holds nothing convoy
// can see yet: Get answers NotFound and List nothing, so callers fall back to the API
// server (Apply) or find nothing to prune.
type scopedReader struct {
	cluster    cache.Cache
	namespaces *namespaceCaches
}

func (r scopedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if key.Namespace == "" {
		return r.cluster.Get(ctx, key, obj, opts...)
	}
	nc := r.namespaces.ready(key.Namespace)
	if nc == nil {
		// Not opened yet: convoy has not bound its role there (or the namespace is going).
		return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
	}
	gvk, err := apiutil.GVKForObject(obj, r.namespaces.scheme)
	if err != nil {
		return err
	}
	if err := r.namespaces.watch(ctx, nc, gvk); err != nil {
		return err
	}
	return nc.cache.Get(ctx, key, obj, opts...)
}

func (r scopedReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if lo.Namespace == "" {
		switch list.(type) {
		case *corev1.NodeList, *corev1.NamespaceList:
			return r.cluster.List(ctx, list, opts...)
		}
		return fmt.Errorf("listing %T in every namespace: convoy's identity may read only its own namespaces (accessScope %s)", list, convoyv1.AccessScopeManagedNamespaces)
	}
	nc := r.namespaces.ready(lo.Namespace)
	if nc == nil {
		return nil
	}
	gvk, err := apiutil.GVKForObject(list, r.namespaces.scheme)
	if err != nil {
		return err
	}
	if err := r.namespaces.watch(ctx, nc, gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List"))); err != nil {
		return err
	}
	return nc.cache.List(ctx, list, opts...)
}

// cachedKinds are the kinds convoy writes that the cache of namespace holds: all of them
// with AccessScopeCluster, the watched ones otherwise.
func (c *Connection) cachedKinds(namespace string) []client.Object {
	kinds := namespacedWatchedTypes(c.drVersion)
	if c.namespaces == nil {
		return kinds
	}
	nc := c.namespaces.ready(namespace)
	return slices.DeleteFunc(kinds, func(o client.Object) bool {
		gvk, err := apiutil.GVKForObject(o, c.namespaces.scheme)
		return nc == nil || err != nil || !nc.watching(gvk)
	})
}

// watchKindsHolding makes a newly opened namespace cache watch every kind that holds
// convoy's objects in the namespace, read from the API server: one list per kind.
func (c *Connection) watchKindsHolding(ctx context.Context, namespace string) error {
	nc := c.namespaces.ready(namespace)
	if nc == nil {
		return nil
	}
	for _, obj := range namespacedWatchedTypes(c.drVersion) {
		gvk, err := apiutil.GVKForObject(obj, c.namespaces.scheme)
		if err != nil {
			return err
		}
		if nc.watching(gvk) {
			continue
		}
		items := &metav1.PartialObjectMetadataList{}
		items.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		reqCtx, cancel := c.bounded(ctx)
		err = c.cluster.GetAPIReader().List(reqCtx, items, client.InNamespace(namespace), client.Limit(1),
			client.MatchingLabels{convoyv1.ManagedByLabel: convoyv1.ManagedByValue})
		cancel()
		if err != nil {
			return fmt.Errorf("listing convoy's %s in namespace %s of %s: %w", gvk.Kind, namespace, c.Name, err)
		}
		if len(items.Items) > 0 {
			if err := c.namespaces.watch(ctx, nc, gvk); err != nil {
				return err
			}
		}
	}
	return nil
}

// cache is where the connection reads convoy's objects from.
func (c *Connection) cache() client.Reader {
	if c.namespaces == nil {
		return c.cluster.GetCache()
	}
	return scopedReader{cluster: c.cluster.GetCache(), namespaces: c.namespaces}
}

// whoAmI asks the cluster who convoy's credentials authenticate as.
func whoAmI(ctx context.Context, cl client.Client) (rbacv1.Subject, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := cl.Create(ctx, review); err != nil {
		return rbacv1.Subject{}, fmt.Errorf("asking the cluster who convoy is (SelfSubjectReview): %w", err)
	}
	if review.Status.UserInfo.Username == "" {
		return rbacv1.Subject{}, errors.New("the cluster did not say who convoy is (SelfSubjectReview without a user name)")
	}
	return access.Subject(review.Status.UserInfo.Username), nil
}

// grantAccess makes sure convoy may read and write in namespace, one of its own, and that
// the namespace's cache is open: it binds access.NamespaceClusterRole there unless the
// binding is known to be in place. Only with AccessScopeManagedNamespaces.
func (c *Connection) grantAccess(ctx context.Context, namespace client.Object) error {
	if c.namespaces == nil {
		return nil
	}
	ns := namespace.GetName()
	want := access.RoleBinding(ns, c.self, ownershipLabels(namespace.GetLabels()))
	if nc := c.namespaces.ready(ns); nc != nil {
		have := &rbacv1.RoleBinding{}
		if err := nc.cache.Get(ctx, client.ObjectKeyFromObject(want), have); err == nil && bindingHolds(have, want) {
			return nil
		}
	}
	if err := c.bind(ctx, want); err != nil {
		return err
	}
	if err := c.namespaces.ensure(ctx, c.runCtx, ns); err != nil {
		return err
	}
	c.watchKindsHoldingLater(ns)
	return nil
}

// openManagedNamespaces opens the caches of convoy's namespaces when a connection starts,
// binding convoy's role where the binding is missing (it may have been deleted, or the
// cluster used AccessScopeCluster before). A namespace that fails is logged and left to
// its Project's next sync, which reports the failure; it does not keep the cluster down.
func (c *Connection) openManagedNamespaces(ctx context.Context) error {
	var namespaces corev1.NamespaceList
	if err := c.cluster.GetCache().List(ctx, &namespaces); err != nil {
		return fmt.Errorf("listing convoy's namespaces in %s: %w", c.Name, err)
	}
	// Every namespace's caches list and watch at once; then they are waited for.
	started := map[string]*namespaceCache{}
	for i := range namespaces.Items {
		ns := &namespaces.Items[i]
		if !ns.DeletionTimestamp.IsZero() {
			continue
		}
		nc, err := c.openNamespace(ctx, ns)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			log.FromContext(ctx).Error(err, "Cannot open convoy's namespace", "ServiceCluster", c.Name, "Namespace", ns.Name)
			continue
		}
		started[ns.Name] = nc
	}
	for ns, nc := range started {
		if err := c.namespaces.wait(ctx, ns, nc); err != nil {
			return err
		}
		c.watchKindsHoldingLater(ns)
	}
	return nil
}

// probeSlots bounds the namespaces whose kinds are probed at once per connection.
const probeSlots = 8

// watchKindsHoldingLater runs watchKindsHolding in the background: the connection does not
// wait for it. Until it is done prune may miss a stale object of a kind not yet watched;
// the kind's informer announces every object when it starts, which wakes the Project, and
// its next sync prunes it. Nothing concludes "nothing left" from the cache alone.
func (c *Connection) watchKindsHoldingLater(namespace string) {
	go func() {
		select {
		case c.probes <- struct{}{}:
			defer func() { <-c.probes }()
		case <-c.runCtx.Done():
			return
		}
		if err := c.watchKindsHolding(c.runCtx, namespace); err != nil && c.runCtx.Err() == nil {
			log.FromContext(c.runCtx).Error(err, "Cannot find which kinds convoy has in its namespace; they are watched when convoy next writes them",
				"ServiceCluster", c.Name, "Namespace", namespace)
		}
	}()
}

// openNamespace binds convoy's role in ns where the binding is missing and starts the
// namespace's cache.
func (c *Connection) openNamespace(ctx context.Context, ns *corev1.Namespace) (*namespaceCache, error) {
	want := access.RoleBinding(ns.Name, c.self, ownershipLabels(ns.Labels))
	have := &rbacv1.RoleBinding{}
	reqCtx, cancel := c.bounded(ctx)
	err := c.cluster.GetAPIReader().Get(reqCtx, client.ObjectKeyFromObject(want), have)
	cancel()
	switch {
	case err == nil && bindingHolds(have, want):
	case err == nil || apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		// Forbidden: without the binding convoy cannot even read it.
		if err := c.bind(ctx, want); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("reading convoy's RoleBinding in namespace %s of %s: %w", ns.Name, c.Name, err)
	}
	return c.namespaces.start(c.runCtx, ns.Name)
}

// bind applies convoy's RoleBinding.
func (c *Connection) bind(ctx context.Context, rb *rbacv1.RoleBinding) error {
	reqCtx, cancel := c.bounded(ctx)
	defer cancel()
	u, err := applyPayload(rb, rbacv1.SchemeGroupVersion.WithKind("RoleBinding"))
	if err != nil {
		return err
	}
	if err := c.cluster.GetClient().Apply(reqCtx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(convoyv1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("binding ClusterRole %s in namespace %s of cluster %s (did `convoy join` set this cluster up? see docs/install.md): %w",
			access.NamespaceClusterRole, rb.Namespace, c.Name, err)
	}
	log.FromContext(ctx).Info("Bound convoy's role in its namespace", "ServiceCluster", c.Name, "Namespace", rb.Namespace,
		"ClusterRole", access.NamespaceClusterRole, "subject", rb.Subjects[0].Name)
	return nil
}

// bindingHolds reports whether a live RoleBinding grants what want grants, with convoy's labels.
func bindingHolds(have, want *rbacv1.RoleBinding) bool {
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			return false
		}
	}
	return have.RoleRef == want.RoleRef && slices.Equal(have.Subjects, want.Subjects)
}

// ownershipLabels are convoy's labels among a namespace's labels: its RoleBinding carries
// them so that it belongs to the same Project.
func ownershipLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{convoyv1.ManagedByLabel, convoyv1.ProjectNamespaceLabel, convoyv1.ProjectNameLabel} {
		if v, ok := l[k]; ok {
			out[k] = v
		}
	}
	return out
}

// namespacedWatchedTypes are the kinds a namespace's cache holds.
func namespacedWatchedTypes(destinationRuleVersion string) []client.Object {
	return slices.DeleteFunc(watchedTypes(destinationRuleVersion), func(o client.Object) bool {
		_, isNamespace := o.(*corev1.Namespace)
		return isNamespace
	})
}
