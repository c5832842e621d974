package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/scheme"
)

const (
	workload  = "app"
	container = "app"
	imageBase = "example.com/convoy-bench/app"
	// rawNamespace holds the raw server-side apply target; it is not convoy's.
	rawNamespace = "convoy-bench-raw"
	rawManager   = "convoy-bench"
)

type bench struct {
	cfg   config
	fleet *benchFleet
	rep   report

	track    *tracker
	projects cache.Cache
	names    []string // Project names

	mu      sync.Mutex
	seq     int
	next    int
	pending map[string]bool // Projects with a change in flight (steady phase)

	hungMu     sync.Mutex
	hang       *hangProxy
	hangSecret client.ObjectKey
	hangKey    string
	hangOrig   []byte

	mgrPID    int
	baseRSS   int64
	healthyEs []*expectation
}

func (b *bench) run(ctx context.Context) error {
	f := b.fleet
	var env []string
	if b.cfg.managerFlags != "" {
		env = append(env, "FLEET_MANAGER_FLAGS="+b.cfg.managerFlags)
	}
	if f.running(ctx) {
		b.rep.fleet = "reused the fleet already running in " + f.dir
		logf("%s", b.rep.fleet)
		if b.cfg.restartManager {
			logf("rebuilding and restarting the convoy manager (hack/fleet.sh manager-restart)")
			if err := f.script(ctx, 10*time.Minute, env, "manager-restart"); err != nil {
				return err
			}
			b.rep.fleet += ", manager restarted from the working tree"
		}
	} else {
		logf("starting a fleet of %d service clusters in %s (hack/fleet.sh up)", b.cfg.clusters, f.dir)
		start := time.Now()
		env = append(env, fmt.Sprintf("FLEET_SERVICE_CLUSTERS=%d", b.cfg.clusters), "FLEET_SAMPLES=0",
			"FLEET_ACCESS="+b.cfg.access)
		// The first run builds the Kubernetes binaries (about 15 minutes on 2 cores).
		if err := f.script(ctx, 60*time.Minute, env, "up"); err != nil {
			return err
		}
		b.rep.fleet = fmt.Sprintf("started by the bench in %s (%.0f s)", f.dir, time.Since(start).Seconds())
	}
	if err := f.connect(ctx, b.cfg.clusters, 5*time.Minute); err != nil {
		return err
	}
	pid, err := f.managerPID()
	if err != nil {
		return err
	}
	b.mgrPID = pid
	b.rep.managerArgs = managerArgs(pid)
	b.rep.clusters = f.clusters
	// Each Deployment has cfg.replicas pods, two sets while it rolls out; 100 for the rest.
	if err := f.ensurePodCapacity(ctx, 2*b.cfg.projects*int(b.cfg.replicas)+100); err != nil {
		return err
	}
	if err := b.prepare(ctx); err != nil {
		return err
	}
	if err := b.phase(ctx, "Create Projects", b.create); err != nil {
		return err
	}
	if !b.cfg.skip["raw"] {
		b.phaseSoft(ctx, "Raw server-side apply", b.raw)
	}
	if !b.cfg.skip["single"] {
		b.phaseSoft(ctx, "Single changes", b.single)
	}
	if !b.cfg.skip["steady"] {
		b.phaseSoft(ctx, "Steady rate", b.steady)
	}
	if !b.cfg.skip["floor"] && !b.cfg.skip["steady"] {
		b.phaseSoft(ctx, "Steady rate, no convoy (floor)", b.rawSteady)
	}
	if !b.cfg.skip["burst"] {
		b.phaseSoft(ctx, "Burst", b.burst)
	}
	if !b.cfg.skip["floor"] && !b.cfg.skip["burst"] {
		b.phaseSoft(ctx, "Burst, no convoy (floor)", b.rawBurst)
	}
	if !b.cfg.skip["noop"] {
		b.phaseSoft(ctx, "Settle", b.settleAll)
		b.phaseSoft(ctx, "No-op window", b.noopWindow)
	}
	b.memory(ctx)
	if !b.cfg.skip["hung"] {
		b.phaseSoft(ctx, "Hung cluster", b.hung)
	}
	if !b.cfg.skip["rollout"] {
		b.phaseSoft(ctx, "Staged rollout", b.stagedRollout)
	}
	return ctx.Err()
}

