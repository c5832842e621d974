package v1alpha1

import (
	"testing"

	"k8s.io/utils/ptr"
)

func TestShutdownBudget(t *testing.T) {
	tests := []struct {
		name        string
		spec        GracefulShutdownPolicySpec
		budget      int64
		gracePeriod int64
	}{
		{"sleep", GracefulShutdownPolicySpec{PreStop: PreStop{Sleep: &SleepPreStop{Seconds: 15}}, AppShutdownSeconds: 10, SafetyMarginSeconds: 5}, 15, 30},
		{"drain connections", GracefulShutdownPolicySpec{PreStop: PreStop{DrainConnections: &DrainConnectionsPreStop{TimeoutSeconds: 30, MinDelaySeconds: 5}}, AppShutdownSeconds: 10, SafetyMarginSeconds: 5}, 30, 45},
		{"http call and wait", GracefulShutdownPolicySpec{PreStop: PreStop{HTTPGet: &HTTPGetPreStop{DrainEndpoint: DrainEndpoint{TimeoutSeconds: 5}, WaitSeconds: 20}}, AppShutdownSeconds: 3, SafetyMarginSeconds: 2}, 25, 30},
		{"explicit grace wins", GracefulShutdownPolicySpec{PreStop: PreStop{Sleep: &SleepPreStop{Seconds: 5}}, AppShutdownSeconds: 10, SafetyMarginSeconds: 5, TerminationGracePeriodSeconds: ptr.To[int64](90)}, 5, 90},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.PreStopBudgetSeconds(); got != tt.budget {
				t.Errorf("PreStopBudgetSeconds() = %d, want %d", got, tt.budget)
			}
			if got := tt.spec.GracePeriodSeconds(); got != tt.gracePeriod {
				t.Errorf("GracePeriodSeconds() = %d, want %d", got, tt.gracePeriod)
			}
		})
	}
}
