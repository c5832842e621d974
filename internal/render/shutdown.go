package render

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// Names of what convoy adds to pods for graceful shutdown.
const (
	DrainVolume        = "convoy-drain"
	DrainInitContainer = "convoy-drain-install"
	DrainDir           = "/convoy/bin"
	DrainBinary        = DrainDir + "/convoy-drain"

	// Istio pod annotations.
	NativeSidecarAnnotation = "sidecar.istio.io/nativeSidecar"
	ProxyConfigAnnotation   = "proxy.istio.io/config"
)

// applyGracefulShutdown renders a GracefulShutdownPolicy into a Deployment's pod template for
// one cluster: the PreStop hook of every container, the grace period, the drain helper's init
// container and volume when needed, and the Istio sidecar settings that have an effect there.
// It returns warnings for settings that have no effect in this cluster.
func applyGracefulShutdown(d *appsv1.Deployment, policy *convoyv1.GracefulShutdownPolicySpec, caps convoyv1.ClusterCapabilities, helperImage string) ([]string, error) {
	if policy.HelperImage != "" {
		helperImage = policy.HelperImage
	}
	pod := &d.Spec.Template
	hook, needsHelper := preStopHandler(policy.PreStop, caps)
	if needsHelper {
		if helperImage == "" {
			return nil, fmt.Errorf("no drain helper image: set spec.helperImage of the GracefulShutdownPolicy or the manager's --drain-helper-image")
		}
		addDrainHelper(&pod.Spec, helperImage)
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Lifecycle == nil {
			c.Lifecycle = &corev1.Lifecycle{}
		}
		c.Lifecycle.PreStop = hook.DeepCopy()
		if needsHelper {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: DrainVolume, MountPath: DrainDir, ReadOnly: true})
		}
	}
	grace := policy.GracePeriodSeconds()
	pod.Spec.TerminationGracePeriodSeconds = &grace
	if caps.DestinationRuleVersion() == "" {
		// No Istio: its annotations would only confuse whoever reads the pod.
		if policy.Sidecar.Mode != "" && policy.Sidecar.Mode != convoyv1.SidecarAuto {
			return []string{fmt.Sprintf("sidecar.mode %s has no effect: Istio is not installed in the cluster (it serves no networking.istio.io DestinationRule)", policy.Sidecar.Mode)}, nil
		}
		return nil, nil
	}
	return nil, applySidecarDrain(pod, policy, caps)
}

// preStopHandler returns the hook and whether it runs the drain helper. The native sleep
// action is used where the cluster has it; elsewhere convoy-drain sleeps with the same timing.
func preStopHandler(p convoyv1.PreStop, caps convoyv1.ClusterCapabilities) (*corev1.LifecycleHandler, bool) {
	switch {
	case p.Sleep != nil:
		secs := int64(p.Sleep.Seconds)
		if caps.PreStopSleep && (secs > 0 || caps.PreStopSleepZero) {
			return &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: secs}}, false
		}
		return execHelper("sleep", "--duration", seconds(secs)), true
	case p.DrainConnections != nil:
		ports := make([]string, 0, len(p.DrainConnections.Ports))
		for _, port := range p.DrainConnections.Ports {
			ports = append(ports, strconv.Itoa(int(port)))
		}
		d := p.DrainConnections
		args := []string{"wait", "--ports", strings.Join(ports, ","), "--min-delay", seconds(int64(d.MinDelaySeconds))}
		if d.SettleSeconds > 0 { // admission defaults it; the helper has the same default
			args = append(args, "--settle", seconds(int64(d.SettleSeconds)))
		}
		args = append(args, "--timeout", seconds(int64(d.TimeoutSeconds)))
		if e := d.DrainEndpoint; e != nil {
			args = append(args, "--call", e.URL(), "--call-timeout", seconds(int64(e.TimeoutSeconds)))
		}
		if d.IdleThresholdSeconds != nil { // admission defaults it; the helper has the same default
			args = append(args, "--idle-after", seconds(int64(*d.IdleThresholdSeconds)))
		}
		return execHelper(args...), true
	default:
		h := p.HTTPGet
		return execHelper("http", "--url", h.URL(),
			"--request-timeout", seconds(int64(h.TimeoutSeconds)), "--wait", seconds(int64(h.WaitSeconds))), true
	}
}

// drainPortWarnings names the ports a policy's PreStop watches or calls that the workload
// does not serve (no container port, no numeric Service target port): the helper can see no
// traffic there, so the wait ends after its minimum delay and settle period, or the drain call
// fails.
func drainPortWarnings(p convoyv1.PreStop, pod *corev1.PodTemplateSpec, servicePorts []convoyv1.ServicePort) []string {
	served := map[int32]bool{}
	for _, c := range pod.Spec.Containers {
		for _, port := range c.Ports {
			served[port.ContainerPort] = true
		}
	}
	for _, sp := range servicePorts {
		switch {
		case sp.TargetPort == nil:
			served[sp.Port] = true
		case sp.TargetPort.Type == intstr.Int:
			served[sp.TargetPort.IntVal] = true
		}
	}
	var missing []string
	switch {
	case p.DrainConnections != nil:
		for _, port := range p.DrainConnections.Ports {
			if !served[port] {
				missing = append(missing, fmt.Sprintf("preStop.drainConnections watches port %d, which the workload does not serve: the wait sees no traffic there", port))
			}
		}
		if e := p.DrainConnections.DrainEndpoint; e != nil && !served[e.Port] {
			missing = append(missing, fmt.Sprintf("preStop.drainConnections.drainEndpoint calls port %d, which the workload does not serve", e.Port))
		}
	case p.HTTPGet != nil:
		if !served[p.HTTPGet.Port] {
			missing = append(missing, fmt.Sprintf("preStop.httpGet calls port %d, which the workload does not serve", p.HTTPGet.Port))
		}
	}
	return missing
}

