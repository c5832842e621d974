package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	appsv1apply "k8s.io/client-go/applyconfigurations/apps/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// ConflictError says that an object convoy wants to write exists and is not owned by the
// Project asking for it. convoy never touches such an object.
type ConflictError struct {
	GVK       schema.GroupVersionKind
	Key       client.ObjectKey
	OwnedBy   string // "namespace/name" of the owning Project, empty when convoy does not own it
	ClusterID string
}

func (e *ConflictError) Error() string {
	what := fmt.Sprintf("%s %s", e.GVK.Kind, e.Key.Name)
	if e.Key.Namespace != "" {
		what = fmt.Sprintf("%s %s/%s", e.GVK.Kind, e.Key.Namespace, e.Key.Name)
	}
	if e.OwnedBy != "" {
		return fmt.Sprintf("%s in cluster %s already belongs to Project %s; pick another spec.namespace or remove it from that Project", what, e.ClusterID, e.OwnedBy)
	}
	return fmt.Sprintf("%s in cluster %s exists and was not created by convoy; convoy will not adopt or change it. Delete or rename it, or pick another spec.namespace", what, e.ClusterID)
}

// ObjectID identifies an object by group, kind, namespace and name, whatever its Go type
// (typed from a cache, unstructured from a renderer) or API version.
func (c *Connection) ObjectID(obj client.Object) (string, error) {
	gvk, err := apiutil.GVKForObject(obj, c.cluster.GetScheme())
	if err != nil {
		return "", err
	}
	return gvk.GroupKind().String() + "/" + obj.GetNamespace() + "/" + obj.GetName(), nil
}

// KindOf is obj's kind, whatever its Go type ("" when the scheme does not know it).
func (c *Connection) KindOf(obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, c.cluster.GetScheme())
	if err != nil {
		return ""
	}
	return gvk.Kind
}

// Owner identifies the Project on whose behalf objects are written.
type Owner struct {
	Namespace, Name string
}

func (o Owner) String() string { return o.Namespace + "/" + o.Name }

func (o Owner) owns(obj client.Object) bool {
	l := obj.GetLabels()
	return l[convoyv1.ManagedByLabel] == convoyv1.ManagedByValue &&
		l[convoyv1.ProjectNamespaceLabel] == o.Namespace && l[convoyv1.ProjectNameLabel] == o.Name
}

func ownerOf(obj client.Object) string {
	l := obj.GetLabels()
	if l[convoyv1.ManagedByLabel] != convoyv1.ManagedByValue || l[convoyv1.ProjectNameLabel] == "" {
		return ""
	}
	return l[convoyv1.ProjectNamespaceLabel] + "/" + l[convoyv1.ProjectNameLabel]
}

// Write says what an Apply sent.
type Write string

const (
	// NoWrite: the live object already held what convoy owns.
	NoWrite Write = ""
	// Created: the object did not exist.
	Created Write = "create"
	// Updated: fields convoy owns differed (a change of the Project, or a remote edit).
	Updated Write = "update"
)

// Apply makes the cluster hold desired, written by server-side apply with field owner convoy.
// It returns what it sent. No request at all is sent when the live object (read
// from the cache) already holds exactly what convoy owns: steady state costs nothing. A
// live object that the Owner does not own gives a *ConflictError and is left untouched.
func (c *Connection) Apply(ctx context.Context, owner Owner, desired client.Object) (Write, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	gvk, err := apiutil.GVKForObject(desired, c.cluster.GetScheme())
	if err != nil {
		return NoWrite, err
	}
	if gvk.Group == "" && gvk.Kind == "Namespace" {
		// Claims of a namespace are serialised: check-then-create must not race with
		// another Project claiming the same name.
		c.namespaceMu.Lock()
		defer c.namespaceMu.Unlock()
		write, err := c.apply(ctx, owner, gvk, desired)
		if err != nil {
			return write, err
		}
		// Nothing can go into the namespace before convoy may write there.
		return write, c.grantAccess(ctx, desired)
	}
	return c.apply(ctx, owner, gvk, desired)
}

