package remote

import (
	"net/http"
	"time"

	"github.com/convoy-dev/convoy/internal/metrics"
)

// timeRequests observes the latency of every request to a cluster but watches, which stay
// open for as long as they last.
func timeRequests(cluster string) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Query().Get("watch") == "true" {
				return rt.RoundTrip(req)
			}
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			metrics.RemoteRequestDuration.WithLabelValues(cluster, req.Method).Observe(time.Since(start).Seconds())
			return resp, err
		})
	}
}
