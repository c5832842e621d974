package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
)

func TestEligibleZones(t *testing.T) {
	node := func(name, zone, pool string) metav1.PartialObjectMetadata {
		return metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{convoyv1.ZoneLabel: zone, "pool": pool}}}
	}
	nodes := remote.NodeZonesOf([]metav1.PartialObjectMetadata{
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
