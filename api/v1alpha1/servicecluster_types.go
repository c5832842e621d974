package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretKeyReference points at one key of a Secret in the manager cluster.
type SecretKeyReference struct {
	// namespace of the Secret in the manager cluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key in the Secret's data that holds the kubeconfig.
	// +optional
	// +kubebuilder:default=kubeconfig
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// ServiceClusterSpec describes how to reach a service cluster and where it runs.
type ServiceClusterSpec struct {
	// kubeconfigSecretRef names the Secret whose key holds a self-contained kubeconfig for the
	// cluster. Exec plugins, auth providers, file paths and insecure TLS are refused. Updating
	// the Secret rotates credentials without restarting convoy.
	// +required
	KubeconfigSecretRef SecretKeyReference `json:"kubeconfigSecretRef"`

	// region the cluster runs in, for example ap-northeast-2. It should match the nodes'
	// topology.kubernetes.io/region label.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Region string `json:"region,omitempty"`

	// zones of the cluster's nodes, for example ap-northeast-2a. They should match the nodes'
	// topology.kubernetes.io/zone label.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Zones []string `json:"zones,omitempty"`

	// accessScope says what convoy's identity in the cluster may read, and so how convoy
	// watches it.
	// Cluster: the identity may list and watch the kinds convoy writes in every namespace
	// (label selectors cannot limit RBAC, so that includes every Secret); convoy uses one
	// watch per kind for the whole cluster.
	// ManagedNamespaces: the identity holds cluster-wide rights only on namespaces and
	// nodes, and may bind the ClusterRole convoy-managed-namespace; convoy binds it in each
	// namespace it creates and watches those namespaces one by one (one watch per kind per
	// namespace). This is what `convoy join` sets up; see docs/install.md.
	// +optional
	// +kubebuilder:default=Cluster
	AccessScope AccessScope `json:"accessScope,omitempty"`
}

// AccessScope is how far convoy's identity in a service cluster reaches.
// +kubebuilder:validation:Enum=Cluster;ManagedNamespaces
type AccessScope string

const (
	// AccessScopeCluster: cluster-wide list and watch of the kinds convoy writes.
	AccessScopeCluster AccessScope = "Cluster"
	// AccessScopeManagedNamespaces: rights only in the namespaces convoy created.
	AccessScopeManagedNamespaces AccessScope = "ManagedNamespaces"
)

// ClusterCapabilities are features discovered from the service cluster's API server.
type ClusterCapabilities struct {
	// preStopSleep is true when the server supports the lifecycle sleep action (Kubernetes 1.30+).
	// +optional
	PreStopSleep bool `json:"preStopSleep,omitempty"`

	// preStopSleepZero is true when a zero-second sleep action is accepted (Kubernetes 1.33+).
	// +optional
	PreStopSleepZero bool `json:"preStopSleepZero,omitempty"`

	// nativeSidecars is true when Istio's automatic mode would inject native sidecars: the
	// API server and every node's kubelet are Kubernetes 1.33+. convoy pins the choice on
	// the pods it renders (sidecar.istio.io/nativeSidecar), so Istio's mesh setting cannot
	// make another one than the drain settings assume.
	// +optional
	NativeSidecars bool `json:"nativeSidecars,omitempty"`

	// oldestKubeletVersion is the lowest kubelet minor version among the cluster's nodes.
	// +optional
	OldestKubeletVersion string `json:"oldestKubeletVersion,omitempty"`

	// destinationRuleVersions lists the networking.istio.io versions that serve
	// DestinationRule, preferred first. Empty when Istio's CRDs are not installed.
	// +optional
	// +listType=atomic
	DestinationRuleVersions []string `json:"destinationRuleVersions,omitempty"`

	// trafficDistribution is the best Service spec.trafficDistribution the server accepts
	// for zone-local routing: PreferSameZone (Kubernetes 1.34+), PreferClose (1.31+), or
	// empty. convoy uses it when the cluster has no Istio.
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`
}

// DestinationRuleVersion is the networking.istio.io version convoy writes DestinationRules
// in: v1 when served, else v1beta1, else "" (no Istio).
func (c ClusterCapabilities) DestinationRuleVersion() string {
	for _, want := range []string{"v1", "v1beta1"} {
		for _, v := range c.DestinationRuleVersions {
			if v == want {
				return v
			}
		}
	}
	return ""
}

// ServiceClusterStatus is the observed state of a service cluster.
type ServiceClusterStatus struct {
	// observedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (reasons Connected, Unreachable, Unauthorized, InvalidKubeconfig,
	// SecretNotFound, DuplicateCluster, Deleting), Reconciling and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// clusterID identifies the physical cluster (the UID of its kube-system namespace). Two
	// ServiceClusters with the same clusterID would prune each other's objects, so the newer
	// one is refused with reason DuplicateCluster.
	// +optional
	ClusterID string `json:"clusterID,omitempty"`

	// kubernetesVersion reported by the cluster's API server, for example v1.36.3.
	// +optional
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`

	// lastContactTime is when convoy last talked to the cluster successfully.
	// +optional
	LastContactTime *metav1.Time `json:"lastContactTime,omitempty"`

	// consecutiveFailures counts failed health probes since the last success.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`

	// capabilities discovered from the cluster.
	// +optional
	Capabilities ClusterCapabilities `json:"capabilities,omitempty"`
}

// ServiceCluster is a remote Kubernetes cluster that runs workloads convoy manages.
// Its labels are what Projects select on.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=scl,categories=convoy
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.kubernetesVersion`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`
// +kubebuilder:printcolumn:name="Env",type=string,JSONPath=`.metadata.labels.env`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.metadata.labels.stage`
// +kubebuilder:printcolumn:name="Last-Contact",type=date,JSONPath=`.status.lastContactTime`,priority=1
// +kubebuilder:printcolumn:name="Access",type=string,JSONPath=`.spec.accessScope`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ServiceClusterSpec `json:"spec"`
	// +optional
	Status ServiceClusterStatus `json:"status,omitempty"`
}

// ServiceClusterList is a list of ServiceClusters.
//
// +kubebuilder:object:root=true
type ServiceClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServiceCluster{}, &ServiceClusterList{})
}
