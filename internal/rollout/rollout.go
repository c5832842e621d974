// Package rollout decides, purely, how a Project's new revision moves through the waves of its
// RolloutStrategy: which wave runs, which clusters of it get the new revision, when a wave
// soaks, succeeds or fails, and which revision each cluster should run. It reads no clock and
// no client: the caller passes the time, the clusters' last results, the approvals and a gate
// function, and persists the returned status on the Project, so a restarted manager resumes
// where the status says.
package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

// WaveOf is the wave a cluster belongs to: the first wave that selects it, else the last wave
// when it selects no clusters of its own, else the implicit rest wave.
func WaveOf(spec *convoyv1.RolloutStrategySpec, sc *convoyv1.ServiceCluster) (string, error) {
	for _, w := range spec.Waves {
		if w.Clusters == nil {
			return w.Name, nil // only the last wave may omit clusters (admission enforces it)
		}
		ok, err := render.Matches(*w.Clusters, sc)
		if err != nil {
			return "", fmt.Errorf("wave %s: %w", w.Name, err)
		}
		if ok {
			return w.Name, nil
		}
	}
	return convoyv1.RestWave, nil
}

// waves are the strategy's waves in order, with the implicit rest wave when the last one
// selects clusters.
func waves(spec *convoyv1.RolloutStrategySpec) []convoyv1.RolloutWave {
	out := slices.Clone(spec.Waves)
	if n := len(out); n == 0 || out[n-1].Clusters != nil {
		out = append(out, convoyv1.RolloutWave{Name: convoyv1.RestWave})
	}
	return out
}

// Desired is the revision a cluster should run: the rollout's target once the cluster's wave
// has given it to the cluster, the stable revision after an automatic rollback, and otherwise
// what the cluster runs (running; the stable revision for a cluster that runs nothing yet).
// Empty when the Project has no rollout yet: render from the live spec.
func Desired(ro *convoyv1.ProjectRolloutStatus, wave, cluster, running string) string {
	if ro == nil || ro.TargetRevision == "" {
		return ""
	}
	if ro.StableRevision == "" || ro.StableRevision == ro.TargetRevision {
		return ro.TargetRevision // a first revision, or everything back on the stable one: all at once
	}
	keep := running
	if keep == "" {
		keep = ro.StableRevision
	}
	i := slices.IndexFunc(ro.Waves, func(w convoyv1.RolloutWaveStatus) bool { return w.Name == wave })
	if i < 0 {
		return keep
	}
	w := &ro.Waves[i]
	started := slices.Contains(w.Started, cluster)
	switch {
	case w.Phase == convoyv1.WaveSoaking || w.Phase == convoyv1.WaveSucceeded:
		return ro.TargetRevision
	case started && (w.Phase == convoyv1.WaveProgressing || w.Phase == convoyv1.WaveFailed):
		return ro.TargetRevision
	case started && w.Phase == convoyv1.WaveRolledBack:
		return ro.StableRevision
	}
	return keep
}

// Cluster is a targeted cluster as the rollout sees it: its wave and its last result.
type Cluster struct {
	Name, Wave string
	// Revision the cluster's objects were last rendered from.
	Revision string
	// Reason and Message of the cluster's status entry.
	Reason, Message string
}

// Approval is who approved a wave of the target revision, and when.
type Approval struct {
	By string
	At metav1.Time
}

// GateFunc evaluates the strategy's health gates in the clusters of a soaking wave: breaches
// (by cluster) fail the wave, waits (why a gate is undecided) hold it.
type GateFunc func(clusters []string) (breaches map[string]string, waits []string)

// Input is what one step of a rollout looks at.
type Input struct {
	Now      time.Time
	Strategy string
	Spec     *convoyv1.RolloutStrategySpec
	// Target is the revision of the Project's current inputs.
	Target   string
	Clusters []Cluster
	// Approvals of the target revision, by wave.
	Approvals map[string]Approval
	Gates     GateFunc
	// GateInterval is how often a soaking wave re-evaluates its gates.
	GateInterval time.Duration
}

// Event is a transition worth telling the Project's users (as a Kubernetes Event) and
// counting (as a metric).
type Event struct {
	Warning bool
	// Reason: RolloutStarted, WaveStarted, WaitingForApproval, WaveSucceeded, WaveFailed,
	// RolloutComplete, RolloutHalted, RolloutRolledBack.
	Reason, Wave, Message string
}

// Output is the next state of the rollout.
type Output struct {
	Status *convoyv1.ProjectRolloutStatus
	// RequeueAfter is when to look again without an event (soak time, gates); zero: on events.
	RequeueAfter time.Duration
	Events       []Event
}

