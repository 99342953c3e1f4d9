package credprovider

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	credentialproviderv1alpha1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1alpha1"
	credentialproviderv1beta1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1beta1"
)

// APIVersionV1 is the protocol version every current plugin speaks, and
// the only one that may carry a service account token (KEP-4412).
const APIVersionV1 = "credentialprovider.kubelet.k8s.io/v1"

// APIVersions are the protocol versions the kubelet v1.37 accepts
// (plugin.go: apiVersions).
func APIVersions() []string {
	return []string{
		credentialproviderv1alpha1.SchemeGroupVersion.String(),
		credentialproviderv1beta1.SchemeGroupVersion.String(),
		credentialproviderv1.SchemeGroupVersion.String(),
	}
}

// Plugin is one provider of a kubelet CredentialProviderConfig, less
// matchImages and tokenAttributes, which the caller applies (Allows, and
// the token it puts in the Request).
type Plugin struct {
	// Name is the executable's file name in the runner's bin directory.
	Name string
	// APIVersion is the protocol version to speak, e.g. APIVersionV1.
	APIVersion string
	// Args are passed to the plugin, as the config's args.
	Args []string
	// Env is added to the environment the runner passes on (its Environ),
	// overriding it, as the config's env.
	Env []EnvVar
	// DefaultCacheDuration is used when the response has no cacheDuration.
	DefaultCacheDuration time.Duration
	// MinCacheDuration, when set, raises a shorter cacheDuration: for
	// plugins whose answer is a kubelet cache hint far shorter than the
	// token's lifetime (ACR answers 5 minutes for a 3-hour token). Not a
	// kubelet setting.
	MinCacheDuration time.Duration
}

// FromConfig is the Plugin of a provider of the admin's
// CredentialProviderConfig. minCacheDuration is not a kubelet setting: see
// Plugin.MinCacheDuration.
func FromConfig(p kubeletconfigv1.CredentialProvider, minCacheDuration time.Duration) Plugin {
	plugin := Plugin{Name: p.Name, APIVersion: p.APIVersion, Args: slices.Clone(p.Args), MinCacheDuration: minCacheDuration}
	for _, e := range p.Env {
		plugin.Env = append(plugin.Env, EnvVar{Name: e.Name, Value: e.Value})
	}
	if p.DefaultCacheDuration != nil {
		plugin.DefaultCacheDuration = p.DefaultCacheDuration.Duration
	}
	return plugin
}

// EnvVar is one environment variable of Plugin.Env.
type EnvVar struct {
	Name  string
	Value string
}

// Validate reports what the kubelet's validateCredentialProviderConfig
// would refuse in p (config.go), and names that could leave the bin
// directory, which the kubelet does not check as strictly.
func (p Plugin) Validate() error {
	var problems []string
	switch {
	case p.Name == "":
		problems = append(problems, "the name is empty")
	case p.Name == "." || strings.Contains(p.Name, ".."):
		problems = append(problems, "the name must not be '.' or contain '..'")
	case strings.ContainsAny(p.Name, "/\\"):
		problems = append(problems, "the name must not contain a path separator")
	case strings.ContainsAny(p.Name, " \t\n\x00"):
		problems = append(problems, "the name must not contain spaces or control characters")
	}
	switch {
	case p.APIVersion == "":
		problems = append(problems, "apiVersion is required")
	case !slices.Contains(APIVersions(), p.APIVersion):
		problems = append(problems, fmt.Sprintf("apiVersion %q is not one of %s", p.APIVersion, strings.Join(APIVersions(), ", ")))
	}
	if p.DefaultCacheDuration < 0 {
		problems = append(problems, "defaultCacheDuration must not be negative")
	}
	if p.MinCacheDuration < 0 {
		problems = append(problems, "minCacheDuration must not be negative")
	}
	for i, e := range p.Env {
		if e.Name == "" || strings.ContainsAny(e.Name, "=\x00") {
			problems = append(problems, fmt.Sprintf("env[%d]: the name must be non-empty and hold no '=' or NUL", i))
		}
		if strings.ContainsRune(e.Value, 0) {
			problems = append(problems, fmt.Sprintf("env[%d] (%s): the value must not hold NUL", i, e.Name))
		}
	}
	for i, a := range p.Args {
		if strings.ContainsRune(a, 0) {
			problems = append(problems, fmt.Sprintf("args[%d]: must not hold NUL", i))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}
