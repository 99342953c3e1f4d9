package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

// inspector collects the findings about one document (a Secret's data key
// or a config.json). Messages quote registry keys (redacted) and field
// names, never values.
type inspector struct {
	secret string
	where  string
	// leftOut: the document is a config.json being converted, and entries
	// the kubelet cannot decode are left out rather than failing a Pod.
	leftOut  bool
	findings []Finding
}

// consequence says what an error that fails the kubelet's decode does.
func (in *inspector) consequence() string {
	if in.leftOut {
		return "left out, since the kubelet would fail every image pull of the Pod"
	}
	return "the kubelet fails every image pull of the Pod"
}

func (in *inspector) add(sev Severity, code, rawKey, format string, args ...any) {
	registry := ""
	if rawKey != "" {
		registry = redactKey(rawKey)
	}
	in.findings = append(in.findings, Finding{
		Secret:   in.secret,
		Severity: sev,
		Code:     code,
		Registry: registry,
		Message:  in.where + ": " + fmt.Sprintf(format, args...),
	})
}

// failed reports whether a finding so far makes the kubelet fail the keyring.
func (in *inspector) failed() bool {
	for _, f := range in.findings {
		if failsKeyring(f.Code) {
			return true
		}
	}
	return false
}

// inspectedEntry is what inspection learnt about one entry.
type inspectedEntry struct {
	raw      string
	username string
	password string
	// ok: the entry decodes (no error that fails the keyring).
	ok bool
	// hasToken: identitytoken or registrytoken is set.
	hasToken bool
	// key is the normalised key; keyOK is false when the kubelet ignores
	// the key or it can never match.
	key   string
	keyOK bool
}

// hasCredentials reports whether the entry gives a username or a password.
func (e inspectedEntry) hasCredentials() bool { return e.username != "" || e.password != "" }

// usable reports whether the kubelet can send this entry's credentials for
// some image.
func (e inspectedEntry) usable() bool { return e.ok && e.keyOK && e.hasCredentials() }

// inspectDocument finds every problem in a document the kubelet would decode
// with decodeForKubelet(data, legacy), and returns its entries sorted by key.
// It never stops at the first problem, unlike the kubelet, so that one run
// reports them all.
func (in *inspector) inspectDocument(data []byte, legacy bool) []inspectedEntry {
	var top json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		in.add(SeverityError, CodeNotJSON, "", "not valid JSON (%s); %s", syntaxErrorPosition(err), in.consequence())
		return nil
	}
	switch kind := jsonKind(top); kind {
	case "null":
		in.add(SeverityError, CodeNoUsableEntry, "", "is JSON null: the kubelet gets no credentials from it")
		return nil
	case "object":
	default:
		in.add(SeverityError, CodeBadStructure, "", "is a JSON %s, want an object; %s", kind, in.consequence())
		return nil
	}

	var topLevel map[string]json.RawMessage
	_ = json.Unmarshal(top, &topLevel) // top is a JSON object: this cannot fail

	var auths map[string]json.RawMessage
	if legacy {
		auths = topLevel
		if v, ok := topLevel["auths"]; ok && holdsEntries(v) {
			in.add(SeverityError, CodeWrapperMismatch, "", `holds a config.json ({"auths": {...}}) but the Secret is of type %s: the kubelet reads "auths" as a registry name and gets no credentials; use type %s with key %s`, TypeDockercfg, TypeDockerConfigJSON, KeyDockerConfigJSON)
			auths = make(map[string]json.RawMessage, len(topLevel))
			for k, v := range topLevel {
				if k != "auths" {
					auths[k] = v
				}
			}
		}
	} else {
		// The same struct shape as the kubelet's, so that encoding/json
		// matches "auths" and "HttpHeaders" case-insensitively as it does.
		var wrapper struct {
			Auths       map[string]json.RawMessage `json:"auths"`
			HTTPHeaders json.RawMessage            `json:"HttpHeaders,omitempty"`
		}
		if err := json.Unmarshal(top, &wrapper); err != nil {
			in.add(SeverityError, CodeBadStructure, "", `"auths" is a JSON %s, want an object; the kubelet fails every image pull of the Pod`, typeErrorValue(err))
			return nil
		}
		if len(wrapper.HTTPHeaders) > 0 {
			var headers map[string]string
			if err := json.Unmarshal(wrapper.HTTPHeaders, &headers); err != nil {
				in.add(SeverityError, CodeBadStructure, "", `"HttpHeaders" is not an object of strings; the kubelet fails every image pull of the Pod`)
			}
		}
		auths = wrapper.Auths
		if len(auths) == 0 {
			if legacyShaped(topLevel) {
				in.add(SeverityError, CodeWrapperMismatch, "", `holds a legacy .dockercfg map (registry keys at the top level, no "auths"): the kubelet reads only "auths" and silently gets no credentials; wrap the map in {"auths": ...} or use type %s with key %s`, TypeDockercfg, KeyDockercfg)
				return nil
			}
			in.add(SeverityError, CodeNoUsableEntry, "", `has no registry entries under "auths": the kubelet gets no credentials from it`)
			return nil
		}
	}

	keys := make([]string, 0, len(auths))
	for k := range auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	entries := make([]inspectedEntry, 0, len(keys))
	for _, raw := range keys {
		entries = append(entries, in.inspectEntry(raw, auths[raw]))
	}
	in.checkDuplicates(entries)
	return entries
}

