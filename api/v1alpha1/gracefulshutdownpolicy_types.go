package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SleepPreStop keeps the container serving for a fixed time after the pod is marked for
// deletion, while endpoint removal propagates.
type SleepPreStop struct {
	// seconds to sleep. 0 is only accepted natively by Kubernetes 1.33+; older clusters get an
	// exec-based sleep with the same timing.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	Seconds int32 `json:"seconds"`
}

// DrainConnectionsPreStop keeps the pod serving for at least minDelaySeconds, then until its
// serving ports have been quiet for settleSeconds — no new connection arriving, none with
// data queued or carrying traffic within idleThresholdSeconds — or until the timeout. Idle
// keep-alive connections do not hold the pod (docs/graceful-shutdown.md explains the
// choices). It runs convoy-drain, which convoy copies into the pod with an init container.
// +kubebuilder:validation:XValidation:rule="self.minDelaySeconds <= self.timeoutSeconds",message="minDelaySeconds must not exceed timeoutSeconds"
// +kubebuilder:validation:XValidation:rule="self.settleSeconds < self.timeoutSeconds",message="settleSeconds must be less than timeoutSeconds"
type DrainConnectionsPreStop struct {
	// ports the application serves on (container ports): connections to them are watched.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports"`

	// minDelaySeconds is always waited first: endpoint removal takes this long to reach every
	// kube-proxy and Envoy, and new connections keep arriving meanwhile.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	MinDelaySeconds int32 `json:"minDelaySeconds,omitempty"`

	// timeoutSeconds bounds the whole wait (the PreStop budget).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	TimeoutSeconds int32 `json:"timeoutSeconds"`

	// settleSeconds is how long the ports must stay quiet before the wait ends. One empty
	// reading proves little: at a low request rate the next connection may be seconds away.
	// Make it longer than the gap between two new connections at your lowest traffic.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=60
	SettleSeconds int32 `json:"settleSeconds,omitempty"`

	// idleThresholdSeconds: a connection that carried data within this many seconds is busy
	// and holds the pod. Proxies that pool connections (Envoy, Istio sidecars, most L7 load
	// balancers) keep sending requests over them until the endpoint removal reaches them,
	// and open no new connection meanwhile: their traffic stopping is the only sign. 0 leaves
	// open connections to the application's SIGTERM handling (Connection: close): behind
	// kube-proxy, keep-alive clients keep their connections flowing after the endpoint is
	// removed, so with the default the wait can run to its timeout there.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	IdleThresholdSeconds *int32 `json:"idleThresholdSeconds,omitempty"`

	// drainEndpoint, when set, is called first: an application that answers it by sending
	// Connection: close on its responses while it keeps listening makes keep-alive clients
	// reconnect, and routing decides again for each of them, so the wait sees them move
	// (behind kube-proxy, keep-alive clients move on no other signal). The call is bounded
	// by its timeout and counts against timeoutSeconds; a failed call is reported and the
	// wait goes on.
	// +optional
	DrainEndpoint *DrainEndpoint `json:"drainEndpoint,omitempty"`
}

