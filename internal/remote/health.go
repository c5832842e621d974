package remote

import (
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// State is where a cluster's circuit breaker stands.
type State string

const (
	// StateConnecting: no verified connection yet (first contact, or the kubeconfig changed).
	StateConnecting State = "Connecting"
	// StateConnected: the breaker is closed; callers get the connection.
	StateConnected State = "Connected"
	// StateDown: the breaker is open; callers fail at once with ErrNotConnected and the
	// supervisor reconnects with backoff.
	StateDown State = "Down"
	// StateRefused: convoy reaches a cluster it must not write to (a duplicate registration,
	// a kubeconfig that now reaches another cluster) or cannot use the kubeconfig at all.
	// Only a person can fix it.
	StateRefused State = "Refused"
)

// Thresholds are the circuit breaker's hysteresis: how many probes in a row must fail to
// open it, and how many must succeed to close it again.
type Thresholds struct {
	Failures  int32
	Successes int32
}

// Health is what convoy knows about one cluster's connection. It is a value: the supervisor
// publishes copies.
type Health struct {
	State State
	// Reason is the ServiceCluster Ready reason it maps to.
	Reason  string
	Message string
	// ConsecutiveFailures and ConsecutiveSuccesses count probes (or connection attempts).
	ConsecutiveFailures  int32
	ConsecutiveSuccesses int32
	// LastContact is the last successful probe; zero when there was none.
	LastContact time.Time
	// Probe is the last successful probe's result.
	Probe ProbeResult
}

// afterSuccess is the health after a successful probe at now. A cluster that was never
// connected (or whose kubeconfig changed) connects on its first success; one that is down
// needs th.Successes in a row, so a flapping cluster does not flap every Project with it.
func (h Health) afterSuccess(now time.Time, probe ProbeResult, th Thresholds) Health {
	h.ConsecutiveFailures = 0
	h.ConsecutiveSuccesses++
	h.LastContact = now
	h.Probe = probe
	if h.State == StateConnecting || h.State == StateConnected || h.ConsecutiveSuccesses >= th.Successes {
		h.State, h.Reason = StateConnected, convoyv1.ReasonConnected
		h.Message = fmt.Sprintf("Connected to Kubernetes %s", probe.KubernetesVersion)
		return h
	}
	h.Message = fmt.Sprintf("Recovering: %d of %d probes in a row succeeded; convoy resumes writing after %d",
		h.ConsecutiveSuccesses, th.Successes, th.Successes)
	return h
}

// afterFailure is the health after a failed probe or connection attempt. A Connected
// cluster stays connected until th.Failures probes in a row have failed; rejected credentials
// open the breaker at once, since retrying them cannot succeed.
func (h Health) afterFailure(err error, th Thresholds) Health {
	h.ConsecutiveSuccesses = 0
	h.ConsecutiveFailures++
	reason := FailureReason(err)
	msg := failureMessage(reason, h.LastContact, err)
	switch {
	case h.State == StateConnected && reason == convoyv1.ReasonUnreachable && h.ConsecutiveFailures < th.Failures:
		h.Message = fmt.Sprintf("%d of %d allowed consecutive probes failed: %s", h.ConsecutiveFailures, th.Failures, msg)
	case reason == convoyv1.ReasonInvalidKubeconfig:
		h.State, h.Reason, h.Message = StateRefused, reason, msg
	default:
		h.State, h.Reason, h.Message = StateDown, reason, msg
	}
	return h
}

// syncing is the health of a new connection whose caches are still syncing while the
// cluster answers probes: not usable yet, state and reason unchanged, the contact recorded.
func (h Health) syncing(now time.Time, waited time.Duration) Health {
	h.LastContact = now
	h.Message = fmt.Sprintf("The cluster answers; convoy's caches of it are still syncing (%s so far)", waited)
	return h
}

// slow is the health of a connected cluster whose probe failed as unreachable while the
// cluster answered convoy's other requests: it is busy, not gone. The breaker stays closed
// and the failure count is reset, since an answer is proof of contact; the message says why.
func (h Health) slow(now time.Time, err error) Health {
	h.ConsecutiveFailures, h.ConsecutiveSuccesses = 0, 0
	h.LastContact = now
	h.Message = fmt.Sprintf("Slow: the health probe failed (%v), but the cluster answered convoy's other requests meanwhile; convoy keeps writing", err)
	return h
}

// refused is the health of a cluster convoy reaches but must not use.
func (h Health) refused(reason, msg string) Health {
	h.State, h.Reason, h.Message = StateRefused, reason, msg
	h.ConsecutiveSuccesses = 0
	return h
}

// FailureReason maps a connection or probe error to a stable ServiceCluster Ready reason.
func FailureReason(err error) string {
	switch {
	case errors.Is(err, ErrInvalidKubeconfig):
		return convoyv1.ReasonInvalidKubeconfig
	case apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
		return convoyv1.ReasonUnauthorized
	default:
		return convoyv1.ReasonUnreachable
	}
}

func failureMessage(reason string, lastContact time.Time, err error) string {
	switch reason {
	case convoyv1.ReasonUnauthorized:
		return fmt.Sprintf("The cluster rejected convoy's credentials (%v); update the kubeconfig Secret with valid credentials", err)
	case convoyv1.ReasonUnreachable:
		last := "never"
		if !lastContact.IsZero() {
			last = lastContact.UTC().Format(time.RFC3339)
		}
		return fmt.Sprintf("Cannot reach the cluster (last contact: %s): %v", last, err)
	}
	return err.Error()
}
