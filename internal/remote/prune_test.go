package remote

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
)

func TestUnownedOf(t *testing.T) {
	objects := []namespacedObject{
		{id: "Deployment/api", uid: "d", labelled: true},
		{id: "ReplicaSet/api-7d9", uid: "rs", owners: []types.UID{"d"}},
		{id: "Pod/api-7d9-x", uid: "p", owners: []types.UID{"rs"}},
		{id: "Service/api", uid: "s", labelled: true},
		{id: "EndpointSlice/api-abc", uid: "es", owners: []types.UID{"s"}},
		{id: "ConfigMap/kube-root-ca.crt", uid: "cm"},
		{id: "ServiceAccount/default", uid: "sa"},
		{id: "Role/reader", uid: "r"},
		{id: "Certificate/tls", uid: "cert"},
		{id: "Secret/tls", uid: "sec", owners: []types.UID{"cert"}}, // owned by a user's object: still the user's
		{id: "Pod/debug", uid: "bare"},
	}
	want := []string{"Certificate/tls", "Pod/debug", "Role/reader", "Secret/tls"}
	if diff := cmp.Diff(want, unownedOf(objects)); diff != "" {
		t.Errorf("unowned (-want +got):\n%s", diff)
	}
}
