package remote

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// ownedDigestAnnotation holds, on a cached copy only, the digest of the fields convoy owned in
// the object when it arrived ("" when convoy owned nothing), sealed (sealDigest). It is never
// written to a cluster.
const ownedDigestAnnotation = "convoy.dev/cached-owned-fields-digest"

// sealKey authenticates the digests this process's transform wrote, so that an annotation
// someone put on an object in a cluster is never taken for one. It never leaves memory.
var sealKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()

// sealDigest binds a digest to the object version it was computed from.
func sealDigest(o client.Object, d string) string {
	return d + "/" + digestSeal(o, d)
}

func digestSeal(o client.Object, d string) string {
	m := hmac.New(sha256.New, sealKey)
	fmt.Fprintf(m, "%s\x00%s\x00%s", o.GetUID(), o.GetResourceVersion(), d)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// cachedDigest returns the digest slimForCache left on a cached copy, if it has a valid seal:
// an object read from the API server (or one carrying a planted annotation) has none.
func cachedDigest(o client.Object) (string, bool) {
	v, ok := o.GetAnnotations()[ownedDigestAnnotation]
	if !ok {
		return "", false
	}
	d, seal, ok := strings.Cut(v, "/")
	if !ok || !hmac.Equal([]byte(seal), []byte(digestSeal(o, d))) {
		return "", false
	}
	return d, true
}

// deploymentRevisionAnnotation is the Deployment controller's rollout revision, kept on
// cached Deployments for status.
const deploymentRevisionAnnotation = "deployment.kubernetes.io/revision"

// slimForCache returns the transform every object passes before it enters a connection's
// cache. convoy reads little of what it caches: identity, labels, deletion state, what it owns
// (for the no-op check and drift detection) and a Deployment's replicas, images, revision and
// status. So the
// fields convoy owns are reduced to a digest on arrival, and the specs, annotations and
// managedFields are dropped: a cached Deployment shrinks from its full pod template (with
// every server default) to its metadata and status. Objects of other kinds (node metadata)
// only lose their managedFields. When the digest cannot be computed, the object is kept whole
// and upToDate computes from it.
func slimForCache(scheme *runtime.Scheme, typeConverter managedfields.TypeConverter) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		o, ok := obj.(client.Object)
		if !ok {
			return obj, nil
		}
		// Informers may pass an object through the transform twice (a watch-list's initial
		// events are transformed before they replace the store): the second pass must keep
		// the digest the first computed from managedFields, which it dropped.
		if _, done := cachedDigest(o); done {
			return obj, nil
		}
		if !slimmable(o) {
			o.SetManagedFields(nil)
			return obj, nil
		}
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			return keepConvoyApplyEntry(o), nil
		}
		// Computed from managedFields, never taken from an annotation the object arrived with.
		d, err := computeOwnedDigest(converterFor(typeConverter, gvk), gvk, o)
		if err != nil {
			return keepConvoyApplyEntry(o), nil
		}
		o.SetManagedFields(nil)
		revision, hasRevision := o.GetAnnotations()[deploymentRevisionAnnotation]
		o.SetAnnotations(map[string]string{ownedDigestAnnotation: sealDigest(o, d)})
		if hasRevision {
			o.GetAnnotations()[deploymentRevisionAnnotation] = revision
		}
		dropSpec(o)
		return obj, nil
	}
}

// slimmable reports whether o is a kind convoy applies.
func slimmable(o client.Object) bool {
	switch o.(type) {
	case *appsv1.Deployment, *corev1.Service, *corev1.Namespace, *corev1.ServiceAccount, *corev1.ConfigMap, *corev1.Secret,
		*batchv1.CronJob, *autoscalingv2.HorizontalPodAutoscaler, *policyv1.PodDisruptionBudget,
		*networkingv1.DestinationRule, *networkingv1beta1.DestinationRule:
		return true
	}
	return false
}

// dropSpec removes what convoy never reads from a cached object of a kind it applies.
func dropSpec(o client.Object) {
	switch t := o.(type) {
	case *appsv1.Deployment:
		// Status stays, and which images the pods run: convoy reports them.
		containers := make([]corev1.Container, len(t.Spec.Template.Spec.Containers))
		for i, c := range t.Spec.Template.Spec.Containers {
			containers[i] = corev1.Container{Name: c.Name, Image: c.Image}
		}
		t.Spec = appsv1.DeploymentSpec{Replicas: t.Spec.Replicas}
		t.Spec.Template.Spec.Containers = containers
	case *corev1.Service:
		t.Spec, t.Status = corev1.ServiceSpec{}, corev1.ServiceStatus{}
	case *corev1.Namespace:
		t.Spec = corev1.NamespaceSpec{}
	case *corev1.ServiceAccount:
		t.Secrets, t.ImagePullSecrets, t.AutomountServiceAccountToken = nil, nil, nil
	case *corev1.ConfigMap:
		t.Data, t.BinaryData = nil, nil
	case *corev1.Secret:
		// No Secret content stays in memory: the digest is all the no-op check needs.
		t.Data, t.StringData = nil, nil
	case *batchv1.CronJob:
		t.Spec = batchv1.CronJobSpec{} // status stays: convoy reports the last runs
	case *autoscalingv2.HorizontalPodAutoscaler:
		t.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{}
	case *policyv1.PodDisruptionBudget:
		t.Spec = policyv1.PodDisruptionBudgetSpec{}
	case *networkingv1.DestinationRule:
		t.Spec.Reset()
		t.Status.Reset()
	case *networkingv1beta1.DestinationRule:
		t.Spec.Reset()
		t.Status.Reset()
	}
}

// keepConvoyApplyEntry drops every managedFields entry but convoy's own apply entry: the no-op
// check reads only that one.
func keepConvoyApplyEntry(o client.Object) client.Object {
	if e := convoyApplyEntry(o.GetManagedFields()); e != nil {
		o.SetManagedFields([]metav1.ManagedFieldsEntry{*e})
	} else {
		o.SetManagedFields(nil)
	}
	return o
}
