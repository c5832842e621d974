//go:build e2e

package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The manager's metrics, scraped as Prometheus would: over HTTPS, with a ServiceAccount token
// that the manager cluster authorizes for GET /metrics.
var _ = Describe("Metrics of the fleet's convoy manager", Ordered, func() {
	var url string
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the manager's self-signed certificate

	tokenFor := func(ns, name string) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		Expect(manager.Create(ctx, sa)).To(Succeed())
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
		Expect(manager.SubResource("token").Create(ctx, sa, req)).To(Succeed())
		return req.Status.Token
	}
	get := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		Expect(err).NotTo(HaveOccurred())
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := insecure.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		return resp.StatusCode, string(body)
	}

	var reader, stranger string
	BeforeAll(func() {
		var err error
		url, err = f.MetricsURL()
		Expect(err).NotTo(HaveOccurred())
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-metrics-"}}
		Expect(manager.Create(ctx, ns)).To(Succeed())
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns.Name + "-reader"},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		Expect(manager.Create(ctx, role)).To(Succeed())
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns.Name + "-reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns.Name, Name: "prometheus"}}}
		Expect(manager.Create(ctx, binding)).To(Succeed())
		DeferCleanup(func() {
			for _, o := range []client.Object{binding, role, ns} {
				Expect(client.IgnoreNotFound(manager.Delete(ctx, o))).To(Succeed())
			}
		})
		reader, stranger = tokenFor(ns.Name, "prometheus"), tokenFor(ns.Name, "stranger")
	})

	It("refuses anonymous and unauthorized scrapes", func() {
		code, _ := get("")
		Expect(code).To(Equal(http.StatusUnauthorized))
		code, _ = get(stranger)
		Expect(code).To(Equal(http.StatusForbidden))
	})

	It("serves convoy's per-cluster metrics to an authorized identity", func() {
		Eventually(func(g Gomega) {
			code, body := get(reader)
			g.Expect(code).To(Equal(http.StatusOK))
			for _, c := range clusters {
				g.Expect(body).To(ContainSubstring(`convoy_cluster_ready{cluster="` + c + `"} 1`))
				g.Expect(body).To(ContainSubstring(`convoy_remote_writes_total{cluster="` + c + `",kind="Deployment",operation="create"}`))
				g.Expect(body).To(ContainSubstring(`convoy_propagation_seconds_count{cluster="` + c + `"}`))
			}
			g.Expect(strings.Count(body, "workqueue_depth{")).To(BeNumerically(">", 0))
		}).Should(Succeed())
	})
})
