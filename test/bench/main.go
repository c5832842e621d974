// Command bench measures convoy on a local fleet (hack/fleet.sh): creation time, change
// propagation latency (single, steady rate, burst), one raw server-side apply for scale,
// writes during a no-op window, manager memory and CPU, and latency while one service
// cluster hangs. It prints a Markdown table. Run it with make bench; docs/performance.md
// explains every row.
//
// It is a main package, not a test: go test ./... and make test never run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type config struct {
	clusters, projects, concurrency int
	replicas                        int32
	rate                            float64
	steady, grace, noop, settle     time.Duration
	hung                            time.Duration
	samples, rawSamples             int
	skip                            map[string]bool
	keep, restartManager            bool
	dir, out, managerFlags, access  string
	namespace                       string
	createTimeout, changeTimeout    time.Duration
	burstTimeout, recoverTimeout    time.Duration
}

// phases that can be skipped; creation always runs (everything else needs the Projects).
var skippable = []string{"raw", "single", "steady", "floor", "burst", "noop", "hung", "rollout"}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	v, err := strconv.Atoi(env(name, strconv.Itoa(def)))
	if err != nil {
		fatalf("%s: %v", name, err)
	}
	return v
}

func envDur(name string, def time.Duration) time.Duration {
	v, err := time.ParseDuration(env(name, def.String()))
	if err != nil {
		fatalf("%s: %v", name, err)
	}
	return v
}

func parseConfig(root string) config {
	var c config
	var skip string
	var replicas int
	flag.IntVar(&c.clusters, "clusters", envInt("CLUSTERS", 5), "service clusters in the fleet (env CLUSTERS)")
	flag.IntVar(&c.projects, "projects", envInt("PROJECTS", 1000), "Projects to create (env PROJECTS)")
	rate, err := strconv.ParseFloat(env("RATE", "10"), 64)
	if err != nil {
		fatalf("RATE: %v", err)
	}
	flag.Float64Var(&c.rate, "rate", rate, "changes per second in the steady-rate phase (env RATE)")
	flag.DurationVar(&c.steady, "steady", envDur("STEADY", 60*time.Second), "length of the steady-rate phase (env STEADY)")
	flag.DurationVar(&c.grace, "grace", envDur("GRACE", 30*time.Second), "how long after the steady-rate phase a change may still arrive before it counts as lost (env GRACE)")
	flag.IntVar(&c.samples, "samples", envInt("SAMPLES", 50), "sequential single changes, healthy and with a hung cluster (env SAMPLES)")
	flag.IntVar(&c.rawSamples, "raw-samples", envInt("RAW_SAMPLES", 100), "raw server-side applies to one service cluster (env RAW_SAMPLES)")
	flag.DurationVar(&c.noop, "noop", envDur("NOOP", 3*time.Minute), "length of the no-op window (env NOOP)")
	flag.DurationVar(&c.hung, "hung", envDur("HUNG", 60*time.Second), "the hung-cluster samples are spread over at least this long (env HUNG)")
	flag.DurationVar(&c.settle, "settle", envDur("SETTLE", 30*time.Second), "quiet time after everything is Ready before the no-op window (env SETTLE)")
	flag.StringVar(&skip, "skip", env("SKIP", ""), "comma-separated phases to skip: "+strings.Join(skippable, ",")+" (env SKIP)")
	flag.BoolVar(&c.keep, "keep", env("BENCH_KEEP", "") != "" && env("BENCH_KEEP", "") != "0", "leave the fleet running afterwards (env BENCH_KEEP=1)")
	flag.BoolVar(&c.restartManager, "restart-manager", env("BENCH_RESTART_MANAGER", "") != "" && env("BENCH_RESTART_MANAGER", "") != "0", "when reusing a running fleet, rebuild and restart its convoy manager from the working tree first (env BENCH_RESTART_MANAGER=1)")
	flag.StringVar(&c.dir, "fleet-dir", env("BENCH_DIR", filepath.Join(root, ".bench")), "fleet state directory (env BENCH_DIR)")
	flag.StringVar(&c.out, "out", env("BENCH_OUT", ""), "also write the Markdown report to this file (env BENCH_OUT)")
	flag.StringVar(&c.managerFlags, "manager-flags", env("FLEET_MANAGER_FLAGS", ""), "extra convoy manager flags when the bench starts the fleet (env FLEET_MANAGER_FLAGS)")
	flag.StringVar(&c.access, "access", env("BENCH_ACCESS", "admin"), "how the bench's fleet registers its clusters: admin (accessScope Cluster) or join (convoy join, accessScope ManagedNamespaces: a watch per kind per namespace) (env BENCH_ACCESS)")
	flag.IntVar(&c.concurrency, "concurrency", envInt("CONCURRENCY", 20), "parallel creates (env CONCURRENCY)")
	flag.IntVar(&replicas, "replicas", envInt("REPLICAS", 1), "replicas per workload (env REPLICAS)")
	flag.StringVar(&c.namespace, "namespace", env("BENCH_NAMESPACE", "bench"), "manager namespace of the bench's Projects and policies (env BENCH_NAMESPACE)")
	flag.DurationVar(&c.createTimeout, "create-timeout", envDur("CREATE_TIMEOUT", 30*time.Minute), "limit for creation to reach every cluster and Ready (env CREATE_TIMEOUT)")
	flag.DurationVar(&c.changeTimeout, "change-timeout", envDur("CHANGE_TIMEOUT", 60*time.Second), "limit for one sequential change to arrive; longer counts as lost (env CHANGE_TIMEOUT)")
	flag.DurationVar(&c.burstTimeout, "burst-timeout", envDur("BURST_TIMEOUT", 15*time.Minute), "limit for the burst phase (env BURST_TIMEOUT)")
	flag.DurationVar(&c.recoverTimeout, "recover-timeout", envDur("RECOVER_TIMEOUT", 10*time.Minute), "limit for settling (everything Ready) and for the hung cluster to catch up (env RECOVER_TIMEOUT)")
	flag.Parse()
	c.replicas = int32(replicas)
	c.skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		known := false
		for _, k := range skippable {
			known = known || k == s
		}
		if !known {
			fatalf("SKIP: unknown phase %q (phases: %s)", s, strings.Join(skippable, ", "))
		}
		c.skip[s] = true
	}
	if c.access != "admin" && c.access != "join" {
		fatalf("BENCH_ACCESS must be admin or join, not %q", c.access)
	}
	if c.clusters < 1 || c.projects < 1 || c.rate <= 0 || c.concurrency < 1 || c.samples < 1 || c.rawSamples < 1 {
		fatalf("CLUSTERS, PROJECTS, RATE, CONCURRENCY, SAMPLES and RAW_SAMPLES must be positive")
	}
	return c
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	root, err := repoRoot()
	if err != nil {
		fatalf("%v", err)
	}
	cfg := parseConfig(root)
	ctrllog.SetLogger(klog.NewKlogr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, root, cfg))
}

