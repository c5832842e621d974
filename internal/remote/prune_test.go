package remote

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
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
	var got []string
	for _, o := range unownedOf(objects) {
		got = append(got, o.id)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unowned (-want +got):\n%s", diff)
	}
}

func TestUnblocks(t *testing.T) {
	blockers := map[types.UID]namespacedObject{
		"r":  {id: "Role/reader", uid: "r"},
		"sa": {id: "Secret/tls", uid: "sa", owners: []types.UID{"cert"}},
	}
	meta := func(uid types.UID, labels map[string]string, owners ...types.UID) *metav1.PartialObjectMetadata {
		o := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{UID: uid, Labels: labels}}
		for _, u := range owners {
			o.OwnerReferences = append(o.OwnerReferences, metav1.OwnerReference{UID: u})
		}
		return o
	}
	convoys := map[string]string{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}
	for _, tc := range []struct {
		name string
		ev   watch.Event
		want bool
	}{
		{"blocker deleted", watch.Event{Type: watch.Deleted, Object: meta("r", nil)}, true},
		{"blocker labelled as convoy's", watch.Event{Type: watch.Modified, Object: meta("r", convoys)}, true},
		{"blocker's owner changed", watch.Event{Type: watch.Modified, Object: meta("sa", nil, "other")}, true},
		{"blocker modified otherwise (a status write)", watch.Event{Type: watch.Modified, Object: meta("sa", map[string]string{"a": "b"}, "cert")}, false},
		{"other object deleted", watch.Event{Type: watch.Deleted, Object: meta("lease", nil)}, false},
		{"new object added", watch.Event{Type: watch.Added, Object: meta("new", nil)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unblocks(tc.ev, blockers); got != tc.want {
				t.Errorf("unblocks = %v, want %v", got, tc.want)
			}
		})
	}
}
