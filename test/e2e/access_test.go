//go:build e2e

package e2e

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/access"
	"github.com/convoy-dev/convoy/internal/remote"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// The fleet registers its clusters with `convoy join`: convoy runs there with the identity
// join created, which reads nothing outside the namespaces convoy created.
var _ = Describe("The fleet's joined service clusters", func() {
	It("run convoy with a least-privilege identity", func() {
		for _, name := range clusters {
			sc := &convoyv1.ServiceCluster{}
			Expect(manager.Get(ctx, client.ObjectKey{Name: name}, sc)).To(Succeed())
			Expect(sc.Spec.AccessScope).To(Equal(convoyv1.AccessScopeManagedNamespaces), name)
			secret := &corev1.Secret{}
			Expect(manager.Get(ctx, client.ObjectKey{Namespace: sc.Spec.KubeconfigSecretRef.Namespace, Name: sc.Spec.KubeconfigSecretRef.Name}, secret)).To(Succeed())
			cfg, err := remote.RESTConfigFromKubeconfig(secret.Data[convoyv1.DefaultKubeconfigKey])
			Expect(err).NotTo(HaveOccurred())
			joined, err := client.New(cfg, client.Options{Scheme: convoyscheme.New()})
			Expect(err).NotTo(HaveOccurred())

			// The sample Project's namespace is convoy's: bound, readable.
			Expect(joined.Get(ctx, client.ObjectKey{Namespace: "shop", Name: access.RoleBindingName}, &rbacv1.RoleBinding{})).To(Succeed(), name)
			Expect(joined.List(ctx, &corev1.SecretList{}, client.InNamespace("shop"))).To(Succeed(), name)
			for _, ns := range []string{"kube-system", "default", ""} {
				Expect(joined.List(ctx, &corev1.SecretList{}, client.InNamespace(ns))).To(Satisfy(apierrors.IsForbidden), "%s: secrets in %q", name, ns)
			}
		}
	})
})
