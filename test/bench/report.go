package main

import (
	"fmt"
	"strings"
	"time"
)

type row struct{ name, result, target, verdict string }

type phaseCost struct {
	name                       string
	wall                       time.Duration
	mgrCPU, fleetCPU, benchCPU float64
	load                       string
}

type report struct {
	started, finished     time.Time
	machine, commit       string
	loadBefore, loadAfter string
	fleet, managerArgs    string
	clusters              []string
	failure               string

	rows       []row
	phases     []phaseCost
	noopDetail []string

	raw, single, steady, hung dist
}

func (r *report) add(name, result, target, verdict string) {
	r.rows = append(r.rows, row{name, result, target, verdict})
}

func (r *report) markdown(cfg config) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("### convoy bench, %s", r.started.Format("2006-01-02 15:04 MST"))
	p("")
	p("- Machine: %s", r.machine)
	p("- Load average (1/5/15 min): %s before, %s after", r.loadBefore, r.loadAfter)
	p("- convoy: commit %s; manager: `%s`", r.commit, r.managerArgs)
	p("- Fleet: %d service clusters (%s), %s", len(r.clusters), strings.Join(r.clusters, ", "), r.fleet)
	p("- Access: BENCH_ACCESS=%s (accessScope %s)", cfg.access, map[string]string{"admin": "Cluster", "join": "ManagedNamespaces"}[cfg.access])
	p("- Parameters: PROJECTS=%d CLUSTERS=%d REPLICAS=%d RATE=%g/s STEADY=%s GRACE=%s SAMPLES=%d RAW_SAMPLES=%d NOOP=%s HUNG=%s CHANGE_TIMEOUT=%s CONCURRENCY=%d%s",
		cfg.projects, cfg.clusters, cfg.replicas, cfg.rate, cfg.steady, cfg.grace, cfg.samples, cfg.rawSamples, cfg.noop, cfg.hung, cfg.changeTimeout, cfg.concurrency, skipNote(cfg))
	p("- Duration: %s", r.finished.Sub(r.started).Round(time.Second))
	if r.failure != "" {
		p("- **Stopped early: %s**", r.failure)
	}
	p("")
	p("| Measurement | Result | Target | |")
	p("|---|---|---|---|")
	for _, row := range r.rows {
		p("| %s | %s | %s | %s |", cell(row.name), cell(row.result), cell(row.target), row.verdict)
	}
	if len(r.noopDetail) > 0 {
		p("")
		p("All writes in the no-op window, largest series first (verb, resource, count):")
		p("")
		for _, d := range r.noopDetail {
			p("- %s", d)
		}
	}
	if len(r.phases) > 0 {
		p("")
		p("| Phase | Wall | Manager CPU | Fleet control planes CPU | Bench CPU | Load after |")
		p("|---|---|---|---|---|---|")
		for _, ph := range r.phases {
			p("| %s | %.1f s | %.1f s | %.1f s | %.1f s | %s |", ph.name, ph.wall.Seconds(), ph.mgrCPU, ph.fleetCPU, ph.benchCPU, ph.load)
		}
	}
	return b.String()
}

func skipNote(cfg config) string {
	if len(cfg.skip) == 0 {
		return ""
	}
	var s []string
	for _, k := range skippable {
		if cfg.skip[k] {
			s = append(s, k)
		}
	}
	return " SKIP=" + strings.Join(s, ",")
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
