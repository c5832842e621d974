package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// ClusterObjects is everything convoy wants in one service cluster for one Project.
type ClusterObjects struct {
	Namespace         *corev1.Namespace
	ServiceAccounts   []*corev1.ServiceAccount
	ConfigMaps        []*corev1.ConfigMap
	Secrets           []*corev1.Secret
	Deployments       []*appsv1.Deployment
	CronJobs          []*batchv1.CronJob
	Services          []*corev1.Service
	Autoscalers       []*autoscalingv2.HorizontalPodAutoscaler
	DisruptionBudgets []*policyv1.PodDisruptionBudget
	// DestinationRules carry Istio settings; rendered only for clusters that serve them.
	DestinationRules []*unstructured.Unstructured
	// Warnings name settings that have no effect in this cluster.
	Warnings []string
	// AppliedPolicies are the policies the objects were rendered from, sorted by kind and name.
	AppliedPolicies []convoyv1.AppliedPolicy
}

// Policies are the policies a Project references, by name, and what else rendering needs
// to know beyond the Project and the cluster.
type Policies struct {
	GracefulShutdown      map[string]*convoyv1.GracefulShutdownPolicy
	LocalityLoadBalancing map[string]*convoyv1.LocalityLoadBalancing
	// DrainHelperImage is the convoy-drain image used unless a policy names its own.
	DrainHelperImage string
	// Regions of every cluster the Project targets: the default locality failover is a
	// ring over them.
	Regions []string
	// Secrets the Project references (spec.secrets), read from its namespace in the manager.
	Secrets map[string]*corev1.Secret
}

// All returns the objects in apply order: the namespace first, then what pods need to start
// (ServiceAccounts, ConfigMaps, Secrets), then the workloads and what refers to them.
func (o *ClusterObjects) All() []client.Object {
	all := []client.Object{o.Namespace}
	all = appendObjects(all, o.ServiceAccounts)
	all = appendObjects(all, o.ConfigMaps)
	all = appendObjects(all, o.Secrets)
	all = appendObjects(all, o.Deployments)
	all = appendObjects(all, o.CronJobs)
	all = appendObjects(all, o.Services)
	all = appendObjects(all, o.Autoscalers)
	all = appendObjects(all, o.DisruptionBudgets)
	return appendObjects(all, o.DestinationRules)
}

func appendObjects[T client.Object](all []client.Object, objs []T) []client.Object {
	for _, obj := range objs {
		all = append(all, obj)
	}
	return all
}

// OwnerLabels are the labels that mark an object in a service cluster as owned by a Project.
func OwnerLabels(project *convoyv1.Project) map[string]string {
	return map[string]string{
		convoyv1.ManagedByLabel:        convoyv1.ManagedByValue,
		convoyv1.ProjectNamespaceLabel: project.Namespace,
		convoyv1.ProjectNameLabel:      project.Name,
	}
}

// SelectorLabels select a workload's pods. They are immutable once a Deployment exists.
func SelectorLabels(project *convoyv1.Project, workload string) map[string]string {
	return map[string]string{
		convoyv1.ProjectNamespaceLabel: project.Namespace,
		convoyv1.ProjectNameLabel:      project.Name,
		convoyv1.WorkloadLabel:         workload,
	}
}

func workloadLabels(project *convoyv1.Project, workload string) map[string]string {
	l := OwnerLabels(project)
	l[convoyv1.WorkloadLabel] = workload
	return l
}

// objectLabels are the labels of an object convoy writes (not of pods): ownership, the
// workload when there is one, and the owning team.
func objectLabels(project *convoyv1.Project, workload string) map[string]string {
	l := OwnerLabels(project)
	if workload != "" {
		l[convoyv1.WorkloadLabel] = workload
	}
	l[convoyv1.TeamLabel] = project.Spec.Owner.Team
	return l
}

// objectAnnotations name the owner's contacts, or are nil when there are none.
func objectAnnotations(project *convoyv1.Project) map[string]string {
	if len(project.Spec.Owner.Contacts) == 0 {
		return nil
	}
	return map[string]string{convoyv1.ContactsAnnotation: strings.Join(project.Spec.Owner.Contacts, ", ")}
}

