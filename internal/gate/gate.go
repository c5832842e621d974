// Package gate evaluates a rollout's health gates: PromQL queries, one per gate and cluster,
// whose single value must not exceed the gate's max while a wave soaks.
package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// DefaultTimeout bounds a query when NewEvaluator is given no timeout.
const DefaultTimeout = 5 * time.Second

// Vars fill a query's placeholders.
type Vars struct{ Cluster, Namespace, Project string }

// Result of one gate in one cluster.
type Result struct {
	// Breach is non-empty when the value exceeded max: the wave fails. It says gate, cluster,
	// value and max, e.g. `gate error-ratio in cluster seoul-1: 0.31 > max 0.05`.
	Breach string
	// Wait is non-empty when the gate cannot be decided (no sample, several samples, NaN,
	// query error, Prometheus unreachable): the wave holds. It says why and what to do.
	Wait string
	// Value is the sample's value when it decided the gate (Wait is empty). It may be ±Inf.
	Value float64
}

// Render replaces the placeholders {{cluster}}, {{namespace}} and {{project}}. Values are
// inserted as they are: they are Kubernetes names, which need no quoting inside a PromQL
// string.
func Render(query string, vars Vars) string {
	return strings.NewReplacer(
		"{{cluster}}", vars.Cluster,
		"{{namespace}}", vars.Namespace,
		"{{project}}", vars.Project,
	).Replace(query)
}

// Evaluator queries Prometheus. It caches each (address, rendered query) result for
// Interval, so a reconcile loop may call Check often without flooding Prometheus; callers
// asking for a query that is already running wait for it instead of sending it again.
// Expired entries are dropped at most one Interval later, so the cache holds only the
// queries of the last two intervals. It is safe for concurrent use. The zero value is usable
// (no caching, DefaultTimeout); change Interval and Timeout only before the first Check.
type Evaluator struct {
	// Interval is how long a query's result is reused, counted from when the query started.
	Interval time.Duration
	// Timeout bounds each query, including connecting to Prometheus.
	Timeout time.Duration

	client *http.Client     // nil: the Prometheus client's default transport
	now    func() time.Time // replaced by tests

	mu        sync.Mutex
	cache     map[cacheKey]*entry
	lastPrune time.Time
}

// NewEvaluator returns an Evaluator that reuses results for interval and gives each query
// timeout (DefaultTimeout when timeout <= 0).
func NewEvaluator(interval, timeout time.Duration) *Evaluator {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// A transport of its own, so that gates' connections neither share nor exhaust the pool
	// of anything else in the process.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &Evaluator{
		Interval: interval,
		Timeout:  timeout,
		client:   &http.Client{Transport: transport},
	}
}

type cacheKey struct{ address, query string }

// entry is one query, running until done is closed; outcome is set before that.
type entry struct {
	done chan struct{}
	at   time.Time // when the query started
	outcome
}

type outcome struct {
	value float64
	// problem says why the gate cannot be decided, without the gate and cluster; empty when
	// value holds.
	problem string
	// abandoned: the caller that ran the query gave up (its context ended) before an answer.
	// The entry is dropped and whoever waited for it queries again.
	abandoned bool
}

// Check evaluates one gate for one cluster at now.
func (e *Evaluator) Check(ctx context.Context, g convoyv1.HealthGate, vars Vars) Result {
	o := e.lookup(ctx, g.Prometheus.Address, Render(g.Prometheus.Query, vars))
	prefix := fmt.Sprintf("gate %s in cluster %s: ", g.Name, vars.Cluster)
	if o.problem != "" {
		return Result{Wait: prefix + o.problem}
	}
	r := Result{Value: o.value}
	if limit := g.Prometheus.Max.AsApproximateFloat64(); o.value > limit {
		r.Breach = fmt.Sprintf("%s%s > max %s", prefix, formatValue(o.value, limit), strconv.FormatFloat(limit, 'g', -1, 64))
	}
	return r
}

// lookup returns the cached outcome of query at address, running the query when there is
// none younger than Interval and none running.
func (e *Evaluator) lookup(ctx context.Context, address, query string) outcome {
	key := cacheKey{address, query}
	for {
		e.mu.Lock()
		now := e.clock()
		e.pruneLocked(now)
		if en, ok := e.cache[key]; ok && (!isDone(en) || now.Sub(en.at) < e.Interval) {
			e.mu.Unlock()
			select {
			case <-en.done:
			case <-ctx.Done():
				return outcome{problem: fmt.Sprintf("gave up waiting for Prometheus at %s: %v", address, ctx.Err())}
			}
			if en.abandoned {
				continue
			}
			return en.outcome
		}
		en := &entry{done: make(chan struct{}), at: now}
		e.cache[key] = en
		e.mu.Unlock()

		en.outcome = e.query(ctx, address, query, now)
		if en.abandoned {
			e.mu.Lock()
			if e.cache[key] == en {
				delete(e.cache, key)
			}
			e.mu.Unlock()
		}
		close(en.done)
		return en.outcome
	}
}