// DrainEndpoint is the application's drain endpoint on 127.0.0.1.
type DrainEndpoint struct {
	// path of the endpoint, for example /drain: an absolute URL path with an optional query,
	// characters outside RFC 3986's unreserved, sub-delimiters, ':', '@' and '/'
	// percent-encoded.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule=`self.matches(r"^/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$")`,message="path must be an absolute URL path ('/' first) of RFC 3986 characters, with any other character percent-encoded as %XX (a stray '%', a space or a tab is not valid)"
	Path string `json:"path"`

	// port of the endpoint.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// timeoutSeconds bounds the call.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// URL is the endpoint's address from inside the pod.
func (e DrainEndpoint) URL() string { return fmt.Sprintf("http://127.0.0.1:%d%s", e.Port, e.Path) }

// HTTPGetPreStop calls the application's drain endpoint on 127.0.0.1, then waits a fixed
// time. drainConnections with a drainEndpoint calls it too, and then waits for the traffic to
// stop instead.
type HTTPGetPreStop struct {
	DrainEndpoint `json:",inline"`

	// waitSeconds is waited after the call.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	WaitSeconds int32 `json:"waitSeconds"`
}

// PreStop is what runs between the pod's deletion and SIGTERM. Exactly one member is set.
// +kubebuilder:validation:XValidation:rule="[has(self.sleep), has(self.drainConnections), has(self.httpGet)].filter(x, x).size() == 1",message="set exactly one of sleep, drainConnections, httpGet"
type PreStop struct {
	// +optional
	Sleep *SleepPreStop `json:"sleep,omitempty"`
	// +optional
	DrainConnections *DrainConnectionsPreStop `json:"drainConnections,omitempty"`
	// +optional
	HTTPGet *HTTPGetPreStop `json:"httpGet,omitempty"`
}

// SidecarMode says how the Istio sidecar of the workload's pods runs.
// +kubebuilder:validation:Enum=Auto;Native;Legacy
type SidecarMode string

const (
	// SidecarAuto follows Istio: a native sidecar on Kubernetes 1.33+, legacy before. The
	// pod annotation sidecar.istio.io/nativeSidecar, when set, wins.
	SidecarAuto SidecarMode = "Auto"
	// SidecarNative forces a native sidecar (an init container with restartPolicy Always): it
	// stops after the application, so nothing else is needed.
	SidecarNative SidecarMode = "Native"
	// SidecarLegacy forces a legacy sidecar, which convoy keeps alive through the drain.
	SidecarLegacy SidecarMode = "Legacy"
)

// SidecarDrainStrategy is how a legacy sidecar is kept alive during the drain.
// +kubebuilder:validation:Enum=TerminationDrainDuration;ExitOnZeroActiveConnections
type SidecarDrainStrategy string

const (
	// DrainForDuration sets proxy.istio.io/config terminationDrainDuration to cover the
	// PreStop budget and the application's shutdown.
	DrainForDuration SidecarDrainStrategy = "TerminationDrainDuration"
	// DrainUntilIdle sets EXIT_ON_ZERO_ACTIVE_CONNECTIONS with MINIMUM_DRAIN_DURATION equal to
	// the PreStop budget.
	DrainUntilIdle SidecarDrainStrategy = "ExitOnZeroActiveConnections"
)

// Sidecar configures the Istio sidecar's part of the shutdown.
type Sidecar struct {
	// mode of the sidecar.
	// +optional
	// +kubebuilder:default=Auto
	Mode SidecarMode `json:"mode,omitempty"`

	// drainStrategy for legacy sidecars.
	// +optional
	// +kubebuilder:default=TerminationDrainDuration
	DrainStrategy SidecarDrainStrategy `json:"drainStrategy,omitempty"`
}

// TCPKeepalive probes idle upstream connections so that dead peers are noticed.
type TCPKeepalive struct {
	// time a connection is idle before keepalive probes start, for example 300s.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="must be at least 1ms"
	Time metav1.Duration `json:"time"`

	// interval between keepalive probes, for example 75s.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="must be at least 1ms"
	Interval metav1.Duration `json:"interval"`

	// probes sent without answer before the connection is dropped.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Probes int32 `json:"probes"`
}

// ConnectionTuning is rendered into the workload's DestinationRule trafficPolicy.connectionPool.
// +kubebuilder:validation:XValidation:rule="!has(self.idleTimeout) || !has(self.appIdleTimeout) || duration(self.idleTimeout) < duration(self.appIdleTimeout)",message="idleTimeout must be below appIdleTimeout: Envoy must close idle connections before the application does, or requests race the application's close and fail with 503"
type ConnectionTuning struct {
	// tcpKeepalive for upstream connections.
	// +optional
	TCPKeepalive *TCPKeepalive `json:"tcpKeepalive,omitempty"`

	// idleTimeout after which Envoy closes an idle upstream HTTP connection.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="must be at least 1ms"
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`

	// maxRequestsPerConnection; 0 means unlimited.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxRequestsPerConnection *int32 `json:"maxRequestsPerConnection,omitempty"`

	// appIdleTimeout is the application's own keepalive/idle timeout. convoy checks that
	// idleTimeout is below it; it is not rendered anywhere.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="must be at least 1ms"
	AppIdleTimeout *metav1.Duration `json:"appIdleTimeout,omitempty"`
}

// The grace-period rule's message spells numbers digit by digit: CEL's cost estimator treats
// string(int) as unbounded and rejects any messageExpression that uses it. The marker is
// indented so that gofmt treats it as code and leaves its '' quotes alone.

// GracefulShutdownPolicySpec says how pods of a workload stop without dropping requests.
//
//	+kubebuilder:validation:XValidation:rule="!has(self.terminationGracePeriodSeconds) || self.terminationGracePeriodSeconds >= ((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds)",messageExpression="'terminationGracePeriodSeconds (' + ((self.terminationGracePeriodSeconds >= 10000 ? ['0','1','2','3','4','5','6','7','8','9'][self.terminationGracePeriodSeconds / 10000 % 10] : '') + (self.terminationGracePeriodSeconds >= 1000 ? ['0','1','2','3','4','5','6','7','8','9'][self.terminationGracePeriodSeconds / 1000 % 10] : '') + (self.terminationGracePeriodSeconds >= 100 ? ['0','1','2','3','4','5','6','7','8','9'][self.terminationGracePeriodSeconds / 100 % 10] : '') + (self.terminationGracePeriodSeconds >= 10 ? ['0','1','2','3','4','5','6','7','8','9'][self.terminationGracePeriodSeconds / 10 % 10] : '') + ['0','1','2','3','4','5','6','7','8','9'][self.terminationGracePeriodSeconds % 10]) + ') must cover the PreStop budget (' + (((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) >= 10000 ? ['0','1','2','3','4','5','6','7','8','9'][(has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) / 10000 % 10] : '') + ((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) >= 1000 ? ['0','1','2','3','4','5','6','7','8','9'][(has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) / 1000 % 10] : '') + ((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) >= 100 ? ['0','1','2','3','4','5','6','7','8','9'][(has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) / 100 % 10] : '') + ((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) >= 10 ? ['0','1','2','3','4','5','6','7','8','9'][(has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) / 10 % 10] : '') + ['0','1','2','3','4','5','6','7','8','9'][(has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) % 10]) + 's) + appShutdownSeconds (' + ((self.appShutdownSeconds >= 10000 ? ['0','1','2','3','4','5','6','7','8','9'][self.appShutdownSeconds / 10000 % 10] : '') + (self.appShutdownSeconds >= 1000 ? ['0','1','2','3','4','5','6','7','8','9'][self.appShutdownSeconds / 1000 % 10] : '') + (self.appShutdownSeconds >= 100 ? ['0','1','2','3','4','5','6','7','8','9'][self.appShutdownSeconds / 100 % 10] : '') + (self.appShutdownSeconds >= 10 ? ['0','1','2','3','4','5','6','7','8','9'][self.appShutdownSeconds / 10 % 10] : '') + ['0','1','2','3','4','5','6','7','8','9'][self.appShutdownSeconds % 10]) + 's) + safetyMarginSeconds (' + ((self.safetyMarginSeconds >= 10000 ? ['0','1','2','3','4','5','6','7','8','9'][self.safetyMarginSeconds / 10000 % 10] : '') + (self.safetyMarginSeconds >= 1000 ? ['0','1','2','3','4','5','6','7','8','9'][self.safetyMarginSeconds / 1000 % 10] : '') + (self.safetyMarginSeconds >= 100 ? ['0','1','2','3','4','5','6','7','8','9'][self.safetyMarginSeconds / 100 % 10] : '') + (self.safetyMarginSeconds >= 10 ? ['0','1','2','3','4','5','6','7','8','9'][self.safetyMarginSeconds / 10 % 10] : '') + ['0','1','2','3','4','5','6','7','8','9'][self.safetyMarginSeconds % 10]) + 's) = ' + ((((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) >= 10000 ? ['0','1','2','3','4','5','6','7','8','9'][((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) / 10000 % 10] : '') + (((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) >= 1000 ? ['0','1','2','3','4','5','6','7','8','9'][((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) / 1000 % 10] : '') + (((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) >= 100 ? ['0','1','2','3','4','5','6','7','8','9'][((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) / 100 % 10] : '') + (((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) >= 10 ? ['0','1','2','3','4','5','6','7','8','9'][((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) / 10 % 10] : '') + ['0','1','2','3','4','5','6','7','8','9'][((has(self.preStop.sleep) ? self.preStop.sleep.seconds : has(self.preStop.drainConnections) ? self.preStop.drainConnections.timeoutSeconds : self.preStop.httpGet.timeoutSeconds + self.preStop.httpGet.waitSeconds) + self.appShutdownSeconds + self.safetyMarginSeconds) % 10]) + 's; raise it or leave it unset to derive it'",reason=FieldValueInvalid,fieldPath=".terminationGracePeriodSeconds"
type GracefulShutdownPolicySpec struct {
	// preStop runs when the pod is deleted, before SIGTERM.
	// +required
	PreStop PreStop `json:"preStop"`

	// appShutdownSeconds is how long the application needs after SIGTERM to finish in-flight
	// work and exit.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	AppShutdownSeconds int32 `json:"appShutdownSeconds,omitempty"`

	// safetyMarginSeconds is added on top, and keeps a legacy sidecar's drain strictly inside
	// the grace period.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	SafetyMarginSeconds int32 `json:"safetyMarginSeconds,omitempty"`

	// terminationGracePeriodSeconds of the pods. Derived as PreStop budget + appShutdownSeconds
	// + safetyMarginSeconds when unset; rejected when set below that sum.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`

	// spot says the workload runs on spot or preemptible nodes, whose interruption notice
	// leaves 120 seconds: the policy warns (condition SpotNoticeExceeded) when the grace period
	// is longer.
	// +optional
	Spot bool `json:"spot,omitempty"`

	// sidecar configures the Istio sidecar's drain.
	// +optional
	Sidecar Sidecar `json:"sidecar,omitempty"`

	// connectionPool tunes Envoy's upstream connections to the workload.
	// +optional
	ConnectionPool *ConnectionTuning `json:"connectionPool,omitempty"`

	// helperImage is the convoy-drain image used by drainConnections, httpGet and the sleep
	// fallback. Defaults to the manager's --drain-helper-image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	HelperImage string `json:"helperImage,omitempty"`
}

// SpotInterruptionNoticeSeconds is the warning a spot/preemptible node gets before it is reclaimed.
const SpotInterruptionNoticeSeconds = 120

// PreStopBudgetSeconds is the longest the PreStop hook can run.
func (s *GracefulShutdownPolicySpec) PreStopBudgetSeconds() int64 {
	switch p := s.PreStop; {
	case p.Sleep != nil:
		return int64(p.Sleep.Seconds)
	case p.DrainConnections != nil:
		return int64(p.DrainConnections.TimeoutSeconds)
	case p.HTTPGet != nil:
		return int64(p.HTTPGet.TimeoutSeconds) + int64(p.HTTPGet.WaitSeconds)
	}
	return 0
}

// GracePeriodSeconds is the explicit terminationGracePeriodSeconds, or the derived one.
func (s *GracefulShutdownPolicySpec) GracePeriodSeconds() int64 {
	if s.TerminationGracePeriodSeconds != nil {
		return *s.TerminationGracePeriodSeconds
	}
	return s.PreStopBudgetSeconds() + int64(s.AppShutdownSeconds) + int64(s.SafetyMarginSeconds)
}

// GracefulShutdownPolicyStatus reports the derived timeline.
type GracefulShutdownPolicyStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready; SpotNoticeExceeded when spot is set and the grace period is longer
	// than a spot interruption notice.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// preStopBudgetSeconds is the longest the PreStop hook runs.
	// +optional
	PreStopBudgetSeconds int64 `json:"preStopBudgetSeconds,omitempty"`
	// terminationGracePeriodSeconds that pods get.
	// +optional
	TerminationGracePeriodSeconds int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// GracefulShutdownPolicy says how pods stop without dropping requests: the PreStop hook, the
// termination grace period, the Istio sidecar's drain and Envoy's connection tuning.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gsp,categories=convoy
// +kubebuilder:printcolumn:name="PreStop-Budget",type=integer,JSONPath=`.status.preStopBudgetSeconds`
// +kubebuilder:printcolumn:name="Grace",type=integer,JSONPath=`.status.terminationGracePeriodSeconds`
// +kubebuilder:printcolumn:name="Spot",type=boolean,JSONPath=`.spec.spot`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GracefulShutdownPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec GracefulShutdownPolicySpec `json:"spec"`
	// +optional
	Status GracefulShutdownPolicyStatus `json:"status,omitempty"`
}

// GracefulShutdownPolicyList is a list of GracefulShutdownPolicies.
//
// +kubebuilder:object:root=true
type GracefulShutdownPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GracefulShutdownPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GracefulShutdownPolicy{}, &GracefulShutdownPolicyList{})
}