// phase runs one phase and records its wall time and the CPU spent by the manager, the
// fleet's control planes and the bench itself.
func (b *bench) phase(ctx context.Context, title string, fn func(context.Context) error) error {
	logf("== %s", title)
	kwok := b.fleet.kwokDir()
	m0, _ := cpuSeconds(b.mgrPID)
	f0 := fleetCPU(kwok)
	s0, _ := cpuSeconds(os.Getpid())
	start := time.Now()
	err := fn(ctx)
	m1, _ := cpuSeconds(b.mgrPID)
	s1, _ := cpuSeconds(os.Getpid())
	b.rep.phases = append(b.rep.phases, phaseCost{
		name: title, wall: time.Since(start), mgrCPU: m1 - m0, fleetCPU: fleetCPU(kwok) - f0, benchCPU: s1 - s0, load: loadAvg(),
	})
	if err != nil {
		err = fmt.Errorf("%s: %w", title, err)
	}
	return err
}

// phaseSoft records a failed phase in the report and goes on with the next one.
func (b *bench) phaseSoft(ctx context.Context, title string, fn func(context.Context) error) {
	if ctx.Err() != nil {
		return
	}
	if err := b.phase(ctx, title, fn); err != nil {
		logf("%v", err)
		b.rep.add(title, "failed: "+err.Error(), "", "")
	}
}

// prepare removes Projects of an earlier run, applies the two sample policies into the
// bench namespace and starts the informers: Deployments in every service cluster and the
// bench's Projects in the manager.
func (b *bench) prepare(ctx context.Context) error {
	ns := b.cfg.namespace
	mgr := b.fleet.mgr
	if err := mgr.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	var old convoyv1.ProjectList
	if err := mgr.List(ctx, &old, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("listing Projects in %s: %w", ns, err)
	}
	if n := len(old.Items); n > 0 {
		logf("deleting %d Projects of an earlier run in namespace %s", n, ns)
		if err := mgr.DeleteAllOf(ctx, &convoyv1.Project{}, client.InNamespace(ns)); err != nil {
			return err
		}
		if err := poll(ctx, b.cfg.recoverTimeout, 2*time.Second, func() (bool, string, error) {
			var l convoyv1.ProjectList
			if err := mgr.List(ctx, &l, client.InNamespace(ns)); err != nil {
				return false, "", err
			}
			return len(l.Items) == 0, fmt.Sprintf("%d Projects left", len(l.Items)), nil
		}); err != nil {
			return fmt.Errorf("removing the Projects of an earlier run: %w", err)
		}
	}
	for _, file := range []string{"gracefulshutdownpolicy.yaml", "localityloadbalancing.yaml"} {
		if err := b.applySample(ctx, filepath.Join(b.fleet.root, "config", "samples", file)); err != nil {
			return err
		}
	}

	b.track = newTracker(ns)
	if err := b.track.start(ctx, b.fleet.remotes, 2*time.Minute); err != nil {
		return err
	}
	var err error
	b.projects, err = cache.New(b.fleet.mgrCfg, cache.Options{Scheme: scheme.New(), DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return err
	}
	if _, err := b.projects.GetInformer(ctx, &convoyv1.Project{}); err != nil {
		return err
	}
	go func() {
		if err := b.projects.Start(ctx); err != nil && ctx.Err() == nil {
			logf("Project cache stopped: %v", err)
		}
	}()
	syncCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !b.projects.WaitForCacheSync(syncCtx) {
		return fmt.Errorf("the Project cache did not sync within 2 minutes")
	}
	b.baseRSS, _ = rssBytes(b.mgrPID)
	return nil
}

// applySample creates (or updates) a sample policy in the bench namespace.
func (b *bench) applySample(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var head metav1.TypeMeta
	if err := yaml.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var obj client.Object
	switch head.Kind {
	case convoyv1.KindGracefulShutdownPolicy:
		obj = &convoyv1.GracefulShutdownPolicy{}
	case convoyv1.KindLocalityLoadBalancing:
		obj = &convoyv1.LocalityLoadBalancing{}
	default:
		return fmt.Errorf("%s: unexpected kind %q", path, head.Kind)
	}
	if err := yaml.Unmarshal(data, obj); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	obj.SetNamespace(b.cfg.namespace)
	if err := b.fleet.mgr.Create(ctx, obj); apierrors.IsAlreadyExists(err) {
		live := obj.DeepCopyObject().(client.Object)
		if err := b.fleet.mgr.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
			return err
		}
		obj.SetResourceVersion(live.GetResourceVersion())
		err = b.fleet.mgr.Update(ctx, obj)
		if err != nil {
			return fmt.Errorf("updating %s %s: %w", head.Kind, obj.GetName(), err)
		}
	} else if err != nil {
		return fmt.Errorf("creating %s %s: %w", head.Kind, obj.GetName(), err)
	}
	return nil
}

