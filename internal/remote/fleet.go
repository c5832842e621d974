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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/event"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// ErrNotConnected is returned for a ServiceCluster whose circuit breaker is open or that has
// no verified connection yet. Do not retry in a loop: a change of the cluster's health is
// delivered on Fleet.Changes, and a new connection's caches announce every object they hold.
var ErrNotConnected = errors.New("service cluster is not connected")

// Options configure a Fleet.
type Options struct {
	// Scheme knows every type convoy reads or writes remotely.
	Scheme *runtime.Scheme
	// ConnectTimeout bounds building a connection. Its caches get this long to sync, and
	// then, while the cluster keeps answering probes, up to CacheSyncLimit in all.
	ConnectTimeout time.Duration
	// CacheSyncLimit bounds a new connection's cache sync while the cluster answers: a large
	// or busy cluster may need longer than ConnectTimeout to list what convoy caches.
	CacheSyncLimit time.Duration
	// RequestTimeout bounds every request to a service cluster.
	RequestTimeout time.Duration
	// ProbeTimeout bounds a health probe: a cluster that answers more slowly counts as failing.
	ProbeTimeout time.Duration
	// ProbeInterval is the time between health probes of a connected cluster.
	ProbeInterval time.Duration
	// MaxBackoff caps the exponential backoff between attempts to reach a cluster that is down.
	MaxBackoff time.Duration
	// Thresholds are the breaker's hysteresis.
	Thresholds Thresholds
	// QPS and Burst limit each cluster's client.
	QPS   float32
	Burst int
	// WrapTransport, when set, wraps the HTTP transport of each cluster's REST config. Tests use
	// it to count requests.
	WrapTransport func(cluster string, rt http.RoundTripper) http.RoundTripper
	// OnObjectChange is called for every change of a convoy-owned object in a cluster, with the
	// owning Project. It runs on an informer goroutine and must not block.
	OnObjectChange func(cluster string, project types.NamespacedName)
	// Clock drives probes and backoff; tests use a fake one.
	Clock clock.WithTicker
}

