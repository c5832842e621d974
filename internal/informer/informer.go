// Package informer makes convoy's informers resume within seconds after an API server outage.
//
// A client-go reflector backs off between list/watch attempts that fail while its API server
// is unreachable: 0.8 s doubling to 30 s, with up to 100 % jitter, reset only after two quiet
// minutes. SharedIndexInformer offers no option to change that. After a 20 s outage the
// reflector's next attempt can be 30 s or more away, and every change made in the meantime
// waits for it (measured: 32–42 s from a change to the service clusters).
//
// The ListerWatcher built here retries those failures itself, every 0.2–2 s, inside the
// reflector's call, until the call's context ends. The reflector sees one slow call instead
// of a failure and resumes about as soon as the server answers again. Failures an API server
// returns on purpose (Forbidden, Expired, NotFound) go to the reflector unchanged.
package informer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

const (
	minRetryDelay = 200 * time.Millisecond
	maxRetryDelay = 2 * time.Second
)

// NewSharedIndexInformer is a controller-runtime cache.Options.NewInformer: a shared index
// informer whose list and watch calls ride out an unreachable API server.
func NewSharedIndexInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(Retrying(lw), obj, resync, indexers)
}

// Retrying wraps lw so that list and watch calls that fail because the API server cannot be
// reached are retried inside the call until they succeed or their context ends. The result
// also implements toolscache.ListerWatcherWithContext, which reflectors use.
func Retrying(lw toolscache.ListerWatcher) toolscache.ListerWatcher {
	return retrying{inner: toolscache.ToListerWatcherWithContext(lw)}
}

type retrying struct {
	inner toolscache.ListerWatcherWithContext
}

func (r retrying) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	return retry(ctx, func() (runtime.Object, error) { return r.inner.ListWithContext(ctx, opts) })
}

func (r retrying) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return retry(ctx, func() (watch.Interface, error) { return r.inner.WatchWithContext(ctx, opts) })
}

// The deprecated context-free methods are part of toolscache.ListerWatcher; informers call
// the context variants.
func (r retrying) List(opts metav1.ListOptions) (runtime.Object, error) {
	return r.ListWithContext(context.Background(), opts)
}

func (r retrying) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return r.WatchWithContext(context.Background(), opts)
}

func retry[T any](ctx context.Context, call func() (T, error)) (T, error) {
	delay := minRetryDelay
	for {
		v, err := call()
		if err == nil || !Unreachable(err) {
			return v, err
		}
		timer := time.NewTimer(wait.Jitter(delay, 0.2))
		select {
		case <-ctx.Done():
			timer.Stop()
			return v, err
		case <-timer.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// Unreachable reports whether err says that the API server could not be reached or is not
// serving for now: a refused, reset or lost connection, a dial timeout, an unreachable host
// or network, a failed name lookup, a connection closed mid-request, or 429, 502, 503, 504
// (an overloaded server or a load balancer in front of a stopped one). Such a call succeeds
// unchanged once the server is back.
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's own deadline, not the server's absence
	}
	var dnsErr *net.DNSError
	var netErr net.Error
	var status apierrors.APIStatus
	switch {
	case utilnet.IsConnectionRefused(err), utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err), utilnet.IsHTTP2ConnectionLost(err),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.As(err, &dnsErr):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	case errors.As(err, &status):
		switch status.Status().Code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}
