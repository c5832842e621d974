package controllers

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
	"github.com/convoy-dev/convoy/internal/rollout"
)

// inputs reads what a Project's objects are rendered from. Everything comes from the
// manager's caches: gathering never waits on a service cluster.
type inputs struct {
	client.Client
	// DrainHelperImage is the convoy-drain image injected for PreStop hooks that need it.
	DrainHelperImage string
	// secrets holds the contents of the Secrets Projects deliver.
	secrets *secretContents
	// checks remembers what checking each Project's rendered objects found.
	checks *renderChecks
	// revisions stores and decodes the revisions of Projects with a rollout strategy.
	revisions *revisions
}

// newInputs reads Projects through c (the manager's cache) and Secret contents through
// apiReader.
func newInputs(c client.Client, apiReader client.Reader, drainHelperImage string) inputs {
	return inputs{Client: c, DrainHelperImage: drainHelperImage, secrets: newSecretContents(apiReader), checks: newRenderChecks(), revisions: newRevisions(c)}
}

// projectInputs is a Project with the clusters and policies it is rendered from.
type projectInputs struct {
	project  *convoyv1.Project
	clusters []convoyv1.ServiceCluster
	policies render.Policies
	// missing and missingSecrets say which referenced policies and Secrets do not exist,
	// naming the referencing field.
	missing, missingSecrets []string
	// invalid says what is wrong with the spec beyond what admission checks, naming the field.
	invalid   []string
	placement render.Placement
	// strategy is the RolloutStrategy the Project names, and waves the wave of each targeted
	// cluster under it; nil when the Project has none.
	strategy *convoyv1.RolloutStrategy
	waves    map[string]string
	// placementErr is an invalid placement; API validation makes it unreachable in practice.
	placementErr error
}

// gather reads a Project and its inputs; nil when the Project does not exist. A failed
// cluster list is an error, never an empty fleet: an empty answer from a broken list must
// not look like "no clusters are targeted any more".
func (in inputs) gather(ctx context.Context, key client.ObjectKey) (*projectInputs, error) {
	project := &convoyv1.Project{}
	if err := in.Get(ctx, key, project); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	var clusters convoyv1.ServiceClusterList
	if err := in.List(ctx, &clusters); err != nil {
		return nil, fmt.Errorf("listing ServiceClusters: %w", err)
	}
	pi := &projectInputs{project: project, clusters: clusters.Items}
	var err error
	if pi.policies, pi.missing, err = in.gatherPolicies(ctx, project); err != nil {
		return nil, err
	}
	if pi.policies.Secrets, pi.missingSecrets, err = in.gatherSecrets(ctx, project); err != nil {
		return nil, err
	}
	pi.placement, pi.placementErr = render.Place(project, clusters.Items)
	for _, sc := range pi.placement.Targeted {
		pi.policies.Regions = append(pi.policies.Regions, sc.Spec.Region)
	}
	if err := in.gatherStrategy(ctx, pi); err != nil {
		return nil, err
	}
	if pi.invalid = render.ValidateOverrides(project); len(pi.invalid) == 0 && !pi.deleting() && !pi.blocked() {
		pi.invalid = in.checks.problems(pi)
	}
	return pi, nil
}

// gatherStrategy reads the Project's RolloutStrategy and puts each targeted cluster in its wave.
func (in inputs) gatherStrategy(ctx context.Context, pi *projectInputs) error {
	ref := pi.project.Spec.RolloutStrategy
	if ref == nil {
		return nil
	}
	strategy := &convoyv1.RolloutStrategy{}
	switch err := in.Get(ctx, client.ObjectKey{Namespace: pi.project.Namespace, Name: ref.Name}, strategy); {
	case apierrors.IsNotFound(err):
		pi.missing = append(pi.missing, fmt.Sprintf("RolloutStrategy %s/%s referenced by spec.rolloutStrategy does not exist; create it or remove the reference", pi.project.Namespace, ref.Name))
		return nil
	case err != nil:
		return err
	}
	pi.strategy, pi.waves = strategy, map[string]string{}
	for _, sc := range pi.placement.Targeted {
		wave, err := rollout.WaveOf(&strategy.Spec, sc)
		if err != nil {
			pi.invalid = append(pi.invalid, fmt.Sprintf("RolloutStrategy %s: %v", strategy.Name, err))
			return nil
		}
		pi.waves[sc.Name] = wave
	}
	return nil
}

// revisionFor is the revision a cluster is to run: empty when the Project has no rollout
// strategy (or no rollout yet), so its live spec is rendered.
func (pi *projectInputs) revisionFor(cluster string) string {
	if pi.strategy == nil {
		return ""
	}
	return rollout.Desired(pi.project.Status.Rollout, pi.waves[cluster], cluster, previous(pi.project, cluster).Revision)
}