// failedReason says whether a cluster's reason means its rollout failed: only a change to
// the Project or the cluster fixes it.
func failedReason(reason string) bool {
	switch reason {
	case convoyv1.ReasonWorkloadFailed, convoyv1.ReasonRejected, convoyv1.ReasonConflict, convoyv1.ReasonInvalidSpec:
		return true
	}
	return false
}

// step carries one Step's working state.
type step struct {
	Input
	now metav1.Time
	ro  *convoyv1.ProjectRolloutStatus
	out Output
}

func (s *step) event(warning bool, reason, wave, format string, args ...any) {
	s.out.Events = append(s.out.Events, Event{Warning: warning, Reason: reason, Wave: wave, Message: fmt.Sprintf(format, args...)})
}

func (s *step) requeue(d time.Duration) {
	if d > 0 && (s.out.RequeueAfter == 0 || d < s.out.RequeueAfter) {
		s.out.RequeueAfter = d
	}
}

// done: the cluster runs the target revision, synced, with every workload available.
func (s *step) done(c Cluster) bool {
	return c.Revision == s.Target && c.Reason == convoyv1.ReasonSynced
}

// failsWave: the cluster runs the target revision and its rollout failed there.
func (s *step) failsWave(c Cluster) bool { return c.Revision == s.Target && failedReason(c.Reason) }

// Step advances the rollout of in.Target from prev, the status persisted last time.
func Step(prev *convoyv1.ProjectRolloutStatus, in Input) Output {
	s := &step{Input: in, now: metav1.NewTime(in.Now)}
	s.ro = prev.DeepCopy()
	if s.ro == nil || s.ro.TargetRevision != in.Target {
		// A Project's first revision is its stable one at once: every cluster gets it, and
		// the next change must go wave by wave even if this one never completes everywhere.
		stable := in.Target
		if s.ro != nil {
			stable = s.ro.StableRevision
			if !finished(s.ro.Phase) {
				s.event(false, "RolloutSuperseded", s.ro.CurrentWave, "The rollout of revision %s was superseded by revision %s", s.ro.TargetRevision, in.Target)
			}
		}
		s.ro = &convoyv1.ProjectRolloutStatus{TargetRevision: in.Target, StableRevision: stable, StartTime: &s.now, Phase: convoyv1.RolloutProgressing}
		if stable != in.Target {
			s.event(false, "RolloutStarted", "", "Rolling out revision %s wave by wave; clusters keep what they run until their wave starts", in.Target)
		}
	}
	s.ro.Strategy = in.Strategy
	s.out.Status = s.ro
	if finished(s.ro.Phase) {
		return s.out // until the next change
	}
	if s.ro.StableRevision == "" || s.ro.StableRevision == s.ro.TargetRevision {
		s.allAtOnce()
	} else {
		s.wavesInOrder()
	}
	return s.out
}

// finished: the rollout moves no further until the next change.
func finished(phase convoyv1.RolloutPhase) bool {
	return phase == convoyv1.RolloutComplete || phase == convoyv1.RolloutHalted || phase == convoyv1.RolloutRolledBack
}

// allAtOnce completes a rollout that has nothing to protect: the Project's first revision (no
// cluster runs an earlier one; like a Deployment's first ReplicaSet) or a return to the
// stable revision. (A status written before first revisions became stable at once has no
// stable revision: it is treated the same.)
func (s *step) allAtOnce() {
	s.ro.Waves, s.ro.CurrentWave = nil, ""
	var waiting []string
	for _, c := range s.Clusters {
		switch {
		case s.failsWave(c):
			s.halt(nil, c)
			return
		case !s.done(c):
			waiting = append(waiting, c.Name)
		}
	}
	if len(waiting) > 0 {
		s.ro.Message = "Waiting for " + list(waiting) + ": revision " + s.Target + " goes to every cluster at once (no earlier revision to protect)"
		return
	}
	s.complete()
}

func (s *step) complete() {
	s.ro.Phase, s.ro.CurrentWave, s.ro.StableRevision, s.ro.CompletionTime = convoyv1.RolloutComplete, "", s.Target, &s.now
	s.ro.Message = fmt.Sprintf("Revision %s runs in all %d clusters", s.Target, len(s.Clusters))
	s.event(false, "RolloutComplete", "", "%s", s.ro.Message)
}