func (b *bench) project(name string) *convoyv1.Project {
	return &convoyv1.Project{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.cfg.namespace},
		Spec: convoyv1.ProjectSpec{
			Owner:                  convoyv1.ProjectOwner{Team: "bench"},
			Placement:              convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}},
			GracefulShutdownPolicy: &convoyv1.PolicyReference{Name: "web"},
			LocalityLoadBalancing:  &convoyv1.PolicyReference{Name: "zonal"},
			Workloads: []convoyv1.Workload{{
				Name:     workload,
				Replicas: ptr.To(b.cfg.replicas),
				Ports:    []convoyv1.ServicePort{{Name: "http", Port: 80, TargetPort: ptr.To(intstr.FromString("http"))}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: container, Image: imageBase + ":v0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}}},
			}},
		},
	}
}

// create makes the Projects with bounded concurrency and waits for every Deployment in
// every cluster, then for every Project to be Ready.
func (b *bench) create(ctx context.Context) error {
	n := b.cfg.projects
	for i := range n {
		b.names = append(b.names, fmt.Sprintf("bench-%04d", i))
	}
	present := b.track.expectAll(n * len(b.fleet.clusters))
	start := time.Now()
	work := make(chan string)
	errs := make(chan error, b.cfg.concurrency)
	var wg sync.WaitGroup
	for range b.cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				cctx, cancel := context.WithTimeout(ctx, time.Minute)
				err := b.fleet.mgr.Create(cctx, b.project(name))
				cancel()
				if err != nil && !apierrors.IsAlreadyExists(err) {
					errs <- fmt.Errorf("creating Project %s: %w", name, err)
					return
				}
			}
		}()
	}
	var createErr error
feed:
	for _, name := range b.names {
		select {
		case work <- name:
		case createErr = <-errs:
			break feed
		case <-ctx.Done():
			createErr = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if createErr == nil {
		select {
		case createErr = <-errs:
		default:
		}
	}
	if createErr != nil {
		return createErr
	}
	created := time.Since(start)
	logf("%d Projects created in %.1f s (%.0f/s); waiting for %d Deployments", n, created.Seconds(), float64(n)/created.Seconds(), n*len(b.fleet.clusters))

	deadline := time.NewTimer(b.cfg.createTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-present:
			break wait
		case <-tick.C:
			logf("  %d/%d Deployments present, %d/%d Projects Ready", b.track.count(), n*len(b.fleet.clusters), b.readyCount(ctx), n)
		case <-deadline.C:
			b.rep.add("Creation → all Deployments present", fmt.Sprintf("not within %s: %d of %d", b.cfg.createTimeout, b.track.count(), n*len(b.fleet.clusters)), "", "")
			return fmt.Errorf("only %d of %d Deployments present after %s", b.track.count(), n*len(b.fleet.clusters), b.cfg.createTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.track.mu.Lock()
	allThere := b.track.allThereT.Sub(start)
	b.track.mu.Unlock()
	b.rep.add(fmt.Sprintf("Creation → all %d Deployments present (%d Projects × %d clusters)", n*len(b.fleet.clusters), n, len(b.fleet.clusters)),
		fmt.Sprintf("%.1f s (creates took %.1f s at %d in parallel)", allThere.Seconds(), created.Seconds(), b.cfg.concurrency), "", "")

	remaining := b.cfg.createTimeout - time.Since(start)
	if err := poll(ctx, remaining, 500*time.Millisecond, func() (bool, string, error) {
		r := b.readyCount(ctx)
		return r == n, fmt.Sprintf("%d/%d Projects Ready", r, n), nil
	}); err != nil {
		b.rep.add("Creation → all Projects Ready", fmt.Sprintf("not within %s: %d of %d Ready", b.cfg.createTimeout, b.readyCount(ctx), n), "", "")
		return err
	}
	b.rep.add("Creation → all Projects Ready (every Deployment available in every cluster)", fmt.Sprintf("%.1f s", time.Since(start).Seconds()), "", "")
	return nil
}

// readyCount counts the bench's Projects whose Ready condition is True for their current
// generation, from the Project cache.
func (b *bench) readyCount(ctx context.Context) int {
	var list convoyv1.ProjectList
	if err := b.projects.List(ctx, &list); err != nil {
		return 0
	}
	n := 0
	for _, p := range list.Items {
		c := meta.FindStatusCondition(p.Status.Conditions, convoyv1.ReadyCondition)
		if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == p.Generation {
			n++
		}
	}
	return n
}

// poll calls fn every interval until it reports done, fails, or timeout passes; it logs
// fn's progress every 10 s.
func poll(ctx context.Context, timeout, interval time.Duration, fn func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		done, progress, err := fn()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %s (%s)", timeout.Round(time.Second), progress)
		}
		if time.Since(lastLog) >= 10*time.Second {
			logf("  %s", progress)
			lastLog = time.Now()
		}
		if err := sleep(ctx, interval); err != nil {
			return err
		}
	}
}

// raw measures one server-side apply round trip to the first service cluster: a Deployment
// (0 replicas, not convoy's) whose annotation changes on every apply, so each is a real write.
func (b *bench) raw(ctx context.Context) error {
	cluster := b.fleet.clusters[0]
	cs := b.fleet.remotes[cluster]
	apply := func(i int) error {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ns := corev1ac.Namespace(rawNamespace)
		if i == 0 {
			if _, err := cs.CoreV1().Namespaces().Apply(actx, ns, metav1.ApplyOptions{FieldManager: rawManager, Force: true}); err != nil {
				return err
			}
		}
		d := appsv1ac.Deployment("raw", rawNamespace).
			WithAnnotations(map[string]string{"convoy.dev/bench-seq": fmt.Sprint(i)}).
			WithSpec(appsv1ac.DeploymentSpec().
				WithReplicas(0).
				WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": "raw"})).
				WithTemplate(corev1ac.PodTemplateSpec().
					WithLabels(map[string]string{"app": "raw"}).
					WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().WithName("app").WithImage(imageBase + ":raw")))))
		_, err := cs.AppsV1().Deployments(rawNamespace).Apply(actx, d, metav1.ApplyOptions{FieldManager: rawManager, Force: true})
		return err
	}
	// The first apply creates the objects; it is not a sample.
	if err := apply(0); err != nil {
		return fmt.Errorf("raw apply to %s: %w", cluster, err)
	}
	var d dist
	for i := 1; i <= b.cfg.rawSamples; i++ {
		start := time.Now()
		if err := apply(i); err != nil {
			return fmt.Errorf("raw apply to %s: %w", cluster, err)
		}
		d = append(d, time.Since(start))
	}
	b.rep.raw = d
	b.rep.add(fmt.Sprintf("Raw server-side apply round trip to %s (a Deployment, %d sequential samples)", cluster, len(d)), d.summary(50, 99), "", "")
	return nil
}

