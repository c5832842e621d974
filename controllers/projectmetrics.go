package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

var projectsDesc = prometheus.NewDesc("convoy_projects",
	"Projects by state: ready (Ready=True), stalled (Stalled=True: needs a person), reconciling (anything else).",
	[]string{"state"}, nil)

// projectCollector counts Projects by state from the manager's cache at each scrape, so the
// numbers are never older than the cache and cost nothing between scrapes.
type projectCollector struct{ reader client.Reader }

func (c projectCollector) Describe(ch chan<- *prometheus.Desc) { ch <- projectsDesc }

func (c projectCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list convoyv1.ProjectList
	if err := c.reader.List(ctx, &list); err != nil {
		ch <- prometheus.NewInvalidMetric(projectsDesc, err)
		return
	}
	counts := map[string]float64{"ready": 0, "stalled": 0, "reconciling": 0}
	for i := range list.Items {
		counts[projectState(list.Items[i].Status.Conditions)]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(projectsDesc, prometheus.GaugeValue, n, state)
	}
}

func projectState(conds []metav1.Condition) string {
	switch {
	case meta.IsStatusConditionTrue(conds, convoyv1.ReadyCondition):
		return "ready"
	case meta.IsStatusConditionTrue(conds, convoyv1.StalledCondition):
		return "stalled"
	}
	return "reconciling"
}
