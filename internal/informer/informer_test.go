package informer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func refused() error {
	return &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

func TestUnreachable(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused(), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"connection closed mid-request", io.ErrUnexpectedEOF, true},
		{"429 too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"503 service unavailable", apierrors.NewServiceUnavailable("starting"), true},
		{"dial timeout (host down)", &url.Error{Op: "Get", URL: "https://10.0.0.1/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}}, true},
		{"no route to host", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, true},
		{"name lookup failed", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.example"}}, true},
		{"502 from a load balancer", apierrors.NewGenericServerResponse(http.StatusBadGateway, "get", gr, "", "", 0, false), true},
		{"504 from a load balancer", apierrors.NewGenericServerResponse(http.StatusGatewayTimeout, "get", gr, "", "", 0, false), true},
		{"500 internal error", apierrors.NewInternalError(errors.New("boom")), false},
		{"403 forbidden", apierrors.NewForbidden(gr, "", errors.New("no")), false},
		{"410 expired", apierrors.NewResourceExpired("too old resource version"), false},
		{"404 not found", apierrors.NewNotFound(gr, "x"), false},
		{"deadline", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Unreachable(tc.err); got != tc.want {
				t.Errorf("Unreachable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// scriptedLW fails its first calls with the given errors, then succeeds.
type scriptedLW struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (s *scriptedLW) next() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

func (s *scriptedLW) List(metav1.ListOptions) (runtime.Object, error) {
	if err := s.next(); err != nil {
		return nil, err
	}
	return &corev1.ConfigMapList{}, nil
}

func (s *scriptedLW) Watch(metav1.ListOptions) (watch.Interface, error) {
	if err := s.next(); err != nil {
		return nil, err
	}
	return watch.NewEmptyWatch(), nil
}

func TestRetryingRetriesOnlyUnreachable(t *testing.T) {
	ctx := context.Background()
	t.Run("refused then served", func(t *testing.T) {
		lw := &scriptedLW{errs: []error{refused(), apierrors.NewServiceUnavailable("x"), refused()}}
		if _, err := withContext(lw).ListWithContext(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("List: %v", err)
		}
		if _, err := withContext(lw).WatchWithContext(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if lw.calls != 5 {
			t.Errorf("calls = %d, want 5 (3 failures, one list, one watch)", lw.calls)
		}
	})
	t.Run("forbidden goes to the reflector at once", func(t *testing.T) {
		lw := &scriptedLW{errs: []error{apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("no"))}}
		if _, err := withContext(lw).ListWithContext(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("List error = %v, want Forbidden", err)
		}
		if lw.calls != 1 {
			t.Errorf("calls = %d, want 1", lw.calls)
		}
	})
	t.Run("ends with its context", func(t *testing.T) {
		errs := make([]error, 1000)
		for i := range errs {
			errs[i] = refused()
		}
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := withContext(&scriptedLW{errs: errs}).WatchWithContext(ctx, metav1.ListOptions{})
		if !Unreachable(err) {
			t.Fatalf("Watch error = %v, want the last connection error", err)
		}
	})
}

// outageProxy forwards TCP to a backend. down closes the listener and every connection, so
// clients see "connection refused" as from a stopped API server; up listens again on the same
// address.
type outageProxy struct {
	addr, backend string
	mu            sync.Mutex
	ln            net.Listener
	conns         []net.Conn
}

func (p *outageProxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", p.backend)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); _ = b.Close() }()
			go func() { _, _ = io.Copy(c, b); _ = c.Close() }()
		}
	}()
}

func (p *outageProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// TestCacheResumesSoonAfterOutage runs a real kube-apiserver behind a proxy that refuses
// connections for 20 s. An object created right after the outage must reach the cache within
// 5 s. A plain informer's reflector is, by then, deep in its backoff (attempts 1.5, 3.5, 9 and
// 20 s into the outage in one run, the next one 20 s later) and usually misses it.
func TestCacheResumesSoonAfterOutage(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kube-apiserver and etcd")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	defer func() { _ = env.Stop() }()
	direct, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	backend, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &outageProxy{addr: "127.0.0.1:0", backend: backend.Host}
	proxy.up(t)
	defer proxy.down()
	viaProxy := rest.CopyConfig(cfg)
	viaProxy.Host = "https://" + proxy.addr

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := cache.New(viaProxy, cache.Options{NewInformer: NewSharedIndexInformer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetInformer(ctx, &corev1.ConfigMap{}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}

	proxy.down()
	time.Sleep(20 * time.Second)
	proxy.up(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "after-outage"}}
	if err := direct.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
		if err == nil {
			t.Logf("Cache saw the object %v after it was created", time.Since(created).Round(10*time.Millisecond))
			return
		}
		if time.Since(created) > 5*time.Second {
			t.Fatalf("cache did not see an object created after a 20 s outage within 5 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func withContext(lw toolscache.ListerWatcher) toolscache.ListerWatcherWithContext {
	return Retrying(lw).(toolscache.ListerWatcherWithContext)
}
