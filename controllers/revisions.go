package controllers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/render"
)

// revisionHistoryLimit is how many revisions of a Project are kept beyond those a rollout or a
// cluster still uses.
const revisionHistoryLimit = 10

// revisionInputs is what a revision holds: what the Project's objects are rendered from in
// the manager cluster, the spec and the specs of the policies it uses. Secrets are not in it:
// convoy never copies secret data into another object, so every cluster gets a Secret's
// current contents.
type revisionInputs struct {
	Spec                     convoyv1.ProjectSpec              `json:"spec"`
	GracefulShutdownPolicies []convoyv1.GracefulShutdownPolicy `json:"gracefulShutdownPolicies,omitempty"`
	LocalityLoadBalancings   []convoyv1.LocalityLoadBalancing  `json:"localityLoadBalancings,omitempty"`
}

// newRevisionInputs captures a Project's render inputs, without policy metadata and status.
func newRevisionInputs(project *convoyv1.Project, policies render.Policies) revisionInputs {
	in := revisionInputs{Spec: *project.Spec.DeepCopy()}
	// Where a Project runs and how its changes roll out are not what runs: a cluster added
	// to the placement gets the current revision, it does not start a rollout.
	in.Spec.RolloutStrategy, in.Spec.Placement = nil, convoyv1.ClusterSelection{}
	meta := func(o metav1.ObjectMeta) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, Generation: o.Generation}
	}
	for _, p := range policies.GracefulShutdown {
		in.GracefulShutdownPolicies = append(in.GracefulShutdownPolicies, convoyv1.GracefulShutdownPolicy{ObjectMeta: meta(p.ObjectMeta), Spec: p.Spec})
	}
	for _, p := range policies.LocalityLoadBalancing {
		in.LocalityLoadBalancings = append(in.LocalityLoadBalancings, convoyv1.LocalityLoadBalancing{ObjectMeta: meta(p.ObjectMeta), Spec: p.Spec})
	}
	slices.SortFunc(in.GracefulShutdownPolicies, func(a, b convoyv1.GracefulShutdownPolicy) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(in.LocalityLoadBalancings, func(a, b convoyv1.LocalityLoadBalancing) int { return cmp.Compare(a.Name, b.Name) })
	return in
}

// name is the revision's name: the Project's name and a hash of the inputs without policy
// generations, so the same inputs are always the same revision.
func (in revisionInputs) name(project string) (string, []byte, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return "", nil, err
	}
	unversioned := in
	unversioned.GracefulShutdownPolicies = slices.Clone(in.GracefulShutdownPolicies)
	unversioned.LocalityLoadBalancings = slices.Clone(in.LocalityLoadBalancings)
	for i := range unversioned.GracefulShutdownPolicies {
		unversioned.GracefulShutdownPolicies[i].Generation = 0
	}
	for i := range unversioned.LocalityLoadBalancings {
		unversioned.LocalityLoadBalancings[i].Generation = 0
	}
	forHash, err := json.Marshal(unversioned)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(forHash)
	return project + "-" + hex.EncodeToString(sum[:])[:10], data, nil
}

// apply returns the Project and policies to render from: the revision's spec and policies,
// with the live Secrets, regions and drain helper.
func (in *revisionInputs) apply(project *convoyv1.Project, live render.Policies) (*convoyv1.Project, render.Policies) {
	p := project.DeepCopy()
	p.Spec = *in.Spec.DeepCopy()
	p.Spec.RolloutStrategy, p.Spec.Placement = project.Spec.RolloutStrategy, project.Spec.Placement
	policies := live
	policies.GracefulShutdown = map[string]*convoyv1.GracefulShutdownPolicy{}
	policies.LocalityLoadBalancing = map[string]*convoyv1.LocalityLoadBalancing{}
	for i := range in.GracefulShutdownPolicies {
		policies.GracefulShutdown[in.GracefulShutdownPolicies[i].Name] = &in.GracefulShutdownPolicies[i]
	}
	for i := range in.LocalityLoadBalancings {
		policies.LocalityLoadBalancing[in.LocalityLoadBalancings[i].Name] = &in.LocalityLoadBalancings[i]
	}
	return p, policies
}

// revisions stores a Project's revisions as ControllerRevisions in its namespace, owned by
// it (so they go with it), and decodes them for the pairs' syncs.
type revisions struct {
	client client.Client
	scheme *runtime.Scheme
	mu     sync.Mutex
	// decoded caches revisions by UID: their data never changes.
	decoded map[types.UID]*revisionInputs
}

func newRevisions(c client.Client) *revisions {
	return &revisions{client: c, scheme: c.Scheme(), decoded: map[types.UID]*revisionInputs{}}
}

// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;delete

// ensure creates the revision of the Project's current inputs if it does not exist, and
// returns its name. When it created one it also returns the Project's revisions before it,
// for prune: history grows only then.
func (r *revisions) ensure(ctx context.Context, pi *projectInputs) (string, []appsv1.ControllerRevision, error) {
	project := pi.project
	name, data, err := newRevisionInputs(project, pi.policies).name(project.Name)
	if err != nil {
		return "", nil, err
	}
	existing, err := r.list(ctx, project)
	if err != nil {
		return "", nil, err
	}
	var next int64 = 1
	for _, cr := range existing {
		if cr.Name == name {
			return name, nil, nil
		}
		next = max(next, cr.Revision+1)
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: project.Namespace, Name: name, Labels: map[string]string{
			convoyv1.ManagedByLabel: convoyv1.ManagedByValue, convoyv1.ProjectNameLabel: project.Name,
		}},
		Data:     runtime.RawExtension{Raw: data},
		Revision: next,
	}
	if err := controllerutil.SetControllerReference(project, cr, r.scheme); err != nil {
		return "", nil, err
	}
	if err := r.client.Create(ctx, cr); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", nil, fmt.Errorf("creating revision %s: %w", name, err)
	}
	return name, existing, nil
}

func (r *revisions) list(ctx context.Context, project *convoyv1.Project) ([]appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	if err := r.client.List(ctx, &list, client.InNamespace(project.Namespace),
		client.MatchingLabels{convoyv1.ManagedByLabel: convoyv1.ManagedByValue, convoyv1.ProjectNameLabel: project.Name}); err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	return list.Items, nil
}

// load returns a revision's inputs.
func (r *revisions) load(ctx context.Context, namespace, name string) (*revisionInputs, error) {
	cr := &appsv1.ControllerRevision{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cr); err != nil {
		return nil, fmt.Errorf("reading revision %s: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if in, ok := r.decoded[cr.UID]; ok {
		return in, nil
	}
	in := &revisionInputs{}
	if err := json.Unmarshal(cr.Data.Raw, in); err != nil {
		return nil, fmt.Errorf("decoding revision %s: %w", name, err)
	}
	if len(r.decoded) > 4096 {
		clear(r.decoded) // a bound, not a policy: decoding again is cheap
	}
	r.decoded[cr.UID] = in
	return in, nil
}

// prune deletes the oldest of existing beyond the history limit that nothing uses: not the
// target or stable revision, and no revision a cluster runs. It runs when a revision was
// created, so the history stays within the limit plus what was in use then.
func (r *revisions) prune(ctx context.Context, existing []appsv1.ControllerRevision, inUse []string) error {
	slices.SortFunc(existing, func(a, b appsv1.ControllerRevision) int { return int(b.Revision - a.Revision) })
	kept := 0
	for i := range existing {
		cr := &existing[i]
		if slices.Contains(inUse, cr.Name) {
			continue
		}
		if kept++; kept <= revisionHistoryLimit {
			continue
		}
		if err := r.client.Delete(ctx, cr); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
