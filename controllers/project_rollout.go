package controllers

import (
	"context"
	"strings"
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
// each cluster runs. It returns when to look again without an event (soak, gates).
func (r *ProjectReconciler) advanceRollout(ctx context.Context, pi *projectInputs, statuses []convoyv1.ProjectClusterStatus) (time.Duration, error) {
	project := pi.project
	if pi.strategy == nil {
		project.Status.Rollout = nil
		return 0, nil
	}
	target, err := r.revisions.ensure(ctx, pi)
	if err != nil {
		return 0, err
	}
	approvals, err := r.approvals(ctx, project, target)
	if err != nil {
		return 0, err
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
	r.announce(project, out)
	project.Status.Rollout = out.Status
	inUse = append(inUse, out.Status.StableRevision)
	return out.RequeueAfter, r.revisions.prune(ctx, project, inUse)
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

// gatesOf evaluates the strategy's health gates in a cluster: the first breach fails the wave;
// undecided gates hold it.
func (r *ProjectReconciler) gatesOf(ctx context.Context, pi *projectInputs) rollout.GateFunc {
	gates := pi.strategy.Spec.Gates
	if len(gates) == 0 {
		return nil
	}
	return func(cluster string) (string, string) {
		var waits []string
		for _, g := range gates {
			res := r.Gates.Check(ctx, g, gate.Vars{Cluster: cluster, Namespace: pi.project.RemoteNamespace(), Project: pi.project.Name})
			if res.Breach != "" {
				return res.Breach, ""
			}
			if res.Wait != "" {
				waits = append(waits, res.Wait)
			}
		}
		return "", strings.Join(waits, "; ")
	}
}

// announce turns a step's transitions into Events on the Project and metrics.
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
		case "WaveFailed":
			metrics.WaveFailures.WithLabelValues(e.Wave).Inc()
		}
		if result != "" {
			metrics.Rollouts.WithLabelValues(result).Inc()
			if start := out.Status.StartTime; start != nil {
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
