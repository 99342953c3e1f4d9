package credentials

// This file mirrors the kubelet, function by function, so that every answer
// of this package is the one the kubelet would give. Upstream references are
// to kubernetes/kubernetes v1.37.

import (
	// The image parser validates digests, which needs the hash functions
	// registered, as in pkg/util/parsers.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
)

// defaultRegistryHost is the key Docker Hub images fall back to
// (keyring.go defaultRegistryHost).
const defaultRegistryHost = "index.docker.io"

// kubeletConfigJSON mirrors credentialprovider.DockerConfigJSON, the shape
// the kubelet decodes a .dockerconfigjson into. Field names and tags must
// stay identical: encoding/json's case-insensitive matching, its handling of
// unknown fields and its type errors are part of the kubelet's behaviour.
type kubeletConfigJSON struct {
	Auths       kubeletConfig     `json:"auths"`
	HTTPHeaders map[string]string `json:"HttpHeaders,omitempty"`
}

// kubeletConfig mirrors credentialprovider.DockerConfig, the legacy
// .dockercfg map.
type kubeletConfig map[string]kubeletEntry

// kubeletEntry mirrors credentialprovider.DockerConfigEntry (without the
// provider, which secrets never set).
type kubeletEntry struct {
	Username string
	Password string
	Email    string
}

// kubeletEntryWithAuth mirrors credentialprovider.dockerConfigEntryWithAuth.
type kubeletEntryWithAuth struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// UnmarshalJSON mirrors DockerConfigEntry.UnmarshalJSON: a non-empty auth
// replaces username and password, and any error fails the whole decode.
func (e *kubeletEntry) UnmarshalJSON(data []byte) error {
	var tmp kubeletEntryWithAuth
	if err := json.Unmarshal(data, &tmp); err != nil {
		return err
	}
	e.Username, e.Password, e.Email = tmp.Username, tmp.Password, tmp.Email
	if len(tmp.Auth) == 0 {
		return nil
	}
	var err error
	e.Username, e.Password, err = decodeAuth(tmp.Auth)
	return err
}

// errAuthNoColon is decodeAuth's error for auth text without ':'.
var errAuthNoColon = errors.New("unable to parse auth field, must be formatted as base64(username:password)")

// decodeAuth mirrors credentialprovider.decodeDockerConfigFieldAuth: padded
// base64 when the trimmed field ends in '=', unpadded otherwise (the field
// itself is decoded untrimmed), then a split on the first ':'. Its errors
// are a base64.CorruptInputError (an offset, no data) or errAuthNoColon.
func decodeAuth(field string) (username, password string, err error) {
	var decoded []byte
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		decoded, err = base64.StdEncoding.DecodeString(field)
	} else {
		decoded, err = base64.RawStdEncoding.DecodeString(field)
	}
	if err != nil {
		return "", "", err
	}
	user, pass, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", "", errAuthNoColon
	}
	return user, pass, nil
}

// decodeForKubelet decodes Secret data exactly as
// secrets.secretsToTrackedDockerConfigs does: json.Unmarshal into
// DockerConfigJSON (taking .Auths) or into the legacy DockerConfig map. Its
// error must never be shown: encoding/json errors may quote the input.
func decodeForKubelet(data []byte, legacy bool) (kubeletConfig, error) {
	if legacy {
		var cfg kubeletConfig
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	var cfg kubeletConfigJSON
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	return cfg.Auths, nil
}

// normalizeKey mirrors the key handling of BasicDockerKeyring.Add: add
// https:// unless the key has an http(s) scheme, parse it as a URL (a key
// that does not parse is ignored), drop a leading /v1 or /v2 path segment,
// and keep host + path, or the host alone when the path is empty or "/".
func normalizeKey(raw string) (string, error) {
	repository := raw
	if !strings.HasPrefix(repository, "https://") && !strings.HasPrefix(repository, "http://") {
		repository = "https://" + repository
	}
	parsed, err := url.Parse(repository)
	if err != nil {
		return "", err
	}
	effectivePath := parsed.Path
	if strings.HasPrefix(effectivePath, "/v2/") || strings.HasPrefix(effectivePath, "/v1/") {
		effectivePath = effectivePath[3:]
	}
	if len(effectivePath) > 0 && effectivePath != "/" {
		return parsed.Host + effectivePath, nil
	}
	return parsed.Host, nil
}

// parseSchemelessURL mirrors credentialprovider.ParseSchemelessURL.
func parseSchemelessURL(schemeless string) (*url.URL, error) {
	parsed, err := url.Parse("https://" + schemeless)
	if err != nil {
		return nil, err
	}
	parsed.Scheme = ""
	return parsed, nil
}

// splitURL mirrors credentialprovider.SplitURL: host labels split on '.',
// and the port ("" when net.SplitHostPort fails, e.g. no port, or an IPv6
// literal without one, whose brackets then stay in the host).
func splitURL(u *url.URL) (parts []string, port string) {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	return strings.Split(host, "."), port
}

// splitKey is a URL split as URLsMatch splits it: host labels, port and
// path. The kubelet splits both URLs again for every key at every lookup;
// splitting them once gives the same answers with far fewer allocations.
type splitKey struct {
	labels []string
	port   string
	path   string
}

func newSplitKey(u *url.URL) splitKey {
	labels, port := splitURL(u)
	return splitKey{labels: labels, port: port, path: u.Path}
}

// urlsMatch mirrors credentialprovider.URLsMatch, on split URLs: identical
// port, the same number of host labels, the key's path a plain string
// prefix of the image's, and each label matched with filepath.Match.
func urlsMatch(glob, target splitKey) (bool, error) {
	if glob.port != target.port {
		return false, nil
	}
	if len(glob.labels) != len(target.labels) {
		return false, nil
	}
	if !strings.HasPrefix(target.path, glob.path) {
		return false, nil
	}
	for i, globPart := range glob.labels {
		matched, err := filepath.Match(globPart, target.labels[i])
		if err != nil {
			return false, err
		}
		if !matched {
			return false, nil
		}
	}
	return true, nil
}

// isDefaultRegistryMatch mirrors credentialprovider.isDefaultRegistryMatch,
// applied by the kubelet to the normalised image name.
func isDefaultRegistryMatch(image string) bool {
	parts := strings.SplitN(image, "/", 2)
	if len(parts[0]) == 0 {
		return false
	}
	if len(parts) == 1 {
		return true
	}
	if parts[0] == "docker.io" || parts[0] == "index.docker.io" {
		return true
	}
	return !strings.ContainsAny(parts[0], ".:")
}

// normalizeImage returns the repository the kubelet looks credentials up
// for: parsers.ParseImageName's repoToPull, the Name() of
// reference.ParseNormalizedNamed ("nginx:1" -> "docker.io/library/nginx").
func normalizeImage(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", err
	}
	return named.Name(), nil
}
