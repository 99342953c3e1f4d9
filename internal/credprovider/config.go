package credprovider

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	kubeletconfigv1alpha1 "k8s.io/kubelet/config/v1alpha1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
)

// MaxConfigBytes bounds the configuration the controller reads: a real
// CredentialProviderConfig is a few hundred bytes per provider.
const MaxConfigBytes int64 = 1 << 20

// Config is the cluster admin's CredentialProviderConfig
// (kubelet.config.k8s.io), the kubelet's own file: which plugins exist, the
// images each may be asked for, and their args, env and token attributes.
// Nothing a ClusterPullSecret says reaches these.
type Config struct {
	// Providers, in the file's order (files in lexicographic order).
	Providers []kubeletconfigv1.CredentialProvider
	// Hash identifies the raw content, as the kubelet's
	// kubelet_credential_provider_config_info metric does ("sha256:...").
	Hash string
}

// Provider returns the provider of that name.
func (c *Config) Provider(name string) (kubeletconfigv1.CredentialProvider, bool) {
	if c == nil {
		return kubeletconfigv1.CredentialProvider{}, false
	}
	i := slices.IndexFunc(c.Providers, func(p kubeletconfigv1.CredentialProvider) bool { return p.Name == name })
	if i < 0 {
		return kubeletconfigv1.CredentialProvider{}, false
	}
	return c.Providers[i], true
}

// Names lists the providers' names, sorted.
func (c *Config) Names() []string {
	if c == nil {
		return nil
	}
	names := make([]string, 0, len(c.Providers))
	for _, p := range c.Providers {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// Audiences lists the token audiences the providers are configured with,
// sorted and without duplicates: what the admission policy on the
// controller's token requests must allow.
func (c *Config) Audiences() []string {
	if c == nil {
		return nil
	}
	set := sets.New[string]()
	for _, p := range c.Providers {
		if p.TokenAttributes != nil {
			set.Insert(p.TokenAttributes.ServiceAccountTokenAudience)
		}
	}
	return sets.List(set)
}

// configCodecs decode the three versions of the kubelet's
// CredentialProviderConfig strictly, as the kubelet does (plugin.go: codecs
// with serializer.EnableStrict): an unknown or duplicated field fails.
var configCodecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		kubeletconfigv1alpha1.AddToScheme, kubeletconfigv1beta1.AddToScheme, kubeletconfigv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err) // a static registration; fails only on a programming error
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict)
}()

// ErrNoConfigFiles is ReadConfig's error for a folder that holds no
// *.json, *.yaml or *.yml file; the kubelet refuses to start on it.
var ErrNoConfigFiles = errors.New("no configuration files found")

// LoadConfig reads path (ReadConfig) and validates it as the kubelet's
// validateCredentialProviderConfig does (ValidateConfig).
func LoadConfig(path string) (*Config, error) {
	cfg, err := ReadConfig(path)
	if err != nil {
		return nil, err
	}
	if errs := ValidateConfig(cfg.Providers); len(errs) > 0 {
		return nil, fmt.Errorf("invalid credential provider config %q: %w", path, errs.ToAggregate())
	}
	return cfg, nil
}

// ReadConfig reads path as the kubelet's readCredentialProviderConfig does
// (pkg/credentialprovider/plugin/config.go, v1.37.2): a file, or a folder
// whose *.json, *.yaml and *.yml files are read in lexicographic order and
// merged, a provider name appearing twice being an error, with the same
// content hash. Unlike the kubelet it bounds every file by MaxConfigBytes.
func ReadConfig(path string) (*Config, error) {
	if path == "" {
		return nil, errors.New("credential provider config path is empty")
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("unable to access path %q: %w", path, err)
	}
	var files []string
	if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("unable to read directory %q: %w", path, err)
		}
		for _, entry := range entries {
			ext := filepath.Ext(entry.Name())
			if !entry.IsDir() && (ext == ".json" || ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, entry.Name()))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%w in directory %q", ErrNoConfigFiles, path)
		}
	} else {
		files = []string{path}
	}

	budget := &readlimit.Budget{PerFile: MaxConfigBytes, Total: MaxConfigBytes * 4}
	hasher := sha256.New()
	merged := &Config{}
	seen := sets.New[string]()
	for _, file := range files {
		data, err := budget.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("unable to read file %q: %w", file, err)
		}
		// The length prefix keeps two files' contents from hashing as one.
		_ = binary.Write(hasher, binary.BigEndian, uint64(len(data)))
		hasher.Write(data)
		providers, err := decodeConfig(data)
		if err != nil {
			return nil, fmt.Errorf("error decoding config %q: %w", file, err)
		}
		for _, p := range providers {
			if seen.Has(p.Name) {
				return nil, fmt.Errorf("duplicate provider name %q found in configuration file(s)", p.Name)
			}
			seen.Insert(p.Name)
			merged.Providers = append(merged.Providers, p)
		}
	}
	merged.Hash = fmt.Sprintf("sha256:%x", hasher.Sum(nil))
	return merged, nil
}