// nextProject picks Projects round robin, skipping those with a change in flight.
func (b *bench) nextProject() (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.names {
		name := b.names[b.next%len(b.names)]
		b.next++
		if !b.pending[name] {
			return name, true
		}
	}
	return "", false
}

func (b *bench) newImage() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return fmt.Sprintf("%s:c%06d", imageBase, b.seq)
}

func imageIs(image string) func(*appsv1.Deployment) bool {
	return func(d *appsv1.Deployment) bool {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == container {
				return c.Image == image
			}
		}
		return false
	}
}

// change patches one Project's image and returns the armed expectation, its start set to
// when the patch returned.
func (b *bench) change(ctx context.Context, name string, clusters []string) (*expectation, error) {
	image := b.newImage()
	e := b.track.expect(deploymentKey(name, workload), clusters, imageIs(image))
	e.project = name
	patch, _ := json.Marshal([]map[string]any{{
		"op": "replace", "path": "/spec/workloads/0/template/spec/containers/0/image", "value": image,
	}})
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p := &convoyv1.Project{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.cfg.namespace}}
	if err := b.fleet.mgr.Patch(pctx, p, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		b.track.cancel(e)
		return nil, fmt.Errorf("patching Project %s: %w", name, err)
	}
	b.track.setStart(e, time.Now())
	return e, nil
}

// sequential makes n changes one after another, each waited for (up to changeTimeout)
// before the next, and returns their latencies to the given clusters.
// With pace > 0, changes start at least pace apart, so that they spread over a window.
func (b *bench) sequential(ctx context.Context, n int, clusters []string, pace time.Duration) (dist, []*expectation, error) {
	var d dist
	var es []*expectation
	begin := time.Now()
	for i := range n {
		if err := sleep(ctx, time.Until(begin.Add(time.Duration(i)*pace))); err != nil {
			return d, es, err
		}
		name, _ := b.nextProject()
		e, err := b.change(ctx, name, clusters)
		if err != nil {
			return d, es, err
		}
		es = append(es, e)
		t := time.NewTimer(b.cfg.changeTimeout)
		select {
		case <-e.done:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return d, es, ctx.Err()
		}
		t.Stop()
		l := e.latency(b.track)
		if l == lost {
			b.track.cancel(e)
			logf("  change %d (%s) did not reach %v within %s", i+1, name, clusters, b.cfg.changeTimeout)
		}
		d = append(d, l)
		if (i+1)%10 == 0 {
			logf("  %d/%d changes, last %s", i+1, n, fmtDur(l))
		}
	}
	return d, es, nil
}

