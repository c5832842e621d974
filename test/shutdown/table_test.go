//go:build shutdownbench

package shutdown

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestScaleInTable runs every setup and prints the table of docs/graceful-shutdown.md
// (make shutdown-bench). Runs go four at a time: each is mostly waiting.
func TestScaleInTable(t *testing.T) {
	preStops := []PreStop{
		{Name: "none"},
		{Name: "sleep 5s", Sleep: 5 * time.Second},
		{Name: "sleep 10s", Sleep: 10 * time.Second},
		{Name: "drainConnections", Wait: true},
		{Name: "drainConnections, idleThreshold 0", Wait: true, LeaveOpen: true},
		{Name: "drainConnections with drainEndpoint", DrainCall: true},
	}
	lags := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	type cell struct {
		setup Setup
		res   Result
	}
	var cells []*cell
	for _, proxy := range []ProxyKind{KubeProxy, Envoy} {
		for _, keepAlive := range []bool{true, false} {
			for _, p := range preStops {
				for _, lag := range lags {
					cells = append(cells, &cell{setup: Setup{Proxy: proxy, KeepAlive: keepAlive, Lag: lag, PreStop: p, Rate: 100}})
				}
			}
		}
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, c := range cells {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := Run(context.Background(), c.setup)
			if err != nil {
				t.Errorf("%s: %v", c.setup, err)
			}
			c.res = res
		}()
	}
	wg.Wait()

	var b strings.Builder
	fmt.Fprintf(&b, "| proxy | clients | PreStop |")
	for _, lag := range lags {
		fmt.Fprintf(&b, " lag %s: failed / terminated |", lag)
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(lags)) + "\n")
	for i := 0; i < len(cells); i += len(lags) {
		s := cells[i].setup
		clients := "new connection per request"
		if s.KeepAlive {
			clients = "keep-alive"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", s.Proxy, clients, s.PreStop.Name)
		for _, c := range cells[i : i+len(lags)] {
			fmt.Fprintf(&b, " %d / %.1f s |", c.res.Failed, c.res.Terminated.Seconds())
		}
		b.WriteString("\n")
	}
	fmt.Fprint(os.Stdout, b.String())
	for _, c := range cells {
		if c.res.Failed > 0 {
			t.Logf("%s: %d of %d failed, e.g. %v", c.setup, c.res.Failed, c.res.Requests, c.res.FirstErrors)
		}
	}
}
