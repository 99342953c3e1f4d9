package credentials

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

// TestNothingLeaks checks the package's promise for every validation case:
// no finding, error, Miss, formatted or encoded Credential, Match, Keyring
// or Secret holds a password, a token, an auth string or a password from a
// key's user info, whatever the fmt verb, in JSON or in slog output.
func TestNothingLeaks(t *testing.T) {
	t.Parallel()
	images := []string{"reg.example.com/app", "nginx", "a.example.com/x", "b.example.com/x", "a.azurecr.io/app", "[::1]:5000/app", "localhost/app", "quay.io/app"}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"}
	for _, tt := range validationCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forbidden := secretValues(t, tt.secret)
			var outputs []string
			show := func(values ...any) {
				for _, v := range values {
					for _, verb := range verbs {
						outputs = append(outputs, fmt.Sprintf(verb, v))
					}
					b, err := json.Marshal(v)
					if err != nil {
						t.Fatalf("json.Marshal(%T): %v", v, err)
					}
					outputs = append(outputs, string(b))
					var text, js bytes.Buffer
					slog.New(slog.NewTextHandler(&text, nil)).Info("value", "v", v)
					slog.New(slog.NewJSONHandler(&js, nil)).Info("value", "v", v)
					outputs = append(outputs, text.String(), js.String())
				}
			}

			show(tt.secret, Validate(tt.secret))
			// A second, good Secret gives credentials to format even when
			// the case's Secret gives none.
			k := NewKeyring([]Secret{tt.secret, auths("other", "reg.example.com", "b.example.com")})
			show(k, k.Findings())
			if err := k.Err(); err != nil {
				show(err, err.Error())
			}
			for _, image := range images {
				m, err := k.Lookup(image)
				if err != nil {
					t.Fatalf("Lookup(%q): %v", image, err)
				}
				show(m, m.Credentials)
				for _, c := range m.Credentials {
					show(c, &c)
				}
				if m.Miss != nil {
					show(m.Miss)
				}
			}
			for _, data := range tt.secret.Data {
				_, findings, err := BuildFromDockerConfig(data)
				show(findings)
				if err != nil {
					show(err, err.Error())
				}
			}

			for _, out := range outputs {
				for _, secret := range forbidden {
					if strings.Contains(out, secret) {
						t.Fatalf("output holds secret value %q:\n%s", secret, out)
					}
				}
			}
		})
	}
}

// secretFields finds the values of JSON fields that hold secrets.
var secretFields = regexp.MustCompile(`(?i)"(password|auth|identitytoken|registrytoken)"\s*:\s*("(?:[^"\\]|\\.)*")`)

// userInfo finds the user info of a registry key.
var userInfo = regexp.MustCompile(`://[^/@"]*:([^/@"]*)@`)

// secretValues returns the secret values in s's data: the values of the
// password, auth and token fields, the passwords decoded from auth, and
// passwords in keys' user info. It fails the test when one is too short
// to search for, or a password does not hold secretMarker: test data must
// use distinctive secrets.
func secretValues(t *testing.T, s Secret) []string {
	t.Helper()
	values := []string{secretMarker}
	for _, data := range s.Data {
		for _, m := range secretFields.FindAllStringSubmatch(string(data), -1) {
			var v string
			if err := json.Unmarshal([]byte(m[2]), &v); err != nil {
				t.Fatalf("test data: field %s: %v", m[1], err)
			}
			values = append(values, v)
			if strings.EqualFold(m[1], "auth") {
				if _, pass, err := decodeAuth(v); err == nil {
					values = append(values, pass)
				}
				continue
			}
			if !strings.Contains(v, secretMarker) {
				t.Fatalf("test data: field %s: use a value with %q in it", m[1], secretMarker)
			}
		}
		for _, m := range userInfo.FindAllStringSubmatch(string(data), -1) {
			values = append(values, m[1])
		}
		// The data as a whole, when it holds a secret: a bare-word password
		// is found by nothing else.
		// Base64 too, as JSON encodes []byte.
		if strings.Contains(string(data), secretMarker) {
			values = append(values, string(data), b64(string(data)))
		}
	}
	for _, v := range values {
		if len(v) < len(secretMarker) {
			t.Fatalf("test data: secret value %q is too short to search outputs for", v)
		}
	}
	return values
}
