package render

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

func onCluster(name string) convoyv1.ClusterSelection {
	return convoyv1.ClusterSelection{ClusterNames: []string{name}}
}

func sourceSecret(name, uid, value string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a", UID: k8stypes.UID("uid-" + uid)},
		Data: map[string][]byte{"password": []byte(value)}}
}

// configProject has a ConfigMap used through envFrom, a Secret used through a volume, and a
// second workload that uses neither.
func configProject(mutate ...func(*convoyv1.Project)) *convoyv1.Project {
	return testProject(append([]func(*convoyv1.Project){func(p *convoyv1.Project) {
		p.Spec.ConfigMaps = []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"ENDPOINT": "https://eu", "LOG": "info"}}}
		p.Spec.Secrets = []convoyv1.ProjectSecret{{Name: "db"}}
		app := &p.Spec.Workloads[0].Template.Spec.Containers[0]
		app.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
		p.Spec.Workloads[0].Template.Spec.Volumes = []corev1.Volume{{Name: "db", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}
		p.Spec.Workloads = append(p.Spec.Workloads, convoyv1.Workload{Name: "static", Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}})
	}}, mutate...)...)
}

func renderWith(t *testing.T, p *convoyv1.Project, clusterName string, secrets ...*corev1.Secret) *ClusterObjects {
	t.Helper()
	sources := map[string]*corev1.Secret{}
	for _, s := range secrets {
		sources[s.Name] = s
	}
	before := p.DeepCopy()
	out, err := ForCluster(p, cluster(clusterName, nil), Policies{Secrets: sources})
	if err != nil {
		t.Fatalf("ForCluster: %v", err)
	}
	if diff := cmp.Diff(before, p); diff != "" {
		t.Errorf("ForCluster modified its input (-before +after):\n%s", diff)
	}
	return out
}

func hashOf(objs *ClusterObjects, workload string) string {
	for _, d := range objs.Deployments {
		if d.Name == workload {
			return d.Spec.Template.Annotations[ConfigHashAnnotation]
		}
	}
	return "no such workload"
}

func TestConfigMapsAndSecrets(t *testing.T) {
	p := configProject(func(p *convoyv1.Project) {
		p.Spec.Overrides = []convoyv1.ClusterOverride{
			{Clusters: onCluster("tokyo-1"), ConfigMaps: []convoyv1.ConfigMapOverride{{Name: "settings", Data: map[string]string{"ENDPOINT": "https://ap"}}}},
			{Clusters: onCluster("tokyo-1"), ConfigMaps: []convoyv1.ConfigMapOverride{{Name: "settings", Data: map[string]string{"ENDPOINT": "https://ap-2"}}}},
		}
	})
	secret := sourceSecret("db", "1", "s3cret")
	seoul := renderWith(t, p, "seoul-1", secret)
	tokyo := renderWith(t, p, "tokyo-1", secret)

	wantCM := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "shop", Labels: objectOwner()},
		Data:       map[string]string{"ENDPOINT": "https://eu", "LOG": "info"},
	}
	if diff := cmp.Diff([]*corev1.ConfigMap{wantCM}, seoul.ConfigMaps); diff != "" {
		t.Errorf("ConfigMaps in seoul-1 (-want +got):\n%s", diff)
	}
	if got := tokyo.ConfigMaps[0].Data; got["ENDPOINT"] != "https://ap-2" || got["LOG"] != "info" {
		t.Errorf("tokyo-1 data = %v, want the later override's endpoint and the base log level", got)
	}
	wantSecret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Labels: objectOwner()},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}
	if diff := cmp.Diff([]*corev1.Secret{wantSecret}, seoul.Secrets); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}

	// The hash follows what the pods use, per cluster.
	if hashOf(seoul, "api") == "" || hashOf(seoul, "static") != "" {
		t.Errorf("hashes: api %q (want one), static %q (want none: it uses no config)", hashOf(seoul, "api"), hashOf(seoul, "static"))
	}
	if hashOf(seoul, "api") == hashOf(tokyo, "api") {
		t.Error("a per-cluster ConfigMap override must change that cluster's hash")
	}
	for _, tc := range []struct {
		name    string
		project *convoyv1.Project
		secret  *corev1.Secret
		same    bool
	}{
		{"unchanged inputs", p, secret, true},
		{"a Secret value changed", p, sourceSecret("db", "1", "rotated"), false},
		{"the same value in a recreated Secret (new UID)", p, sourceSecret("db", "2", "s3cret"), false},
		{"a ConfigMap value changed", configProject(func(p *convoyv1.Project) { p.Spec.ConfigMaps[0].Data["LOG"] = "debug" }), secret, false},
		{"an unused ConfigMap added", configProject(func(p *convoyv1.Project) {
			p.Spec.ConfigMaps = append(p.Spec.ConfigMaps, convoyv1.ProjectConfigMap{Name: "other", Data: map[string]string{"x": "y"}})
		}), secret, true},
	} {
		again := renderWith(t, tc.project, "seoul-1", tc.secret)
		if same := hashOf(again, "api") == hashOf(seoul, "api"); same != tc.same {
			t.Errorf("%s: hash unchanged = %v, want %v", tc.name, same, tc.same)
		}
	}
	if strings.Contains(hashOf(seoul, "api"), "s3cret") {
		t.Error("the hash must not carry the Secret")
	}

	optOut := renderWith(t, configProject(func(p *convoyv1.Project) { p.Spec.Workloads[0].RolloutOnConfigChange = ptr.To(false) }), "seoul-1", secret)
	if h := hashOf(optOut, "api"); h != "" {
		t.Errorf("rolloutOnConfigChange=false: hash %q, want none", h)
	}
}

