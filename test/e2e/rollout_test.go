//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// kubectl runs the fleet's kubectl against the manager cluster.
func kubectl(args ...string) string {
	out, err := exec.Command("../../hack/k8s-binaries.sh", "kubectl").Output()
	Expect(err).NotTo(HaveOccurred(), "locating kubectl")
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	bin := filepath.Join(lines[len(lines)-1], "kubectl")
	out, err = exec.Command(bin, append([]string{"--kubeconfig", f.KubeconfigPath(f.ManagerName)}, args...)...).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	return string(out)
}

var _ = Describe("A staged rollout on the local fleet", func() {
	It("rolls the sample Project out canary (seoul-1), then seoul-2, then tokyo-1, each after a soak, visible in kubectl get projects -o wide", func() {
		key := client.ObjectKey{Namespace: "default", Name: "shop"}
		project := &convoyv1.Project{}
		rollout := func(g Gomega) *convoyv1.ProjectRolloutStatus {
			g.Expect(manager.Get(ctx, key, project)).To(Succeed())
			g.Expect(project.Spec.RolloutStrategy).NotTo(BeNil(), "the sample Project names the sample RolloutStrategy")
			g.Expect(project.Status.Rollout).NotTo(BeNil())
			return project.Status.Rollout
		}
		Eventually(func(g Gomega) {
			g.Expect(rollout(g).Phase).To(Equal(convoyv1.RolloutComplete))
		}).Should(Succeed())

		By("changing the api's pod template")
		stamp := time.Now().UTC().Format(time.RFC3339Nano)
		Eventually(func(g Gomega) {
			g.Expect(manager.Get(ctx, key, project)).To(Succeed())
			tpl := &project.Spec.Workloads[0].Template
			if tpl.Annotations == nil {
				tpl.Annotations = map[string]string{}
			}
			tpl.Annotations["convoy.dev/e2e-rollout"] = stamp
			g.Expect(manager.Update(ctx, project)).To(Succeed())
		}).Should(Succeed())

		By("watching when each cluster's Deployment gets the change")
		reached := map[string]time.Time{}
		var wide string
		deadline := time.Now().Add(5 * time.Minute)
		for len(reached) < len(clusters) && time.Now().Before(deadline) {
			for _, c := range clusters {
				d := &appsv1.Deployment{}
				if _, seen := reached[c]; !seen && remotes[c].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "api"}, d) == nil &&
					d.Spec.Template.Annotations["convoy.dev/e2e-rollout"] == stamp {
					reached[c] = time.Now()
				}
			}
			if _, ok := reached["seoul-2"]; ok && wide == "" {
				wide = kubectl("get", "projects", "-n", "default", "-o", "wide")
			}
			time.Sleep(500 * time.Millisecond)
		}
		Expect(reached).To(HaveLen(len(clusters)), "clusters the change reached within 5 minutes")
		GinkgoWriter.Printf("Reached seoul-1 %s, seoul-2 %s, tokyo-1 %s\n%s", reached["seoul-1"].Format(time.TimeOnly),
			reached["seoul-2"].Format(time.TimeOnly), reached["tokyo-1"].Format(time.TimeOnly), wide)
		// Each wave soaks 20s (config/samples/rolloutstrategy.yaml) after its clusters are
		// available before the next starts. Observed by polling every 500ms, so give or take a
		// second; the status records it exactly (below).
		Expect(reached["seoul-2"].Sub(reached["seoul-1"])).To(BeNumerically(">=", 19*time.Second))
		Expect(reached["tokyo-1"].Sub(reached["seoul-2"])).To(BeNumerically(">=", 19*time.Second))
		Expect(wide).To(And(ContainSubstring("ROLLOUT"), ContainSubstring("WAVE"), ContainSubstring("REVISION")))
		Expect(wide).To(MatchRegexp(`shop\s.*Progressing\s+seoul\s`))

		Eventually(func(g Gomega) {
			ro := rollout(g)
			g.Expect(ro.Phase).To(Equal(convoyv1.RolloutComplete), ro.Message)
			var waves []string
			for _, w := range ro.Waves {
				g.Expect(w.Phase).To(Equal(convoyv1.WaveSucceeded))
				waves = append(waves, w.Name+"="+strings.Join(w.Clusters, ","))
			}
			g.Expect(waves).To(Equal([]string{"canary=seoul-1", "seoul=seoul-2", "rest=tokyo-1"}))
			for i := 1; i < len(ro.Waves); i++ {
				soaked := ro.Waves[i].StartTime.Sub(ro.Waves[i-1].SoakStartTime.Time)
				g.Expect(soaked).To(BeNumerically(">=", 20*time.Second), "wave %s started %s after wave %s began to soak", ro.Waves[i].Name, soaked, ro.Waves[i-1].Name)
			}
		}).Should(Succeed())
	})
})