// latenciesTo recomputes the latencies of earlier changes to a subset of their clusters.
func (b *bench) latenciesTo(es []*expectation, clusters []string) dist {
	b.track.mu.Lock()
	defer b.track.mu.Unlock()
	var d dist
	for _, e := range es {
		var last time.Time
		for _, c := range clusters {
			s, ok := e.seen[c]
			if !ok {
				last = time.Time{}
				break
			}
			if s.After(last) {
				last = s
			}
		}
		switch {
		case last.IsZero():
			d = append(d, lost)
		case last.Before(e.start):
			d = append(d, 0)
		default:
			d = append(d, last.Sub(e.start))
		}
	}
	return d
}

func (b *bench) single(ctx context.Context) error {
	d, es, err := b.sequential(ctx, b.cfg.samples, b.fleet.clusters, 0)
	if err != nil {
		return err
	}
	b.healthyEs = es
	b.rep.single = d
	b.rep.add(fmt.Sprintf("Single change → every cluster (%d sequential image changes, %d clusters)", len(d), len(b.fleet.clusters)),
		d.summary(50, 90, 99)+lostNote(d), "P99 ≤ 1 s", verdict(len(d) > 0 && d.pct(99) <= time.Second))
	if len(b.rep.raw) > 0 && len(d) > 0 {
		ratio := float64(d.pct(50)) / float64(b.rep.raw.pct(50))
		b.rep.add("Ratio single-change P50 / raw apply P50", fmt.Sprintf("%.1f×", ratio), "≤ 3×", verdict(ratio <= 3))
	}
	return nil
}

func lostNote(d dist) string {
	if l := d.lostCount(); l > 0 {
		return fmt.Sprintf("; %d lost (> CHANGE_TIMEOUT)", l)
	}
	return ""
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// steady issues changes to different Projects at a fixed rate for a window, then waits a
// grace period for the stragglers.
func (b *bench) steady(ctx context.Context) error {
	r, err := b.atRate(ctx, b.change)
	if err != nil {
		return err
	}
	b.rep.steady = r.d
	b.rep.add(fmt.Sprintf("Steady %.3g changes/s for %s (%d changes over different Projects, achieved %.1f/s)", b.cfg.rate, b.cfg.steady, len(r.d), r.achieved),
		r.summary(b.cfg.grace), "P99 ≤ 2 s, none lost", verdict(len(r.d) > 0 && r.d.lostCount() == 0 && r.d.pct(99) <= 2*time.Second))
	return nil
}

// rawSteady is the floor of the steady phase on this machine: the same rate of pod-template
// changes, to the same Deployments in every cluster, made by the bench itself without convoy.
func (b *bench) rawSteady(ctx context.Context) error {
	r, err := b.atRate(ctx, b.rawChange)
	if err != nil {
		return err
	}
	b.rep.add(fmt.Sprintf("Floor, no convoy: the same %.3g changes/s patched straight into every cluster (%d changes, achieved %.1f/s)", b.cfg.rate, len(r.d), r.achieved),
		r.summary(b.cfg.grace), "", "")
	return nil
}

// rateResult is what atRate measured.
type rateResult struct {
	d        dist
	achieved float64
	skipped  int
}

func (r rateResult) summary(grace time.Duration) string {
	note := ""
	if r.skipped > 0 {
		note = fmt.Sprintf("; %d ticks skipped: every Project had a change in flight", r.skipped)
	}
	return r.d.summary(50, 90, 99) + fmt.Sprintf("; **%d lost** (not in every cluster %s after the window)", r.d.lostCount(), grace) + note
}

// atRate makes changes with change, each to a different Project, at the configured rate for
// the steady window, then waits a grace period for the stragglers.
func (b *bench) atRate(ctx context.Context, change func(context.Context, string, []string) (*expectation, error)) (rateResult, error) {
	b.mu.Lock()
	b.pending = map[string]bool{}
	b.mu.Unlock()
	total := int(b.cfg.rate * b.cfg.steady.Seconds())
	interval := time.Duration(float64(time.Second) / b.cfg.rate)
	var (
		mu      sync.Mutex
		es      []*expectation
		skipped int
		failed  []error
		wg      sync.WaitGroup
	)
	start := time.Now()
	for i := range total {
		if err := sleep(ctx, time.Until(start.Add(time.Duration(i)*interval))); err != nil {
			return rateResult{}, err
		}
		name, ok := b.nextProject()
		if !ok {
			skipped++
			continue
		}
		b.mu.Lock()
		b.pending[name] = true
		b.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := change(ctx, name, b.fleet.clusters)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				b.mu.Lock()
				delete(b.pending, name)
				b.mu.Unlock()
				return
			}
			es = append(es, e)
			go func() {
				select {
				case <-e.done:
				case <-ctx.Done():
				}
				b.mu.Lock()
				delete(b.pending, name)
				b.mu.Unlock()
			}()
		}()
	}
	wg.Wait()
	window := time.Since(start)
	logf("  %d changes issued in %.1f s; waiting up to %s for the rest", len(es), window.Seconds(), b.cfg.grace)
	if len(failed) > 0 {
		return rateResult{}, fmt.Errorf("%d patches failed, first: %w", len(failed), failed[0])
	}
	graceEnd := time.Now().Add(b.cfg.grace)
	for _, e := range es {
		select {
		case <-e.done:
		case <-time.After(time.Until(graceEnd)):
		case <-ctx.Done():
			return rateResult{}, ctx.Err()
		}
	}
	r := rateResult{achieved: float64(len(es)) / window.Seconds(), skipped: skipped}
	for _, e := range es {
		l := e.latency(b.track)
		if l == lost {
			b.track.cancel(e)
		}
		r.d = append(r.d, l)
	}
	return r, nil
}