func TestSecretErrors(t *testing.T) {
	p := configProject()
	if _, err := ForCluster(p, cluster("seoul-1", nil), Policies{}); err == nil || !strings.Contains(err.Error(), "spec.secrets[0]: Secret team-a/db not found") {
		t.Errorf("missing Secret: err = %v", err)
	}
	token := sourceSecret("db", "1", "x")
	token.Type = corev1.SecretTypeServiceAccountToken
	_, err := ForCluster(p, cluster("seoul-1", nil), Policies{Secrets: map[string]*corev1.Secret{"db": token}})
	if err == nil || !strings.Contains(err.Error(), "has type kubernetes.io/service-account-token, which convoy does not copy") {
		t.Errorf("token Secret: err = %v", err)
	}
}

func TestWorkloadCompanions(t *testing.T) {
	p := testProject(func(p *convoyv1.Project) {
		w := &p.Spec.Workloads[0]
		w.Ports = nil
		w.Replicas = nil
		w.ServiceAccount = &convoyv1.WorkloadServiceAccount{Annotations: map[string]string{"eks.amazonaws.com/role-arn": "arn:eu"}}
		w.Autoscaling = &convoyv1.WorkloadAutoscaling{MinReplicas: ptr.To[int32](2), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](60)}}}}}
		w.DisruptionBudget = &convoyv1.DisruptionBudget{MaxUnavailable: ptr.To(intstr.FromString("25%"))}
		p.Spec.Overrides = []convoyv1.ClusterOverride{
			{Clusters: onCluster("tokyo-1"), ServiceAccountAnnotations: map[string]string{"eks.amazonaws.com/role-arn": "arn:ap"}, Autoscaling: &convoyv1.AutoscalingOverride{MaxReplicas: ptr.To[int32](30)}},
		}
	})
	seoul := renderWith(t, p, "seoul-1")
	tokyo := renderWith(t, p, "tokyo-1")
	meta := metav1.ObjectMeta{Name: "api", Namespace: "shop", Labels: withWorkload(objectOwner(), "api")}

	saMeta := *meta.DeepCopy()
	saMeta.Annotations = map[string]string{"eks.amazonaws.com/role-arn": "arn:eu"}
	wantSA := &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: saMeta}
	if diff := cmp.Diff([]*corev1.ServiceAccount{wantSA}, seoul.ServiceAccounts); diff != "" {
		t.Errorf("ServiceAccount (-want +got):\n%s", diff)
	}
	if got := tokyo.ServiceAccounts[0].Annotations["eks.amazonaws.com/role-arn"]; got != "arn:ap" {
		t.Errorf("tokyo-1 role = %q, want the override's", got)
	}
	if sa := seoul.Deployments[0].Spec.Template.Spec.ServiceAccountName; sa != "api" {
		t.Errorf("pods run as %q, want api", sa)
	}
	if r := seoul.Deployments[0].Spec.Replicas; r != nil {
		t.Errorf("an autoscaled Deployment must not carry replicas, got %d", *r)
	}
	wantHPA := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: meta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 10, Metrics: p.Spec.Workloads[0].Autoscaling.Metrics,
		},
	}
	if diff := cmp.Diff([]*autoscalingv2.HorizontalPodAutoscaler{wantHPA}, seoul.Autoscalers); diff != "" {
		t.Errorf("HorizontalPodAutoscaler (-want +got):\n%s", diff)
	}
	if a := tokyo.Autoscalers[0].Spec; a.MaxReplicas != 30 || *a.MinReplicas != 2 {
		t.Errorf("tokyo-1 limits = %d..%d, want 2..30", *a.MinReplicas, a.MaxReplicas)
	}
	wantPDB := &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta,
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(p, "api")},
			MaxUnavailable: ptr.To(intstr.FromString("25%")),
		},
	}
	if diff := cmp.Diff([]*policyv1.PodDisruptionBudget{wantPDB}, seoul.DisruptionBudgets); diff != "" {
		t.Errorf("PodDisruptionBudget (-want +got):\n%s", diff)
	}
	var kinds []string
	for _, o := range seoul.All() {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	if want := "Namespace ServiceAccount Deployment HorizontalPodAutoscaler PodDisruptionBudget"; strings.Join(kinds, " ") != want {
		t.Errorf("apply order %v, want %s", kinds, want)
	}
}

