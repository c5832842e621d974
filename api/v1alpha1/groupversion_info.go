// Package v1alpha1 contains the convoy.dev/v1alpha1 API: ServiceCluster and Project.
//
// +kubebuilder:object:generate=true
// +groupName=convoy.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of convoy's API.
	GroupVersion = schema.GroupVersion{Group: "convoy.dev", Version: "v1alpha1"}

	// SchemeBuilder registers convoy's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds convoy's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