func (c *Connection) apply(ctx context.Context, owner Owner, gvk schema.GroupVersionKind, desired client.Object) (Write, error) {
	key := client.ObjectKeyFromObject(desired)

	live, err := c.cluster.GetScheme().New(gvk)
	if err != nil {
		return NoWrite, err
	}
	liveObj := live.(client.Object)
	write := Updated
	switch err := c.cache().Get(ctx, key, liveObj); {
	case err == nil:
		if !owner.owns(liveObj) {
			return NoWrite, &ConflictError{GVK: gvk, Key: key, OwnedBy: ownerOf(liveObj), ClusterID: c.Name}
		}
		if !liveObj.GetDeletionTimestamp().IsZero() {
			return NoWrite, fmt.Errorf("%s %s in cluster %s is being deleted; convoy recreates it once it is gone", gvk.Kind, key, c.Name)
		}
		upToDate, err := c.upToDate(gvk, liveObj, desired)
		if err != nil {
			return NoWrite, err
		}
		if upToDate {
			return NoWrite, nil
		}
		if err := c.handOverReplicas(ctx, desired); err != nil {
			return NoWrite, err
		}
	case apierrors.IsNotFound(err):
		write = Created
		// The cache only holds convoy-owned objects: ask the API server whether something
		// else already uses the name.
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(gvk)
		switch err := c.cluster.GetAPIReader().Get(ctx, key, meta); {
		case err == nil && !owner.owns(meta):
			return NoWrite, &ConflictError{GVK: gvk, Key: key, OwnedBy: ownerOf(meta), ClusterID: c.Name}
		case err != nil && !apierrors.IsNotFound(err):
			return NoWrite, fmt.Errorf("checking %s %s in cluster %s: %w", gvk.Kind, key, c.Name, err)
		}
	default:
		return NoWrite, fmt.Errorf("reading %s %s from cache of %s: %w", gvk.Kind, key, c.Name, err)
	}

	u, err := applyPayload(desired, gvk)
	if err != nil {
		return NoWrite, err
	}
	if err := c.cluster.GetClient().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(convoyv1.FieldOwner), client.ForceOwnership); err != nil {
		return NoWrite, fmt.Errorf("applying %s %s in cluster %s: %w", gvk.Kind, key, c.Name, err)
	}
	return write, nil
}

// applyPayload converts a typed object into the unstructured apply request. Typed structs
// render zero values they cannot omit (creationTimestamp: null, status: {}, strategy: {},
// resources: {}). Applying those would make convoy own fields it does not mean to set, and an
// owned empty map compares unequal to the server's defaults on every resync. So nulls and empty
// maps are dropped, except where an empty object is itself the value (emptyDir: {}).
func applyPayload(obj client.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	var content map[string]any
	if u, ok := obj.(*unstructured.Unstructured); ok {
		content = u.DeepCopy().Object
	} else {
		var err error
		if content, err = runtime.DefaultUnstructuredConverter.ToUnstructured(obj); err != nil {
			return nil, err
		}
	}
	// Status is never convoy's to apply, and typed structs render some of it regardless
	// (an HPA's desiredReplicas: 0, a PDB's expectedPods: 0).
	delete(content, "status")
	dropEmpty(content)
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// meaningfulEmptyObjects are keys whose empty object selects a behaviour.
var meaningfulEmptyObjects = map[string]bool{"emptyDir": true}

// dropEmpty removes nulls and empty maps from a map, depth first, and reports whether the map
// ended up empty.
func dropEmpty(m map[string]any) bool {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			if dropEmpty(t) && !meaningfulEmptyObjects[k] {
				delete(m, k)
			}
		case []any:
			for _, item := range t {
				if im, ok := item.(map[string]any); ok {
					dropEmpty(im)
				}
			}
		}
	}
	return len(m) == 0
}

// upToDate reports whether the fields convoy owns in live hold exactly the desired values.
// A remote edit of an owned field moves its ownership to the editor, and a field convoy no
// longer wants is still owned by convoy; both make this false, so the next apply repairs the
// drift. Fields owned by others (an HPA's replicas, defaults) are not compared. Both sides
// are compared as digests: a cached copy carries the digest of its owned fields, computed
// when it arrived (slimForCache), instead of the fields themselves.
func (c *Connection) upToDate(gvk schema.GroupVersionKind, live, desired client.Object) (bool, error) {
	converter := converterFor(c.typeConverter, gvk)
	have, err := ownedDigest(converter, gvk, live)
	if err != nil || have == "" {
		return false, err
	}
	want, err := wantedDigest(converter, gvk, desired)
	if err != nil {
		return false, err
	}
	return have == want, nil
}

// ownedDigest is the digest of the fields convoy's apply entry covers in live, or "" when
// convoy has no apply entry there (so the object must be applied). A cached copy carries it.
func ownedDigest(converter managedfields.TypeConverter, gvk schema.GroupVersionKind, live client.Object) (string, error) {
	if d, ok := cachedDigest(live); ok {
		return d, nil
	}
	return computeOwnedDigest(converter, gvk, live)
}

// computeOwnedDigest computes ownedDigest from live's managedFields.
func computeOwnedDigest(converter managedfields.TypeConverter, gvk schema.GroupVersionKind, live client.Object) (string, error) {
	entry := convoyApplyEntry(live.GetManagedFields())
	if entry == nil || entry.FieldsV1 == nil {
		return "", nil
	}
	owned := &fieldpath.Set{}
	if err := owned.FromJSON(bytes.NewReader(entry.FieldsV1.Raw)); err != nil {
		return "", fmt.Errorf("parsing managed fields of %s %s: %w", gvk.Kind, live.GetName(), err)
	}
	liveU, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
	if err != nil {
		return "", err
	}
	liveObj := &unstructured.Unstructured{Object: liveU}
	liveObj.SetGroupVersionKind(gvk)
	liveTyped, err := converter.ObjectToTyped(liveObj)
	if err != nil {
		return "", err
	}
	return digest(liveTyped.ExtractItems(owned.Leaves()).AsValue().Unstructured())
}

