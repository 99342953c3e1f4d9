package credentials

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// validationCase is a Secret and what Validate and NewKeyring say of it.
type validationCase struct {
	name   string
	secret Secret
	want   []string // severity:code, in order
	// failsPod: the kubelet fails every image pull of a Pod using it.
	failsPod bool
}

// validationCases covers every finding. Their secret values all contain
// secretMarker (see TestNothingLeaks).
func validationCases() []validationCase {
	good := `{"auths":{"reg.example.com":{"auth":"` + goodAuth() + `"}}}`
	entry := func(key, body string) string { return `{"auths":{"` + key + `":` + body + `}}` }
	return []validationCase{
		{name: "good", secret: configJSON("s", good)},
		{name: "good legacy", secret: dockercfg("s", `{"reg.example.com":{"username":"robot","password":"`+testPassword+`"}}`)},
		{name: "good kubectl output", secret: configJSON("s", `{"auths":{"https://index.docker.io/v1/":{"username":"alice","password":"hunter2:et\u003c\u0026\u003e","email":"a@example.com","auth":"`+b64("alice:hunter2:et<&>")+`"}}}`)},

		// The Secret itself.
		{name: "opaque", secret: Secret{Name: "s", Type: TypeOpaque, Data: map[string][]byte{KeyDockerConfigJSON: []byte(good)}}, want: []string{"error:WrongType"}},
		{name: "no type", secret: Secret{Name: "s", Data: map[string][]byte{KeyDockerConfigJSON: []byte(good)}}, want: []string{"error:WrongType"}},
		{name: "dockerconfigjson type without its key", secret: Secret{Name: "s", Type: TypeDockerConfigJSON, Data: map[string][]byte{KeyDockercfg: []byte(good)}}, want: []string{"error:MissingKey"}},
		{name: "dockercfg type without its key", secret: Secret{Name: "s", Type: TypeDockercfg, Data: map[string][]byte{KeyDockerConfigJSON: []byte(good)}}, want: []string{"error:MissingKey"}},
		{name: "empty key", secret: configJSON("s", ""), want: []string{"error:MissingKey"}},

		// The document.
		{name: "not JSON", secret: configJSON("s", `{"auths": {"reg.example.com":{"password":"`+testPassword), want: []string{"error:NotJSON"}, failsPod: true},
		{name: "trailing garbage", secret: configJSON("s", good+"x"), want: []string{"error:NotJSON"}, failsPod: true},
		{name: "password as a bare word", secret: configJSON("s", `{"auths":{"reg.example.com":{"password":`+testPassword+`}}}`), want: []string{"error:NotJSON"}, failsPod: true},
		{name: "top-level array", secret: configJSON("s", `["`+testPassword+`"]`), want: []string{"error:BadStructure"}, failsPod: true},
		{name: "top-level null", secret: configJSON("s", `null`), want: []string{"error:NoUsableEntry"}},
		{name: "legacy top-level string", secret: dockercfg("s", `"`+testPassword+`"`), want: []string{"error:BadStructure"}, failsPod: true},
		{name: "auths not an object", secret: configJSON("s", `{"auths": ["`+testPassword+`"]}`), want: []string{"error:BadStructure"}, failsPod: true},
		{name: "HttpHeaders not strings", secret: configJSON("s", `{"auths":{"reg.example.com":{"auth":"`+goodAuth()+`"}},"HttpHeaders":{"X":1}}`), want: []string{"error:BadStructure"}, failsPod: true},
		{name: "HttpHeaders fine", secret: configJSON("s", `{"auths":{"reg.example.com":{"auth":"`+goodAuth()+`"}},"HttpHeaders":{"X":"y"}}`)},
		{name: "empty auths", secret: configJSON("s", `{"auths":{}}`), want: []string{"error:NoUsableEntry"}},
		{name: "no auths", secret: configJSON("s", `{}`), want: []string{"error:NoUsableEntry"}},
		{name: "legacy map under .dockerconfigjson", secret: configJSON("s", `{"reg.example.com":{"auth":"`+goodAuth()+`"}}`), want: []string{"error:WrapperMismatch"}},
		{name: "legacy map with bad auth under .dockerconfigjson is not even decoded", secret: configJSON("s", `{"reg.example.com":{"auth":"hunter2!!"}}`), want: []string{"error:WrapperMismatch"}},
		{name: "config.json under .dockercfg", secret: dockercfg("s", good), want: []string{"error:WrapperMismatch"}},

		// Entries.
		{name: "bad base64", secret: configJSON("s", entry("reg.example.com", `{"auth":"hunter2%pass"}`)), want: []string{"error:BadBase64"}, failsPod: true},
		{name: "padded base64 decoded as padded", secret: configJSON("s", entry("reg.example.com", `{"auth":"`+b64("robot:hunter2-pp")+`"}`))},
		{name: "unpadded data with padding inside", secret: configJSON("s", entry("reg.example.com", `{"auth":"`+b64("robot:hunter2-xy")+`Q"}`)), want: []string{"error:BadBase64"}, failsPod: true},
		{name: "trailing space after padding", secret: configJSON("s", entry("reg.example.com", `{"auth":"`+b64("robot:hunter2-pp")+` "}`)), want: []string{"error:BadBase64"}, failsPod: true},
		{name: "auth without colon", secret: configJSON("s", entry("reg.example.com", `{"auth":"`+b64("hunter2-token-only")+`"}`)), want: []string{"error:AuthNoColon"}, failsPod: true},
		{name: "one bad entry among good ones", secret: configJSON("s", `{"auths":{"a.example.com":{"auth":"`+goodAuth()+`"},"b.example.com":{"auth":"`+b64("hunter2nocolon")+`"}}}`), want: []string{"error:AuthNoColon"}, failsPod: true},
		{name: "entry not an object", secret: configJSON("s", entry("reg.example.com", `"robot:`+testPassword+`"`)), want: []string{"error:BadStructure"}, failsPod: true},
		{name: "username a number", secret: configJSON("s", entry("reg.example.com", `{"username":1,"password":"`+testPassword+`"}`)), want: []string{"error:BadStructure"}, failsPod: true},
		{name: "password an array", secret: configJSON("s", entry("reg.example.com", `{"username":"robot","password":["`+testPassword+`"]}`)), want: []string{"error:BadStructure"}, failsPod: true},
		{name: "null entry", secret: configJSON("s", entry("reg.example.com", `null`)), want: []string{"warning:EmptyEntry", "error:NoUsableEntry"}},
		{name: "auth disagrees", secret: configJSON("s", entry("reg.example.com", `{"username":"robot","password":"hunter2-other","auth":"`+goodAuth()+`"}`)), want: []string{"warning:AuthMismatch"}},
		{name: "empty entry next to a good one", secret: configJSON("s", `{"auths":{"a.example.com":{},"reg.example.com":{"auth":"`+goodAuth()+`"}}}`), want: []string{"warning:EmptyEntry"}},
		{name: "Docker Desktop entry", secret: configJSON("s", `{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"desktop"}`), want: []string{"warning:EmptyEntry", "error:NoUsableEntry"}},
		{name: "identity token only", secret: configJSON("s", entry("reg.example.com", `{"identitytoken":"`+testToken+`"}`)), want: []string{"warning:IgnoredToken", "error:NoUsableEntry"}},
		{name: "registry token next to credentials", secret: configJSON("s", entry("reg.example.com", `{"auth":"`+goodAuth()+`","registrytoken":"`+testToken+`"}`)), want: []string{"warning:IgnoredToken"}},
		{name: "token of any JSON type is ignored", secret: configJSON("s", entry("reg.example.com", `{"auth":"`+goodAuth()+`","identitytoken":{"x":"`+testToken+`"}}`)), want: []string{"warning:IgnoredToken"}},

		// Keys.
		{name: "duplicate keys after normalisation", secret: auths("s", "reg.example.com", "https://reg.example.com/v1/", "http://reg.example.com/"), want: []string{"warning:DuplicateKey"}},
		{name: "registry-1.docker.io", secret: auths("s", "registry-1.docker.io"), want: []string{"warning:UnmatchableKey"}},
		{name: "path-scoped index.docker.io", secret: auths("s", "index.docker.io/library"), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "index.docker.io with a port", secret: auths("s", "index.docker.io:443"), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "unparsable key", secret: auths("s", "reg.example.com:abc"), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "unparsable key with user info", secret: auths("s", "https://bob:hunter2-in-key@reg.example.com:abc/"), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "user info in a key", secret: auths("s", "https://bob:hunter2-in-key@reg.example.com/"), want: nil},
		{name: "key without host", secret: auths("s", "https:///v2/"), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "IPv6 without port", secret: auths("s", "[::1]"), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "IPv6 with port", secret: auths("s", "[::1]:5000")},
		{name: "backslash in host", secret: auths("s", `reg\.example.com`), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "upper-case path", secret: auths("s", "reg.example.com/Team"), want: []string{"warning:UnmatchableKey", "error:NoUsableEntry"}},
		{name: "unmatchable key next to a good one", secret: auths("s", "reg.example.com", "index.docker.io/library"), want: []string{"warning:UnmatchableKey"}},
		{name: "glob key", secret: auths("s", "*.azurecr.io")},
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range validationCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			findings := Validate(tt.secret)
			if diff := cmp.Diff(tt.want, codes(findings), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("findings (-want +got):\n%s\n%v", diff, findings)
			}
			for _, f := range findings {
				if f.Secret != tt.secret.Ref() || f.Message == "" {
					t.Errorf("finding %+v: want Secret %q and a message", f, tt.secret.Ref())
				}
			}
			if got := NewKeyring([]Secret{tt.secret}).Err() != nil; got != tt.failsPod {
				t.Errorf("keyring fails = %v, want %v", got, tt.failsPod)
			}
			if HasError(findings) != strings.Contains(strings.Join(tt.want, " "), "error:") {
				t.Errorf("HasError = %v for %v", HasError(findings), tt.want)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret Secret
		want   string
	}{
		{
			name:   "wrong type names the right one",
			secret: Secret{Name: "s", Type: TypeOpaque, Data: map[string][]byte{KeyDockerConfigJSON: []byte("{}")}},
			want:   `Secret has type "Opaque": the kubelet reads pull credentials only from types kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg, and ignores it; its .dockerconfigjson needs type kubernetes.io/dockerconfigjson`,
		},
		{
			name:   "syntax error by offset only",
			secret: configJSON("s", `{"auths": x}`),
			want:   `.dockerconfigjson: not valid JSON (syntax error at byte 11); the kubelet fails every image pull of the Pod`,
		},
		{
			name:   "base64 mode explained",
			secret: configJSON("s", `{"auths":{"reg.example.com":{"auth":"ab$d"}}}`),
			want:   `.dockerconfigjson: entry "reg.example.com": auth is not valid unpadded (it does not end in '=') base64 (illegal data at byte 2); the kubelet fails every image pull of the Pod`,
		},
		{
			name:   "field type",
			secret: configJSON("s", `{"auths":{"reg.example.com":{"password":["p"]}}}`),
			want:   `.dockerconfigjson: entry "reg.example.com": "password" is a JSON array, want a string; the kubelet fails every image pull of the Pod`,
		},
		{
			name:   "user info in keys is redacted",
			secret: auths("s", "https://bob:hunter2@reg.example.com:abc/"),
			want:   `.dockerconfigjson: key "https://REDACTED@reg.example.com:abc/" cannot be parsed as a URL: the kubelet ignores this entry`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			findings := Validate(tt.secret)
			if len(findings) == 0 || findings[0].Message != tt.want {
				t.Errorf("first finding = %+v\nwant message %s", findings, tt.want)
			}
		})
	}
}
