package remote

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/log"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/informer"
)

// watchedTypes are the remote kinds convoy writes and therefore caches and watches. The
// DestinationRule is watched in the version the cluster serves, if any.
func watchedTypes(destinationRuleVersion string) []client.Object {
	types := []client.Object{
		&corev1.Namespace{}, &corev1.ServiceAccount{}, &corev1.ConfigMap{}, &corev1.Secret{},
		&appsv1.Deployment{}, &batchv1.CronJob{}, &corev1.Service{}, &autoscalingv2.HorizontalPodAutoscaler{}, &policyv1.PodDisruptionBudget{},
	}
	switch destinationRuleVersion {
	case "v1":
		types = append(types, &networkingv1.DestinationRule{})
	case "v1beta1":
		types = append(types, &networkingv1beta1.DestinationRule{})
	}
	return types
}

// Connection is a live link to one service cluster: clients, caches of convoy's objects and
// what the cluster was found to be when it connected.
type Connection struct {
	Name          string
	cluster       cluster.Cluster
	discovery     discovery.DiscoveryInterface
	typeConverter managedfields.TypeConverter
	drVersion     string
	// identity is the probe that verified which cluster this connection reaches, set by the
	// supervisor before the connection is published.
	identity       ProbeResult
	requestTimeout time.Duration
	answered       *answers
	// placementErr says why pods and nodes cannot be read (nil when they can).
	placementErr error
	// runCtx lives as long as the connection; cancel ends it.
	runCtx context.Context
	cancel context.CancelFunc
	// metadata watches the objects that keep a namespace from being deleted; onChange wakes
	// their Project when one goes away.
	metadata metadata.Interface
	onChange func(project types.NamespacedName)
	waits    namespaceWaits

	// namespaceMu serialises namespace claims so that two Projects asking for the same
	// remote namespace cannot both win.
	namespaceMu sync.Mutex

	// With AccessScopeManagedNamespaces: the caches of convoy's namespaces (nil otherwise),
	// and who convoy is in the cluster (the subject of its RoleBindings).
	namespaces *namespaceCaches
	self       rbacv1.Subject
	// probes holds a slot per namespace whose kinds are being probed (watchKindsHoldingLater).
	probes chan struct{}
}

func (c *Connection) stop() { c.cancel() }

// waitForCaches reports whether the connection's caches synced before ctx ended. A
// connection is used only once they have: a cache that has not caught up must not decide
// what to apply or prune.
func (c *Connection) waitForCaches(ctx context.Context) bool {
	if !c.cluster.GetCache().WaitForCacheSync(ctx) {
		return false
	}
	if c.namespaces == nil {
		return true
	}
	if err := c.openManagedNamespaces(ctx); err != nil {
		log.FromContext(ctx).Error(err, "Cannot open convoy's namespaces", "ServiceCluster", c.Name)
		return false
	}
	return true
}

// bounded limits one request (or a short sequence of them) to the cluster.
func (c *Connection) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.requestTimeout)
}

// DestinationRuleVersion is the networking.istio.io version this connection writes and watches
// DestinationRules in; empty when the cluster served none when it connected.
func (c *Connection) DestinationRuleVersion() string { return c.drVersion }

// Identity is the verified probe of the cluster this connection reaches: its kube-system
// UID, version and capabilities. Renderers must use these capabilities, not ones recorded
// elsewhere, so that what is written matches the cluster it is written to.
func (c *Connection) Identity() ProbeResult { return c.identity }