// wavesInOrder runs the waves in order until one waits or fails.
func (s *step) wavesInOrder() {
	s.ro.Waves = s.waveStatuses()
	// A cluster of a wave that succeeded can still fail (pods that crash after the soak):
	// that halts the rollout as well.
	for i := range s.ro.Waves {
		w := &s.ro.Waves[i]
		for _, c := range s.members(w) {
			if w.Phase == convoyv1.WaveSucceeded && s.failsWave(c) {
				s.halt(w, c)
				return
			}
		}
	}
	for i := range s.ro.Waves {
		w := &s.ro.Waves[i]
		if w.Phase == convoyv1.WaveSucceeded {
			continue
		}
		s.ro.CurrentWave = w.Name
		if !s.advance(w, waves(s.Spec)[i]) {
			return
		}
	}
	s.complete()
}

// waveStatuses lines the persisted wave statuses up with the strategy's waves and their
// current clusters: clusters that join or leave mid-rollout move in and out of their wave.
func (s *step) waveStatuses() []convoyv1.RolloutWaveStatus {
	var out []convoyv1.RolloutWaveStatus
	for _, w := range waves(s.Spec) {
		ws := convoyv1.RolloutWaveStatus{Name: w.Name, Phase: convoyv1.WavePending}
		if i := slices.IndexFunc(s.ro.Waves, func(p convoyv1.RolloutWaveStatus) bool { return p.Name == w.Name }); i >= 0 {
			ws = s.ro.Waves[i]
		}
		ws.Clusters = nil
		for _, c := range s.Clusters {
			if c.Wave == w.Name {
				ws.Clusters = append(ws.Clusters, c.Name)
			}
		}
		ws.Started = slices.DeleteFunc(ws.Started, func(name string) bool { return !slices.Contains(ws.Clusters, name) })
		out = append(out, ws)
	}
	return out
}

// advance moves one wave forward and reports whether it succeeded, so the next may start.
func (s *step) advance(w *convoyv1.RolloutWaveStatus, spec convoyv1.RolloutWave) bool {
	members := s.members(w)
	if w.Phase == convoyv1.WavePending || w.Phase == convoyv1.WaveWaitingForApproval {
		if len(members) == 0 {
			w.Phase, w.CompletionTime, w.Message = convoyv1.WaveSucceeded, &s.now, "No clusters in this wave"
			return true
		}
		if spec.RequireApproval {
			a, ok := s.Approvals[w.Name]
			if !ok {
				if w.Phase != convoyv1.WaveWaitingForApproval {
					s.event(false, "WaitingForApproval", w.Name, "Wave %s waits for approval of revision %s", w.Name, s.Target)
				}
				w.Phase, s.ro.Phase = convoyv1.WaveWaitingForApproval, convoyv1.RolloutWaitingForApproval
				w.Message = fmt.Sprintf("Waiting for approval: convoy approve <namespace>/<project> --wave %s (or create a RolloutApproval for revision %s, wave %s)", w.Name, s.Target, w.Name)
				s.ro.Message = "Wave " + w.Name + " waits for approval"
				return false
			}
			w.ApprovedBy, w.ApprovedAt = a.By, a.At.DeepCopy()
		}
		w.Phase, w.StartTime, s.ro.Phase = convoyv1.WaveProgressing, &s.now, convoyv1.RolloutProgressing
		s.event(false, "WaveStarted", w.Name, "Wave %s started: %s get revision %s", w.Name, list(w.Clusters), s.Target)
	}
	s.ro.Phase = convoyv1.RolloutProgressing
	for _, c := range members {
		if slices.Contains(w.Started, c.Name) && s.failsWave(c) {
			s.halt(w, c)
			return false
		}
	}
	var notDone []string
	for _, c := range members {
		switch {
		case s.done(c):
		case c.Revision != s.Target && (c.Reason == convoyv1.ReasonSynced || c.Reason == convoyv1.ReasonProgressing || c.Reason == convoyv1.ReasonPending):
			notDone = append(notDone, c.Name+" (not on the target revision yet)")
		default:
			notDone = append(notDone, c.Name+" ("+c.Reason+")")
		}
	}
	if len(notDone) > 0 || len(w.Started) < len(members) {
		w.Phase, w.SoakStartTime = convoyv1.WaveProgressing, nil
		s.admit(w, members, spec.MaxConcurrent)
		w.Message = "Waiting for " + list(notDone) + " to be synced with every workload available"
		s.ro.Message = "Wave " + w.Name + ": " + w.Message
		return false
	}
	return s.soak(w, members, spec)
}

// members are the wave's clusters.
func (s *step) members(w *convoyv1.RolloutWaveStatus) []Cluster {
	var out []Cluster
	for _, c := range s.Clusters {
		if c.Wave == w.Name {
			out = append(out, c)
		}
	}
	return out
}

