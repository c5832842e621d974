package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// Every istiod locality rule that Istio's CRD schema leaves out, checked by the real API
// server: each rejection must name the field and the rule.
var _ = Describe("LocalityLoadBalancing admission", func() {
	var ns string
	BeforeEach(func() { ns = newTestNamespace() })

	llb := func(spec convoyv1.LocalityLoadBalancingSpec) *convoyv1.LocalityLoadBalancing {
		return &convoyv1.LocalityLoadBalancing{
			ObjectMeta: metav1.ObjectMeta{Name: uniqueName("llb"), Namespace: ns},
			Spec:       spec,
		}
	}
	od := &convoyv1.OutlierDetection{}
	to := func(pairs ...any) []convoyv1.LocalityWeight {
		var out []convoyv1.LocalityWeight
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, convoyv1.LocalityWeight{Locality: convoyv1.Locality(pairs[i].(string)), Weight: int32(pairs[i+1].(int))})
		}
		return out
	}

	It("accepts the default (region failover) with outlier detection and fills in defaults", func() {
		p := llb(convoyv1.LocalityLoadBalancingSpec{OutlierDetection: &convoyv1.OutlierDetection{}})
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		Expect(*p.Spec.OutlierDetection.Consecutive5xxErrors).To(Equal(int32(5)))
		Expect(p.Spec.OutlierDetection.MaxEjectionPercent).To(Equal(int32(100)))
		Expect(p.Spec.OutlierDetection.Interval.Duration).To(Equal(10 * time.Second))
		Expect(p.Spec.OutlierDetection.BaseEjectionTime.Duration).To(Equal(30 * time.Second))
		Expect(p.Spec.ZoneSpread.IsEnabled()).To(BeTrue())
		Expect(p.Spec.ZoneSpread.MaxSkew).To(Equal(int32(1)))
		Expect(string(p.Spec.ZoneSpread.WhenUnsatisfiable)).To(Equal("DoNotSchedule"))
	})

	DescribeTable("accepts",
		func(spec convoyv1.LocalityLoadBalancingSpec) {
			Expect(k8sClient.Create(ctx, llb(spec))).To(Succeed())
		},
		Entry("distribute without outlier detection", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "ap-northeast-2/ap-northeast-2a/*", To: to("ap-northeast-2/ap-northeast-2a/*", 80, "ap-northeast-2/ap-northeast-2b/*", 20)},
			{From: "ap-northeast-2/ap-northeast-2b", To: to("ap-northeast-2/*", 100)},
		}}),
		Entry("disjoint zones of one region and a wildcard-only entry", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "*", To: to("r1/z1", 50, "r1/z2", 25, "r2", 25)},
		}}),
		Entry("failover with non-topology failoverPriority labels", convoyv1.LocalityLoadBalancingSpec{
			Failover:         []convoyv1.RegionFailover{{From: "ap-northeast-2", To: "ap-northeast-1"}},
			FailoverPriority: []string{"topology.istio.io/network"},
			OutlierDetection: od,
		}),
		Entry("distribute with failoverPriority and outlier detection (istiod allows it)", convoyv1.LocalityLoadBalancingSpec{
			Distribute:       []convoyv1.LocalityDistribution{{From: "r1", To: to("r1", 100)}},
			FailoverPriority: []string{"topology.kubernetes.io/zone"},
			OutlierDetection: od,
		}),
		Entry("failoverPriority by region then zone", convoyv1.LocalityLoadBalancingSpec{
			FailoverPriority: []string{"topology.kubernetes.io/region", "topology.kubernetes.io/zone"},
			OutlierDetection: od,
		}),
	)

	DescribeTable("rejects",
		func(spec convoyv1.LocalityLoadBalancingSpec, wantField, wantRule string) {
			err := k8sClient.Create(ctx, llb(spec))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(wantField))
			Expect(err.Error()).To(ContainSubstring(wantRule))
		},
		Entry("distribute and failover together", convoyv1.LocalityLoadBalancingSpec{
			Distribute:       []convoyv1.LocalityDistribution{{From: "r1", To: to("r1", 100)}},
			Failover:         []convoyv1.RegionFailover{{From: "r1", To: "r2"}},
			OutlierDetection: od,
		}, "spec", "distribute and failover cannot be set together"),
		Entry("failover with the region key in failoverPriority", convoyv1.LocalityLoadBalancingSpec{
			Failover:         []convoyv1.RegionFailover{{From: "r1", To: "r2"}},
			FailoverPriority: []string{"topology.kubernetes.io/region"},
			OutlierDetection: od,
		}, "spec.failoverPriority", "must not list topology.kubernetes.io/region"),
		Entry("failover with the subzone key in failoverPriority", convoyv1.LocalityLoadBalancingSpec{
			Failover:         []convoyv1.RegionFailover{{From: "r1", To: "r2"}},
			FailoverPriority: []string{"topology.istio.io/network", "topology.istio.io/subzone"},
			OutlierDetection: od,
		}, "spec.failoverPriority", "when failover is set"),
		Entry("a weight of 0", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1", To: to("r1", 100, "r2", 0)},
		}}, "spec.distribute[0].to[1].weight", "greater than or equal to 1"),
		Entry("a weight above 100", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1", To: to("r1", 101)},
		}}, "spec.distribute[0].to[0].weight", "less than or equal to 100"),
		Entry("weights not adding up to 100", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1", To: to("r1/z1", 60, "r1/z2", 30)},
		}}, "spec.distribute[0].to", "the weights in to must add up to 100"),
		Entry("a wildcard that is not last", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "*/z1", To: to("r1", 100)},
		}}, "spec.distribute[0].from", "the wildcard '*' may appear once, as the whole last part"),
		Entry("two wildcards", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1", To: to("r1/*/*", 100)},
		}}, "spec.distribute[0].to[0].locality", "the wildcard '*' may appear once"),
		Entry("a partial wildcard", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1/z*", To: to("r1", 100)},
		}}, "spec.distribute[0].from", "as the whole last part"),
		Entry("an empty locality part", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1//s1", To: to("r1", 100)},
		}}, "spec.distribute[0].from", "must not have empty parts"),
		Entry("four locality parts", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1", To: to("r1/z1/s1/x", 100)},
		}}, "spec.distribute[0].to[0].locality", "at most three parts"),
		Entry("overlapping from localities (region and its zone)", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1", To: to("r1", 100)},
			{From: "r1/z1", To: to("r1/z1", 100)},
		}}, "spec.distribute", "from localities in distribute must not overlap"),
		Entry("overlapping from localities (r/* and r)", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1/z1", To: to("r1", 100)},
			{From: "r1/*", To: to("r1", 100)},
		}}, "spec.distribute", "must not overlap"),
		Entry("a '*' from next to another from", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r2", To: to("r2", 100)},
			{From: "*", To: to("r1", 100)},
		}}, "spec.distribute", "must not overlap"),
		Entry("overlapping destination localities", convoyv1.LocalityLoadBalancingSpec{Distribute: []convoyv1.LocalityDistribution{
			{From: "r1", To: to("r1/z1/*", 50, "r1/z1/s1", 50)},
		}}, "spec.distribute[0].to", "destination localities in to must not overlap"),
		Entry("a failover to the same region", convoyv1.LocalityLoadBalancingSpec{
			Failover: []convoyv1.RegionFailover{{From: "r1", To: "r1"}}, OutlierDetection: od,
		}, "spec.failover[0]", "from and to must be different regions"),
		Entry("a failover naming a zone", convoyv1.LocalityLoadBalancingSpec{
			Failover: []convoyv1.RegionFailover{{From: "r1/z1", To: "r2"}}, OutlierDetection: od,
		}, "spec.failover[0].from", "failover works on regions: no '/' (zones)"),
		Entry("a failover with a wildcard", convoyv1.LocalityLoadBalancingSpec{
			Failover: []convoyv1.RegionFailover{{From: "r1", To: "*"}}, OutlierDetection: od,
		}, "spec.failover[0].to", "no '*' wildcard"),
		Entry("failover without outlier detection", convoyv1.LocalityLoadBalancingSpec{
			Failover: []convoyv1.RegionFailover{{From: "r1", To: "r2"}},
		}, "spec.outlierDetection", "outlierDetection is required with failover"),
		Entry("failoverPriority without outlier detection", convoyv1.LocalityLoadBalancingSpec{
			FailoverPriority: []string{"topology.kubernetes.io/zone"},
		}, "spec.outlierDetection", "traffic never fails over"),
		Entry("the default region failover without outlier detection", convoyv1.LocalityLoadBalancingSpec{},
			"spec.outlierDetection", "the default region failover"),
		Entry("an outlier detection interval below 1ms", convoyv1.LocalityLoadBalancingSpec{
			OutlierDetection: &convoyv1.OutlierDetection{Interval: &metav1.Duration{Duration: time.Microsecond}},
		}, "spec.outlierDetection.interval", "must be at least 1ms"),
		Entry("a zone spread maxSkew of 0", convoyv1.LocalityLoadBalancingSpec{
			OutlierDetection: od, ZoneSpread: convoyv1.ZoneSpread{MaxSkew: -1},
		}, "spec.zoneSpread.maxSkew", "greater than or equal to 1"),
	)
})
