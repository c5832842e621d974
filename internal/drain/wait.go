// Package drain holds the logic of convoy-drain, the PreStop helper that convoy injects into
// pods: keep the pod serving until traffic has stopped arriving on its serving ports, or call
// the application's drain endpoint first.
package drain

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// WaitOptions configure WaitForDrain.
type WaitOptions struct {
	Ports []uint16
	// MinDelay is always waited: it covers endpoint removal propagating to every kube-proxy
	// and Envoy while clients that keep their connections show no new activity.
	MinDelay time.Duration
	// Settle is how long the ports must stay quiet — no new connection, no busy one — before
	// the wait ends. One quiet reading proves little: at a low request rate the next
	// connection can be seconds away.
	Settle time.Duration
	// IdleAfter, when positive, counts a connection that carried data within it as busy:
	// pooling proxies (Envoy) keep sending over their connections until the endpoint removal
	// reaches them. Zero leaves open connections to the application's SIGTERM handling:
	// behind kube-proxy keep-alive connections keep flowing after the endpoint is removed, so
	// waiting for them to go quiet can wait for the timeout. Queued bytes and a response
	// still being sent after the client closed its side (CLOSE_WAIT) always count.
	IdleAfter time.Duration
	// Timeout bounds the whole wait, MinDelay included.
	Timeout time.Duration
	// Poll is the interval between scans of listeners and counters (cheap; they see new
	// connections).
	Poll time.Duration
	// ConnectionScanInterval is the interval between scans of the connections themselves
	// (what makes them busy; about a millisecond of CPU each).
	ConnectionScanInterval time.Duration
	// Scan reads the accepted-connection count and the sockets on Ports, connections
	// included when asked (Scanner.Scan in production).
	Scan func(connections bool) (Snapshot, error)
	// Log receives the decisions: what was waited for, what changed, and the verdict.
	Log io.Writer
}

// Outcome says why WaitForDrain returned.
type Outcome string

const (
	Drained  Outcome = "drained"
	TimedOut Outcome = "timeout"
)

// sendingAfterClose is how recently a CLOSE_WAIT socket must have sent data to count as a
// response still being delivered.
const sendingAfterClose = time.Second

// Activity is what one scan saw on the watched ports.
type Activity struct {
	// Listening are the ports with a listener.
	Listening []uint16
	// Open counts the connections (established, establishing or closing with data left).
	Open int
	// Arrived counts connections accepted since the previous scan.
	Arrived int
	// Busy counts connections with unread data, a response still being sent after the
	// client closed, or traffic within IdleAfter; plus connections waiting to be accepted.
	Busy int
}

// Quiet reports whether nothing on the ports needs the pod to keep serving.
func (a Activity) Quiet() bool { return a.Arrived == 0 && a.Busy == 0 }

func (a Activity) String() string {
	return fmt.Sprintf("%d open, %d new, %d busy", a.Open, a.Arrived, a.Busy)
}

// tracker turns consecutive scans into Activity.
type tracker struct {
	idleAfter time.Duration
	scanned   bool   // a scan has set opens
	opens     uint64 // PassiveOpens of the previous scan
	// seen holds the cookies of the last connection scan (nil before the first); conns is
	// what it found, carried over by the scans that read only listeners and counters.
	seen  map[uint64]bool
	conns Activity
}

// assess is what snap shows compared with the previous scan. The first scan's connections
// are not new. A connection is new if its cookie was not seen before; the accepted-connection
// count also catches those that opened and closed between the scans.
func (t *tracker) assess(snap Snapshot) Activity {
	var a Activity
	for _, s := range snap.Sockets {
		if s.Listening() {
			if !slices.Contains(a.Listening, s.LocalPort) {
				a.Listening = append(a.Listening, s.LocalPort)
			}
			a.Busy += int(s.RecvQueue) // connections in the accept queue
		}
	}
	slices.Sort(a.Listening)
	if snap.Connections {
		t.conns = t.assessConnections(snap.Sockets)
	}
	a.Open, a.Busy, a.Arrived = t.conns.Open, a.Busy+t.conns.Busy, t.conns.Arrived
	if t.scanned && snap.PassiveOpens > t.opens {
		a.Arrived = max(a.Arrived, int(snap.PassiveOpens-t.opens))
	}
	t.scanned, t.opens = true, snap.PassiveOpens
	t.conns.Arrived = 0 // counted once
	return a
}

