package credprovider

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	credentialproviderapi "k8s.io/kubelet/pkg/apis/credentialprovider"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// Cache key types of a response (the kubelet refuses any other).
const (
	CacheKeyImage    = string(credentialproviderapi.ImagePluginCacheKeyType)
	CacheKeyRegistry = string(credentialproviderapi.RegistryPluginCacheKeyType)
	CacheKeyGlobal   = string(credentialproviderapi.GlobalPluginCacheKeyType)
)

// encodeRequest mirrors execPlugin.encodeRequest: the internal request,
// encoded as JSON in the plugin's apiVersion.
func (r *Runner) encodeRequest(apiVersion string, req Request) ([]byte, error) {
	info, ok := runtime.SerializerInfoForMediaType(r.codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	if !ok {
		return nil, errors.New("no JSON serializer")
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	return runtime.Encode(r.codecs.EncoderForVersion(info.Serializer, gv), &credentialproviderapi.CredentialProviderRequest{
		Image:                     req.Image,
		ServiceAccountToken:       req.ServiceAccountToken,
		ServiceAccountAnnotations: req.ServiceAccountAnnotations,
	})
}

// decodeResponse mirrors the checks of execPlugin.ExecPlugin and
// decodeResponse, and the cacheKeyType check of pluginProvider.provide.
// It returns a detail that never quotes data, or "" and the response.
func (r *Runner) decodeResponse(apiVersion string, data []byte) (*credentialproviderapi.CredentialProviderResponse, string) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, "wrote nothing to stdout"
	}
	var syntax *json.SyntaxError
	if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &syntax) {
		return nil, fmt.Sprintf("wrote something that is not JSON to stdout (syntax error at byte %d)", syntax.Offset)
	} else if err != nil {
		return nil, "wrote something that is not JSON to stdout"
	}
	gvk, err := kjson.DefaultMetaFactory.Interpret(data)
	if err != nil {
		return nil, "wrote JSON that is not an object with string apiVersion and kind"
	}
	if got := gvk.GroupVersion().String(); got != apiVersion {
		switch {
		case gvk.Group == "" && gvk.Version == "":
			return nil, fmt.Sprintf("answered without an apiVersion, want %s", apiVersion)
		case slices.Contains(APIVersions(), got):
			return nil, fmt.Sprintf("answered in %s, want %s as configured", got, apiVersion)
		default:
			return nil, fmt.Sprintf("answered with an apiVersion that is no credential provider version, want %s", apiVersion)
		}
	}
	obj, gvk, err := r.codecs.UniversalDecoder().Decode(data, nil, nil)
	switch {
	case runtime.IsStrictDecodingError(err):
		return nil, "answered with unknown or duplicate fields, which the kubelet's strict decoding refuses"
	case runtime.IsNotRegisteredError(err), runtime.IsMissingKind(err):
		return nil, "answered with a kind other than CredentialProviderResponse"
	case err != nil:
		// Not wrapped: a decode error can quote the response, credentials included.
		return nil, "answered with a response that does not decode (a field of the wrong type)"
	case gvk == nil || gvk.Kind != "CredentialProviderResponse" || gvk.Group != credentialproviderapi.GroupName:
		return nil, "answered with a kind other than CredentialProviderResponse"
	}
	resp, ok := obj.(*credentialproviderapi.CredentialProviderResponse)
	if !ok {
		return nil, "answered with a kind other than CredentialProviderResponse"
	}
	switch string(resp.CacheKeyType) {
	case CacheKeyImage, CacheKeyRegistry, CacheKeyGlobal:
	case "":
		return nil, "answered without a cacheKeyType, which the kubelet requires"
	default:
		return nil, "answered with a cacheKeyType other than Image, Registry or Global"
	}
	return resp, ""
}

// result turns stdout into a Result, or a BadResponse/NoCredentials error
// whose Plugin, Image and sizes the caller fills in.
func (r *Runner) result(p Plugin, req Request, stdout []byte, obtained time.Time) (*Result, *Error) {
	bad := func(reason Reason, format string, args ...any) (*Result, *Error) {
		return nil, &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	resp, problem := r.decodeResponse(p.APIVersion, stdout)
	if problem != "" {
		return bad(ReasonBadResponse, "%s", problem)
	}
	if len(resp.Auth) == 0 {
		return bad(ReasonNoCredentials, "plugin returned no credentials")
	}
	auth := make(map[string]AuthConfig, len(resp.Auth))
	for key, a := range resp.Auth {
		switch {
		case req.ServiceAccountToken != "" && a.Password == req.ServiceAccountToken:
			// The kubelet allows this only for per-token caching; a copied
			// pull secret would hand the token to every namespace.
			return bad(ReasonBadResponse, "returned the service account token as a password, which pullsecrets never copies")
		case !utf8.ValidString(key) || !utf8.ValidString(a.Username) || !utf8.ValidString(a.Password):
			return bad(ReasonBadResponse, "returned a registry key, username or password that is not valid UTF-8")
		case strings.Contains(a.Username, ":"):
			return bad(ReasonBadResponse, "returned a username containing ':', which a pull secret's auth field cannot carry")
		}
		auth[key] = AuthConfig{Username: a.Username, Password: a.Password}
	}
	data, findings, err := buildDockerConfigJSON(auth)
	if err != nil {
		return bad(ReasonNoCredentials, "returned no credentials the kubelet could use from a pull secret (%s)", findingCodes(findings))
	}

	duration, source := cacheDuration(p, resp)
	return &Result{
		Plugin:              p.Name,
		Image:               req.Image,
		CacheKeyType:        string(resp.CacheKeyType),
		Auth:                auth,
		CacheDuration:       duration,
		CacheDurationSource: source,
		Obtained:            obtained,
		Expires:             obtained.Add(duration),
		DockerConfigJSON:    data,
		Findings:            findings,
	}, nil
}

// cacheDuration mirrors pluginProvider.provide: the response's
// cacheDuration, else the configured default; 0 means "for this pull
// only". A negative one counts as 0 (the kubelet's entry is born
// expired). MinCacheDuration then raises it.
func cacheDuration(p Plugin, resp *credentialproviderapi.CredentialProviderResponse) (time.Duration, CacheDurationSource) {
	d, source := p.DefaultCacheDuration, CacheDurationDefault
	if resp.CacheDuration != nil {
		d, source = max(resp.CacheDuration.Duration, 0), CacheDurationPlugin
	}
	if p.MinCacheDuration > d {
		return p.MinCacheDuration, CacheDurationMinimum
	}
	return d, source
}

// buildDockerConfigJSON writes the auth map as a Docker config.json and
// keeps what the kubelet can use, in kubectl's entry form, through
// credentials.BuildFromDockerConfig.
func buildDockerConfigJSON(auth map[string]AuthConfig) ([]byte, []credentials.Finding, error) {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	cfg := struct {
		Auths map[string]entry `json:"auths"`
	}{Auths: make(map[string]entry, len(auth))}
	for key, a := range auth {
		cfg.Auths[key] = entry(a)
	}
	configJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, errors.New("encode docker config")
	}
	return credentials.BuildFromDockerConfig(configJSON)
}

// findingCodes lists the distinct codes of findings, sorted: codes are
// fixed words, safe in an error.
func findingCodes(findings []credentials.Finding) string {
	codes := map[string]bool{}
	for _, f := range findings {
		codes[f.Code] = true
	}
	if len(codes) == 0 {
		return "no entry"
	}
	return strings.Join(slices.Sorted(maps.Keys(codes)), ", ")
}
