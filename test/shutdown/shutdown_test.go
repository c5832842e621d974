package shutdown

import (
	"context"
	"testing"
	"time"

	"github.com/convoy-dev/convoy/internal/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

// The short form of the harness (make shutdown-bench prints the whole table): with the
// sample policy's drainConnections and an application that handles SIGTERM gracefully, no
// request fails and the pod terminates long before the PreStop timeout, with keep-alive
// clients and without, behind both kinds of proxy. The lag (8 s) is longer than the minimum
// delay (5 s): a helper that did not see connections still arriving would let requests fail.
func TestScaleInWithDrainHelper(t *testing.T) {
	for _, proxy := range []ProxyKind{KubeProxy, Envoy} {
		for _, keepAlive := range []bool{true, false} {
			s := Setup{Proxy: proxy, KeepAlive: keepAlive, Lag: 8 * time.Second, Rate: 50,
				PreStop: PreStop{Name: "convoy-drain wait", Wait: true}}
			t.Run(s.String(), func(t *testing.T) {
				t.Parallel()
				res, err := Run(context.Background(), s)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d requests, %d failed, terminated after %s\n%s", res.Requests, res.Failed, res.Terminated.Round(100*time.Millisecond), res.DrainLog)
				if res.Requests < 100 {
					t.Fatalf("only %d requests were sent: the load generator did not run", res.Requests)
				}
				if res.Failed > 0 {
					t.Errorf("%d of %d requests failed: %v", res.Failed, res.Requests, res.FirstErrors)
				}
				if res.Terminated >= Budget.PreStopTimeout {
					t.Errorf("terminated after %s: the wait ran to its timeout", res.Terminated)
				}
			})
		}
	}
}