func TestContainerOverrides(t *testing.T) {
	p := testProject(func(p *convoyv1.Project) {
		p.Spec.Workloads[0].Ports = nil
		app := &p.Spec.Workloads[0].Template.Spec.Containers[0]
		app.Env = []corev1.EnvVar{{Name: "STAGE", Value: "prod"}, {Name: "DEBUG", Value: "1"}, {Name: "KEEP", Value: "x"}}
		app.Args = []string{"--port=8080"}
		p.Spec.Overrides = []convoyv1.ClusterOverride{
			{Clusters: onCluster("seoul-1"), Containers: []convoyv1.ContainerOverride{{
				Name: "app", Env: []corev1.EnvVar{{Name: "STAGE", Value: "canary"}, {Name: "REGION", Value: "ap"}}, RemoveEnv: []string{"DEBUG"},
				Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}},
				Args:      []string{"--port=8080", "--verbose"}, Command: []string{"/api"},
			}}, Labels: map[string]string{"tier": "canary"}, Annotations: map[string]string{"example.com/note": "a"}},
			{Clusters: onCluster("seoul-1"), Containers: []convoyv1.ContainerOverride{{Name: "app", Env: []corev1.EnvVar{{Name: "STAGE", Value: "canary-2"}}}},
				Annotations: map[string]string{"example.com/note": "b"}},
			{Clusters: onCluster("tokyo-1"), Containers: []convoyv1.ContainerOverride{{Name: "app", RemoveEnv: []string{"KEEP"}}}},
		}
	})
	d := renderWith(t, p, "seoul-1").Deployments[0]
	app := d.Spec.Template.Spec.Containers[0]
	wantEnv := []corev1.EnvVar{{Name: "STAGE", Value: "canary-2"}, {Name: "KEEP", Value: "x"}, {Name: "REGION", Value: "ap"}}
	if diff := cmp.Diff(wantEnv, app.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if cpu := app.Resources.Requests[corev1.ResourceCPU]; cpu.String() != "2" || !cmp.Equal(app.Args, []string{"--port=8080", "--verbose"}) || !cmp.Equal(app.Command, []string{"/api"}) {
		t.Errorf("resources %v, args %v, command %v", app.Resources, app.Args, app.Command)
	}
	if d.Labels["tier"] != "canary" || d.Spec.Template.Labels["tier"] != "canary" || d.Labels[convoyv1.ProjectNameLabel] != "shop" {
		t.Errorf("labels: deployment %v, pods %v", d.Labels, d.Spec.Template.Labels)
	}
	if d.Annotations["example.com/note"] != "b" || d.Spec.Template.Annotations["example.com/note"] != "b" {
		t.Errorf("annotations: the later override must win: %v / %v", d.Annotations, d.Spec.Template.Annotations)
	}
	if sidecar := d.Spec.Template.Spec.Containers[1]; len(sidecar.Env) != 0 || len(sidecar.Args) != 0 {
		t.Errorf("the sidecar must stay as it is: %+v", sidecar)
	}
	if env := renderWith(t, p, "tokyo-1").Deployments[0].Spec.Template.Spec.Containers[0].Env; len(env) != 2 {
		t.Errorf("tokyo-1 env %v, want STAGE and DEBUG", env)
	}
	if env := renderWith(t, p, "osaka-1").Deployments[0].Spec.Template.Spec.Containers[0].Env; len(env) != 3 {
		t.Errorf("an unselected cluster keeps the template's env, got %v", env)
	}
}

