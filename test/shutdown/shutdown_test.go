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
// request fails, with keep-alive clients and without, behind both kinds of proxy. The lag
// (8 s) is longer than the minimum delay (5 s): a helper that missed connections still
// arriving, or a pooling proxy still sending over its connections, would let requests fail.
// Where traffic stops at the removal, the pod ends about a settle period after it; keep-alive
// clients behind kube-proxy never stop sending over their connections, so there the wait
// runs to its timeout (and idleThresholdSeconds: 0 is the faster choice, see the docs).
func TestScaleInWithDrainHelper(t *testing.T) {
	for _, tc := range []struct {
		proxy     ProxyKind
		keepAlive bool
		toTimeout bool
	}{
		{KubeProxy, true, true},
		{KubeProxy, false, false},
		{Envoy, true, false},
		{Envoy, false, false},
	} {
		s := Setup{Proxy: tc.proxy, KeepAlive: tc.keepAlive, Lag: 8 * time.Second, Rate: 50,
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
			if ranToTimeout := res.Terminated >= Budget.PreStopTimeout; ranToTimeout != tc.toTimeout {
				t.Errorf("terminated after %s; want the wait to run to its timeout: %v", res.Terminated, tc.toTimeout)
			}
		})
	}
}
