package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

func cluster(name string, labels map[string]string) *convoyv1.ServiceCluster {
	return &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func byLabel(k, v string) *convoyv1.ClusterSelection {
	return &convoyv1.ClusterSelection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}}
}

func TestWaveOf(t *testing.T) {
	canaryThenRegion := &convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{
		{Name: "canary", Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}}},
		{Name: "seoul", Clusters: byLabel("region", "seoul")},
	}}
	withCatchAll := &convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{
		{Name: "canary", Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}}},
		{Name: "others"},
	}}
	for _, tc := range []struct {
		name    string
		spec    *convoyv1.RolloutStrategySpec
		cluster *convoyv1.ServiceCluster
		want    string
	}{
		{"named in the first wave and selected by the second: the first wins", canaryThenRegion, cluster("seoul-1", map[string]string{"region": "seoul"}), "canary"},
		{"selected by labels", canaryThenRegion, cluster("seoul-2", map[string]string{"region": "seoul"}), "seoul"},
		{"selected by no wave: the implicit rest wave", canaryThenRegion, cluster("tokyo-1", map[string]string{"region": "tokyo"}), convoyv1.RestWave},
		{"a last wave without clusters takes the rest", withCatchAll, cluster("tokyo-1", nil), "others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WaveOf(tc.spec, tc.cluster)
			if err != nil || got != tc.want {
				t.Errorf("WaveOf = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// fleet is a rollout under test: three waves of one cluster each (canary, seoul, tokyo via
// rest), clusters running revision v1, target v2.
type fleet struct {
	t        *testing.T
	now      time.Time
	spec     *convoyv1.RolloutStrategySpec
	clusters map[string]*Cluster
	order    []string
	status   *convoyv1.ProjectRolloutStatus
	approved map[string]Approval
	gates    map[string][2]string
	target   string
	out      Output
}

func newFleet(t *testing.T, spec *convoyv1.RolloutStrategySpec) *fleet {
	f := &fleet{t: t, now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), spec: spec, clusters: map[string]*Cluster{}, target: "v2",
		status: &convoyv1.ProjectRolloutStatus{TargetRevision: "v1", StableRevision: "v1", Phase: convoyv1.RolloutComplete}}
	for _, c := range []struct{ name, region string }{{"seoul-1", "seoul"}, {"seoul-2", "seoul"}, {"tokyo-1", "tokyo"}} {
		wave, err := WaveOf(spec, cluster(c.name, map[string]string{"region": c.region}))
		if err != nil {
			t.Fatal(err)
		}
		f.clusters[c.name] = &Cluster{Name: c.name, Wave: wave, Revision: "v1", Reason: convoyv1.ReasonSynced}
		f.order = append(f.order, c.name)
	}
	return f
}

func threeWaves() *convoyv1.RolloutStrategySpec {
	return &convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{
		{Name: "canary", Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}}, SoakTime: &metav1.Duration{Duration: 10 * time.Minute}},
		{Name: "seoul", Clusters: byLabel("region", "seoul")},
	}}
}

// step runs one Step and then lets every cluster converge on its desired revision with the
// given reason (a cluster that changes revision reports reason).
func (f *fleet) step() {
	f.t.Helper()
	var cs []Cluster
	for _, name := range f.order {
		cs = append(cs, *f.clusters[name])
	}
	var gates GateFunc
	if f.gates != nil {
		gates = func(clusters []string) (map[string]string, []string) {
			breaches, waits := map[string]string{}, []string(nil)
			for _, c := range clusters {
				if f.gates[c][0] != "" {
					breaches[c] = f.gates[c][0]
				}
				if f.gates[c][1] != "" {
					waits = append(waits, f.gates[c][1])
				}
			}
			return breaches, waits
		}
	}
	f.out = Step(f.status, Input{Now: f.now, Strategy: "waves", Spec: f.spec, Target: f.target, Clusters: cs, Approvals: f.approved, Gates: gates, GateInterval: 30 * time.Second})
	f.status = f.out.Status
}

