package render

import (
	"cmp"
	"slices"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// AppliedPolicies lists every gathered policy with its generation, sorted by kind and name.
func (p Policies) AppliedPolicies() []convoyv1.AppliedPolicy {
	var out []convoyv1.AppliedPolicy
	for name, gsp := range p.GracefulShutdown {
		out = append(out, convoyv1.AppliedPolicy{Kind: convoyv1.KindGracefulShutdownPolicy, Name: name, Generation: gsp.Generation})
	}
	for name, llb := range p.LocalityLoadBalancing {
		out = append(out, convoyv1.AppliedPolicy{Kind: convoyv1.KindLocalityLoadBalancing, Name: name, Generation: llb.Generation})
	}
	slices.SortFunc(out, func(a, b convoyv1.AppliedPolicy) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Current reports whether objects applied from these policy generations are up to date with
// the gathered policies.
func (p Policies) Current(applied []convoyv1.AppliedPolicy) bool {
	for _, a := range applied {
		var generation int64 = -1
		switch a.Kind {
		case convoyv1.KindGracefulShutdownPolicy:
			if gsp := p.GracefulShutdown[a.Name]; gsp != nil {
				generation = gsp.Generation
			}
		case convoyv1.KindLocalityLoadBalancing:
			if llb := p.LocalityLoadBalancing[a.Name]; llb != nil {
				generation = llb.Generation
			}
		}
		if generation != a.Generation {
			return false
		}
	}
	return true
}
