package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The rules below are the ones istiod applies to a localityLbSetting (pilot's
// ValidateLocalityLbSetting) and Istio's CRD schema leaves out, so a wrong setting would be
// accepted by the service cluster and then misbehave. convoy rejects them at admission.
//
// A locality is "region", "region/zone" or "region/zone/subzone"; a final "*" segment matches
// everything below ("region/*"), and "*" alone matches every locality. Two localities overlap
// when one contains the other: "r" and "r/z", "r/*" and "r/z/s", "*" and anything. The
// overlap rules turn "x/*" and "x" into the prefix "x/" ("*" into "") and compare prefixes.

// Locality is region, region/zone or region/zone/subzone, optionally ending in a "*" part.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(p, size(p) == 0)",message="a locality must not have empty parts: write region, region/zone or region/zone/subzone"
// +kubebuilder:validation:XValidation:rule="self.split('/').size() <= 3",message="a locality has at most three parts: region/zone/subzone"
// +kubebuilder:validation:XValidation:rule="!self.contains('*') || (self.indexOf('*') == self.lastIndexOf('*') && (self == '*' || self.endsWith('/*')))",message="the wildcard '*' may appear once, as the whole last part (region/* or region/zone/*)"
type Locality string

// LocalityWeight is the share of traffic one destination locality gets.
type LocalityWeight struct {
	// locality receiving traffic.
	// +required
	Locality Locality `json:"locality"`

	// weight in percent; the weights of one distribute entry add up to 100.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`
}

// LocalityDistribution sends the traffic of clients in one locality to destination
// localities by weight.
//
//	+kubebuilder:validation:XValidation:rule="self.to.map(t, t.weight).sum() == 100",message="the weights in to must add up to 100",fieldPath=".to"
//	+kubebuilder:validation:XValidation:rule="self.to.all(a, self.to.all(b, a.locality == b.locality || (!(a.locality.endsWith('*') ? a.locality.substring(0, size(a.locality) - 1) : a.locality + '/').startsWith((b.locality.endsWith('*') ? b.locality.substring(0, size(b.locality) - 1) : b.locality + '/')) && !(b.locality.endsWith('*') ? b.locality.substring(0, size(b.locality) - 1) : b.locality + '/').startsWith((a.locality.endsWith('*') ? a.locality.substring(0, size(a.locality) - 1) : a.locality + '/')))))",message="destination localities in to must not overlap: a region covers its zones (r and r/z overlap) and '*' covers everything",fieldPath=".to"
type LocalityDistribution struct {
	// from is the clients' locality.
	// +required
	From Locality `json:"from"`

	// to lists the destination localities and their weights. Localities not listed get no
	// traffic from these clients, even when every listed one fails.
	// +required
	// +listType=map
	// +listMapKey=locality
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	To []LocalityWeight `json:"to"`
}

// RegionFailover names the region that takes the traffic of a region whose endpoints are all
// unhealthy.
// +kubebuilder:validation:XValidation:rule="self.from != self.to",message="from and to must be different regions"
type RegionFailover struct {
	// from is the failing region.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="!self.contains('/') && !self.contains('*')",message="failover works on regions: no '/' (zones) and no '*' wildcard"
	From string `json:"from"`

	// to is the region that takes over.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="!self.contains('/') && !self.contains('*')",message="failover works on regions: no '/' (zones) and no '*' wildcard"
	To string `json:"to"`
}

// OutlierDetection ejects failing endpoints. Locality failover depends on it: Envoy moves
// traffic to the next locality only when endpoints of the local one are ejected.
type OutlierDetection struct {
	// consecutive5xxErrors (502, 503, 504 and other 5xx, and connection failures) before an
	// endpoint is ejected. 0 disables this check.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Consecutive5xxErrors *int32 `json:"consecutive5xxErrors,omitempty"`

	// consecutiveGatewayErrors (502, 503, 504 and connection failures only) before ejection.
	// Unset leaves the check off.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`

	// interval between ejection sweeps.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="must be at least 1ms"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// baseEjectionTime: an endpoint stays ejected for this long times the number of times it
	// was ejected.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="must be at least 1ms"
	BaseEjectionTime *metav1.Duration `json:"baseEjectionTime,omitempty"`

	// maxEjectionPercent of a pool's endpoints that may be ejected at once. convoy defaults it
	// to 100: with Istio's default of 10, a zone of fewer than ten endpoints never has one
	// ejected, so it never fails over. At least 1: Istio reads 0 as unset, that is 10.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`

	// minHealthPercent: outlier detection stays on while at least this percentage of the
	// pool is healthy; below it Envoy balances over all endpoints (panic mode).
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinHealthPercent int32 `json:"minHealthPercent,omitempty"`
}

// ZoneSpread keeps a workload's pods spread evenly over the cluster's zones, so that keeping
// traffic in its zone does not overload the zone with the fewest pods.
type ZoneSpread struct {
	// enabled adds a topologySpreadConstraint on topology.kubernetes.io/zone to the pods.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// maxSkew is the largest allowed difference of pod counts between two zones. The Project
	// reports ZoneImbalanced when a workload exceeds it (for example after a scale-in, which
	// ignores topology spread).
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxSkew int32 `json:"maxSkew,omitempty"`

	// whenUnsatisfiable: DoNotSchedule keeps pods pending rather than unbalanced and lets
	// convoy set minDomains to the ServiceCluster's zone count, so an empty zone counts;
	// ScheduleAnyway only prefers balance.
	// +optional
	// +kubebuilder:default=DoNotSchedule
	// +kubebuilder:validation:Enum=DoNotSchedule;ScheduleAnyway
	WhenUnsatisfiable corev1.UnsatisfiableConstraintAction `json:"whenUnsatisfiable,omitempty"`
}

// IsEnabled reports whether zone spread applies (it does unless switched off).
func (z ZoneSpread) IsEnabled() bool { return z.Enabled == nil || *z.Enabled }

// LocalityLoadBalancingSpec keeps traffic in its zone and region. It renders into the Istio
// DestinationRule of each workload (trafficPolicy.loadBalancer.localityLbSetting and
// outlierDetection) and into topology spread constraints of its pods.
//
// Leave distribute, failover and failoverPriority unset for the usual setup: traffic stays in
// the client's zone, then region, and each region fails over to the next region (in name
// order) among the clusters the Project runs in.
//
//	+kubebuilder:validation:XValidation:rule="!has(self.distribute) || !has(self.failover)",message="distribute and failover cannot be set together: distribute fixes where each locality's traffic goes, so there is nothing to fail over to (istiod rejects this)"
//	+kubebuilder:validation:XValidation:rule="!has(self.failover) || !has(self.failoverPriority) || !self.failoverPriority.exists(k, k in ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'])",message="failoverPriority must not list topology.kubernetes.io/region, topology.kubernetes.io/zone or topology.istio.io/subzone when failover is set: failover already orders by region (istiod rejects this)",fieldPath=".failoverPriority"
//	+kubebuilder:validation:XValidation:rule="has(self.outlierDetection) || (has(self.distribute) && !has(self.failoverPriority))",message="outlierDetection is required with failover, failoverPriority and the default region failover: without it Envoy never ejects endpoints, so traffic never fails over. outlierDetection: {} uses convoy's defaults",fieldPath=".outlierDetection"
//	+kubebuilder:validation:XValidation:rule="!has(self.distribute) || self.distribute.all(a, self.distribute.all(b, a.from == b.from || (!(a.from.endsWith('*') ? a.from.substring(0, size(a.from) - 1) : a.from + '/').startsWith((b.from.endsWith('*') ? b.from.substring(0, size(b.from) - 1) : b.from + '/')) && !(b.from.endsWith('*') ? b.from.substring(0, size(b.from) - 1) : b.from + '/').startsWith((a.from.endsWith('*') ? a.from.substring(0, size(a.from) - 1) : a.from + '/')))))",message="from localities in distribute must not overlap: a region covers its zones (r and r/z overlap) and '*' covers everything",fieldPath=".distribute"
type LocalityLoadBalancingSpec struct {
	// distribute sets, per client locality, the share of traffic each destination locality
	// gets. Every locality not listed under to gets none of that traffic.
	// +optional
	// +listType=map
	// +listMapKey=from
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Distribute []LocalityDistribution `json:"distribute,omitempty"`

	// failover names, per region, the region that takes its traffic when all its endpoints
	// are unhealthy. Defaults to a ring over the regions of the Project's clusters.
	// +optional
	// +listType=map
	// +listMapKey=from
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Failover []RegionFailover `json:"failover,omitempty"`

	// failoverPriority orders endpoints by how many of these pod or node labels they share
	// with the client, for example topology.kubernetes.io/region then
	// topology.kubernetes.io/zone.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=317
	FailoverPriority []string `json:"failoverPriority,omitempty"`

	// outlierDetection ejects failing endpoints, which is what triggers failover.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// zoneSpread spreads the pods evenly over zones. On by default.
	// +optional
	// +kubebuilder:default={}
	ZoneSpread ZoneSpread `json:"zoneSpread,omitempty"`
}

// Locality load balancing modes, as reported in status.
const (
	LocalityModeFailover         = "Failover"
	LocalityModeDistribute       = "Distribute"
	LocalityModeFailoverPriority = "FailoverPriority"
)

// Mode names how traffic leaves its locality: Distribute (fixed weights), FailoverPriority
// (label matching) or Failover (region pairs, explicit or derived).
func (s *LocalityLoadBalancingSpec) Mode() string {
	switch {
	case len(s.Distribute) > 0:
		return LocalityModeDistribute
	case len(s.FailoverPriority) > 0:
		return LocalityModeFailoverPriority
	default:
		return LocalityModeFailover
	}
}

// LocalityLoadBalancingStatus is the observed state of the policy.
type LocalityLoadBalancingStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// mode: Failover, Distribute or FailoverPriority.
	// +optional
	Mode string `json:"mode,omitempty"`
}

// LocalityLoadBalancing keeps a Project's traffic in its zone and region with Istio locality
// load balancing and outlier detection, and keeps its pods balanced over zones.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=llb,categories=convoy
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.mode`
// +kubebuilder:printcolumn:name="Zone-Spread",type=boolean,JSONPath=`.spec.zoneSpread.enabled`
// +kubebuilder:printcolumn:name="Max-Skew",type=integer,JSONPath=`.spec.zoneSpread.maxSkew`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LocalityLoadBalancing struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec LocalityLoadBalancingSpec `json:"spec"`
	// +optional
	Status LocalityLoadBalancingStatus `json:"status,omitempty"`
}

// LocalityLoadBalancingList is a list of LocalityLoadBalancings.
//
// +kubebuilder:object:root=true
type LocalityLoadBalancingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalityLoadBalancing `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LocalityLoadBalancing{}, &LocalityLoadBalancingList{})
}