// dial builds a connection: clients, a probe of what the cluster serves, and caches of
// convoy's objects, started; the supervisor waits for them to sync. Every step is bounded by ctx or by a client timeout: a cluster that
// accepts connections and never answers costs at most the connect timeout, and only to the
// cluster's own supervisor.
func dial(ctx context.Context, name string, cfg *rest.Config, scope convoyv1.AccessScope, opts Options, typeConverter managedfields.TypeConverter,
	onChange func(project types.NamespacedName)) (*Connection, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "convoy"
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if opts.WrapTransport != nil {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return opts.WrapTransport(name, rt) })
	}
	answered := &answers{clock: opts.Clock}
	cfg.Wrap(answered.wrap)
	cfg.Wrap(timeRequests(name))
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building HTTP client for %s: %w", name, err)
	}
	// rest.Config.Timeout would also cut the caches' long-running watches, so only discovery
	// (the REST mapper's and convoy's own) gets a client-wide timeout: those calls take no
	// context.
	boundedCfg := rest.CopyConfig(cfg)
	boundedCfg.Timeout = opts.RequestTimeout
	boundedHTTP, err := rest.HTTPClientFor(boundedCfg)
	if err != nil {
		return nil, fmt.Errorf("building HTTP client for %s: %w", name, err)
	}
	cl, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = opts.Scheme
		o.HTTPClient = httpClient
		o.MapperProvider = func(c *rest.Config, _ *http.Client) (meta.RESTMapper, error) {
			return apiutil.NewDynamicRESTMapper(c, boundedHTTP)
		}
		o.Cache = cacheOptions(opts, typeConverter)
		// Nodes are not convoy's: every node is read for its zone label and kubelet version.
		o.Cache.ByObject[&corev1.Node{}] = cache.ByObject{Label: labels.Everything(), Transform: nodeZoneAndKubelet}
	})
	if err != nil {
		return nil, fmt.Errorf("building client for %s: %w", name, err)
	}
	disc, err := discovery.NewDiscoveryClientForConfigAndClient(boundedCfg, boundedHTTP)
	if err != nil {
		return nil, fmt.Errorf("building discovery client for %s: %w", name, err)
	}
	// Fail fast, with the API server's own error (for example 401), before starting caches
	// that would only retry in the background.
	found, err := probe(ctx, disc)
	if err != nil {
		return nil, fmt.Errorf("contacting %s: %w", name, err)
	}
	meta, err := metadata.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building metadata client for %s: %w", name, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	conn := &Connection{
		runCtx:         runCtx,
		metadata:       meta,
		onChange:       onChange,
		Name:           name,
		cluster:        cl,
		discovery:      disc,
		typeConverter:  typeConverter,
		drVersion:      found.Capabilities.DestinationRuleVersion(),
		requestTimeout: opts.RequestTimeout,
		answered:       answered,
		cancel:         cancel,
	}
	namespaced := scope == convoyv1.AccessScopeManagedNamespaces
	// Pods and nodes only feed pods-per-zone status: a cluster whose convoy identity may not
	// read them still gets its objects, and the status says what is missing.
	if err := canReadPlacement(ctx, cl.GetAPIReader(), name, !namespaced, opts.RequestTimeout); apierrors.IsForbidden(err) {
		conn.placementErr = err
	} else if err != nil {
		cancel()
		return nil, err
	}
	// What every cache (the cluster's, or a namespace's) watches, with its handler.
	namespacedHandlers := handlers{}
	for _, obj := range namespacedWatchedTypes(conn.drVersion) {
		namespacedHandlers[obj] = []toolscache.ResourceEventHandler{projectEventHandler(onChange, nil)}
	}
	if conn.placementErr == nil {
		namespacedHandlers[&corev1.Pod{}] = []toolscache.ResourceEventHandler{projectEventHandler(onChange, podChanged)}
	}
	clusterHandlers := handlers{
		&corev1.Namespace{}: {projectEventHandler(onChange, nil)},
	}
	if conn.placementErr == nil {
		// Node changes do not wake Projects: zone counts follow pod events and resyncs.
		clusterHandlers[&corev1.Node{}] = nil
	}
	if namespaced {
		if conn.self, err = whoAmI(ctx, cl.GetClient()); err != nil {
			cancel()
			return nil, err
		}
		conn.probes = make(chan struct{}, probeSlots)
		conn.namespaces = &namespaceCaches{byName: map[string]*namespaceCache{}, scheme: opts.Scheme, kinds: map[schema.GroupVersionKind]watchedKind{}}
		clusterHandlers[&corev1.Namespace{}] = append(clusterHandlers[&corev1.Namespace{}], conn.namespaces.closeWhenGone())
		for obj, hs := range namespacedHandlers {
			gvk, err := apiutil.GVKForObject(obj, opts.Scheme)
			if err != nil {
				cancel()
				return nil, err
			}
			conn.namespaces.kinds[gvk] = watchedKind{obj: obj, handlers: hs}
		}
		// A deleted or changed RoleBinding wakes its Project, whose sync binds again.
		bindingHandlers := handlers{&rbacv1.RoleBinding{}: {projectEventHandler(onChange, nil)}}
		conn.namespaces.open = func(cacheCtx context.Context, namespace string) (cache.Cache, error) {
			o := cacheOptions(opts, typeConverter)
			o.HTTPClient, o.Scheme, o.Mapper = httpClient, opts.Scheme, cl.GetRESTMapper()
			o.DefaultNamespaces = map[string]cache.Config{namespace: {}}
			c, err := cache.New(cfg, o)
			if err != nil {
				return nil, err
			}
			if err := bindingHandlers.watch(cacheCtx, c); err != nil {
				return nil, fmt.Errorf("watching namespace %s in %s: %w", namespace, name, err)
			}
			go func() {
				if err := c.Start(cacheCtx); err != nil {
					log.FromContext(ctx).Error(err, "Remote namespace cache stopped", "ServiceCluster", name, "Namespace", namespace)
				}
			}()
			return c, nil
		}
	} else {
		maps.Copy(clusterHandlers, namespacedHandlers)
	}
	if err := clusterHandlers.watch(ctx, cl.GetCache()); err != nil {
		cancel()
		return nil, fmt.Errorf("watching %s: %w", name, err)
	}
	go func() {
		if err := cl.Start(runCtx); err != nil {
			log.FromContext(ctx).Error(err, "Remote cache stopped", "ServiceCluster", name)
		}
	}()
	return conn, nil
}

