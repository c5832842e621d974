package v1alpha1

// Names shared by the manager and everything convoy writes into service clusters.
// Ownership of remote objects is decided by these labels, never by object names.
const (
	// FieldOwner is the server-side apply field manager for every write convoy makes.
	FieldOwner = "convoy"

	// CleanupFinalizer holds a Project (or ServiceCluster) until its remote objects are gone.
	CleanupFinalizer = "convoy.dev/cleanup"

	// ManagedByLabel marks objects convoy created; the value is ManagedByValue.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "convoy"

	// ProjectNamespaceLabel and ProjectNameLabel name the Project (in the manager cluster)
	// that owns a remote object.
	ProjectNamespaceLabel = "convoy.dev/project-namespace"
	ProjectNameLabel      = "convoy.dev/project-name"

	// WorkloadLabel names the Project workload a remote Deployment, Service or pod belongs to.
	WorkloadLabel = "convoy.dev/workload"

	// TeamLabel carries spec.owner.team on every object convoy writes in a service cluster
	// (not on pods: a team change must not roll every workload), so alerting and cost tools
	// there can route by owner.
	TeamLabel = "convoy.dev/team"
	// ContactsAnnotation carries spec.owner.contacts, comma-separated, on the same objects.
	ContactsAnnotation = "convoy.dev/contacts"

	// DefaultKubeconfigKey is the Secret key read when a ServiceCluster does not name one.
	DefaultKubeconfigKey = "kubeconfig"

	// AcceptClusterIDAnnotation on a ServiceCluster accepts a new cluster identity (the
	// kube-system UID its kubeconfig now reaches) after the cluster was rebuilt or moved.
	// Without it, convoy refuses a kubeconfig that reaches another cluster than before.
	AcceptClusterIDAnnotation = "convoy.dev/accept-cluster-id"
)

// Condition types. Ready, Reconciling and Stalled follow kstatus; the rest add detail.
const (
	ReadyCondition       = "Ready"
	ReconcilingCondition = "Reconciling"
	StalledCondition     = "Stalled"
)

// Condition and per-cluster reasons. They are part of the API: keep them stable.
const (
	// ServiceCluster reasons.
	ReasonConnected         = "Connected"
	ReasonConnecting        = "Connecting"
	ReasonUnreachable       = "Unreachable"
	ReasonUnauthorized      = "Unauthorized"
	ReasonInvalidKubeconfig = "InvalidKubeconfig"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonDeleting          = "Deleting"
	ReasonDuplicateCluster  = "DuplicateCluster"
	ReasonIdentityChanged   = "ClusterIdentityChanged"

	// Project and per-cluster reasons.
	ReasonSynced             = "Synced"
	ReasonPending            = "Pending"
	ReasonProgressing        = "Progressing"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonConflict           = "Conflict"
	ReasonClusterNotReady    = "ClusterNotReady"
	ReasonClusterNotFound    = "ClusterNotFound"
	ReasonNoClusters         = "NoClustersSelected"
	ReasonCleanupPending     = "CleanupPending"
	ReasonClustersNotSynced  = "ClustersNotSynced"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonAllClustersSynced  = "AllClustersSynced"
	ReasonWorkloadsNotReady  = "WorkloadsNotReady"
	ReasonPlacementListError = "PlacementListError"
	ReasonPolicyNotFound     = "PolicyNotFound"
	// ReasonWorkloadFailed: a workload's rollout exceeded its progress deadline
	// (ProgressDeadlineExceeded); only a change to the Project or the cluster fixes it.
	ReasonWorkloadFailed = "WorkloadFailed"
	// ReasonRejected: the service cluster's API server refused an object as invalid.
	ReasonRejected = "Rejected"

	// Rollout reasons of a Project's conditions.
	ReasonRolloutProgressing = "RolloutProgressing"
	ReasonWaitingForApproval = "WaitingForApproval"
	ReasonRolloutHalted      = "RolloutHalted"
	ReasonRolledBack         = "RolledBack"

	// GracefulShutdownPolicy reasons and conditions.
	ReasonValid                 = "Valid"
	SpotNoticeExceededCondition = "SpotNoticeExceeded"
	ReasonGraceExceedsNotice    = "GracePeriodExceedsSpotNotice"

	// ZoneImbalancedCondition is True on a Project while a workload's pods are spread over
	// zones more unevenly than its zone spread's maxSkew.
	ZoneImbalancedCondition = "ZoneImbalanced"
	ReasonSkewExceeded      = "SkewExceedsMaxSkew"
)

// Policy kinds, as Projects reference them and as status.appliedPolicies names them.
const (
	KindGracefulShutdownPolicy = "GracefulShutdownPolicy"
	KindLocalityLoadBalancing  = "LocalityLoadBalancing"
	KindRolloutStrategy        = "RolloutStrategy"
)

// Well-known topology labels.
const (
	ZoneLabel   = "topology.kubernetes.io/zone"
	RegionLabel = "topology.kubernetes.io/region"
)
