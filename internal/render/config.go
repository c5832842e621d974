package render

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// ConfigHashAnnotation on a pod template is a hash of the Project ConfigMaps and Secrets
// the pods use. A change of their content changes it and so rolls the workload.
const ConfigHashAnnotation = "convoy.dev/config-hash"

// deliverableSecretTypes are the Secret types convoy copies. A service-account token belongs
// to the cluster that issued it, and bootstrap tokens to kube-system.
var deliverableSecretTypes = map[corev1.SecretType]bool{
	corev1.SecretTypeOpaque:           true,
	corev1.SecretTypeTLS:              true,
	corev1.SecretTypeDockerConfigJson: true,
	corev1.SecretTypeDockercfg:        true,
	corev1.SecretTypeBasicAuth:        true,
	corev1.SecretTypeSSHAuth:          true,
}

// configMaps renders the Project's ConfigMaps with the cluster's overrides applied in order.
func configMaps(project *convoyv1.Project, ns string, overrides []*convoyv1.ClusterOverride) []*corev1.ConfigMap {
	var out []*corev1.ConfigMap
	for _, cm := range project.Spec.ConfigMaps {
		data := maps.Clone(cm.Data)
		for _, o := range overrides {
			for _, co := range o.ConfigMaps {
				if co.Name == cm.Name {
					maps.Copy(data, co.Data)
				}
			}
		}
		out = append(out, &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: cm.Name, Namespace: ns, Labels: objectLabels(project, ""), Annotations: objectAnnotations(project)},
			Data:       data,
		})
	}
	return out
}

// secrets renders copies of the Secrets the Project references. sources holds them as read
// in the manager; a missing one is an error (gathering reports it before rendering).
func secrets(project *convoyv1.Project, ns string, sources map[string]*corev1.Secret) ([]*corev1.Secret, error) {
	var out []*corev1.Secret
	for i, ref := range project.Spec.Secrets {
		src := sources[ref.Name]
		if src == nil {
			return nil, fmt.Errorf("spec.secrets[%d]: Secret %s/%s not found", i, project.Namespace, ref.Name)
		}
		typ := src.Type
		if typ == "" {
			typ = corev1.SecretTypeOpaque
		}
		if !deliverableSecretTypes[typ] {
			return nil, fmt.Errorf("spec.secrets[%d]: Secret %s/%s has type %s, which convoy does not copy; allowed: %s",
				i, project.Namespace, ref.Name, typ, allowedSecretTypes())
		}
		out = append(out, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ns, Labels: objectLabels(project, ""), Annotations: objectAnnotations(project)},
			Type:       typ,
			Data:       src.Data,
		})
	}
	return out, nil
}

func allowedSecretTypes() []string {
	var types []string
	for t := range deliverableSecretTypes {
		types = append(types, string(t))
	}
	slices.Sort(types)
	return types
}

// configHash is the ConfigHashAnnotation value for a pod spec: a hash over the content of
// the delivered ConfigMaps and Secrets it uses, or "" when it uses none. A Secret enters as
// an HMAC keyed by the UID of its source in the manager, which no service cluster holds:
// the annotation cannot be used to guess a Secret's value.
func configHash(spec *corev1.PodSpec, cms []*corev1.ConfigMap, secs []*corev1.Secret, sources map[string]*corev1.Secret) string {
	usedCMs, usedSecrets := configUsedBy(spec)
	h := sha256.New()
	var used bool
	for _, cm := range cms {
		if !usedCMs[cm.Name] {
			continue
		}
		used = true
		fmt.Fprintf(h, "ConfigMap/%s\x00", cm.Name)
		for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
			fmt.Fprintf(h, "%s\x00%s\x00", k, cm.Data[k])
		}
	}
	for _, s := range secs {
		if !usedSecrets[s.Name] {
			continue
		}
		used = true
		mac := hmac.New(sha256.New, []byte(sources[s.Name].UID))
		fmt.Fprintf(mac, "%s\x00", s.Type)
		for _, k := range slices.Sorted(maps.Keys(s.Data)) {
			fmt.Fprintf(mac, "%s\x00", k)
			mac.Write(s.Data[k])
			mac.Write([]byte{0})
		}
		fmt.Fprintf(h, "Secret/%s\x00%x\x00", s.Name, mac.Sum(nil))
	}
	if !used {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// configUsedBy names the ConfigMaps and Secrets a pod spec reads: volumes (projected ones
// included), env and envFrom of every container.
func configUsedBy(spec *corev1.PodSpec) (cms, secs map[string]bool) {
	cms, secs = map[string]bool{}, map[string]bool{}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			cms[v.ConfigMap.Name] = true
		}
		if v.Secret != nil {
			secs[v.Secret.SecretName] = true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					cms[src.ConfigMap.Name] = true
				}
				if src.Secret != nil {
					secs[src.Secret.Name] = true
				}
			}
		}
	}
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range containers {
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil {
					cms[e.ConfigMapRef.Name] = true
				}
				if e.SecretRef != nil {
					secs[e.SecretRef.Name] = true
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if e.ValueFrom.ConfigMapKeyRef != nil {
					cms[e.ValueFrom.ConfigMapKeyRef.Name] = true
				}
				if e.ValueFrom.SecretKeyRef != nil {
					secs[e.ValueFrom.SecretKeyRef.Name] = true
				}
			}
		}
	}
	return cms, secs
}
