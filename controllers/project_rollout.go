package controllers

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/gate"
	"github.com/convoy-dev/convoy/internal/metrics"
	"github.com/convoy-dev/convoy/internal/rollout"
)

// +kubebuilder:rbac:groups=convoy.dev,resources=rolloutstrategies,verbs=get;list;watch
// +kubebuilder:rbac:groups=convoy.dev,resources=rolloutapprovals,verbs=get;list;watch

// gateBudget bounds the time one status reconcile spends querying health gates.
const gateBudget = 10 * time.Second

// advanceRollout is the rollout phase of the Project status controller: it records the
// revision of the Project's current inputs and moves its rollout one step from the clusters'
// statuses. The step is persisted in status.rollout, which the dispatcher reads to decide what
// each cluster runs. The output says when to look again without an event (soak, gates) and
// what to announce once the status is saved.
func (r *ProjectReconciler) advanceRollout(ctx context.Context, pi *projectInputs, statuses []convoyv1.ProjectClusterStatus) (rollout.Output, error) {
	project := pi.project
	if pi.strategy == nil {
		project.Status.Rollout = nil
		return rollout.Output{}, nil
	}
	target, history, err := r.revisions.ensure(ctx, pi)
	if err != nil {
		return rollout.Output{}, err
	}
	approvals, err := r.approvals(ctx, project, target)
	if err != nil {
		return rollout.Output{}, err
	}
	var clusters []rollout.Cluster
	inUse := []string{target}
	for _, st := range statuses {
		inUse = append(inUse, st.Revision)
		if pi.targets(st.Name) {
			clusters = append(clusters, rollout.Cluster{Name: st.Name, Wave: pi.waves[st.Name], Revision: st.Revision, Reason: st.Reason, Message: st.Message})
		}
	}
	// Gates answer from the evaluator's cache within an interval; an unreachable Prometheus
	// costs at most gateBudget per reconcile (undecided gates hold the wave).
	gateCtx, cancel := context.WithTimeout(ctx, gateBudget)
	defer cancel()
	out := rollout.Step(project.Status.Rollout, rollout.Input{
		Now: time.Now(), Strategy: pi.strategy.Name, Spec: &pi.strategy.Spec, Target: target, Clusters: clusters,
		Approvals: approvals, Gates: r.gatesOf(gateCtx, pi), GateInterval: r.Gates.Interval,
	})
	project.Status.Rollout = out.Status
	if history == nil {
		return out, nil
	}
	return out, r.revisions.prune(ctx, history, append(inUse, out.Status.StableRevision))
}

// approvals are the RolloutApprovals of the target revision, by wave. The admission policy
// convoy-rollout-approval guarantees spec.approver is the user who created each.
func (r *ProjectReconciler) approvals(ctx context.Context, project *convoyv1.Project, target string) (map[string]rollout.Approval, error) {
	var list convoyv1.RolloutApprovalList
	if err := r.List(ctx, &list, client.InNamespace(project.Namespace)); err != nil {
		return nil, err
	}
	out := map[string]rollout.Approval{}
	for _, a := range list.Items {
		if a.Spec.Project == project.Name && a.Spec.Revision == target && a.DeletionTimestamp.IsZero() {
			if first, seen := out[a.Spec.Wave]; !seen || a.CreationTimestamp.Before(&first.At) {
				out[a.Spec.Wave] = rollout.Approval{By: a.Spec.Approver, At: a.CreationTimestamp}
			}
		}
	}
	return out, nil
}

// gatesOf evaluates the strategy's health gates in the clusters of a soaking wave, every
// (cluster, gate) at once: a wave's gates cost the slowest query, not their sum.
func (r *ProjectReconciler) gatesOf(ctx context.Context, pi *projectInputs) rollout.GateFunc {
	gates := pi.strategy.Spec.Gates
	if len(gates) == 0 {
		return nil
	}
	return func(clusters []string) (map[string]string, []string) {
		results := make([][]gate.Result, len(clusters))
		var wg sync.WaitGroup
		for i, cluster := range clusters {
			results[i] = make([]gate.Result, len(gates))
			for j, g := range gates {
				wg.Go(func() {
					results[i][j] = r.Gates.Check(ctx, g, gate.Vars{Cluster: cluster, Namespace: pi.project.RemoteNamespace(), Project: pi.project.Name})
				})
			}
		}
		wg.Wait()
		breaches := map[string]string{}
		var waits []string
		for i, cluster := range clusters {
			for _, res := range results[i] {
				switch {
				case res.Breach != "" && breaches[cluster] == "":
					breaches[cluster] = res.Breach
				case res.Wait != "":
					waits = append(waits, res.Wait)
				}
			}
		}
		return breaches, waits
	}
}

// announce turns a step's transitions into Events on the Project and metrics. It runs only
// after the step's status was saved: a step that is repeated because its patch failed must
// not count twice.
func (r *ProjectReconciler) announce(project *convoyv1.Project, out rollout.Output) {
	for _, e := range out.Events {
		kind := corev1.EventTypeNormal
		if e.Warning {
			kind = corev1.EventTypeWarning
		}
		r.Events.Eventf(project, nil, kind, e.Reason, "Rollout", "%s", truncate(e.Message, 1024))
		result := ""
		switch e.Reason {
		case "RolloutComplete":
			result = "complete"
		case "RolloutHalted":
			result = "halted"
		case "RolloutRolledBack":
			result = "rolled_back"
		case "RolloutSuperseded":
			result = "superseded"
		case "WaveFailed":
			metrics.WaveFailures.WithLabelValues(e.Wave).Inc()
		}
		if result != "" {
			metrics.Rollouts.WithLabelValues(result).Inc()
			if start := out.Status.StartTime; start != nil && result != "superseded" { // a superseded rollout's start is gone with it
				metrics.RolloutDuration.WithLabelValues(result).Observe(time.Since(start.Time).Seconds())
			}
		}
	}
}

// rolloutConditions says on the Project's conditions what its rollout waits for or why it
// stopped: the clusters of waves not reached yet are synced, but not with the latest spec.
func rolloutConditions(project *convoyv1.Project) {
	ro, conds, gen := project.Status.Rollout, &project.Status.Conditions, project.Generation
	if ro == nil {
		return
	}
	switch ro.Phase {
	case convoyv1.RolloutHalted:
		markStalled(conds, gen, convoyv1.ReasonRolloutHalted, ro.Message)
	case convoyv1.RolloutRolledBack:
		markStalled(conds, gen, convoyv1.ReasonRolledBack, ro.Message)
	case convoyv1.RolloutWaitingForApproval:
		markReconciling(conds, gen, convoyv1.ReasonWaitingForApproval, ro.Message)
	case convoyv1.RolloutProgressing:
		if !meta.IsStatusConditionTrue(*conds, convoyv1.StalledCondition) {
			markReconciling(conds, gen, convoyv1.ReasonRolloutProgressing, ro.Message)
		}
	}
}
