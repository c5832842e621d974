package drain

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAssess(t *testing.T) {
	listener := Socket{State: tcpListen, LocalPort: 8080, Cookie: 1}
	idle := Socket{State: tcpEstablished, LocalPort: 8080, Cookie: 2, SinceSend: time.Minute, SinceRecv: time.Minute}
	recent := Socket{State: tcpEstablished, LocalPort: 8080, Cookie: 3, SinceSend: 100 * time.Millisecond, SinceRecv: 200 * time.Millisecond}
	for _, tc := range []struct {
		name      string
		socks     []Socket
		seen      map[uint64]bool
		idleAfter time.Duration
		want      Activity
	}{
		{"first scan: nothing is new", []Socket{listener, idle, recent}, nil, 0,
			Activity{Listening: []uint16{8080}, Open: 2}},
		{"a connection not seen before arrived", []Socket{listener, idle, recent}, map[uint64]bool{2: true}, 0,
			Activity{Listening: []uint16{8080}, Open: 2, Arrived: 1}},
		{"keep-alive traffic is left to SIGTERM handling by default", []Socket{recent}, map[uint64]bool{3: true}, 0,
			Activity{Open: 1}},
		{"with idleAfter, recent traffic is busy", []Socket{idle, recent}, map[uint64]bool{2: true, 3: true}, time.Second,
			Activity{Open: 2, Busy: 1}},
		{"unread request bytes", []Socket{{State: tcpEstablished, Cookie: 4, RecvQueue: 120, SinceSend: time.Minute, SinceRecv: time.Minute}}, map[uint64]bool{4: true}, 0,
			Activity{Open: 1, Busy: 1}},
		{"unacknowledged response bytes alone (a delayed ACK) are not busy", []Socket{{State: tcpEstablished, Cookie: 4, SendQueue: 4096, SinceSend: 30 * time.Millisecond, SinceRecv: 35 * time.Millisecond}}, map[uint64]bool{4: true}, 0,
			Activity{Open: 1}},
		{"but the same traffic is busy with idleAfter", []Socket{{State: tcpEstablished, Cookie: 4, SendQueue: 4096, SinceSend: 30 * time.Millisecond, SinceRecv: 35 * time.Millisecond}}, map[uint64]bool{4: true}, 2 * time.Second,
			Activity{Open: 1, Busy: 1}},
		{"a download to a client that closed its side, unacknowledged", []Socket{{State: tcpCloseWait, Cookie: 7, RecvQueue: 1, SendQueue: 65536, SinceSend: 3 * time.Second, SinceRecv: 3 * time.Second}}, map[uint64]bool{7: true}, 0,
			Activity{Open: 1, Busy: 1}},
		{"client closed its side while the response is still being sent", []Socket{{State: tcpCloseWait, Cookie: 5, RecvQueue: 1, SinceSend: 10 * time.Millisecond, SinceRecv: 3 * time.Second}}, map[uint64]bool{5: true}, 0,
			Activity{Open: 1, Busy: 1}},
		{"CLOSE_WAIT with nothing sent for long is not busy (its FIN is not unread data)", []Socket{{State: tcpCloseWait, Cookie: 5, RecvQueue: 1, SinceSend: 5 * time.Second, SinceRecv: 5 * time.Second}}, map[uint64]bool{5: true}, 0,
			Activity{Open: 1}},
		{"a handshake in progress", []Socket{{State: tcpSynRecv, Cookie: 6}}, map[uint64]bool{6: true}, 0,
			Activity{Open: 1, Busy: 1}},
		{"connections waiting to be accepted", []Socket{{State: tcpListen, LocalPort: 8080, RecvQueue: 3}}, nil, 0,
			Activity{Listening: []uint16{8080}, Busy: 3}},
		{"connections opened and closed between two scans", nil, map[uint64]bool{}, 0,
			Activity{Arrived: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &tracker{idleAfter: tc.idleAfter, scanned: tc.seen != nil, seen: tc.seen, opens: 10}
			opens := uint64(10)
			if tc.seen != nil && len(tc.socks) == 0 {
				opens = 12
			}
			got := tr.assess(Snapshot{Sockets: tc.socks, Connections: true, PassiveOpens: opens})
			if got.String() != tc.want.String() || len(got.Listening) != len(tc.want.Listening) {
				t.Errorf("got %s listening %v, want %s listening %v", got, got.Listening, tc.want, tc.want.Listening)
			}
			for _, s := range tc.socks {
				if !s.Listening() && !tr.seen[s.Cookie] {
					t.Errorf("connection %d is not remembered for the next scan", s.Cookie)
				}
			}
		})
	}
}

