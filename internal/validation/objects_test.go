package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func meta(kind, apiVersion string) (metav1.TypeMeta, metav1.ObjectMeta) {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, metav1.ObjectMeta{Name: "api", Namespace: "shop"}
}

func deploymentWith(mutate func(*corev1.PodSpec)) *appsv1.Deployment {
	tm, om := meta("Deployment", "apps/v1")
	labels := map[string]string{"app": "api"}
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "api:1"}}}
	if mutate != nil {
		mutate(&spec)
	}
	return &appsv1.Deployment{TypeMeta: tm, ObjectMeta: om, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
	}}
}

func TestCreate(t *testing.T) {
	svcTM, svcOM := meta("Service", "v1")
	hpaTM, hpaOM := meta("HorizontalPodAutoscaler", "autoscaling/v2")
	pdbTM, pdbOM := meta("PodDisruptionBudget", "policy/v1")
	cjTM, cjOM := meta("CronJob", "batch/v1")
	secTM, secOM := meta("Secret", "v1")
	cases := []struct {
		name string
		obj  runtime.Object
		want string // substring of the error; "" for valid
	}{
		{"a valid Deployment (defaults applied first)", deploymentWith(nil), ""},
		{"a container name that is not a DNS label", deploymentWith(func(s *corev1.PodSpec) { s.Containers[0].Name = "App_1" }),
			`spec.template.spec.containers[0].name: Invalid value: "App_1"`},
		{"two containers of one name", deploymentWith(func(s *corev1.PodSpec) { s.Containers = append(s.Containers, s.Containers[0]) }),
			`spec.template.spec.containers[1].name: Duplicate value: "app"`},
		{"requests above limits", deploymentWith(func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			}
		}), "must be less than or equal to cpu limit"},
		{"a volume mount of no volume", deploymentWith(func(s *corev1.PodSpec) {
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/config"}}
		}), `spec.template.spec.containers[0].volumeMounts[0].name: Not found: "config"`},
		{"a Service with two ports of one number", &corev1.Service{TypeMeta: svcTM, ObjectMeta: svcOM, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "api"},
			Ports: []corev1.ServicePort{
				{Name: "a", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
				{Name: "b", Port: 80, TargetPort: intstr.FromInt32(8081), Protocol: corev1.ProtocolTCP},
			},
		}}, "spec.ports[1]: Duplicate value"},
		{"an HPA whose metric targets nothing", &autoscalingv2.HorizontalPodAutoscaler{TypeMeta: hpaTM, ObjectMeta: hpaOM, Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"}, MaxReplicas: 3,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType}}}},
		}}, "spec.metrics[0].resource.target.averageUtilization: Required value"},
		{"a PDB over 100%", &policyv1.PodDisruptionBudget{TypeMeta: pdbTM, ObjectMeta: pdbOM, Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromString("150%")), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
		}}, "spec.maxUnavailable"},
		{"a CronJob with a schedule that is not cron", &batchv1.CronJob{TypeMeta: cjTM, ObjectMeta: cjOM, Spec: batchv1.CronJobSpec{
			Schedule: "every day", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{{Name: "job", Image: "j"}}}}}},
		}}, "spec.schedule"},
		{"a TLS Secret without its key", &corev1.Secret{TypeMeta: secTM, ObjectMeta: secOM, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": []byte("x")}}, "data[tls.key]: Required value"},
	}
	for _, tc := range cases {
		err := Create(tc.obj)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error: %v", tc.name, err)
		case tc.want != "" && (err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want an Invalid error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestCreateLeavesItsInputAlone(t *testing.T) {
	d := deploymentWith(nil)
	before := d.DeepCopy()
	if err := Create(d); err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(before, d) {
		t.Error("Create defaulted or changed its input")
	}
}

// Pair syncs of many Projects check objects at once (go test -race finds shared writes).
func TestCreateConcurrently(t *testing.T) {
	done := make(chan error)
	for i := range 8 {
		go func() {
			d := deploymentWith(func(s *corev1.PodSpec) {
				if i%2 == 1 {
					s.Containers[0].Name = "Bad"
				}
			})
			done <- Create(d)
		}()
	}
	invalid := 0
	for range 8 {
		switch err := <-done; {
		case apierrors.IsInvalid(err):
			invalid++
		case err != nil:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if invalid != 4 {
		t.Errorf("%d of 8 refused, want the 4 with a bad container name", invalid)
	}
}
