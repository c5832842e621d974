package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// stagedRollout measures a staged rollout at scale. Every Project gets a RolloutStrategy
// with one wave per cluster (the last cluster in the implicit rest wave, no soak), then the
// shared GracefulShutdownPolicy changes: a new revision of every Project, rolled out wave by
// wave. Reported: when the last Deployment of each wave had the change, and when every
// Project's rollout was Complete. It runs last: it leaves the Projects with a strategy.
func (b *bench) stagedRollout(ctx context.Context) error {
	clusters := b.fleet.clusters
	strategy := &convoyv1.RolloutStrategy{ObjectMeta: metav1.ObjectMeta{Namespace: b.cfg.namespace, Name: "bench-waves"}}
	for _, c := range clusters[:len(clusters)-1] {
		strategy.Spec.Waves = append(strategy.Spec.Waves, convoyv1.RolloutWave{Name: c, Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{c}}})
	}
	if err := b.fleet.mgr.Create(ctx, strategy); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating RolloutStrategy: %w", err)
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"rolloutStrategy": map[string]string{"name": strategy.Name}}})
	for _, name := range b.names {
		p := &convoyv1.Project{ObjectMeta: metav1.ObjectMeta{Namespace: b.cfg.namespace, Name: name}}
		if err := b.fleet.mgr.Patch(ctx, p, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("naming the strategy in Project %s: %w", name, err)
		}
	}
	// The first revision changes nothing in the clusters; wait until every rollout says so.
	first, err := b.waitRolloutsComplete(ctx, nil)
	if err != nil {
		return err
	}
	change, err := b.sharedPolicyChange(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, e := range change.es {
			b.track.cancel(e)
		}
	}()
	start := time.Now()
	for _, e := range change.es {
		b.track.setStart(e, start)
	}
	if err := change.apply(); err != nil {
		return err
	}
	if err := poll(ctx, b.cfg.burstTimeout, 200*time.Millisecond, func() (bool, string, error) {
		seen, want := b.track.seenCount(change.es)
		return seen == want, fmt.Sprintf("%d/%d Deployments updated", seen, want), nil
	}); err != nil {
		return err
	}
	var waves []string
	for _, c := range clusters {
		waves = append(waves, fmt.Sprintf("%s at %.1f s", c, b.latenciesTo(change.es, []string{c}).pct(100).Seconds()))
	}
	if _, err := b.waitRolloutsComplete(ctx, first); err != nil {
		return err
	}
	b.rep.add(fmt.Sprintf("Staged rollout: shared GracefulShutdownPolicy changed (appShutdownSeconds %s) → %d Projects, one wave per cluster, no soak", change.what, len(b.names)),
		fmt.Sprintf("last Deployment of each wave: %s; all %d rollouts Complete at %.1f s", strings.Join(waves, ", "), len(b.names), time.Since(start).Seconds()), "", "")
	return nil
}

// waitRolloutsComplete waits until every Project's rollout is Complete with a stable
// revision other than the one in before (nil: any), and returns the stable revisions.
func (b *bench) waitRolloutsComplete(ctx context.Context, before map[string]string) (map[string]string, error) {
	stable := map[string]string{}
	err := poll(ctx, b.cfg.recoverTimeout, time.Second, func() (bool, string, error) {
		var list convoyv1.ProjectList
		if err := b.fleet.mgr.List(ctx, &list, client.InNamespace(b.cfg.namespace)); err != nil {
			return false, "", err
		}
		clear(stable)
		for _, p := range list.Items {
			ro := p.Status.Rollout
			if ro != nil && ro.Phase == convoyv1.RolloutComplete && (before == nil || ro.StableRevision != before[p.Name]) {
				stable[p.Name] = ro.StableRevision
			}
		}
		return len(stable) == len(b.names), fmt.Sprintf("%d/%d rollouts Complete", len(stable), len(b.names)), nil
	})
	return stable, err
}
