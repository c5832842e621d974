package drain

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPOptions configure CallAndWait.
type HTTPOptions struct {
	URL string
	// RequestTimeout bounds the drain call.
	RequestTimeout time.Duration
	// Wait is slept after the call (whatever its result): the application stops taking new
	// work and the endpoint removal propagates meanwhile.
	Wait time.Duration
	Log  io.Writer
}

// CallAndWait calls the application's drain endpoint, then waits. A failed call, even with a
// URL that cannot be used, is reported, not fatal: the wait still protects in-flight
// requests, and skipping it would send SIGTERM at once.
func CallAndWait(ctx context.Context, o HTTPOptions) error {
	Call(ctx, o.URL, o.RequestTimeout, o.Log)
	fmt.Fprintf(o.Log, "convoy-drain: waiting %s\n", o.Wait)
	select {
	case <-time.After(o.Wait):
	case <-ctx.Done():
	}
	return nil
}

// Call calls the application's drain endpoint once and reports the answer or the failure.
func Call(ctx context.Context, url string, timeout time.Duration, log io.Writer) {
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var resp *http.Response
	req, err := http.NewRequestWithContext(callCtx, http.MethodGet, url, nil)
	if err == nil {
		resp, err = http.DefaultClient.Do(req)
	}
	if err != nil {
		fmt.Fprintf(log, "convoy-drain: drain call to %s failed: %v\n", url, err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	fmt.Fprintf(log, "convoy-drain: drain call to %s answered %s after %.1fs\n", url, resp.Status, time.Since(start).Seconds())
}
