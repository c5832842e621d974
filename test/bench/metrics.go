package main

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// writeVerbs are the verbs of apiserver_request_total that change state. Server-side apply
// is counted as APPLY, not PATCH.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// requestKey is one series of apiserver_request_total reduced to what the bench reports.
type requestKey struct{ verb, group, resource, subresource string }

func (k requestKey) String() string {
	r := k.resource
	if k.group != "" {
		r += "." + k.group
	}
	if k.subresource != "" {
		r += "/" + k.subresource
	}
	return k.verb + " " + r
}

type requestCounts map[requestKey]float64

// scrapeRequests reads apiserver_request_total from an API server's /metrics, summed over
// the labels the bench does not report (code, scope, component, version, dry_run).
func scrapeRequests(ctx context.Context, cs kubernetes.Interface) (requestCounts, error) {
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	return parseRequests(string(body))
}

func parseRequests(text string) (requestCounts, error) {
	out := requestCounts{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("malformed metric line %q", line)
		}
		labels := parseLabels(rest[:end])
		value, err := strconv.ParseFloat(strings.Fields(rest[end+1:])[0], 64)
		if err != nil {
			return nil, fmt.Errorf("malformed metric line %q: %w", line, err)
		}
		found = true
		out[requestKey{labels["verb"], labels["group"], labels["resource"], labels["subresource"]}] += value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no apiserver_request_total in /metrics")
	}
	return out, nil
}

// parseLabels parses `a="x",b="y"` (Prometheus text format; values may hold escaped quotes).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return out
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var b strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out[name] = b.String()
		if i+1 >= len(s) {
			return out
		}
		s = strings.TrimPrefix(s[i+1:], ",")
	}
	return out
}

// writesBetween is after-before for the write verbs, per series, dropping zeroes.
func writesBetween(before, after requestCounts) requestCounts {
	out := requestCounts{}
	for k, v := range after {
		if !writeVerbs[k.verb] {
			continue
		}
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func (c requestCounts) total(match func(requestKey) bool) int {
	n := 0.0
	for k, v := range c {
		if match == nil || match(k) {
			n += v
		}
	}
	return int(n)
}

// top lists the largest series, e.g. "APPLY destinationrules.networking.istio.io 303".
func (c requestCounts) top(n int) string {
	keys := make([]requestKey, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i].String() < keys[j].String()
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, int(c[k])))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// convoyRemoteWrite says whether a write to a service cluster is of a kind only convoy
// writes while nothing changes: the main resource (no subresource) of namespaces,
// deployments, services and DestinationRules. The service cluster's own controllers write
// status subresources, pods, ReplicaSets, EndpointSlices, leases, nodes and events, which
// are not counted; apiserver_request_total has no user-agent label, so this split by kind
// is the attribution.
func convoyRemoteWrite(k requestKey) bool {
	if k.subresource != "" {
		return false
	}
	switch k.group + "/" + k.resource {
	case "/namespaces", "apps/deployments", "/services", "networking.istio.io/destinationrules":
		return true
	}
	return false
}

// convoyManagerWrite says whether a write to the manager cluster is to convoy's API group
// (Projects, policies, ServiceClusters and their status) or an Event.
func convoyManagerWrite(k requestKey) bool {
	return k.group == "convoy.dev" || k.resource == "events"
}
