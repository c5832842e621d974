package render

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

const helper = "ghcr.io/convoy-dev/convoy-drain:v1"

var (
	// Kubernetes 1.29 with Istio: no native sleep, no native sidecars.
	oldCluster = convoyv1.ClusterCapabilities{DestinationRuleVersions: []string{"v1"}}
	// Kubernetes 1.30–1.32 with Istio: native sleep (not 0), no native sidecars.
	midCluster = convoyv1.ClusterCapabilities{PreStopSleep: true, DestinationRuleVersions: []string{"v1"}}
	// Kubernetes 1.33+ with Istio, every kubelet 1.33+.
	newCluster = convoyv1.ClusterCapabilities{PreStopSleep: true, PreStopSleepZero: true, NativeSidecars: true, DestinationRuleVersions: []string{"v1"}}
	// Kubernetes 1.33+ without Istio.
	noIstio = convoyv1.ClusterCapabilities{PreStopSleep: true, PreStopSleepZero: true, NativeSidecars: true}
)

func shutdownPolicy(mutate func(*convoyv1.GracefulShutdownPolicySpec)) *convoyv1.GracefulShutdownPolicy {
	p := &convoyv1.GracefulShutdownPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a", Generation: 4},
		Spec: convoyv1.GracefulShutdownPolicySpec{
			AppShutdownSeconds: 10, SafetyMarginSeconds: 5,
			Sidecar: convoyv1.Sidecar{Mode: convoyv1.SidecarAuto, DrainStrategy: convoyv1.DrainForDuration},
		},
	}
	mutate(&p.Spec)
	return p
}

func sleepFor(s int32) func(*convoyv1.GracefulShutdownPolicySpec) {
	return func(p *convoyv1.GracefulShutdownPolicySpec) { p.PreStop.Sleep = &convoyv1.SleepPreStop{Seconds: s} }
}

func drainConnections(p *convoyv1.GracefulShutdownPolicySpec) {
	p.PreStop.DrainConnections = &convoyv1.DrainConnectionsPreStop{Ports: []int32{8080, 8443}, MinDelaySeconds: 5, TimeoutSeconds: 30, SettleSeconds: 2}
}

func leaveOpenConnections(p *convoyv1.GracefulShutdownPolicySpec) {
	p.PreStop.DrainConnections.IdleThresholdSeconds = ptr.To[int32](0)
}

func httpDrain(p *convoyv1.GracefulShutdownPolicySpec) {
	p.PreStop.HTTPGet = &convoyv1.HTTPGetPreStop{DrainEndpoint: convoyv1.DrainEndpoint{Path: "/drain", Port: 8080, TimeoutSeconds: 5}, WaitSeconds: 15}
}

func legacy(p *convoyv1.GracefulShutdownPolicySpec) { p.Sidecar.Mode = convoyv1.SidecarLegacy }

func untilIdle(p *convoyv1.GracefulShutdownPolicySpec) {
	p.Sidecar.Mode = convoyv1.SidecarLegacy
	p.Sidecar.DrainStrategy = convoyv1.DrainUntilIdle
}

func both(fs ...func(*convoyv1.GracefulShutdownPolicySpec)) func(*convoyv1.GracefulShutdownPolicySpec) {
	return func(p *convoyv1.GracefulShutdownPolicySpec) {
		for _, f := range fs {
			f(p)
		}
	}
}

// expected builders: each states literally what the pod must look like.

func withPreStop(h corev1.LifecycleHandler, mountHelper bool) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			c.Lifecycle = &corev1.Lifecycle{PreStop: h.DeepCopy()}
			if mountHelper {
				c.VolumeMounts = []corev1.VolumeMount{{Name: "convoy-drain", MountPath: "/convoy/bin", ReadOnly: true}}
			}
		}
	}
}

func withHelper(d *appsv1.Deployment) {
	limit := resource.MustParse("32Mi")
	d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "convoy-drain", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}}}
	d.Spec.Template.Spec.InitContainers = append(d.Spec.Template.Spec.InitContainers, corev1.Container{
		Name: "convoy-drain-install", Image: helper, Args: []string{"install", "/convoy/bin"},
		VolumeMounts: []corev1.VolumeMount{{Name: "convoy-drain", MountPath: "/convoy/bin"}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	})
}

func withGrace(s int64) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To(s) }
}

