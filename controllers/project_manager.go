package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

// SetupWithManager registers the two Project controllers. Both are triggered by the Project,
// the policies it references and changes of the ServiceClusters it targets or still holds
// objects in: the dispatcher ("project-dispatch") queues pairs, the status controller
// ("project") also takes the results of the pairs. Remote object events go to the pairs,
// not here.
func (r *ProjectReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options, results <-chan event.GenericEvent, batch time.Duration) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &convoyv1.Project{}, policyIndex,
		func(o client.Object) []string {
			project := o.(*convoyv1.Project)
			var keys []string
			for _, ref := range policyRefs(project) {
				keys = append(keys, ref.indexValue())
			}
			if ref := project.Spec.RolloutStrategy; ref != nil {
				keys = append(keys, policyKey{convoyv1.KindRolloutStrategy, ref.Name}.indexValue())
			}
			return keys
		}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &convoyv1.Project{}, secretIndex, secretNames); err != nil {
		return err
	}
	// The dispatcher also follows the rollout in the Project's status: a wave that starts,
	// or rolls back, changes the revision its clusters run.
	dispatcher := &projectDispatcher{inputs: r.inputs, Queues: r.Queues, state: r.state}
	if err := r.watchInputs(ctrl.NewControllerManagedBy(mgr).Named("project-dispatch"), predicate.Or(predicate.GenerationChangedPredicate{}, rolloutChangedPredicate())).
		WithOptions(opts).Complete(dispatcher); err != nil {
		return err
	}
	// Results of several pairs of one Project coalesce into one status patch, queued behind
	// Project changes.
	batched := handler.Funcs{GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		addLowPriority(q, batch, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)})
	}}
	return r.watchInputs(ctrl.NewControllerManagedBy(mgr).Named("project"), predicate.GenerationChangedPredicate{}).
		WatchesRawSource(source.Channel(results, batched)).
		Watches(&convoyv1.RolloutApproval{}, handler.EnqueueRequestsFromMapFunc(approvedProject)).
		WithOptions(opts).
		Complete(r)
}

// watchInputs adds the triggers both Project controllers share; projectChanged says which
// Project updates wake the controller.
func (r *ProjectReconciler) watchInputs(b *builder.TypedBuilder[reconcile.Request], projectChanged predicate.Predicate) *builder.TypedBuilder[reconcile.Request] {
	return b.
		For(&convoyv1.Project{}, builder.WithPredicates(projectChanged)).
		Watches(&convoyv1.RolloutStrategy{}, handler.EnqueueRequestsFromMapFunc(r.projectsUsing(convoyv1.KindRolloutStrategy)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&convoyv1.ServiceCluster{}, lowPriority(r.projectsForCluster), builder.WithPredicates(clusterChangedPredicate())).
		Watches(&convoyv1.GracefulShutdownPolicy{}, handler.EnqueueRequestsFromMapFunc(r.projectsUsing(convoyv1.KindGracefulShutdownPolicy)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&convoyv1.LocalityLoadBalancing{}, handler.EnqueueRequestsFromMapFunc(r.projectsUsing(convoyv1.KindLocalityLoadBalancing)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Metadata only: a change shows as a new resourceVersion; contents are read on demand.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.projectsUsingSecret), builder.OnlyMetadata)
}

// rolloutChangedPredicate passes Project updates that change its rollout status.
func rolloutChangedPredicate() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*convoyv1.Project)
		n, ok2 := e.ObjectNew.(*convoyv1.Project)
		return !ok1 || !ok2 || !equality.Semantic.DeepEqual(o.Status.Rollout, n.Status.Rollout)
	}}
}

// approvedProject maps a RolloutApproval to the Project it approves a wave of.
func approvedProject(_ context.Context, obj client.Object) []reconcile.Request {
	a, ok := obj.(*convoyv1.RolloutApproval)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: a.Namespace, Name: a.Spec.Project}}}
}

// projectsUsingSecret maps a Secret to the Projects in its namespace that deliver it.
func (r *ProjectReconciler) projectsUsingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list convoyv1.ProjectList
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace()), client.MatchingFields{secretIndex: secret.GetName()}); err != nil {
		return nil
	}
	return requestsFor(list.Items)
}

// policyIndex indexes Projects by the policies they reference, as "Kind/name".
const policyIndex = "spec.policies"

// projectsUsing maps a policy of the given kind to the Projects in its namespace that
// reference it.
func (r *ProjectReconciler) projectsUsing(kind string) handler.MapFunc {
	return func(ctx context.Context, policy client.Object) []reconcile.Request {
		var list convoyv1.ProjectList
		key := policyKey{kind, policy.GetName()}
		if err := r.List(ctx, &list, client.InNamespace(policy.GetNamespace()), client.MatchingFields{policyIndex: key.indexValue()}); err != nil {
			return nil
		}
		return requestsFor(list.Items)
	}
}

// projectsForCluster maps a ServiceCluster change to the Projects it concerns: those that
// target the cluster, still report it (so a cluster they stop targeting is cleaned), or are
// being deleted. Other Projects are not woken.
func (r *ProjectReconciler) projectsForCluster(ctx context.Context, obj client.Object) []reconcile.Request {
	sc, ok := obj.(*convoyv1.ServiceCluster)
	if !ok {
		return nil
	}
	var list convoyv1.ProjectList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	return requestsFor(projectsAffectedBy(sc, list.Items))
}

// projectsAffectedBy filters projects down to those a change of sc concerns.
func projectsAffectedBy(sc *convoyv1.ServiceCluster, projects []convoyv1.Project) []convoyv1.Project {
	var out []convoyv1.Project
	for _, p := range projects {
		selected, err := render.Matches(p.Spec.Placement, sc)
		if selected || err != nil || !p.DeletionTimestamp.IsZero() || previous(&p, sc.Name).Name != "" {
			out = append(out, p)
		}
	}
	return out
}

func requestsFor(projects []convoyv1.Project) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(projects))
	for i := range projects {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&projects[i])})
	}
	return reqs
}

// clusterChangedPredicate passes ServiceCluster changes that matter to Projects: labels (placement),
// spec, deletion, readiness and capabilities. The heartbeat (lastContactTime) alone does not
// wake every Project.
func clusterChangedPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*convoyv1.ServiceCluster)
			n, ok2 := e.ObjectNew.(*convoyv1.ServiceCluster)
			if !ok1 || !ok2 {
				return true
			}
			return o.Generation != n.Generation ||
				!equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
				!o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				!equality.Semantic.DeepEqual(o.Status.Capabilities, n.Status.Capabilities) ||
				readyOf(o) != readyOf(n)
		},
	}
}

func readyOf(sc *convoyv1.ServiceCluster) string {
	c := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// lowPriority is handler.EnqueueRequestsFromMapFunc with the requests queued behind Project
// changes: a ServiceCluster that flips readiness fans out to every Project that targets it,
// and a spec change made meanwhile must not wait behind a thousand of those.
func lowPriority(fn handler.MapFunc) handler.EventHandler {
	enqueue := func(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		addLowPriority(q, 0, fn(ctx, obj)...)
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectOld, q) // the Projects it concerned before a label change, too
			enqueue(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
	}
}

// addLowPriority queues requests at controller-runtime's low priority, after delay.
func addLowPriority(q workqueue.TypedRateLimitingInterface[reconcile.Request], delay time.Duration, reqs ...reconcile.Request) {
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		pq.AddWithOpts(priorityqueue.AddOpts{After: delay, Priority: ptr.To(handler.LowPriority)}, reqs...)
		return
	}
	for _, r := range reqs {
		q.AddAfter(r, delay)
	}
}
