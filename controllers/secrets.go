package controllers

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// secretContents reads the Secrets Projects deliver. The manager caches Secrets as metadata
// only (it holds no contents of Secrets it does not need); the content of a referenced Secret
// is read from the API server once per resourceVersion and kept here, so a resync of many
// pairs costs no requests. Only Secrets some Project referenced are ever held.
type secretContents struct {
	reader client.Reader // the API server, not a cache
	mu     sync.Mutex
	byKey  map[client.ObjectKey]*corev1.Secret
}

func newSecretContents(reader client.Reader) *secretContents {
	return &secretContents{reader: reader, byKey: map[client.ObjectKey]*corev1.Secret{}}
}

// get returns the Secret at the resourceVersion the metadata cache reports, nil when it does
// not exist.
func (s *secretContents) get(ctx context.Context, cache client.Reader, key client.ObjectKey) (*corev1.Secret, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := cache.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return nil, nil
		}
		return nil, err
	}
	s.mu.Lock()
	held := s.byKey[key]
	s.mu.Unlock()
	if held != nil && held.ResourceVersion == meta.ResourceVersion && held.UID == meta.UID {
		return held, nil
	}
	secret := &corev1.Secret{}
	if err := s.reader.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return nil, nil
		}
		return nil, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	s.mu.Lock()
	s.byKey[key] = secret
	s.mu.Unlock()
	return secret, nil
}

func (s *secretContents) forget(key client.ObjectKey) {
	s.mu.Lock()
	delete(s.byKey, key)
	s.mu.Unlock()
}

// gatherSecrets reads the Secrets a Project references from its own namespace. Missing ones
// are returned as messages naming the referencing field; no error or message carries data.
func (in inputs) gatherSecrets(ctx context.Context, project *convoyv1.Project) (map[string]*corev1.Secret, []string, error) {
	if len(project.Spec.Secrets) == 0 {
		return nil, nil, nil
	}
	found := map[string]*corev1.Secret{}
	var missing []string
	for i, ref := range project.Spec.Secrets {
		secret, err := in.secrets.get(ctx, in.Client, client.ObjectKey{Namespace: project.Namespace, Name: ref.Name})
		switch {
		case err != nil:
			return nil, nil, err
		case secret == nil:
			missing = append(missing, fmt.Sprintf("Secret %s/%s referenced by spec.secrets[%d] does not exist; create it or remove the reference", project.Namespace, ref.Name, i))
		default:
			found[ref.Name] = secret
		}
	}
	return found, missing, nil
}

// secretIndex indexes Projects by the names of the Secrets they reference (in their own
// namespace).
const secretIndex = "spec.secrets"

func secretNames(o client.Object) []string {
	var names []string
	for _, s := range o.(*convoyv1.Project).Spec.Secrets {
		names = append(names, s.Name)
	}
	return names
}
