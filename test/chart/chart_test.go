package chart

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir, "--namespace", namespace}
			for _, f := range vs.files {
				args = append(args, "--values", f)
			}
			if _, err := runHelm(t, nil, args...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSchemaRejectsInvalidValues checks that values.schema.json, not a template, stops
// wrong values.
func TestSchemaRejectsInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		flag string // --set, or --set-string for a string the schema must see as one
		set  string
		want string // in the error, besides helm's schema message
	}{
		{"replicas not a number", "--set-string", "replicas=two", "replicas"},
		{"unknown top-level key", "--set", "replicaCount=2", "replicaCount"},
		{"unknown nested key", "--set", "metrics.serviceMonitor.enable=true", "enable"},
		{"pull policy", "--set", "image.pullPolicy=Sometimes", "pullPolicy"},
		{"port range", "--set", "metrics.port=70000", "port"},
		{"goMemLimit", "--set-string", "goMemLimit=lots", "goMemLimit"},
		{"log level", "--set-string", "logging.level=verbose", "level"},
		{"pdb percentage", "--set-string", "podDisruptionBudget.maxUnavailable=half", "maxUnavailable"},
		{"extraEnv GOMEMLIMIT", "--set", "extraEnv[0].name=GOMEMLIMIT", "extraEnv"},
		{"memory quantity", "--set", "resources.limits.memory=lots", "memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runHelm(t, nil, "template", releaseName, chartDir, "--namespace", namespace, tc.flag, tc.set)
			if err == nil {
				t.Fatalf("helm template %s %s succeeded, want a schema error", tc.flag, tc.set)
			}
			if msg := err.Error(); !strings.Contains(msg, "values don't meet the specifications of the schema") || !strings.Contains(msg, tc.want) {
				t.Fatalf("want a values.schema.json error naming %q, got: %v", tc.want, err)
			}
		})
	}
}

func TestTemplateRefusesReplicasWithoutLeaderElection(t *testing.T) {
	_, err := template(t, nil, "replicas=2", "leaderElection.enabled=false")
	if err == nil || !strings.Contains(err.Error(), "needs leaderElection.enabled=true") {
		t.Fatalf("want a failure about leader election, got %v", err)
	}
	if _, err := template(t, nil, "replicas=1", "leaderElection.enabled=false"); err != nil {
		t.Fatalf("one replica without leader election: %v", err)
	}
}

func deployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	deps := find(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("want one Deployment, found %d", len(deps))
	}
	d := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(deps[0].Object, d, true); err != nil {
		t.Fatalf("Deployment: %v", err)
	}
	return d
}

func TestDefaults(t *testing.T) {
	objs := render(t, nil)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if ns := o.GetNamespace(); ns != "" && ns != namespace {
			t.Errorf("%s %s in namespace %q, want the release namespace", o.GetKind(), o.GetName(), ns)
		}
	}
	crds, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"CustomResourceDefinition": len(crds), "ServiceAccount": 1, "ClusterRole": 3, "ClusterRoleBinding": 1,
		"Role": 1, "RoleBinding": 1, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1,
		"ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1,
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("kinds rendered with the default values (-want +got):\n%s", diff)
	}

	d := deployment(t, objs)
	if got := *d.Spec.Replicas; got != 2 {
		t.Errorf("replicas %d, want 2", got)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if want := "ghcr.io/convoy-dev/convoy:v0.1.0"; c.Image != want {
		t.Errorf("image %q, want %q (tag from appVersion)", c.Image, want)
	}
	for _, arg := range []string{
		"--leader-elect", "--metrics-bind-address=:8443", "--metrics-secure=true",
		"--health-probe-bind-address=:8081", "--drain-helper-image=ghcr.io/convoy-dev/convoy-drain:v0.1.0",
	} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %q", c.Args, arg)
		}
	}
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v, want runAsNonRoot and seccomp RuntimeDefault", ps)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container security context %+v, want read-only root, no privilege escalation, non-root, all capabilities dropped", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v / %+v, want /healthz and /readyz", c.LivenessProbe, c.ReadinessProbe)
	}
	if got := env(c, "GOMEMLIMIT"); got != "483183820" {
		t.Errorf("GOMEMLIMIT %q, want 90%% of the 512Mi limit", got)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "convoy" {
		t.Errorf("ServiceAccount %q, want convoy", d.Spec.Template.Spec.ServiceAccountName)
	}

	// The selector of the PDB and the Service select the Deployment's pods.
	podLabels := d.Spec.Template.Labels
	for _, o := range append(find(objs, "PodDisruptionBudget"), find(objs, "Service")...) {
		sel, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
		if o.GetKind() == "Service" {
			sel, _, _ = unstructured.NestedStringMap(o.Object, "spec", "selector")
		}
		if len(sel) == 0 {
			t.Errorf("%s has no selector", o.GetKind())
		}
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("%s selects %s=%s, which the pods lack", o.GetKind(), k, v)
			}
		}
	}
	pdb := findOne(t, objs, "PodDisruptionBudget", "convoy")
	if mu, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "maxUnavailable"); mu != int64(1) {
		t.Errorf("PDB maxUnavailable %v, want 1", mu)
	}
	if _, err := template(t, nil, "replicas=1", showOnly("pdb.yaml")); err == nil || !strings.Contains(err.Error(), "could not find template") {
		t.Errorf("one replica: want no PodDisruptionBudget, got %v", err)
	}

	// Standard labels on every object of the release.
	for _, o := range objs {
		l := o.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/part-of"} {
			if l[k] != "convoy" {
				t.Errorf("%s %s: label %s=%q, want convoy", o.GetKind(), o.GetName(), k, l[k])
			}
		}
		if o.GetKind() == "CustomResourceDefinition" {
			continue // shared by the cluster, static labels only
		}
		for k, v := range map[string]string{
			"app.kubernetes.io/instance": releaseName, "app.kubernetes.io/managed-by": "Helm",
			"app.kubernetes.io/version": "v0.1.0", "helm.sh/chart": "convoy-0.1.0",
		} {
			if l[k] != v {
				t.Errorf("%s %s: label %s=%q, want %q", o.GetKind(), o.GetName(), k, l[k], v)
			}
		}
	}
}