// inspectEntry checks one entry the way DockerConfigEntry.UnmarshalJSON
// decodes it, then its key the way BasicDockerKeyring.Add and Lookup use it.
func (in *inspector) inspectEntry(raw string, value json.RawMessage) inspectedEntry {
	e := inspectedEntry{raw: raw}
	e.key, e.keyOK = in.inspectKey(raw)

	// The kubelet's fields plus the tokens it ignores, which may hold any
	// JSON since the kubelet never decodes them.
	var fields struct {
		Username      string          `json:"username,omitempty"`
		Password      string          `json:"password,omitempty"`
		Email         string          `json:"email,omitempty"`
		Auth          string          `json:"auth,omitempty"`
		IdentityToken json.RawMessage `json:"identitytoken,omitempty"`
		RegistryToken json.RawMessage `json:"registrytoken,omitempty"`
	}
	if err := json.Unmarshal(value, &fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			in.add(SeverityError, CodeBadStructure, raw, "entry %q: %q is a JSON %s, want a string; %s", redactKey(raw), typeErr.Field, typeErr.Value, in.consequence())
		} else {
			in.add(SeverityError, CodeBadStructure, raw, "entry %q is a JSON %s, want an object; %s", redactKey(raw), jsonKind(value), in.consequence())
		}
		return e
	}

	e.username, e.password = fields.Username, fields.Password
	if fields.Auth != "" {
		user, pass, err := decodeAuth(fields.Auth)
		var corrupt base64.CorruptInputError
		switch {
		case errors.As(err, &corrupt):
			in.add(SeverityError, CodeBadBase64, raw, "entry %q: auth is not valid %s base64 (illegal data at byte %d); %s", redactKey(raw), paddingMode(fields.Auth), int64(corrupt), in.consequence())
			return e
		case err != nil:
			in.add(SeverityError, CodeAuthNoColon, raw, "entry %q: auth does not decode to username:password (no ':'); %s", redactKey(raw), in.consequence())
			return e
		}
		if (fields.Username != "" || fields.Password != "") && (fields.Username != user || fields.Password != pass) {
			in.add(SeverityWarning, CodeAuthMismatch, raw, "entry %q: auth and the %s disagree; the kubelet uses auth", redactKey(raw), disagreement(fields.Username != user, fields.Password != pass))
		}
		e.username, e.password = user, pass
	}
	e.ok = true

	var tokens []string
	if setJSON(fields.IdentityToken) {
		tokens = append(tokens, "identitytoken")
	}
	if setJSON(fields.RegistryToken) {
		tokens = append(tokens, "registrytoken")
	}
	e.hasToken = len(tokens) > 0
	switch {
	case e.hasToken && !e.hasCredentials():
		in.add(SeverityWarning, CodeIgnoredToken, raw, "entry %q: the kubelet ignores %s, and the entry has no username, password or auth, so its pulls are anonymous", redactKey(raw), strings.Join(tokens, " and "))
	case e.hasToken:
		in.add(SeverityWarning, CodeIgnoredToken, raw, "entry %q: the kubelet ignores %s and uses only username/password/auth", redactKey(raw), strings.Join(tokens, " and "))
	case !e.hasCredentials():
		in.add(SeverityWarning, CodeEmptyEntry, raw, "entry %q has no username, password or auth: the kubelet sends empty credentials (an anonymous pull)", redactKey(raw))
	}
	return e
}

// inspectKey reports keys the kubelet ignores or that can never match the
// images they are meant for. It returns the normalised key and whether it
// can match at all.
func (in *inspector) inspectKey(raw string) (string, bool) {
	key, err := normalizeKey(raw)
	if err != nil {
		in.add(SeverityWarning, CodeUnmatchableKey, raw, "key %q cannot be parsed as a URL: the kubelet ignores this entry", redactKey(raw))
		return "", false
	}
	problem, usable := keyProblem(key)
	if problem != "" {
		in.add(SeverityWarning, CodeUnmatchableKey, raw, "key %q %s", redactKey(raw), problem)
	}
	return key, usable
}

