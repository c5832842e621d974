package gate

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/api/resource"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/gate/gatetest"
)

// TestPrometheus evaluates gates against a real Prometheus scraping a test exporter every
// second.
func TestPrometheus(t *testing.T) {
	ratio := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "convoy_test_error_ratio",
		Help: "Error ratio of a test cluster.",
	}, []string{"cluster", "namespace"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(ratio)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(exporter.Close)
	ratio.WithLabelValues("seoul-1", "shop-prod").Set(0.01)
	ratio.WithLabelValues("busan-1", "shop-prod").Set(0.02)

	address := gatetest.StartPrometheus(t, strings.TrimPrefix(exporter.URL, "http://"))
	e := NewEvaluator(200*time.Millisecond, 5*time.Second)
	ctx := context.Background()
	gate := func(query, limit string) convoyv1.HealthGate {
		return convoyv1.HealthGate{Name: "error-ratio", Prometheus: convoyv1.PrometheusGate{
			Address: address, Query: query, Max: resource.MustParse(limit),
		}}
	}
	const perCluster = `convoy_test_error_ratio{cluster="{{cluster}}",namespace="{{namespace}}"}`
	seoul := Vars{Cluster: "seoul-1", Namespace: "shop-prod", Project: "shop"}

	t.Run("below max passes", func(t *testing.T) {
		// Until the first scrape there is no sample: the gate waits. Prometheus applies a new
		// scrape configuration up to 5s after it starts, so this takes a few seconds.
		r := eventually(t, 15*time.Second, func() (Result, bool) {
			r := e.Check(ctx, gate(perCluster, "0.05"), seoul)
			return r, r.Wait == ""
		})
		if r.Breach != "" || r.Value != 0.01 {
			t.Fatalf("got %+v, want value 0.01 and no breach", r)
		}
	})

	t.Run("above max breaches", func(t *testing.T) {
		ratio.WithLabelValues("seoul-1", "shop-prod").Set(0.31)
		r := eventually(t, 10*time.Second, func() (Result, bool) {
			r := e.Check(ctx, gate(perCluster, "0.05"), seoul)
			return r, r.Breach != ""
		})
		if want := "gate error-ratio in cluster seoul-1: 0.31 > max 0.05"; r.Breach != want || r.Wait != "" || r.Value != 0.31 {
			t.Fatalf("got %+v, want Breach %q", r, want)
		}
		// A value equal to max is healthy.
		if r := e.Check(ctx, gate(perCluster, "310m"), seoul); r.Breach != "" || r.Wait != "" {
			t.Fatalf("value equal to max: %+v, want a pass", r)
		}
	})

	t.Run("no data waits", func(t *testing.T) {
		r := e.Check(ctx, gate(perCluster, "0.05"), Vars{Cluster: "nowhere", Namespace: "shop-prod"})
		if !strings.Contains(r.Wait, "in cluster nowhere: the query returned no sample") || !strings.Contains(r.Wait, "or vector(0)") || r.Breach != "" {
			t.Fatalf("got %+v, want Wait for no sample", r)
		}
		t.Log(r.Wait)
	})

	t.Run("or vector(0) passes without data", func(t *testing.T) {
		r := e.Check(ctx, gate(perCluster+" or vector(0)", "0.05"), Vars{Cluster: "nowhere", Namespace: "shop-prod"})
		if r.Wait != "" || r.Breach != "" || r.Value != 0 {
			t.Fatalf("got %+v, want a pass with value 0", r)
		}
	})

	t.Run("several samples wait", func(t *testing.T) {
		r := e.Check(ctx, gate(`convoy_test_error_ratio{namespace="{{namespace}}"}`, "0.05"), seoul)
		if !strings.Contains(r.Wait, "returned 2 samples") || !strings.Contains(r.Wait, `cluster="busan-1"`) || r.Breach != "" {
			t.Fatalf("got %+v, want Wait for 2 samples", r)
		}
		t.Log(r.Wait)
	})

	t.Run("scalar", func(t *testing.T) {
		r := e.Check(ctx, gate(`scalar(`+perCluster+`)`, "1"), seoul)
		if r.Wait != "" || r.Breach != "" || r.Value != 0.31 {
			t.Fatalf("got %+v, want a pass with value 0.31", r)
		}
	})

	t.Run("NaN waits", func(t *testing.T) {
		r := e.Check(ctx, gate(`sum(`+perCluster+`) * 0 / 0`, "0.05"), seoul)
		if !strings.Contains(r.Wait, "NaN") || r.Breach != "" {
			t.Fatalf("got %+v, want Wait for NaN", r)
		}
		t.Log(r.Wait)
	})

	t.Run("range vector waits", func(t *testing.T) {
		r := e.Check(ctx, gate(perCluster+`[1m]`, "0.05"), seoul)
		if !strings.Contains(r.Wait, "returned a matrix") {
			t.Fatalf("got %+v, want Wait for a matrix", r)
		}
		t.Log(r.Wait)
	})

	t.Run("invalid query waits", func(t *testing.T) {
		r := e.Check(ctx, gate(`sum(`, "0.05"), seoul)
		if !strings.Contains(r.Wait, "rejected the query") || !strings.Contains(r.Wait, "fix the gate's query") {
			t.Fatalf("got %+v, want Wait for an invalid query", r)
		}
		t.Log(r.Wait)
	})

	t.Run("connection refused waits", func(t *testing.T) {
		g := gate(perCluster, "0.05")
		g.Prometheus.Address = "http://" + gatetest.ClosedPort(t)
		r := e.Check(ctx, g, seoul)
		if !strings.Contains(r.Wait, "cannot query Prometheus at "+g.Prometheus.Address) || r.Breach != "" {
			t.Fatalf("got %+v, want Wait for an unreachable Prometheus", r)
		}
		t.Log(r.Wait)
	})

	t.Run("silent address waits no longer than the timeout", func(t *testing.T) {
		// A listener that never accepts: connections complete in the kernel, no answer comes.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		g := gate(perCluster, "0.05")
		g.Prometheus.Address = "http://" + l.Addr().String()
		short := NewEvaluator(200*time.Millisecond, 500*time.Millisecond)
		start := time.Now()
		r := short.Check(ctx, g, seoul)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("the check took %s with a timeout of 500ms", took)
		}
		if !strings.Contains(r.Wait, "did not answer within 500ms") || r.Breach != "" {
			t.Fatalf("got %+v, want Wait for a timeout", r)
		}
		t.Log(r.Wait)
	})
}

// eventually calls check every 100ms until it reports done, failing t after timeout with the
// last result.
func eventually(t *testing.T, timeout time.Duration, check func() (Result, bool)) Result {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, done := check()
		if done {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("not done after %s, last result %+v", timeout, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
