package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
)

func TestEligibleZones(t *testing.T) {
	node := func(name, zone, pool string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{convoyv1.ZoneLabel: zone, "pool": pool}}}
	}
	nodes := remote.NodeZonesOf([]corev1.Node{
		node("n1", "a", "spot"), node("n2", "b", "spot"), node("n3", "c", "on-demand"), node("n4", "c", "on-demand"),
	})
	pinned := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: "pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"on-demand"}},
	}}}}
	tests := []struct {
		name     string
		declared []string
		spec     corev1.PodSpec
		want     []string
	}{
		{"the ServiceCluster's zones, also those without nodes yet", []string{"a", "b", "c", "d"}, corev1.PodSpec{}, []string{"a", "b", "c", "d"}},
		{"the nodes' zones when the ServiceCluster lists none", nil, corev1.PodSpec{}, []string{"a", "b", "c"}},
		{"a nodeSelector narrows to the zones of matching nodes", []string{"a", "b", "c"}, corev1.PodSpec{NodeSelector: map[string]string{"pool": "spot"}}, []string{"a", "b"}},
		{"so does required node affinity", []string{"a", "b", "c"},
			corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinned}}}, []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &convoyv1.ServiceCluster{Spec: convoyv1.ServiceClusterSpec{Zones: tt.declared}}
			got := eligibleZones(sc, nodes, &corev1.PodTemplateSpec{Spec: tt.spec})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("zones (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZoneImbalance(t *testing.T) {
	rolledOut := convoyv1.WorkloadStatus{Name: "api", Replicas: 4, UpdatedReplicas: 4, AvailableReplicas: 4,
		Zones: []convoyv1.ZonePods{{Zone: "a", Pods: 0}, {Zone: "b", Pods: 2}, {Zone: "c", Pods: 2}}, ZoneSkew: ptr.To[int32](2), MaxSkew: ptr.To[int32](1)}
	if got := zoneImbalance("seoul-1", rolledOut); got != "seoul-1/api: a=0 b=2 c=2 (skew 2 > maxSkew 1)" {
		t.Errorf("imbalance = %q", got)
	}
	rollingOut := rolledOut
	rollingOut.UpdatedReplicas = 2
	if got := zoneImbalance("seoul-1", rollingOut); got != "" {
		t.Errorf("a rollout's transient skew is reported: %q", got)
	}
	within := rolledOut
	within.MaxSkew = ptr.To[int32](2)
	if got := zoneImbalance("seoul-1", within); got != "" {
		t.Errorf("skew within maxSkew is reported: %q", got)
	}
	noSpread := rolledOut
	noSpread.MaxSkew = nil
	if got := zoneImbalance("seoul-1", noSpread); got != "" {
		t.Errorf("a workload without zone spread is judged: %q", got)
	}
}

func TestDeploymentStatus(t *testing.T) {
	live := func(mutate func(*appsv1.Deployment)) *appsv1.Deployment {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Generation: 3, Annotations: map[string]string{"deployment.kubernetes.io/revision": "7"}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "app", Image: "registry.example/api:2.0"}, {Name: "proxy", Image: "registry.example/proxy:1.4"},
			}}}},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
		}
		if mutate != nil {
			mutate(d)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		live *appsv1.Deployment
		want convoyv1.WorkloadStatus
	}{
		{"rolling out", live(nil), convoyv1.WorkloadStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2,
			Revision: "7", Images: []string{"registry.example/api:2.0", "registry.example/proxy:1.4"}}},
		{"the controller has not seen the spec yet: no counts", live(func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 2 }),
			convoyv1.WorkloadStatus{Replicas: 3, Revision: "7", Images: []string{"registry.example/api:2.0", "registry.example/proxy:1.4"}}},
		{"past its progress deadline", live(func(d *appsv1.Deployment) {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "api-6d4cf56db6" has timed out progressing.`}}
		}), convoyv1.WorkloadStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2,
			Revision: "7", Images: []string{"registry.example/api:2.0", "registry.example/proxy:1.4"},
			Failed: true, Message: `ProgressDeadlineExceeded: ReplicaSet "api-6d4cf56db6" has timed out progressing.`}},
		{"progressing normally", live(func(d *appsv1.Deployment) {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated"}}
		}), convoyv1.WorkloadStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2,
			Revision: "7", Images: []string{"registry.example/api:2.0", "registry.example/proxy:1.4"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got convoyv1.WorkloadStatus
			deploymentStatus(&got, tc.live)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodProblemsAndMessage(t *testing.T) {
	pod := func(name string, status corev1.PodStatus) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: status}
	}
	waitingOn := func(reason, message string) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}},
		}}
	}
	now := metav1.Now()
	terminating := pod("api-old", waitingOn("CrashLoopBackOff", "back-off 5m0s"))
	terminating.DeletionTimestamp = &now
	pods := []corev1.Pod{
		pod("api-1", waitingOn("ImagePullBackOff", `Back-off pulling image "registry.example/api:typo"`)),
		pod("api-2", corev1.PodStatus{Phase: corev1.PodRunning}),
		pod("api-3", waitingOn("ImagePullBackOff", `Back-off pulling image "registry.example/api:typo"`)),
		pod("api-4", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/6 nodes are available: 6 Insufficient memory."},
		}}),
		terminating,
		pod("api-done", corev1.PodStatus{Phase: corev1.PodSucceeded}),
	}
	want := []convoyv1.PodProblem{
		{Reason: "ImagePullBackOff", Pods: 2, Message: `Back-off pulling image "registry.example/api:typo"`},
		{Reason: "Unschedulable", Pods: 1, Message: "0/6 nodes are available: 6 Insufficient memory."},
	}
	got := podProblems(pods)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("podProblems (-want +got):\n%s", diff)
	}
	ws := convoyv1.WorkloadStatus{Name: "api", Replicas: 4, UpdatedReplicas: 4, AvailableReplicas: 1, PodProblems: got}
	if msg := workloadMessage(ws); msg != `2 ImagePullBackOff (Back-off pulling image "registry.example/api:typo"); 1 Unschedulable (0/6 nodes are available: 6 Insufficient memory.)` {
		t.Errorf("workloadMessage = %q", msg)
	}
	if msg := workloadMessage(convoyv1.WorkloadStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}); msg != "" {
		t.Errorf("an available workload has a message: %q", msg)
	}
	waiting, failed := notAvailable([]convoyv1.WorkloadStatus{
		{Name: "api", Replicas: 4, UpdatedReplicas: 4, AvailableReplicas: 1, Message: "2 ImagePullBackOff"},
		{Name: "worker", Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1},
		{Name: "batch", Replicas: 1, Failed: true, Message: "ProgressDeadlineExceeded: timed out"},
	})
	if diff := cmp.Diff([]string{"api: 2 ImagePullBackOff"}, waiting); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"batch: ProgressDeadlineExceeded: timed out"}, failed); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
}