// converge lets each cluster run what Desired says, reporting reason where that changed it.
func (f *fleet) converge(reason string) {
	for _, name := range f.order {
		c := f.clusters[name]
		if want := Desired(f.status, c.Wave, c.Name, c.Revision); want != c.Revision {
			c.Revision, c.Reason = want, reason
		}
	}
}

func (f *fleet) revisions() map[string]string {
	got := map[string]string{}
	for name, c := range f.clusters {
		got[name] = c.Revision
	}
	return got
}

func (f *fleet) expect(phase convoyv1.RolloutPhase, wave string, revisions map[string]string) {
	f.t.Helper()
	if f.status.Phase != phase || f.status.CurrentWave != wave {
		f.t.Fatalf("rollout %s at wave %q, want %s at %q: %s", f.status.Phase, f.status.CurrentWave, phase, wave, f.status.Message)
	}
	if diff := cmp.Diff(revisions, f.revisions()); diff != "" {
		f.t.Fatalf("revisions (-want +got):\n%s", diff)
	}
}

func TestWaveByWaveWithSoak(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.step()
	f.converge(convoyv1.ReasonProgressing)
	f.expect(convoyv1.RolloutProgressing, "canary", map[string]string{"seoul-1": "v2", "seoul-2": "v1", "tokyo-1": "v1"})

	f.clusters["seoul-1"].Reason = convoyv1.ReasonSynced
	f.step()
	if w := f.status.Waves[0]; w.Phase != convoyv1.WaveSoaking || f.out.RequeueAfter != 10*time.Minute {
		t.Fatalf("canary %s, requeue %v; want Soaking for 10m", w.Phase, f.out.RequeueAfter)
	}
	f.now = f.now.Add(10 * time.Minute)
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutProgressing, "seoul", map[string]string{"seoul-1": "v2", "seoul-2": "v2", "tokyo-1": "v1"})

	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutProgressing, convoyv1.RestWave, map[string]string{"seoul-1": "v2", "seoul-2": "v2", "tokyo-1": "v2"})
	f.step()
	f.expect(convoyv1.RolloutComplete, "", map[string]string{"seoul-1": "v2", "seoul-2": "v2", "tokyo-1": "v2"})
	if f.status.StableRevision != "v2" {
		t.Errorf("stable revision %s after completion, want v2", f.status.StableRevision)
	}
	var reasons []string
	for _, e := range f.out.Events {
		reasons = append(reasons, e.Reason)
	}
	if diff := cmp.Diff([]string{"WaveSucceeded", "RolloutComplete"}, reasons); diff != "" {
		t.Errorf("events of the last step (-want +got):\n%s", diff)
	}
}

func TestSoakRestartsWhenAClusterStopsBeingAvailable(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.step()
	f.now = f.now.Add(5 * time.Minute)
	f.clusters["seoul-1"].Reason = convoyv1.ReasonProgressing
	f.step()
	if w := f.status.Waves[0]; w.Phase != convoyv1.WaveProgressing || w.SoakStartTime != nil {
		t.Fatalf("canary %s soaking since %v; want Progressing with the soak reset", w.Phase, w.SoakStartTime)
	}
	f.clusters["seoul-1"].Reason = convoyv1.ReasonSynced
	f.step()
	f.now = f.now.Add(6 * time.Minute)
	f.step()
	if w := f.status.Waves[0]; w.Phase != convoyv1.WaveSoaking {
		t.Fatalf("canary %s 6 minutes into a new 10-minute soak; want Soaking", w.Phase)
	}
}

func TestMaxConcurrent(t *testing.T) {
	spec := &convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{{Name: "all", MaxConcurrent: ptr.To[int32](1)}}}
	f := newFleet(t, spec)
	f.step()
	f.converge(convoyv1.ReasonProgressing)
	f.expect(convoyv1.RolloutProgressing, "all", map[string]string{"seoul-1": "v2", "seoul-2": "v1", "tokyo-1": "v1"})
	f.step() // seoul-1 still progressing: no second cluster
	f.converge(convoyv1.ReasonProgressing)
	f.expect(convoyv1.RolloutProgressing, "all", map[string]string{"seoul-1": "v2", "seoul-2": "v1", "tokyo-1": "v1"})
	f.clusters["seoul-1"].Reason = convoyv1.ReasonSynced
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutProgressing, "all", map[string]string{"seoul-1": "v2", "seoul-2": "v2", "tokyo-1": "v1"})
}