// wantedDigest is the digest of what an apply of desired sets. Converting the payload into
// a typed value and extracting its field set is most of a no-op sync's CPU, and the same
// payload is checked at every resync, so the result is remembered per payload.
func wantedDigest(converter managedfields.TypeConverter, gvk schema.GroupVersionKind, desired client.Object) (string, error) {
	payload, err := applyPayload(desired, gvk)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(payload.Object)
	if err != nil {
		return "", err
	}
	key := sha256.Sum256(raw)
	if d, ok := wantedDigests.get(key); ok {
		return d, nil
	}
	d, err := computeWantedDigest(converter, payload)
	if err != nil {
		return "", err
	}
	wantedDigests.put(key, d)
	return d, nil
}

// digestMemo remembers digests by the hash of what they were computed from. It holds at
// most maxEntries and starts over when full: enough for every object of a large fleet,
// bounded when Projects churn.
type digestMemo struct {
	mu         sync.Mutex
	maxEntries int
	entries    map[[sha256.Size]byte]string
}

var wantedDigests = &digestMemo{maxEntries: 100_000}

func (m *digestMemo) get(key [sha256.Size]byte) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.entries[key]
	return d, ok
}

func (m *digestMemo) put(key [sha256.Size]byte, d string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil || len(m.entries) >= m.maxEntries {
		m.entries = map[[sha256.Size]byte]string{}
	}
	m.entries[key] = d
}

// computeWantedDigest computes wantedDigest from an apply payload (its apiVersion and kind
// are part of the memo key, so the converter chosen by kind is too).
func computeWantedDigest(converter managedfields.TypeConverter, payload *unstructured.Unstructured) (string, error) {
	desiredTyped, err := converter.ObjectToTyped(payload)
	if err != nil {
		return "", err
	}
	// Compare only what an apply request sets: identity fields are not part of managedFields.
	desiredOwned, err := desiredTyped.ToFieldSet()
	if err != nil {
		return "", err
	}
	return digest(desiredTyped.ExtractItems(desiredOwned.Leaves()).AsValue().Unstructured())
}

// digest hashes a field tree without its identity. encoding/json writes map keys sorted, so
// equal trees give equal digests.
func digest(fields any) (string, error) {
	raw, err := json.Marshal(stripIdentity(fields))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]), nil
}

// converterFor returns the schema-aware converter for built-in kinds and a deduced one for
// custom resources (Istio's CRDs declare no list types, so their lists are atomic, which is
// what the deduced converter assumes).
func converterFor(typeConverter managedfields.TypeConverter, gvk schema.GroupVersionKind) managedfields.TypeConverter {
	if clientgoscheme.Scheme.Recognizes(gvk) {
		return typeConverter
	}
	return deducedConverter
}

var deducedConverter = managedfields.NewDeducedTypeConverter()

func convoyApplyEntry(entries []metav1.ManagedFieldsEntry) *metav1.ManagedFieldsEntry {
	for i := range entries {
		e := &entries[i]
		if e.Manager == convoyv1.FieldOwner && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
			return e
		}
	}
	return nil
}

func stripIdentity(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	if meta, ok := m["metadata"].(map[string]any); ok {
		delete(meta, "name")
		delete(meta, "namespace")
		if len(meta) == 0 {
			delete(m, "metadata")
		}
	}
	return m
}

// ReplicasHandoverManager keeps a Deployment's replicas after convoy stops setting them.
const ReplicasHandoverManager = "convoy-replicas-handover"

// handOverReplicas runs before convoy applies a Deployment without replicas (an autoscaler
// owns them now). Server-side apply removes a field its only owner stops applying, and a
// Deployment without replicas defaults to 1: a workload at 10 replicas would drop to 1 until
// its autoscaler scales it up again. So when convoy still owns spec.replicas, the current
// value is first applied by a second field manager, which then keeps it.
func (c *Connection) handOverReplicas(ctx context.Context, desired client.Object) error {
	d, ok := desired.(*appsv1.Deployment)
	if !ok || d.Spec.Replicas != nil {
		return nil
	}
	live := &appsv1.Deployment{}
	if err := c.cluster.GetAPIReader().Get(ctx, client.ObjectKeyFromObject(d), live); err != nil {
		return fmt.Errorf("reading Deployment %s in cluster %s to hand its replicas over: %w", client.ObjectKeyFromObject(d), c.Name, err)
	}
	entry := convoyApplyEntry(live.ManagedFields)
	if entry == nil || entry.FieldsV1 == nil || live.Spec.Replicas == nil {
		return nil
	}
	owned := &fieldpath.Set{}
	if err := owned.FromJSON(bytes.NewReader(entry.FieldsV1.Raw)); err != nil {
		return err
	}
	if !owned.Has(fieldpath.MakePathOrDie("spec", "replicas")) {
		return nil
	}
	handover := appsv1apply.Deployment(d.Name, d.Namespace).WithSpec(appsv1apply.DeploymentSpec().WithReplicas(*live.Spec.Replicas))
	if err := c.cluster.GetClient().Apply(ctx, handover, client.FieldOwner(ReplicasHandoverManager)); err != nil {
		return fmt.Errorf("handing the replicas of Deployment %s in cluster %s over: %w", client.ObjectKeyFromObject(d), c.Name, err)
	}
	return nil
}
