package render

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// Matches reports whether a ServiceCluster is picked by a ClusterSelection: it matches the
// label selector or is named.
func Matches(sel convoyv1.ClusterSelection, cluster *convoyv1.ServiceCluster) (bool, error) {
	if slices.Contains(sel.ClusterNames, cluster.Name) {
		return true, nil
	}
	if sel.ClusterSelector == nil {
		return false, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(sel.ClusterSelector)
	if err != nil {
		return false, fmt.Errorf("invalid clusterSelector: %w", err)
	}
	return selector.Matches(labels.Set(cluster.Labels)), nil
}

// Placement is the result of evaluating a Project's placement against the known clusters.
type Placement struct {
	// Targeted clusters, sorted by name. Clusters being deleted are never targeted.
	Targeted []*convoyv1.ServiceCluster
	// MissingNames are clusters named in placement.clusterNames that do not exist.
	MissingNames []string
}

// Place evaluates a Project's placement over all ServiceClusters.
func Place(project *convoyv1.Project, clusters []convoyv1.ServiceCluster) (Placement, error) {
	var p Placement
	known := make(map[string]bool, len(clusters))
	for i := range clusters {
		c := &clusters[i]
		known[c.Name] = true
		if !c.DeletionTimestamp.IsZero() {
			continue
		}
		ok, err := Matches(project.Spec.Placement, c)
		if err != nil {
			return Placement{}, fmt.Errorf("spec.placement: %w", err)
		}
		if ok {
			p.Targeted = append(p.Targeted, c)
		}
	}
	for _, name := range project.Spec.Placement.ClusterNames {
		if !known[name] {
			p.MissingNames = append(p.MissingNames, name)
		}
	}
	slices.SortFunc(p.Targeted, func(a, b *convoyv1.ServiceCluster) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	slices.Sort(p.MissingNames)
	return p, nil
}
