package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// ErrNotConnected is returned for a ServiceCluster that has no live connection. Do not retry
// in a loop: a reconnect re-enqueues everything that depends on the cluster.
var ErrNotConnected = errors.New("service cluster is not connected")

// watchedTypes are the remote kinds convoy writes and therefore caches and watches. The
// DestinationRule is watched in the version the cluster serves, if any.
func watchedTypes(destinationRuleVersion string) []client.Object {
	types := []client.Object{&corev1.Namespace{}, &appsv1.Deployment{}, &corev1.Service{}}
	switch destinationRuleVersion {
	case "v1":
		types = append(types, &networkingv1.DestinationRule{})
	case "v1beta1":
		types = append(types, &networkingv1beta1.DestinationRule{})
	}
	return types
}

// Options configure a Fleet.
type Options struct {
	// Scheme knows every type convoy reads or writes remotely.
	Scheme *runtime.Scheme
	// CacheSyncTimeout bounds how long Connect waits for the remote caches to fill.
	CacheSyncTimeout time.Duration
	// RequestTimeout bounds every request to a service cluster.
	RequestTimeout time.Duration
	// WrapTransport, when set, wraps the HTTP transport of each cluster's REST config. Tests use
	// it to count requests.
	WrapTransport func(cluster string, rt http.RoundTripper) http.RoundTripper
}

// Fleet holds one Connection per ServiceCluster.
type Fleet struct {
	opts          Options
	typeConverter managedfields.TypeConverter
	events        chan event.GenericEvent
	connected     chan event.GenericEvent

	mu    sync.RWMutex
	conns map[string]*Connection
	// claims maps a cluster identity (kube-system UID) to the ServiceCluster using it.
	claims map[string]string
}

// NewFleet returns an empty Fleet.
func NewFleet(opts Options) *Fleet {
	if opts.CacheSyncTimeout == 0 {
		opts.CacheSyncTimeout = 30 * time.Second
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 15 * time.Second
	}
	return &Fleet{
		opts:          opts,
		typeConverter: applyconfigurations.NewTypeConverter(opts.Scheme),
		events:        make(chan event.GenericEvent, 1024),
		connected:     make(chan event.GenericEvent, 64),
		conns:         map[string]*Connection{},
		claims:        map[string]string{},
	}
}

// Events delivers one event per change of a convoy-owned object in any service cluster. The
// event's object carries the namespace and name of the owning Project in the manager cluster.
func (f *Fleet) Events() <-chan event.GenericEvent { return f.events }

// Connected delivers one event, named after the ServiceCluster, each time a connection to a
// cluster is (re)established. Projects waiting for that cluster re-enter through it.
func (f *Fleet) Connected() <-chan event.GenericEvent { return f.connected }

// Get returns the live connection to a cluster, or ErrNotConnected.
func (f *Fleet) Get(name string) (*Connection, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if c, ok := f.conns[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNotConnected, name)
}

// Connect makes sure a connection built from this kubeconfig exists. It is cheap when the
// kubeconfig did not change; a changed kubeconfig (credential rotation) replaces the
// connection. It returns ErrInvalidKubeconfig for refused kubeconfigs.
func (f *Fleet) Connect(ctx context.Context, name string, kubeconfig []byte) (*Connection, error) {
	sum := sha256.Sum256(kubeconfig)
	hash := hex.EncodeToString(sum[:])

	f.mu.RLock()
	existing := f.conns[name]
	f.mu.RUnlock()
	if existing != nil && existing.kubeconfigHash == hash {
		return existing, nil
	}

	cfg, err := RESTConfigFromKubeconfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	conn, err := f.newConnection(ctx, name, hash, cfg)
	if err != nil {
		return nil, err
	}

	f.mu.Lock()
	old := f.conns[name]
	f.conns[name] = conn
	f.mu.Unlock()
	if old != nil {
		old.stop()
		log.FromContext(ctx).Info("Replaced connection after kubeconfig change", "ServiceCluster", name)
	}
	select {
	case f.connected <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name}}}:
	case <-ctx.Done():
	}
	return conn, nil
}

// Claim records that ServiceCluster name uses the physical cluster clusterID and returns the
// ServiceCluster that holds it: name itself, or another connected registration that claimed
// it first. Claims are made under one lock, so two registrations of one cluster that connect
// at the same moment cannot both win.
func (f *Fleet) Claim(clusterID, name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if holder, ok := f.claims[clusterID]; ok && holder != name {
		if _, connected := f.conns[holder]; connected {
			return holder
		}
	}
	f.claims[clusterID] = name
	return name
}

