package remote

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// Only responses of a server that can serve count as answers: 429 and 5xx come from an
// overloaded or broken server.
func TestAnswersCountsServingResponses(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	clk := clocktesting.NewFakeClock(time.Now())
	for _, tc := range []struct {
		status int
		want   bool
	}{
		{http.StatusOK, true},
		{http.StatusNotFound, true},
		{http.StatusConflict, true},
		{http.StatusUnauthorized, true}, // an answer; the probe's own error decides what it means
		{http.StatusTooManyRequests, false},
		{http.StatusServiceUnavailable, false},
		{http.StatusGatewayTimeout, false},
	} {
		a := &answers{clock: clk}
		client := &http.Client{Transport: a.wrap(http.DefaultTransport)}
		status = tc.status
		before := clk.Now()
		if a.since(before) {
			t.Fatalf("%d: answered before any request", tc.status)
		}
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := a.since(before); got != tc.want {
			t.Errorf("status %d counted as an answer: %v, want %v", tc.status, got, tc.want)
		}
		clk.Step(time.Second)
		if a.since(clk.Now()) {
			t.Errorf("status %d: an answer before t counted as one since t", tc.status)
		}
	}
}