// ForCluster renders the objects a Project wants in one cluster, with the cluster's
// overrides applied.
func ForCluster(project *convoyv1.Project, cluster *convoyv1.ServiceCluster, policies Policies) (*ClusterObjects, error) {
	ns := project.RemoteNamespace()
	out := &ClusterObjects{
		Namespace: &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: objectLabels(project, ""), Annotations: objectAnnotations(project)},
		},
	}
	overrides, err := overridesFor(project, cluster)
	if err != nil {
		return nil, err
	}
	out.ConfigMaps = configMaps(project, ns, overrides)
	if out.Secrets, err = secrets(project, ns, policies.Secrets); err != nil {
		return nil, err
	}
	applied := map[string]convoyv1.AppliedPolicy{}
	record := func(kind string, obj metav1.Object) {
		applied[kind+"/"+obj.GetName()] = convoyv1.AppliedPolicy{Kind: kind, Name: obj.GetName(), Generation: obj.GetGeneration()}
	}
	shutdownPolicy := func(i int, w *convoyv1.Workload) (*convoyv1.GracefulShutdownPolicy, error) {
		ref := ShutdownPolicyRef(project, w)
		if ref == nil {
			return nil, nil
		}
		policy := policies.GracefulShutdown[ref.Name]
		if policy == nil {
			return nil, fmt.Errorf("spec.workloads[%d] (%s): GracefulShutdownPolicy %q not found", i, w.Name, ref.Name)
		}
		record(convoyv1.KindGracefulShutdownPolicy, policy)
		return policy, nil
	}
	for i := range project.Spec.Workloads {
		w := &project.Spec.Workloads[i]
		d := deployment(project, ns, w)
		for _, o := range overrides {
			applyOverride(d, w.Name, o)
		}
		if w.RolloutOnConfigChange == nil || *w.RolloutOnConfigChange {
			if hash := configHash(&d.Spec.Template.Spec, out.ConfigMaps, out.Secrets, policies.Secrets); hash != "" {
				setAnnotation(&d.Spec.Template, ConfigHashAnnotation, hash)
			}
		}
		if w.ServiceAccount != nil {
			out.ServiceAccounts = append(out.ServiceAccounts, serviceAccount(project, ns, w, overrides))
			d.Spec.Template.Spec.ServiceAccountName = w.Name
		}
		if w.Autoscaling != nil {
			d.Spec.Replicas = nil // the autoscaler's; admission refuses replicas here anyway
			out.Autoscalers = append(out.Autoscalers, autoscaler(project, ns, w, overrides))
		}
		if w.DisruptionBudget != nil {
			out.DisruptionBudgets = append(out.DisruptionBudgets, disruptionBudget(project, ns, w))
		}
		// The API server copies serviceAccountName into its deprecated alias serviceAccount
		// and back. Unless convoy owns the alias too, removing the name later leaves the
		// alias, which restores it: pods would keep asking for a ServiceAccount convoy pruned.
		d.Spec.Template.Spec.DeprecatedServiceAccount = d.Spec.Template.Spec.ServiceAccountName
		policy, err := shutdownPolicy(i, w)
		if err != nil {
			return nil, err
		}
		if w.CronJob != nil {
			out.CronJobs = append(out.CronJobs, cronJob(project, ns, w, d.Spec.Template, policy, overrides))
			continue
		}
		var svc *corev1.Service
		if len(w.Ports) > 0 {
			svc = service(project, ns, w)
		}
		var pool *convoyv1.ConnectionTuning
		if policy != nil {
			warnings, err := applyGracefulShutdown(d, &policy.Spec, cluster.Status.Capabilities, policies.DrainHelperImage)
			if err != nil {
				return nil, fmt.Errorf("spec.workloads[%d] (%s): GracefulShutdownPolicy %s: %w", i, w.Name, policy.Name, err)
			}
			for _, warning := range append(warnings, drainPortWarnings(policy.Spec.PreStop, &w.Template, w.Ports)...) {
				out.Warnings = append(out.Warnings, fmt.Sprintf("GracefulShutdownPolicy %s on workload %s: %s", policy.Name, w.Name, warning))
			}
			pool = policy.Spec.ConnectionPool
		}
		var locality *convoyv1.LocalityLoadBalancing
		if ref := LocalityPolicyRef(project, w); ref != nil {
			if locality = policies.LocalityLoadBalancing[ref.Name]; locality == nil {
				return nil, fmt.Errorf("spec.workloads[%d] (%s): LocalityLoadBalancing %q not found", i, w.Name, ref.Name)
			}
			record(convoyv1.KindLocalityLoadBalancing, locality)
			if warning := applyZoneSpread(&d.Spec.Template.Spec, SelectorLabels(project, w.Name), locality.Spec.ZoneSpread, len(cluster.Spec.Zones)); warning != "" {
				out.Warnings = append(out.Warnings, fmt.Sprintf("LocalityLoadBalancing %s on workload %s: %s", locality.Name, w.Name, warning))
			}
		}
		out.Deployments = append(out.Deployments, d)
		if svc == nil {
			continue
		}
		out.Services = append(out.Services, svc)
		version := cluster.Status.Capabilities.DestinationRuleVersion()
		switch {
		case pool == nil && locality == nil:
			// Nothing for Istio to do.
		case version != "":
			var spec *convoyv1.LocalityLoadBalancingSpec
			if locality != nil {
				spec = &locality.Spec
			}
			out.DestinationRules = append(out.DestinationRules, destinationRule(project, ns, w.Name, version, trafficPolicy(pool, spec, policies.Regions)))
		default:
			if pool != nil {
				out.Warnings = append(out.Warnings, fmt.Sprintf("GracefulShutdownPolicy %s: connectionPool has no effect on workload %s: the cluster serves no networking.istio.io DestinationRule", ShutdownPolicyRef(project, w).Name, w.Name))
			}
			if locality != nil {
				out.Warnings = append(out.Warnings, trafficDistributionFallback(svc, locality.Name, cluster.Status.Capabilities.TrafficDistribution))
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(applied)) {
		out.AppliedPolicies = append(out.AppliedPolicies, applied[key])
	}
	return out, nil
}

// LocalityPolicyRef is the LocalityLoadBalancing of a workload: its own, else the Project's.
func LocalityPolicyRef(project *convoyv1.Project, w *convoyv1.Workload) *convoyv1.PolicyReference {
	if w.LocalityLoadBalancing != nil {
		return w.LocalityLoadBalancing
	}
	return project.Spec.LocalityLoadBalancing
}

// ShutdownPolicyRef is the GracefulShutdownPolicy of a workload: its own, else the Project's.
func ShutdownPolicyRef(project *convoyv1.Project, w *convoyv1.Workload) *convoyv1.PolicyReference {
	if w.GracefulShutdownPolicy != nil {
		return w.GracefulShutdownPolicy
	}
	return project.Spec.GracefulShutdownPolicy
}

func deployment(project *convoyv1.Project, ns string, w *convoyv1.Workload) *appsv1.Deployment {
	template := *w.Template.DeepCopy()
	podLabels := maps.Clone(template.Labels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, workloadLabels(project, w.Name))
	template.Labels = podLabels
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: workloadMeta(project, ns, w.Name),
		Spec: appsv1.DeploymentSpec{
			// nil replicas leaves spec.replicas to others (an HPA); see Workload.Replicas.
			Replicas: w.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(project, w.Name)},
			Template: template,
		},
	}
}

func service(project *convoyv1.Project, ns string, w *convoyv1.Workload) *corev1.Service {
	ports := make([]corev1.ServicePort, 0, len(w.Ports))
	for _, p := range w.Ports {
		target := intstr.FromInt32(p.Port)
		if p.TargetPort != nil {
			target = *p.TargetPort
		}
		protocol := p.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		ports = append(ports, corev1.ServicePort{Name: p.Name, Port: p.Port, TargetPort: target, Protocol: protocol})
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: workloadMeta(project, ns, w.Name),
		Spec: corev1.ServiceSpec{
			Selector: SelectorLabels(project, w.Name),
			Ports:    ports,
		},
	}
}
