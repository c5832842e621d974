package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// hung puts a proxy in front of one service cluster's API server (convoy's kubeconfig
// Secret for that cluster re-pointed at it), freezes the proxy so the cluster accepts TCP and
// never answers, and measures single-change latency to the other clusters; then it thaws the
// proxy, times the catch-up and restores the Secret.
func (b *bench) hung(ctx context.Context) error {
	if len(b.fleet.clusters) < 2 {
		b.rep.add("Hung cluster", "skipped: needs at least 2 service clusters", "", "")
		return nil
	}
	victim := b.fleet.clusters[len(b.fleet.clusters)-1]
	others := b.fleet.clusters[:len(b.fleet.clusters)-1]
	if err := b.routeThroughProxy(ctx, victim); err != nil {
		return err
	}
	// Changes to every cluster until one arrives with requests to the victim flowing through
	// the proxy: then convoy reaches it there and no longer through its old connection.
	deadline := time.Now().Add(b.cfg.recoverTimeout)
	for {
		name, _ := b.nextProject()
		before := b.hang.upstreamBytes()
		e, err := b.change(ctx, name, b.fleet.clusters)
		if err != nil {
			return err
		}
		if err := waitFor(ctx, e.done, time.Until(deadline)); err != nil {
			b.track.cancel(e)
			return fmt.Errorf("a change did not reach every cluster with %s behind the proxy: %w", victim, err)
		}
		if b.hang.upstreamBytes() > before {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("changes reach %s without a byte through the proxy: convoy still uses its old connection %s after the kubeconfig Secret changed", victim, b.cfg.recoverTimeout)
		}
		logf("  a change reached %s through convoy's old connection; trying again", victim)
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	b.hungMu.Lock()
	b.hang.setFrozen(true)
	b.hungMu.Unlock()
	stopped := time.Now()
	logf("  %s frozen: convoy's connections to it are accepted and never answered", victim)

	// When does the manager notice? Poll the ServiceCluster's Ready condition.
	detected := make(chan time.Duration, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for watchCtx.Err() == nil {
			sc := &convoyv1.ServiceCluster{}
			gctx, cancel := context.WithTimeout(watchCtx, 5*time.Second)
			err := b.fleet.mgr.Get(gctx, client.ObjectKey{Name: victim}, sc)
			cancel()
			if err == nil && !meta.IsStatusConditionTrue(sc.Status.Conditions, convoyv1.ReadyCondition) {
				detected <- time.Since(stopped)
				return
			}
			_ = sleep(watchCtx, time.Second)
		}
	}()

	// Spread the samples over at least HUNG, so that they cover the time before and after
	// convoy notices the cluster is gone.
	pace := b.cfg.hung
	if b.cfg.samples > 1 {
		pace /= time.Duration(b.cfg.samples - 1)
	}
	d, es, err := b.sequential(ctx, b.cfg.samples, others, pace)
	hungFor := time.Since(stopped)
	b.hungMu.Lock()
	b.hang.setFrozen(false)
	b.hungMu.Unlock()
	thawed := time.Now()
	stopWatch()
	if err != nil {
		return err
	}
	detection := "not reported unready while hung"
	select {
	case t := <-detected:
		detection = fmt.Sprintf("ServiceCluster %s turned Ready=False %.1f s after the freeze", victim, t.Seconds())
	default:
	}
	b.rep.hung = d
	res := d.summary(50, 99) + lostNote(d)
	ok := len(d) > 0 && d.lostCount() == 0
	target := "P99 ≤ 1.5× healthy"
	if len(b.healthyEs) > 0 {
		healthy := b.latenciesTo(b.healthyEs, others)
		ratio := float64(d.pct(99)) / float64(healthy.pct(99))
		res += fmt.Sprintf("; healthy run to the same clusters %s; P99 ratio %.1f×", healthy.summary(50, 99), ratio)
		ok = ok && ratio <= 1.5
	} else {
		target += " (healthy run skipped: not judged)"
		ok = false
	}
	v := verdict(ok)
	if len(b.healthyEs) == 0 {
		v = ""
	}
	b.rep.add(fmt.Sprintf("Hung cluster (%s frozen for %.0f s): single change → the other %d clusters (%d samples)", victim, hungFor.Seconds(), len(others), len(d)),
		res, target, v)

	// Recovery: the thawed cluster must catch up with every change made meanwhile.
	changed := map[string]bool{}
	for _, e := range es {
		changed[e.project] = true
	}
	var catchUp []*expectation
	for name := range changed {
		p := &convoyv1.Project{}
		if err := b.fleet.mgr.Get(ctx, client.ObjectKey{Namespace: b.cfg.namespace, Name: name}, p); err != nil {
			return err
		}
		image := p.Spec.Workloads[0].Template.Spec.Containers[0].Image
		dk := deploymentKey(name, workload)
		if dep := b.track.get(victim, dk); dep != nil && imageIs(image)(dep) {
			continue
		}
		catchUp = append(catchUp, b.track.expect(dk, []string{victim}, imageIs(image)))
	}
	err = poll(ctx, b.cfg.recoverTimeout, 200*time.Millisecond, func() (bool, string, error) {
		seen, want := b.track.seenCount(catchUp)
		return seen == want, fmt.Sprintf("%s caught up with %d/%d changes", victim, seen, want), nil
	})
	for _, e := range catchUp {
		b.track.cancel(e)
	}
	recovery := fmt.Sprintf("after the thaw, %.1f s until %s showed the latest image of all %d Projects changed meanwhile", time.Since(thawed).Seconds(), victim, len(changed))
	if err != nil {
		recovery = fmt.Sprintf("**%s did not catch up within %s of the thaw**", victim, b.cfg.recoverTimeout)
	}
	b.rep.add("Hung cluster: detection and recovery", detection+"; "+recovery, "", "")
	return b.resumeHung()
}

// routeThroughProxy starts the freezable proxy in front of a cluster's API server and points
// convoy's kubeconfig Secret for it at the proxy (convoy sees a credential change and
// reconnects), then waits until convoy has connected through it and reports it Ready.
func (b *bench) routeThroughProxy(ctx context.Context, cluster string) error {
	sc := &convoyv1.ServiceCluster{}
	if err := b.fleet.mgr.Get(ctx, client.ObjectKey{Name: cluster}, sc); err != nil {
		return err
	}
	ref := sc.Spec.KubeconfigSecretRef
	key := ref.Key
	if key == "" {
		key = convoyv1.DefaultKubeconfigKey
	}
	secretKey := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	secret := &corev1.Secret{}
	if err := b.fleet.mgr.Get(ctx, secretKey, secret); err != nil {
		return fmt.Errorf("kubeconfig Secret of %s: %w", cluster, err)
	}
	orig := secret.Data[key]
	kc, err := clientcmd.Load(orig)
	if err != nil {
		return fmt.Errorf("kubeconfig Secret of %s: %w", cluster, err)
	}
	var target string
	for _, c := range kc.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			return err
		}
		target = u.Host
	}
	if len(kc.Clusters) != 1 || target == "" {
		return fmt.Errorf("kubeconfig Secret of %s: expected one cluster with a server", cluster)
	}
	proxy, err := newHangProxy(target)
	if err != nil {
		return err
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + proxy.addr()
	}
	data, err := clientcmd.Write(*kc)
	if err != nil {
		proxy.close()
		return err
	}
	b.hungMu.Lock()
	b.hang, b.hangSecret, b.hangKey, b.hangOrig = proxy, secretKey, key, orig
	b.hungMu.Unlock()
	if err := b.setKubeconfig(ctx, secretKey, key, data); err != nil {
		return err
	}
	logf("  convoy's kubeconfig Secret for %s now points at a proxy on %s (→ %s)", cluster, proxy.addr(), target)
	return poll(ctx, b.cfg.recoverTimeout, time.Second, func() (bool, string, error) {
		sc := &convoyv1.ServiceCluster{}
		if err := b.fleet.mgr.Get(ctx, client.ObjectKey{Name: cluster}, sc); err != nil {
			return false, "", err
		}
		ready := meta.IsStatusConditionTrue(sc.Status.Conditions, convoyv1.ReadyCondition)
		n := proxy.acceptedCount()
		return ready && n > 0, fmt.Sprintf("%s Ready=%v, %d connections through the proxy", cluster, ready, n), nil
	})
}

