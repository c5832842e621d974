// Package shutdown is a scale-in harness: a backend being terminated while a load generator
// sends it traffic through a proxy that removes it after a lag, with each PreStop choice.
// It counts failed requests and the time the backend took to terminate.
package shutdown

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convoy-dev/convoy/internal/drain"
)

// Budget is the sample GracefulShutdownPolicy's (config/samples/gracefulshutdownpolicy.yaml).
var Budget = struct {
	MinDelay, Settle, IdleThreshold, PreStopTimeout, AppShutdown, Grace time.Duration
}{5 * time.Second, 2 * time.Second, 2 * time.Second, 30 * time.Second, 10 * time.Second, 45 * time.Second}

// ProxyKind is how traffic reaches the backends.
type ProxyKind string

const (
	// KubeProxy forwards each TCP connection to a backend chosen when it opens; established
	// connections keep flowing to a removed backend (conntrack).
	KubeProxy ProxyKind = "kube-proxy-like"
	// Envoy balances requests over per-backend pools; a removed backend gets no new requests
	// and its idle pooled connections are closed.
	Envoy ProxyKind = "Envoy-like"
)

// PreStop is what runs between the deletion and SIGTERM.
type PreStop struct {
	Name string
	// Sleep is a fixed PreStop sleep (when Wait is false and DrainCall is false).
	Sleep time.Duration
	// Wait runs convoy-drain's wait on the backend's port.
	Wait bool
	// DrainCall is drainConnections with a drainEndpoint: it calls the backend's drain
	// endpoint first (the backend then answers with Connection: close while it keeps
	// listening), then waits like Wait.
	DrainCall bool
	// LeaveOpen waits with idleThresholdSeconds: 0, leaving open connections to SIGTERM.
	LeaveOpen bool
}

// Setup is one cell of the table.
type Setup struct {
	Proxy     ProxyKind
	KeepAlive bool
	Lag       time.Duration // from deletion to the endpoint's removal at the proxy
	PreStop   PreStop
	Rate      int // requests per second
}

func (s Setup) String() string {
	ka := "new connection per request"
	if s.KeepAlive {
		ka = "keep-alive"
	}
	return fmt.Sprintf("%s/%s/lag %s/%s", s.Proxy, ka, s.Lag, s.PreStop.Name)
}

// Result is what one run measured.
type Result struct {
	Requests, Failed int
	// Terminated is the time from deletion to the backend's exit.
	Terminated time.Duration
	// Killed says the grace period ran out.
	Killed bool
	// FirstErrors are up to three failures, to explain them.
	FirstErrors []string
	// DrainLog is what convoy-drain printed.
	DrainLog string
}

// backend is an HTTP server that handles SIGTERM gracefully, as docs/graceful-shutdown.md
// asks of applications: it stops accepting, finishes in-flight requests and closes
// keep-alive connections after their current response (net/http's Shutdown).
type backend struct {
	srv      *http.Server
	ln       net.Listener
	accepted atomic.Uint64
	draining atomic.Bool
}

func startBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{}
	b.ln = &countingListener{Listener: ln, accepted: &b.accepted}
	mux := http.NewServeMux()
	mux.HandleFunc("/drain", func(w http.ResponseWriter, _ *http.Request) {
		b.draining.Store(true)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(5 * time.Millisecond) // some work
		if b.draining.Load() {
			w.Header().Set("Connection", "close") // clients reconnect: routing decides again
		}
		_, _ = io.WriteString(w, "ok")
	})
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	go func() { _ = b.srv.Serve(b.ln) }()
	return b, nil
}

func (b *backend) addr() string { return b.ln.Addr().String() }
func (b *backend) port() uint16 { return uint16(b.ln.Addr().(*net.TCPAddr).Port) }

type countingListener struct {
	net.Listener
	accepted *atomic.Uint64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// endpoints is the proxy's view of the backends.
type endpoints struct {
	mu    sync.Mutex
	addrs []string
	next  int
}

func (e *endpoints) pick() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	return e.addrs[e.next%len(e.addrs)]
}

func (e *endpoints) remove(addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, a := range e.addrs {
		if a == addr {
			e.addrs = append(e.addrs[:i:i], e.addrs[i+1:]...)
			return
		}
	}
}

// startKubeProxy forwards connections; a backend that refuses gets the client's connection
// closed, as a kube-proxy rule pointing at a closed port does.
func startKubeProxy(eps *endpoints) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				server, err := net.Dial("tcp", eps.pick())
				if err != nil {
					return
				}
				defer server.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
				go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String(), func() { _ = ln.Close() }, nil
}