// Disconnect stops and forgets a cluster's connection and its claim.
func (f *Fleet) Disconnect(name string) {
	f.mu.Lock()
	c := f.conns[name]
	delete(f.conns, name)
	for id, holder := range f.claims {
		if holder == name {
			delete(f.claims, id)
		}
	}
	f.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// Stop disconnects every cluster.
func (f *Fleet) Stop() {
	f.mu.Lock()
	conns := f.conns
	f.conns = map[string]*Connection{}
	f.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
}

func (f *Fleet) newConnection(ctx context.Context, name, hash string, cfg *rest.Config) (*Connection, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "convoy"
	// client-go's default (5 QPS, burst 10) throttles a namespace check that lists every
	// namespaced kind; steady state sends almost nothing, so a higher ceiling costs little.
	cfg.QPS, cfg.Burst = 50, 100
	if f.opts.WrapTransport != nil {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return f.opts.WrapTransport(name, rt) })
	}
	owned := labels.SelectorFromSet(labels.Set{convoyv1.ManagedByLabel: convoyv1.ManagedByValue})
	cl, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = f.opts.Scheme
		o.Cache.DefaultLabelSelector = owned
		o.Cache.ByObject = map[client.Object]cache.ByObject{
			// Pods of convoy's Deployments carry its labels; only where they run is kept.
			&corev1.Pod{}: {Transform: podPlacementOnly},
			// Nodes are not convoy's: every node is read, as metadata, for its zone label.
			nodeMetadata(): {Label: labels.Everything()},
		}
	})
	if err != nil {
		return nil, fmt.Errorf("building client for %s: %w", name, err)
	}
	// rest.Config.Timeout would also cut the caches' long-running watches, so only the
	// discovery client gets it; other requests are bounded through their context.
	discoveryCfg := rest.CopyConfig(cfg)
	discoveryCfg.Timeout = f.opts.RequestTimeout
	disc, err := discovery.NewDiscoveryClientForConfig(discoveryCfg)
	if err != nil {
		return nil, fmt.Errorf("building discovery client for %s: %w", name, err)
	}

	// Fail fast, with the API server's own error (for example 401), before starting caches
	// that would only retry in the background.
	if _, err := disc.ServerVersion(); err != nil {
		return nil, fmt.Errorf("contacting %s: %w", name, err)
	}
	drVersions, err := destinationRuleVersions(disc)
	if err != nil {
		return nil, fmt.Errorf("discovering DestinationRule support in %s: %w", name, err)
	}
	drVersion := convoyv1.ClusterCapabilities{DestinationRuleVersions: drVersions}.DestinationRuleVersion()

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	conn := &Connection{
		Name:           name,
		kubeconfigHash: hash,
		cluster:        cl,
		discovery:      disc,
		typeConverter:  f.typeConverter,
		drVersion:      drVersion,
		requestTimeout: f.opts.RequestTimeout,
		cancel:         cancel,
	}
	// Pods and nodes only feed pods-per-zone status: a cluster whose convoy identity may not
	// read them still gets its objects, and the status says what is missing.
	if err := canReadPlacement(ctx, cl.GetAPIReader(), name, f.opts.RequestTimeout); apierrors.IsForbidden(err) {
		conn.placementErr = err
	} else if err != nil {
		cancel()
		return nil, err
	}
	handlers := map[client.Object]toolscache.ResourceEventHandler{}
	for _, obj := range watchedTypes(drVersion) {
		handlers[obj] = f.projectEventHandler(runCtx, nil)
	}
	if conn.placementErr == nil {
		handlers[&corev1.Pod{}] = f.projectEventHandler(runCtx, placementChanged)
		// Node changes do not wake Projects: zone counts follow pod events and resyncs.
		handlers[nodeMetadata()] = nil
	}
	for obj, handler := range handlers {
		inf, err := cl.GetCache().GetInformer(runCtx, obj)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("watching %T in %s: %w", obj, name, err)
		}
		if handler == nil {
			continue
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			cancel()
			return nil, err
		}
	}
	go func() {
		if err := cl.Start(runCtx); err != nil {
			log.FromContext(ctx).Error(err, "Remote cache stopped", "ServiceCluster", name)
		}
	}()
	syncCtx, syncCancel := context.WithTimeout(ctx, f.opts.CacheSyncTimeout)
	defer syncCancel()
	if !cl.GetCache().WaitForCacheSync(syncCtx) {
		cancel()
		return nil, fmt.Errorf("%w: caches of %s did not sync within %s", ErrNotConnected, name, f.opts.CacheSyncTimeout)
	}
	return conn, nil
}

// projectEventHandler turns any change of a convoy-owned object into an event for its Project.
// When changed is set, updates it rejects are dropped. Sends give up when the connection
// stops, so a stopped informer never waits on a consumer that is gone (manager shutdown,
// replaced connection).
func (f *Fleet) projectEventHandler(ctx context.Context, changed func(oldObj, newObj any) bool) toolscache.ResourceEventHandler {
	emit := func(obj any) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		o, ok := obj.(client.Object)
		if !ok {
			return
		}
		l := o.GetLabels()
		ns, name := l[convoyv1.ProjectNamespaceLabel], l[convoyv1.ProjectNameLabel]
		if ns == "" || name == "" {
			return
		}
		select {
		case f.events <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		}}:
		case <-ctx.Done():
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: emit,
		UpdateFunc: func(oldObj, newObj any) {
			if changed == nil || changed(oldObj, newObj) {
				emit(newObj)
			}
		},
		DeleteFunc: emit,
	}
}

// Connection is a live link to one service cluster.
type Connection struct {
	Name           string
	kubeconfigHash string
	cluster        cluster.Cluster
	discovery      discovery.DiscoveryInterface
	typeConverter  managedfields.TypeConverter
	drVersion      string
	requestTimeout time.Duration
	// placementErr says why pods and nodes cannot be read (nil when they can).
	placementErr error
	cancel       context.CancelFunc

	// namespaceMu serialises namespace claims so that two Projects asking for the same
	// remote namespace cannot both win.
	namespaceMu sync.Mutex
}

func (c *Connection) stop() { c.cancel() }

// bounded limits one request (or a short sequence of them) to the cluster.
func (c *Connection) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.requestTimeout)
}

// DestinationRuleVersion is the networking.istio.io version this connection writes and watches
// DestinationRules in; empty when the cluster served none when it connected.
func (c *Connection) DestinationRuleVersion() string { return c.drVersion }

// Cache reads convoy-owned objects of the cluster.
func (c *Connection) Cache() cache.Cache { return c.cluster.GetCache() }
