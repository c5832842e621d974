package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// LocalityLoadBalancingReconciler reports a policy's mode. Admission has already rejected
// every setting istiod would reject.
type LocalityLoadBalancingReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=convoy.dev,resources=localityloadbalancings/status,verbs=get;update;patch

// Reconcile computes the status of one policy.
func (r *LocalityLoadBalancingReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return ctrl.Result{}, patchStatus(ctx, r.Client, req.NamespacedName, &convoyv1.LocalityLoadBalancing{}, func(policy *convoyv1.LocalityLoadBalancing) {
		st := &policy.Status
		st.ObservedGeneration = policy.Generation
		st.Mode = policy.Spec.Mode()
		message := "Locality mode " + st.Mode
		if st.Mode == convoyv1.LocalityModeFailover && len(policy.Spec.Failover) == 0 {
			message += "; each Project fails over between the regions of its clusters, in name order"
		}
		setKstatus(&st.Conditions, policy.Generation, metav1.ConditionTrue, false, false, convoyv1.ReasonValid, message)
	})
}

// SetupWithManager registers the controller.
func (r *LocalityLoadBalancingReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("localityloadbalancing").
		For(&convoyv1.LocalityLoadBalancing{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
