package credprovider_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	kubeletconfigv1 "k8s.io/kubelet/config/v1"

	"github.com/pullsecrets/pullsecrets/internal/credprovider"
)

const ecrConfig = `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages: ["*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn"]
    defaultCacheDuration: 12h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    env:
      - name: AWS_REGION
        value: us-west-2
  - name: irsa
    matchImages: ["123456789012.dkr.ecr.us-west-2.amazonaws.com"]
    defaultCacheDuration: 1h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    tokenAttributes:
      serviceAccountTokenAudience: sts.amazonaws.com
      cacheType: ServiceAccount
      requireServiceAccount: true
      requiredServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"]
`

func write(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cfg, err := credprovider.LoadConfig(write(t, t.TempDir(), "config.yaml", ecrConfig))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Names(), ","); got != "ecr-credential-provider,irsa" {
		t.Errorf("Names() = %s", got)
	}
	if got := strings.Join(cfg.Audiences(), ","); got != "sts.amazonaws.com" {
		t.Errorf("Audiences() = %s", got)
	}
	if !strings.HasPrefix(cfg.Hash, "sha256:") {
		t.Errorf("Hash = %q", cfg.Hash)
	}
	p, ok := cfg.Provider("ecr-credential-provider")
	if !ok || p.DefaultCacheDuration.Hours() != 12 || p.Env[0].Value != "us-west-2" {
		t.Errorf("Provider() = %+v, %v", p, ok)
	}
	if _, ok := cfg.Provider("nope"); ok {
		t.Error("Provider(nope) found")
	}
}

// A ConfigMap mounted as a folder: the kubelet's atomic writer keeps the
// files behind ..data and a timestamped folder, and links them.
func TestLoadConfigFromAMountedConfigMap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_12_06_10_00_00.123")
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, ts, "config.yaml", ecrConfig)
	write(t, ts, "token-audiences", "sts.amazonaws.com\n")
	for _, link := range [][2]string{{"..2026_12_06_10_00_00.123", "..data"}, {"..data/config.yaml", "config.yaml"}, {"..data/token-audiences", "token-audiences"}} {
		if err := os.Symlink(link[0], filepath.Join(dir, link[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{dir, filepath.Join(dir, "config.yaml")} {
		cfg, err := credprovider.LoadConfig(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(cfg.Providers) != 2 {
			t.Errorf("%s: %d providers", path, len(cfg.Providers))
		}
	}
}

func TestLoadConfigRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, data, want string }{
		{"no providers", "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n", "at least 1 item in plugins is required"},
		{"no matchImages", "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: a\n  defaultCacheDuration: 1h\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n", "at least 1 item in matchImages is required"},
		{"unknown field", strings.Replace(ecrConfig, "    env:", "    notAField: {}\n    env:", 1), `unknown field "providers[0].notAField"`},
		{"not YAML", "{{{", "error decoding config"},
		{"kubelet configuration", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n", "KubeletConfiguration"},
		{"too large", "# " + strings.Repeat("x", int(credprovider.MaxConfigBytes)), "limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := credprovider.LoadConfig(write(t, t.TempDir(), "config.yaml", tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadConfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := credprovider.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
}

// The three versions the kubelet reads give the same providers.
func TestLoadConfigVersions(t *testing.T) {
	t.Parallel()
	body := "kind: CredentialProviderConfig\nproviders:\n- name: p\n  matchImages: [\"*.registry.io\"]\n  defaultCacheDuration: 5m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  args: [\"--v=2\"]\n  env: [{name: A, value: b}]\n"
	var first []kubeletconfigv1.CredentialProvider
	for i, v := range []string{"v1alpha1", "v1beta1", "v1"} {
		cfg, err := credprovider.LoadConfig(write(t, t.TempDir(), "c.yaml", "apiVersion: kubelet.config.k8s.io/"+v+"\n"+body))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if i == 0 {
			first = cfg.Providers
			continue
		}
		if len(cfg.Providers) != 1 || cfg.Providers[0].Name != first[0].Name || cfg.Providers[0].Args[0] != "--v=2" ||
			cfg.Providers[0].Env[0] != first[0].Env[0] || *cfg.Providers[0].DefaultCacheDuration != *first[0].DefaultCacheDuration {
			t.Errorf("%s: %+v, want %+v", v, cfg.Providers, first)
		}
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	p := kubeletconfigv1.CredentialProvider{MatchImages: []string{"*.dkr.ecr.*.amazonaws.com", "registry.io:8080/team"}}
	for image, want := range map[string]bool{
		"123456789012.dkr.ecr.us-west-2.amazonaws.com":          true,
		"123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app": true,
		"evil.example.com":                               false,
		"registry.io:8080/team/app":                      true,
		"registry.io:8080/other":                         false,
		"123456789012.dkr.ecr.amazonaws.com":             false,
		"a.123456789012.dkr.ecr.us-west-2.amazonaws.com": false,
	} {
		if got := credprovider.Allows(p, image); got != want {
			t.Errorf("Allows(%q) = %v, want %v", image, got, want)
		}
	}
}