// rawAnnotation is the pod-template annotation the floor phases change. convoy does not own
// it, so it keeps it (a foreign field) and writes nothing back; every change still rolls the
// Deployment out, exactly like a change of the image.
const rawAnnotation = "convoy-bench/raw-change"

func annotationIs(value string) func(*appsv1.Deployment) bool {
	return func(d *appsv1.Deployment) bool { return d.Spec.Template.Annotations[rawAnnotation] == value }
}

// rawChange patches one Project's Deployment in every cluster at once, without convoy. The
// expectation starts before the patches are sent, so the floor includes their round trips.
func (b *bench) rawChange(ctx context.Context, name string, clusters []string) (*expectation, error) {
	value := b.newImage()
	e := b.track.expect(deploymentKey(name, workload), clusters, annotationIs(value))
	e.project = name
	b.track.setStart(e, time.Now())
	errs := make([]error, len(clusters))
	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.rawPatch(ctx, c, name, value)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.track.cancel(e)
		return nil, err
	}
	return e, nil
}

// rawPatch sets rawAnnotation on a Deployment's pod template with a merge patch (field
// manager convoy-bench-raw).
func (b *bench) rawPatch(ctx context.Context, cluster, name, value string) error {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{rawAnnotation: value}}}}})
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := b.fleet.remotes[cluster].AppsV1().Deployments(name).Patch(pctx, workload, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: rawManager + "-raw"})
	if err != nil {
		return fmt.Errorf("patching Deployment %s/%s in %s: %w", name, workload, cluster, err)
	}
	return nil
}

// burst changes the shared GracefulShutdownPolicy, so every Deployment in every cluster
// gets a new terminationGracePeriodSeconds, and times the last one.
func (b *bench) burst(ctx context.Context) error {
	change, err := b.sharedPolicyChange(ctx)
	if err != nil {
		return err
	}
	result, ok, err := b.timeBurst(ctx, change.es, change.apply)
	if err != nil {
		return err
	}
	b.rep.add(fmt.Sprintf("Burst: shared GracefulShutdownPolicy changed → %d Deployment updates (appShutdownSeconds %s)", len(change.es)*len(b.fleet.clusters), change.what),
		result, "last ≤ 60 s", verdict(ok))
	return nil
}

// policyChange is a change of the GracefulShutdownPolicy every Project uses: apply makes it,
// es expect it in every Deployment (their termination grace period changes).
type policyChange struct {
	es    []*expectation
	apply func() error
	what  string
}

func (b *bench) sharedPolicyChange(ctx context.Context) (*policyChange, error) {
	key := client.ObjectKey{Namespace: b.cfg.namespace, Name: "web"}
	policy := &convoyv1.GracefulShutdownPolicy{}
	if err := b.fleet.mgr.Get(ctx, key, policy); err != nil {
		return nil, err
	}
	prev := policy.Spec.AppShutdownSeconds
	next := prev + 1
	change := &policyChange{what: fmt.Sprintf("%d → %d", prev, next)}
	for _, name := range b.names {
		dk := deploymentKey(name, workload)
		d := b.track.get(b.fleet.clusters[0], dk)
		if d == nil {
			return nil, fmt.Errorf("Deployment %s missing in %s", dk, b.fleet.clusters[0])
		}
		old := ptr.Deref(d.Spec.Template.Spec.TerminationGracePeriodSeconds, -1)
		change.es = append(change.es, b.track.expect(dk, b.fleet.clusters, func(d *appsv1.Deployment) bool {
			return ptr.Deref(d.Spec.Template.Spec.TerminationGracePeriodSeconds, -1) != old
		}))
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"appShutdownSeconds": next}})
	change.apply = func() error {
		if err := b.fleet.mgr.Patch(ctx, policy, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("patching GracefulShutdownPolicy %s: %w", key, err)
		}
		return nil
	}
	return change, nil
}