// cacheOptions are the options of every cache of a connection: convoy's objects only,
// slimmed, with informers that ride out short outages.
func cacheOptions(opts Options, typeConverter managedfields.TypeConverter) cache.Options {
	return cache.Options{
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}),
		DefaultTransform:     slimForCache(opts.Scheme, typeConverter),
		// A cluster back from a blip shorter than the breaker's threshold keeps its caches:
		// they must resume within seconds, not after client-go's reflector backoff.
		NewInformer: informer.NewSharedIndexInformer,
		ByObject: map[client.Object]cache.ByObject{
			// Pods of convoy's Deployments carry its labels; only where they run and why
			// they are not ready is kept.
			&corev1.Pod{}: {Transform: podForStatus},
		},
	}
}

// handlers are the kinds a cache watches, each with its event handlers (possibly none).
type handlers map[client.Object][]toolscache.ResourceEventHandler

// watch starts an informer in c for each kind and adds its handlers. GetInformer maps the
// kind through discovery: bounded by ctx and the mapper's client.
func (hs handlers) watch(ctx context.Context, c cache.Cache) error {
	for obj, list := range hs {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		for _, h := range list {
			if _, err := inf.AddEventHandler(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// projectEventHandler turns any change of a convoy-owned object into a call of onChange with
// the owning Project. When changed is set, updates it rejects are dropped. onChange must not
// block: it runs on the informer's goroutine.
func projectEventHandler(onChange func(types.NamespacedName), changed func(oldObj, newObj any) bool) toolscache.ResourceEventHandler {
	emit := func(obj any) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		o, ok := obj.(metav1.Object)
		if !ok {
			return
		}
		l := o.GetLabels()
		ns, name := l[convoyv1.ProjectNamespaceLabel], l[convoyv1.ProjectNameLabel]
		if ns == "" || name == "" || onChange == nil {
			return
		}
		onChange(types.NamespacedName{Namespace: ns, Name: name})
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { emit(obj) },
		UpdateFunc: func(oldObj, newObj any) {
			if changed == nil || changed(oldObj, newObj) {
				emit(newObj)
			}
		},
		DeleteFunc: emit,
	}
}
