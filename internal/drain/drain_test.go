package drain

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCountEstablished(t *testing.T) {
	// Lines as the kernel prints them: 1F90 = 8080, 01 = ESTABLISHED, 0A = LISTEN, 06 = TIME_WAIT.
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
   4: 0100007F:1F90 0100007F:D433 06 00000000:00000000 00:00000000 00000000     0        0 0 0 0 0 0 0 0 0
   5: 0100007F:20FB 0100007F:D434 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0 20 4 30 10 -1
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 6 1 0 20 4 30 10 -1
`
	counts := Counts{}
	ports := map[uint16]bool{8080: true, 8443: true}
	for _, table := range []string{tcp, tcp6} {
		if err := CountEstablished(strings.NewReader(table), ports, counts); err != nil {
			t.Fatal(err)
		}
	}
	// 8080: two IPv4 and one IPv6 server-side socket. Not counted: the listener, the client
	// side of a loopback connection (local port D431), TIME_WAIT. 8443 (0x20FB): one.
	if counts[8080] != 3 {
		t.Errorf("port 8080: got %d established, want 3 (%v)", counts[8080], counts)
	}
	if counts[8443] != 1 {
		t.Errorf("port 8443: got %d established, want 1 (%v)", counts[8443], counts)
	}
	if got := counts.String(); got != "8080:3 8443:1" {
		t.Errorf("String() = %q", got)
	}

	if err := CountEstablished(strings.NewReader("header\n 0: 0100007F:ZZZZ 0100007F:1 01\n"), ports, Counts{}); err == nil {
		t.Error("malformed port must be an error")
	}
}

// listen starts a server on network/address that accepts and holds connections open until
// they are closed by the peer.
func listen(t *testing.T, network, address string) (net.Listener, uint16) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, address, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// Hold the connection until the client closes it, then close ours.
				buf := make([]byte, 1)
				_, _ = c.Read(buf)
				_ = c.Close()
			}()
		}
	}()
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

func dial(t *testing.T, ln net.Listener, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

type result struct {
	outcome Outcome
	err     error
	after   time.Duration
}

func startWait(o WaitOptions) <-chan result {
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, err := WaitForDrain(context.Background(), o)
		done <- result{out, err, time.Since(start)}
	}()
	return done
}

func TestWaitForDrainWithRealSockets(t *testing.T) {
	for _, tc := range []struct{ name, network, address string }{
		{"IPv4", "tcp4", "127.0.0.1:0"},
		{"IPv6", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name+"/waits while connections are established and returns when they close", func(t *testing.T) {
			ln, port := listen(t, tc.network, tc.address)
			conns := dial(t, ln, 3)
			var log bytes.Buffer
			done := startWait(WaitOptions{
				Ports: []uint16{port}, MinDelay: 100 * time.Millisecond, Timeout: 20 * time.Second,
				Poll: 20 * time.Millisecond, Files: DefaultProcNetFiles, Log: &log,
			})
			select {
			case r := <-done:
				t.Fatalf("returned %s after %s with 3 connections open\n%s", r.outcome, r.after, log.String())
			case <-time.After(700 * time.Millisecond):
			}
			for _, c := range conns {
				_ = c.Close()
			}
			closedAt := time.Now()
			select {
			case r := <-done:
				if r.err != nil || r.outcome != Drained {
					t.Fatalf("outcome %s, err %v\n%s", r.outcome, r.err, log.String())
				}
				if wait := time.Since(closedAt); wait > 5*time.Second {
					t.Errorf("took %s after the last connection closed", wait)
				}
				if !strings.Contains(log.String(), "established connections (port:count): "+itoa(port)+":3") {
					t.Errorf("log does not show the 3 connections it saw:\n%s", log.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still waiting 15s after all connections closed\n%s", log.String())
			}
		})

		t.Run(tc.name+"/gives up at the timeout when connections stay open", func(t *testing.T) {
			ln, port := listen(t, tc.network, tc.address)
			conns := dial(t, ln, 1)
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			var log bytes.Buffer
			r := <-startWait(WaitOptions{
				Ports: []uint16{port}, MinDelay: 50 * time.Millisecond, Timeout: 600 * time.Millisecond,
				Poll: 20 * time.Millisecond, Files: DefaultProcNetFiles, Log: &log,
			})
			if r.err != nil || r.outcome != TimedOut {
				t.Fatalf("outcome %s, err %v\n%s", r.outcome, r.err, log.String())
			}
			if r.after < 600*time.Millisecond {
				t.Errorf("returned after %s, before the timeout", r.after)
			}
			if !strings.Contains(log.String(), "timeout with 1 connections still established") {
				t.Errorf("log does not explain the timeout:\n%s", log.String())
			}
		})
	}

	t.Run("always waits the minimum delay", func(t *testing.T) {
		r := <-startWait(WaitOptions{
			Ports: []uint16{1}, MinDelay: 300 * time.Millisecond, Timeout: 5 * time.Second,
			Poll: 20 * time.Millisecond, Files: DefaultProcNetFiles,
		})
		if r.outcome != Drained || r.after < 300*time.Millisecond {
			t.Fatalf("outcome %s after %s; want drained after at least the minimum delay", r.outcome, r.after)
		}
	})
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
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func TestWaitForDrainKeepsWaitingWhenSocketTablesCannotBeRead(t *testing.T) {
	var log bytes.Buffer
	r := <-startWait(WaitOptions{
		Ports: []uint16{8080}, MinDelay: 0, Timeout: 300 * time.Millisecond,
		Poll: 20 * time.Millisecond, Files: []string{t.TempDir()}, Log: &log, // a directory cannot be read as a table
	})
	if r.err != nil || r.outcome != TimedOut || r.after < 300*time.Millisecond {
		t.Fatalf("outcome %s err %v after %s; want a timeout, never an early return\n%s", r.outcome, r.err, r.after, log.String())
	}
	if !strings.Contains(log.String(), "cannot read socket tables") {
		t.Errorf("log: %s", log.String())
	}
}
