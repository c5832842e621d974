package gate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// fakeQueryAPI answers /api/v1/query with one sample, counting the queries. Only the cache
// is tested against it: evaluation is tested against a real Prometheus.
type fakeQueryAPI struct {
	queries atomic.Int32
	delay   time.Duration
}

func (f *fakeQueryAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	f.queries.Add(1)
	time.Sleep(f.delay)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"0.01"]}]}}`, time.Now().Unix())
}

// fakeClock is a settable clock for Evaluator.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newCachedEvaluator(t *testing.T, f *fakeQueryAPI) (*Evaluator, *fakeClock, convoyv1.HealthGate) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := NewEvaluator(time.Minute, time.Second)
	e.now = clock.now
	g := convoyv1.HealthGate{Name: "error-ratio", Prometheus: convoyv1.PrometheusGate{
		Address: srv.URL,
		Query:   `ratio{cluster="{{cluster}}"}`,
		Max:     resource.MustParse("0.05"),
	}}
	return e, clock, g
}

func TestCacheReusesResultWithinInterval(t *testing.T) {
	f := &fakeQueryAPI{}
	e, clock, g := newCachedEvaluator(t, f)
	ctx := context.Background()
	seoul := Vars{Cluster: "seoul-1"}

	for i := range 2 {
		if r := e.Check(ctx, g, seoul); r.Wait != "" || r.Breach != "" || r.Value != 0.01 {
			t.Fatalf("check %d: %+v, want value 0.01", i, r)
		}
		clock.advance(20 * time.Second)
	}
	if n := f.queries.Load(); n != 1 {
		t.Fatalf("two checks within the interval sent %d queries, want 1", n)
	}

	// Another rendered query is another entry.
	e.Check(ctx, g, Vars{Cluster: "busan-1"})
	if n := f.queries.Load(); n != 2 {
		t.Fatalf("a check for another cluster: %d queries in all, want 2", n)
	}

	// Once the interval has passed since the first query, it runs again.
	clock.advance(20 * time.Second)
	e.Check(ctx, g, seoul)
	if n := f.queries.Load(); n != 3 {
		t.Fatalf("a check after the interval: %d queries in all, want 3", n)
	}
}

func TestCacheSendsOneQueryForConcurrentChecks(t *testing.T) {
	f := &fakeQueryAPI{delay: 200 * time.Millisecond}
	e, _, g := newCachedEvaluator(t, f)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if r := e.Check(context.Background(), g, Vars{Cluster: "seoul-1"}); r.Value != 0.01 || r.Wait != "" {
				t.Errorf("concurrent check: %+v, want value 0.01", r)
			}
		})
	}
	wg.Wait()
	if n := f.queries.Load(); n != 1 {
		t.Fatalf("20 concurrent checks sent %d queries, want 1", n)
	}
}

func TestCacheDropsExpiredEntries(t *testing.T) {
	f := &fakeQueryAPI{}
	e, clock, g := newCachedEvaluator(t, f)
	for i := range 10 {
		e.Check(context.Background(), g, Vars{Cluster: fmt.Sprintf("cluster-%d", i)})
	}
	clock.advance(2 * e.Interval)
	e.Check(context.Background(), g, Vars{Cluster: "seoul-1"})
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cache) != 1 {
		t.Fatalf("after two intervals the cache holds %d entries, want only the last query's", len(e.cache))
	}
}

func TestCacheForgetsAbandonedQueries(t *testing.T) {
	f := &fakeQueryAPI{delay: 200 * time.Millisecond}
	e, _, g := newCachedEvaluator(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if r := e.Check(ctx, g, Vars{Cluster: "seoul-1"}); r.Wait == "" {
		t.Fatalf("a check whose context ended: %+v, want Wait", r)
	}
	// The caller gave up, Prometheus did not fail: the next check queries again at once.
	if r := e.Check(context.Background(), g, Vars{Cluster: "seoul-1"}); r.Value != 0.01 || r.Wait != "" {
		t.Fatalf("the check after an abandoned one: %+v, want value 0.01", r)
	}
}
