package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clocktesting "k8s.io/utils/clock/testing"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// fakeLink is a connection whose probes and cache sync the test decides.
type fakeLink struct {
	mu      sync.Mutex
	id      string
	err     error
	stopped bool
	// unsyncedWaits is how many waits for its caches end before they have synced.
	unsyncedWaits int
	// answering: the cluster answers convoy's other requests, whatever the probe says.
	answering bool
}

func (l *fakeLink) answeredSince(time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answering
}

func (l *fakeLink) waitForCaches(context.Context) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unsyncedWaits > 0 {
		l.unsyncedWaits--
		return false
	}
	return true
}

func (l *fakeLink) isStopped() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.stopped }

func (l *fakeLink) Probe(context.Context) (ProbeResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ProbeResult{ClusterID: l.id, KubernetesVersion: "v1.36.3"}, l.err
}
func (l *fakeLink) DestinationRuleVersion() string { return "" }
func (l *fakeLink) setIdentity(ProbeResult)        {}
func (l *fakeLink) stop()                          { l.mu.Lock(); l.stopped = true; l.mu.Unlock() }
func (l *fakeLink) fail(err error)                 { l.mu.Lock(); l.err = err; l.mu.Unlock() }

func testKubeconfig(t *testing.T, server string) []byte {
	t.Helper()
	cfg := baseKubeconfig()
	cfg.Clusters["c"].Server = server
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fakeFleet returns a fleet whose supervisors dial fake links (one per cluster, reused
// across reconnects) on a fake clock.
func fakeFleet(th Thresholds) (*Fleet, *clocktesting.FakeClock, map[string]*fakeLink) {
	clk := clocktesting.NewFakeClock(time.Now())
	f := NewFleet(Options{ProbeInterval: 10 * time.Second, MaxBackoff: 10 * time.Second, Thresholds: th, Clock: clk})
	links := map[string]*fakeLink{}
	var mu sync.Mutex
	f.dial = func(_ context.Context, name string, _ *rest.Config, _ convoyv1.AccessScope) (link, error) {
		mu.Lock()
		defer mu.Unlock()
		l := links[name]
		if l.err != nil {
			return nil, l.err
		}
		return l, nil
	}
	return f, clk, links
}

// next waits for the supervisor's next report and returns the cluster's health.
func next(t *testing.T, f *Fleet) Health {
	t.Helper()
	select {
	case e := <-f.Changes():
		h, _ := f.Health(e.Object.GetName())
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("no report from the supervisor")
	}
	return Health{}
}

// advance moves the fake clock past the supervisor's timer (probe interval or backoff, both
// jittered by at most 10%) once the supervisor waits on it.
func advance(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the supervisor does not wait on the clock")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Step(12 * time.Second)
}

// registerConnected registers a cluster and waits for its first probe, which must connect.
func registerConnected(t *testing.T, f *Fleet, name string) {
	t.Helper()
	if err := f.Register(name, Registration{Kubeconfig: testKubeconfig(t, "https://10.0.0.1:6443")}); err != nil {
		t.Fatal(err)
	}
	if h := next(t, f); h.State != StateConnected {
		t.Fatalf("first successful probe: state %s (%s)", h.State, h.Message)
	}
}

// The breaker opens only after Failures probes in a row have failed and closes only after
// Successes in a row have passed; while open, Get fails without touching the cluster.
func TestBreakerHysteresis(t *testing.T) {
	f, clk, links := fakeFleet(Thresholds{Failures: 3, Successes: 2})
	defer f.Stop()
	links["seoul"] = &fakeLink{id: "uid-seoul"}
	registerConnected(t, f, "seoul")
	steps := []struct {
		probeErr  error
		wantState State
	}{
		{errors.New("timeout"), StateConnected}, // 1 of 3
		{errors.New("timeout"), StateConnected}, // 2 of 3
		{nil, StateConnected},                   // a success resets the count
		{errors.New("timeout"), StateConnected},
		{errors.New("timeout"), StateConnected},
		{errors.New("timeout"), StateDown}, // 3 in a row: open
		{nil, StateDown},                   // 1 of 2 successes: still open
		{errors.New("timeout"), StateDown}, // a failure resets the count
		{nil, StateDown},
		{nil, StateConnected}, // 2 in a row: closed
	}
	for i, s := range steps {
		links["seoul"].fail(s.probeErr)
		advance(t, clk)
		h := next(t, f)
		if h.State != s.wantState {
			t.Fatalf("step %d (probe error %v): state %s, want %s (%s)", i, s.probeErr, h.State, s.wantState, h.Message)
		}
		if l, _ := f.published("seoul"); (l != nil) != (s.wantState == StateConnected) {
			t.Fatalf("step %d: published %v with state %s", i, l != nil, h.State)
		}
		if s.wantState == StateDown {
			start := time.Now()
			if _, err := f.Get("seoul"); !errors.Is(err, ErrNotConnected) || time.Since(start) > time.Millisecond {
				t.Fatalf("step %d: an open breaker must fail at once with ErrNotConnected, got %v after %s", i, err, time.Since(start))
			}
		}
	}
}

// A cluster too busy to answer the probe in time, while it answers convoy's other requests,
// stays connected: opening the breaker would stop convoy's writes and rebuild its caches,
// adding load to a cluster that is alive. Silence, or rejected credentials, still open it.
func TestBusyClusterStaysConnected(t *testing.T) {
	f, clk, links := fakeFleet(Thresholds{Failures: 1, Successes: 1})
	defer f.Stop()
	links["seoul"] = &fakeLink{id: "uid-seoul"}
	registerConnected(t, f, "seoul")
	timeout := fmt.Errorf("reading server version: %w", context.DeadlineExceeded)
	steps := []struct {
		name        string
		probeErr    error
		answering   bool
		wantState   State
		wantMessage string
	}{
		{"probe times out, other requests answered", timeout, true, StateConnected, "Slow: the health probe failed"},
		{"again: still connected", timeout, true, StateConnected, "convoy keeps writing"},
		{"probe passes", nil, true, StateConnected, "Connected to Kubernetes"},
		{"probe times out, nothing answered", timeout, false, StateDown, "Cannot reach the cluster"},
	}
	for _, s := range steps {
		links["seoul"].mu.Lock()
		links["seoul"].err, links["seoul"].answering = s.probeErr, s.answering
		links["seoul"].mu.Unlock()
		advance(t, clk)
		h := next(t, f)
		if h.State != s.wantState || !strings.Contains(h.Message, s.wantMessage) {
			t.Fatalf("%s: state %s (%s), want %s with %q", s.name, h.State, h.Message, s.wantState, s.wantMessage)
		}
		if l, _ := f.published("seoul"); (l != nil) != (s.wantState == StateConnected) {
			t.Fatalf("%s: published %v with state %s", s.name, l != nil, h.State)
		}
	}
}

// Rejected credentials open the breaker at once: retrying them cannot succeed, and the docs
// promise the cluster is reported right away. A 401 is an answer: it must not count as a
// busy cluster's.
func TestRejectedCredentialsOpenAtOnce(t *testing.T) {
	f, clk, links := fakeFleet(Thresholds{Failures: 3, Successes: 1})
	defer f.Stop()
	links["seoul"] = &fakeLink{id: "uid-seoul", answering: true}
	registerConnected(t, f, "seoul")
	links["seoul"].fail(apierrors.NewUnauthorized("token expired"))
	advance(t, clk)
	if h := next(t, f); h.State != StateDown || h.Reason != convoyv1.ReasonUnauthorized {
		t.Fatalf("after one 401: state %s reason %s, want Down/Unauthorized", h.State, h.Reason)
	}
}

// A connection is published only after its cluster identity was checked: a second
// registration of the same cluster, and a registration whose kubeconfig now reaches another
// cluster than the one it recorded, are refused and never returned by Get.
func TestIdentityIsVerifiedBeforeUse(t *testing.T) {
	f, _, links := fakeFleet(Thresholds{Failures: 1, Successes: 1})
	defer f.Stop()
	links["seoul"] = &fakeLink{id: "uid-seoul"}
	links["tokyo"] = &fakeLink{id: "uid-seoul"} // the tokyo Secret was re-pointed at seoul
	links["busan"] = &fakeLink{id: "uid-seoul"}

	if err := f.Register("seoul", Registration{Kubeconfig: testKubeconfig(t, "https://10.0.0.1:6443"), RecordedID: "uid-seoul"}); err != nil {
		t.Fatal(err)
	}
	if h := next(t, f); h.State != StateConnected {
		t.Fatalf("seoul: %s %s", h.State, h.Message)
	}
	if err := f.Register("tokyo", Registration{Kubeconfig: testKubeconfig(t, "https://10.0.0.2:6443"), RecordedID: "uid-tokyo"}); err != nil {
		t.Fatal(err)
	}
	if h := next(t, f); h.State != StateRefused || h.Reason != convoyv1.ReasonIdentityChanged {
		t.Fatalf("re-pointed tokyo: %s %s (%s)", h.State, h.Reason, h.Message)
	}
	if _, err := f.Get("tokyo"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("a re-pointed registration must not be usable, got %v", err)
	}
	if err := f.Register("busan", Registration{Kubeconfig: testKubeconfig(t, "https://10.0.0.3:6443")}); err != nil {
		t.Fatal(err)
	}
	if h := next(t, f); h.State != StateRefused || h.Reason != convoyv1.ReasonDuplicateCluster {
		t.Fatalf("second registration of seoul: %s %s (%s)", h.State, h.Reason, h.Message)
	}
	if l, h := f.published("seoul"); l == nil {
		t.Fatalf("the original registration stays usable: %s", h.Message)
	}
	f.Unregister("seoul")
	if _, err := f.Get("seoul"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("after Unregister: %v", err)
	}
}

// A new connection whose caches take longer than the connect timeout to sync keeps syncing
// while the cluster answers probes, and is used only once they have synced.
func TestSlowCacheSyncContinuesWhileClusterAnswers(t *testing.T) {
	f, clk, links := fakeFleet(Thresholds{Failures: 1, Successes: 1})
	defer f.Stop()
	links["seoul"] = &fakeLink{id: "uid-seoul", unsyncedWaits: 3}
	if err := f.Register("seoul", Registration{Kubeconfig: testKubeconfig(t, "https://10.0.0.1:6443")}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if i > 0 {
			advance(t, clk)
		}
		h := next(t, f)
		if h.State == StateConnected || !strings.Contains(h.Message, "still syncing") {
			t.Fatalf("wait %d: state %s (%s), want not connected and syncing", i, h.State, h.Message)
		}
		if _, err := f.Get("seoul"); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("wait %d: a connection whose caches have not synced must not be used, got %v", i, err)
		}
	}
	advance(t, clk)
	if h := next(t, f); h.State != StateConnected {
		t.Fatalf("after the caches synced: state %s (%s)", h.State, h.Message)
	}
	if links["seoul"].isStopped() {
		t.Fatal("the connection was dropped and rebuilt; its sync should have continued")
	}
}

// The sync of a connection is abandoned when the cluster stops answering, or when it takes
// longer than CacheSyncLimit although the cluster answers.
func TestCacheSyncGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		probeErr error
		want     string
	}{
		{"cluster stops answering", errors.New("probe timed out"), "probe timed out"},
		{"past the limit", nil, "did not sync within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, clk, links := fakeFleet(Thresholds{Failures: 1, Successes: 1})
			defer f.Stop()
			f.opts.CacheSyncLimit = 20 * time.Second
			links["seoul"] = &fakeLink{id: "uid-seoul", unsyncedWaits: 100}
			if err := f.Register("seoul", Registration{Kubeconfig: testKubeconfig(t, "https://10.0.0.1:6443")}); err != nil {
				t.Fatal(err)
			}
			next(t, f) // syncing
			links["seoul"].fail(tc.probeErr)
			var h Health
			for range 3 { // 12 s per step: the limit is passed on the second
				advance(t, clk)
				if h = next(t, f); strings.Contains(h.Message, tc.want) {
					break
				}
			}
			if h.State == StateConnected || !strings.Contains(h.Message, tc.want) {
				t.Fatalf("state %s (%s), want a failure saying %q", h.State, h.Message, tc.want)
			}
			if !links["seoul"].isStopped() {
				t.Fatal("the abandoned connection was not stopped")
			}
		})
	}
}