// decodeConfig decodes one file of any version the kubelet accepts and
// returns its providers as kubelet.config.k8s.io/v1 values. The three
// versions' CredentialProvider types have the same JSON field names (v1
// adds tokenAttributes, which strict decoding refuses in the others, as the
// kubelet does), so the JSON of an older one decodes exactly into v1.
func decodeConfig(data []byte) ([]kubeletconfigv1.CredentialProvider, error) {
	obj, gvk, err := configCodecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	if gvk.Kind != "CredentialProviderConfig" {
		return nil, fmt.Errorf("failed to decode %q (wrong Kind)", gvk.Kind)
	}
	if gvk.Group != kubeletconfigv1.GroupName {
		return nil, fmt.Errorf("failed to decode CredentialProviderConfig, unexpected Group: %s", gvk.Group)
	}
	switch cfg := obj.(type) {
	case *kubeletconfigv1.CredentialProviderConfig:
		return cfg.Providers, nil
	case *kubeletconfigv1beta1.CredentialProviderConfig:
		return convertProviders(cfg.Providers)
	case *kubeletconfigv1alpha1.CredentialProviderConfig:
		return convertProviders(cfg.Providers)
	}
	return nil, fmt.Errorf("unable to convert %T to *CredentialProviderConfig", obj)
}

func convertProviders(in any) ([]kubeletconfigv1.CredentialProvider, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var out []kubeletconfigv1.CredentialProvider
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("convert to %s: %w", kubeletconfigv1.SchemeGroupVersion, err)
	}
	return out, nil
}

// validCacheTypes are the kubelet's token cache types.
var validCacheTypes = sets.New(
	string(kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType),
	string(kubeletconfigv1.TokenServiceAccountTokenCacheType),
)

