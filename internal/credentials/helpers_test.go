package credentials

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// b64 is the padded base64 that kubectl writes into auth.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// configJSON is a .dockerconfigjson Secret in namespace "team".
func configJSON(name, data string) Secret {
	return Secret{Namespace: "team", Name: name, Type: TypeDockerConfigJSON, Data: map[string][]byte{KeyDockerConfigJSON: []byte(data)}}
}

// dockercfg is a legacy .dockercfg Secret in namespace "team".
func dockercfg(name, data string) Secret {
	return Secret{Namespace: "team", Name: name, Type: TypeDockercfg, Data: map[string][]byte{KeyDockercfg: []byte(data)}}
}

// The secret values of test data all contain secretMarker, so that the
// leak test can tell them apart from text that may be shown.
const (
	secretMarker = "hunter2"
	// testPassword is the password of most test entries.
	testPassword = "hunter2-pass-9f3c"
	// testToken is the identity or registry token of test entries.
	testToken = "hunter2-token-7a1e"
)

// goodAuth is the auth of most test entries: robot:testPassword.
func goodAuth() string { return b64("robot:" + testPassword) }

// auths is a .dockerconfigjson Secret with one entry per key, each with
// username "u-<name>" and password "hunter2-<name>".
func auths(name string, keys ...string) Secret {
	entries := make([]string, len(keys))
	for i, k := range keys {
		entries[i] = fmt.Sprintf("%q: {\"auth\": %q}", k, b64("u-"+name+":"+secretMarker+"-"+name))
	}
	return configJSON(name, `{"auths": {`+strings.Join(entries, ", ")+`}}`)
}

// describe renders credentials as "secret registry username:password" for
// comparison in tests (the only place a password is ever printed).
func describe(creds []Credential) []string {
	out := make([]string, len(creds))
	for i, c := range creds {
		out[i] = c.Secret + " " + c.Registry + " " + c.Username + ":" + c.Password
	}
	return out
}

// codes lists the finding codes, each prefixed by its severity.
func codes(findings []Finding) []string {
	out := make([]string, len(findings))
	for i, f := range findings {
		out[i] = string(f.Severity) + ":" + f.Code
	}
	return out
}
