package render

import (
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// overridesFor returns the Project's overrides that select the cluster, in order.
func overridesFor(project *convoyv1.Project, cluster *convoyv1.ServiceCluster) ([]*convoyv1.ClusterOverride, error) {
	var matched []*convoyv1.ClusterOverride
	for i := range project.Spec.Overrides {
		o := &project.Spec.Overrides[i]
		ok, err := Matches(o.Clusters, cluster)
		if err != nil {
			return nil, fmt.Errorf("spec.overrides[%d].clusters: %w", i, err)
		}
		if ok {
			matched = append(matched, o)
		}
	}
	return matched, nil
}

// selects reports whether an override changes a workload.
func selects(o *convoyv1.ClusterOverride, workload string) bool {
	return len(o.Workloads) == 0 || slices.Contains(o.Workloads, workload)
}

// ValidateOverrides returns what is wrong with a Project's overrides that the API server's
// schema cannot check: an override must name containers that its workloads have, change a
// ServiceAccount or an autoscaler only of workloads that have one, replicas only of
// Deployments and suspend only of cron workloads. An override of named
// workloads needs each of them to fit; an override of every workload needs at least one.
// Every override is checked, whichever clusters it selects, so no cluster gets half a
// Project.
func ValidateOverrides(project *convoyv1.Project) []string {
	var problems []string
	for i := range project.Spec.Overrides {
		o := &project.Spec.Overrides[i]
		var selected []*convoyv1.Workload
		for j := range project.Spec.Workloads {
			if selects(o, project.Spec.Workloads[j].Name) {
				selected = append(selected, &project.Spec.Workloads[j])
			}
		}
		// check reports a field whose workloads do not fit: with explicit workloads, each one
		// that does not (as "workload <name> <lacks>"); otherwise when none does.
		check := func(field string, fits func(*convoyv1.Workload) bool, none, lacks string) {
			if len(selected) == 0 {
				return
			}
			if len(o.Workloads) == 0 {
				if !slices.ContainsFunc(selected, fits) {
					problems = append(problems, fmt.Sprintf("spec.overrides[%d].%s: %s", i, field, none))
				}
				return
			}
			for _, w := range selected {
				if !fits(w) {
					problems = append(problems, fmt.Sprintf("spec.overrides[%d].%s: workload %s %s", i, field, w.Name, lacks))
				}
			}
		}
		for j, img := range o.Images {
			check(fmt.Sprintf("images[%d].container", j), hasContainer(img.Container),
				fmt.Sprintf("no workload has a container named %q", img.Container), fmt.Sprintf("has no container named %q", img.Container))
		}
		for j, c := range o.Containers {
			check(fmt.Sprintf("containers[%d].name", j), hasContainer(c.Name),
				fmt.Sprintf("no workload has a container named %q", c.Name), fmt.Sprintf("has no container named %q", c.Name))
		}
		if len(o.ServiceAccountAnnotations) > 0 {
			check("serviceAccountAnnotations", func(w *convoyv1.Workload) bool { return w.ServiceAccount != nil },
				"no workload sets serviceAccount", "does not set serviceAccount")
		}
		if o.Autoscaling != nil {
			check("autoscaling", func(w *convoyv1.Workload) bool { return w.Autoscaling != nil },
				"no workload sets autoscaling", "does not set autoscaling")
		}
		if o.Replicas != nil {
			check("replicas", func(w *convoyv1.Workload) bool { return w.CronJob == nil },
				"every workload is a cronJob, which has no replicas", "is a cronJob, which has no replicas")
		}
		if o.Suspend != nil {
			check("suspend", func(w *convoyv1.Workload) bool { return w.CronJob != nil },
				"no workload is a cronJob", "is not a cronJob")
		}
	}
	return problems
}

func hasContainer(name string) func(*convoyv1.Workload) bool {
	return func(w *convoyv1.Workload) bool {
		spec := &w.Template.Spec
		is := func(c corev1.Container) bool { return c.Name == name }
		return slices.ContainsFunc(spec.Containers, is) || slices.ContainsFunc(spec.InitContainers, is)
	}
}

// applyOverride changes a rendered Deployment as one override says.
func applyOverride(d *appsv1.Deployment, workload string, o *convoyv1.ClusterOverride) {
	if !selects(o, workload) {
		return
	}
	if o.Replicas != nil {
		r := *o.Replicas
		d.Spec.Replicas = &r
	}
	pod := &d.Spec.Template
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range containers {
			c := &containers[i]
			for _, img := range o.Images {
				if img.Container == c.Name {
					c.Image = img.Image
				}
			}
			for j := range o.Containers {
				if o.Containers[j].Name == c.Name {
					overrideContainer(c, &o.Containers[j])
				}
			}
		}
	}
	// Ownership labels cannot be overridden (admission refuses them), so these only add.
	d.Labels = merged(d.Labels, o.Labels)
	pod.Labels = merged(pod.Labels, o.Labels)
	d.Annotations = merged(d.Annotations, o.Annotations)
	pod.Annotations = merged(pod.Annotations, o.Annotations)
}

// overrideContainer sets env (replacing by name, appending new ones), removes env, and
// replaces resources, command and args.
func overrideContainer(c *corev1.Container, o *convoyv1.ContainerOverride) {
	for _, e := range o.Env {
		if i := slices.IndexFunc(c.Env, func(have corev1.EnvVar) bool { return have.Name == e.Name }); i >= 0 {
			c.Env[i] = *e.DeepCopy()
		} else {
			c.Env = append(c.Env, *e.DeepCopy())
		}
	}
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return slices.Contains(o.RemoveEnv, e.Name) })
	if o.Resources != nil {
		c.Resources = *o.Resources.DeepCopy()
	}
	if len(o.Command) > 0 {
		c.Command = slices.Clone(o.Command)
	}
	if len(o.Args) > 0 {
		c.Args = slices.Clone(o.Args)
	}
}

// merged returns base with add copied over it, without changing base; nil when both are empty.
func merged(base, add map[string]string) map[string]string {
	if len(add) == 0 {
		return base
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, add)
	return out
}
