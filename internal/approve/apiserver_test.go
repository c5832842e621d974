package approve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/manifest"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
)

// These tests run against a real API server (envtest: kube-apiserver and etcd) with convoy's
// CRDs, the admission policy of config/admission and the approver ClusterRole of config/rbac,
// named as config/default names them. No controller runs: the tests write the Projects'
// rollout status themselves.

const (
	repoRoot  = "../.."
	namespace = "shop"
	target    = "api-5d8f9c7b6a"
)

var (
	envOnce sync.Once
	testEnv *envtest.Environment
	admin   client.Client
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testEnv != nil {
		if err := testEnv.Stop(); err != nil {
			println("stopping the API server:", err.Error())
		}
	}
	os.Exit(code)
}

// apiServer starts the package's API server once, installs what config/ installs for
// approvals and waits until the admission policy is in force. It returns an admin client.
func apiServer(t *testing.T) client.Client {
	t.Helper()
	envOnce.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			envErr = errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or set it to the directory hack/k8s-binaries.sh prints")
			return
		}
		start := time.Now()
		testEnv = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
		}
		cfg, err := testEnv.Start()
		if err != nil {
			envErr = err
			return
		}
		if admin, envErr = client.New(cfg, client.Options{Scheme: convoyscheme.New()}); envErr != nil {
			return
		}
		started := time.Now()
		envErr = setUp(context.Background())
		fmt.Printf("API server started in %s; admission policy in force %s after it was created\n",
			started.Sub(start).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	})
	if envErr != nil {
		t.Fatalf("starting the API server: %v", envErr)
	}
	return admin
}

func setUp(ctx context.Context) error {
	prefix, err := namePrefix()
	if err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	for _, file := range []string{"config/admission/rollout-approval-policy.yaml", "config/rbac/rollout_approver_role.yaml"} {
		o, err := manifest.DecodeFile(filepath.Join(repoRoot, file))
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		objs = append(objs, o...)
	}
	for _, o := range objs {
		// What kustomize does to config/ in config/default: the name prefix, and the binding
		// follows its policy's name.
		o.SetName(prefix + o.GetName())
		if o.GetKind() == "ValidatingAdmissionPolicyBinding" {
			policy, _, _ := unstructured.NestedString(o.Object, "spec", "policyName")
			if err := unstructured.SetNestedField(o.Object, prefix+policy, "spec", "policyName"); err != nil {
				return err
			}
		}
		if err := admin.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return err
	}
	// The policy is in force once the API server's policy controller has compiled it: until
	// then a foreign approver passes. Ask with dry-run until it is refused.
	probe := approval("probe", "api", "seoul", target, "nobody")
	deadline := time.Now().Add(time.Minute)
	for {
		err := admin.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), "spec.approver must be the user creating the approval") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the admission policy is not in force after a minute; last answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// namePrefix is config/default's namePrefix ("convoy-").
func namePrefix() (string, error) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "config", "default", "kustomization.yaml"))
	if err != nil {
		return "", err
	}
	var k struct {
		NamePrefix string `json:"namePrefix"`
	}
	return k.NamePrefix, yaml.Unmarshal(data, &k)
}

