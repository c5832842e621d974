package controllers

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
	"github.com/convoy-dev/convoy/internal/render"
	"github.com/convoy-dev/convoy/internal/scheme"
)

// A Ready ServiceCluster without a live connection (the manager just restarted) keeps the
// cluster's last status only while that status describes the current spec and policies.
func TestConnectingKeepsOnlyCurrentStatus(t *testing.T) {
	sc := &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: "seoul-1"}}
	sc.Status.Conditions = []metav1.Condition{{Type: convoyv1.ReadyCondition, Status: metav1.ConditionTrue, Reason: convoyv1.ReasonConnected}}
	applied := []convoyv1.AppliedPolicy{{Kind: "LocalityLoadBalancing", Name: "zonal", Generation: 1}}
	synced := convoyv1.ProjectClusterStatus{Name: "seoul-1", Synced: true, Reason: convoyv1.ReasonSynced, AppliedPolicies: applied}
	policy := &convoyv1.LocalityLoadBalancing{ObjectMeta: metav1.ObjectMeta{Name: "zonal", Generation: 1}}

	tests := []struct {
		name       string
		mutate     func(*convoyv1.Project, *convoyv1.LocalityLoadBalancing)
		wantReason string
	}{
		{"nothing changed: the last observation stands", nil, convoyv1.ReasonSynced},
		{"the spec changed: Connecting", func(p *convoyv1.Project, _ *convoyv1.LocalityLoadBalancing) { p.Generation = 3 }, convoyv1.ReasonConnecting},
		{"a policy changed: Connecting", func(_ *convoyv1.Project, l *convoyv1.LocalityLoadBalancing) { l.Generation = 2 }, convoyv1.ReasonConnecting},
		{"never synced before: Connecting", func(p *convoyv1.Project, _ *convoyv1.LocalityLoadBalancing) { p.Status.Clusters = nil }, convoyv1.ReasonConnecting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := &convoyv1.Project{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team-a", Generation: 2},
				Spec: convoyv1.ProjectSpec{
					LocalityLoadBalancing: &convoyv1.PolicyReference{Name: "zonal"},
					Workloads:             []convoyv1.Workload{{Name: "api"}},
				},
				Status: convoyv1.ProjectStatus{ObservedGeneration: 2, Clusters: []convoyv1.ProjectClusterStatus{synced}},
			}
			llb := policy.DeepCopy()
			if tt.mutate != nil {
				tt.mutate(project, llb)
			}
			r := &ProjectReconciler{Fleet: remote.NewFleet(remote.Options{Scheme: scheme.New()})}
			st, err := r.syncCluster(context.Background(), project, sc, render.Policies{
				LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{"zonal": llb},
			})
			if err != nil {
				t.Fatal(err)
			}
			if st.Reason != tt.wantReason {
				t.Errorf("reason = %s (%s), want %s", st.Reason, st.Message, tt.wantReason)
			}
		})
	}
}