func execHelper(args ...string) *corev1.LifecycleHandler {
	return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: append([]string{DrainBinary}, args...)}}
}

func seconds(s int64) string { return strconv.FormatInt(s, 10) + "s" }

// addDrainHelper copies convoy-drain into a shared emptyDir before the app starts, so the
// application image needs no shell, netstat or curl.
func addDrainHelper(spec *corev1.PodSpec, image string) {
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: DrainVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptrQuantity("32Mi")},
	}})
	spec.InitContainers = append(spec.InitContainers, corev1.Container{
		Name:         DrainInitContainer,
		Image:        image,
		Args:         []string{"install", DrainDir},
		VolumeMounts: []corev1.VolumeMount{{Name: DrainVolume, MountPath: DrainDir}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptrBool(false),
			ReadOnlyRootFilesystem:   ptrBool(true),
			RunAsNonRoot:             ptrBool(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	})
}

// NativeSidecar decides whether the workload's pods get Istio's native sidecar in a cluster: the
// pod annotation wins, then the policy's mode, then what Istio's automatic mode decides there
// (API server and every node's kubelet 1.33+; see ClusterCapabilities.NativeSidecars).
func NativeSidecar(pod *corev1.PodTemplateSpec, mode convoyv1.SidecarMode, caps convoyv1.ClusterCapabilities) bool {
	if v, ok := pod.Annotations[NativeSidecarAnnotation]; ok {
		return v == "true"
	}
	switch mode {
	case convoyv1.SidecarNative:
		return true
	case convoyv1.SidecarLegacy:
		return false
	}
	return caps.NativeSidecars
}

// applySidecarDrain pins the sidecar mode and emits only what has an effect in it. The choice
// is always written to the pod (sidecar.istio.io/nativeSidecar), Auto included: Istio's own
// choice also depends on istiod's ENABLE_NATIVE_SIDECARS, which convoy cannot read, and drain
// settings for the wrong mode are worse than none. A native sidecar stops after the
// application containers, so it needs nothing. A legacy sidecar would otherwise start its
// own drain at SIGTERM time and exit while the application is still draining.
func applySidecarDrain(pod *corev1.PodTemplateSpec, policy *convoyv1.GracefulShutdownPolicySpec, caps convoyv1.ClusterCapabilities) error {
	native := NativeSidecar(pod, policy.Sidecar.Mode, caps)
	if _, set := pod.Annotations[NativeSidecarAnnotation]; !set {
		setAnnotation(pod, NativeSidecarAnnotation, strconv.FormatBool(native))
	}
	if native {
		return nil
	}
	cfg := map[string]any{}
	if raw := pod.Annotations[ProxyConfigAnnotation]; raw != "" {
		if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
			return fmt.Errorf("pod annotation %s is not valid YAML: %w", ProxyConfigAnnotation, err)
		}
	}
	// The proxy must outlive the PreStop budget and the application's own shutdown (which may
	// still call out); the safety margin (≥ 1 s) keeps this below the grace period.
	drain := seconds(policy.PreStopBudgetSeconds() + int64(policy.AppShutdownSeconds))
	switch policy.Sidecar.DrainStrategy {
	case convoyv1.DrainUntilIdle:
		meta, _ := cfg["proxyMetadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		// pilot-agent exits once Envoy has no active connection (inbound or outbound) after
		// this minimum: the time the PreStop always keeps the pod serving, so that the
		// sidecar can leave as early as the traffic does.
		meta["EXIT_ON_ZERO_ACTIVE_CONNECTIONS"] = "true"
		meta["MINIMUM_DRAIN_DURATION"] = seconds(minimumServingSeconds(policy.PreStop))
		cfg["proxyMetadata"] = meta
	default:
		cfg["terminationDrainDuration"] = drain
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	setAnnotation(pod, ProxyConfigAnnotation, string(out))
	return nil
}

// minimumServingSeconds is how long a PreStop always keeps the pod serving.
func minimumServingSeconds(p convoyv1.PreStop) int64 {
	switch {
	case p.Sleep != nil:
		return int64(p.Sleep.Seconds)
	case p.DrainConnections != nil:
		return int64(p.DrainConnections.MinDelaySeconds)
	case p.HTTPGet != nil:
		return int64(p.HTTPGet.WaitSeconds)
	}
	return 0
}

func setAnnotation(pod *corev1.PodTemplateSpec, key, value string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[key] = value
}

func ptrBool(b bool) *bool { return &b }

func ptrQuantity(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}