// rawBurstWorkersPerCluster matches convoy's default --cluster-workers, so the floor applies
// with the same concurrency per cluster as convoy.
const rawBurstWorkersPerCluster = 4

// rawBurst is the floor of the burst on this machine: every Deployment in every cluster gets
// a pod-template change patched by the bench itself, without convoy.
func (b *bench) rawBurst(ctx context.Context) error {
	value := b.newImage()
	var es []*expectation
	for _, name := range b.names {
		es = append(es, b.track.expect(deploymentKey(name, workload), b.fleet.clusters, annotationIs(value)))
	}
	result, _, err := b.timeBurst(ctx, es, func() error {
		var wg sync.WaitGroup
		for _, c := range b.fleet.clusters {
			names := make(chan string)
			for range rawBurstWorkersPerCluster {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for name := range names {
						if err := b.rawPatch(ctx, c, name, value); err != nil {
							logf("  %v", err)
						}
					}
				}()
			}
			go func() {
				defer close(names)
				for _, name := range b.names {
					select {
					case names <- name:
					case <-ctx.Done():
						return
					}
				}
			}()
		}
		wg.Wait() // arrivals are timestamped as they come, also while patches are still sent
		return nil
	})
	if err != nil {
		return err
	}
	b.rep.add(fmt.Sprintf("Floor, no convoy: %d Deployment updates patched straight into the clusters (%d at a time per cluster)", len(es)*len(b.fleet.clusters), rawBurstWorkersPerCluster),
		result, "", "")
	return nil
}

// timeBurst runs trigger and times the arrival of every expectation: the last one and the
// 50 % and 90 % marks, or how many did not arrive within the burst timeout. ok reports that
// all arrived within 60 s.
func (b *bench) timeBurst(ctx context.Context, es []*expectation, trigger func() error) (result string, ok bool, err error) {
	defer func() {
		for _, e := range es {
			b.track.cancel(e)
		}
	}()
	start := time.Now()
	if err := trigger(); err != nil {
		return "", false, err
	}
	total := len(es) * len(b.fleet.clusters)
	waitErr := poll(ctx, b.cfg.burstTimeout, 200*time.Millisecond, func() (bool, string, error) {
		seen, want := b.track.seenCount(es)
		return seen == want, fmt.Sprintf("%d/%d Deployments updated", seen, want), nil
	})
	times := b.track.arrivals(es)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	at := func(frac float64) string {
		i := int(frac*float64(total)+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(times) {
			return "—"
		}
		return fmt.Sprintf("%.1f s", times[i].Sub(start).Seconds())
	}
	if waitErr != nil {
		return fmt.Sprintf("**%d of %d not updated within %s** (50%% at %s, 90%% at %s)", total-len(times), total, b.cfg.burstTimeout, at(0.5), at(0.9)), false, nil
	}
	return fmt.Sprintf("last at %s (50%% at %s, 90%% at %s)", at(1), at(0.5), at(0.9)), times[len(times)-1].Sub(start) <= time.Minute, nil
}

// settleAll waits until every Project is Ready again, then a quiet period.
func (b *bench) settleAll(ctx context.Context) error {
	n := len(b.names)
	if err := poll(ctx, b.cfg.recoverTimeout, time.Second, func() (bool, string, error) {
		r := b.readyCount(ctx)
		return r == n, fmt.Sprintf("%d/%d Projects Ready", r, n), nil
	}); err != nil {
		return err
	}
	logf("  all Projects Ready; quiet for %s", b.cfg.settle)
	return sleep(ctx, b.cfg.settle)
}

// noopWindow counts the writes every API server received while nothing changed.
func (b *bench) noopWindow(ctx context.Context) error {
	clusters := append([]string{managerCluster}, b.fleet.clusters...)
	scrape := func() (map[string]requestCounts, error) {
		out := map[string]requestCounts{}
		for _, c := range clusters {
			cs := b.fleet.mgrCS
			if c != managerCluster {
				cs = b.fleet.remotes[c]
			}
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			counts, err := scrapeRequests(sctx, cs)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c, err)
			}
			out[c] = counts
		}
		return out, nil
	}
	before, err := scrape()
	if err != nil {
		return err
	}
	cpu0, _ := cpuSeconds(b.mgrPID)
	logf("  watching for %s", b.cfg.noop)
	if err := sleep(ctx, b.cfg.noop); err != nil {
		return err
	}
	cpu1, _ := cpuSeconds(b.mgrPID)
	after, err := scrape()
	if err != nil {
		return err
	}
	var perCluster []string
	maxConvoy := 0
	var detail []string
	for _, c := range b.fleet.clusters {
		w := writesBetween(before[c], after[c])
		n := w.total(convoyRemoteWrite)
		maxConvoy = max(maxConvoy, n)
		perCluster = append(perCluster, fmt.Sprintf("%s %d", c, n))
		detail = append(detail, fmt.Sprintf("%s: %d writes in all — %s", c, w.total(nil), w.top(4)))
	}
	b.rep.add(fmt.Sprintf("No-op window (%s): writes to each service cluster of the kinds convoy writes", b.cfg.noop),
		strings.Join(perCluster, ", "), "0", verdict(maxConvoy == 0))
	mw := writesBetween(before[managerCluster], after[managerCluster])
	b.rep.add(fmt.Sprintf("No-op window (%s): writes to the manager cluster (convoy.dev and Events)", b.cfg.noop),
		fmt.Sprintf("%d (%s)", mw.total(convoyManagerWrite), mw.top(3)), "", "")
	detail = append(detail, fmt.Sprintf("manager: %d writes in all — %s", mw.total(nil), mw.top(4)))
	b.rep.noopDetail = detail
	b.rep.add(fmt.Sprintf("Manager CPU in the no-op window (%s)", b.cfg.noop),
		fmt.Sprintf("%.2f CPU s (%.1f%% of one core)", cpu1-cpu0, 100*(cpu1-cpu0)/b.cfg.noop.Seconds()), "", "")
	return nil
}

