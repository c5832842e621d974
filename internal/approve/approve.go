// Package approve lets a wave of a Project's rollout that requires approval start (`convoy
// approve`): it checks the rollout, finds who the caller is as the API server authenticates
// them (SelfSubjectReview) and creates a RolloutApproval in their name. It acts with the
// caller's own credentials; the ClusterRole convoy-rollout-approver grants what it needs, and
// the admission policy convoy-rollout-approval (config/admission) refuses an approval whose
// approver is not the user creating it, however it was made.
package approve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// FieldManager owns the approvals approve creates.
const FieldManager = "convoy-approve"

// ApproverRole is the ClusterRole, as config/default and the Helm chart name it, that lets a
// user approve in the namespaces where it is bound.
const ApproverRole = "convoy-rollout-approver"

// Options of Approve.
type Options struct {
	// Namespace and Project name the Project.
	Namespace, Project string
	// Wave to approve.
	Wave string
	// Revision to approve; empty: the one being rolled out (status.rollout.targetRevision).
	// When set it must be that one: approve refuses to approve what it cannot check.
	Revision string
	// Reason is a note for the record, for example a change ticket.
	Reason string
	// DryRun prints the approval to Out instead of creating it.
	DryRun bool
	Out    io.Writer
}

// Result says what Approve did.
type Result struct {
	// Approval is the approval created, printed (DryRun) or found.
	Approval *convoyv1.RolloutApproval
	// Created: Approve created Approval. False for DryRun and AlreadyApproved.
	Created bool
	// AlreadyApproved: an approval of the wave and revision existed; Approval is that one.
	AlreadyApproved bool
	// Ahead: the wave is still Pending; the approval lets it start when its turn comes.
	Ahead bool
}

// ParseProject splits "namespace/name".
func ParseProject(arg string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(arg, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("want the Project as NAMESPACE/PROJECT, got %q", arg)
	}
	return namespace, name, nil
}

// Approve creates, in the caller's name, the RolloutApproval of o.Wave of the revision the
// Project's rollout is rolling out. It refuses when the Project has no rollout, when the wave
// is not one of it, or when the wave is neither waiting for approval nor still pending. It
// writes what it did to o.Out.
func Approve(ctx context.Context, c client.Client, o Options) (*Result, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	id := o.Namespace + "/" + o.Project
	project := &convoyv1.Project{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Project}, project); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("no Project %s", id)
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("reading Project %s: %w (approving needs the ClusterRole %s bound in namespace %s)", id, err, ApproverRole, o.Namespace)
		}
		return nil, fmt.Errorf("reading Project %s: %w", id, err)
	}
	revision, wave, err := check(project, o.Wave, o.Revision)
	if err != nil {
		return nil, err
	}
	res := &Result{Ahead: wave.Phase == convoyv1.WavePending}
	if note := strategyNote(ctx, c, project, o.Wave); note != "" {
		fmt.Fprintln(o.Out, note)
	}
	user, err := WhoAmI(ctx, c)
	if err != nil {
		return nil, err
	}
	approval := &convoyv1.RolloutApproval{
		TypeMeta:   metav1.TypeMeta{APIVersion: convoyv1.GroupVersion.String(), Kind: "RolloutApproval"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: Name(o.Project, o.Wave, revision)},
		Spec: convoyv1.RolloutApprovalSpec{
			Project: o.Project, Revision: revision, Wave: o.Wave, Approver: user, Reason: o.Reason,
		},
	}
	res.Approval = approval

	// An approval made another way (kubectl, another name) counts as well.
	if existing := findApproval(ctx, c, approval); existing != nil {
		res.Approval, res.AlreadyApproved = existing, true
		return res, alreadyApproved(o.Out, id, existing)
	}
	if o.DryRun {
		return res, printObject(o.Out, approval)
	}
	if err := c.Create(ctx, approval, client.FieldOwner(FieldManager)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			existing := &convoyv1.RolloutApproval{}
			if getErr := c.Get(ctx, client.ObjectKeyFromObject(approval), existing); getErr == nil && sameApproval(existing.Spec, approval.Spec) {
				res.Approval, res.AlreadyApproved = existing, true
				return res, alreadyApproved(o.Out, id, existing)
			} else if getErr == nil {
				return nil, fmt.Errorf("RolloutApproval %s/%s already exists and approves wave %s of Project %s revision %s; delete it or use kubectl with another name",
					approval.Namespace, approval.Name, existing.Spec.Wave, existing.Spec.Project, existing.Spec.Revision)
			}
		}
		if apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			return nil, fmt.Errorf("creating RolloutApproval %s/%s: %w (approving needs the ClusterRole %s bound in namespace %s)",
				approval.Namespace, approval.Name, err, ApproverRole, o.Namespace)
		}
		return nil, fmt.Errorf("creating RolloutApproval %s/%s: %w", approval.Namespace, approval.Name, err)
	}
	res.Created = true
	fmt.Fprintf(o.Out, "Approved wave %s of %s revision %s as %s\n", o.Wave, id, revision, user)
	if res.Ahead {
		fmt.Fprintf(o.Out, "Wave %s is still Pending: it starts when the waves before it have succeeded, without waiting for approval.\n", o.Wave)
	}
	return res, nil
}

