package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// tracker watches convoy's Deployments in every service cluster (informers started before
// any change) and records, for registered expectations, when each cluster first showed the
// expected state. Handler timestamps are taken on arrival, so the latency includes the
// watch's delivery, as a user watching the cluster would see it.
type tracker struct {
	benchNS string

	mu        sync.Mutex
	present   map[string]map[string]bool // cluster -> Deployment key -> present
	want      int                        // Deployments expected in total (for creation)
	allThere  chan struct{}
	allThereT time.Time
	waits     map[string][]*expectation // Deployment key -> open expectations
	stores    map[string]cache.Store
}

// expectation is one change being waited for: the predicate must hold for the Deployment
// in each of the clusters.
type expectation struct {
	project string
	key     string
	pred    func(*appsv1.Deployment) bool
	want    map[string]bool
	seen    map[string]time.Time
	done    chan struct{}
	start   time.Time // when the change was made (the patch returned)
}

// latency is the time from start to the last cluster, or lost.
func (e *expectation) latency(t *tracker) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(e.seen) < len(e.want) {
		return lost
	}
	var last time.Time
	for _, s := range e.seen {
		if s.After(last) {
			last = s
		}
	}
	if d := last.Sub(e.start); d > 0 {
		return d
	}
	return 0
}

// deploymentKey is how the bench names a Project's Deployment: remote namespace/name.
func deploymentKey(ns, name string) string { return ns + "/" + name }

func newTracker(benchNS string) *tracker {
	return &tracker{
		benchNS:  benchNS,
		present:  map[string]map[string]bool{},
		allThere: make(chan struct{}),
		waits:    map[string][]*expectation{},
		stores:   map[string]cache.Store{},
	}
}

// start runs a Deployment informer (convoy's label only, managed fields dropped) on each
// cluster and waits for them to sync.
func (t *tracker) start(ctx context.Context, clients map[string]kubernetes.Interface, timeout time.Duration) error {
	var syncs []cache.InformerSynced
	for name, cs := range clients {
		cluster := name
		factory := informers.NewSharedInformerFactoryWithOptions(cs, 0,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector = convoyv1.ManagedByLabel + "=" + convoyv1.ManagedByValue + "," +
					convoyv1.ProjectNamespaceLabel + "=" + t.benchNS
			}))
		inf := factory.Apps().V1().Deployments().Informer()
		if err := inf.SetTransform(func(obj any) (any, error) {
			if d, ok := obj.(*appsv1.Deployment); ok {
				d.ManagedFields = nil
				d.Status = appsv1.DeploymentStatus{}
			}
			return obj, nil
		}); err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { t.observe(cluster, obj, true) },
			UpdateFunc: func(_, obj any) { t.observe(cluster, obj, true) },
			DeleteFunc: func(obj any) { t.observe(cluster, obj, false) },
		}); err != nil {
			return err
		}
		t.mu.Lock()
		t.present[cluster] = map[string]bool{}
		t.stores[cluster] = inf.GetStore()
		t.mu.Unlock()
		factory.Start(ctx.Done())
		syncs = append(syncs, inf.HasSynced)
	}
	syncCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), syncs...) {
		return fmt.Errorf("Deployment informers did not sync within %s", timeout)
	}
	return nil
}

func (t *tracker) observe(cluster string, obj any, exists bool) {
	now := time.Now()
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	key := deploymentKey(d.Namespace, d.Name)
	t.mu.Lock()
	defer t.mu.Unlock()
	if exists {
		t.present[cluster][key] = true
	} else {
		delete(t.present[cluster], key)
	}
	if t.want > 0 && t.allThereT.IsZero() && t.countLocked() >= t.want {
		t.allThereT = now
		close(t.allThere)
	}
	if !exists {
		return
	}
	open := t.waits[key][:0]
	for _, e := range t.waits[key] {
		if e.want[cluster] && e.seen[cluster].IsZero() && e.pred(d) {
			e.seen[cluster] = now
		}
		if len(e.seen) == len(e.want) {
			close(e.done)
			continue
		}
		open = append(open, e)
	}
	if len(open) == 0 {
		delete(t.waits, key)
	} else {
		t.waits[key] = open
	}
}

func (t *tracker) countLocked() int {
	n := 0
	for _, m := range t.present {
		n += len(m)
	}
	return n
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.countLocked()
}

// expectAll arms the creation wait: closes allThere once n Deployments exist in total.
func (t *tracker) expectAll(n int) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want = n
	if t.countLocked() >= n && t.allThereT.IsZero() {
		t.allThereT = time.Now()
		close(t.allThere)
	}
	return t.allThere
}

// expect registers a change to wait for before it is made; set start when it was made.
func (t *tracker) expect(key string, clusters []string, pred func(*appsv1.Deployment) bool) *expectation {
	e := &expectation{key: key, pred: pred, want: map[string]bool{}, seen: map[string]time.Time{}, done: make(chan struct{})}
	for _, c := range clusters {
		e.want[c] = true
	}
	t.mu.Lock()
	t.waits[key] = append(t.waits[key], e)
	t.mu.Unlock()
	return e
}

// setStart records when the change was made.
func (t *tracker) setStart(e *expectation, at time.Time) {
	t.mu.Lock()
	e.start = at
	t.mu.Unlock()
}

// cancel drops an expectation that will not be waited for any longer.
func (t *tracker) cancel(e *expectation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	open := t.waits[e.key][:0]
	for _, o := range t.waits[e.key] {
		if o != e {
			open = append(open, o)
		}
	}
	if len(open) == 0 {
		delete(t.waits, e.key)
	} else {
		t.waits[e.key] = open
	}
}

// get returns a cluster's cached copy of a Deployment.
func (t *tracker) get(cluster, key string) *appsv1.Deployment {
	t.mu.Lock()
	store := t.stores[cluster]
	t.mu.Unlock()
	if store == nil {
		return nil
	}
	obj, ok, err := store.GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	return obj.(*appsv1.Deployment)
}

// seenCount is how many (cluster, Deployment) pairs of the expectations have arrived.
func (t *tracker) seenCount(es []*expectation) (seen, want int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range es {
		seen += len(e.seen)
		want += len(e.want)
	}
	return seen, want
}

// arrivals returns every arrival time of the expectations, sorted by the caller.
func (t *tracker) arrivals(es []*expectation) []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Time
	for _, e := range es {
		for _, s := range e.seen {
			out = append(out, s)
		}
	}
	return out
}