func TestValidateOverrides(t *testing.T) {
	twoWorkloads := func(overrides ...convoyv1.ClusterOverride) *convoyv1.Project {
		return testProject(func(p *convoyv1.Project) {
			p.Spec.Workloads[0].ServiceAccount = &convoyv1.WorkloadServiceAccount{}
			p.Spec.Workloads = append(p.Spec.Workloads, convoyv1.Workload{Name: "worker", Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "run", Image: "w"}}}}},
				convoyv1.Workload{Name: "nightly", CronJob: &convoyv1.CronJobSchedule{Schedule: "@daily"}, Template: corev1.PodTemplateSpec{
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "job", Image: "j"}}}}})
			p.Spec.Overrides = overrides
		})
	}
	sel := onCluster("nowhere") // checked whichever clusters an override selects
	for _, tc := range []struct {
		name     string
		override convoyv1.ClusterOverride
		want     string
	}{
		{"a container of one of all workloads", convoyv1.ClusterOverride{Clusters: sel, Images: []convoyv1.ImageOverride{{Container: "run", Image: "w:2"}}}, ""},
		{"an init container", convoyv1.ClusterOverride{Clusters: sel, Workloads: []string{"api"}, Containers: []convoyv1.ContainerOverride{{Name: "migrate"}}}, ""},
		{"a container no workload has", convoyv1.ClusterOverride{Clusters: sel, Images: []convoyv1.ImageOverride{{Container: "ap", Image: "x"}}},
			`spec.overrides[0].images[0].container: no workload has a container named "ap"`},
		{"a container a named workload lacks", convoyv1.ClusterOverride{Clusters: sel, Workloads: []string{"api", "worker"}, Containers: []convoyv1.ContainerOverride{{Name: "app"}}},
			`spec.overrides[0].containers[0].name: workload worker has no container named "app"`},
		{"ServiceAccount annotations of a workload without one", convoyv1.ClusterOverride{Clusters: sel, Workloads: []string{"worker"}, ServiceAccountAnnotations: map[string]string{"a": "b"}},
			"spec.overrides[0].serviceAccountAnnotations: workload worker does not set serviceAccount"},
		{"replicas of a cron workload", convoyv1.ClusterOverride{Clusters: sel, Workloads: []string{"nightly"}, Replicas: ptr.To[int32](2)},
			"spec.overrides[0].replicas: workload nightly is a cronJob, which has no replicas"},
		{"replicas of all workloads, some of them Deployments", convoyv1.ClusterOverride{Clusters: sel, Replicas: ptr.To[int32](2)}, ""},
		{"suspend of a Deployment", convoyv1.ClusterOverride{Clusters: sel, Workloads: []string{"api"}, Suspend: ptr.To(true)},
			"spec.overrides[0].suspend: workload api is not a cronJob"},
		{"autoscaling limits when no workload autoscales", convoyv1.ClusterOverride{Clusters: sel, Autoscaling: &convoyv1.AutoscalingOverride{MaxReplicas: ptr.To[int32](3)}},
			"spec.overrides[0].autoscaling: no workload sets autoscaling"},
	} {
		got := strings.Join(ValidateOverrides(twoWorkloads(tc.override)), "; ")
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCronWorkload(t *testing.T) {
	p := testProject(func(p *convoyv1.Project) {
		p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
		p.Spec.ConfigMaps = []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"A": "1"}}}
		p.Spec.Workloads = []convoyv1.Workload{{
			Name:    "report",
			CronJob: &convoyv1.CronJobSchedule{Schedule: "0 3 * * *", TimeZone: ptr.To("Asia/Seoul"), ConcurrencyPolicy: "Forbid", BackoffLimit: ptr.To[int32](2)},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "job", Image: "report:1",
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
			}}}},
		}}
		p.Spec.Overrides = []convoyv1.ClusterOverride{
			{Clusters: onCluster("tokyo-1"), Suspend: ptr.To(true), Images: []convoyv1.ImageOverride{{Container: "job", Image: "report:2"}}},
		}
	})
	policy := shutdownPolicy(sleepFor(10))
	policy.Name = "web"
	render := func(clusterName string) *ClusterObjects {
		out, err := ForCluster(p, cluster(clusterName, nil), Policies{GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": policy}})
		if err != nil {
			t.Fatalf("ForCluster: %v", err)
		}
		return out
	}
	seoul, tokyo := render("seoul-1"), render("tokyo-1")
	if len(seoul.Deployments) != 0 || len(seoul.Services) != 0 || len(seoul.CronJobs) != 1 {
		t.Fatalf("want one CronJob and no Deployment or Service, got %d/%d/%d", len(seoul.CronJobs), len(seoul.Deployments), len(seoul.Services))
	}
	cj := seoul.CronJobs[0]
	pod := cj.Spec.JobTemplate.Spec.Template
	grace := policy.Spec.GracePeriodSeconds()
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"schedule", cj.Spec.Schedule, "0 3 * * *"},
		{"time zone", *cj.Spec.TimeZone, "Asia/Seoul"},
		{"backoff limit", *cj.Spec.JobTemplate.Spec.BackoffLimit, int32(2)},
		{"restart policy", pod.Spec.RestartPolicy, corev1.RestartPolicyOnFailure},
		{"grace period", *pod.Spec.TerminationGracePeriodSeconds, grace},
		{"no PreStop: Jobs serve no traffic", pod.Spec.Containers[0].Lifecycle == nil, true},
		{"pods carry the workload label", pod.Labels[convoyv1.WorkloadLabel], "report"},
		{"Jobs carry it too", cj.Spec.JobTemplate.Labels[convoyv1.WorkloadLabel], "report"},
		{"config hash", pod.Annotations[ConfigHashAnnotation] != "", true},
		{"not suspended in seoul-1", cj.Spec.Suspend == nil, true},
		{"suspended in tokyo-1", *tokyo.CronJobs[0].Spec.Suspend, true},
		{"image override in tokyo-1", tokyo.CronJobs[0].Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image, "report:2"},
		{"the policy is recorded", seoul.AppliedPolicies, []convoyv1.AppliedPolicy{{Kind: convoyv1.KindGracefulShutdownPolicy, Name: "web", Generation: policy.Generation}}},
	} {
		if diff := cmp.Diff(check.want, check.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", check.what, diff)
		}
	}
}