func (t *tracker) assessConnections(socks []Socket) Activity {
	var a Activity
	now := make(map[uint64]bool, len(socks))
	for _, s := range socks {
		if s.Listening() {
			continue
		}
		now[s.Cookie] = true
		a.Open++
		if t.seen != nil && !t.seen[s.Cookie] {
			a.Arrived++
		}
		// Unacknowledged bytes of an established connection do not count: delayed ACKs leave
		// every response unacknowledged for up to 40 ms, so request/response traffic would
		// look busy at any scan; the application's graceful shutdown completes its responses.
		switch {
		case s.Unread() > 0:
			a.Busy++
		case s.State == tcpCloseWait && (s.SendQueue > 0 || s.SinceSend < sendingAfterClose):
			a.Busy++
		case s.State == tcpSynRecv:
			a.Busy++
		case t.idleAfter > 0 && min(s.SinceSend, s.SinceRecv) < t.idleAfter:
			a.Busy++
		}
	}
	t.seen = now
	return a
}

// forget makes the next scan a first scan: after a failed scan, what was seen is stale.
func (t *tracker) forget() { *t = tracker{idleAfter: t.idleAfter} }

// WaitForDrain scans the ports every Poll from the start and returns once MinDelay has passed
// and the ports have been quiet for Settle, or at Timeout. A scan that fails makes the state
// unknown, and unknown is never drained: the wait goes on, to the timeout if need be.
func WaitForDrain(ctx context.Context, o WaitOptions) (Outcome, Activity) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "convoy-drain: t=%.1fs "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
		}
	}
	idle := "open connections are left to the application's SIGTERM handling"
	if o.IdleAfter > 0 {
		idle = fmt.Sprintf("a connection with traffic in the last %s is busy", o.IdleAfter)
	}
	logf("waiting at least %s, then for ports %v to be quiet (no new or busy connection) for %s; %s; timeout %s",
		o.MinDelay, o.Ports, o.Settle, idle, o.Timeout)

	var (
		track        = &tracker{idleAfter: o.IdleAfter}
		last         Activity
		lastLine     string
		quietFrom    = start
		lastConnScan time.Time
		warned       = map[string]bool{}
		ticker       = time.NewTicker(o.Poll)
	)
	defer ticker.Stop()
	warnOnce := func(msg string) {
		if !warned[msg] {
			warned[msg] = true
			logf("WARNING: %s", msg)
		}
	}
	for {
		// Connections are read on their own interval, and whenever the cheap scans say the
		// wait could end: it ends only if the connections agree.
		now := time.Now()
		due := now.Sub(start) >= o.MinDelay && now.Sub(quietFrom) >= o.Settle
		full := due || now.Sub(lastConnScan) >= o.ConnectionScanInterval
		snap, err := o.Scan(full)
		if full && err == nil {
			lastConnScan = now
		}
		if err != nil {
			warnOnce(fmt.Sprintf("cannot read the sockets (%v); the pod keeps serving until the timeout", err))
			quietFrom = now
			track.forget()
		} else {
			last = track.assess(snap)
			for _, p := range o.Ports {
				if !slices.Contains(last.Listening, p) {
					warnOnce(fmt.Sprintf("nothing listens on port %d: no traffic can be seen there; check the policy's ports against the container's", p))
				}
			}
			if !last.Quiet() {
				quietFrom = now
			}
			if line := last.String(); line != lastLine {
				logf("%s", line)
				lastLine = line
			}
			if now.Sub(start) >= o.MinDelay && now.Sub(quietFrom) >= o.Settle && full {
				logf("drained: quiet for %s (%s); %s", now.Sub(quietFrom).Round(100*time.Millisecond), last, remaining(last))
				return Drained, last
			}
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			logf("timeout: %s; %s", last, remaining(last))
			return TimedOut, last
		}
	}
}

func remaining(a Activity) string {
	if a.Open == 0 {
		return "no connection left"
	}
	return fmt.Sprintf("%d connection(s) left for the application's SIGTERM handling to close", a.Open)
}
