// Command convoy registers service clusters with convoy, shows the fleet and approves
// rollout waves. Installed as
// kubectl-convoy on the PATH it also works as `kubectl convoy`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-dev/convoy/internal/approve"
	"github.com/convoy-dev/convoy/internal/join"
	convoyscheme "github.com/convoy-dev/convoy/internal/scheme"
	"github.com/convoy-dev/convoy/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := command().ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

// clusterFlags select a cluster from a kubeconfig file and context.
type clusterFlags struct{ kubeconfig, context string }

func (f clusterFlags) config() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.kubeconfig != "" {
		rules.ExplicitPath = f.kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context}).ClientConfig()
}

func (f clusterFlags) client() (client.Client, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: convoyscheme.New()})
}

func command() *cobra.Command {
	name := "convoy"
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-") {
		name = "kubectl convoy"
	}
	var manager clusterFlags
	root := &cobra.Command{
		Use:           name,
		Short:         "Register service clusters with convoy, see the fleet and approve rollout waves",
		SilenceUsage:  true,
		Version:       version.Version,
		SilenceErrors: false,
	}
	root.PersistentFlags().StringVar(&manager.kubeconfig, "manager-kubeconfig", "", "kubeconfig of the manager cluster (default: KUBECONFIG or ~/.kube/config)")
	root.PersistentFlags().StringVar(&manager.context, "manager-context", "", "context in the manager kubeconfig (default: its current context)")
	root.AddCommand(joinCommand(&manager), unjoinCommand(&manager), statusCommand(&manager), approveCommand(&manager))
	return root
}

