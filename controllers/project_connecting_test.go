package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
	"github.com/convoy-dev/convoy/internal/render"
)

// The Project's status entry for a cluster comes from the pair's result when that result
// describes the current generation and policies. Until then the last observation stands if
// it is current (a manager restart: connections are still being set up), and otherwise the
// cluster is reported Pending, never Synced for a spec it has not seen.
func TestClusterStatusFromPairResults(t *testing.T) {
	applied := []convoyv1.AppliedPolicy{{Kind: convoyv1.KindLocalityLoadBalancing, Name: "zonal", Generation: 1}}
	synced := convoyv1.ProjectClusterStatus{Name: "seoul-1", Synced: true, ObservedGeneration: 2, Reason: convoyv1.ReasonSynced, AppliedPolicies: applied}
	connecting := convoyv1.ProjectClusterStatus{Name: "seoul-1", ObservedGeneration: 2, Reason: convoyv1.ReasonConnecting, AppliedPolicies: applied}
	progressing := convoyv1.ProjectClusterStatus{Name: "seoul-1", ObservedGeneration: 2, Reason: convoyv1.ReasonProgressing, Synced: true, AppliedPolicies: applied}

	tests := []struct {
		name       string
		prev       []convoyv1.ProjectClusterStatus
		result     *pairResult
		generation int64
		policyGen  int64
		wantReason string
	}{
		{"no result yet, last observation current: it stands", []convoyv1.ProjectClusterStatus{synced}, nil, 2, 1, convoyv1.ReasonSynced},
		{"no result yet, spec changed: Pending", []convoyv1.ProjectClusterStatus{synced}, nil, 3, 1, convoyv1.ReasonPending},
		{"no result yet, policy changed: Pending", []convoyv1.ProjectClusterStatus{synced}, nil, 2, 2, convoyv1.ReasonPending},
		{"never synced: Pending", nil, nil, 2, 1, convoyv1.ReasonPending},
		{"connecting after a restart, last observation current: it stands", []convoyv1.ProjectClusterStatus{synced}, &pairResult{status: connecting}, 2, 1, convoyv1.ReasonSynced},
		{"connecting, spec changed: Pending", []convoyv1.ProjectClusterStatus{synced}, &pairResult{status: connecting}, 3, 1, convoyv1.ReasonPending},
		{"a current result wins", []convoyv1.ProjectClusterStatus{synced}, &pairResult{status: progressing}, 2, 1, convoyv1.ReasonProgressing},
		{"a result for an older generation: Pending", []convoyv1.ProjectClusterStatus{synced}, &pairResult{status: progressing}, 3, 1, convoyv1.ReasonPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: "seoul-1"}}
			project := &convoyv1.Project{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team-a", Generation: tt.generation},
				Status:     convoyv1.ProjectStatus{Clusters: tt.prev},
			}
			r := &ProjectReconciler{state: newPairState(), Queues: engine.New(engine.Options{}, nil)}
			if tt.result != nil {
				r.state.record(engine.Pair{Project: client.ObjectKeyFromObject(project), Cluster: sc.Name}, *tt.result)
			}
			pi := &projectInputs{
				project:   project,
				clusters:  []convoyv1.ServiceCluster{sc},
				placement: render.Placement{Targeted: []*convoyv1.ServiceCluster{&sc}},
				policies: render.Policies{LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{
					"zonal": {ObjectMeta: metav1.ObjectMeta{Name: "zonal", Generation: tt.policyGen}},
				}},
			}
			statuses := r.clusterStatuses(pi)
			if len(statuses) != 1 || statuses[0].Reason != tt.wantReason {
				t.Fatalf("statuses = %+v, want one with reason %s", statuses, tt.wantReason)
			}
		})
	}
}

// A change of a ServiceCluster wakes only the Projects it concerns.
func TestProjectsAffectedByCluster(t *testing.T) {
	sc := &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: "seoul-1", Labels: map[string]string{"env": "prod"}}}
	now := metav1.Now()
	project := func(name string, mutate func(*convoyv1.Project)) convoyv1.Project {
		p := convoyv1.Project{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"}}
		p.Spec.Placement.ClusterNames = []string{"tokyo-1"}
		mutate(&p)
		return p
	}
	projects := []convoyv1.Project{
		project("by-label", func(p *convoyv1.Project) {
			p.Spec.Placement.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
		}),
		project("by-name", func(p *convoyv1.Project) { p.Spec.Placement.ClusterNames = []string{"seoul-1"} }),
		project("still-reported", func(p *convoyv1.Project) {
			p.Status.Clusters = []convoyv1.ProjectClusterStatus{{Name: "seoul-1", Reason: convoyv1.ReasonCleanupPending}}
		}),
		project("deleting", func(p *convoyv1.Project) { p.DeletionTimestamp = &now }),
		project("other-label", func(p *convoyv1.Project) {
			p.Spec.Placement.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}
		}),
		project("other-name", func(*convoyv1.Project) {}),
	}
	var got []string
	for _, p := range projectsAffectedBy(sc, projects) {
		got = append(got, p.Name)
	}
	want := []string{"by-label", "by-name", "still-reported", "deleting"}
	if len(got) != len(want) {
		t.Fatalf("woken %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("woken %v, want %v", got, want)
		}
	}
}