func (b *bench) setKubeconfig(ctx context.Context, key client.ObjectKey, field string, data []byte) error {
	secret := &corev1.Secret{}
	if err := b.fleet.mgr.Get(ctx, key, secret); err != nil {
		return err
	}
	secret.Data[field] = data
	if err := b.fleet.mgr.Update(ctx, secret); err != nil {
		return fmt.Errorf("updating Secret %s: %w", key, err)
	}
	return nil
}

// resumeHung thaws the proxy, restores the original kubeconfig Secret and, once convoy is
// connected directly again, closes the proxy. It runs at the end of the hung phase and on
// any failure or interrupt (with a fresh context), so a kept fleet is left as it was.
func (b *bench) resumeHung() error {
	b.hungMu.Lock()
	proxy, key, field, orig := b.hang, b.hangSecret, b.hangKey, b.hangOrig
	b.hang = nil
	b.hungMu.Unlock()
	if proxy == nil {
		return nil
	}
	defer proxy.close()
	proxy.setFrozen(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := b.setKubeconfig(ctx, key, field, orig); err != nil {
		logf("restoring Secret %s: %v; restore it by hand from the kubeconfig under %s", key, err, b.fleet.dir)
		return err
	}
	logf("  Secret %s restored", key)
	// Give convoy the time to reconnect directly before the proxy goes away.
	_ = poll(ctx, time.Minute, time.Second, func() (bool, string, error) {
		var list convoyv1.ServiceClusterList
		if err := b.fleet.mgr.List(ctx, &list); err != nil {
			return false, "", err
		}
		for _, sc := range list.Items {
			if !meta.IsStatusConditionTrue(sc.Status.Conditions, convoyv1.ReadyCondition) {
				return false, sc.Name + " not Ready", nil
			}
		}
		return true, "", nil
	})
	return nil
}

func waitFor(ctx context.Context, done <-chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("not within %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