// pruneLocked drops expired entries, at most once per Interval so that a busy loop does not
// walk the cache on every Check.
func (e *Evaluator) pruneLocked(now time.Time) {
	if e.cache == nil {
		e.cache = map[cacheKey]*entry{}
	}
	if now.Sub(e.lastPrune) < e.Interval {
		return
	}
	e.lastPrune = now
	for k, en := range e.cache {
		if isDone(en) && now.Sub(en.at) >= e.Interval {
			delete(e.cache, k)
		}
	}
}

func isDone(en *entry) bool {
	select {
	case <-en.done:
		return true
	default:
		return false
	}
}

func (e *Evaluator) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// query runs one instant query and reduces its answer to an outcome.
func (e *Evaluator) query(ctx context.Context, address, query string, at time.Time) outcome {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client, err := api.NewClient(api.Config{Address: address, Client: e.client})
	if err != nil {
		return outcome{problem: fmt.Sprintf("invalid Prometheus address %q: %v; fix the gate's address", address, err)}
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The timeout parameter also stops Prometheus evaluating a query nobody waits for.
	val, _, err := promv1.NewAPI(client).Query(qctx, query, at, promv1.WithTimeout(timeout))
	if err != nil {
		if ctx.Err() != nil {
			return outcome{problem: fmt.Sprintf("gave up querying Prometheus at %s: %v", address, ctx.Err()), abandoned: true}
		}
		return outcome{problem: describeError(address, timeout, err)}
	}
	return fromValue(val)
}

func describeError(address string, timeout time.Duration, err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("Prometheus at %s did not answer within %s; check that convoy can reach it and that it is not overloaded", address, timeout)
	}
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Type {
		case promv1.ErrBadData:
			return fmt.Sprintf("Prometheus at %s rejected the query: %s; fix the gate's query", address, apiErr.Msg)
		case promv1.ErrExec, promv1.ErrTimeout, promv1.ErrCanceled:
			return fmt.Sprintf("the query failed in Prometheus at %s: %v; check the query and Prometheus's load", address, apiErr)
		default:
			return fmt.Sprintf("unexpected answer from %s: %v; check that the address is Prometheus's HTTP API", address, apiErr)
		}
	}
	return fmt.Sprintf("cannot query Prometheus at %s: %v; check the address and that convoy can reach it", address, err)
}

// fromValue accepts a scalar or a vector of exactly one sample: anything else is ambiguous,
// and an empty vector must not pass for healthy (a typo in a label would otherwise hide
// every error).
func fromValue(val model.Value) outcome {
	switch v := val.(type) {
	case *model.Scalar:
		return sample(float64(v.Value))
	case model.Vector:
		switch len(v) {
		case 0:
			return outcome{problem: "the query returned no sample; check that it selects this cluster's series, or append `or vector(0)` if no data means healthy"}
		case 1:
			return sample(float64(v[0].Value))
		default:
			return outcome{problem: fmt.Sprintf("the query returned %d samples (%s), want one; aggregate them, e.g. with sum() or max()", len(v), describeSeries(v))}
		}
	case nil:
		return outcome{problem: "Prometheus returned no result; check that the address is Prometheus's HTTP API"}
	default:
		return outcome{problem: fmt.Sprintf("the query returned a %s, want one sample or a scalar; drop range selectors and aggregate to one series", val.Type())}
	}
}

func sample(v float64) outcome {
	if math.IsNaN(v) {
		return outcome{problem: "the query returned NaN (for example 0/0: a ratio over no traffic); filter the denominator, e.g. `/ (sum(...) > 0)`, and append `or vector(0)` if no traffic means healthy"}
	}
	return outcome{value: v}
}

// describeSeries names the first two series, enough to see which label the query misses.
func describeSeries(v model.Vector) string {
	const maxLen = 120
	var names []string
	for _, s := range v[:min(2, len(v))] {
		name := s.Metric.String()
		if len(name) > maxLen {
			name = name[:maxLen] + "…"
		}
		names = append(names, name)
	}
	if len(v) > 2 {
		names = append(names, "…")
	}
	return strings.Join(names, ", ")
}

// formatValue prints v with four significant digits, or more when four would print it like
// limit: "0.05 > max 0.05" would read as a bug.
func formatValue(v, limit float64) string {
	for prec := 4; prec < 17; prec++ {
		if s := strconv.FormatFloat(v, 'g', prec, 64); s != strconv.FormatFloat(limit, 'g', prec, 64) {
			return s
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
