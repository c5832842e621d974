// Package access defines the identity convoy uses in a service cluster joined with
// `convoy join`, and the rights it holds there: pure object construction, shared by the CLI
// that creates them and the manager that binds the per-namespace role.
//
// RBAC cannot say "only objects with my label" or "metadata only", and `list` returns Secret
// data. So instead of cluster-wide rights on every kind, the identity holds:
//   - cluster-wide: namespaces and nodes, and the right to bind one ClusterRole
//     (NamespaceClusterRole) with RoleBindings;
//   - per namespace: NamespaceClusterRole, bound by convoy itself in each namespace it creates.
//
// A ValidatingAdmissionPolicy closes the gap RBAC leaves: it lets the identity change,
// delete and bind itself only in namespaces labelled as convoy's, and refuses that label on
// a namespace convoy did not create. Without it the identity could bind the role in any
// namespace, kube-system included.
package access

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// Names of what `convoy join` creates in a service cluster. The manager relies on
// NamespaceClusterRole and RoleBindingName; the others are the CLI's.
const (
	Namespace            = "convoy-system"
	ServiceAccount       = "convoy"
	ClusterRole          = "convoy-cluster"
	NamespaceClusterRole = "convoy-managed-namespace"
	RoleBindingName      = "convoy"
	AdmissionPolicy      = "convoy-managed-namespaces"
)

var writeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// ClusterRules are the identity's cluster-wide rights.
func ClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// Namespaces: create, and change or delete its own (the admission policy enforces
		// "its own"). Reading them tells the cluster's identity (kube-system's UID).
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: writeVerbs},
		// Nodes, for their zone label and kubelet version: pods per zone and native sidecars.
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		// Binding NamespaceClusterRole in a namespace convoy creates; nothing else can be bound.
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create", "update", "patch"}},
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}, ResourceNames: []string{NamespaceClusterRole}},
	}
}

// NamespaceRules are the rights convoy binds in each namespace it creates: it writes the
// kinds it renders, and reads everything there (the check before it deletes the namespace
// lists every kind, so that it never deletes what someone else put there).
func NamespaceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts", "configmaps", "secrets", "services"}, Verbs: writeVerbs},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: writeVerbs},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: writeVerbs},
		{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: writeVerbs},
		{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: writeVerbs},
		{APIGroups: []string{"networking.istio.io"}, Resources: []string{"destinationrules"}, Verbs: writeVerbs},
		{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
	}
}

// Subject is the RBAC subject of an authenticated user name: a ServiceAccount for a
// service account's name, a User otherwise.
func Subject(username string) rbacv1.Subject {
	if ns, name, err := serviceaccount.SplitUsername(username); err == nil {
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
	}
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: username}
}

// RoleBinding grants subject NamespaceClusterRole in namespace. It carries labels (convoy's
// ownership labels of the namespace) so that it counts as convoy's.
func RoleBinding(namespace string, subject rbacv1.Subject, labels map[string]string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: RoleBindingName, Namespace: namespace, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: NamespaceClusterRole},
		Subjects:   []rbacv1.Subject{subject},
	}
}

// Identity is the service account `convoy join` creates.
func Identity() rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: Namespace, Name: ServiceAccount}
}

// JoinObjects are the objects `convoy join` applies in a service cluster, in order.
func JoinObjects() []metav1.Object {
	labels := map[string]string{"app.kubernetes.io/name": "convoy", "app.kubernetes.io/component": "service-cluster-access"}
	meta := func(name, namespace string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
	}
	id := Identity()
	return []metav1.Object{
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: meta(Namespace, "")},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(ServiceAccount, Namespace)},
		&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(ClusterRole, ""), Rules: ClusterRules()},
		&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(NamespaceClusterRole, ""), Rules: NamespaceRules()},
		&rbacv1.ClusterRoleBinding{
			TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: meta(ClusterRole, ""),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterRole},
			Subjects: []rbacv1.Subject{id},
		},
		Policy(id),
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
			ObjectMeta: meta(AdmissionPolicy, ""),
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        AdmissionPolicy,
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			},
		},
	}
}

// Policy is the admission policy that keeps the identity to convoy's own namespaces.
func Policy(id rbacv1.Subject) *admissionregistrationv1.ValidatingAdmissionPolicy {
	fail := admissionregistrationv1.Fail
	owned := fmt.Sprintf(".?labels[?%q].orValue('') == %q", convoyv1.ManagedByLabel, convoyv1.ManagedByValue)
	username := serviceaccount.MakeUsername(id.Namespace, id.Name)
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta: typeMeta("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
		ObjectMeta: metav1.ObjectMeta{Name: AdmissionPolicy,
			Labels: map[string]string{"app.kubernetes.io/name": "convoy", "app.kubernetes.io/component": "service-cluster-access"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{
				rule("", "namespaces", admissionregistrationv1.Update, admissionregistrationv1.Delete),
				rule(rbacv1.GroupName, "rolebindings", admissionregistrationv1.Create, admissionregistrationv1.Update),
			}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name: "convoy-identity", Expression: fmt.Sprintf("request.userInfo.username == %q", username),
			}},
			Validations: []admissionregistrationv1.Validation{
				{
					Expression: "request.resource.resource != 'namespaces' || oldObject.metadata" + owned,
					Message: fmt.Sprintf("%s may change or delete only namespaces convoy created (labelled %s=%s)",
						username, convoyv1.ManagedByLabel, convoyv1.ManagedByValue),
				},
				{
					Expression: "request.resource.resource != 'rolebindings' || (namespaceObject.metadata" + owned +
						fmt.Sprintf(" && object.roleRef.kind == 'ClusterRole' && object.roleRef.name == %q", NamespaceClusterRole) +
						fmt.Sprintf(" && object.subjects.all(s, s.kind == 'ServiceAccount' && s.namespace == %q && s.name == %q))", id.Namespace, id.Name),
					Message: fmt.Sprintf("%s may only bind ClusterRole %s to itself, in namespaces convoy created (labelled %s=%s)",
						username, NamespaceClusterRole, convoyv1.ManagedByLabel, convoyv1.ManagedByValue),
				},
			},
		},
	}
}

func rule(group, resource string, ops ...admissionregistrationv1.OperationType) admissionregistrationv1.NamedRuleWithOperations {
	return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: ops,
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: []string{resource},
		},
	}}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// Describe is a one-line summary of a rule, for `convoy join --dry-run` and docs.
func Describe(r rbacv1.PolicyRule) string {
	groups := make([]string, len(r.APIGroups))
	for i, g := range r.APIGroups {
		if g == "" {
			g = "core"
		}
		groups[i] = g
	}
	s := fmt.Sprintf("%s %s: %s", strings.Join(groups, ","), strings.Join(r.Resources, ","), strings.Join(r.Verbs, ","))
	if len(r.ResourceNames) > 0 {
		s += " (only " + strings.Join(r.ResourceNames, ",") + ")"
	}
	return s
}
