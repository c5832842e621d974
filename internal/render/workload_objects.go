package render

import (
	"maps"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// workloadMeta is the metadata of an object convoy writes for a workload.
func workloadMeta(project *convoyv1.Project, ns, workload string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: workload, Namespace: ns, Labels: objectLabels(project, workload), Annotations: objectAnnotations(project)}
}

// serviceAccount renders a workload's ServiceAccount with the annotations of the overrides
// selecting it added in order.
func serviceAccount(project *convoyv1.Project, ns string, w *convoyv1.Workload, overrides []*convoyv1.ClusterOverride) *corev1.ServiceAccount {
	meta := workloadMeta(project, ns, w.Name)
	annotations := merged(meta.Annotations, w.ServiceAccount.Annotations)
	for _, o := range overrides {
		if selects(o, w.Name) {
			annotations = merged(annotations, o.ServiceAccountAnnotations)
		}
	}
	meta.Annotations = maps.Clone(annotations)
	return &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta}
}

// autoscaler renders a workload's HorizontalPodAutoscaler with the replica limits of the
// overrides selecting it applied in order.
func autoscaler(project *convoyv1.Project, ns string, w *convoyv1.Workload, overrides []*convoyv1.ClusterOverride) *autoscalingv2.HorizontalPodAutoscaler {
	a := w.Autoscaling.DeepCopy()
	for _, o := range overrides {
		if !selects(o, w.Name) || o.Autoscaling == nil {
			continue
		}
		if o.Autoscaling.MinReplicas != nil {
			a.MinReplicas = o.Autoscaling.MinReplicas
		}
		if o.Autoscaling.MaxReplicas != nil {
			a.MaxReplicas = *o.Autoscaling.MaxReplicas
		}
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: workloadMeta(project, ns, w.Name),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: w.Name},
			MinReplicas:    a.MinReplicas,
			MaxReplicas:    a.MaxReplicas,
			Metrics:        a.Metrics,
			Behavior:       a.Behavior,
		},
	}
}

// disruptionBudget renders a workload's PodDisruptionBudget over its pods.
func disruptionBudget(project *convoyv1.Project, ns string, w *convoyv1.Workload) *policyv1.PodDisruptionBudget {
	b := w.DisruptionBudget.DeepCopy()
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: workloadMeta(project, ns, w.Name),
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(project, w.Name)},
			MinAvailable:   b.MinAvailable,
			MaxUnavailable: b.MaxUnavailable,
		},
	}
}

// cronJob renders a cron workload: its pod template (convoy's labels, overrides and config
// hash applied) becomes the Jobs' template. A GracefulShutdownPolicy gives the pods its grace
// period only: Jobs serve no traffic to drain. Overrides' suspend applies in order.
func cronJob(project *convoyv1.Project, ns string, w *convoyv1.Workload, template corev1.PodTemplateSpec, policy *convoyv1.GracefulShutdownPolicy, overrides []*convoyv1.ClusterOverride) *batchv1.CronJob {
	c := w.CronJob
	if template.Spec.RestartPolicy == "" {
		template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	}
	if policy != nil {
		grace := policy.Spec.GracePeriodSeconds()
		template.Spec.TerminationGracePeriodSeconds = &grace
	}
	var suspend *bool
	for _, o := range overrides {
		if selects(o, w.Name) && o.Suspend != nil {
			suspend = ptrBool(*o.Suspend)
		}
	}
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: workloadMeta(project, ns, w.Name),
		Spec: batchv1.CronJobSpec{
			Schedule:                   c.Schedule,
			TimeZone:                   c.TimeZone,
			ConcurrencyPolicy:          c.ConcurrencyPolicy,
			StartingDeadlineSeconds:    c.StartingDeadlineSeconds,
			SuccessfulJobsHistoryLimit: c.SuccessfulJobsHistoryLimit,
			FailedJobsHistoryLimit:     c.FailedJobsHistoryLimit,
			Suspend:                    suspend,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: template.Labels},
				Spec: batchv1.JobSpec{
					BackoffLimit:            c.BackoffLimit,
					ActiveDeadlineSeconds:   c.ActiveDeadlineSeconds,
					TTLSecondsAfterFinished: c.TTLSecondsAfterFinished,
					Template:                template,
				},
			},
		},
	}
}