func joinCommand(manager *clusterFlags) *cobra.Command {
	var service clusterFlags
	var o join.Options
	var zones []string
	var labels map[string]string
	c := &cobra.Command{
		Use:   "join NAME --kubeconfig SERVICE_KUBECONFIG",
		Short: "Register a service cluster: create convoy's least-privilege identity there and the ServiceCluster here",
		Long: `join creates, in the service cluster, the namespace convoy-system with the ServiceAccount convoy,
its ClusterRoles (convoy-cluster, bound cluster-wide: namespaces and nodes only; convoy-managed-namespace,
bound by convoy in each namespace it creates) and a ValidatingAdmissionPolicy that keeps the identity to
convoy's own namespaces. It issues a token for the identity (TokenRequest, --token-ttl) and writes, in the
manager cluster, the kubeconfig Secret and the ServiceCluster (accessScope ManagedNamespaces).
Region and zones are read from the nodes' topology labels unless given. Running it again changes only what
differs and keeps a token that still works; --rotate-token issues a new one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			o.Name, o.Zones, o.Labels, o.Out = args[0], zones, labels, cmd.OutOrStdout()
			if o.Service, err = service.config(); err != nil {
				return fmt.Errorf("service cluster: %w", err)
			}
			if o.Manager, err = manager.client(); err != nil {
				return fmt.Errorf("manager cluster: %w", err)
			}
			res, err := join.Join(cmd.Context(), o)
			if err != nil {
				return err
			}
			if o.DryRun {
				return nil
			}
			token := "kept the stored token, which still works"
			if res.TokenIssued {
				token = "issued a token valid until " + res.Expires.UTC().Format(time.RFC3339) + "; run join again with --rotate-token before then"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ServiceCluster %s joined (region %q, zones %v); %s.\nWatch it connect: kubectl get servicecluster %s\n",
				o.Name, res.Region, res.Zones, token, o.Name)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&service.kubeconfig, "kubeconfig", "", "kubeconfig with admin rights in the service cluster (required)")
	f.StringVar(&service.context, "context", "", "context in that kubeconfig (default: its current context)")
	f.StringVar(&o.Server, "server", "", "the service cluster's API address as the convoy manager reaches it (default: the one in --kubeconfig)")
	f.StringVar(&o.Region, "region", "", "region of the cluster (default: the nodes' topology.kubernetes.io/region)")
	f.StringSliceVar(&zones, "zones", nil, "zones of the cluster, comma-separated (default: the nodes' topology.kubernetes.io/zone)")
	f.StringToStringVar(&labels, "labels", nil, "labels of the ServiceCluster, k=v,... (what Projects select clusters by)")
	f.StringVar(&o.SecretNamespace, "secret-namespace", "convoy-system", "manager namespace for the kubeconfig Secret")
	f.DurationVar(&o.TokenTTL, "token-ttl", 365*24*time.Hour, "lifetime of the identity's token (the API server may cap it)")
	f.BoolVar(&o.RotateToken, "rotate-token", false, "issue a new token even if the stored one still works")
	f.BoolVar(&o.DryRun, "dry-run", false, "print every object instead of writing it")
	_ = c.MarkFlagRequired("kubeconfig")
	return c
}

func unjoinCommand(manager *clusterFlags) *cobra.Command {
	var service clusterFlags
	var o join.UnjoinOptions
	c := &cobra.Command{
		Use:   "unjoin NAME --kubeconfig SERVICE_KUBECONFIG",
		Short: "Remove what join created, after the ServiceCluster has been deleted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			o.Name, o.Out = args[0], cmd.OutOrStdout()
			if o.Service, err = service.config(); err != nil {
				return fmt.Errorf("service cluster: %w", err)
			}
			if o.Manager, err = manager.client(); err != nil {
				return fmt.Errorf("manager cluster: %w", err)
			}
			return join.Unjoin(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&service.kubeconfig, "kubeconfig", "", "kubeconfig with admin rights in the service cluster (required)")
	f.StringVar(&service.context, "context", "", "context in that kubeconfig (default: its current context)")
	f.StringVar(&o.SecretNamespace, "secret-namespace", "convoy-system", "manager namespace of the kubeconfig Secret")
	f.BoolVar(&o.Force, "force", false, "remove the identity even though namespaces convoy created remain (they stay, unmanaged)")
	f.BoolVar(&o.DryRun, "dry-run", false, "print what would be deleted")
	_ = c.MarkFlagRequired("kubeconfig")
	return c
}

func statusCommand(manager *clusterFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status [NAMESPACE/PROJECT]",
		Short: "The fleet at a glance: clusters with health and last contact, Projects per cluster with the reason",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := manager.client()
			if err != nil {
				return fmt.Errorf("manager cluster: %w", err)
			}
			project := ""
			if len(args) == 1 {
				project = args[0]
			}
			return join.Status(cmd.Context(), c, project, time.Now(), cmd.OutOrStdout())
		},
	}
}

func approveCommand(manager *clusterFlags) *cobra.Command {
	var o approve.Options
	c := &cobra.Command{
		Use:   "approve NAMESPACE/PROJECT --wave WAVE",
		Short: "Let a wave of a Project's rollout start: create a RolloutApproval in your name",
		Long: `approve lets a wave that requires approval (requireApproval in the Project's RolloutStrategy)
start. It reads the Project in the manager cluster, checks that the wave is one of the rollout's
and is WaitingForApproval, or still Pending (approving ahead of time), finds who you are as the
API server authenticates you (SelfSubjectReview, like kubectl auth whoami) and creates a
RolloutApproval <project>-<wave>-<revision hash> for the revision being rolled out
(status.rollout.targetRevision), with you as the approver. An approval counts only for the
revision it names: a later change needs a new one. Delete it to withdraw it before the wave starts.

You need the ClusterRole convoy-rollout-approver bound in the Project's namespace. The admission
policy convoy-rollout-approval refuses an approval whose spec.approver is not the user creating
it, whichever way it is made.

The same with kubectl:

  NS=shop PROJECT=api WAVE=seoul
  REV=$(kubectl get project -n $NS $PROJECT -o jsonpath='{.status.rollout.targetRevision}')
  kubectl apply -f - <<EOF
  apiVersion: convoy.dev/v1alpha1
  kind: RolloutApproval
  metadata:
    name: $PROJECT-$WAVE-${REV##*-}
    namespace: $NS
  spec:
    project: $PROJECT
    wave: $WAVE
    revision: $REV
    approver: $(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')
    reason: CHG-1234
  EOF`,
		Example: `  convoy approve shop/api --wave seoul --reason CHG-1234
  convoy approve shop/api --wave seoul --revision api-5d8f9c7b6a   # only if that is still the revision rolling out
  convoy approve shop/api --wave rest --dry-run                     # print the RolloutApproval`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Namespace, o.Project, err = approve.ParseProject(args[0]); err != nil {
				return err
			}
			c, err := manager.client()
			if err != nil {
				return fmt.Errorf("manager cluster: %w", err)
			}
			o.Out = cmd.OutOrStdout()
			_, err = approve.Approve(cmd.Context(), c, o)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.Wave, "wave", "", "the wave to approve (required; see kubectl get project -n NAMESPACE PROJECT -o yaml, status.rollout.waves)")
	f.StringVar(&o.Reason, "reason", "", "a note for the record, for example a change ticket")
	f.StringVar(&o.Revision, "revision", "", "the revision to approve (default: the one being rolled out); refused unless it is that one")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the RolloutApproval instead of creating it")
	_ = c.MarkFlagRequired("wave")
	return c
}
