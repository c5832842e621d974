// Package validation checks rendered objects with Kubernetes' own validation: the create
// path of the API server's registry (defaults, PrepareForCreate, hand-written and
// declarative validation), without an API server. convoy uses it to refuse a Project that a
// service cluster would refuse, before anything is pushed anywhere.
//
// It imports k8s.io/kubernetes, which is not meant as a library: its go.mod asks for its
// staging modules at v0.0.0, so convoy's go.mod pins them to the version it uses. Only this
// package imports it.
package validation

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/autoscaling/install"
	_ "k8s.io/kubernetes/pkg/apis/batch/install"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	"k8s.io/kubernetes/pkg/registry/apps/deployment"
	"k8s.io/kubernetes/pkg/registry/autoscaling/horizontalpodautoscaler"
	"k8s.io/kubernetes/pkg/registry/batch/cronjob"
	"k8s.io/kubernetes/pkg/registry/core/configmap"
	"k8s.io/kubernetes/pkg/registry/core/namespace"
	"k8s.io/kubernetes/pkg/registry/core/secret"
	"k8s.io/kubernetes/pkg/registry/core/service"
	"k8s.io/kubernetes/pkg/registry/core/serviceaccount"
	"k8s.io/kubernetes/pkg/registry/policy/poddisruptionbudget"

	// CronJob validation loads spec.timeZone: the zone database travels in the binary, since
	// convoy's images have no /usr/share/zoneinfo.
	_ "time/tzdata"
)

// strategies are the registry create strategies of the kinds convoy renders.
var strategies = map[schema.GroupKind]rest.RESTCreateStrategy{
	{Kind: "Namespace"}:                                     namespace.Strategy,
	{Kind: "ServiceAccount"}:                                serviceaccount.Strategy,
	{Kind: "ConfigMap"}:                                     configmap.Strategy,
	{Kind: "Secret"}:                                        secret.Strategy,
	{Kind: "Service"}:                                       service.Strategy,
	{Group: "apps", Kind: "Deployment"}:                     deployment.Strategy,
	{Group: "batch", Kind: "CronJob"}:                       cronjob.Strategy,
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}: horizontalpodautoscaler.Strategy,
	{Group: "policy", Kind: "PodDisruptionBudget"}:          poddisruptionbudget.Strategy,
}

// Supports reports whether Create can check objects of this kind.
func Supports(gk schema.GroupKind) bool {
	_, ok := strategies[gk]
	return ok
}

// Create returns the error the API server would answer a create of obj with (an
// *apierrors.StatusError whose causes name the fields), or nil. obj must carry its
// apiVersion and kind; it is not changed. Admission (webhooks, policies) is not run: the
// service cluster's own admission still decides, and its refusal shows as Rejected.
func Create(obj runtime.Object) error {
	gvk := obj.GetObjectKind().GroupVersionKind()
	strategy, ok := strategies[gvk.GroupKind()]
	if !ok {
		return fmt.Errorf("validation: %s is not supported", gvk)
	}
	// The API server runs this path concurrently for its requests; only the copy is changed.
	versioned := obj.DeepCopyObject()
	legacyscheme.Scheme.Default(versioned)
	internal, err := legacyscheme.Scheme.ConvertToVersion(versioned, schema.GroupVersion{Group: gvk.Group, Version: runtime.APIVersionInternal})
	if err != nil {
		return fmt.Errorf("validation: converting %s: %w", gvk.Kind, err)
	}
	meta, ok := internal.(metav1.Object)
	if !ok {
		return fmt.Errorf("validation: %s has no object metadata", gvk.Kind)
	}
	rest.FillObjectMetaSystemFields(meta)
	ctx := genericapirequest.WithNamespace(context.Background(), meta.GetNamespace())
	ctx = genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{
		IsResourceRequest: true, Verb: "create", APIGroup: gvk.Group, APIVersion: gvk.Version, Namespace: meta.GetNamespace(),
	})
	err = rest.BeforeCreate(strategy, ctx, internal)
	if err != nil && !apierrors.IsInvalid(err) {
		// Anything but a validation failure is a problem of this check, not of the object.
		return fmt.Errorf("validation: checking %s %s: %w", gvk.Kind, meta.GetName(), err)
	}
	return err
}
