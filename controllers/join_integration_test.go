package controllers_test

import (
	"bytes"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/access"
	"github.com/convoy-dev/convoy/internal/join"
	"github.com/convoy-dev/convoy/internal/remote"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// `convoy join` against a real service cluster: the identity it creates can do what convoy
// needs in the namespaces convoy creates and nothing outside them, and convoy works end to
// end with it (apply, drift, status, cleanup); unjoin removes it again.
var _ = Describe("A cluster joined with least privilege", Ordered, func() {
	var (
		svc      *serviceCluster
		joined   client.Client // convoy's identity in the service cluster
		remoteNS string        // the Project's namespace in the service cluster
		project  *convoyv1.Project
		adminCfg *rest.Config
	)
	const name = "restricted"

	BeforeAll(func() {
		svc = startServiceCluster(name)
		adminCfg = svc.user.Config()
		// Nodes in one region and two zones, for join to discover.
		for i, zone := range []string{"eu-west-1a", "eu-west-1b"} {
			Expect(svc.client.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
				Name:   "node-" + string(rune('a'+i)),
				Labels: map[string]string{corev1.LabelTopologyRegion: "eu-west-1", corev1.LabelTopologyZone: zone},
			}})).To(Succeed())
		}
	})

	It("joins: dry-run writes nothing, the real run registers the cluster with the region and zones of its nodes", func() {
		var out bytes.Buffer
		_, err := join.Join(ctx, join.Options{Name: name, Service: adminCfg, Manager: k8sClient, Labels: map[string]string{"env": "restricted"}, DryRun: true, Out: &out})
		Expect(err).NotTo(HaveOccurred())
		Expect(out.String()).To(ContainSubstring("kind: ValidatingAdmissionPolicy"))
		Expect(out.String()).To(ContainSubstring("name: " + access.NamespaceClusterRole))
		Expect(svc.client.Get(ctx, client.ObjectKey{Name: access.Namespace}, &corev1.Namespace{})).To(Satisfy(apierrors.IsNotFound))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, &convoyv1.ServiceCluster{})).To(Satisfy(apierrors.IsNotFound))

		res, err := join.Join(ctx, join.Options{Name: name, Service: adminCfg, Manager: k8sClient, Labels: map[string]string{"env": "restricted"}, Out: &out})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.TokenIssued).To(BeTrue())
		Expect(res.Region).To(Equal("eu-west-1"))
		Expect(res.Zones).To(Equal([]string{"eu-west-1a", "eu-west-1b"}))
		Eventually(func(g Gomega) {
			g.Expect(clusterReady(g, name)).To(Equal(convoyv1.ReasonConnected))
		}, timeout, interval).Should(Succeed())

		// Idempotent: a second run keeps the token that still works.
		again, err := join.Join(ctx, join.Options{Name: name, Service: adminCfg, Manager: k8sClient, Labels: map[string]string{"env": "restricted"}, Out: &out})
		Expect(err).NotTo(HaveOccurred())
		Expect(again.TokenIssued).To(BeFalse())

		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "convoy-system", Name: name + "-kubeconfig"}, secret)).To(Succeed())
		cfg, err := remote.RESTConfigFromKubeconfig(secret.Data["kubeconfig"])
		Expect(err).NotTo(HaveOccurred(), "join writes a kubeconfig convoy accepts")
		joined, err = client.New(cfg, client.Options{Scheme: convoyscheme.New()})
		Expect(err).NotTo(HaveOccurred())
	})

	It("delivers a Project, binding convoy's role only in the namespace it created", func() {
		teamNS := newTestNamespace()
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: teamNS},
			StringData: map[string]string{"password": "s3cret"}})).To(Succeed())
		project = newProject(teamNS, selectNames(name), workload("api", "nginx:1.27", 2, true))
		project.Spec.Secrets = []convoyv1.ProjectSecret{{Name: "db"}}
		Expect(k8sClient.Create(ctx, project)).To(Succeed())
		remoteNS = project.RemoteNamespace()
		Eventually(func(g Gomega) {
			remoteDeployment(g, svc, remoteNS, "api")
			g.Expect(svc.client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "db"}, &corev1.Secret{})).To(Succeed())
			g.Expect(clusterStatus(g, project, name).Synced).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		rb := &rbacv1.RoleBinding{}
		Expect(svc.client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: access.RoleBindingName}, rb)).To(Succeed())
		Expect(rb.RoleRef.Name).To(Equal(access.NamespaceClusterRole))
		Expect(rb.Subjects).To(Equal([]rbacv1.Subject{access.Identity()}))
		expectNoWritesDuringResyncs(name, remoteNS)
	})

	It("can read and write in convoy's namespace and read nothing outside it", func() {
		Expect(joined.List(ctx, &corev1.SecretList{}, client.InNamespace(remoteNS))).To(Succeed())
		for _, ns := range []string{"default", "kube-system", ""} {
			Expect(joined.List(ctx, &corev1.SecretList{}, client.InNamespace(ns))).To(Satisfy(apierrors.IsForbidden), "secrets in %q", ns)
			Expect(joined.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns))).To(Satisfy(apierrors.IsForbidden), "configmaps in %q", ns)
		}
		// The API server's own answer for every kind convoy reads, outside its namespace.
		for _, res := range []string{"secrets", "configmaps", "pods", "services", "serviceaccounts"} {
			Expect(allowed(joined, "list", "", res, "default")).To(BeFalse(), res)
		}
		Expect(allowed(joined, "list", "apps", "deployments", "")).To(BeFalse(), "deployments cluster-wide")
		Expect(allowed(joined, "list", "apps", "deployments", remoteNS)).To(BeTrue())
		Expect(allowed(joined, "create", "", "secrets", remoteNS)).To(BeTrue())
	})

	It("cannot bind itself, or claim, change or delete a namespace, outside convoy's namespaces", func() {
		grant := access.RoleBinding("kube-system", access.Identity(), nil)
		err := joined.Create(ctx, grant)
		Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "binding in kube-system: %v", err)
		Expect(err.Error()).To(ContainSubstring("namespaces convoy created"))

		def := &corev1.Namespace{}
		Expect(joined.Get(ctx, client.ObjectKey{Name: "default"}, def)).To(Succeed())
		def.Labels[convoyv1.ManagedByLabel] = convoyv1.ManagedByValue
		err = joined.Update(ctx, def)
		Expect(err).To(HaveOccurred(), "labelling default as convoy's")
		Expect(err.Error()).To(ContainSubstring("only namespaces convoy created"))
		Expect(joined.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}})).NotTo(Succeed())

		// Even in its own namespace it may bind only its own role, to itself.
		other := access.RoleBinding(remoteNS, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "default"}, nil)
		other.Name = "escalate"
		Expect(joined.Create(ctx, other)).NotTo(Succeed())
		admin := access.RoleBinding(remoteNS, access.Identity(), nil)
		admin.Name, admin.RoleRef.Name = "admin", "cluster-admin"
		Expect(joined.Create(ctx, admin)).To(Satisfy(apierrors.IsForbidden))
	})

	It("binds again when someone deletes its RoleBinding, and repairs drift", func() {
		Expect(svc.client.Delete(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: remoteNS, Name: access.RoleBindingName}})).To(Succeed())
		Eventually(func() error {
			return svc.client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: access.RoleBindingName}, &rbacv1.RoleBinding{})
		}, timeout, interval).Should(Succeed())
		Expect(scaleDeployment(svc, remoteNS, "api", 7)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(*remoteDeployment(g, svc, remoteNS, "api").Spec.Replicas).To(Equal(int32(2)))
		}, timeout, interval).Should(Succeed())
	})

	It("prunes what the Project no longer wants and delivers kinds it did not have", func() {
		Eventually(func(g Gomega) {
			p := getProject(g, project)
			p.Spec.Workloads[0].Ports = nil
			p.Spec.ConfigMaps = []convoyv1.ProjectConfigMap{{Name: "settings", Data: map[string]string{"LOG": "info"}}}
			g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(svc.client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "settings"}, &corev1.ConfigMap{})).To(Succeed())
			g.Expect(gone(g, svc, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: remoteNS, Name: "api"}})).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		// A remote edit of the new kind is repaired: its cache watches it now.
		cm := &corev1.ConfigMap{}
		Expect(svc.client.Get(ctx, client.ObjectKey{Namespace: remoteNS, Name: "settings"}, cm)).To(Succeed())
		cm.Data["LOG"] = "debug"
		Expect(svc.client.Update(ctx, cm)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(svc.client.Get(ctx, client.ObjectKeyFromObject(cm), cm)).To(Succeed())
			g.Expect(cm.Data["LOG"]).To(Equal("info"))
		}, timeout, interval).Should(Succeed())
	})

	It("reconnects with a rotated token and opens convoy's namespaces again", func() {
		before := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "convoy-system", Name: name + "-kubeconfig"}, before)).To(Succeed())
		res, err := join.Join(ctx, join.Options{Name: name, Service: adminCfg, Manager: k8sClient, Labels: map[string]string{"env": "restricted"},
			RotateToken: true, Out: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.TokenIssued).To(BeTrue())
		// The new kubeconfig replaces the connection; its caches of the namespace must work.
		Eventually(func(g Gomega) {
			g.Expect(clusterReady(g, name)).To(Equal(convoyv1.ReasonConnected))
		}, timeout, interval).Should(Succeed())
		Expect(scaleDeployment(svc, remoteNS, "api", 5)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(*remoteDeployment(g, svc, remoteNS, "api").Spec.Replicas).To(Equal(int32(2)))
		}, timeout, interval).Should(Succeed())
		expectNoWritesDuringResyncs(name, remoteNS)
	})

	It("removes everything when the Project goes; unjoin waits for the ServiceCluster, then removes the identity", func() {
		Expect(k8sClient.Delete(ctx, project)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(gone(g, svc, remoteNamespace(remoteNS))).To(BeTrue())
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(project), &convoyv1.Project{})).To(Satisfy(apierrors.IsNotFound))
		}, timeout, interval).Should(Succeed())

		var out bytes.Buffer
		opts := join.UnjoinOptions{Name: name, Service: adminCfg, Manager: k8sClient, Out: &out}
		Expect(join.Unjoin(ctx, opts)).To(MatchError(ContainSubstring("still exists")))

		Expect(k8sClient.Delete(ctx, &convoyv1.ServiceCluster{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Name: name}, &convoyv1.ServiceCluster{})
		}, timeout, interval).Should(Satisfy(apierrors.IsNotFound))
		Expect(join.Unjoin(ctx, opts)).To(Succeed())
		Expect(svc.client.Get(ctx, client.ObjectKey{Name: access.ClusterRole}, &rbacv1.ClusterRole{})).To(Satisfy(apierrors.IsNotFound))
		Expect(svc.client.Get(ctx, client.ObjectKey{Namespace: access.Namespace, Name: access.ServiceAccount}, &corev1.ServiceAccount{})).
			To(Satisfy(apierrors.IsNotFound))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "convoy-system", Name: name + "-kubeconfig"}, &corev1.Secret{})).
			To(Satisfy(apierrors.IsNotFound))
		Eventually(func() error { // the token dies with its ServiceAccount
			return joined.List(ctx, &corev1.SecretList{}, client.InNamespace(remoteNS))
		}, 10*time.Second, interval).Should(Satisfy(apierrors.IsUnauthorized))
	})
})

// allowed asks the API server whether c's identity may do verb on resource in namespace.
func allowed(c client.Client, verb, group, resource, namespace string) bool {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: namespace},
	}}
	Expect(c.Create(ctx, review)).To(Succeed())
	return review.Status.Allowed
}
