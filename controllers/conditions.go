package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