func TestFailureHaltsAndLaterWavesKeepTheirRevision(t *testing.T) {
	for _, tc := range []struct {
		rollback convoyv1.RollbackPolicy
		phase    convoyv1.RolloutPhase
		canary   string
	}{
		{convoyv1.RollbackManual, convoyv1.RolloutHalted, "v2"},
		{convoyv1.RollbackAutomatic, convoyv1.RolloutRolledBack, "v1"},
	} {
		t.Run(string(tc.rollback), func(t *testing.T) {
			spec := threeWaves()
			spec.Rollback = tc.rollback
			f := newFleet(t, spec)
			f.step()
			f.converge(convoyv1.ReasonWorkloadFailed)
			f.step()
			f.converge(convoyv1.ReasonSynced)
			f.expect(tc.phase, "canary", map[string]string{"seoul-1": tc.canary, "seoul-2": "v1", "tokyo-1": "v1"})
			if e := f.out.Events[len(f.out.Events)-1]; !e.Warning || e.Wave != "canary" {
				t.Errorf("last event %+v, want a warning about wave canary", e)
			}

			// A new change starts over from the first wave.
			f.target = "v3"
			f.step()
			f.converge(convoyv1.ReasonSynced)
			f.expect(convoyv1.RolloutProgressing, "canary", map[string]string{"seoul-1": "v3", "seoul-2": "v1", "tokyo-1": "v1"})
		})
	}
}

func TestApprovalHoldsAWave(t *testing.T) {
	spec := threeWaves()
	spec.Waves[1].RequireApproval = true
	spec.Waves[0].SoakTime = nil
	f := newFleet(t, spec)
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutWaitingForApproval, "seoul", map[string]string{"seoul-1": "v2", "seoul-2": "v1", "tokyo-1": "v1"})
	f.step() // no second WaitingForApproval event
	if len(f.out.Events) != 0 {
		t.Errorf("events while still waiting: %+v", f.out.Events)
	}
	at := metav1.NewTime(f.now)
	f.approved = map[string]Approval{"seoul": {By: "alice", At: at}}
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutProgressing, "seoul", map[string]string{"seoul-1": "v2", "seoul-2": "v2", "tokyo-1": "v1"})
	if w := f.status.Waves[1]; w.ApprovedBy != "alice" || !w.ApprovedAt.Equal(&at) {
		t.Errorf("wave seoul approved by %q at %v, want alice at %v", w.ApprovedBy, w.ApprovedAt, at)
	}
}

func TestGates(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.gates = map[string][2]string{"seoul-1": {"", "no sample yet"}}
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.step()
	f.now = f.now.Add(11 * time.Minute)
	f.step()
	if w := f.status.Waves[0]; w.Phase != convoyv1.WaveSoaking || f.out.RequeueAfter != 30*time.Second {
		t.Fatalf("canary %s (requeue %v) with an undecided gate after its soak; want Soaking, rechecked in 30s", w.Phase, f.out.RequeueAfter)
	}
	f.gates["seoul-1"] = [2]string{"gate errors in cluster seoul-1: 0.3 > max 0.05", ""}
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutHalted, "canary", map[string]string{"seoul-1": "v2", "seoul-2": "v1", "tokyo-1": "v1"})
	if w := f.status.Waves[0]; w.Phase != convoyv1.WaveFailed {
		t.Errorf("canary %s after a breach, want Failed", w.Phase)
	}
}

