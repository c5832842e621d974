package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

var _ = Describe("GracefulShutdownPolicy admission", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	policy := func(mutate func(*convoyv1.GracefulShutdownPolicySpec)) *convoyv1.GracefulShutdownPolicy {
		p := &convoyv1.GracefulShutdownPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("gsp"), Namespace: ns},
			Spec: convoyv1.GracefulShutdownPolicySpec{
				PreStop: convoyv1.PreStop{DrainConnections: &convoyv1.DrainConnectionsPreStop{Ports: []int32{8080}, TimeoutSeconds: 30}},
				ConnectionPool: &convoyv1.ConnectionTuning{
					IdleTimeout:    dur(50 * time.Second),
					AppIdleTimeout: dur(60 * time.Second),
					TCPKeepalive:   &convoyv1.TCPKeepalive{Time: metav1.Duration{Duration: 300 * time.Second}, Interval: metav1.Duration{Duration: 75 * time.Second}, Probes: 9},
				},
			},
		}
		if mutate != nil {
			mutate(&p.Spec)
		}
		return p
	}

	It("accepts a valid policy and fills in defaults", func() {
		p := policy(nil)
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		Expect(p.Spec.AppShutdownSeconds).To(Equal(int32(10)))
		Expect(p.Spec.SafetyMarginSeconds).To(Equal(int32(5)))
		Expect(p.Spec.PreStop.DrainConnections.MinDelaySeconds).To(Equal(int32(5)))
		Expect(p.Spec.PreStop.DrainConnections.SettleSeconds).To(Equal(int32(2)))
		Expect(p.Spec.PreStop.DrainConnections.IdleThresholdSeconds).To(Equal(ptr.To[int32](2)))
		Expect(p.Spec.Sidecar.Mode).To(Equal(convoyv1.SidecarAuto))
		Expect(p.Spec.Sidecar.DrainStrategy).To(Equal(convoyv1.DrainForDuration))
	})

	It("accepts HTTP drain paths that are valid URL paths, with a query and percent-encoding", func() {
		for _, path := range []string{"/drain", "/", "/admin/drain?grace=5s&force=false", "/a%20b/~user/x.y-z_(1)", "/drain:now@v1"} {
			Expect(k8sClient.Create(ctx, policy(func(s *convoyv1.GracefulShutdownPolicySpec) {
				s.PreStop = convoyv1.PreStop{HTTPGet: &convoyv1.HTTPGetPreStop{DrainEndpoint: convoyv1.DrainEndpoint{Path: path, Port: 8080}, WaitSeconds: 5}}
			}))).To(Succeed(), path)
		}
	})

	It("accepts a grace period that exactly covers the budget", func() {
		Expect(k8sClient.Create(ctx, policy(func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.TerminationGracePeriodSeconds = ptr.To[int64](45) // 30 + 10 + 5
		}))).To(Succeed())
	})

	DescribeTable("rejects",
		func(mutate func(*convoyv1.GracefulShutdownPolicySpec), wantField, wantRule string) {
			err := k8sClient.Create(ctx, policy(mutate))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(wantField))
			Expect(err.Error()).To(ContainSubstring(wantRule))
		},
		Entry("a grace period below PreStop budget + app shutdown + margin", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.TerminationGracePeriodSeconds = ptr.To[int64](30)
		}, "spec.terminationGracePeriodSeconds", "terminationGracePeriodSeconds (30) must cover the PreStop budget (30s) + appShutdownSeconds (10s) + safetyMarginSeconds (5s) = 45s"),
		Entry("an HTTP drain whose call and wait exceed the grace period", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop = convoyv1.PreStop{HTTPGet: &convoyv1.HTTPGetPreStop{DrainEndpoint: convoyv1.DrainEndpoint{Path: "/drain", Port: 8080, TimeoutSeconds: 5}, WaitSeconds: 20}}
			s.TerminationGracePeriodSeconds = ptr.To[int64](35)
		}, "spec.terminationGracePeriodSeconds", "PreStop budget (25s)"),
		Entry("two PreStop actions", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop.Sleep = &convoyv1.SleepPreStop{Seconds: 5}
		}, "spec.preStop", "set exactly one of sleep, drainConnections, httpGet"),
		Entry("no PreStop action", func(s *convoyv1.GracefulShutdownPolicySpec) { s.PreStop = convoyv1.PreStop{} },
			"spec.preStop", "set exactly one of sleep, drainConnections, httpGet"),
		Entry("a minimum delay longer than the timeout", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop.DrainConnections.MinDelaySeconds = 40
		}, "spec.preStop.drainConnections", "minDelaySeconds must not exceed timeoutSeconds"),
		Entry("drainConnections without ports", func(s *convoyv1.GracefulShutdownPolicySpec) { s.PreStop.DrainConnections.Ports = nil },
			"spec.preStop.drainConnections.ports", "Required value"),
		Entry("a port out of range", func(s *convoyv1.GracefulShutdownPolicySpec) { s.PreStop.DrainConnections.Ports = []int32{70000} },
			"spec.preStop.drainConnections.ports[0]", "should be less than or equal to 65535"),
		Entry("an HTTP drain path without a leading slash", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop = convoyv1.PreStop{HTTPGet: &convoyv1.HTTPGetPreStop{DrainEndpoint: convoyv1.DrainEndpoint{Path: "drain", Port: 8080}, WaitSeconds: 5}}
		}, "spec.preStop.httpGet.path", "path must be an absolute URL path"),
		Entry("an HTTP drain path with a stray %", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop = convoyv1.PreStop{HTTPGet: &convoyv1.HTTPGetPreStop{DrainEndpoint: convoyv1.DrainEndpoint{Path: "/drain%zz", Port: 8080}, WaitSeconds: 5}}
		}, "spec.preStop.httpGet.path", "a stray '%', a space or a tab is not valid"),
		Entry("an HTTP drain path with a tab", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop = convoyv1.PreStop{HTTPGet: &convoyv1.HTTPGetPreStop{DrainEndpoint: convoyv1.DrainEndpoint{Path: "/drain\tnow", Port: 8080}, WaitSeconds: 5}}
		}, "spec.preStop.httpGet.path", "path must be an absolute URL path"),
		Entry("a drain endpoint path with a space", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop.DrainConnections.DrainEndpoint = &convoyv1.DrainEndpoint{Path: "/drain now", Port: 8080}
		}, "spec.preStop.drainConnections.drainEndpoint.path", "path must be an absolute URL path"),
		Entry("a settle period as long as the timeout", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.PreStop.DrainConnections.SettleSeconds = 30
		}, "spec.preStop.drainConnections", "settleSeconds must be less than timeoutSeconds"),
		Entry("an Envoy idle timeout not below the application's", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.ConnectionPool.IdleTimeout = dur(60 * time.Second)
		}, "spec.connectionPool", "idleTimeout must be below appIdleTimeout"),
		Entry("a sub-millisecond idle timeout", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.ConnectionPool.IdleTimeout = dur(500 * time.Microsecond)
		}, "spec.connectionPool.idleTimeout", "should match"),
		Entry("a zero keepalive interval", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.ConnectionPool.TCPKeepalive.Interval = metav1.Duration{}
		}, "spec.connectionPool.tcpKeepalive.interval", "must be at least 1ms"),
		Entry("zero keepalive probes", func(s *convoyv1.GracefulShutdownPolicySpec) {
			s.ConnectionPool.TCPKeepalive.Probes = 0
		}, "spec.connectionPool.tcpKeepalive.probes", "should be greater than or equal to 1"),
		Entry("an unknown sidecar mode", func(s *convoyv1.GracefulShutdownPolicySpec) { s.Sidecar.Mode = "Sometimes" },
			"spec.sidecar.mode", "Unsupported value"),
	)
})