// startEnvoy balances requests; remove takes a backend out of rotation and closes its idle
// pooled connections, as Envoy drains a removed host.
func startEnvoy(eps *endpoints) (addr string, remove func(string), stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	var mu sync.Mutex
	pools := map[string]*http.Transport{}
	pool := func(addr string) *http.Transport {
		mu.Lock()
		defer mu.Unlock()
		if pools[addr] == nil {
			pools[addr] = &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
		}
		return pools[addr]
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: eps.pick()})
		},
		Transport: roundTripper(func(req *http.Request) (*http.Response, error) {
			return pool(req.URL.Host).RoundTrip(req)
		}),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		},
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	remove = func(addr string) {
		eps.remove(addr)
		pool(addr).CloseIdleConnections()
	}
	return ln.Addr().String(), remove, func() { _ = srv.Close() }, nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Run terminates one of two backends under load and reports what the clients saw.
func Run(ctx context.Context, s Setup) (Result, error) {
	leaving, err := startBackend()
	if err != nil {
		return Result{}, err
	}
	staying, err := startBackend()
	if err != nil {
		return Result{}, err
	}
	defer staying.srv.Close()
	defer leaving.srv.Close()
	eps := &endpoints{addrs: []string{leaving.addr(), staying.addr()}}
	var proxyAddr string
	var remove func(string)
	var stop func()
	switch s.Proxy {
	case KubeProxy:
		proxyAddr, stop, err = startKubeProxy(eps)
		remove = eps.remove
	default:
		proxyAddr, remove, stop, err = startEnvoy(eps)
	}
	if err != nil {
		return Result{}, err
	}
	defer stop()

	// Keep-alive clients are four, each holding one connection, as four client pods would:
	// a proxy that balances connections pins some of them to the leaving backend.
	var clients []*http.Client
	for range 4 {
		clients = append(clients, &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: !s.KeepAlive, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1,
		}})
	}
	var res Result
	var mu sync.Mutex
	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(s.Rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			client := clients[i%len(clients)]
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := get(client, "http://"+proxyAddr+"/")
				mu.Lock()
				res.Requests++
				if err != nil {
					res.Failed++
					if len(res.FirstErrors) < 3 {
						res.FirstErrors = append(res.FirstErrors, err.Error())
					}
				}
				mu.Unlock()
			}()
		}
	}()
	time.Sleep(time.Second) // warm up: keep-alive connections exist when the pod is deleted

	deleted := time.Now()
	removal := time.AfterFunc(s.Lag, func() { remove(leaving.addr()) })
	defer removal.Stop()
	var drainLog syncBuffer
	runPreStop(ctx, s.PreStop, leaving, &drainLog)

	// SIGTERM: graceful shutdown; SIGKILL when the grace period runs out.
	killAt := deleted.Add(Budget.Grace)
	shutdownCtx, cancel := context.WithDeadline(ctx, killAt)
	if err := leaving.srv.Shutdown(shutdownCtx); errors.Is(err, context.DeadlineExceeded) {
		_ = leaving.srv.Close()
		res.Killed = true
	}
	cancel()
	res.Terminated = time.Since(deleted)

	// Keep the load on until the removal has happened and a little after.
	time.Sleep(max(s.Lag-time.Since(deleted), 0) + time.Second)
	stopLoad()
	wg.Wait()
	res.DrainLog = drainLog.String()
	return res, nil
}

func runPreStop(ctx context.Context, p PreStop, b *backend, log io.Writer) {
	switch {
	case p.DrainCall:
		drain.Call(ctx, "http://"+b.addr()+"/drain", 5*time.Second, log)
		fallthrough
	case p.Wait:
		scanner, err := drain.NewScanner([]uint16{b.port()})
		if err != nil {
			fmt.Fprintf(log, "no socket diagnostics: %v\n", err)
			time.Sleep(Budget.PreStopTimeout)
			return
		}
		defer scanner.Close()
		idle := Budget.IdleThreshold
		if p.LeaveOpen {
			idle = 0
		}
		drain.WaitForDrain(ctx, drain.WaitOptions{
			Ports: []uint16{b.port()}, MinDelay: Budget.MinDelay, Settle: Budget.Settle, IdleAfter: idle, Timeout: Budget.PreStopTimeout,
			Poll: 250 * time.Millisecond, ConnectionScanInterval: time.Second, Log: log,
			// In a pod, the network namespace's accepted-connection counter counts the
			// application's connections. The harness shares one namespace with its proxy and
			// clients, so the backend's own accept count stands in for it.
			Scan: func(conns bool) (drain.Snapshot, error) {
				snap, err := scanner.Scan(conns)
				snap.PassiveOpens = b.accepted.Load()
				return snap, err
			},
		})
	default:
		time.Sleep(p.Sleep)
	}
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