func run(ctx context.Context, root string, cfg config) (code int) {
	b := &bench{cfg: cfg, fleet: &benchFleet{root: root, dir: cfg.dir}}
	b.rep.started = time.Now()
	b.rep.machine = machine()
	b.rep.loadBefore = loadAvg()
	b.rep.commit = gitDescribe(root)
	defer func() {
		// Whatever happened, a stopped API server must run again and the report be printed.
		_ = b.resumeHung()
		b.rep.loadAfter = loadAvg()
		b.rep.finished = time.Now()
		text := b.rep.markdown(cfg)
		fmt.Println(text)
		if cfg.out != "" {
			if err := os.WriteFile(cfg.out, []byte(text), 0o644); err != nil {
				logf("writing %s: %v", cfg.out, err)
				code = 1
			} else {
				logf("report written to %s", cfg.out)
			}
		}
		if cfg.keep {
			logf("BENCH_KEEP set: the fleet keeps running in %s (stop it: FLEET_DIR=%s hack/fleet.sh down)", cfg.dir, cfg.dir)
			return
		}
		logf("tearing the bench fleet down (BENCH_KEEP=1 keeps it)")
		// The run's context may be cancelled (Ctrl-C): tear down with a fresh one.
		if err := b.fleet.script(context.Background(), 10*time.Minute, nil, "down"); err != nil {
			logf("teardown: %v", err)
			code = 1
		}
	}()
	if err := b.run(ctx); err != nil {
		logf("bench failed: %v", err)
		b.rep.failure = err.Error()
		return 1
	}
	return 0
}

func gitDescribe(root string) string {
	out, err := runCmd(root, "git", "rev-parse", "--short", "HEAD")
	if err != nil {
		return "?"
	}
	commit := strings.TrimSpace(out)
	if st, err := runCmd(root, "git", "status", "--porcelain", "--untracked-files=no"); err == nil && strings.TrimSpace(st) != "" {
		commit += " (with uncommitted changes)"
	}
	return commit
}
