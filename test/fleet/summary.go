package fleet

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// Summary prints, for each cluster of a Project, what convoy made of it there: workloads
// ready/desired, where their pods run, the PreStop hook and grace period, and how traffic
// stays local.
func Summary(ctx context.Context, f *Fleet, w io.Writer, key client.ObjectKey) error {
	mgr, err := f.Manager()
	if err != nil {
		return err
	}
	project := &convoyv1.Project{}
	if err := mgr.Get(ctx, key, project); err != nil {
		return err
	}
	ready := meta.FindStatusCondition(project.Status.Conditions, convoyv1.ReadyCondition)
	state := "Unknown"
	if ready != nil {
		state = fmt.Sprintf("%s (%s)", ready.Status, ready.Reason)
	}
	fmt.Fprintf(w, "Project %s  Ready=%s  clusters ready %s\n\n", key, state, project.Status.ReadyClusters)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tREGION\tSTATE\tWORKLOAD\tREADY\tPODS PER ZONE\tPRESTOP\tGRACE\tLOCALITY")
	for _, st := range project.Status.Clusters {
		sc := &convoyv1.ServiceCluster{}
		if err := mgr.Get(ctx, client.ObjectKey{Name: st.Name}, sc); err != nil {
			return err
		}
		remote, err := f.Client(st.Name)
		if err != nil {
			return err
		}
		if len(st.Workloads) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\n", st.Name, sc.Spec.Region, st.Reason)
		}
		for _, ws := range st.Workloads {
			if ws.Kind == "CronJob" {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tCronJob\t-\t-\t-\t-\n", st.Name, sc.Spec.Region, st.Reason, ws.Name)
				continue
			}
			live := describeRemote(ctx, remote, project.RemoteNamespace(), ws.Name)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", st.Name, sc.Spec.Region, st.Reason, ws.Name,
				ws.AvailableReplicas, ws.Replicas, zones(ws), live.preStop, live.grace, live.locality)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c := meta.FindStatusCondition(project.Status.Conditions, convoyv1.ZoneImbalancedCondition); c != nil {
		fmt.Fprintf(w, "\nZoneImbalanced: %s\n", c.Message)
	}
	return nil
}

func zones(ws convoyv1.WorkloadStatus) string {
	parts := make([]string, 0, len(ws.Zones))
	for _, z := range ws.Zones {
		parts = append(parts, fmt.Sprintf("%s=%d", z.Zone, z.Pods))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

type remoteWorkload struct{ preStop, grace, locality string }

// describeRemote reads a workload's Deployment, Service and DestinationRule in its cluster.
func describeRemote(ctx context.Context, c client.Client, ns, name string) remoteWorkload {
	out := remoteWorkload{preStop: "-", grace: "-", locality: "-"}
	key := client.ObjectKey{Namespace: ns, Name: name}
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, key, d); err == nil {
		out.preStop = PreStopKind(d)
		if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			out.grace = fmt.Sprintf("%ds", *g)
		}
	}
	for _, version := range []string{"v1", "v1beta1"} {
		dr := &unstructured.Unstructured{}
		dr.SetAPIVersion("networking.istio.io/" + version)
		dr.SetKind("DestinationRule")
		if err := c.Get(ctx, key, dr); err == nil {
			out.locality = LocalityMode(dr)
			return out
		}
	}
	svc := &corev1.Service{}
	if err := c.Get(ctx, key, svc); err == nil && svc.Spec.TrafficDistribution != nil {
		out.locality = "Service trafficDistribution " + *svc.Spec.TrafficDistribution
	}
	return out
}

// PreStopKind names the PreStop hook of a Deployment's first container as convoy renders it.
func PreStopKind(d *appsv1.Deployment) string {
	containers := d.Spec.Template.Spec.Containers
	if len(containers) == 0 || containers[0].Lifecycle == nil || containers[0].Lifecycle.PreStop == nil {
		return "-"
	}
	switch h := containers[0].Lifecycle.PreStop; {
	case h.Sleep != nil:
		return fmt.Sprintf("sleep %ds", h.Sleep.Seconds)
	case h.HTTPGet != nil:
		return "httpGet " + h.HTTPGet.Path
	case h.Exec != nil && len(h.Exec.Command) > 1 && strings.HasSuffix(h.Exec.Command[0], "convoy-drain"):
		switch h.Exec.Command[1] {
		case "wait":
			return "drainConnections"
		case "http":
			return "httpGet (convoy-drain)"
		case "sleep":
			return "sleep (convoy-drain)"
		}
	}
	return "exec"
}

// LocalityMode describes a DestinationRule's locality load balancing in a few words.
func LocalityMode(dr *unstructured.Unstructured) string {
	lb, found, _ := unstructured.NestedMap(dr.Object, "spec", "trafficPolicy", "loadBalancer", "localityLbSetting")
	if !found {
		return "DestinationRule " + dr.GetAPIVersion() + " (no locality)"
	}
	prefix := "DestinationRule " + strings.TrimPrefix(dr.GetAPIVersion(), "networking.istio.io/") + ": "
	if failover, ok := lb["failover"].([]any); ok {
		pairs := make([]string, 0, len(failover))
		for _, f := range failover {
			if m, ok := f.(map[string]any); ok {
				pairs = append(pairs, fmt.Sprintf("%v->%v", m["from"], m["to"]))
			}
		}
		return prefix + "Failover " + strings.Join(pairs, ", ")
	}
	if _, ok := lb["distribute"]; ok {
		return prefix + "Distribute"
	}
	if _, ok := lb["failoverPriority"]; ok {
		return prefix + "FailoverPriority"
	}
	return prefix + "zone/region preference"
}
