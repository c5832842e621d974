package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// secretRefIndex indexes ServiceClusters by "namespace/name" of their kubeconfig Secret.
const secretRefIndex = "spec.kubeconfigSecretRef"

// SetupWithManager registers the controller. Secrets are watched as metadata only: convoy
// never caches Secret contents of the manager cluster, it reads the one it needs. Each probe
// and health change of a cluster's supervisor arrives through Fleet.Changes.
func (r *ServiceClusterReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &convoyv1.ServiceCluster{}, secretRefIndex,
		func(o client.Object) []string {
			ref := o.(*convoyv1.ServiceCluster).Spec.KubeconfigSecretRef
			return []string{ref.Namespace + "/" + ref.Name}
		}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("servicecluster").
		For(&convoyv1.ServiceCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clustersForSecret), builder.OnlyMetadata).
		WatchesRawSource(source.Channel(r.Fleet.Changes(), &handler.EnqueueRequestForObject{})).
		WithOptions(opts).
		Complete(r)
}

func (r *ServiceClusterReconciler) clustersForSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list convoyv1.ServiceClusterList
	if err := r.List(ctx, &list, client.MatchingFields{secretRefIndex: secret.GetNamespace() + "/" + secret.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, sc := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: sc.Name}})
	}
	return reqs
}