func TestFirstRevisionGoesEverywhereAtOnce(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.status = nil
	f.target = "v1"
	for _, c := range f.clusters {
		c.Revision, c.Reason = "", convoyv1.ReasonPending
	}
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutProgressing, "", map[string]string{"seoul-1": "v1", "seoul-2": "v1", "tokyo-1": "v1"})
	f.step()
	f.expect(convoyv1.RolloutComplete, "", map[string]string{"seoul-1": "v1", "seoul-2": "v1", "tokyo-1": "v1"})
}

func TestJoiningClusterGetsTheRevisionOfItsWave(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.step()
	f.now = f.now.Add(10 * time.Minute)
	f.step() // canary succeeded; seoul started
	// Two clusters join: one into the running wave, one into a wave not started.
	wave := func(name, region string) string {
		w, _ := WaveOf(f.spec, cluster(name, map[string]string{"region": region}))
		return w
	}
	f.clusters["seoul-3"] = &Cluster{Name: "seoul-3", Wave: wave("seoul-3", "seoul")}
	f.clusters["tokyo-2"] = &Cluster{Name: "tokyo-2", Wave: wave("tokyo-2", "tokyo")}
	f.order = append(f.order, "seoul-3", "tokyo-2")
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.expect(convoyv1.RolloutProgressing, "seoul", map[string]string{"seoul-1": "v2", "seoul-2": "v2", "seoul-3": "v2", "tokyo-1": "v1", "tokyo-2": "v1"})
}

func TestAnUnreachableClusterHoldsItsWaveWithoutFailingIt(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.step()
	f.converge(convoyv1.ReasonUnreachable)
	for range 3 {
		f.step()
	}
	f.expect(convoyv1.RolloutProgressing, "canary", map[string]string{"seoul-1": "v2", "seoul-2": "v1", "tokyo-1": "v1"})
	if w := f.status.Waves[0]; w.Phase != convoyv1.WaveProgressing || w.Message != "Waiting for seoul-1 (Unreachable) to be synced with every workload available" {
		t.Errorf("canary %s: %q; want Progressing, waiting for seoul-1", w.Phase, w.Message)
	}
}

func TestAClusterFailingInASucceededWaveHaltsTheRollout(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.step()
	f.now = f.now.Add(10 * time.Minute)
	f.step() // canary succeeded, seoul started
	f.converge(convoyv1.ReasonProgressing)
	f.clusters["seoul-1"].Reason = convoyv1.ReasonWorkloadFailed // crashing after its soak
	f.step()
	f.converge(convoyv1.ReasonProgressing)
	f.expect(convoyv1.RolloutHalted, "canary", map[string]string{"seoul-1": "v2", "seoul-2": "v2", "tokyo-1": "v1"})
	if w := f.status.Waves[0]; w.Phase != convoyv1.WaveFailed {
		t.Errorf("canary %s, want Failed", w.Phase)
	}
}

func TestANewChangeSupersedesARunningRollout(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.step()
	f.target = "v3"
	f.step()
	var reasons []string
	for _, e := range f.out.Events {
		reasons = append(reasons, e.Reason)
	}
	if diff := cmp.Diff([]string{"RolloutSuperseded", "RolloutStarted", "WaveStarted"}, reasons); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestTheNextChangeIsStagedEvenIfTheFirstRevisionNeverReachedEveryCluster(t *testing.T) {
	f := newFleet(t, threeWaves())
	f.status, f.target = nil, "v1"
	for _, c := range f.clusters {
		c.Revision, c.Reason = "", convoyv1.ReasonPending
	}
	f.step()
	f.converge(convoyv1.ReasonSynced)
	f.clusters["tokyo-1"].Revision, f.clusters["tokyo-1"].Reason = "", convoyv1.ReasonUnreachable
	f.step() // never complete: tokyo-1 is unreachable
	f.target = "v2"
	f.step()
	f.converge(convoyv1.ReasonProgressing)
	// tokyo-1 never ran anything: it gets the stable revision, the first one.
	f.expect(convoyv1.RolloutProgressing, "canary", map[string]string{"seoul-1": "v2", "seoul-2": "v1", "tokyo-1": "v1"})
}
