package remote

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ErrInvalidKubeconfig marks kubeconfigs convoy refuses. The message says why.
var ErrInvalidKubeconfig = errors.New("invalid kubeconfig")

// RESTConfigFromKubeconfig parses a kubeconfig held in a Secret and returns the REST config of
// its current context. It refuses anything that would make the manager run a program, read
// its own file system, or skip TLS verification: the Secret's author must not be able to do
// more than the credentials in it allow.
func RESTConfigFromKubeconfig(data []byte) (*rest.Config, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot parse: %v", ErrInvalidKubeconfig, err)
	}
	if err := validateKubeconfig(cfg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKubeconfig, err)
	}
	restCfg, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKubeconfig, err)
	}
	return restCfg, nil
}

func validateKubeconfig(cfg *clientcmdapi.Config) error {
	if cfg.CurrentContext == "" {
		return errors.New("current-context is not set")
	}
	current, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return fmt.Errorf("current-context %q is not defined in contexts", cfg.CurrentContext)
	}
	if _, ok := cfg.Clusters[current.Cluster]; !ok {
		return fmt.Errorf("context %q names cluster %q, which is not defined", cfg.CurrentContext, current.Cluster)
	}
	// Check every entry, not just the current context: a Secret should not carry unsafe
	// material even if it is unused today.
	for _, name := range sortedKeys(cfg.Clusters) {
		c := cfg.Clusters[name]
		switch {
		case c.InsecureSkipTLSVerify:
			return fmt.Errorf("clusters[%s]: insecure-skip-tls-verify is not allowed; provide certificate-authority-data", name)
		case c.CertificateAuthority != "":
			return fmt.Errorf("clusters[%s]: certificate-authority file paths are not allowed; inline it as certificate-authority-data", name)
		case c.ProxyURL != "":
			return fmt.Errorf("clusters[%s]: proxy-url is not allowed", name)
		case !strings.HasPrefix(c.Server, "https://"):
			return fmt.Errorf("clusters[%s]: server %q must use https:// so that credentials are never sent in clear text", name, c.Server)
		}
	}
	for _, name := range sortedKeys(cfg.AuthInfos) {
		a := cfg.AuthInfos[name]
		switch {
		case a.Exec != nil:
			return fmt.Errorf("users[%s]: exec plugins are not allowed; use a token or client certificate", name)
		case a.AuthProvider != nil:
			return fmt.Errorf("users[%s]: auth-provider plugins are not allowed; use a token or client certificate", name)
		case a.TokenFile != "":
			return fmt.Errorf("users[%s]: tokenFile paths are not allowed; inline the token", name)
		case a.ClientCertificate != "" || a.ClientKey != "":
			return fmt.Errorf("users[%s]: client-certificate/client-key file paths are not allowed; use client-certificate-data and client-key-data", name)
		case a.Impersonate != "" || len(a.ImpersonateGroups) > 0 || len(a.ImpersonateUserExtra) > 0:
			return fmt.Errorf("users[%s]: impersonation is not allowed", name)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
