package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RollbackPolicy says what happens to the clusters of a wave that failed.
// +kubebuilder:validation:Enum=Manual;Automatic
type RollbackPolicy string

const (
	// RollbackManual halts the rollout: the failed wave's clusters keep the new revision for
	// investigation, later waves keep what they run.
	RollbackManual RollbackPolicy = "Manual"
	// RollbackAutomatic halts the rollout and puts the failed wave's clusters back on the
	// last fully rolled-out revision.
	RollbackAutomatic RollbackPolicy = "Automatic"
)

// RestWave is the name of the wave of the clusters no wave selects, when the strategy does not
// end with a wave without clusters.
const RestWave = "rest"

// RolloutWave is one step of a rollout: a set of clusters that get a new revision together.
type RolloutWave struct {
	// name of the wave, shown in status and named by RolloutApprovals.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// clusters of the wave, by label selector and/or name. A cluster belongs to the first wave
	// that selects it. Leave it unset on the last wave to take every cluster no earlier wave
	// selects; without such a wave those clusters form a last wave named "rest".
	// +optional
	Clusters *ClusterSelection `json:"clusters,omitempty"`

	// maxConcurrent is how many clusters of the wave get the new revision at a time; the next
	// starts when one is synced with every workload available. Unset: all at once.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxConcurrent *int32 `json:"maxConcurrent,omitempty"`

	// soakTime is how long every cluster of the wave must stay synced and available, with the
	// health gates holding, before the next wave starts.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="soakTime must not be negative"
	SoakTime *metav1.Duration `json:"soakTime,omitempty"`

	// requireApproval holds the wave until a RolloutApproval for it and the revision being
	// rolled out exists. Who may approve is who may create RolloutApprovals (RBAC).
	// +optional
	RequireApproval bool `json:"requireApproval,omitempty"`
}

// PrometheusGate is a PromQL query evaluated for each cluster of a soaking wave.
type PrometheusGate struct {
	// address of the Prometheus HTTP API, for example http://prometheus.monitoring:9090.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule=`isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')`,message="address must be an http or https URL"
	Address string `json:"address"`

	// query is an instant PromQL query that must return one sample. {{cluster}},
	// {{namespace}} (the Project's namespace in the service cluster) and {{project}} are
	// replaced before it runs, for example
	// sum(rate(istio_requests_total{cluster="{{cluster}}",destination_workload_namespace="{{namespace}}",response_code=~"5.."}[1m]))
	// / sum(rate(istio_requests_total{cluster="{{cluster}}",destination_workload_namespace="{{namespace}}"}[1m])).
	// An empty result holds the wave (it never counts as healthy): add "or vector(0)" where
	// no data means no errors.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query"`

	// max is the highest healthy value; a larger value fails the wave.
	// +required
	Max resource.Quantity `json:"max"`
}

// HealthGate must hold in every cluster of a wave while it soaks.
type HealthGate struct {
	// name of the gate, shown in status.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// prometheus query and threshold.
	// +required
	Prometheus PrometheusGate `json:"prometheus"`
}

// RolloutStrategySpec orders the clusters of the Projects that reference it into waves.
// +kubebuilder:validation:XValidation:rule="self.waves.all(w, w.name != 'rest' || !has(w.clusters))",message="the name rest is reserved for a wave without clusters (the clusters no other wave selects)"
// +kubebuilder:validation:XValidation:rule="self.waves.all(w, has(w.clusters) || w == self.waves[size(self.waves) - 1])",message="only the last wave may leave clusters unset (it takes the clusters no earlier wave selects)"
type RolloutStrategySpec struct {
	// waves in the order they roll out. A wave starts when the one before it succeeded.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Waves []RolloutWave `json:"waves"`

	// rollback says what happens to the clusters of a failed wave: Manual (default) leaves
	// them on the new revision; Automatic puts them back on the last fully rolled-out one.
	// Either way the rollout halts and later waves keep what they run.
	// +optional
	// +kubebuilder:default=Manual
	Rollback RollbackPolicy `json:"rollback,omitempty"`

	// gates are evaluated for every cluster of a wave while it soaks: a breach fails the
	// wave; a wave succeeds only after every gate held at the end of its soak.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Gates []HealthGate `json:"gates,omitempty"`
}

// RolloutStrategy is a reusable plan for rolling out Project changes cluster by cluster:
// waves, concurrency, soak time, approvals and health gates. Projects in its namespace
// reference it with spec.rolloutStrategy.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=rs,categories=convoy
// +kubebuilder:printcolumn:name="Waves",type=integer,JSONPath=`.spec.waves.size()`,priority=1
// +kubebuilder:printcolumn:name="Rollback",type=string,JSONPath=`.spec.rollback`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RolloutStrategy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RolloutStrategySpec `json:"spec"`
}

// RolloutStrategyList is a list of RolloutStrategies.
//
// +kubebuilder:object:root=true
type RolloutStrategyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RolloutStrategy `json:"items"`
}