func listen(t *testing.T, network, address string) (net.Listener, uint16) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Skipf("%s not available: %v", network, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

// connect opens a connection to ln and returns both ends.
func connect(t *testing.T, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

func newScanner(t *testing.T, ports ...uint16) *Scanner {
	t.Helper()
	s, err := NewScanner(ports)
	if err != nil {
		t.Fatalf("socket diagnostics unavailable: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The kernel returns exactly the sockets on the watched ports, with queues and states.
func TestScannerWithRealSockets(t *testing.T) {
	for _, tc := range []struct{ name, network, address string }{
		{"IPv4", "tcp4", "127.0.0.1:0"},
		{"IPv6", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, port := listen(t, tc.network, tc.address)
			other, _ := listen(t, tc.network, tc.address)
			connect(t, other) // another port: filtered out by the kernel
			quiet, _ := connect(t, ln)
			_ = quiet
			writer, _ := connect(t, ln)
			if _, err := writer.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			closer, _ := connect(t, ln)
			_ = closer.Close() // the server side stays open: CLOSE_WAIT

			var socks []Socket
			deadline := time.Now().Add(5 * time.Second)
			for {
				snap, err := newScanner(t, port).Scan(true)
				if err != nil {
					t.Fatal(err)
				}
				socks = snap.Sockets
				if summary(socks) == "listen:1 established:2 close-wait:1 unread:1" || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got := summary(socks); got != "listen:1 established:2 close-wait:1 unread:1" {
				t.Fatalf("sockets on port %d: %s (%+v)", port, got, socks)
			}
			for _, s := range socks {
				if s.LocalPort != port {
					t.Errorf("socket on port %d returned for a scan of port %d", s.LocalPort, port)
				}
			}
		})
	}
}

func summary(socks []Socket) string {
	var listen, est, cw, unread int
	for _, s := range socks {
		switch s.State {
		case tcpListen:
			listen++
		case tcpEstablished:
			est++
		case tcpCloseWait:
			cw++
		}
		if s.State != tcpListen && s.Unread() > 0 {
			unread++
		}
	}
	return strings.Join([]string{
		"listen:" + itoa(listen), "established:" + itoa(est), "close-wait:" + itoa(cw), "unread:" + itoa(unread),
	}, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

type result struct {
	outcome Outcome
	after   time.Duration
}

func startWait(o WaitOptions) <-chan result {
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, _ := WaitForDrain(context.Background(), o)
		done <- result{out, time.Since(start)}
	}()
	return done
}

func waitOptions(t *testing.T, port uint16, log io.Writer) WaitOptions {
	return WaitOptions{
		Ports: []uint16{port}, MinDelay: 200 * time.Millisecond, Settle: 500 * time.Millisecond,
		Timeout: 10 * time.Second, Poll: 20 * time.Millisecond, ConnectionScanInterval: 100 * time.Millisecond,
		Scan: newScanner(t, port).Scan, Log: log,
	}
}

// An idle keep-alive connection does not hold the pod: it is left to the app's SIGTERM
// handling, and the wait ends after the minimum delay and the settle period.
func TestWaitEndsWithIdleKeepAliveConnections(t *testing.T) {
	ln, port := listen(t, "tcp", "127.0.0.1:0")
	connect(t, ln)
	connect(t, ln)
	var log bytes.Buffer
	r := <-startWait(waitOptions(t, port, &log))
	if r.outcome != Drained || r.after > 2*time.Second {
		t.Fatalf("%s after %s with two idle connections; want drained after ~0.5 s\n%s", r.outcome, r.after, log.String())
	}
	if !strings.Contains(log.String(), "2 connection(s) left for the application's SIGTERM handling") {
		t.Errorf("the log does not say what was left:\n%s", log.String())
	}
}

// New connections keep arriving while routing still points at the pod; the wait ends a
// settle period after the last one, not at the first empty reading.
func TestWaitHoldsWhileConnectionsArrive(t *testing.T) {
	ln, port := listen(t, "tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var log bytes.Buffer
	done := startWait(waitOptions(t, port, &log))
	// Short requests at a low rate: each connection lives for a moment, then nothing is
	// open for 300 ms — a single reading would call that drained.
	stop := time.Now().Add(2 * time.Second)
	for time.Now().Before(stop) {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			_ = c.Close()
		}
		time.Sleep(300 * time.Millisecond)
	}
	stoppedAt := time.Now()
	select {
	case r := <-done:
		t.Fatalf("%s after %s while connections still arrived\n%s", r.outcome, r.after, log.String())
	default:
	}
	r := <-done
	after := time.Since(stoppedAt)
	if r.outcome != Drained || after > 1500*time.Millisecond {
		t.Fatalf("%s %s after the last connection; want drained about a settle period (0.5 s) later\n%s", r.outcome, after, log.String())
	}
}

// A response still being sent after the client closed its side (CLOSE_WAIT) holds the wait.
func TestWaitHoldsWhileAResponseIsSentAfterClientClose(t *testing.T) {
	ln, port := listen(t, "tcp", "127.0.0.1:0")
	client, server := connect(t, ln)
	if err := client.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, client) }()
	sendUntil := time.Now().Add(2 * time.Second)
	go func() {
		chunk := make([]byte, 1024)
		for time.Now().Before(sendUntil) {
			if _, err := server.Write(chunk); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var log bytes.Buffer
	r := <-startWait(waitOptions(t, port, &log))
	if r.outcome != Drained || time.Now().Before(sendUntil) {
		t.Fatalf("%s after %s while the download continued\n%s", r.outcome, r.after, log.String())
	}
}

// With idleAfter set, a keep-alive connection that carries requests holds the wait.
func TestWaitWithIdleAfterHoldsForTraffic(t *testing.T) {
	ln, port := listen(t, "tcp", "127.0.0.1:0")
	client, server := connect(t, ln)
	go func() { _, _ = io.Copy(io.Discard, server) }()
	trafficUntil := time.Now().Add(1500 * time.Millisecond)
	go func() {
		for time.Now().Before(trafficUntil) {
			_, _ = client.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	o := waitOptions(t, port, &bytes.Buffer{})
	o.IdleAfter = 300 * time.Millisecond
	r := <-startWait(o)
	if r.outcome != Drained || time.Now().Before(trafficUntil.Add(o.IdleAfter)) {
		t.Fatalf("%s after %s while requests still flowed", r.outcome, r.after)
	}
}

// Unknown state is never drained: a scan that fails keeps the pod serving to the timeout,
// and says so. A port nobody listens on is reported.
func TestWaitWarns(t *testing.T) {
	var log bytes.Buffer
	o := WaitOptions{
		Ports: []uint16{8080}, Settle: 50 * time.Millisecond, Timeout: 400 * time.Millisecond, Poll: 20 * time.Millisecond,
		Scan: func(bool) (Snapshot, error) { return Snapshot{}, errors.New("operation not permitted") }, Log: &log,
	}
	r := <-startWait(o)
	if r.outcome != TimedOut || r.after < 400*time.Millisecond {
		t.Fatalf("%s after %s; want the timeout", r.outcome, r.after)
	}
	if !strings.Contains(log.String(), "WARNING: cannot read the sockets (operation not permitted); the pod keeps serving until the timeout") {
		t.Errorf("log:\n%s", log.String())
	}

	log.Reset()
	_, port := listen(t, "tcp", "127.0.0.1:0")
	o = waitOptions(t, port+1, &log) // nothing listens there (almost surely)
	if r := <-startWait(o); r.outcome != Drained {
		t.Fatalf("%s", r.outcome)
	}
	if !strings.Contains(log.String(), "nothing listens on port") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestCallAndWait(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	var log bytes.Buffer
	start := time.Now()
	if err := CallAndWait(context.Background(), HTTPOptions{URL: srv.URL + "/drain", RequestTimeout: time.Second, Wait: 200 * time.Millisecond, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("drain endpoint called %d times", calls.Load())
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("did not wait after the call")
	}
	if !strings.Contains(log.String(), "202 Accepted") {
		t.Errorf("log: %s", log.String())
	}

	log.Reset()
	if err := CallAndWait(context.Background(), HTTPOptions{URL: "http://127.0.0.1:1/drain", RequestTimeout: time.Second, Wait: 10 * time.Millisecond, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "failed") {
		t.Errorf("a failed call must be reported: %s", log.String())
	}

	log.Reset()
	start = time.Now()
	if err := CallAndWait(context.Background(), HTTPOptions{URL: "http://127.0.0.1:8080/dr%zzain", RequestTimeout: time.Second, Wait: 200 * time.Millisecond, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 200*time.Millisecond || !strings.Contains(log.String(), "failed") {
		t.Errorf("a URL that cannot be used must be reported and the wait kept:\n%s", log.String())
	}
}

// BenchmarkScan measures scans with 1,000 connections on the watched port and 1,000 on
// another port (filtered out in the kernel): with connections, and of listeners and counters
// only (what most polls read).
func BenchmarkScan(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer other.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for _, l := range []net.Listener{ln, other} {
		for range 1000 {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			accepted, err := l.Accept()
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c, accepted)
		}
	}
	s, err := NewScanner([]uint16{uint16(ln.Addr().(*net.TCPAddr).Port)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, connections := range []bool{true, false} {
		b.Run(map[bool]string{true: "connections", false: "listeners-and-counters"}[connections], func(b *testing.B) {
			var n int
			for b.Loop() {
				snap, err := s.Scan(connections)
				if err != nil {
					b.Fatal(err)
				}
				n = len(snap.Sockets)
			}
			b.ReportMetric(float64(n), "sockets")
		})
	}
}
