package main

import (
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var d dist
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 90: 90 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := d.pct(p); got != want {
			t.Errorf("P%g = %v, want %v", p, got, want)
		}
	}
	d = append(d[:98], lost, lost)
	if got := d.pct(99); got != lost {
		t.Errorf("P99 with two lost of 100 = %v, want lost", got)
	}
	if d.lostCount() != 2 {
		t.Errorf("lostCount = %d", d.lostCount())
	}
}

func TestParseRequests(t *testing.T) {
	text := `# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 7
apiserver_request_total{code="409",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="status",verb="PUT",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 2e+00
`
	before, err := parseRequests(text)
	if err != nil {
		t.Fatal(err)
	}
	after := requestCounts{}
	for k, v := range before {
		after[k] = v * 2
	}
	w := writesBetween(before, after)
	if got := w.total(nil); got != 14 {
		t.Errorf("writes = %d, want 14 (%v)", got, w)
	}
	if got := w.total(convoyRemoteWrite); got != 8 {
		t.Errorf("convoy-kind writes = %d, want 8 (%v)", got, w)
	}
}
