package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-dev/convoy/internal/engine"
	"github.com/convoy-dev/convoy/internal/remote"
)

// PairSyncer returns the engine's pair sync reading the manager cluster through c, so that
// integration tests can drive one pair by hand with a failing client.
func PairSyncer(c client.Client, fleet *remote.Fleet) engine.SyncFunc {
	s := &clusterSync{
		inputs: newInputs(c, c, ""), fleet: fleet, state: newPairState(),
		resync: time.Minute, namespaceRecheck: time.Minute, wake: func(types.NamespacedName) {},
		events: &events.FakeRecorder{},
	}
	return s.Sync
}
