package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// GracefulShutdownPolicyReconciler reports a policy's derived timeline and warns when it does not
// fit a spot interruption notice. Admission has already rejected arithmetic that cannot work.
type GracefulShutdownPolicyReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=convoy.dev,resources=gracefulshutdownpolicies/status,verbs=get;update;patch

// Reconcile computes the status of one policy.
func (r *GracefulShutdownPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return ctrl.Result{}, patchStatus(ctx, r.Client, req.NamespacedName, &convoyv1.GracefulShutdownPolicy{}, func(policy *convoyv1.GracefulShutdownPolicy) {
		st := &policy.Status
		st.ObservedGeneration = policy.Generation
		st.PreStopBudgetSeconds = policy.Spec.PreStopBudgetSeconds()
		st.TerminationGracePeriodSeconds = policy.Spec.GracePeriodSeconds()
		setKstatus(&st.Conditions, policy.Generation, metav1.ConditionTrue, false, false, convoyv1.ReasonValid,
			fmt.Sprintf("PreStop budget %ds, termination grace period %ds", st.PreStopBudgetSeconds, st.TerminationGracePeriodSeconds))
		exceeds := policy.Spec.Spot && st.TerminationGracePeriodSeconds > convoyv1.SpotInterruptionNoticeSeconds
		setOrRemove(&st.Conditions, convoyv1.SpotNoticeExceededCondition, exceeds, policy.Generation, convoyv1.ReasonGraceExceedsNotice,
			fmt.Sprintf("The grace period (%ds) is longer than a spot interruption notice (%ds): the node can be reclaimed before the pod has drained. Shorten the PreStop budget or the app shutdown time",
				st.TerminationGracePeriodSeconds, convoyv1.SpotInterruptionNoticeSeconds))
	})
}

// SetupWithManager registers the controller.
func (r *GracefulShutdownPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("gracefulshutdownpolicy").
		For(&convoyv1.GracefulShutdownPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