// targets reports whether the Project is to be running in the cluster.
func (pi *projectInputs) targets(cluster string) bool {
	return slices.ContainsFunc(pi.placement.Targeted, func(sc *convoyv1.ServiceCluster) bool { return sc.Name == cluster })
}

func (pi *projectInputs) deleting() bool { return !pi.project.DeletionTimestamp.IsZero() }

// blocked reports whether the Project cannot be rendered as a whole. Nothing is pushed then,
// not even to clusters it could be rendered for: a workload without its policy or Secret,
// or with only some of its overrides, would misbehave.
func (pi *projectInputs) blocked() bool {
	return len(pi.missing) > 0 || len(pi.missingSecrets) > 0 || len(pi.invalid) > 0 || pi.placementErr != nil
}

// pairInputsHash summarises what a (Project, cluster) pair's sync depends on, as seen from
// the manager. The Project dispatcher queues a pair when this changes; remote changes reach
// the pair through the cluster's own events.
func (pi *projectInputs) pairInputsHash(sc *convoyv1.ServiceCluster) uint64 {
	h := fnv.New64a()
	// The labels: overrides select clusters by them.
	fmt.Fprintf(h, "%d|%v|%v|%d|%v|%v|%+v|%s|%v|%s|", pi.project.Generation, pi.deleting(), pi.targets(sc.Name),
		sc.Generation, sc.Labels, sc.DeletionTimestamp.IsZero(), sc.Status.Capabilities, readyOf(sc), pi.policies.Regions, pi.revisionFor(sc.Name))
	for _, p := range pi.policies.AppliedPolicies() {
		fmt.Fprintf(h, "%s/%s/%d|", p.Kind, p.Name, p.Generation)
	}
	for _, ref := range pi.project.Spec.Secrets {
		if s := pi.policies.Secrets[ref.Name]; s != nil {
			fmt.Fprintf(h, "%s/%s/%s|", s.Name, s.UID, s.ResourceVersion)
		}
	}
	return h.Sum64()
}

// gatherPolicies reads the policies the Project references. Missing ones are returned as
// messages naming the referencing field.
func (in inputs) gatherPolicies(ctx context.Context, project *convoyv1.Project) (render.Policies, []string, error) {
	policies := render.Policies{
		GracefulShutdown:      map[string]*convoyv1.GracefulShutdownPolicy{},
		LocalityLoadBalancing: map[string]*convoyv1.LocalityLoadBalancing{},
		DrainHelperImage:      in.DrainHelperImage,
	}
	var missing []string
	seen := map[policyKey]bool{}
	for _, ref := range policyRefs(project) {
		if seen[ref.policyKey] {
			continue
		}
		seen[ref.policyKey] = true
		var policy client.Object
		switch ref.kind {
		case convoyv1.KindGracefulShutdownPolicy:
			p := &convoyv1.GracefulShutdownPolicy{}
			policy, policies.GracefulShutdown[ref.name] = p, p
		case convoyv1.KindLocalityLoadBalancing:
			p := &convoyv1.LocalityLoadBalancing{}
			policy, policies.LocalityLoadBalancing[ref.name] = p, p
		}
		err := in.Get(ctx, client.ObjectKey{Namespace: project.Namespace, Name: ref.name}, policy)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, fmt.Sprintf("%s %s/%s referenced by %s does not exist; create it or remove the reference", ref.kind, project.Namespace, ref.name, ref.field))
		case err != nil:
			return policies, nil, err
		}
	}
	return policies, missing, nil
}

type policyKey struct{ kind, name string }

// indexValue is how a policy reference is stored in the Project policy index.
func (k policyKey) indexValue() string { return k.kind + "/" + k.name }

type policyRef struct {
	policyKey
	field string
}

// policyRefs lists every policy reference of a Project with the field holding it.
func policyRefs(project *convoyv1.Project) []policyRef {
	var refs []policyRef
	add := func(kind string, ref *convoyv1.PolicyReference, field string) {
		if ref != nil {
			refs = append(refs, policyRef{policyKey{kind, ref.Name}, field})
		}
	}
	add(convoyv1.KindGracefulShutdownPolicy, project.Spec.GracefulShutdownPolicy, "spec.gracefulShutdownPolicy")
	add(convoyv1.KindLocalityLoadBalancing, project.Spec.LocalityLoadBalancing, "spec.localityLoadBalancing")
	for i, w := range project.Spec.Workloads {
		add(convoyv1.KindGracefulShutdownPolicy, w.GracefulShutdownPolicy, fmt.Sprintf("spec.workloads[%d].gracefulShutdownPolicy", i))
		add(convoyv1.KindLocalityLoadBalancing, w.LocalityLoadBalancing, fmt.Sprintf("spec.workloads[%d].localityLoadBalancing", i))
	}
	return refs
}