func (o *Options) defaults() {
	setDefault := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	setDefault(&o.ConnectTimeout, 30*time.Second)
	setDefault(&o.CacheSyncLimit, 10*o.ConnectTimeout)
	setDefault(&o.RequestTimeout, 15*time.Second)
	setDefault(&o.ProbeTimeout, 5*time.Second)
	setDefault(&o.ProbeInterval, 30*time.Second)
	setDefault(&o.MaxBackoff, time.Minute)
	if o.Thresholds.Failures < 1 {
		o.Thresholds.Failures = 3
	}
	if o.Thresholds.Successes < 1 {
		o.Thresholds.Successes = 2
	}
	if o.QPS == 0 {
		o.QPS, o.Burst = 50, 100
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}

// Registration is what the ServiceCluster says about how to reach its cluster.
type Registration struct {
	Kubeconfig []byte
	// RecordedID is the kube-system UID of the cluster this ServiceCluster reached before
	// (its status.clusterID); empty for a new registration. A kubeconfig that reaches another
	// cluster is refused: convoy's objects would stay behind in the old cluster, and the new
	// one would get objects meant for the old one (or for another registration).
	RecordedID string
	// AcceptID is a kube-system UID a person has accepted as the registration's new cluster.
	AcceptID string
	// Scope is what convoy's identity may read there; a change replaces the connection.
	Scope convoyv1.AccessScope
}

// Fleet is the connection manager: one supervisor per ServiceCluster connects off the
// reconcile path, probes, and opens or closes the cluster's circuit breaker. Callers only
// ever get a connection whose identity was verified and whose breaker is closed; otherwise
// they fail in microseconds with ErrNotConnected.
type Fleet struct {
	opts          Options
	typeConverter managedfields.TypeConverter
	changes       chan event.GenericEvent
	// dial builds a link to a cluster; tests replace it.
	dial func(ctx context.Context, name string, cfg *rest.Config, scope convoyv1.AccessScope) (link, error)

	mu          sync.RWMutex
	supervisors map[string]*supervisor
	health      map[string]Health
	conns       map[string]link
	// claims maps a cluster identity (kube-system UID) to the ServiceCluster using it.
	claims map[string]string
}

// link is what a supervisor needs of a connection.
type link interface {
	Probe(ctx context.Context) (ProbeResult, error)
	waitForCaches(ctx context.Context) bool
	DestinationRuleVersion() string
	setIdentity(ProbeResult)
	// answeredSince reports whether the cluster answered any request at or after t.
	answeredSince(t time.Time) bool
	stop()
}

func (c *Connection) setIdentity(p ProbeResult)      { c.identity = p }
func (c *Connection) answeredSince(t time.Time) bool { return c.answered.since(t) }

// NewFleet returns an empty Fleet.
func NewFleet(opts Options) *Fleet {
	opts.defaults()
	f := &Fleet{
		opts:          opts,
		typeConverter: applyconfigurations.NewTypeConverter(opts.Scheme),
		changes:       make(chan event.GenericEvent, 1024),
		supervisors:   map[string]*supervisor{},
		health:        map[string]Health{},
		conns:         map[string]link{},
		claims:        map[string]string{},
	}
	f.dial = func(ctx context.Context, name string, cfg *rest.Config, scope convoyv1.AccessScope) (link, error) {
		return dial(ctx, name, cfg, scope, f.opts, f.typeConverter, func(project types.NamespacedName) {
			if f.opts.OnObjectChange != nil {
				f.opts.OnObjectChange(name, project)
			}
		})
	}
	return f
}

// OnObjectChange sets the function called for every change of a convoy-owned object in any
// cluster, with the owning Project. It runs on informer goroutines and must not block. Set
// it before the first Register.
func (f *Fleet) OnObjectChange(fn func(cluster string, project types.NamespacedName)) {
	f.opts.OnObjectChange = fn
}

// Changes delivers an event, named after the ServiceCluster, after each probe or change of a
// cluster's health.
func (f *Fleet) Changes() <-chan event.GenericEvent { return f.changes }

// Get returns the cluster's connection while its breaker is closed, or ErrNotConnected.
func (f *Fleet) Get(name string) (*Connection, error) {
	l, h := f.published(name)
	if c, ok := l.(*Connection); ok {
		return c, nil
	}
	if h.Message != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrNotConnected, name, h.Message)
	}
	return nil, fmt.Errorf("%w: %s", ErrNotConnected, name)
}

// published returns the cluster's link if its breaker is closed (nil otherwise) and health.
func (f *Fleet) published(name string) (link, Health) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.conns[name], f.health[name]
}

// Health returns what is known of a registered cluster's connection.
func (f *Fleet) Health(name string) (Health, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	h, ok := f.health[name]
	return h, ok
}

