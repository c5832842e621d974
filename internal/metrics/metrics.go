// Package metrics defines convoy's Prometheus metrics. They are registered with
// controller-runtime's registry, so they are served next to its workqueue and reconcile
// metrics on the manager's metrics endpoint. Every per-cluster series carries the
// ServiceCluster's name as the label cluster.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// RemoteWrites counts objects convoy created, updated or deleted in service clusters.
	RemoteWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "convoy_remote_writes_total",
		Help: "Objects convoy created, updated or deleted in a service cluster, by cluster, kind and operation (create, update, delete).",
	}, []string{"cluster", "kind", "operation"})

	// RemoteWriteFailures counts writes a service cluster did not take.
	RemoteWriteFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "convoy_remote_write_failures_total",
		Help: "Writes to a service cluster that failed, by cluster, kind and reason (conflict: the object is not convoy's; rejected: the API server refused it; error: anything else, retried).",
	}, []string{"cluster", "kind", "reason"})

	// RemoteRequestDuration is the latency of convoy's requests to service clusters (watches
	// excluded: they stay open).
	RemoteRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "convoy_remote_request_duration_seconds",
		Help:    "Latency of requests to a service cluster's API server, watches excluded, by cluster and HTTP method.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"cluster", "method"})

	// Propagation is the time from convoy queuing a change for a cluster to the cluster
	// holding it.
	Propagation = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "convoy_propagation_seconds",
		Help:    "Time from a changed Project (or policy, Secret, cluster) being queued for a service cluster to all its objects applied there, by cluster.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120, 300},
	}, []string{"cluster"})

	// ClusterReady is 1 while a ServiceCluster is Ready.
	ClusterReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "convoy_cluster_ready",
		Help: "1 while the ServiceCluster is Ready (connected, identity verified), else 0, by cluster.",
	}, []string{"cluster"})

	// ClusterLastContact is when convoy last reached a cluster; time() minus it is the age.
	ClusterLastContact = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "convoy_cluster_last_contact_timestamp_seconds",
		Help: "Unix time of the last successful health probe of a service cluster, by cluster.",
	}, []string{"cluster"})

	// Rollouts counts finished rollouts of Project revisions by result: complete, halted,
	// rolled_back. Their sum is the deployment count; halted+rolled_back over it the failure
	// rate.
	Rollouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "convoy_rollouts_total",
		Help: "Rollouts of Project revisions that finished, by result (complete, halted, rolled_back).",
	}, []string{"result"})

	// RolloutDuration is the time from a revision's rollout starting to its end.
	RolloutDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "convoy_rollout_duration_seconds",
		Help:    "Time from the start of a Project revision's rollout to its completion, halt or rollback, by result.",
		Buckets: []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400},
	}, []string{"result"})

	// WaveFailures counts failed waves by wave name (the strategy's names, a small set).
	WaveFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "convoy_rollout_wave_failures_total",
		Help: "Rollout waves that failed (a workload failed, an object was rejected or a health gate was breached), by wave name.",
	}, []string{"wave"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(RemoteWrites, RemoteWriteFailures, RemoteRequestDuration, Propagation, ClusterReady, ClusterLastContact,
		Rollouts, RolloutDuration, WaveFailures)
}

// ForgetCluster removes a deleted cluster's series.
func ForgetCluster(cluster string) {
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{RemoteWrites, RemoteWriteFailures, RemoteRequestDuration, Propagation, ClusterReady, ClusterLastContact} {
		v.DeletePartialMatch(prometheus.Labels{"cluster": cluster})
	}
}