// check returns the revision to approve and the wave's status, or why the wave cannot be
// approved.
func check(p *convoyv1.Project, wave, revision string) (string, *convoyv1.RolloutWaveStatus, error) {
	id := p.Namespace + "/" + p.Name
	ro := p.Status.Rollout
	if ro == nil || ro.TargetRevision == "" {
		if p.Spec.RolloutStrategy == nil {
			return "", nil, fmt.Errorf("no rollout to approve: Project %s has no spec.rolloutStrategy, so a change reaches every cluster at once", id)
		}
		return "", nil, fmt.Errorf("no rollout to approve yet: convoy has not started rolling Project %s out with RolloutStrategy %s (its status.rollout is empty); try again shortly",
			id, p.Spec.RolloutStrategy.Name)
	}
	target := ro.TargetRevision
	if revision != "" && revision != target {
		return "", nil, fmt.Errorf("the rollout of %s is of revision %s, not %s: an approval counts only for the revision it names; approve %s, or wait for the rollout of %s to start",
			id, target, revision, target, revision)
	}
	var names []string
	var ws *convoyv1.RolloutWaveStatus
	for i := range ro.Waves {
		names = append(names, ro.Waves[i].Name)
		if ro.Waves[i].Name == wave {
			ws = &ro.Waves[i]
		}
	}
	if ws == nil {
		if len(names) == 0 {
			return "", nil, fmt.Errorf("the rollout of %s revision %s has no waves (it is %s; a first revision, or a return to the stable one, goes out at once): nothing to approve",
				id, target, ro.Phase)
		}
		return "", nil, fmt.Errorf("%s is not a wave of the rollout of %s revision %s (waves: %s)", wave, id, target, strings.Join(names, ", "))
	}
	switch ro.Phase {
	case convoyv1.RolloutHalted, convoyv1.RolloutRolledBack:
		return "", nil, fmt.Errorf("the rollout of %s revision %s is %s: no further wave starts until the next change, which is a new revision to approve", id, target, ro.Phase)
	}
	at := fmt.Sprintf("wave %s of %s revision %s is %s", wave, id, target, ws.Phase)
	switch ws.Phase {
	case convoyv1.WaveWaitingForApproval, convoyv1.WavePending:
		return target, ws, nil
	case convoyv1.WaveProgressing, convoyv1.WaveSoaking:
		return "", nil, fmt.Errorf("%s: it has started, there is nothing to approve", at)
	case convoyv1.WaveSucceeded:
		return "", nil, fmt.Errorf("%s: it is done, there is nothing to approve", at)
	case convoyv1.WaveFailed, convoyv1.WaveRolledBack:
		return "", nil, fmt.Errorf("%s: an approval does not restart it; the next change starts a new rollout", at)
	}
	return "", nil, fmt.Errorf("%s: only a wave that is WaitingForApproval or Pending can be approved", at)
}