// Register makes sure a supervisor reaches the cluster with this kubeconfig. It never waits
// on the cluster. An unchanged kubeconfig only updates the recorded identity; a changed one
// (credential rotation, a re-pointed Secret) replaces the connection, and the new one is not
// used before its identity has been verified again. A kubeconfig convoy refuses returns an
// error wrapping ErrInvalidKubeconfig.
func (f *Fleet) Register(name string, reg Registration) error {
	sum := sha256.Sum256(append([]byte(reg.Scope+"\n"), reg.Kubeconfig...))
	hash := hex.EncodeToString(sum[:])
	cfg, cfgErr := RESTConfigFromKubeconfig(reg.Kubeconfig)

	f.mu.Lock()
	old := f.supervisors[name]
	if old != nil && old.hash == hash {
		old.reg = reg
		f.mu.Unlock()
		return cfgErr
	}
	f.unpublishLocked(name)
	prev := f.health[name]
	if cfgErr != nil {
		delete(f.supervisors, name)
		f.health[name] = Health{LastContact: prev.LastContact}.afterFailure(cfgErr, f.opts.Thresholds)
		f.mu.Unlock()
		if old != nil {
			old.cancel()
		}
		return cfgErr
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{name: name, fleet: f, hash: hash, cfg: cfg, reg: reg, cancel: cancel, kick: make(chan struct{}, 1)}
	s.health = Health{State: StateConnecting, Reason: convoyv1.ReasonConnecting, Message: "Connecting", LastContact: prev.LastContact}
	f.supervisors[name] = s
	f.health[name] = s.health
	f.mu.Unlock()
	if old != nil {
		old.cancel()
	}
	go s.run(ctx)
	return nil
}

// Unregister stops the cluster's supervisor and forgets its connection and claim.
func (f *Fleet) Unregister(name string) {
	f.mu.Lock()
	s := f.supervisors[name]
	delete(f.supervisors, name)
	delete(f.health, name)
	f.unpublishLocked(name)
	for id, holder := range f.claims {
		if holder == name {
			delete(f.claims, id)
		}
	}
	f.mu.Unlock()
	if s != nil {
		s.cancel()
	}
}

// Stop stops every supervisor and connection.
func (f *Fleet) Stop() {
	f.mu.Lock()
	sups := f.supervisors
	f.supervisors = map[string]*supervisor{}
	f.conns = map[string]link{}
	f.mu.Unlock()
	for _, s := range sups {
		s.cancel()
	}
}

func (f *Fleet) unpublishLocked(name string) { delete(f.conns, name) }

// verifyLocked decides whether the cluster a supervisor reached may be used by registration
// name. It returns a Ready reason and message when it may not.
func (f *Fleet) verifyLocked(name string, reg Registration, id string) (string, string) {
	if reg.RecordedID != "" && id != reg.RecordedID && id != reg.AcceptID {
		return convoyv1.ReasonIdentityChanged, fmt.Sprintf("The kubeconfig now reaches another cluster (kube-system UID %s) than the one this ServiceCluster "+
			"was registered for (%s); convoy does not write to it, because its objects would stay behind in the old cluster. "+
			"Restore the kubeconfig Secret, or, to move this registration to the new cluster, annotate the ServiceCluster with %s=%s",
			id, reg.RecordedID, convoyv1.AcceptClusterIDAnnotation, id)
	}
	if holder, held := f.claims[id]; held && holder != name {
		other, registered := f.supervisors[holder]
		otherHealth := f.health[holder]
		switch {
		case !registered || otherHealth.State == StateRefused:
			// The holder is gone or refused itself: the claim is free.
		case reg.RecordedID == id && other.reg.RecordedID != id:
			// This registration wrote to the cluster before; the other one (for example one
			// that connected first after a manager restart) must step back.
			f.unpublishLocked(holder)
			other.poke()
		default:
			return convoyv1.ReasonDuplicateCluster, fmt.Sprintf("This cluster (kube-system UID %s) is already registered as ServiceCluster %s; "+
				"convoy does not use it twice. Delete one of the two ServiceClusters", id, holder)
		}
	}
	for other, holder := range f.claims {
		if holder == name && other != id {
			delete(f.claims, other)
		}
	}
	f.claims[id] = name
	return "", ""
}

// publish records a supervisor's health and (un)publishes its connection, unless the
// supervisor has been replaced meanwhile.
func (f *Fleet) publish(s *supervisor, h Health, l link) bool {
	f.mu.Lock()
	current := f.supervisors[s.name] == s
	if current {
		f.health[s.name] = h
		if l != nil && h.State == StateConnected && f.claims[h.Probe.ClusterID] == s.name {
			f.conns[s.name] = l
		} else {
			f.unpublishLocked(s.name)
		}
	}
	f.mu.Unlock()
	return current
}

func (f *Fleet) notify(ctx context.Context, name string) {
	select {
	case f.changes <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name}}}:
	case <-ctx.Done():
	}
}