func withAnnotations(kv ...string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		if d.Spec.Template.Annotations == nil {
			d.Spec.Template.Annotations = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			d.Spec.Template.Annotations[kv[i]] = kv[i+1]
		}
	}
}

// pinned is the sidecar mode convoy writes for Istio, so that its choice and the drain
// settings agree whatever istiod's default is.
func pinned(native bool) func(*appsv1.Deployment) {
	return withAnnotations("sidecar.istio.io/nativeSidecar", strconv.FormatBool(native))
}

func exec(args ...string) corev1.LifecycleHandler {
	return corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: append([]string{"/convoy/bin/convoy-drain"}, args...)}}
}

var (
	drainHook = exec("wait", "--ports", "8080,8443", "--min-delay", "5s", "--settle", "2s", "--timeout", "30s")
	httpHook  = exec("http", "--url", "http://127.0.0.1:8080/drain", "--request-timeout", "5s", "--wait", "15s")
)

func TestGracefulShutdownRendering(t *testing.T) {
	tests := []struct {
		name   string
		policy *convoyv1.GracefulShutdownPolicy
		caps   convoyv1.ClusterCapabilities
		pod    func(*corev1.PodTemplateSpec) // changes to the workload's own template
		want   []func(*appsv1.Deployment)
	}{
		{name: "sleep, new cluster: native sleep action, native sidecar needs nothing",
			policy: shutdownPolicy(sleepFor(20)), caps: newCluster,
			want: []func(*appsv1.Deployment){withPreStop(corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 20}}, false), withGrace(35), pinned(true)}},
		{name: "no Istio: no Istio annotations",
			policy: shutdownPolicy(sleepFor(20)), caps: noIstio,
			want: []func(*appsv1.Deployment){withPreStop(corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 20}}, false), withGrace(35)}},
		{name: "sleep 0, 1.30–1.32 cluster: sleep 0 needs 1.33, exec fallback; Auto picks a legacy sidecar",
			policy: shutdownPolicy(sleepFor(0)), caps: midCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(exec("sleep", "--duration", "0s"), true), withGrace(15),
				pinned(false), withAnnotations("proxy.istio.io/config", "terminationDrainDuration: 10s\n")}},
		{name: "sleep, old cluster: exec fallback with the same timing, legacy sidecar drain",
			policy: shutdownPolicy(sleepFor(20)), caps: oldCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(exec("sleep", "--duration", "20s"), true), withGrace(35),
				pinned(false), withAnnotations("proxy.istio.io/config", "terminationDrainDuration: 30s\n")}},
		{name: "drain connections, new cluster, native sidecar",
			policy: shutdownPolicy(drainConnections), caps: newCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(drainHook, true), withGrace(45), pinned(true)}},
		{name: "drain connections leaving open connections to SIGTERM",
			policy: shutdownPolicy(both(drainConnections, leaveOpenConnections)), caps: newCluster,
			want: []func(*appsv1.Deployment){withHelper, withGrace(45), pinned(true), withPreStop(
				exec("wait", "--ports", "8080,8443", "--min-delay", "5s", "--settle", "2s", "--timeout", "30s", "--idle-after", "0s"), true)}},
		{name: "drain connections calling the app's drain endpoint first",
			policy: shutdownPolicy(both(drainConnections, func(p *convoyv1.GracefulShutdownPolicySpec) {
				p.PreStop.DrainConnections.DrainEndpoint = &convoyv1.DrainEndpoint{Path: "/drain?grace=1", Port: 8081, TimeoutSeconds: 3}
			})), caps: newCluster,
			want: []func(*appsv1.Deployment){withHelper, withGrace(45), pinned(true), withPreStop(
				exec("wait", "--ports", "8080,8443", "--min-delay", "5s", "--settle", "2s", "--timeout", "30s",
					"--call", "http://127.0.0.1:8081/drain?grace=1", "--call-timeout", "3s"), true)}},
		{name: "drain connections, new cluster, forced legacy sidecar: annotation pins it, drain covers budget + shutdown",
			policy: shutdownPolicy(both(drainConnections, legacy)), caps: newCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(drainHook, true), withGrace(45),
				withAnnotations("sidecar.istio.io/nativeSidecar", "false", "proxy.istio.io/config", "terminationDrainDuration: 40s\n")}},
		{name: "drain connections, old cluster, exit on zero active connections",
			policy: shutdownPolicy(both(drainConnections, untilIdle)), caps: oldCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(drainHook, true), withGrace(45),
				withAnnotations("sidecar.istio.io/nativeSidecar", "false",
					"proxy.istio.io/config", "proxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"true\"\n  MINIMUM_DRAIN_DURATION: 5s\n")}},
		{name: "HTTP drain, new cluster, native sidecar",
			policy: shutdownPolicy(httpDrain), caps: newCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(httpHook, true), withGrace(35), pinned(true)}},
		{name: "HTTP drain, old cluster, legacy sidecar; explicit grace period kept",
			policy: shutdownPolicy(both(httpDrain, func(p *convoyv1.GracefulShutdownPolicySpec) { p.TerminationGracePeriodSeconds = ptr.To[int64](60) })), caps: oldCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(httpHook, true), withGrace(60), pinned(false),
				withAnnotations("proxy.istio.io/config", "terminationDrainDuration: 30s\n")}},
		{name: "Native mode on an old cluster: annotation asks Istio for a native sidecar, nothing else",
			policy: shutdownPolicy(both(sleepFor(10), func(p *convoyv1.GracefulShutdownPolicySpec) { p.Sidecar.Mode = convoyv1.SidecarNative })), caps: oldCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(exec("sleep", "--duration", "10s"), true), withGrace(25),
				withAnnotations("sidecar.istio.io/nativeSidecar", "true")}},
		{name: "the pod's own nativeSidecar annotation wins; existing proxy config is merged",
			policy: shutdownPolicy(sleepFor(10)), caps: newCluster,
			pod: func(p *corev1.PodTemplateSpec) {
				p.Annotations = map[string]string{"sidecar.istio.io/nativeSidecar": "false", "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true"}
			},
			want: []func(*appsv1.Deployment){withPreStop(corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}}, false), withGrace(25),
				withAnnotations("sidecar.istio.io/nativeSidecar", "false",
					"proxy.istio.io/config", "holdApplicationUntilProxyStarts: true\nterminationDrainDuration: 20s\n")}},
		{name: "the policy's helper image wins over the manager's",
			policy: shutdownPolicy(both(drainConnections, func(p *convoyv1.GracefulShutdownPolicySpec) { p.HelperImage = "mirror.example/convoy-drain:v1" })), caps: newCluster,
			want: []func(*appsv1.Deployment){withHelper, withPreStop(drainHook, true), withGrace(45), pinned(true), func(d *appsv1.Deployment) {
				d.Spec.Template.Spec.InitContainers[1].Image = "mirror.example/convoy-drain:v1"
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := testProject(func(p *convoyv1.Project) {
				p.Spec.Workloads[0].Ports = nil
				p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
				if tt.pod != nil {
					tt.pod(&p.Spec.Workloads[0].Template)
				}
			})
			sc := cluster("seoul-1", nil)
			sc.Status.Capabilities = tt.caps
			got, err := ForCluster(project, sc, Policies{
				GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": tt.policy},
				DrainHelperImage: helper,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := wantDeployment(func(d *appsv1.Deployment) {
				if tt.pod != nil {
					tt.pod(&d.Spec.Template)
				}
			})
			for _, f := range tt.want {
				f(want)
			}
			if diff := cmp.Diff(want, got.Deployments[0]); diff != "" {
				t.Errorf("Deployment (-want +got):\n%s", diff)
			}
			wantApplied := []convoyv1.AppliedPolicy{{Kind: "GracefulShutdownPolicy", Name: "web", Generation: 4}}
			if diff := cmp.Diff(wantApplied, got.AppliedPolicies); diff != "" {
				t.Errorf("AppliedPolicies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGracefulShutdownErrors(t *testing.T) {
	project := testProject(func(p *convoyv1.Project) {
		p.Spec.Workloads[0].GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "missing"}
	})
	if _, err := ForCluster(project, cluster("c", nil), Policies{}); err == nil || !contains(err.Error(), `spec.workloads[0] (api): GracefulShutdownPolicy "missing" not found`) {
		t.Errorf("missing policy: got %v", err)
	}

	project = testProject(func(p *convoyv1.Project) { p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"} })
	policies := Policies{GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": shutdownPolicy(drainConnections)}}
	if _, err := ForCluster(project, cluster("c", nil), policies); err == nil || !contains(err.Error(), "no drain helper image") {
		t.Errorf("no helper image: got %v", err)
	}

	policies = Policies{GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": shutdownPolicy(both(sleepFor(5), legacy))}}
	project.Spec.Workloads[0].Template.Annotations = map[string]string{"proxy.istio.io/config": "{not yaml"}
	withSleep := cluster("c", nil)
	withSleep.Status.Capabilities = newCluster
	if _, err := ForCluster(project, withSleep, policies); err == nil || !contains(err.Error(), "proxy.istio.io/config is not valid YAML") {
		t.Errorf("bad proxy config: got %v", err)
	}
}

func TestDrainPortWarnings(t *testing.T) {
	pod := func(ports ...int32) *corev1.PodTemplateSpec {
		c := corev1.Container{Name: "app"}
		for _, p := range ports {
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p})
		}
		return &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
	}
	wait := func(ports ...int32) convoyv1.PreStop {
		return convoyv1.PreStop{DrainConnections: &convoyv1.DrainConnectionsPreStop{Ports: ports, TimeoutSeconds: 30}}
	}
	for _, tc := range []struct {
		name    string
		preStop convoyv1.PreStop
		pod     *corev1.PodTemplateSpec
		svc     []convoyv1.ServicePort
		want    []string
	}{
		{"container port", wait(8080), pod(8080), nil, nil},
		{"numeric Service target port", wait(8080), pod(), []convoyv1.ServicePort{{Name: "http", Port: 80, TargetPort: ptr.To(intstr.FromInt32(8080))}}, nil},
		{"Service port without target", wait(8080), pod(), []convoyv1.ServicePort{{Name: "http", Port: 8080}}, nil},
		{"a worker without ports", wait(8080), pod(), nil,
			[]string{"preStop.drainConnections watches port 8080, which the workload does not serve: the wait sees no traffic there"}},
		{"one of two ports missing", wait(8080, 9090), pod(8080), nil,
			[]string{"preStop.drainConnections watches port 9090, which the workload does not serve: the wait sees no traffic there"}},
		{"drain endpoint on a port nobody serves", convoyv1.PreStop{HTTPGet: &convoyv1.HTTPGetPreStop{DrainEndpoint: convoyv1.DrainEndpoint{Path: "/drain", Port: 8081}}}, pod(8080), nil,
			[]string{"preStop.httpGet calls port 8081, which the workload does not serve"}},
		{"sleep has no port", convoyv1.PreStop{Sleep: &convoyv1.SleepPreStop{Seconds: 5}}, pod(), nil, nil},
		{"a drain endpoint on a port nobody serves", convoyv1.PreStop{DrainConnections: &convoyv1.DrainConnectionsPreStop{
			Ports: []int32{8080}, TimeoutSeconds: 30, DrainEndpoint: &convoyv1.DrainEndpoint{Path: "/drain", Port: 9000}}}, pod(8080), nil,
			[]string{"preStop.drainConnections.drainEndpoint calls port 9000, which the workload does not serve"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, drainPortWarnings(tc.preStop, tc.pod, tc.svc)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Where Istio is not installed, an explicit sidecar mode is reported, not silently dropped;
// Auto says nothing.
func TestSidecarModeWithoutIstioWarns(t *testing.T) {
	for _, tc := range []struct {
		mode convoyv1.SidecarMode
		want []string
	}{
		{convoyv1.SidecarAuto, nil},
		{convoyv1.SidecarLegacy, []string{"GracefulShutdownPolicy web on workload api: sidecar.mode Legacy has no effect: Istio is not installed in the cluster (it serves no networking.istio.io DestinationRule)"}},
	} {
		project := testProject(func(p *convoyv1.Project) {
			p.Spec.Workloads[0].Ports = nil
			p.Spec.GracefulShutdownPolicy = &convoyv1.PolicyReference{Name: "web"}
		})
		sc := cluster("tokyo-1", nil)
		sc.Status.Capabilities = noIstio
		policy := shutdownPolicy(both(sleepFor(5), func(p *convoyv1.GracefulShutdownPolicySpec) { p.Sidecar.Mode = tc.mode }))
		got, err := ForCluster(project, sc, Policies{GracefulShutdown: map[string]*convoyv1.GracefulShutdownPolicy{"web": policy}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got.Warnings); diff != "" {
			t.Errorf("%s: warnings (-want +got):\n%s", tc.mode, diff)
		}
		if len(got.Deployments[0].Spec.Template.Annotations) != 0 {
			t.Errorf("%s: Istio annotations on a cluster without Istio: %v", tc.mode, got.Deployments[0].Spec.Template.Annotations)
		}
	}
}
