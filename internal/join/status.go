package join

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// Status writes the fleet at a glance: every ServiceCluster with its health and last
// contact, then every Project (or the one named, "namespace/name") with its state in each
// cluster and why.
func Status(ctx context.Context, manager client.Reader, project string, now time.Time, out io.Writer) error {
	clusters := &convoyv1.ServiceClusterList{}
	if err := manager.List(ctx, clusters); err != nil {
		return fmt.Errorf("listing ServiceClusters: %w", err)
	}
	projects := &convoyv1.ProjectList{}
	if err := manager.List(ctx, projects); err != nil {
		return fmt.Errorf("listing Projects: %w", err)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if project == "" {
		fmt.Fprintln(w, "CLUSTER\tREGION\tACCESS\tREADY\tREASON\tLAST CONTACT\tMESSAGE")
		for _, sc := range clusters.Items {
			ready := meta.FindStatusCondition(sc.Status.Conditions, convoyv1.ReadyCondition)
			state, reason, message := "Unknown", "", ""
			if ready != nil {
				state, reason, message = string(ready.Status), ready.Reason, ready.Message
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sc.Name, dash(sc.Spec.Region), dash(string(sc.Spec.AccessScope)), state, reason,
				ago(sc.Status.LastContactTime, now), shorten(message, 80))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "PROJECT\tCLUSTER\tSTATE\tWORKLOADS\tMESSAGE")
	found := false
	for _, p := range projects.Items {
		id := p.Namespace + "/" + p.Name
		if project != "" && project != id {
			continue
		}
		found = true
		ready := meta.FindStatusCondition(p.Status.Conditions, convoyv1.ReadyCondition)
		state, message := "Unknown", ""
		if ready != nil {
			state, message = ready.Reason, ready.Message
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", id, "*", state, dash(p.Status.ReadyClusters), shorten(message, 80))
		for _, c := range p.Status.Clusters {
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\n", c.Name, c.Reason, workloads(c.Workloads), shorten(c.Message, 80))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if project != "" && !found {
		return fmt.Errorf("no Project %s (give it as namespace/name)", project)
	}
	return nil
}

// workloads summarises available replicas per workload, e.g. "api 3/3, worker 1/2".
func workloads(ws []convoyv1.WorkloadStatus) string {
	var parts []string
	for _, w := range ws {
		if w.Kind == "CronJob" {
			parts = append(parts, w.Name+" (cron)")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d", w.Name, w.AvailableReplicas, w.Replicas))
	}
	return dash(strings.Join(parts, ", "))
}

func ago(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return duration.HumanDuration(now.Sub(t.Time)) + " ago"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
