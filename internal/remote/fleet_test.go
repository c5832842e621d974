package remote

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestClaim(t *testing.T) {
	f := NewFleet(Options{})
	f.conns["seoul"] = &Connection{Name: "seoul", cancel: func() {}}
	f.conns["seoul-again"] = &Connection{Name: "seoul-again", cancel: func() {}}

	if got := f.Claim("uid-1", "seoul"); got != "seoul" {
		t.Fatalf("first claim: holder %q", got)
	}
	if got := f.Claim("uid-1", "seoul"); got != "seoul" {
		t.Fatalf("repeated claim: holder %q", got)
	}
	if got := f.Claim("uid-1", "seoul-again"); got != "seoul" {
		t.Fatalf("second registration must be refused, holder %q", got)
	}
	f.Disconnect("seoul")
	if got := f.Claim("uid-1", "seoul-again"); got != "seoul-again" {
		t.Fatalf("after the holder disconnects the claim is free, holder %q", got)
	}
}

func TestPlacementChanged(t *testing.T) {
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
		{"only the resourceVersion (a readiness flip, stripped away)", func(p *corev1.Pod) { p.ResourceVersion = "2" }, false},
		{"scheduled elsewhere", func(p *corev1.Pod) { p.Spec.NodeName = "n2" }, true},
		{"phase", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }, true},
		{"deletion started", func(p *corev1.Pod) { p.DeletionTimestamp = &now }, true},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base.DeepCopy()
			tt.mutate(n)
			if got := placementChanged(base, n); got != tt.want {
				t.Errorf("placementChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
