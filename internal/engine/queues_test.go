package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func pair(project, cluster string) Pair {
	return Pair{Project: types.NamespacedName{Namespace: "team", Name: project}, Cluster: cluster}
}

// eventually fails the test when cond does not hold within 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, q *Queues) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = q.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Every worker of one cluster stuck in a sync that never returns delays no other cluster.
func TestHungClusterDelaysOnlyItself(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	synced := make(chan Pair, 16)
	q := New(Options{Workers: 2, Timeout: time.Hour}, func(ctx context.Context, p Pair) (time.Duration, error) {
		if p.Cluster == "hung" {
			<-release // ignores its context, like a call without a deadline
			return 0, nil
		}
		synced <- p
		return 0, nil
	})
	start(t, q)
	for _, name := range []string{"a", "b", "c"} {
		q.Add(pair(name, "hung"), PriorityChange)
	}
	time.Sleep(50 * time.Millisecond) // both hung workers are now stuck
	for _, name := range []string{"a", "b", "c"} {
		q.Add(pair(name, "ok"), PriorityChange)
	}
	for range 3 {
		select {
		case p := <-synced:
			if p.Cluster != "ok" {
				t.Fatalf("unexpected sync of %s", p)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a healthy cluster's pairs waited behind a hung cluster")
		}
	}
	if n := q.Len("hung"); n != 1 {
		t.Fatalf("hung cluster queue holds %d pairs, want the 1 not yet picked up", n)
	}
}

// Adds of one pair within the batch period coalesce into one sync.
func TestAddAfterCoalesces(t *testing.T) {
	var runs atomic.Int32
	q := New(Options{Workers: 1}, func(context.Context, Pair) (time.Duration, error) {
		runs.Add(1)
		return 0, nil
	})
	start(t, q)
	for range 20 {
		q.AddAfter(pair("shop", "seoul"), 100*time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond)
	if n := runs.Load(); n != 1 {
		t.Fatalf("20 events within the batch period ran %d syncs, want 1", n)
	}
}

// A failing sync is retried with backoff; a sync is cancelled at its timeout; a requested
// resync runs again.
func TestRetryTimeoutAndResync(t *testing.T) {
	var mu sync.Mutex
	var calls []time.Time
	q := New(Options{Workers: 1, Timeout: 50 * time.Millisecond, BaseBackoff: 20 * time.Millisecond}, func(ctx context.Context, p Pair) (time.Duration, error) {
		mu.Lock()
		calls = append(calls, time.Now())
		n := len(calls)
		mu.Unlock()
		switch n {
		case 1:
			return 0, errors.New("apply failed")
		case 2:
			<-ctx.Done() // the timeout ends a sync that would hang
			return 0, ctx.Err()
		case 3:
			return 30 * time.Millisecond, nil
		}
		return 0, nil
	})
	start(t, q)
	q.Add(pair("shop", "seoul"), PriorityChange)
	eventually(t, "4 syncs (failure, timeout, resync, done)", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == 4
	})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 4 {
		t.Fatalf("%d syncs after the last one asked for no resync", len(calls))
	}
}

// A change jumps a backlog of re-checks in its cluster's queue.
func TestChangeGoesBeforeRechecks(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	q := New(Options{Workers: 1, Timeout: time.Minute}, func(ctx context.Context, p Pair) (time.Duration, error) {
		if p.Project.Name == "first" {
			<-release // holds the only worker while the backlog builds up
		}
		mu.Lock()
		order = append(order, p.Project.Name)
		mu.Unlock()
		return 0, nil
	})
	start(t, q)
	q.Add(pair("first", "seoul"), PriorityRecheck)
	time.Sleep(50 * time.Millisecond)
	for i := range 100 {
		q.Add(pair(fmt.Sprintf("recheck-%d", i), "seoul"), PriorityRecheck)
	}
	q.Add(pair("change", "seoul"), PriorityChange)
	time.Sleep(50 * time.Millisecond) // the queue takes adds through a buffer
	close(release)
	eventually(t, "102 syncs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 102
	})
	if order[1] != "change" {
		t.Fatalf("the change ran at position %d, after %v; want it right after the sync that was running", slices.Index(order, "change"), order[:3])
	}
}
