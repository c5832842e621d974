package remote

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

var (
	errConnectTimeout  = errors.New("the cluster did not answer within the connect timeout")
	errCachesNotSynced = errors.New("check that convoy's identity may list and watch what it caches (docs/service-clusters.md)")
)

// supervisor owns one cluster's connection: it connects with backoff, probes on an interval,
// verifies the cluster's identity and moves the circuit breaker. It runs on its own goroutine,
// so a cluster that hangs costs only its own supervisor's time.
type supervisor struct {
	name   string
	fleet  *Fleet
	hash   string
	cfg    *rest.Config
	cancel context.CancelFunc
	kick   chan struct{}

	// reg is guarded by fleet.mu (Register updates the recorded identity in place).
	reg Registration

	// Owned by the run goroutine.
	health Health
	link   link
	// synced: the link's caches have synced; syncSince: when the link was dialled.
	synced    bool
	syncSince time.Time
}

// poke makes the supervisor probe now instead of at its next interval.
func (s *supervisor) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *supervisor) run(ctx context.Context) {
	defer s.disconnect()
	for {
		next := s.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if s.fleet.publish(s, s.health, s.link) {
			s.fleet.notify(ctx, s.name)
		}
		timer := s.fleet.opts.Clock.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		case <-s.kick:
			timer.Stop()
		}
	}
}

// step makes one attempt: connect if there is no link, then probe and verify. It returns when
// to try next.
func (s *supervisor) step(ctx context.Context) time.Duration {
	opts := s.fleet.opts
	logger := log.FromContext(ctx).WithValues("ServiceCluster", s.name)
	if s.link == nil {
		dialCtx, cancel := context.WithTimeoutCause(ctx, opts.ConnectTimeout, errConnectTimeout)
		l, err := s.fleet.dial(dialCtx, s.name, s.cfg, s.reg.Scope)
		cancel()
		if err != nil {
			s.health = s.health.afterFailure(err, opts.Thresholds)
			return s.backoff()
		}
		s.link, s.synced, s.syncSince = l, false, opts.Clock.Now()
	}
	if !s.synced {
		if again, ok := s.waitForCaches(ctx); !ok {
			return again
		}
	}
	probeStart := opts.Clock.Now()
	probeCtx, cancel := context.WithTimeout(ctx, opts.ProbeTimeout)
	res, err := s.link.Probe(probeCtx)
	cancel()
	if err != nil && s.health.State == StateConnected && FailureReason(err) == convoyv1.ReasonUnreachable &&
		s.link.answeredSince(probeStart) {
		s.health = s.health.slow(opts.Clock.Now(), err)
		return opts.ProbeInterval
	}
	if err != nil {
		s.health = s.health.afterFailure(err, opts.Thresholds)
		if s.health.State != StateConnected {
			// Open the breaker and drop the caches: a reconnect rebuilds them, so a connection
			// in use always has caches that synced after its last (re)connect.
			s.disconnect()
			return s.backoff()
		}
		return opts.ProbeInterval
	}
	if res.Capabilities.DestinationRuleVersion() != s.link.DestinationRuleVersion() {
		// Istio's CRDs were installed or removed: the connection must watch other kinds.
		logger.Info("DestinationRule support changed; reconnecting",
			"from", s.link.DestinationRuleVersion(), "to", res.Capabilities.DestinationRuleVersion())
		s.disconnect()
		return 0
	}
	s.fleet.mu.Lock()
	reason, msg := s.fleet.verifyLocked(s.name, s.reg, res.ClusterID)
	s.fleet.mu.Unlock()
	if reason != "" {
		s.disconnect()
		s.health = s.health.refused(reason, msg)
		s.health.LastContact = opts.Clock.Now()
		return opts.ProbeInterval
	}
	s.link.setIdentity(res)
	s.health = s.health.afterSuccess(opts.Clock.Now(), res, opts.Thresholds)
	return wait.Jitter(opts.ProbeInterval, 0.1)
}

// waitForCaches gives a new link's caches ConnectTimeout to sync. A large or busy cluster
// can need longer to list what convoy caches, and starting over would throw that work away
// and never finish (seen under load: every cluster of a fleet stuck Unreachable, each
// reconnect listing everything again). So while the cluster answers probes the caches keep
// syncing, up to CacheSyncLimit; a probe that fails ends the attempt. It returns whether the
// caches synced, and otherwise when to step again.
func (s *supervisor) waitForCaches(ctx context.Context) (time.Duration, bool) {
	opts := s.fleet.opts
	syncCtx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	s.synced = s.link.waitForCaches(syncCtx)
	cancel()
	if s.synced || ctx.Err() != nil {
		return 0, s.synced
	}
	probeCtx, cancel := context.WithTimeout(ctx, opts.ProbeTimeout)
	_, err := s.link.Probe(probeCtx)
	cancel()
	waited := opts.Clock.Since(s.syncSince).Round(time.Second)
	if err == nil && waited < opts.CacheSyncLimit {
		s.health = s.health.syncing(opts.Clock.Now(), waited)
		return 0, false
	}
	if err == nil {
		err = fmt.Errorf("caches of %s did not sync within %s although the cluster answers: %w", s.name, waited, errCachesNotSynced)
	}
	s.health = s.health.afterFailure(err, opts.Thresholds)
	s.disconnect()
	return s.backoff(), false
}

// backoff grows exponentially with consecutive failures, from one second to MaxBackoff.
func (s *supervisor) backoff() time.Duration {
	d := time.Second
	for i := int32(1); i < s.health.ConsecutiveFailures && d < s.fleet.opts.MaxBackoff; i++ {
		d *= 2
	}
	return wait.Jitter(min(d, s.fleet.opts.MaxBackoff), 0.1)
}

func (s *supervisor) disconnect() {
	if s.link != nil {
		s.link.stop()
		s.link = nil
	}
}
