package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// ClusterObjects is everything convoy wants in one service cluster for one Project.
type ClusterObjects struct {
	Namespace   *corev1.Namespace
	Deployments []*appsv1.Deployment
	Services    []*corev1.Service
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
}

// All returns the objects in apply order: the namespace first, then workloads.
func (o *ClusterObjects) All() []client.Object {
	all := []client.Object{o.Namespace}
	for _, d := range o.Deployments {
		all = append(all, d)
	}
	for _, s := range o.Services {
		all = append(all, s)
	}
	for _, dr := range o.DestinationRules {
		all = append(all, dr)
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
	applied := map[string]convoyv1.AppliedPolicy{}
	record := func(kind string, obj metav1.Object) {
		applied[kind+"/"+obj.GetName()] = convoyv1.AppliedPolicy{Kind: kind, Name: obj.GetName(), Generation: obj.GetGeneration()}
	}
	for i := range project.Spec.Workloads {
		w := &project.Spec.Workloads[i]
		d := deployment(project, ns, w)
		for _, o := range overrides {
			applyOverride(d, w.Name, o)
		}
		var svc *corev1.Service
		if len(w.Ports) > 0 {
			svc = service(project, ns, w)
		}
		var pool *convoyv1.ConnectionTuning
		if ref := ShutdownPolicyRef(project, w); ref != nil {
			policy := policies.GracefulShutdown[ref.Name]
			if policy == nil {
				return nil, fmt.Errorf("spec.workloads[%d] (%s): GracefulShutdownPolicy %q not found", i, w.Name, ref.Name)
			}
			warnings, err := applyGracefulShutdown(d, &policy.Spec, cluster.Status.Capabilities, policies.DrainHelperImage)
			if err != nil {
				return nil, fmt.Errorf("spec.workloads[%d] (%s): GracefulShutdownPolicy %s: %w", i, w.Name, ref.Name, err)
			}
			record(convoyv1.KindGracefulShutdownPolicy, policy)
			for _, warning := range append(warnings, drainPortWarnings(policy.Spec.PreStop, &w.Template, w.Ports)...) {
				out.Warnings = append(out.Warnings, fmt.Sprintf("GracefulShutdownPolicy %s on workload %s: %s", ref.Name, w.Name, warning))
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

func overridesFor(project *convoyv1.Project, cluster *convoyv1.ServiceCluster) ([]*convoyv1.ClusterOverride, error) {
	var matched []*convoyv1.ClusterOverride
	for i := range project.Spec.Overrides {
		o := &project.Spec.Overrides[i]
		ok, err := Matches(o.Clusters, cluster)
		if err != nil {
			return nil, fmt.Errorf("spec.overrides[%d].clusters: %w", i, err)
		}
		if ok {
			matched = append(matched, o)
		}
	}
	return matched, nil
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
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        w.Name,
			Namespace:   ns,
			Labels:      objectLabels(project, w.Name),
			Annotations: objectAnnotations(project),
		},
		Spec: appsv1.DeploymentSpec{
			// nil replicas leaves spec.replicas to others (an HPA); see Workload.Replicas.
			Replicas: w.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(project, w.Name)},
			Template: template,
		},
	}
}

func applyOverride(d *appsv1.Deployment, workload string, o *convoyv1.ClusterOverride) {
	if len(o.Workloads) > 0 && !slices.Contains(o.Workloads, workload) {
		return
	}
	if o.Replicas != nil {
		r := *o.Replicas
		d.Spec.Replicas = &r
	}
	for _, img := range o.Images {
		setImage(d.Spec.Template.Spec.InitContainers, img)
		setImage(d.Spec.Template.Spec.Containers, img)
	}
}

func setImage(containers []corev1.Container, img convoyv1.ImageOverride) {
	for i := range containers {
		if containers[i].Name == img.Container {
			containers[i].Image = img.Image
		}
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
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        w.Name,
			Namespace:   ns,
			Labels:      objectLabels(project, w.Name),
			Annotations: objectAnnotations(project),
		},
		Spec: corev1.ServiceSpec{
			Selector: SelectorLabels(project, w.Name),
			Ports:    ports,
		},
	}
}
