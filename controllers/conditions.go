package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// setKstatus sets Ready, Reconciling and Stalled consistently, kstatus style: Ready is always
// present; Reconciling and Stalled are present only while true.
func setKstatus(conds *[]metav1.Condition, generation int64, ready metav1.ConditionStatus, reconciling, stalled bool, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: convoyv1.ReadyCondition, Status: ready, Reason: reason, Message: message, ObservedGeneration: generation,
	})
	setOrRemove(conds, convoyv1.ReconcilingCondition, reconciling, generation, reason, message)
	setOrRemove(conds, convoyv1.StalledCondition, stalled, generation, reason, message)
}

func setOrRemove(conds *[]metav1.Condition, condType string, present bool, generation int64, reason, message string) {
	if !present {
		meta.RemoveStatusCondition(conds, condType)
		return
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: condType, Status: metav1.ConditionTrue, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

// patchStatus reads the object, lets setStatus fill in its status and patches the status
// when it changed. A missing object is not an error: it was deleted.
func patchStatus[T client.Object](ctx context.Context, c client.Client, key client.ObjectKey, obj T, setStatus func(T)) error {
	if err := c.Get(ctx, key, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	base := obj.DeepCopyObject().(client.Object)
	setStatus(obj)
	if equality.Semantic.DeepEqual(base, obj) {
		return nil
	}
	return c.Status().Patch(ctx, obj, client.MergeFrom(base))
}

// markReady sets Ready=True and clears Reconciling and Stalled.
func markReady(conds *[]metav1.Condition, generation int64, reason, message string) {
	setKstatus(conds, generation, metav1.ConditionTrue, false, false, reason, message)
}

// markReconciling sets Ready=False with Reconciling: convoy is working towards Ready.
func markReconciling(conds *[]metav1.Condition, generation int64, reason, message string) {
	setKstatus(conds, generation, metav1.ConditionFalse, true, false, reason, message)
}

// markStalled sets Ready=False with Stalled: only a person can make progress.
func markStalled(conds *[]metav1.Condition, generation int64, reason, message string) {
	setKstatus(conds, generation, metav1.ConditionFalse, false, true, reason, message)
}

// addFinalizer adds convoy's finalizer with a patch that touches nothing else: a full Update
// would make convoy own defaulted fields of the user's spec, which GitOps tools show as a diff.
func addFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	if controllerutil.ContainsFinalizer(obj, convoyv1.CleanupFinalizer) {
		return nil
	}
	base := obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(obj, convoyv1.CleanupFinalizer)
	return c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// removeFinalizer releases an object, again touching only its finalizers.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	if !controllerutil.ContainsFinalizer(obj, convoyv1.CleanupFinalizer) {
		return nil
	}
	base := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, convoyv1.CleanupFinalizer)
	return client.IgnoreNotFound(c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}
