// The test table of this file is upstream's (kubernetes/kubernetes v1.37.2,
// pkg/credentialprovider/plugin/config_test.go: Test_validateCredentialProviderConfig),
// Copyright 2020 The Kubernetes Authors, Apache License 2.0, with the
// internal kubeletconfig types replaced by kubelet.config.k8s.io/v1 ones, so
// that ValidateConfig is held to the kubelet's own expectations.

package credprovider

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/errors"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	"k8s.io/utils/ptr"
)

func TestValidateConfigAsTheKubelet(t *testing.T) {
	testcases := []struct {
		name                          string
		config                        *kubeletconfigv1.CredentialProviderConfig
		saTokenForCredentialProviders bool
		expectErr                     string
	}{
		{
			name:      "no providers provided",
			config:    &kubeletconfigv1.CredentialProviderConfig{},
			expectErr: `providers: Required value: at least 1 item in plugins is required`,
		},
		{
			name: "no matchImages provided",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.matchImages: Required value: at least 1 item in matchImages is required`,
		},
		{
			name: "no default cache duration provided",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:        "foobar",
						MatchImages: []string{"foobar.registry.io"},
						APIVersion:  "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.defaultCacheDuration: Required value`,
		},
		{
			name: "name contains '/'",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foo/../bar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.name: Invalid value: "foo/../bar": provider name cannot contain '/'`,
		},
		{
			name: "name is '.'",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 ".",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.name: Invalid value: ".": provider name cannot be '.'`,
		},
		{
			name: "name is '..'",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "..",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.name: Invalid value: "..": provider name cannot be '..'`,
		},
		{
			name: "name contains spaces",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foo bar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.name: Invalid value: "foo bar": provider name cannot contain spaces`,
		},
		{
			name: "duplicate names",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
					{
						Name:                 "foobar",
						MatchImages:          []string{"bar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.name: Duplicate value: "foobar"`,
		},
		{
			name: "no apiVersion",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "",
					},
				},
			},
			expectErr: "providers.apiVersion: Required value",
		},
		{
			name: "invalid apiVersion",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha0",
					},
				},
			},
			expectErr: `providers.apiVersion: Unsupported value: "credentialprovider.kubelet.k8s.io/v1alpha0": supported values: "credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1alpha1", "credentialprovider.kubelet.k8s.io/v1beta1"`,
		},
		{
			name: "negative default cache duration",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: -1 * time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: "providers.defaultCacheDuration: Invalid value: \"-1m0s\": must be greater than or equal to 0",
		},
		{
			name: "invalid match image",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"%invalid%"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
			expectErr: `providers.matchImages: Invalid value: "%invalid%": match image is invalid: parse "https://%invalid%": invalid URL escape "%in"`,
		},
		{
			name: "valid config",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
					},
				},
			},
		},
		{
			name: "token attributes set without KubeletServiceAccountTokenForCredentialProviders feature gate enabled",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience: "audience",
							CacheType:                   kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType,
							RequireServiceAccount:       ptr.To(true),
						},
					},
				},
			},
			expectErr: `providers.tokenAttributes: Forbidden: tokenAttributes is not supported when KubeletServiceAccountTokenForCredentialProviders feature gate is disabled`,
		},
		{
			name: "token attributes not nil but empty ServiceAccountTokenAudience",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							CacheType:                            kubeletconfigv1.TokenServiceAccountTokenCacheType,
							RequiredServiceAccountAnnotationKeys: []string{"prefix.io/annotation-1", "prefix.io/annotation-2"},
							RequireServiceAccount:                ptr.To(true),
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.serviceAccountTokenAudience: Required value`,
		},
		{
			name: "token attributes not nil but empty CacheType",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience: "audience",
							RequireServiceAccount:       ptr.To(true),
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.cacheType: Required value: cacheType is required to be set when tokenAttributes is specified. Supported values are: ServiceAccount, Token`,
		},
		{
			name: "token attributes not nil, invalid CacheType",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience: "audience",
							CacheType:                   "invalid-cache-type",
							RequireServiceAccount:       ptr.To(true),
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.cacheType: Unsupported value: "invalid-cache-type": supported values: "ServiceAccount", "Token"`,
		},
		{
			name: "token attributes not nil but empty ServiceAccountTokenRequired",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType,
							RequiredServiceAccountAnnotationKeys: []string{"prefix.io/annotation-1", "prefix.io/annotation-2"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.requireServiceAccount: Required value`,
		},
		{
			name: "required service account annotation keys not qualified name (same validation as metav1.ObjectMeta)",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.TokenServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							RequiredServiceAccountAnnotationKeys: []string{"cantendwithadash-", "now-with-dashes/simple"}, // first key is invalid
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Invalid value: "cantendwithadash-": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		},
		{
			name: "optional service account annotation keys not qualified name (same validation as metav1.ObjectMeta)",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							OptionalServiceAccountAnnotationKeys: []string{"cantendwithadash-", "now-with-dashes/simple"}, // first key is invalid
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.optionalServiceAccountAnnotationKeys: Invalid value: "cantendwithadash-": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		},
		{
			name: "duplicate required service account annotation keys",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.TokenServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							RequiredServiceAccountAnnotationKeys: []string{"now-with-dashes/simple", "now-with-dashes/simple"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Duplicate value: "now-with-dashes/simple"`,
		},
		{
			name: "duplicate optional service account annotation keys",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							OptionalServiceAccountAnnotationKeys: []string{"now-with-dashes/simple", "now-with-dashes/simple"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.optionalServiceAccountAnnotationKeys: Duplicate value: "now-with-dashes/simple"`,
		},
		{
			name: "annotation key in required and optional keys",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.TokenServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							RequiredServiceAccountAnnotationKeys: []string{"now-with-dashes/simple-1", "now-with-dashes/simple-2"},
							OptionalServiceAccountAnnotationKeys: []string{"now-with-dashes/simple-2", "now-with-dashes/simple-3"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes: Invalid value: ["now-with-dashes/simple-2"]: annotation keys cannot be both required and optional`,
		},
		{
			name: "required annotation keys set when requireServiceAccount is false",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(false),
							RequiredServiceAccountAnnotationKeys: []string{"now-with-dashes/simple-1", "now-with-dashes/simple-2"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set`,
		},
		{
			name: "valid config with KubeletServiceAccountTokenForCredentialProviders feature gate enabled",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.TokenServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							RequiredServiceAccountAnnotationKeys: []string{"now-with-dashes/simple-1", "now-with-dashes/simple-2"},
							OptionalServiceAccountAnnotationKeys: []string{"now-with-dashes/simple-3"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
		},
		{
			name: "tokenAttributes set with credentialprovider.kubelet.k8s.io/v1alpha1 APIVersion",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1alpha1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.TokenServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							RequiredServiceAccountAnnotationKeys: []string{"now-with-dashes/simple"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes: Forbidden: tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1 API version`,
		},
		{
			name: "tokenAttributes set with credentialprovider.kubelet.k8s.io/v1beta1 APIVersion",
			config: &kubeletconfigv1.CredentialProviderConfig{
				Providers: []kubeletconfigv1.CredentialProvider{
					{
						Name:                 "foobar",
						MatchImages:          []string{"foobar.registry.io"},
						DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
						APIVersion:           "credentialprovider.kubelet.k8s.io/v1beta1",
						TokenAttributes: &kubeletconfigv1.ServiceAccountTokenAttributes{
							ServiceAccountTokenAudience:          "audience",
							CacheType:                            kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType,
							RequireServiceAccount:                ptr.To(true),
							RequiredServiceAccountAnnotationKeys: []string{"now-with-dashes/simple"},
						},
					},
				},
			},
			saTokenForCredentialProviders: true,
			expectErr:                     `providers.tokenAttributes: Forbidden: tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1 API version`,
		},
	}
	for _, testcase := range testcases {
		t.Run(testcase.name, func(t *testing.T) {
			if !testcase.saTokenForCredentialProviders && testcase.config != nil && hasTokenAttributes(testcase.config) {
				t.Skip("the controller always runs with service account tokens for credential providers on (KEP-4412, on by default since 1.34)")
			}
			errs := ValidateConfig(testcase.config.Providers).ToAggregate()
			if d := cmp.Diff(testcase.expectErr, errString(errs)); d != "" {
				t.Fatalf("CredentialProviderConfig validation mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func hasTokenAttributes(c *kubeletconfigv1.CredentialProviderConfig) bool {
	for _, p := range c.Providers {
		if p.TokenAttributes != nil {
			return true
		}
	}
	return false
}

func errString(errs errors.Aggregate) string {
	if errs != nil {
		return errs.Error()
	}
	return ""
}