// strategyNote says when the wave does not require approval, so that the approval will not
// change anything. It reads the RolloutStrategy on a best-effort basis.
func strategyNote(ctx context.Context, c client.Reader, p *convoyv1.Project, wave string) string {
	name := p.Status.Rollout.Strategy
	if name == "" {
		return ""
	}
	s := &convoyv1.RolloutStrategy{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, s); err != nil {
		return ""
	}
	for _, w := range s.Spec.Waves {
		if w.Name == wave && !w.RequireApproval {
			return fmt.Sprintf("Note: wave %s of RolloutStrategy %s does not require approval; approving it anyway.", wave, name)
		}
	}
	return ""
}

// WhoAmI returns the caller's user name as the API server authenticates them
// (`kubectl auth whoami`).
func WhoAmI(ctx context.Context, c client.Client) (string, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return "", fmt.Errorf("finding who you are (SelfSubjectReview): %w", err)
	}
	if review.Status.UserInfo.Username == "" {
		return "", errors.New("the API server did not say who you are (SelfSubjectReview returned no user name)")
	}
	return review.Status.UserInfo.Username, nil
}

// findApproval returns an approval of the same Project, wave and revision, or nil. It is
// best-effort: without the right to list approvals, Create finds out.
func findApproval(ctx context.Context, c client.Reader, want *convoyv1.RolloutApproval) *convoyv1.RolloutApproval {
	list := &convoyv1.RolloutApprovalList{}
	if err := c.List(ctx, list, client.InNamespace(want.Namespace)); err != nil {
		return nil
	}
	var found *convoyv1.RolloutApproval
	for i := range list.Items {
		a := &list.Items[i]
		if a.DeletionTimestamp == nil && sameApproval(a.Spec, want.Spec) && (found == nil || a.CreationTimestamp.Before(&found.CreationTimestamp)) {
			found = a
		}
	}
	return found
}

// sameApproval: a and b approve the same wave of the same revision of the same Project,
// whoever approved and why.
func sameApproval(a, b convoyv1.RolloutApprovalSpec) bool {
	return a.Project == b.Project && a.Wave == b.Wave && a.Revision == b.Revision
}

func alreadyApproved(out io.Writer, id string, a *convoyv1.RolloutApproval) error {
	_, err := fmt.Fprintf(out, "Wave %s of %s revision %s is already approved by %s at %s (RolloutApproval %s)\n",
		a.Spec.Wave, id, a.Spec.Revision, a.Spec.Approver, a.CreationTimestamp.UTC().Format(time.RFC3339), a.Name)
	return err
}

// Name is the name approve gives the approval of a wave of a revision:
// <project>-<wave>-<revision suffix>, where the suffix is the revision's hash (a Project's
// revisions are named <project>-<hash>). It is a valid object name (a DNS subdomain of at most
// 253 characters) for any valid Project, wave and revision names.
func Name(project, wave, revision string) string {
	suffix := strings.TrimPrefix(revision, project+"-")
	if suffix == revision {
		if i := strings.LastIndex(revision, "-"); i >= 0 {
			suffix = revision[i+1:]
		}
	}
	if len(suffix) > 20 || len(validation.IsDNS1123Label(suffix)) > 0 {
		sum := sha256.Sum256([]byte(revision))
		suffix = hex.EncodeToString(sum[:])[:10]
	}
	tail := "-" + wave + "-" + suffix
	if len(project)+len(tail) > validation.DNS1123SubdomainMaxLength {
		project = strings.TrimRight(project[:validation.DNS1123SubdomainMaxLength-len(tail)], "-.")
	}
	return project + tail
}

// printObject writes obj as a YAML document, without the fields the server fills in.
func printObject(out io.Writer, obj client.Object) error {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	unstructured.RemoveNestedField(content, "metadata", "creationTimestamp")
	b, err := yaml.Marshal(content)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "---\n%s", b)
	return err
}