// RolloutApprovalSpec approves one wave of one revision of a Project.
type RolloutApprovalSpec struct {
	// project is the name of the Project, in the approval's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Project string `json:"project"`

	// revision is the revision being rolled out (status.rollout.targetRevision): an approval
	// never carries over to a later change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Revision string `json:"revision"`

	// wave is the name of the wave approved.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Wave string `json:"wave"`

	// approver is the Kubernetes user name of whoever creates the approval. The admission
	// policy convoy-rollout-approval refuses an approval whose approver is not the user
	// making the request, so it records who approved, as the API server authenticated them.
	// `convoy approve` fills it in.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Approver string `json:"approver"`

	// reason is a note for the record, for example a change ticket.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// RolloutApproval lets a wave that requires approval start. It is immutable; delete it to
// withdraw an approval before the wave starts.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=convoy
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.project`
// +kubebuilder:printcolumn:name="Wave",type=string,JSONPath=`.spec.wave`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="Approver",type=string,JSONPath=`.spec.approver`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable: delete the approval and create a new one"
type RolloutApproval struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RolloutApprovalSpec `json:"spec"`
}

// RolloutApprovalList is a list of RolloutApprovals.
//
// +kubebuilder:object:root=true
type RolloutApprovalList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RolloutApproval `json:"items"`
}

// RolloutPhase is where a Project's rollout stands.
type RolloutPhase string

const (
	RolloutProgressing        RolloutPhase = "Progressing"
	RolloutWaitingForApproval RolloutPhase = "WaitingForApproval"
	// RolloutHalted: a wave failed; later waves keep what they run until the next change.
	RolloutHalted RolloutPhase = "Halted"
	// RolloutRolledBack: a wave failed and its clusters went back to the stable revision.
	RolloutRolledBack RolloutPhase = "RolledBack"
	RolloutComplete   RolloutPhase = "Complete"
)

// WavePhase is where one wave of a rollout stands.
type WavePhase string

const (
	WavePending            WavePhase = "Pending"
	WaveWaitingForApproval WavePhase = "WaitingForApproval"
	WaveProgressing        WavePhase = "Progressing"
	WaveSoaking            WavePhase = "Soaking"
	WaveSucceeded          WavePhase = "Succeeded"
	WaveFailed             WavePhase = "Failed"
	WaveRolledBack         WavePhase = "RolledBack"
)

// RolloutWaveStatus is the state of one wave of the current rollout.
type RolloutWaveStatus struct {
	// name of the wave.
	Name string `json:"name"`
	// phase: Pending, WaitingForApproval, Progressing, Soaking, Succeeded, Failed, RolledBack.
	Phase WavePhase `json:"phase"`
	// clusters of the wave.
	// +optional
	// +listType=atomic
	Clusters []string `json:"clusters,omitempty"`
	// started are the clusters of the wave that were given the target revision.
	// +optional
	// +listType=atomic
	Started []string `json:"started,omitempty"`
	// startTime is when the wave started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// soakStartTime is when every cluster of the wave was last found synced and available.
	// +optional
	SoakStartTime *metav1.Time `json:"soakStartTime,omitempty"`
	// completionTime is when the wave succeeded or failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// approvedBy is the user who approved the wave, as authenticated by the API server.
	// +optional
	ApprovedBy string `json:"approvedBy,omitempty"`
	// approvedAt is when the approval was created.
	// +optional
	ApprovedAt *metav1.Time `json:"approvedAt,omitempty"`
	// message says what the wave waits for or why it failed.
	// +optional
	Message string `json:"message,omitempty"`
}

// ProjectRolloutStatus is the state of the rollout of a Project's latest revision.
type ProjectRolloutStatus struct {
	// strategy is the RolloutStrategy the rollout follows.
	Strategy string `json:"strategy"`
	// phase: Progressing, WaitingForApproval, Halted, RolledBack, Complete.
	Phase RolloutPhase `json:"phase"`
	// targetRevision is the ControllerRevision being rolled out: the Project's current spec
	// and policies.
	TargetRevision string `json:"targetRevision"`
	// stableRevision is the last revision that was rolled out to every wave. Clusters whose
	// wave has not started keep what they run; a cluster new to the Project gets this one.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`
	// currentWave is the wave in progress, waiting or failed; empty when complete.
	// +optional
	CurrentWave string `json:"currentWave,omitempty"`
	// startTime is when the rollout of targetRevision started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// completionTime is when it completed, halted or rolled back.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// message summarises the rollout.
	// +optional
	Message string `json:"message,omitempty"`
	// waves in rollout order.
	// +optional
	// +listType=map
	// +listMapKey=name
	Waves []RolloutWaveStatus `json:"waves,omitempty"`
}

func init() {
	SchemeBuilder.Register(&RolloutStrategy{}, &RolloutStrategyList{}, &RolloutApproval{}, &RolloutApprovalList{})
}
