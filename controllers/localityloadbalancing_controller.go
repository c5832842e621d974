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
	policy := &convoyv1.LocalityLoadBalancing{}
	if err := r.Get(ctx, req.NamespacedName, policy); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := policy.DeepCopy()
	st := &policy.Status
	st.ObservedGeneration = policy.Generation
	st.Mode = policy.Spec.Mode()
	message := "Locality mode " + st.Mode
	if st.Mode == convoyv1.LocalityModeFailover && len(policy.Spec.Failover) == 0 {
		message += "; each Project fails over between the regions of its clusters, in name order"
	}
	setKstatus(&st.Conditions, policy.Generation, metav1.ConditionTrue, false, false, convoyv1.ReasonValid, message)
	if equalStatus(base.Status, policy.Status) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.Status().Patch(ctx, policy, client.MergeFrom(base))
}

// SetupWithManager registers the controller.
func (r *LocalityLoadBalancingReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("localityloadbalancing").
		For(&convoyv1.LocalityLoadBalancing{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
