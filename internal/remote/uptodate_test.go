package remote

import (
	"testing"

	istionetworking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

var deploymentGVK = appsv1.SchemeGroupVersion.WithKind("Deployment")

func testConnection() *Connection {
	return &Connection{typeConverter: applyconfigurations.NewTypeConverter(convoyscheme.New())}
}

func desiredDeployment() *appsv1.Deployment {
	labels := map[string]string{"app": "api", convoyv1.ManagedByLabel: convoyv1.ManagedByValue}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "api:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.5")}},
				}}},
			},
		},
	}
}

// managedBy returns the managedFields entry the API server records when manager applies the
// Deployment obj.
func managedBy(t testing.TB, c *Connection, manager string, op metav1.ManagedFieldsOperationType, obj client.Object) metav1.ManagedFieldsEntry {
	return managedByAs(t, c.typeConverter, deploymentGVK, manager, op, obj)
}

// managedByAs is managedBy for any kind, with its converter.
func managedByAs(t testing.TB, converter managedfields.TypeConverter, gvk schema.GroupVersionKind, manager string, op metav1.ManagedFieldsOperationType, obj client.Object) metav1.ManagedFieldsEntry {
	payload, err := applyPayload(obj, gvk)
	if err != nil {
		t.Fatal(err)
	}
	typed, err := converter.ObjectToTyped(payload)
	if err != nil {
		t.Fatal(err)
	}
	set, err := typed.ToFieldSet()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := set.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw}}
}

// liveAfterApply is the desired object as the server stores it: defaults filled in, status
// set, and convoy recorded as the owner of what it applied.
func liveAfterApply(t testing.TB, c *Connection) *appsv1.Deployment {
	d := desiredDeployment()
	live := d.DeepCopy()
	live.TypeMeta = metav1.TypeMeta{} // the cache returns typed objects without TypeMeta
	live.UID, live.ResourceVersion, live.Generation = "uid-1", "42", 1
	live.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	live.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	live.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	live.Spec.Template.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log"
	live.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("500m")
	live.Status = appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3}
	live.ManagedFields = []metav1.ManagedFieldsEntry{managedBy(t, c, convoyv1.FieldOwner, metav1.ManagedFieldsOperationApply, d)}
	return live
}

func TestUpToDate(t *testing.T) {
	c := testConnection()
	tests := []struct {
		name     string
		live     func(*appsv1.Deployment)
		desired  func(*appsv1.Deployment)
		upToDate bool
	}{
		{name: "fresh apply with server defaults and canonical quantities", upToDate: true},
		{name: "fields owned by others do not count", upToDate: true, live: func(d *appsv1.Deployment) {
			d.Annotations = map[string]string{"deployment.kubernetes.io/revision": "3"}
			d.ManagedFields = append(d.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate})
		}},
		{name: "desired image changed", desired: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "api:2" }},
		{name: "desired replicas removed: convoy still owns the field", desired: func(d *appsv1.Deployment) { d.Spec.Replicas = nil }},
		{name: "desired label added", desired: func(d *appsv1.Deployment) { d.Labels["tier"] = "web" }},
		{name: "live value edited while convoy still owns it", live: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "evil:1" }},
		{name: "live edited by another manager: convoy lost ownership of replicas", live: func(d *appsv1.Deployment) {
			edited := desiredDeployment()
			edited.Spec.Replicas = nil
			d.ManagedFields = []metav1.ManagedFieldsEntry{managedBy(t, c, convoyv1.FieldOwner, metav1.ManagedFieldsOperationApply, edited)}
			d.Spec.Replicas = ptr.To[int32](7)
		}},
		{name: "no convoy entry in managedFields", live: func(d *appsv1.Deployment) { d.ManagedFields = nil }},
		{name: "convoy's entry is an Update, not an Apply", live: func(d *appsv1.Deployment) { d.ManagedFields[0].Operation = metav1.ManagedFieldsOperationUpdate }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, desired := liveAfterApply(t, c), desiredDeployment()
			if tt.live != nil {
				tt.live(live)
			}
			if tt.desired != nil {
				tt.desired(desired)
			}
			got, err := c.upToDate(deploymentGVK, live, desired)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.upToDate {
				t.Errorf("upToDate = %v, want %v", got, tt.upToDate)
			}
			// The cache holds a slimmed copy: it must answer the same.
			cached, err := slimForCache(convoyscheme.New(), c.typeConverter)(live.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			slim := cached.(*appsv1.Deployment)
			images := []corev1.Container{}
			for _, c := range live.Spec.Template.Spec.Containers {
				images = append(images, corev1.Container{Name: c.Name, Image: c.Image})
			}
			if !equality.Semantic.DeepEqual(slim.Spec.Template, corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: images}}) || slim.ManagedFields != nil {
				t.Fatalf("cached copy holds more of its pod template than the images, or managedFields: %+v", slim)
			}
			if !equality.Semantic.DeepEqual(slim.Status, live.Status) || !equality.Semantic.DeepEqual(slim.Spec.Replicas, live.Spec.Replicas) || !equality.Semantic.DeepEqual(slim.Labels, live.Labels) ||
				slim.Annotations["deployment.kubernetes.io/revision"] != live.Annotations["deployment.kubernetes.io/revision"] {
				t.Errorf("cached copy lost what convoy reads: replicas %v, status %+v, labels %v, annotations %v", slim.Spec.Replicas, slim.Status, slim.Labels, slim.Annotations)
			}
			if got, err := c.upToDate(deploymentGVK, slim, desired); err != nil || got != tt.upToDate {
				t.Errorf("upToDate of the cached copy = %v, %v; want %v", got, err, tt.upToDate)
			}
		})
	}
}