// keyProblem explains why a normalised key never matches, or matches only
// unusual spellings of the images it is probably meant for (usable then
// stays true).
func keyProblem(key string) (problem string, usable bool) {
	u, err := parseSchemelessURL(key)
	if err != nil {
		return fmt.Sprintf("normalises to %q, which the kubelet cannot parse again when matching: it never matches", redactKey(key)), false
	}
	if u.Host == "" {
		return "has no host: it never matches", false
	}
	labels, port := splitURL(u)
	if strings.HasPrefix(u.Host, "[") && port == "" {
		return "is an IPv6 address without a port: the kubelet matches host labels as globs, where [...] is a character class, so it never matches; write the port (e.g. [::1]:443)", false
	}
	for _, label := range labels {
		if _, err := filepath.Match(label, ""); err != nil {
			return fmt.Sprintf("has host label %q, which is not a valid glob pattern: it never matches", label), false
		}
	}
	host := strings.Join(labels, ".")
	if host == defaultRegistryHost && key != defaultRegistryHost {
		return `never matches: Docker Hub images are normalised to docker.io, and the kubelet falls back only to the bare key index.docker.io (no path, no port); write https://index.docker.io/v1/ or docker.io/PATH`, false
	}
	if strings.ContainsFunc(u.Path, unicode.IsUpper) {
		return "has upper-case letters in its path, and image repository paths are always lower-case: it never matches", false
	}
	if host == "registry-1.docker.io" {
		return `matches only images written as registry-1.docker.io/...: Docker Hub images (nginx, docker.io/...) are normalised to docker.io; write https://index.docker.io/v1/ or docker.io`, true
	}
	return "", true
}

// checkDuplicates reports keys that normalise to the same registry.
func (in *inspector) checkDuplicates(entries []inspectedEntry) {
	byKey := map[string][]string{}
	var order []string
	for _, e := range entries {
		if !e.keyOK {
			continue // reported already, and never tried
		}
		if _, seen := byKey[e.key]; !seen {
			order = append(order, e.key)
		}
		byKey[e.key] = append(byKey[e.key], e.raw)
	}
	for _, key := range order {
		raws := byKey[key]
		if len(raws) < 2 {
			continue
		}
		quoted := make([]string, len(raws))
		for i, r := range raws {
			quoted[i] = fmt.Sprintf("%q", redactKey(r))
		}
		in.add(SeverityWarning, CodeDuplicateKey, raws[0], "keys %s all normalise to %q: the kubelet tries each, in an order it does not define", strings.Join(quoted, ", "), redactKey(key))
	}
}

// jsonKind names the JSON type of a value: object, array, string, number,
// bool or null.
func jsonKind(v []byte) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// setJSON reports whether an ignored field holds something: not absent,
// null or "".
func setJSON(v json.RawMessage) bool {
	s := string(bytes.TrimSpace(v))
	return s != "" && s != "null" && s != `""`
}

// holdsEntries reports whether v is an object of objects, which is what an
// "auths" map looks like.
func holdsEntries(v json.RawMessage) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil || len(m) == 0 {
		return false
	}
	for _, e := range m {
		if jsonKind(e) != "object" {
			return false
		}
	}
	return true
}

// legacyShaped reports whether a .dockerconfigjson document holds registry
// entries at its top level.
func legacyShaped(topLevel map[string]json.RawMessage) bool {
	for k, v := range topLevel {
		if strings.EqualFold(k, "auths") || strings.EqualFold(k, "HttpHeaders") {
			continue
		}
		if jsonKind(v) == "object" {
			return true
		}
	}
	return false
}

// syntaxErrorPosition describes a JSON syntax error by its offset alone:
// encoding/json's message quotes the offending input character.
func syntaxErrorPosition(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	}
	return "syntax error"
}

// typeErrorValue returns the JSON type encoding/json found, from a type
// error, without the value.
func typeErrorValue(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return typeErr.Value
	}
	return "value of the wrong type"
}

// paddingMode says which base64 alphabet the kubelet chose, and why.
func paddingMode(auth string) string {
	if strings.HasSuffix(strings.TrimSpace(auth), "=") {
		return "padded (it ends in '=')"
	}
	return "unpadded (it does not end in '=')"
}

func disagreement(user, pass bool) string {
	switch {
	case user && pass:
		return "username and password fields"
	case user:
		return "username field"
	default:
		return "password field"
	}
}

// redactKey returns a registry key as written, with any user info
// ("user:password@") replaced, since it may hold a password.
func redactKey(key string) string {
	rest, scheme := key, ""
	if i := strings.Index(rest, "://"); i >= 0 {
		scheme, rest = rest[:i+3], rest[i+3:]
	}
	authority := rest
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return key
	}
	return scheme + "REDACTED" + rest[at:]
}