// ValidateConfig is the kubelet's validateCredentialProviderConfig
// (pkg/credentialprovider/plugin/config.go, v1.37.2) on the v1 types, with
// the KubeletServiceAccountTokenForCredentialProviders gate on: the same
// checks, field paths and messages, so that a file the kubelet accepts is
// accepted here and the other way round. The product does not import
// k8s.io/kubernetes; config_test.go carries upstream's test table.
func ValidateConfig(providers []kubeletconfigv1.CredentialProvider) field.ErrorList {
	allErrs := field.ErrorList{}
	if len(providers) == 0 {
		allErrs = append(allErrs, field.Required(field.NewPath("providers"), "at least 1 item in plugins is required"))
	}
	fieldPath := field.NewPath("providers")
	seenProviderNames := sets.New[string]()
	for _, provider := range providers {
		if strings.Contains(provider.Name, "/") {
			allErrs = append(allErrs, field.Invalid(fieldPath.Child("name"), provider.Name, "provider name cannot contain '/'"))
		}
		if strings.Contains(provider.Name, " ") {
			allErrs = append(allErrs, field.Invalid(fieldPath.Child("name"), provider.Name, "provider name cannot contain spaces"))
		}
		if provider.Name == "." {
			allErrs = append(allErrs, field.Invalid(fieldPath.Child("name"), provider.Name, "provider name cannot be '.'"))
		}
		if provider.Name == ".." {
			allErrs = append(allErrs, field.Invalid(fieldPath.Child("name"), provider.Name, "provider name cannot be '..'"))
		}
		if seenProviderNames.Has(provider.Name) {
			allErrs = append(allErrs, field.Duplicate(fieldPath.Child("name"), provider.Name))
		}
		seenProviderNames.Insert(provider.Name)

		if provider.APIVersion == "" {
			allErrs = append(allErrs, field.Required(fieldPath.Child("apiVersion"), ""))
		} else if !slices.Contains(APIVersions(), provider.APIVersion) {
			valid := APIVersions()
			slices.Sort(valid)
			allErrs = append(allErrs, field.NotSupported(fieldPath.Child("apiVersion"), provider.APIVersion, valid))
		}

		if len(provider.MatchImages) == 0 {
			allErrs = append(allErrs, field.Required(fieldPath.Child("matchImages"), "at least 1 item in matchImages is required"))
		}
		for _, matchImage := range provider.MatchImages {
			if err := credentials.ValidMatchImage(matchImage); err != nil {
				allErrs = append(allErrs, field.Invalid(fieldPath.Child("matchImages"), matchImage, fmt.Sprintf("match image is invalid: %s", err.Error())))
			}
		}

		if provider.DefaultCacheDuration == nil {
			allErrs = append(allErrs, field.Required(fieldPath.Child("defaultCacheDuration"), ""))
		}
		if provider.DefaultCacheDuration != nil && provider.DefaultCacheDuration.Duration < 0 {
			allErrs = append(allErrs, field.Invalid(fieldPath.Child("defaultCacheDuration"), provider.DefaultCacheDuration, "must be greater than or equal to 0"))
		}

		if ta := provider.TokenAttributes; ta != nil {
			fldPath := fieldPath.Child("tokenAttributes")
			if len(ta.ServiceAccountTokenAudience) == 0 {
				allErrs = append(allErrs, field.Required(fldPath.Child("serviceAccountTokenAudience"), ""))
			}
			if ta.RequireServiceAccount == nil {
				allErrs = append(allErrs, field.Required(fldPath.Child("requireServiceAccount"), ""))
			}
			if provider.APIVersion != APIVersionV1 {
				allErrs = append(allErrs, field.Forbidden(fldPath, fmt.Sprintf("tokenAttributes is only supported for %s API version", APIVersionV1)))
			}
			if ta.RequireServiceAccount != nil && !*ta.RequireServiceAccount && len(ta.RequiredServiceAccountAnnotationKeys) > 0 {
				allErrs = append(allErrs, field.Forbidden(fldPath.Child("requiredServiceAccountAnnotationKeys"), "requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set"))
			}
			allErrs = append(allErrs, validateAnnotationKeys(fldPath.Child("requiredServiceAccountAnnotationKeys"), ta.RequiredServiceAccountAnnotationKeys)...)
			allErrs = append(allErrs, validateAnnotationKeys(fldPath.Child("optionalServiceAccountAnnotationKeys"), ta.OptionalServiceAccountAnnotationKeys)...)
			required := sets.New(ta.RequiredServiceAccountAnnotationKeys...)
			optional := sets.New(ta.OptionalServiceAccountAnnotationKeys...)
			if both := required.Intersection(optional); both.Len() > 0 {
				allErrs = append(allErrs, field.Invalid(fldPath, sets.List(both), "annotation keys cannot be both required and optional"))
			}
			switch {
			case len(ta.CacheType) == 0:
				allErrs = append(allErrs, field.Required(fldPath.Child("cacheType"), fmt.Sprintf("cacheType is required to be set when tokenAttributes is specified. Supported values are: %s", strings.Join(sets.List(validCacheTypes), ", "))))
			case validCacheTypes.Has(string(ta.CacheType)):
			default:
				allErrs = append(allErrs, field.NotSupported(fldPath.Child("cacheType"), ta.CacheType, sets.List(validCacheTypes)))
			}
		}
	}
	return allErrs
}

// validateAnnotationKeys is the kubelet's validateServiceAccountAnnotationKeys.
func validateAnnotationKeys(fldPath *field.Path, keys []string) field.ErrorList {
	allErrs := field.ErrorList{}
	seen := sets.New[string]()
	for _, k := range keys {
		// Qualified names, case-insensitively, as ObjectMeta's annotation keys.
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			allErrs = append(allErrs, field.Invalid(fldPath, k, msg))
		}
		if seen.Has(k) {
			allErrs = append(allErrs, field.Duplicate(fldPath, k))
		}
		seen.Insert(k)
	}
	return allErrs
}

// Allows reports whether the provider may be asked for image, as the
// kubelet's pluginProvider.isImageAllowed decides: one of its matchImages
// matches (credentials.MatchImage).
func Allows(p kubeletconfigv1.CredentialProvider, image string) bool {
	return slices.ContainsFunc(p.MatchImages, func(m string) bool { return credentials.MatchImage(m, image) })
}
