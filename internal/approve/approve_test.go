package approve

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

func TestParseProject(t *testing.T) {
	for _, tc := range []struct {
		arg, namespace, name string
		ok                   bool
	}{
		{"shop/api", "shop", "api", true},
		{"api", "", "", false},
		{"/api", "", "", false},
		{"shop/", "", "", false},
		{"shop/api/x", "", "", false},
	} {
		ns, name, err := ParseProject(tc.arg)
		if (err == nil) != tc.ok || ns != tc.namespace || name != tc.name {
			t.Errorf("ParseProject(%q) = %q %q %v", tc.arg, ns, name, err)
		}
	}
}

func TestName(t *testing.T) {
	sha10 := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])[:10]
	}
	long := strings.Repeat("p", 200) + "." + strings.Repeat("q", 52) // a 253-character Project name
	for _, tc := range []struct {
		name, project, wave, revision, want string
	}{
		{"convoy's revision names", "api", "seoul", "api-5d8f9c7b6a", "api-seoul-5d8f9c7b6a"},
		{"project with dashes", "shop-api", "eu-west", "shop-api-0123456789", "shop-api-eu-west-0123456789"},
		{"revision of another form", "api", "seoul", "release-42", "api-seoul-42"},
		{"revision without dash", "api", "seoul", "v7", "api-seoul-v7"},
		{"suffix not a label", "api", "seoul", "api-v1.2", "api-seoul-" + sha10("api-v1.2")},
		{"long suffix", "api", "seoul", "api-" + strings.Repeat("a", 40), "api-seoul-" + sha10("api-"+strings.Repeat("a", 40))},
		{"long project", long, "seoul", long + "-5d8f9c7b6a", long[:253-len("-seoul-5d8f9c7b6a")] + "-seoul-5d8f9c7b6a"},
		{"long project cut at a dot", strings.Repeat("p", 235) + "." + strings.Repeat("q", 17), "seoul", "x-5d8f9c7b6a",
			strings.Repeat("p", 235) + "-seoul-5d8f9c7b6a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Name(tc.project, tc.wave, tc.revision)
			if got != tc.want {
				t.Errorf("Name = %q, want %q", got, tc.want)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("Name = %q (%d characters), not a valid object name: %v", got, len(got), errs)
			}
		})
	}
}

func project(strategy string, ro *convoyv1.ProjectRolloutStatus) *convoyv1.Project {
	p := &convoyv1.Project{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"}}
	if strategy != "" {
		p.Spec.RolloutStrategy = &convoyv1.PolicyReference{Name: strategy}
	}
	p.Status.Rollout = ro
	return p
}

func rollout(phase convoyv1.RolloutPhase, waves ...convoyv1.RolloutWaveStatus) *convoyv1.ProjectRolloutStatus {
	return &convoyv1.ProjectRolloutStatus{Strategy: "staged", Phase: phase, TargetRevision: "api-5d8f9c7b6a", StableRevision: "api-0000000000", Waves: waves}
}

func wave(name string, phase convoyv1.WavePhase) convoyv1.RolloutWaveStatus {
	return convoyv1.RolloutWaveStatus{Name: name, Phase: phase}
}

func TestCheck(t *testing.T) {
	waiting := rollout(convoyv1.RolloutWaitingForApproval,
		wave("canary", convoyv1.WaveSucceeded), wave("seoul", convoyv1.WaveWaitingForApproval), wave("rest", convoyv1.WavePending))
	for _, tc := range []struct {
		name     string
		project  *convoyv1.Project
		wave     string
		revision string
		wantErr  string // empty: approvable
	}{
		{"waiting for approval", project("staged", waiting), "seoul", "", ""},
		{"pending: ahead of time", project("staged", waiting), "rest", "", ""},
		{"revision given and current", project("staged", waiting), "seoul", "api-5d8f9c7b6a", ""},
		{"no strategy", project("", nil), "seoul", "", "Project shop/api has no spec.rolloutStrategy"},
		{"no rollout yet", project("staged", nil), "seoul", "", "not started rolling Project shop/api out with RolloutStrategy staged"},
		{"unknown wave", project("staged", waiting), "tokyo", "", "tokyo is not a wave of the rollout of shop/api revision api-5d8f9c7b6a (waves: canary, seoul, rest)"},
		{"no waves", project("staged", rollout(convoyv1.RolloutComplete)), "seoul", "", "has no waves"},
		{"succeeded", project("staged", waiting), "canary", "", "wave canary of shop/api revision api-5d8f9c7b6a is Succeeded: it is done"},
		{"other revision", project("staged", waiting), "seoul", "api-1111111111", "is of revision api-5d8f9c7b6a, not api-1111111111"},
		{"progressing", project("staged", rollout(convoyv1.RolloutProgressing, wave("seoul", convoyv1.WaveProgressing))), "seoul", "", "is Progressing: it has started"},
		{"soaking", project("staged", rollout(convoyv1.RolloutProgressing, wave("seoul", convoyv1.WaveSoaking))), "seoul", "", "is Soaking: it has started"},
		{"failed", project("staged", rollout(convoyv1.RolloutProgressing, wave("seoul", convoyv1.WaveFailed))), "seoul", "", "is Failed: an approval does not restart it"},
		{"halted", project("staged", rollout(convoyv1.RolloutHalted, wave("seoul", convoyv1.WaveFailed), wave("rest", convoyv1.WavePending))), "rest", "", "is Halted: no further wave starts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev, ws, err := check(tc.project, tc.wave, tc.revision)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rev != "api-5d8f9c7b6a" || ws == nil || ws.Name != tc.wave {
				t.Errorf("check = %q %+v, want the target revision and wave %s", rev, ws, tc.wave)
			}
		})
	}
}