// memory reports the manager's RSS per object it holds: Projects plus the objects it owns
// in service clusters (Namespaces, Deployments, Services, DestinationRules).
func (b *bench) memory(ctx context.Context) {
	rss, err := rssBytes(b.mgrPID)
	if err != nil {
		b.rep.add("Manager RSS per object held", "failed: "+err.Error(), "", "")
		return
	}
	objects, detail, err := b.countObjects(ctx)
	if err != nil {
		b.rep.add("Manager RSS per object held", "failed: "+err.Error(), "", "")
		return
	}
	per := float64(rss) / 1024 / float64(objects)
	marginal := float64(rss-b.baseRSS) / 1024 / float64(objects)
	b.rep.add("Manager RSS per object held",
		fmt.Sprintf("%.1f KiB (%.0f MiB / %d objects: %s); above the %.0f MiB before the Projects: %.1f KiB", per, float64(rss)/(1<<20), objects, detail, float64(b.baseRSS)/(1<<20), marginal),
		"≤ 4 KiB", verdict(per <= 4))
}

func (b *bench) countObjects(ctx context.Context) (int, string, error) {
	var projects convoyv1.ProjectList
	if err := b.fleet.mgr.List(ctx, &projects); err != nil {
		return 0, "", err
	}
	total := len(projects.Items)
	kinds := []schema.GroupVersionResource{
		{Version: "v1", Resource: "namespaces"},
		{Group: "apps", Version: "v1", Resource: "deployments"},
		{Version: "v1", Resource: "services"},
		{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
	}
	remote := 0
	for _, c := range b.fleet.clusters {
		cfg, err := b.fleet.restConfig(c, 100)
		if err != nil {
			return 0, "", err
		}
		mc, err := metadata.NewForConfig(cfg)
		if err != nil {
			return 0, "", err
		}
		for _, gvr := range kinds {
			lctx, cancel := context.WithTimeout(ctx, time.Minute)
			list, err := mc.Resource(gvr).List(lctx, metav1.ListOptions{LabelSelector: convoyv1.ManagedByLabel + "=" + convoyv1.ManagedByValue})
			cancel()
			if apierrors.IsNotFound(err) {
				continue // no Istio in this cluster
			}
			if err != nil {
				return 0, "", fmt.Errorf("%s: listing %s: %w", c, gvr.Resource, err)
			}
			remote += len(list.Items)
		}
	}
	return total + remote, fmt.Sprintf("%d Projects + %d remote", total, remote), nil
}

func managerArgs(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	if len(args) > 0 {
		args[0] = filepath.Base(args[0])
	}
	return strings.Join(args, " ")
}

func runCmd(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return string(out), err
}
