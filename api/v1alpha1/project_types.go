package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ProjectOwner says who is responsible for a Project.
type ProjectOwner struct {
	// team that owns the service. It becomes the label convoy.dev/team on every object convoy
	// writes in service clusters, so it must be a valid label value.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule=`self.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')`,message="team must be a valid label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	Team string `json:"team"`

	// contacts: e-mail addresses, chat channels or pager handles.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	Contacts []string `json:"contacts,omitempty"`
}

// ClusterSelection picks ServiceClusters by label selector and/or by name. A cluster is picked
// when it matches the selector or is named.
// +kubebuilder:validation:XValidation:rule="has(self.clusterSelector) || (has(self.clusterNames) && size(self.clusterNames) > 0)",message="set clusterSelector, clusterNames or both"
type ClusterSelection struct {
	// clusterSelector selects ServiceClusters by their labels, for example env=prod.
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// clusterNames lists ServiceClusters by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	ClusterNames []string `json:"clusterNames,omitempty"`
}

// ServicePort is a port of the Service convoy creates for a workload.
// +kubebuilder:validation:XValidation:rule="!has(self.targetPort) || type(self.targetPort) == string || (self.targetPort >= 1 && self.targetPort <= 65535)",message="targetPort must be a port number from 1 to 65535 or a port name",fieldPath=".targetPort"
type ServicePort struct {
	// name of the port, unique within the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port the Service exposes.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// targetPort on the pods: a number or a container port name. Defaults to port.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	TargetPort *intstr.IntOrString `json:"targetPort,omitempty"`

	// protocol of the port.
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`
}

// PolicyReference names a policy in the Project's namespace.
type PolicyReference struct {
	// name of the policy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// Workload is one Deployment (and optionally its Service, ServiceAccount,
// HorizontalPodAutoscaler and PodDisruptionBudget) that convoy runs in every targeted cluster.
// +kubebuilder:validation:XValidation:rule="!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.port == p.port && q.protocol == p.protocol))",message="ports[].port must be unique per protocol"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || !has(self.autoscaling)",message="set replicas or autoscaling, not both: with autoscaling the HorizontalPodAutoscaler owns the replicas"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccount) || !has(self.template.spec) || !has(self.template.spec.serviceAccountName)",message="serviceAccount creates the pods' ServiceAccount; remove template.spec.serviceAccountName"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccount) || self.name != 'default'",message="a workload named default cannot have a serviceAccount: every namespace has a ServiceAccount named default"
// +kubebuilder:validation:XValidation:rule="!has(self.cronJob) || (!has(self.replicas) && !has(self.autoscaling) && !has(self.disruptionBudget) && (!has(self.ports) || size(self.ports) == 0))",message="a cronJob workload runs Jobs: replicas, autoscaling, disruptionBudget and ports do not apply to it"
// +kubebuilder:validation:XValidation:rule="!has(self.cronJob) || !has(self.template.spec) || !has(self.template.spec.restartPolicy) || self.template.spec.restartPolicy != 'Always'",message="the pods of a cronJob workload must have restartPolicy OnFailure or Never (convoy uses OnFailure when unset)"
type Workload struct {
	// name of the Deployment and Service in each service cluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// replicas of the Deployment. Leave it unset when something else manages the
	// Deployment's scale (set autoscaling for convoy's own HorizontalPodAutoscaler): convoy
	// then never writes spec.replicas, so it does not fight the autoscaler (the API server
	// starts a new Deployment at 1 replica; an existing one keeps its replicas).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Replicas *int32 `json:"replicas,omitempty"`

	// template of the pods. convoy adds its ownership labels to the pod labels.
	// +required
	Template corev1.PodTemplateSpec `json:"template"`

	// gracefulShutdownPolicy overrides the Project's default policy for this workload.
	// +optional
	GracefulShutdownPolicy *PolicyReference `json:"gracefulShutdownPolicy,omitempty"`

	// localityLoadBalancing overrides the Project's default LocalityLoadBalancing for this
	// workload.
	// +optional
	LocalityLoadBalancing *PolicyReference `json:"localityLoadBalancing,omitempty"`

	// ports of the Service convoy creates for the workload. No Service is created when empty.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Ports []ServicePort `json:"ports,omitempty"`

	// serviceAccount makes convoy create a ServiceAccount named after the workload in each
	// cluster and run the pods under it. Its annotations (cloud workload identity, e.g.
	// eks.amazonaws.com/role-arn) can differ per cluster through overrides.
	// +optional
	ServiceAccount *WorkloadServiceAccount `json:"serviceAccount,omitempty"`

	// autoscaling makes convoy create a HorizontalPodAutoscaler for the workload in each
	// cluster. The autoscaler then owns the Deployment's replicas: convoy never writes them.
	// +optional
	Autoscaling *WorkloadAutoscaling `json:"autoscaling,omitempty"`

	// disruptionBudget makes convoy create a PodDisruptionBudget for the workload in each
	// cluster, so node drains and spot replacements evict its pods a few at a time.
	// +optional
	DisruptionBudget *DisruptionBudget `json:"disruptionBudget,omitempty"`

	// cronJob runs the workload on a schedule instead of continuously: convoy writes a
	// CronJob (batch/v1) with the template as its Jobs' pod template instead of a
	// Deployment. A GracefulShutdownPolicy sets only its pods' grace period; replicas,
	// autoscaling, disruptionBudget and ports do not apply, and a LocalityLoadBalancing has
	// no effect on it.
	// +optional
	CronJob *CronJobSchedule `json:"cronJob,omitempty"`

	// rolloutOnConfigChange rolls the workload when the content of a ConfigMap or Secret of
	// the Project that its pod template uses (volumes, env, envFrom) changes: convoy puts a
	// hash of that content on the pod template (annotation convoy.dev/config-hash). Set it to
	// false when the application reloads its configuration by itself.
	// +optional
	// +kubebuilder:default=true
	RolloutOnConfigChange *bool `json:"rolloutOnConfigChange,omitempty"`
}

// CronJobSchedule is when and how the Jobs of a cron workload run (batch/v1 CronJob and Job
// settings).
type CronJobSchedule struct {
	// schedule in cron format, for example "0 3 * * *".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Schedule string `json:"schedule"`

	// timeZone of the schedule, a tz database name such as Asia/Seoul. The kube-controller-
	// manager's time zone when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TimeZone *string `json:"timeZone,omitempty"`

	// concurrencyPolicy says what happens when a run is due while the previous one runs:
	// Forbid skips it, Replace stops the running Job, Allow runs both.
	// +optional
	// +kubebuilder:default=Forbid
	// +kubebuilder:validation:Enum=Allow;Forbid;Replace
	ConcurrencyPolicy batchv1.ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// startingDeadlineSeconds after its scheduled time a missed run is skipped.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// successfulJobsHistoryLimit finished Jobs are kept (Kubernetes' default: 3).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`

	// failedJobsHistoryLimit failed Jobs are kept (Kubernetes' default: 1).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`

	// backoffLimit is how often a Job's pods are retried before the Job fails.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// activeDeadlineSeconds a Job may run before it is stopped and failed.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// ttlSecondsAfterFinished deletes a finished Job (and its pods) after this long.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// WorkloadServiceAccount is the ServiceAccount convoy creates for a workload.
type WorkloadServiceAccount struct {
	// annotations of the ServiceAccount.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Annotations map[string]string `json:"annotations,omitempty"`
}

// WorkloadAutoscaling is the HorizontalPodAutoscaler (autoscaling/v2) of a workload.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type WorkloadAutoscaling struct {
	// minReplicas is the lower limit for the number of replicas.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the upper limit for the number of replicas.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxReplicas int32 `json:"maxReplicas"`

	// metrics the autoscaler scales on, as in autoscaling/v2. Kubernetes uses 80% average
	// CPU utilization when empty.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Metrics []autoscalingv2.MetricSpec `json:"metrics,omitempty"`

	// behavior configures scaling up and down, as in autoscaling/v2.
	// +optional
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// DisruptionBudget is the PodDisruptionBudget of a workload: set exactly one of
// minAvailable and maxUnavailable.
// +kubebuilder:validation:XValidation:rule="has(self.minAvailable) != has(self.maxUnavailable)",message="set exactly one of minAvailable and maxUnavailable"
// +kubebuilder:validation:XValidation:rule="[has(self.minAvailable) ? self.minAvailable : 0, has(self.maxUnavailable) ? self.maxUnavailable : 0].all(v, type(v) == string || v >= 0)",message="minAvailable and maxUnavailable must not be negative"
type DisruptionBudget struct {
	// minAvailable pods (a number or a percentage) that an eviction must leave.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=4
	// +kubebuilder:validation:Pattern=`^(100|[1-9]?[0-9])%$`
	MinAvailable *intstr.IntOrString `json:"minAvailable,omitempty"`

	// maxUnavailable pods (a number or a percentage) that evictions may take down at once.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=4
	// +kubebuilder:validation:Pattern=`^(100|[1-9]?[0-9])%$`
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// ProjectConfigMap is a ConfigMap convoy writes into the project namespace of every targeted
// cluster.
type ProjectConfigMap struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// data of the ConfigMap. Keys are file names: letters, digits, '-', '_' and '.'.
	// +optional
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$') && k != '.' && k != '..')",message="data keys must consist of letters, digits, '-', '_' or '.' (at most 253, not '.' or '..')"
	Data map[string]string `json:"data,omitempty"`
}

// ProjectSecret names a Secret in the Project's own namespace of the manager cluster that
// convoy copies into the project namespace of every targeted cluster. Secrets of other
// namespaces cannot be referenced: a Project may only deliver what its authors can already
// read where the Project lives.
type ProjectSecret struct {
	// name of the Secret, in the manager cluster and in each service cluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// ImageOverride replaces the image of one container.
type ImageOverride struct {
	// container name in the workload's pod template (init containers included).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Container string `json:"container"`

	// image to use instead.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
}

// ContainerOverride changes one container of the selected workloads.
type ContainerOverride struct {
	// name of the container in the workload's pod template (init containers included). Each
	// selected workload must have it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// env sets environment variables: a variable of the same name is replaced, a new one is
	// appended.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []corev1.EnvVar `json:"env,omitempty"`

	// removeEnv removes environment variables by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	RemoveEnv []string `json:"removeEnv,omitempty"`

	// resources replace the container's requests and limits.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// command replaces the container's command.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Command []string `json:"command,omitempty"`

	// args replace the container's arguments.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=128
	Args []string `json:"args,omitempty"`
}

// ConfigMapOverride replaces values of a Project ConfigMap in some clusters, for example an
// endpoint per region.
type ConfigMapOverride struct {
	// name of a ConfigMap in spec.configMaps.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// data replaces the values of these keys; each key must exist in the ConfigMap.
	// +required
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=32
	Data map[string]string `json:"data"`
}

// AutoscalingOverride replaces the replica limits of autoscaled workloads.
// +kubebuilder:validation:XValidation:rule="has(self.minReplicas) || has(self.maxReplicas)",message="set minReplicas, maxReplicas or both"
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type AutoscalingOverride struct {
	// minReplicas replaces the autoscaler's lower limit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// maxReplicas replaces the autoscaler's upper limit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// ClusterOverride changes workloads and config in some of the targeted clusters. Overrides
// apply in order; a later override wins over an earlier one.
// +kubebuilder:validation:XValidation:rule="has(self.replicas) || has(self.images) || has(self.containers) || has(self.labels) || has(self.annotations) || has(self.serviceAccountAnnotations) || has(self.autoscaling) || has(self.configMaps) || has(self.suspend)",message="an override must change something: replicas, images, containers, labels, annotations, serviceAccountAnnotations, autoscaling, configMaps or suspend"
// +kubebuilder:validation:XValidation:rule="!has(self.labels) || self.labels.all(k, !k.startsWith('convoy.dev/') && k != 'app.kubernetes.io/managed-by')",message="labels must not set convoy.dev/ labels or app.kubernetes.io/managed-by: convoy decides ownership with them"
type ClusterOverride struct {
	// clusters this override applies to.
	// +required
	Clusters ClusterSelection `json:"clusters"`

	// workloads this override changes, by name. All workloads when empty.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	Workloads []string `json:"workloads,omitempty"`

	// replicas replaces the workloads' replicas in these clusters.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Replicas *int32 `json:"replicas,omitempty"`

	// images replace container images in these clusters. Each selected workload must have
	// the container.
	// +optional
	// +listType=map
	// +listMapKey=container
	// +kubebuilder:validation:MaxItems=32
	Images []ImageOverride `json:"images,omitempty"`

	// containers change env, resources, command and args of containers in these clusters.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Containers []ContainerOverride `json:"containers,omitempty"`

	// labels are added to the workloads (Deployment and pods) in these clusters.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the workloads (Deployment and pods) in these clusters.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Annotations map[string]string `json:"annotations,omitempty"`

	// serviceAccountAnnotations are added to the ServiceAccounts of the workloads (which must
	// set serviceAccount) in these clusters, for example a cloud role per region.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`

	// autoscaling replaces the replica limits of the workloads (which must set autoscaling)
	// in these clusters.
	// +optional
	Autoscaling *AutoscalingOverride `json:"autoscaling,omitempty"`

	// suspend stops (true) or resumes (false) the schedules of the cron workloads in these
	// clusters, for example to run a batch job in one region only.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// configMaps replace values of the Project's ConfigMaps in these clusters.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	ConfigMaps []ConfigMapOverride `json:"configMaps,omitempty"`
}

// ProjectSpec is a team's service: who owns it, what runs, and where.
// +kubebuilder:validation:XValidation:rule="!has(self.overrides) || self.overrides.all(o, !has(o.workloads) || o.workloads.all(w, has(self.workloads) && self.workloads.exists(x, x.name == w)))",message="overrides[].workloads must name workloads of this Project"
// +kubebuilder:validation:XValidation:rule="!has(self.overrides) || self.overrides.all(o, !has(o.configMaps) || o.configMaps.all(c, has(self.configMaps) && self.configMaps.exists(m, m.name == c.name && c.data.all(k, has(m.data) && k in m.data))))",message="overrides[].configMaps must name ConfigMaps of spec.configMaps and keys they have"
// +kubebuilder:validation:XValidation:rule="!has(self.overrides) || !has(self.workloads) || self.overrides.all(o, !has(o.replicas) || self.workloads.all(w, !has(w.autoscaling) || (has(o.workloads) && !(w.name in o.workloads))))",message="overrides[].replicas must not apply to a workload with autoscaling: its HorizontalPodAutoscaler owns the replicas (override autoscaling instead)"
// +kubebuilder:validation:XValidation:rule="has(self.__namespace__) == has(oldSelf.__namespace__)",message="namespace cannot be added or removed after creation"
type ProjectSpec struct {
	// owner of the service.
	// +required
	Owner ProjectOwner `json:"owner"`

	// placement selects the ServiceClusters the Project runs in.
	// +required
	Placement ClusterSelection `json:"placement"`

	// namespace in each service cluster that holds the workloads. Defaults to the Project's
	// name. convoy creates it and refuses to adopt a namespace it did not create.
	// Immutable: moving a service to another namespace is a new Project.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable"
	Namespace string `json:"namespace,omitempty"`

	// gracefulShutdownPolicy is the default GracefulShutdownPolicy (in the Project's namespace)
	// of every workload.
	// +optional
	GracefulShutdownPolicy *PolicyReference `json:"gracefulShutdownPolicy,omitempty"`

	// localityLoadBalancing is the default LocalityLoadBalancing (in the Project's namespace)
	// of every workload.
	// +optional
	LocalityLoadBalancing *PolicyReference `json:"localityLoadBalancing,omitempty"`

	// rolloutStrategy names a RolloutStrategy (in the Project's namespace) that rolls every
	// change of the Project, or of the policies it uses, out wave by wave. Unset: a change
	// reaches every targeted cluster at once.
	// +optional
	RolloutStrategy *PolicyReference `json:"rolloutStrategy,omitempty"`

	// workloads run in every targeted cluster.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Workloads []Workload `json:"workloads,omitempty"`

	// configMaps are written into the project namespace of every targeted cluster.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	ConfigMaps []ProjectConfigMap `json:"configMaps,omitempty"`

	// secrets are copied from the Project's namespace in the manager cluster into the
	// project namespace of every targeted cluster; a change to one reaches every cluster.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Secrets []ProjectSecret `json:"secrets,omitempty"`

	// overrides change workloads and config in some clusters.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Overrides []ClusterOverride `json:"overrides,omitempty"`
}

// WorkloadStatus is the live state of one workload's Deployment in one cluster.
type WorkloadStatus struct {
	// name of the workload.
	Name string `json:"name"`
	// replicas the Deployment wants.
	Replicas int32 `json:"replicas"`
	// readyReplicas of the Deployment.
	ReadyReplicas int32 `json:"readyReplicas"`
	// updatedReplicas run the current pod template.
	UpdatedReplicas int32 `json:"updatedReplicas"`
	// availableReplicas of the Deployment.
	AvailableReplicas int32 `json:"availableReplicas"`
	// revision is the Deployment's rollout revision in the cluster
	// (deployment.kubernetes.io/revision).
	// +optional
	Revision string `json:"revision,omitempty"`
	// images are the images of the Deployment's containers, in order: what its updated pods
	// run. With updatedReplicas equal to replicas, every pod runs them.
	// +optional
	// +listType=atomic
	Images []string `json:"images,omitempty"`
	// failed is true when the Deployment's rollout exceeded its progress deadline
	// (Progressing=False, ProgressDeadlineExceeded): it does not recover without a change.
	// +optional
	Failed bool `json:"failed,omitempty"`
	// message says why the workload is not available: the Deployment's failed condition and
	// what its pods wait for.
	// +optional
	Message string `json:"message,omitempty"`
	// podProblems count the workload's pods that are not ready, by reason: a container's
	// waiting reason (ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError, ...)
	// or Unschedulable.
	// +optional
	// +listType=map
	// +listMapKey=reason
	PodProblems []PodProblem `json:"podProblems,omitempty"`
	// kind of the workload's object: Deployment, or CronJob for a cron workload.
	// +optional
	Kind string `json:"kind,omitempty"`
	// lastScheduleTime is when a cron workload's Job was last started.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// lastSuccessfulTime is when a cron workload's Job last completed successfully.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`
	// activeJobs of a cron workload that are running.
	// +optional
	ActiveJobs int32 `json:"activeJobs,omitempty"`
	// zones counts the workload's scheduled, running-or-starting pods per zone (the zone label
	// of their node). Every zone of the ServiceCluster is listed, with 0 when it has none.
	// +optional
	// +listType=map
	// +listMapKey=zone
	Zones []ZonePods `json:"zones,omitempty"`
	// zoneSkew is the difference between the most and the least populated zone.
	// +optional
	ZoneSkew *int32 `json:"zoneSkew,omitempty"`
	// maxSkew is what the workload's zone topology spread constraint allows; the Project is
	// ZoneImbalanced while a rolled-out workload's zoneSkew exceeds it.
	// +optional
	MaxSkew *int32 `json:"maxSkew,omitempty"`
}

// PodProblem is why some of a workload's pods are not ready.
type PodProblem struct {
	// reason is the container's waiting reason, or Unschedulable.
	Reason string `json:"reason"`
	// pods with this reason.
	Pods int32 `json:"pods"`
	// message of one of them, shortened.
	// +optional
	Message string `json:"message,omitempty"`
}

// ZonePods is the number of a workload's pods in one zone.
type ZonePods struct {
	// zone name (topology.kubernetes.io/zone).
	Zone string `json:"zone"`
	// pods in the zone.
	Pods int32 `json:"pods"`
}

// AppliedPolicy records which generation of a policy convoy applied in a cluster.
type AppliedPolicy struct {
	// kind of the policy, for example GracefulShutdownPolicy.
	Kind string `json:"kind"`
	// name of the policy.
	Name string `json:"name"`
	// generation of the policy that the cluster's objects were rendered from.
	Generation int64 `json:"generation"`
}

// ProjectClusterStatus is the state of a Project in one service cluster.
type ProjectClusterStatus struct {
	// name of the ServiceCluster.
	Name string `json:"name"`

	// synced is true when every object convoy wants in the cluster is applied.
	Synced bool `json:"synced"`

	// observedGeneration is the Project generation this cluster's entry describes. Each
	// cluster is synced on its own: while a newer generation waits for this cluster, the
	// entry says Pending.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// reason is a stable UpperCamelCase word: Synced, Progressing, Pending, Conflict,
	// Unreachable, ClusterNotReady, Connecting, ClusterNotFound, ApplyFailed, Rejected,
	// WorkloadFailed, CleanupPending.
	Reason string `json:"reason"`

	// message says what happened and, on failure, what to do.
	// +optional
	Message string `json:"message,omitempty"`

	// lastSyncTime is when convoy last found or made the cluster match the Project.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// lastContactTime is the ServiceCluster's last successful contact. It tells how old the
	// information is when the cluster is unreachable.
	// +optional
	LastContactTime *metav1.Time `json:"lastContactTime,omitempty"`

	// revision is the ControllerRevision of the Project the cluster's objects were last
	// rendered from; set when the Project has a rolloutStrategy.
	// +optional
	Revision string `json:"revision,omitempty"`

	// appliedPolicies are the policies (and their generations) the cluster's objects were
	// last applied from.
	// +optional
	// +listType=atomic
	AppliedPolicies []AppliedPolicy `json:"appliedPolicies,omitempty"`

	// workloads read from the live Deployments. Empty when the cluster cannot be read.
	// +optional
	// +listType=map
	// +listMapKey=name
	Workloads []WorkloadStatus `json:"workloads,omitempty"`
}

// ProjectStatus is the observed state of a Project.
type ProjectStatus struct {
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling, Stalled; ZoneImbalanced when a workload with zone
	// spread has more pods in one zone than maxSkew allows.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// readyClusters summarises the clusters that are synced with every workload available,
	// as "ready/targeted", for example 2/3.
	// +optional
	ReadyClusters string `json:"readyClusters,omitempty"`

	// clusters: one entry per targeted cluster, plus clusters that still hold objects to clean up.
	// +optional
	// +listType=map
	// +listMapKey=name
	Clusters []ProjectClusterStatus `json:"clusters,omitempty"`

	// rollout is the state of the rollout of the latest revision, when the Project has a
	// rolloutStrategy.
	// +optional
	Rollout *ProjectRolloutStatus `json:"rollout,omitempty"`
}

// Project is a team's service that convoy runs in a set of service clusters.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=proj,categories=convoy
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Clusters",type=string,JSONPath=`.status.readyClusters`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Rollout",type=string,JSONPath=`.status.rollout.phase`
// +kubebuilder:printcolumn:name="Wave",type=string,JSONPath=`.status.rollout.currentWave`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.rollout.targetRevision`,priority=1
// +kubebuilder:printcolumn:name="Team",type=string,JSONPath=`.spec.owner.team`,priority=1
// +kubebuilder:selectablefield:JSONPath=`.spec.owner.team`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",message="metadata.name must be a DNS label (at most 63 lowercase alphanumerics or '-'): it is a label value in service clusters and the default namespace"
type Project struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ProjectSpec `json:"spec"`
	// +optional
	Status ProjectStatus `json:"status,omitempty"`
}

// RemoteNamespace is the namespace the Project's objects live in inside service clusters.
func (p *Project) RemoteNamespace() string {
	if p.Spec.Namespace != "" {
		return p.Spec.Namespace
	}
	return p.Name
}

// ProjectList is a list of Projects.
//
// +kubebuilder:object:root=true
type ProjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Project `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Project{}, &ProjectList{})
}
