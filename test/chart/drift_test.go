package chart

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/convoy-dev/convoy/internal/manifest"
	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// normalizedRules expands rules into sorted "apiGroup resource resourceName verb" and
// "nonResourceURL verb" permissions, so that rules compare equal whatever their grouping
// and order.
func normalizedRules(rules []rbacv1.PolicyRule) []string {
	set := map[string]bool{}
	for _, r := range rules {
		for _, verb := range r.Verbs {
			for _, url := range r.NonResourceURLs {
				set["url "+url+" "+verb] = true
			}
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{"*any*"}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, n := range names {
						set["resource "+g+" "+res+" "+n+" "+verb] = true
					}
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func rulesOf(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var role rbacv1.ClusterRole // Role and ClusterRole share the rules field
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &role, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return role.Rules
}

func configObject(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode(data)
	if err != nil || len(objs) != 1 {
		t.Fatalf("config/rbac/%s: %d objects, %v", file, len(objs), err)
	}
	return objs[0]
}

// TestRBACMatchesConfig: the chart grants exactly what config/rbac grants, where the
// manager's ClusterRole comes from controller-gen (the +kubebuilder:rbac markers).
func TestRBACMatchesConfig(t *testing.T) {
	objs := render(t, nil)
	for _, tc := range []struct {
		kind, suffix, file string
	}{
		{"ClusterRole", "-manager", "role.yaml"},
		{"Role", "-leader-election", "leader_election_role.yaml"},
		{"ClusterRole", "-metrics-reader", "metrics_reader_role.yaml"},
		{"ClusterRole", "-rollout-approver", "rollout_approver_role.yaml"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want := configObject(t, tc.file)
			if want.GetKind() != tc.kind {
				t.Fatalf("config/rbac/%s is a %s, want %s", tc.file, want.GetKind(), tc.kind)
			}
			got := findOne(t, objs, tc.kind, tc.suffix)
			if diff := cmp.Diff(normalizedRules(rulesOf(t, want)), normalizedRules(rulesOf(t, got))); diff != "" {
				t.Errorf("%s %s differs from config/rbac/%s (-config +chart); run `go run ./hack/chartgen`:\n%s",
					tc.kind, got.GetName(), tc.file, diff)
			}
		})
	}

	// The bindings bind the rendered roles to the manager's ServiceAccount.
	sa := findOne(t, objs, "ServiceAccount", "convoy")
	for _, b := range []struct{ kind, roleKind, suffix string }{
		{"ClusterRoleBinding", "ClusterRole", "-manager"},
		{"RoleBinding", "Role", "-leader-election"},
	} {
		obj := findOne(t, objs, b.kind, b.suffix)
		role := findOne(t, objs, b.roleKind, b.suffix)
		var binding rbacv1.RoleBinding // shares roleRef and subjects with ClusterRoleBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &binding); err != nil {
			t.Fatal(err)
		}
		if binding.RoleRef.Kind != b.roleKind || binding.RoleRef.Name != role.GetName() {
			t.Errorf("%s %s refers to %s %s, want %s %s", b.kind, obj.GetName(), binding.RoleRef.Kind, binding.RoleRef.Name, b.roleKind, role.GetName())
		}
		want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.GetName(), Namespace: namespace}}
		if diff := cmp.Diff(want, binding.Subjects); diff != "" {
			t.Errorf("%s %s subjects (-want +got):\n%s", b.kind, obj.GetName(), diff)
		}
	}
}

// TestCRDsMatchConfig: the chart's CRDs are config/crd/bases plus the keep annotation and
// static labels, nothing else. It fails when the API types changed and the chart was not
// regenerated.
func TestCRDsMatchConfig(t *testing.T) {
	sources, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	rendered := map[string]*unstructured.Unstructured{}
	for _, o := range find(render(t, nil), "CustomResourceDefinition") {
		rendered[o.GetName()] = o
	}
	if len(rendered) != len(sources) {
		t.Errorf("chart renders %d CRDs, config/crd/bases has %d; run `go run ./hack/chartgen`", len(rendered), len(sources))
	}
	for _, src := range sources {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Decode(data)
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %d objects, %v", src, len(objs), err)
		}
		want := objs[0]
		got, ok := rendered[want.GetName()]
		if !ok {
			t.Errorf("chart lacks CRD %s; run `go run ./hack/chartgen`", want.GetName())
			continue
		}
		got = got.DeepCopy()
		ann := got.GetAnnotations()
		if ann["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s lacks helm.sh/resource-policy: keep", got.GetName())
		}
		delete(ann, "helm.sh/resource-policy")
		got.SetAnnotations(ann)
		got.SetLabels(nil)
		if diff := cmp.Diff(want.Object, got.Object); diff != "" {
			t.Errorf("CRD %s differs from %s (-config +chart); run `go run ./hack/chartgen`:\n%.3000s",
				want.GetName(), strings.TrimPrefix(src, repoRoot+"/"), diff)
		}
	}
}

// TestAdmissionPoliciesMatchConfig: templates/admission.yaml holds the objects of
// config/admission with config/default's name prefix, and the same specs. The chart's copy is
// written by hand (it carries the release's labels), so this is what keeps the two in step.
func TestAdmissionPoliciesMatchConfig(t *testing.T) {
	kustomization, err := os.ReadFile(filepath.Join(repoRoot, "config", "default", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		NamePrefix string   `json:"namePrefix"`
		Resources  []string `json:"resources"`
	}
	if err := yaml.Unmarshal(kustomization, &k); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(k.Resources, "../admission") {
		t.Errorf("config/default/kustomization.yaml does not install ../admission")
	}
	sources, err := filepath.Glob(filepath.Join(repoRoot, "config", "admission", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []*unstructured.Unstructured
	for _, src := range sources {
		if strings.HasPrefix(filepath.Base(src), "kustomiz") {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		want = append(want, objs...)
	}
	if len(want) == 0 {
		t.Fatal("no objects in config/admission")
	}
	got := map[string]*unstructured.Unstructured{}
	for _, o := range render(t, nil, showOnly("admission.yaml")) {
		got[o.GetKind()+" "+o.GetName()] = o
	}
	if len(got) != len(want) {
		t.Errorf("templates/admission.yaml renders %d objects, config/admission has %d", len(got), len(want))
	}
	for _, w := range want {
		name := k.NamePrefix + w.GetName()
		g, ok := got[w.GetKind()+" "+name]
		if !ok {
			t.Errorf("chart lacks %s %s (config/admission's %s with config/default's prefix)", w.GetKind(), name, w.GetName())
			continue
		}
		spec, _, _ := unstructured.NestedMap(w.Object, "spec")
		if policy, ok := spec["policyName"].(string); ok {
			spec["policyName"] = k.NamePrefix + policy // kustomize's nameReference does the same
		}
		gotSpec, _, _ := unstructured.NestedMap(g.Object, "spec")
		if diff := cmp.Diff(spec, gotSpec); diff != "" {
			t.Errorf("%s %s differs from config/admission (-config +chart):\n%s", w.GetKind(), name, diff)
		}
	}
}
