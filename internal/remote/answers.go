package remote

import (
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// answers remembers when a cluster last answered any of convoy's requests. A cluster
// saturated by the rollouts convoy itself started can be too slow for the health probe while
// it still serves applies and watches: opening the breaker then would stop convoy's writes
// and throw its caches away, so every reconnect lists everything again and adds to the load
// that made the probe slow. A hung cluster answers nothing, so it still fails.
type answers struct {
	clock clock.PassiveClock
	last  atomic.Int64 // unix nanoseconds of the last answer; 0 before the first
}

// wrap counts a response as an answer unless it says the server cannot serve (429, 5xx):
// those come from an overloaded or broken server and must not keep the breaker closed.
func (a *answers) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode < http.StatusInternalServerError && resp.StatusCode != http.StatusTooManyRequests {
			a.last.Store(a.clock.Now().UnixNano())
		}
		return resp, err
	})
}

// since reports whether the cluster answered at or after t.
func (a *answers) since(t time.Time) bool { return a.last.Load() >= t.UnixNano() }

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
