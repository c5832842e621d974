package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// RolloutStrategy rules checked by the real API server: each refusal names the field and the rule.
var _ = Describe("RolloutStrategy admission", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	strategy := func(spec convoyv1.RolloutStrategySpec) *convoyv1.RolloutStrategy {
		return &convoyv1.RolloutStrategy{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("rs"), Namespace: ns}, Spec: spec}
	}
	canary := convoyv1.RolloutWave{Name: "canary", Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}}}
	gate := func(address string) []convoyv1.HealthGate {
		return []convoyv1.HealthGate{{Name: "errors", Prometheus: convoyv1.PrometheusGate{Address: address, Query: "vector(0)", Max: resource.MustParse("0.01")}}}
	}

	It("accepts waves ending in one without clusters, and defaults rollback to Manual", func() {
		s := strategy(convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{canary, {Name: "rest"}}, Gates: gate("https://prometheus.monitoring:9090")})
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		Expect(s.Spec.Rollback).To(Equal(convoyv1.RollbackManual))
	})

	DescribeTable("refuses",
		func(spec convoyv1.RolloutStrategySpec, message string) {
			err := k8sClient.Create(ctx, strategy(spec))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("no waves", convoyv1.RolloutStrategySpec{}, "spec.waves"),
		Entry("a wave without clusters before the last", convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{{Name: "all"}, canary}},
			"only the last wave may leave clusters unset"),
		Entry("a wave named rest with clusters", convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{{Name: "rest", Clusters: canary.Clusters}}},
			"the name rest is reserved"),
		Entry("two waves with one name", convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{canary, canary}}, "Duplicate value"),
		Entry("maxConcurrent 0", convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{{Name: "all", MaxConcurrent: new(int32)}}},
			"spec.waves[0].maxConcurrent"),
		Entry("a negative soak time", convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{{Name: "all", SoakTime: &metav1.Duration{Duration: -time.Minute}}}},
			"soakTime must not be negative"),
		Entry("an unknown rollback", convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{canary}, Rollback: "Sometimes"}, "spec.rollback"),
		Entry("a gate address that is not an http URL", convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{canary}, Gates: gate("ftp://prometheus")},
			"address must be an http or https URL"),
	)
})
