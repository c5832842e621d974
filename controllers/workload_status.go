package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/remote"
	"github.com/convoy-dev/convoy/internal/render"
)

// workloadStatuses reads each workload's live Deployment from the cluster's cache.
func workloadStatuses(ctx context.Context, conn *remote.Connection, desired *render.ClusterObjects) []convoyv1.WorkloadStatus {
	out := make([]convoyv1.WorkloadStatus, 0, len(desired.Deployments))
	for _, d := range desired.Deployments {
		// A Deployment not (yet) in the cache wants its replicas and has none available.
		ws := convoyv1.WorkloadStatus{Name: d.Name, Replicas: ptrOr(d.Spec.Replicas, 1)}
		live, err := conn.Deployment(ctx, client.ObjectKeyFromObject(d))
		if err == nil {
			ws.Replicas = ptrOr(live.Spec.Replicas, 1)
			if live.Status.ObservedGeneration >= live.Generation {
				ws.ReadyReplicas = live.Status.ReadyReplicas
				ws.UpdatedReplicas = live.Status.UpdatedReplicas
				ws.AvailableReplicas = live.Status.AvailableReplicas
			}
		}
		out = append(out, ws)
	}
	return out
}

// notAvailable names the workloads whose Deployment is not fully rolled out and available.
func notAvailable(ws []convoyv1.WorkloadStatus) []string {
	var names []string
	for _, w := range ws {
		if w.UpdatedReplicas < w.Replicas || w.AvailableReplicas < w.Replicas {
			names = append(names, w.Name)
		}
	}
	return names
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