// user returns a client for a user of the API server, with the approver ClusterRole bound in
// the test namespace when bound is set.
func user(t *testing.T, name string, bound bool) client.Client {
	t.Helper()
	apiServer(t)
	u, err := testEnv.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bound {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "approvers-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ApproverRole},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}},
		}
		if err := admin.Create(context.Background(), rb); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	c, err := client.New(u.Config(), client.Options{Scheme: convoyscheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func approval(name, project, wave, revision, approver string) *convoyv1.RolloutApproval {
	return &convoyv1.RolloutApproval{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       convoyv1.RolloutApprovalSpec{Project: project, Wave: wave, Revision: revision, Approver: approver},
	}
}

// newProject creates a Project with the given strategy (none when empty) and rollout status.
func newProject(t *testing.T, name, strategy string, ro *convoyv1.ProjectRolloutStatus) {
	t.Helper()
	ctx := context.Background()
	p := &convoyv1.Project{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: convoyv1.ProjectSpec{
			Owner:     convoyv1.ProjectOwner{Team: "payments"},
			Placement: convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1", "tokyo-1"}},
		},
	}
	if strategy != "" {
		p.Spec.RolloutStrategy = &convoyv1.PolicyReference{Name: strategy}
	}
	if err := admin.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ro != nil {
		p.Status.Rollout = ro
		if err := admin.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

var strategyOnce sync.Once

// staged creates the RolloutStrategy "staged": canary, then seoul (approval required), then
// the rest (approval required).
func staged(t *testing.T) {
	t.Helper()
	strategyOnce.Do(func() {
		s := &convoyv1.RolloutStrategy{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "staged"},
			Spec: convoyv1.RolloutStrategySpec{Waves: []convoyv1.RolloutWave{
				{Name: "canary", Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{"canary-1"}}},
				{Name: "seoul", Clusters: &convoyv1.ClusterSelection{ClusterNames: []string{"seoul-1"}}, RequireApproval: true},
				{Name: "rest", RequireApproval: true},
			}},
		}
		if err := admin.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	})
}

func waiting() *convoyv1.ProjectRolloutStatus {
	return &convoyv1.ProjectRolloutStatus{
		Strategy: "staged", Phase: convoyv1.RolloutWaitingForApproval, TargetRevision: target, StableRevision: "api-0000000000",
		CurrentWave: "seoul",
		Waves: []convoyv1.RolloutWaveStatus{
			{Name: "canary", Phase: convoyv1.WaveSucceeded, Clusters: []string{"canary-1"}},
			{Name: "seoul", Phase: convoyv1.WaveWaitingForApproval, Clusters: []string{"seoul-1"}},
			{Name: "rest", Phase: convoyv1.WavePending, Clusters: []string{"tokyo-1"}},
		},
	}
}

// approvals returns the approvals of a Project.
func approvals(t *testing.T, project string) []convoyv1.RolloutApproval {
	t.Helper()
	list := &convoyv1.RolloutApprovalList{}
	if err := admin.List(context.Background(), list, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	var out []convoyv1.RolloutApproval
	for _, a := range list.Items {
		if a.Spec.Project == project {
			out = append(out, a)
		}
	}
	return out
}

// An approver bound to convoy-rollout-approver approves with `convoy approve`: the approval
// carries their name as the API server authenticated them.
func TestApproveAsApprover(t *testing.T) {
	ctx := context.Background()
	alice := user(t, "alice", true)
	staged(t)
	newProject(t, "api", "staged", waiting())

	// --dry-run prints the approval and creates nothing.
	var out bytes.Buffer
	res, err := Approve(ctx, alice, Options{Namespace: namespace, Project: "api", Wave: "seoul", Reason: "CHG-1234", DryRun: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: RolloutApproval", "name: api-seoul-5d8f9c7b6a", "approver: alice", "revision: " + target, "reason: CHG-1234"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--dry-run output lacks %q:\n%s", want, out.String())
		}
	}
	if res.Created || len(approvals(t, "api")) != 0 {
		t.Fatalf("--dry-run created an approval")
	}

	out.Reset()
	res, err = Approve(ctx, alice, Options{Namespace: namespace, Project: "api", Wave: "seoul", Reason: "CHG-1234", Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Approved wave seoul of shop/api revision api-5d8f9c7b6a as alice\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	got := &convoyv1.RolloutApproval{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "api-seoul-5d8f9c7b6a"}, got); err != nil {
		t.Fatal(err)
	}
	want := convoyv1.RolloutApprovalSpec{Project: "api", Revision: target, Wave: "seoul", Approver: "alice", Reason: "CHG-1234"}
	if got.Spec != want || !res.Created {
		t.Errorf("approval spec %+v (created %v), want %+v", got.Spec, res.Created, want)
	}

	// Again: nothing new, and it says who approved and when.
	out.Reset()
	res, err = Approve(ctx, alice, Options{Namespace: namespace, Project: "api", Wave: "seoul", Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	at := got.CreationTimestamp.UTC().Format(time.RFC3339)
	if want := "already approved by alice at " + at; !res.AlreadyApproved || !strings.Contains(out.String(), want) {
		t.Errorf("second approve: %q (already %v), want %q", out.String(), res.AlreadyApproved, want)
	}

	// A Pending wave may be approved ahead of time.
	out.Reset()
	res, err = Approve(ctx, alice, Options{Namespace: namespace, Project: "api", Wave: "rest", Revision: target, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || !res.Ahead || !strings.Contains(out.String(), "Approved wave rest of shop/api revision api-5d8f9c7b6a as alice") ||
		!strings.Contains(out.String(), "still Pending") {
		t.Errorf("approving the Pending wave: %+v, output %q", res, out.String())
	}
	if n := len(approvals(t, "api")); n != 2 {
		t.Errorf("%d approvals, want 2", n)
	}
}

// The admission policy refuses an approval in someone else's name, however it is made.
func TestPolicyRefusesAnotherApprover(t *testing.T) {
	ctx := context.Background()
	alice := user(t, "alice", true)
	err := alice.Create(ctx, approval("api-seoul-by-bob", "api", "seoul", target, "bob"))
	if err == nil {
		t.Fatal("alice created an approval in bob's name")
	}
	if want := "spec.approver must be the user creating the approval (alice), not bob"; !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want Forbidden with %q", err, want)
	}
	t.Logf("refused: %v", err)

	// An admin is no exception.
	err = admin.Create(ctx, approval("api-seoul-by-carol", "api", "seoul", target, "carol"))
	if err == nil || !strings.Contains(err.Error(), "spec.approver must be the user creating the approval") {
		t.Fatalf("admin creating an approval in carol's name: err = %v", err)
	}
}

// A user without the approver role can neither read the Project nor create an approval.
func TestUnboundUserIsForbidden(t *testing.T) {
	ctx := context.Background()
	mallory := user(t, "mallory", false)
	staged(t)
	newProject(t, "checkout", "staged", waiting())

	_, err := Approve(ctx, mallory, Options{Namespace: namespace, Project: "checkout", Wave: "seoul", Out: io.Discard})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "needs the ClusterRole convoy-rollout-approver bound in namespace shop") {
		t.Fatalf("convoy approve as mallory: err = %v, want Forbidden naming the role", err)
	}
	err = mallory.Create(ctx, approval("checkout-seoul-5d8f9c7b6a", "checkout", "seoul", target, "mallory"))
	if !apierrors.IsForbidden(err) || strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
		t.Fatalf("mallory creating an approval in her own name: err = %v, want Forbidden by RBAC", err)
	}
	if a := approvals(t, "checkout"); len(a) != 0 {
		t.Errorf("approval %s exists", a[0].Name)
	}
}

// An approval's spec cannot change (the CRD's rule); metadata can, by anyone allowed to
// update it: the policy leaves updates that keep the spec alone (garbage collector,
// controllers) to RBAC.
func TestSpecIsImmutable(t *testing.T) {
	ctx := context.Background()
	alice := user(t, "alice", true)
	a := approval("immutable", "orders", "tokyo", target, "alice")
	if err := alice.Create(ctx, a); err != nil {
		t.Fatal(err)
	}

	changed := a.DeepCopy()
	changed.Spec.Reason = "changed my mind"
	err := admin.Update(ctx, changed)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec is immutable") {
		t.Fatalf("updating the spec: err = %v, want Invalid: spec is immutable", err)
	}
	changed = a.DeepCopy()
	changed.Spec.Approver = "admin"
	if err := admin.Update(ctx, changed); err == nil {
		t.Fatal("the approver of an approval was changed")
	}

	// alice may not update at all (the role grants create and delete, not update).
	labelled := a.DeepCopy()
	labelled.Labels = map[string]string{"ticket": "chg-1234"}
	if err := alice.Update(ctx, labelled); !apierrors.IsForbidden(err) {
		t.Fatalf("alice updating her approval: err = %v, want Forbidden", err)
	}
	// Someone else may change metadata, when RBAC lets them.
	if err := admin.Update(ctx, labelled); err != nil {
		t.Fatalf("admin labelling alice's approval: %v", err)
	}
	// And alice may withdraw her approval.
	if err := alice.Delete(ctx, labelled); err != nil {
		t.Fatalf("alice deleting her approval: %v", err)
	}
}

// `convoy approve` refuses what it cannot approve, and says why.
func TestApproveRefuses(t *testing.T) {
	ctx := context.Background()
	alice := user(t, "alice", true)
	staged(t)
	newProject(t, "web", "", nil)
	newProject(t, "billing", "staged", nil)
	newProject(t, "search", "staged", waiting())
	halted := waiting()
	halted.Phase = convoyv1.RolloutHalted
	halted.Waves[1].Phase = convoyv1.WaveFailed
	newProject(t, "cart", "staged", halted)

	for _, tc := range []struct {
		name     string
		project  string
		wave     string
		revision string
		want     string
	}{
		{"no such Project", "nope", "seoul", "", "no Project shop/nope"},
		{"no rollout strategy", "web", "seoul", "", "no rollout to approve: Project shop/web has no spec.rolloutStrategy"},
		{"rollout not started", "billing", "seoul", "", "no rollout to approve yet: convoy has not started rolling Project shop/billing out with RolloutStrategy staged"},
		{"unknown wave", "search", "tokyo", "", "tokyo is not a wave of the rollout of shop/search revision api-5d8f9c7b6a (waves: canary, seoul, rest)"},
		{"wave succeeded", "search", "canary", "", "wave canary of shop/search revision api-5d8f9c7b6a is Succeeded: it is done, there is nothing to approve"},
		{"other revision", "search", "seoul", "api-1111111111", "the rollout of shop/search is of revision api-5d8f9c7b6a, not api-1111111111"},
		{"rollout halted", "cart", "rest", "", "the rollout of shop/cart revision api-5d8f9c7b6a is Halted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Approve(ctx, alice, Options{Namespace: namespace, Project: tc.project, Wave: tc.wave, Revision: tc.revision, Out: io.Discard})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
	for _, p := range []string{"nope", "web", "billing", "search", "cart"} {
		if a := approvals(t, p); len(a) != 0 {
			t.Errorf("approval %s was created", a[0].Name)
		}
	}
}