func TestAllOptionalOn(t *testing.T) {
	objs := render(t, []string{allValues})
	d := deployment(t, objs)
	c := d.Spec.Template.Spec.Containers[0]
	if !strings.Contains(c.Image, "@sha256:") {
		t.Errorf("image %q, want the digest", c.Image)
	}
	if got := env(c, "GOMEMLIMIT"); got != "966367641" {
		t.Errorf("GOMEMLIMIT %q, want 90%% of 1Gi", got)
	}
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 2 || tsc[0].LabelSelector == nil || tsc[0].LabelSelector.MatchLabels["app.kubernetes.io/instance"] != releaseName {
		t.Errorf("topology spread constraints %+v, want the release's selector filled in", tsc)
	}
	sm := findOne(t, objs, "ServiceMonitor", "convoy-prod")
	ep, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(ep) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v", ep)
	}
	e := ep[0].(map[string]any)
	if e["scheme"] != "https" || e["bearerTokenFile"] == nil || e["port"] != "metrics" {
		t.Errorf("ServiceMonitor endpoint %v, want https, a bearer token and the metrics port", e)
	}
	if skip, _, _ := unstructured.NestedBool(e, "tlsConfig", "insecureSkipVerify"); skip {
		t.Errorf("insecureSkipVerify true, the values say false")
	}
	if b := findOne(t, objs, "ClusterRoleBinding", "metrics-reader"); b == nil {
		t.Error("no metrics-reader binding")
	}
	// The ServiceMonitor's port name is the Service's.
	svc := findOne(t, objs, "Service", "metrics")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(ports) != 1 || ports[0].(map[string]any)["name"] != e["port"] {
		t.Errorf("Service ports %v do not match the ServiceMonitor's port %v", ports, e["port"])
	}
}

func TestAllOptionalOff(t *testing.T) {
	objs := render(t, []string{minValues})
	if len(objs) != 1 || objs[0].GetKind() != "Deployment" {
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o.GetKind())
		}
		t.Fatalf("rendered %v, want only the Deployment", kinds)
	}
	d := deployment(t, objs)
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--metrics-bind-address=0") || slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("args %q, want metrics off and no leader election", c.Args)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "convoy-existing" {
		t.Errorf("ServiceAccount %q, want the existing one", d.Spec.Template.Spec.ServiceAccountName)
	}
	if got := env(c, "GOMEMLIMIT"); got != "" {
		t.Errorf("GOMEMLIMIT %q with goMemLimit=off", got)
	}
}

func TestGoMemLimit(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"resources.limits.memory=512Mi"}, "483183820"},
		{[]string{"resources.limits.memory=1Gi"}, "966367641"},
		{[]string{"resources.limits.memory=1.5Gi"}, "1449551462"},
		{[]string{"resources.limits.memory=1G"}, "900000000"},
		{[]string{"resources.limits.memory=2000Ki"}, "1843200"},
		{[]string{"resources.limits.memory=536870912"}, "483183820"},
		{[]string{"resources.limits=null"}, ""},
		{[]string{"goMemLimit=off"}, ""},
		{[]string{"goMemLimit=900MiB"}, "900MiB"},
	} {
		t.Run(strings.Join(tc.sets, ","), func(t *testing.T) {
			t.Parallel()
			d := deployment(t, render(t, nil, append(tc.sets, showOnly("deployment.yaml"))...))
			if got := env(d.Spec.Template.Spec.Containers[0], "GOMEMLIMIT"); got != tc.want {
				t.Errorf("GOMEMLIMIT %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGoMemLimitUnreadableLimit(t *testing.T) {
	if _, err := template(t, nil, "resources.limits.memory=1e9"); err == nil || !strings.Contains(err.Error(), "set goMemLimit") {
		t.Errorf("want a failure that says to set goMemLimit for a limit auto cannot read, got %v", err)
	}
}

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
