package remote

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func waiting(reason, message string) []corev1.ContainerStatus {
	return []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}}
}

func TestPodChanged(t *testing.T) {
	base := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-1", ResourceVersion: "1", Labels: map[string]string{"app": "api"}},
		Spec:       corev1.PodSpec{NodeName: "n1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	now := metav1.Now()
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   bool
	}{
		{"only the resourceVersion (a status write stripped away)", func(p *corev1.Pod) { p.ResourceVersion = "2" }, false},
		{"scheduled elsewhere", func(p *corev1.Pod) { p.Spec.NodeName = "n2" }, true},
		{"phase", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }, true},
		{"deletion started", func(p *corev1.Pod) { p.DeletionTimestamp = &now }, true},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} }, true},
		{"a container starts waiting on its image", func(p *corev1.Pod) { p.Status.ContainerStatuses = waiting("ImagePullBackOff", "") }, true},
		{"only the waiting message changes", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = waiting("", "back-off 20s")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base.DeepCopy()
			tt.mutate(n)
			if got := podChanged(base, n); got != tt.want {
				t.Errorf("podChanged = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPodProblem(t *testing.T) {
	cond := func(typ corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) corev1.PodCondition {
		return corev1.PodCondition{Type: typ, Status: status, Reason: reason, Message: message}
	}
	for _, tc := range []struct {
		name         string
		status       corev1.PodStatus
		reason, msg  string
		wantAProblem bool
	}{
		{"ready", corev1.PodStatus{Phase: corev1.PodRunning}, "", "", false},
		{"unschedulable", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			cond(corev1.PodScheduled, corev1.ConditionFalse, "Unschedulable", "0/6 nodes are available: 6 Insufficient cpu."),
		}}, "Unschedulable", "0/6 nodes are available: 6 Insufficient cpu.", true},
		{"image pull", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: waiting("ImagePullBackOff", `Back-off pulling image "registry.example/api:typo"`)},
			"ImagePullBackOff", `Back-off pulling image "registry.example/api:typo"`, true},
		{"init container first", corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: waiting("CreateContainerConfigError", `configmap "settings" not found`),
			ContainerStatuses:     waiting("PodInitializing", "")},
			"CreateContainerConfigError", `configmap "settings" not found`, true},
		{"running, failing its readiness probe", corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			cond(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]"),
		}}, "ContainersNotReady", "containers with unready status: [app]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg, ok := PodProblem(&corev1.Pod{Status: tc.status})
			if reason != tc.reason || msg != tc.msg || ok != tc.wantAProblem {
				t.Errorf("PodProblem = %q, %q, %v; want %q, %q, %v", reason, msg, ok, tc.reason, tc.msg, tc.wantAProblem)
			}
		})
	}
}

// The cache keeps what status needs and nothing more, with messages bounded.
func TestPodForStatusKeepsProblems(t *testing.T) {
	long := strings.Repeat("x", 1000)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-1", Namespace: "shop", Labels: map[string]string{"app": "api"}, Annotations: map[string]string{"big": long}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "registry.example/api:1"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: long},
			},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: long}}},
				{Name: "sidecar", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			},
		},
	}
	out, err := podForStatus(pod)
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*corev1.Pod)
	if len(slim.Annotations) != 0 || len(slim.Spec.Containers) != 0 {
		t.Errorf("kept more than status needs: %+v", slim)
	}
	if len(slim.Status.Conditions) != 1 || len(slim.Status.ContainerStatuses) != 1 {
		t.Fatalf("kept conditions %v and container statuses %v; want the Ready condition and the waiting container", slim.Status.Conditions, slim.Status.ContainerStatuses)
	}
	if reason, msg, _ := PodProblem(slim); reason != "CrashLoopBackOff" || len(msg) != maxPodMessage {
		t.Errorf("problem of the cached pod: %q (message %d bytes)", reason, len(msg))
	}
}

// Istio injects native sidecars only when every node's kubelet is new enough, so the oldest
// one decides; a version that cannot be read makes the answer unknown.
func TestOldestKubelet(t *testing.T) {
	node := func(v string) corev1.Node {
		return corev1.Node{Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: v}}}
	}
	for _, tc := range []struct {
		name   string
		nodes  []corev1.Node
		want   string
		wantOK bool
	}{
		{"mixed pools, vendor suffixes", []corev1.Node{node("v1.34.2"), node("v1.32.9-eks-1234"), node("v1.33.0+k3s1")}, "1.32.9", true},
		{"one node", []corev1.Node{node("v1.36.3")}, "1.36.3", true},
		{"no nodes", nil, "", false},
		{"a fake kubelet (kwok's default)", []corev1.Node{node("v1.36.3"), node("kwok-0.8.0")}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := oldestKubelet(tc.nodes)
			if ok != tc.wantOK || (ok && got.String() != tc.want) {
				t.Errorf("oldestKubelet = %v, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
