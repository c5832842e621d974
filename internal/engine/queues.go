// Package engine runs convoy's unit of work, a (Project, cluster) pair, on one work queue per
// service cluster. Each cluster's queue has its own workers, retries with its own backoff and
// bounds each item with a timeout, so a cluster that is slow or hangs holds only its own
// workers: the other clusters' pairs never wait behind it.
//
// The queues are priority queues: a change of what a pair should run (Project, policy,
// placement or cluster changes) goes before re-checks (remote events, resyncs, retries), so a
// backlog of echoes and resyncs never delays a change.
package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Priorities of queued pairs.
const (
	// PriorityRecheck is for re-checks: remote events, resyncs and retries.
	PriorityRecheck = 0
	// PriorityChange is for a change of the pair's inputs in the manager cluster.
	PriorityChange = 10
)

// Pair is one unit of work: a Project in one service cluster.
type Pair struct {
	Project types.NamespacedName
	Cluster string
}

func (p Pair) String() string { return p.Project.String() + "@" + p.Cluster }

// SyncFunc does a pair's work. It returns when to run the pair again without an event
// (zero: only on events), or an error to retry with backoff.
type SyncFunc func(ctx context.Context, p Pair) (time.Duration, error)

// Options configure the queues.
type Options struct {
	// Workers per cluster.
	Workers int
	// Timeout bounds one run of SyncFunc.
	Timeout time.Duration
	// BaseBackoff and MaxBackoff bound the per-pair exponential retry delay.
	BaseBackoff, MaxBackoff time.Duration
}

// Queues holds one work queue per cluster. It is a manager Runnable: workers run between
// Start and the end of its context; pairs queued before Start wait for it.
type Queues struct {
	opts Options
	sync SyncFunc

	mu      sync.Mutex
	ctx     context.Context // nil until Start
	stopped bool
	queues  map[string]*clusterQueue
}

type clusterQueue struct {
	queue  priorityqueue.PriorityQueue[Pair]
	cancel context.CancelFunc
}

// New returns queues that run sync.
func New(opts Options, sync SyncFunc) *Queues {
	if opts.Workers < 1 {
		opts.Workers = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 2 * time.Minute
	}
	return &Queues{opts: opts, sync: sync, queues: map[string]*clusterQueue{}}
}

// Add queues a pair now with the given priority. A pair already waiting is not queued twice;
// it keeps the higher of the two priorities.
func (q *Queues) Add(p Pair, priority int) {
	if cq := q.queueFor(p.Cluster); cq != nil {
		cq.queue.AddWithOpts(priorityqueue.AddOpts{Priority: &priority}, p)
	}
}

// AddAfter queues a re-check of a pair after delay. Pairs added within the delay coalesce
// into one run: the echo of convoy's own writes and bursts of remote events cost one sync.
func (q *Queues) AddAfter(p Pair, delay time.Duration) {
	if cq := q.queueFor(p.Cluster); cq != nil {
		cq.queue.AddAfter(p, delay)
	}
}

// Len is the number of pairs waiting in a cluster's queue.
func (q *Queues) Len(cluster string) int {
	q.mu.Lock()
	cq := q.queues[cluster]
	q.mu.Unlock()
	if cq == nil {
		return 0
	}
	return cq.queue.Len()
}

// RemoveCluster stops a cluster's workers and drops its waiting pairs.
func (q *Queues) RemoveCluster(cluster string) {
	q.mu.Lock()
	cq := q.queues[cluster]
	delete(q.queues, cluster)
	q.mu.Unlock()
	if cq != nil {
		cq.stop()
	}
}

// Start runs the workers until ctx ends.
func (q *Queues) Start(ctx context.Context) error {
	q.mu.Lock()
	q.ctx = ctx
	for name, cq := range q.queues {
		q.startLocked(name, cq)
	}
	q.mu.Unlock()
	<-ctx.Done()
	q.mu.Lock()
	q.stopped = true
	queues := q.queues
	q.queues = map[string]*clusterQueue{}
	q.mu.Unlock()
	for _, cq := range queues {
		cq.stop()
	}
	return nil
}

func (q *Queues) queueFor(cluster string) *clusterQueue {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return nil
	}
	if cq := q.queues[cluster]; cq != nil {
		return cq
	}
	cq := &clusterQueue{queue: priorityqueue.New("cluster_"+cluster, func(o *priorityqueue.Opts[Pair]) {
		o.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[Pair](q.opts.BaseBackoff, q.opts.MaxBackoff)
	})}
	q.queues[cluster] = cq
	if q.ctx != nil {
		q.startLocked(cluster, cq)
	}
	return cq
}

func (q *Queues) startLocked(cluster string, cq *clusterQueue) {
	if cq.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(q.ctx)
	cq.cancel = cancel
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("ServiceCluster", cluster))
	for range q.opts.Workers {
		go q.work(ctx, cq)
	}
}

func (cq *clusterQueue) stop() {
	cq.queue.ShutDown()
	if cq.cancel != nil {
		cq.cancel()
	}
}

func (q *Queues) work(ctx context.Context, cq *clusterQueue) {
	for {
		p, shutdown := cq.queue.Get()
		if shutdown {
			return
		}
		after, err := q.run(ctx, p)
		switch {
		case err != nil:
			log.FromContext(ctx).Error(err, "Sync failed; retrying with backoff", "Project", p.Project)
			cq.queue.AddRateLimited(p)
		case after > 0:
			cq.queue.Forget(p)
			cq.queue.AddAfter(p, after)
		default:
			cq.queue.Forget(p)
		}
		cq.queue.Done(p)
	}
}

// run calls sync with the item timeout and turns a panic into an error.
func (q *Queues) run(ctx context.Context, p Pair) (after time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, q.opts.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic syncing %s: %v", p, r)
		}
	}()
	return q.sync(log.IntoContext(ctx, log.FromContext(ctx).WithValues("Project", p.Project)), p)
}
