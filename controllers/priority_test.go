package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// A ServiceCluster's fan-out to its Projects queues behind a Project change added after it.
func TestClusterFanOutQueuesBehindProjectChanges(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test-fan-out")
	defer q.ShutDown()
	fanOut := lowPriority(func(context.Context, client.Object) []reconcile.Request {
		reqs := make([]reconcile.Request, 100)
		for i := range reqs {
			reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: fmt.Sprintf("p-%d", i)}}
		}
		return reqs
	})
	sc := &convoyv1.ServiceCluster{}
	fanOut.Update(context.Background(), event.UpdateEvent{ObjectOld: sc, ObjectNew: sc}, q)
	change := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: "changed"}}
	q.Add(change) // what the Project's own watch does
	deadline := time.Now().Add(5 * time.Second)
	for q.Len() < 101 {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d requests, want 101", q.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, _ := q.Get(); got != change {
		t.Fatalf("first request = %v, want the Project change %v ahead of the fan-out", got, change)
	}
}
