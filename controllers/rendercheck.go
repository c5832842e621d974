package controllers

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
	"github.com/convoy-dev/convoy/internal/validation"
)

// maxRenderProblems bounds how many problems a Stalled condition lists.
const maxRenderProblems = 8

// renderChecks remembers, per Project, what checking its rendered objects found for the
// inputs it was computed from: a Project is rendered and checked for every targeted cluster
// once per change, not at every sync of each of its pairs.
type renderChecks struct {
	mu        sync.Mutex
	byProject map[types.NamespacedName]renderCheck
}

type renderCheck struct {
	inputs   uint64
	problems []string
}

func newRenderChecks() *renderChecks {
	return &renderChecks{byProject: map[types.NamespacedName]renderCheck{}}
}

// problems renders the Project for every cluster it targets and checks each object with the
// API server's own create validation. Any problem blocks the whole Project: a Project that
// one cluster would refuse is pushed to none (never half a Project), and the user reads the
// Project field and the rule in its Stalled condition.
func (c *renderChecks) problems(pi *projectInputs) []string {
	key := client.ObjectKeyFromObject(pi.project)
	h := fnv.New64a()
	for _, sc := range pi.placement.Targeted {
		fmt.Fprintf(h, "%s/%d|", sc.Name, pi.pairInputsHash(sc))
	}
	sum := h.Sum64()
	c.mu.Lock()
	held, ok := c.byProject[key]
	c.mu.Unlock()
	if ok && held.inputs == sum {
		return held.problems
	}
	found := renderProblems(pi)
	c.mu.Lock()
	c.byProject[key] = renderCheck{inputs: sum, problems: found}
	c.mu.Unlock()
	return found
}

func (c *renderChecks) forget(project types.NamespacedName) {
	c.mu.Lock()
	delete(c.byProject, project)
	c.mu.Unlock()
}

// renderProblems lists each problem once, with the clusters it occurs in.
func renderProblems(pi *projectInputs) []string {
	var order []string
	clusters := map[string][]string{}
	add := func(problem, cluster string) {
		if _, seen := clusters[problem]; !seen {
			order = append(order, problem)
		}
		clusters[problem] = append(clusters[problem], cluster)
	}
	for _, sc := range pi.placement.Targeted {
		objs, err := render.ForCluster(pi.project, sc, pi.policies)
		if err != nil {
			add(err.Error(), sc.Name)
			continue
		}
		for _, obj := range objs.All() {
			if !validation.Supports(obj.GetObjectKind().GroupVersionKind().GroupKind()) {
				continue // Istio's DestinationRules: their CRD validates them in the cluster
			}
			if err := validation.Create(obj); err != nil {
				for _, p := range describeInvalid(pi.project, obj, err) {
					add(p, sc.Name)
				}
			}
		}
	}
	out := make([]string, 0, len(order))
	for _, p := range order {
		if len(pi.placement.Targeted) > 1 {
			p += fmt.Sprintf(" (in %s)", strings.Join(clusters[p], ", "))
		}
		out = append(out, p)
	}
	if len(out) > maxRenderProblems {
		out = append(out[:maxRenderProblems], fmt.Sprintf("and %d more", len(out)-maxRenderProblems))
	}
	return out
}

// describeInvalid names the Project field behind each cause of an API server refusal of a
// rendered object: a workload's template, ports, ConfigMap or Secret where the object maps
// back to one, else the object's kind and field.
func describeInvalid(project *convoyv1.Project, obj client.Object, err error) []string {
	var status *apierrors.StatusError
	if !errors.As(err, &status) || status.ErrStatus.Details == nil || len(status.ErrStatus.Details.Causes) == 0 {
		return []string{fmt.Sprintf("%s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)}
	}
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	source, prefixes := sourceField(project, kind, obj.GetName())
	var out []string
	for _, cause := range status.ErrStatus.Details.Causes {
		field := cause.Field
		mapped := false
		for rendered, projectField := range prefixes {
			if rest, ok := strings.CutPrefix(field, rendered); ok {
				field, mapped = projectField+rest, true
				break
			}
		}
		if mapped {
			out = append(out, fmt.Sprintf("%s: %s", field, cause.Message))
		} else {
			out = append(out, fmt.Sprintf("%s: %s %s: %s", source, kind, field, cause.Message))
		}
	}
	return out
}

// sourceField is the Project field an object is rendered from, and how the object's field
// paths map to the Project's.
func sourceField(project *convoyv1.Project, kind, name string) (string, map[string]string) {
	switch kind {
	case "Namespace":
		return "spec.namespace", nil
	case "ConfigMap":
		if i := slices.IndexFunc(project.Spec.ConfigMaps, func(c convoyv1.ProjectConfigMap) bool { return c.Name == name }); i >= 0 {
			f := fmt.Sprintf("spec.configMaps[%d]", i)
			return f + " (" + name + ")", map[string]string{"data": f + ".data"}
		}
	case "Secret":
		if i := slices.IndexFunc(project.Spec.Secrets, func(s convoyv1.ProjectSecret) bool { return s.Name == name }); i >= 0 {
			return fmt.Sprintf("spec.secrets[%d] (%s)", i, name), nil
		}
	}
	i := slices.IndexFunc(project.Spec.Workloads, func(w convoyv1.Workload) bool { return w.Name == name })
	if i < 0 {
		return kind + " " + name, nil
	}
	w := fmt.Sprintf("spec.workloads[%d]", i)
	switch kind {
	case "Deployment":
		return w + " (" + name + ")", map[string]string{"spec.template": w + ".template"}
	case "CronJob":
		return w + " (" + name + ")", map[string]string{"spec.jobTemplate.spec.template": w + ".template"}
	case "Service":
		return w + " (" + name + ")", map[string]string{"spec.ports": w + ".ports"}
	}
	return w + " (" + name + ")", nil
}
