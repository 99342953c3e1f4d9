package credentials

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// DefaultServer is the registry key `kubectl create secret docker-registry`
// uses when --docker-server is not given: Docker Hub.
const DefaultServer = "https://index.docker.io/v1/"

// kubectlConfigJSON and kubectlEntry mirror the types of kubectl's
// create_secret_docker.go (DockerConfigJSON, DockerConfigEntry), so that
// json.Marshal gives the same bytes: field order, omitempty, HTML escaping.
type kubectlConfigJSON struct {
	Auths       map[string]kubectlEntry `json:"auths"`
	HTTPHeaders map[string]string       `json:"HttpHeaders,omitempty"`
}

type kubectlEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// newKubectlEntry mirrors handleDockerCfgJSONContent's entry, with auth
// from encodeDockerConfigFieldAuth (padded base64 of "username:password").
func newKubectlEntry(username, password, email string) kubectlEntry {
	return kubectlEntry{
		Username: username,
		Password: password,
		Email:    email,
		Auth:     base64.StdEncoding.EncodeToString([]byte(username + ":" + password)),
	}
}

// Build returns .dockerconfigjson data for one registry, byte for byte what
// `kubectl create secret docker-registry --docker-server=server
// --docker-username=username --docker-password=password
// --docker-email=email` stores. Like kubectl it needs a server, a username
// and a password. Unlike kubectl it refuses a username with ':' (the kubelet
// would split auth at that ':' and send another username) and text that is
// not UTF-8 (JSON would silently replace it).
func Build(server, username, password, email string) ([]byte, error) {
	switch {
	case server == "":
		return nil, errors.New("build docker config: the server is empty")
	case username == "":
		return nil, errors.New("build docker config: the username is empty")
	case password == "":
		return nil, errors.New("build docker config: the password is empty")
	case strings.Contains(username, ":"):
		return nil, errors.New("build docker config: the username contains ':', which auth (base64 of username:password) cannot carry")
	}
	for _, field := range []struct{ name, value string }{{"server", server}, {"username", username}, {"password", password}, {"email", email}} {
		if !utf8.ValidString(field.value) {
			return nil, fmt.Errorf("build docker config: the %s is not valid UTF-8", field.name)
		}
	}
	return json.Marshal(kubectlConfigJSON{Auths: map[string]kubectlEntry{server: newKubectlEntry(username, password, email)}})
}

// BuildFromDockerConfig returns .dockerconfigjson data made of what the
// kubelet can use in a Docker config.json: every entry with credentials,
// in kubectl's entry form (username, password, email, auth). Entries it
// leaves out are reported: those kept by a credential helper (credsStore,
// credHelpers) as CodeHelperOnly, empty ones, tokens the kubelet ignores,
// keys that never match, and entries the kubelet could not decode. The
// findings have an empty Secret. It fails when the file is not a config.json
// or nothing usable is left.
func BuildFromDockerConfig(configJSON []byte) (data []byte, findings []Finding, err error) {
	var top json.RawMessage
	if err := json.Unmarshal(configJSON, &top); err != nil {
		return nil, nil, fmt.Errorf("read docker config: not valid JSON (%s)", syntaxErrorPosition(err))
	}
	if kind := jsonKind(top); kind != "object" {
		return nil, nil, fmt.Errorf("read docker config: it is a JSON %s, want an object", kind)
	}
	var cfg struct {
		Auths       map[string]json.RawMessage `json:"auths"`
		CredsStore  json.RawMessage            `json:"credsStore"`
		CredHelpers map[string]json.RawMessage `json:"credHelpers"`
	}
	if err := json.Unmarshal(top, &cfg); err != nil {
		return nil, nil, fmt.Errorf("read docker config: %q or %q is a JSON %s, want an object", "auths", "credHelpers", typeErrorValue(err))
	}
	store := helperName(cfg.CredsStore)

	in := &inspector{where: "config.json", leftOut: true}
	out := map[string]kubectlEntry{}
	var inspected []inspectedEntry
	for _, raw := range sortedKeys(cfg.Auths) {
		e := in.inspectEntry(raw, cfg.Auths[raw])
		inspected = append(inspected, e)
		helper := helperName(cfg.CredHelpers[raw])
		if helper == "" {
			helper = store
		}
		if e.ok && !e.hasCredentials() && helper != "" {
			in.add(SeverityWarning, CodeHelperOnly, raw, "entry %q: its credentials are kept by the credential helper %q, which the kubelet cannot run; left out (log in with a username and password, or build the Secret from them)", redactKey(raw), "docker-credential-"+helper)
		}
		if !e.usable() {
			continue
		}
		var email struct {
			Email string `json:"email"`
		}
		_ = json.Unmarshal(cfg.Auths[raw], &email) // decoded once already by inspectEntry
		out[raw] = newKubectlEntry(e.username, e.password, email.Email)
	}
	in.checkDuplicates(inspected)
	for _, raw := range sortedKeys(cfg.CredHelpers) {
		if _, listed := cfg.Auths[raw]; listed {
			continue
		}
		in.add(SeverityWarning, CodeHelperOnly, raw, "registry %q: its credentials are kept by the credential helper %q, which the kubelet cannot run; left out", redactKey(raw), "docker-credential-"+helperName(cfg.CredHelpers[raw]))
	}
	if len(out) == 0 {
		return nil, in.findings, errors.New("read docker config: no entry has credentials the kubelet can use")
	}
	data, err = json.Marshal(kubectlConfigJSON{Auths: out})
	if err != nil {
		return nil, in.findings, fmt.Errorf("encode docker config: %w", err)
	}
	return data, in.findings, nil
}

// helperName returns a credential helper's name from a JSON string, or ""
// for anything else.
func helperName(v json.RawMessage) string {
	var name string
	if err := json.Unmarshal(v, &name); err != nil {
		return ""
	}
	return name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