// A digest annotation on an object read from the API server (it has managedFields) is not
// trusted: only the cache's transform writes it.
func TestDigestAnnotationTrustedOnlyOnCachedCopies(t *testing.T) {
	c := testConnection()
	live, desired := liveAfterApply(t, c), desiredDeployment()
	desired.Spec.Template.Spec.Containers[0].Image = "api:2"
	want, err := wantedDigest(c.typeConverter, deploymentGVK, desired)
	if err != nil {
		t.Fatal(err)
	}
	live.Annotations = map[string]string{ownedDigestAnnotation: want}
	if got, err := c.upToDate(deploymentGVK, live, desired); err != nil || got {
		t.Errorf("upToDate = %v, %v; want false: the live image is api:1", got, err)
	}
	// An object that arrives with the annotation and no managedFields gets its digest
	// computed by the transform (convoy owns nothing there), not taken from the annotation.
	live.ManagedFields = nil
	cached, err := slimForCache(convoyscheme.New(), c.typeConverter)(live)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.upToDate(deploymentGVK, cached.(client.Object), desired); err != nil || got {
		t.Errorf("upToDate of a cached copy that arrived with a forged digest = %v, %v; want false", got, err)
	}
}

// A cached copy whose digest cannot be computed is kept whole, with convoy's entry, and
// upToDate computes from it.
func TestSlimKeepsObjectWhenDigestFails(t *testing.T) {
	c := testConnection()
	live := liveAfterApply(t, c)
	live.ManagedFields[0].FieldsV1 = &metav1.FieldsV1{Raw: []byte("not json")}
	live.ManagedFields = append(live.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate})
	cached, err := slimForCache(convoyscheme.New(), c.typeConverter)(live.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	slim := cached.(*appsv1.Deployment)
	if len(slim.ManagedFields) != 1 || slim.ManagedFields[0].Manager != convoyv1.FieldOwner || len(slim.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want the whole object with only convoy's entry, got managedFields %v", slim.ManagedFields)
	}
	if _, err := c.upToDate(deploymentGVK, slim, desiredDeployment()); err == nil {
		t.Error("upToDate of an unparsable entry: want the parse error surfaced")
	}
}

// BenchmarkUpToDate measures the per-object cost of a no-op resync: it runs for every object
// in every targeted cluster on every reconcile. "cached" is what a resync pays (the live side
// is a digest computed on arrival), "full" computes both sides.
func BenchmarkUpToDate(b *testing.B) {
	c := testConnection()
	live, desired := liveAfterApply(b, c), desiredDeployment()
	cached, err := slimForCache(convoyscheme.New(), c.typeConverter)(live.DeepCopy())
	if err != nil {
		b.Fatal(err)
	}
	for name, obj := range map[string]*appsv1.Deployment{"full": live, "cached": cached.(*appsv1.Deployment)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ok, err := c.upToDate(deploymentGVK, obj, desired)
				if err != nil || !ok {
					b.Fatalf("upToDate = %v, %v", ok, err)
				}
			}
		})
	}
}

