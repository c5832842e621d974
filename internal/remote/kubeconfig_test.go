package remote

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func baseKubeconfig() *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", CertificateAuthorityData: []byte("ca")}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "ctx"
	return cfg
}

func TestRESTConfigFromKubeconfig(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*clientcmdapi.Config)
		wantErr string // empty: accepted
	}{
		{"token and inline CA are accepted", func(*clientcmdapi.Config) {}, ""},
		{"client certificate data is accepted", func(c *clientcmdapi.Config) {
			c.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("cert"), ClientKeyData: []byte("key")}
		}, ""},
		{"exec plugin", func(c *clientcmdapi.Config) {
			c.AuthInfos["u"].Exec = &clientcmdapi.ExecConfig{Command: "aws", APIVersion: "client.authentication.k8s.io/v1"}
		}, "users[u]: exec plugins are not allowed"},
		{"auth provider", func(c *clientcmdapi.Config) {
			c.AuthInfos["u"].AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}, "users[u]: auth-provider plugins are not allowed"},
		{"token file", func(c *clientcmdapi.Config) { c.AuthInfos["u"].TokenFile = "/etc/token" }, "tokenFile paths are not allowed"},
		{"client certificate file", func(c *clientcmdapi.Config) { c.AuthInfos["u"].ClientCertificate = "/etc/cert" }, "client-certificate/client-key file paths"},
		{"client key file", func(c *clientcmdapi.Config) { c.AuthInfos["u"].ClientKey = "/etc/key" }, "client-certificate/client-key file paths"},
		{"impersonation", func(c *clientcmdapi.Config) { c.AuthInfos["u"].Impersonate = "admin" }, "impersonation is not allowed"},
		{"insecure TLS", func(c *clientcmdapi.Config) {
			c.Clusters["c"].InsecureSkipTLSVerify = true
			c.Clusters["c"].CertificateAuthorityData = nil
		}, "clusters[c]: insecure-skip-tls-verify is not allowed"},
		{"CA file", func(c *clientcmdapi.Config) { c.Clusters["c"].CertificateAuthority = "/etc/ca.crt" }, "certificate-authority file paths are not allowed"},
		{"plain http server", func(c *clientcmdapi.Config) { c.Clusters["c"].Server = "http://10.0.0.1:8080" }, "must use https://"},
		{"proxy", func(c *clientcmdapi.Config) { c.Clusters["c"].ProxyURL = "http://proxy:3128" }, "proxy-url is not allowed"},
		{"unsafe entry outside the current context", func(c *clientcmdapi.Config) {
			c.AuthInfos["other"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "sh"}}
		}, "users[other]: exec plugins are not allowed"},
		{"no current context", func(c *clientcmdapi.Config) { c.CurrentContext = "" }, "current-context is not set"},
		{"unknown current context", func(c *clientcmdapi.Config) { c.CurrentContext = "nope" }, `current-context "nope" is not defined`},
		{"context names a missing cluster", func(c *clientcmdapi.Config) { c.Contexts["ctx"].Cluster = "gone" }, `names cluster "gone"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseKubeconfig()
			tt.mutate(cfg)
			data, err := clientcmd.Write(*cfg)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := RESTConfigFromKubeconfig(data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if rc.Host != "https://10.0.0.1:6443" {
					t.Fatalf("host = %q", rc.Host)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKubeconfig) {
				t.Fatalf("want ErrInvalidKubeconfig, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}

	t.Run("garbage", func(t *testing.T) {
		if _, err := RESTConfigFromKubeconfig([]byte("{not yaml")); !errors.Is(err, ErrInvalidKubeconfig) {
			t.Fatalf("want ErrInvalidKubeconfig, got %v", err)
		}
	})
}
