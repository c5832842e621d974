// Package scheme builds the runtime.Scheme shared by the manager and remote clients.
package scheme

import (
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// New returns a scheme with Kubernetes' built-in types, convoy's API and Istio's networking API.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(convoyv1.AddToScheme(s))
	utilruntime.Must(networkingv1.AddToScheme(s))
	utilruntime.Must(networkingv1beta1.AddToScheme(s))
	return s
}
