package access

import (
	"fmt"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func TestSubject(t *testing.T) {
	for _, tc := range []struct {
		username string
		want     rbacv1.Subject
	}{
		{"system:serviceaccount:convoy-system:convoy", rbacv1.Subject{Kind: "ServiceAccount", Namespace: "convoy-system", Name: "convoy"}},
		{"alice@example.com", rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "alice@example.com"}},
		{"system:serviceaccount:missing-name", rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "system:serviceaccount:missing-name"}},
	} {
		if got := Subject(tc.username); got != tc.want {
			t.Errorf("Subject(%q) = %+v, want %+v", tc.username, got, tc.want)
		}
	}
}

// The cluster-wide role must not reach into namespaces: no namespaced kind, no wildcard,
// and bind only on the per-namespace role.
func TestClusterRulesStayOutOfNamespaces(t *testing.T) {
	allowed := map[string]bool{"namespaces": true, "nodes": true, "rolebindings": true, "clusterroles": true}
	for _, r := range ClusterRules() {
		for _, res := range r.Resources {
			if !allowed[res] {
				t.Errorf("cluster-wide rule on %q: %s", res, Describe(r))
			}
		}
		if slices.Contains(r.APIGroups, "*") || slices.Contains(r.Verbs, "*") {
			t.Errorf("wildcard in cluster-wide rule: %s", Describe(r))
		}
		if res := r.Resources; slices.Contains(res, "rolebindings") && slices.ContainsFunc(r.Verbs, func(v string) bool { return v == "get" || v == "list" }) {
			t.Errorf("cluster-wide read of RoleBindings: %s", Describe(r))
		}
		if slices.Contains(r.Verbs, "bind") && !slices.Equal(r.ResourceNames, []string{NamespaceClusterRole}) {
			t.Errorf("bind not limited to %s: %s", NamespaceClusterRole, Describe(r))
		}
	}
}

func TestJoinObjectsBindTheNamespaceRoleToNobody(t *testing.T) {
	names := map[string]bool{}
	for _, o := range JoinObjects() {
		if names[o.GetNamespace()+"/"+o.GetName()+"/"+typeName(o)] {
			t.Errorf("duplicate %s %s", typeName(o), o.GetName())
		}
		names[o.GetNamespace()+"/"+o.GetName()+"/"+typeName(o)] = true
		if crb, ok := o.(*rbacv1.ClusterRoleBinding); ok && crb.RoleRef.Name == NamespaceClusterRole {
			t.Errorf("%s is bound cluster-wide by %s: it must be bound only per namespace, by convoy", NamespaceClusterRole, crb.Name)
		}
	}
	rb := RoleBinding("shop", Identity(), map[string]string{"app.kubernetes.io/managed-by": "convoy"})
	if rb.RoleRef.Name != NamespaceClusterRole || rb.Namespace != "shop" || rb.Name != RoleBindingName {
		t.Errorf("RoleBinding = %+v", rb)
	}
}

func typeName(o any) string { return fmt.Sprintf("%T", o) }