// The cache's slimmed copies of the other kinds convoy applies answer upToDate like the full
// objects: a Service (typed converter) and a DestinationRule (deduced converter, protobuf spec).
func TestSlimmedKindsAnswerLikeFullObjects(t *testing.T) {
	c := testConnection()
	scheme := convoyscheme.New()
	labels := map[string]string{convoyv1.ManagedByLabel: convoyv1.ManagedByValue}
	service := func(port int32) client.Object {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Labels: labels},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Name: "http", Port: port}}}}
	}
	rule := func(maxRequests int32) client.Object {
		dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Labels: labels}}
		dr.Spec.Host = "api.shop.svc.cluster.local"
		dr.Spec.TrafficPolicy = &istionetworking.TrafficPolicy{ConnectionPool: &istionetworking.ConnectionPoolSettings{
			Http: &istionetworking.ConnectionPoolSettings_HTTPSettings{MaxRequestsPerConnection: maxRequests}}}
		return dr
	}
	for _, tc := range []struct {
		name             string
		desired, changed func() client.Object
		serverDefaults   func(client.Object)
	}{
		{"Service", func() client.Object { return service(80) }, func() client.Object { return service(8080) }, func(o client.Object) {
			s := o.(*corev1.Service)
			s.Spec.ClusterIP, s.Spec.Type, s.Spec.SessionAffinity = "10.0.0.7", corev1.ServiceTypeClusterIP, corev1.ServiceAffinityNone
			s.Spec.Ports[0].Protocol = corev1.ProtocolTCP
		}},
		{"DestinationRule", func() client.Object { return rule(10) }, func() client.Object { return rule(20) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desired := tc.desired()
			gvk, err := apiutil.GVKForObject(desired, scheme)
			if err != nil {
				t.Fatal(err)
			}
			live := tc.desired()
			if tc.serverDefaults != nil {
				tc.serverDefaults(live)
			}
			live.SetUID("uid-1")
			live.SetManagedFields([]metav1.ManagedFieldsEntry{
				managedByAs(t, converterFor(c.typeConverter, gvk), gvk, convoyv1.FieldOwner, metav1.ManagedFieldsOperationApply, desired)})
			cached, err := slimForCache(scheme, c.typeConverter)(live.DeepCopyObject())
			if err != nil {
				t.Fatal(err)
			}
			slim := cached.(client.Object)
			if _, ok := cachedDigest(slim); !ok {
				t.Fatalf("cached copy has no digest: %+v", slim)
			}
			for _, check := range []struct {
				desired client.Object
				want    bool
			}{{tc.desired(), true}, {tc.changed(), false}} {
				full, err := c.upToDate(gvk, live, check.desired)
				if err != nil || full != check.want {
					t.Errorf("upToDate(full) = %v, %v; want %v", full, err, check.want)
				}
				got, err := c.upToDate(gvk, slim, check.desired)
				if err != nil || got != check.want {
					t.Errorf("upToDate(cached) = %v, %v; want %v", got, err, check.want)
				}
			}
		})
	}
}

// The memo of desired digests answers like a computation and stays bounded.
func TestWantedDigestMemo(t *testing.T) {
	c := testConnection()
	desired := desiredDeployment()
	first, err := wantedDigest(c.typeConverter, deploymentGVK, desired)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := applyPayload(desired, deploymentGVK)
	if err != nil {
		t.Fatal(err)
	}
	computed, err := computeWantedDigest(c.typeConverter, payload)
	if err != nil || computed != first {
		t.Fatalf("computed %q, %v; memo path gave %q", computed, err, first)
	}
	desired.Spec.Template.Spec.Containers[0].Image = "api:2"
	if changed, _ := wantedDigest(c.typeConverter, deploymentGVK, desired); changed == first {
		t.Fatal("a changed payload got the memoised digest of the old one")
	}
	m := &digestMemo{maxEntries: 2}
	for i := range 5 {
		m.put([32]byte{byte(i)}, "d")
		if len(m.entries) > 2 {
			t.Fatalf("memo holds %d entries, want at most 2", len(m.entries))
		}
	}
}

// Cached ConfigMaps and Secrets keep no data, only the digest the no-op check needs.
func TestSlimDropsConfigAndSecretData(t *testing.T) {
	c := testConnection()
	entry := []metav1.ManagedFieldsEntry{{Manager: convoyv1.FieldOwner, Operation: metav1.ManagedFieldsOperationApply,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{"f:password":{}}}`)}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", ManagedFields: entry},
		Data: map[string][]byte{"password": []byte("s3cret")}, StringData: map[string]string{"x": "y"}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "shop", ManagedFields: entry},
		Data: map[string]string{"password": "plain"}, BinaryData: map[string][]byte{"b": {1}}}
	for _, obj := range []client.Object{secret, cm} {
		cached, err := slimForCache(convoyscheme.New(), c.typeConverter)(obj)
		if err != nil {
			t.Fatal(err)
		}
		o := cached.(client.Object)
		if d, ok := cachedDigest(o); !ok || d == "" {
			t.Errorf("%T: no digest on the cached copy", o)
		}
	}
	if secret.Data != nil || secret.StringData != nil || cm.Data != nil || cm.BinaryData != nil {
		t.Errorf("data kept in the cache: secret %v %v, configmap %v %v", secret.Data, secret.StringData, cm.Data, cm.BinaryData)
	}
}

// Informers may transform an object twice (a watch-list's initial events). The second pass
// must keep the digest of the first: recomputing it from the stripped object found convoy
// owning nothing, and every resync after a reconnect re-applied every object.
func TestTransformIsIdempotent(t *testing.T) {
	c := testConnection()
	live, desired := liveAfterApply(t, c), desiredDeployment()
	live.UID, live.ResourceVersion = "uid-1", "42"
	transform := slimForCache(convoyscheme.New(), c.typeConverter)
	once, err := transform(live)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := transform(once)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.upToDate(deploymentGVK, twice.(client.Object), desired); err != nil || !got {
		t.Errorf("upToDate after two transforms = %v, %v; want true", got, err)
	}
	// A sealed digest copied onto another version of the object is not trusted.
	moved := twice.(*appsv1.Deployment).DeepCopy()
	moved.ResourceVersion = "43"
	if _, ok := cachedDigest(moved); ok {
		t.Error("a digest sealed for resourceVersion 42 was trusted on resourceVersion 43")
	}
}