// admit gives the target revision to as many more of the wave's clusters as maxConcurrent
// allows, counting the started ones that are not done yet.
func (s *step) admit(w *convoyv1.RolloutWaveStatus, members []Cluster, maxConcurrent *int32) {
	slots := len(members)
	if maxConcurrent != nil {
		slots = int(*maxConcurrent)
	}
	for _, c := range members {
		if slices.Contains(w.Started, c.Name) && !s.done(c) {
			slots--
		}
	}
	for _, c := range members {
		if slots <= 0 {
			return
		}
		if !slices.Contains(w.Started, c.Name) {
			w.Started = append(w.Started, c.Name)
			slots--
		}
	}
}

// soak holds a wave whose clusters are all done for its soak time, with the gates evaluated
// in every cluster, and reports whether it succeeded.
func (s *step) soak(w *convoyv1.RolloutWaveStatus, members []Cluster, spec convoyv1.RolloutWave) bool {
	if w.Phase != convoyv1.WaveSoaking {
		w.Phase, w.SoakStartTime = convoyv1.WaveSoaking, &s.now
	}
	var holding []string
	if s.Gates != nil {
		var breaches map[string]string
		breaches, holding = s.Gates(w.Clusters)
		for _, c := range w.Clusters { // in order, so the same breach is reported each time
			if breach := breaches[c]; breach != "" {
				s.halt(w, Cluster{Name: c, Reason: "GateBreached", Message: breach})
				return false
			}
		}
		s.requeue(s.GateInterval)
	}
	var soak time.Duration
	if spec.SoakTime != nil {
		soak = spec.SoakTime.Duration
	}
	if left := w.SoakStartTime.Add(soak).Sub(s.now.Time); left > 0 {
		s.requeue(left)
		w.Message = fmt.Sprintf("Soaking: every cluster must stay healthy until %s", w.SoakStartTime.Add(soak).UTC().Format(time.RFC3339))
		if len(holding) > 0 {
			w.Message += "; gates undecided: " + strings.Join(holding, "; ")
		}
		s.ro.Message = "Wave " + w.Name + ": " + w.Message
		return false
	}
	if len(holding) > 0 {
		w.Message = "Soak time passed; gates undecided: " + strings.Join(holding, "; ")
		s.ro.Message = "Wave " + w.Name + ": " + w.Message
		return false
	}
	w.Phase, w.CompletionTime, w.Message = convoyv1.WaveSucceeded, &s.now, "All clusters synced and available"
	if soak > 0 {
		w.Message += " for " + soak.String()
	}
	s.event(false, "WaveSucceeded", w.Name, "Wave %s succeeded: revision %s runs in %s", w.Name, s.Target, list(w.Clusters))
	return true
}

// halt stops the rollout at a failed wave (nil for an all-at-once rollout). With automatic
// rollback the wave's started clusters go back to the stable revision.
func (s *step) halt(w *convoyv1.RolloutWaveStatus, c Cluster) {
	why := fmt.Sprintf("cluster %s: %s: %s", c.Name, c.Reason, c.Message)
	s.ro.Phase, s.ro.CompletionTime = convoyv1.RolloutHalted, &s.now
	wave := ""
	if w != nil {
		wave, s.ro.CurrentWave = w.Name, w.Name
		w.Phase, w.CompletionTime, w.Message = convoyv1.WaveFailed, &s.now, "Failed: "+why
		s.event(true, "WaveFailed", w.Name, "Wave %s failed: %s", w.Name, why)
		if s.Spec.Rollback == convoyv1.RollbackAutomatic {
			w.Phase, s.ro.Phase = convoyv1.WaveRolledBack, convoyv1.RolloutRolledBack
			s.ro.Message = fmt.Sprintf("Rolled back: wave %s failed (%s); its clusters run revision %s again and later waves keep what they run. Fix the Project; the next change starts a new rollout",
				w.Name, why, s.ro.StableRevision)
			s.event(true, "RolloutRolledBack", w.Name, "%s", s.ro.Message)
			return
		}
		s.ro.Message = fmt.Sprintf("Halted: wave %s failed (%s); later waves keep what they run. Fix the Project (or set the previous spec back); the next change starts a new rollout", w.Name, why)
	} else {
		s.ro.Message = fmt.Sprintf("Halted: revision %s failed in %s. Fix the Project; the next change rolls out again", s.Target, why)
	}
	s.event(true, "RolloutHalted", wave, "%s", s.ro.Message)
}

// list names clusters for a message, at most five.
func list(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}
