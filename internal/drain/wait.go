package drain

import (
	"context"
	"fmt"
	"io"
	"time"
)

// WaitOptions configure WaitForDrain.
type WaitOptions struct {
	Ports []uint16
	// MinDelay is always waited first: it covers endpoint removal propagating to every
	// kube-proxy and Envoy, during which new connections still arrive.
	MinDelay time.Duration
	// Timeout bounds the whole wait, MinDelay included.
	Timeout time.Duration
	// Poll is the interval between reads of the socket tables.
	Poll time.Duration
	// Files are the socket tables to read (DefaultProcNetFiles in production).
	Files []string
	// Log receives one line per change of the observed counts and the final verdict.
	Log io.Writer
}

// Outcome says why WaitForDrain returned.
type Outcome string

const (
	Drained  Outcome = "drained"
	TimedOut Outcome = "timeout"
)

// WaitForDrain waits MinDelay, then until no ESTABLISHED connection is left on the ports or
// Timeout has passed since the start, whichever comes first.
func WaitForDrain(ctx context.Context, o WaitOptions) (Outcome, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ports := make(map[uint16]bool, len(o.Ports))
	for _, p := range o.Ports {
		ports[p] = true
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "convoy-drain: t=%.1fs "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
		}
	}
	logf("waiting %s for endpoint removal to propagate, then for connections on ports %v to close (timeout %s)", o.MinDelay, o.Ports, o.Timeout)

	select {
	case <-time.After(o.MinDelay):
	case <-ctx.Done():
		logf("timeout during the minimum delay")
		return TimedOut, nil
	}
	last := ""
	ticker := time.NewTicker(o.Poll)
	defer ticker.Stop()
	for {
		counts, err := ReadCounts(o.Files, ports)
		if err != nil {
			// Without the socket tables the only safe thing is to keep the pod serving
			// until the timeout: returning now would send SIGTERM early.
			logf("cannot read socket tables (%v); waiting for the timeout", err)
			<-ctx.Done()
			return TimedOut, nil
		}
		if s := counts.String(); s != last {
			logf("established connections (port:count): %s", s)
			last = s
		}
		if counts.Total() == 0 {
			logf("drained")
			return Drained, nil
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			logf("timeout with %d connections still established (%s)", counts.Total(), counts)
			return TimedOut, nil
		}
	}
}
