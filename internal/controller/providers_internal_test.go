package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
)

func TestResolveProvider(t *testing.T) {
	t.Parallel()
	cfg := &credprovider.Config{Providers: []kubeletconfigv1.CredentialProvider{{
		Name: "ecr-credential-provider", MatchImages: []string{"*.dkr.ecr.*.amazonaws.com"}, APIVersion: credprovider.APIVersionV1,
		DefaultCacheDuration: &metav1.Duration{Duration: 12 * time.Hour},
	}}}
	const host = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	src := func(mutate ...func(*v1alpha1.CredentialProviderSource)) *v1alpha1.CredentialProviderSource {
		s := &v1alpha1.CredentialProviderSource{Name: "ecr-credential-provider", Image: host}
		for _, m := range mutate {
			m(s)
		}
		return s
	}
	for _, tt := range []struct {
		name      string
		cfg       *credprovider.Config
		cfgErr    error
		path      string
		src       *v1alpha1.CredentialProviderSource
		reason    string
		message   string
		wantImage string
	}{
		{name: "a registry host", cfg: cfg, path: "/c", src: src(), wantImage: host},
		{name: "an image is asked for as the kubelet asks", cfg: cfg, path: "/c",
			src: src(func(s *v1alpha1.CredentialProviderSource) { s.Image = host + "/team/app:1.0" }), wantImage: host + "/team/app"},
		{name: "the old default apiVersion is accepted", cfg: cfg, path: "/c",
			src: src(func(s *v1alpha1.CredentialProviderSource) { s.APIVersion = credprovider.APIVersionV1 }), wantImage: host},
		{name: "another apiVersion is refused", cfg: cfg, path: "/c",
			src:    src(func(s *v1alpha1.CredentialProviderSource) { s.APIVersion = "credentialprovider.kubelet.k8s.io/v1beta1" }),
			reason: v1alpha1.ReasonInvalidSpec, message: "spec.source.provider.apiVersion moved to the cluster admin's CredentialProviderConfig"},
		{name: "env is refused", cfg: cfg, path: "/c",
			src: src(func(s *v1alpha1.CredentialProviderSource) {
				s.Env = []v1alpha1.ExecEnvVar{{Name: "AWS_ENDPOINT_URL_STS", Value: "https://attacker.example.com"}}
			}),
			reason: v1alpha1.ReasonInvalidSpec, message: "spec.source.provider.env moved to the cluster admin's CredentialProviderConfig"},
		{name: "args and an audience are refused together", cfg: cfg, path: "/c",
			src: src(func(s *v1alpha1.CredentialProviderSource) {
				s.Args, s.ServiceAccountTokenAudience = []string{"--x"}, "https://kubernetes.default.svc"
			}),
			reason: v1alpha1.ReasonInvalidSpec, message: "spec.source.provider.args, serviceAccountTokenAudience moved"},
		{name: "an image outside matchImages", cfg: cfg, path: "/c",
			src:    src(func(s *v1alpha1.CredentialProviderSource) { s.Image = "evil.example.com" }),
			reason: v1alpha1.ReasonImageNotAllowed, message: "its matchImages are *.dkr.ecr.*.amazonaws.com"},
		{name: "a glob matches one label only", cfg: cfg, path: "/c",
			src:    src(func(s *v1alpha1.CredentialProviderSource) { s.Image = "a." + host }),
			reason: v1alpha1.ReasonImageNotAllowed},
		{name: "not an image", cfg: cfg, path: "/c",
			src:    src(func(s *v1alpha1.CredentialProviderSource) { s.Image = "Bad/Image" }),
			reason: v1alpha1.ReasonInvalidSpec, message: "neither an image nor a registry host"},
		{name: "an unknown provider", cfg: cfg, path: "/c",
			src:    src(func(s *v1alpha1.CredentialProviderSource) { s.Name = "gcp-credential-provider" }),
			reason: v1alpha1.ReasonProviderNotConfigured, message: "(configured: ecr-credential-provider)"},
		{name: "no configuration", path: "", src: src(),
			reason: v1alpha1.ReasonProviderNotConfigured, message: "runs without a CredentialProviderConfig"},
		{name: "a configuration that never loaded", path: "/c", cfgErr: errors.New("boom"), src: src(),
			reason: v1alpha1.ReasonProviderNotConfigured, message: "does not load: boom"},
		{name: "the last good configuration serves", cfg: cfg, path: "/c", cfgErr: errors.New("boom"), src: src(), wantImage: host},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, reason, message := resolveProvider(tt.cfg, tt.cfgErr, tt.path, tt.src)
			if reason != tt.reason || !strings.Contains(message, tt.message) {
				t.Fatalf("resolveProvider = %q %q; want %q and a message containing %q", reason, message, tt.reason, tt.message)
			}
			if res.image != tt.wantImage {
				t.Errorf("image = %q, want %q", res.image, tt.wantImage)
			}
		})
	}
}
