package credentials

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestBuildMatchesKubectl compares with what `kubectl create secret
// docker-registry x --dry-run=client` v1.37.2 stored for the same flags.
func TestBuildMatchesKubectl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		server, username, password, email string
		kubectl                           string
	}{
		{
			server: DefaultServer, username: "alice", password: "s3cr:et<&>", email: "a@example.com",
			kubectl: `{"auths":{"https://index.docker.io/v1/":{"username":"alice","password":"s3cr:et\u003c\u0026\u003e","email":"a@example.com","auth":"YWxpY2U6czNjcjpldDwmPg=="}}}`,
		},
		{
			server: "reg.example.com:5000", username: "bob", password: "pässwörd",
			kubectl: `{"auths":{"reg.example.com:5000":{"username":"bob","password":"pässwörd","auth":"Ym9iOnDDpHNzd8O2cmQ="}}}`,
		},
		{
			server: "ghcr.io", username: "u", password: `p"q\r`,
			kubectl: `{"auths":{"ghcr.io":{"username":"u","password":"p\"q\\r","auth":"dTpwInFccg=="}}}`,
		},
	}
	for _, tt := range tests {
		got, err := Build(tt.server, tt.username, tt.password, tt.email)
		if err != nil {
			t.Fatalf("Build(%q): %v", tt.server, err)
		}
		if string(got) != tt.kubectl {
			t.Errorf("Build(%q) =\n%s\nkubectl stores\n%s", tt.server, got, tt.kubectl)
		}
		if f := Validate(Secret{Name: "built", Type: TypeDockerConfigJSON, Data: map[string][]byte{KeyDockerConfigJSON: got}}); len(f) > 0 {
			t.Errorf("Build(%q) gives findings %v", tt.server, f)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, server, username, password, want string }{
		{"no server", "", "u", "hunter2-pw", "server is empty"},
		{"no username", "reg.example.com", "", "hunter2-pw", "username is empty"},
		{"no password", "reg.example.com", "u", "", "password is empty"},
		{"colon in username", "reg.example.com", "u:x", "hunter2-pw", "contains ':'"},
		{"password not UTF-8", "reg.example.com", "u", "hunter2-pw\xff", "password is not valid UTF-8"},
	}
	for _, tt := range tests {
		_, err := Build(tt.server, tt.username, tt.password, "")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Build error = %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && tt.password != "" && strings.Contains(err.Error(), tt.password) {
			t.Errorf("%s: error %q quotes the password", tt.name, err)
		}
	}
}

func TestBuildFromDockerConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		config   string
		want     string // the built data; "" when it fails
		findings []string
	}{
		{
			name:   "plain entries, normalised to kubectl's form",
			config: `{"auths":{"reg.example.com":{"auth":"` + strings.TrimRight(b64("u:p"), "=") + `"},"ghcr.io":{"username":"g","password":"h","email":"g@example.com"}}}`,
			want:   `{"auths":{"ghcr.io":{"username":"g","password":"h","email":"g@example.com","auth":"Zzpo"},"reg.example.com":{"username":"u","password":"p","auth":"dTpw"}}}`,
		},
		{
			name:     "Docker Desktop: credsStore and an identity token",
			config:   `{"auths":{"https://index.docker.io/v1/":{},"reg.example.com":{"auth":"` + b64("u:p") + `"},"acr.example.com":{"identitytoken":"tok"}},"credsStore":"desktop","currentContext":"default"}`,
			want:     `{"auths":{"reg.example.com":{"username":"u","password":"p","auth":"dTpw"}}}`,
			findings: []string{"warning:IgnoredToken", "warning:HelperOnly", "warning:EmptyEntry", "warning:HelperOnly"},
		},
		{
			name:     "credHelpers without an auths entry",
			config:   `{"auths":{"reg.example.com":{"auth":"` + b64("u:p") + `"}},"credHelpers":{"123.dkr.ecr.us-east-1.amazonaws.com":"ecr-login"}}`,
			want:     `{"auths":{"reg.example.com":{"username":"u","password":"p","auth":"dTpw"}}}`,
			findings: []string{"warning:HelperOnly"},
		},
		{
			name:     "an entry the kubelet cannot decode is left out",
			config:   `{"auths":{"bad.example.com":{"auth":"!!"},"reg.example.com":{"auth":"` + b64("u:p") + `"}}}`,
			want:     `{"auths":{"reg.example.com":{"username":"u","password":"p","auth":"dTpw"}}}`,
			findings: []string{"error:BadBase64"},
		},
		{
			name:     "keys that never match are left out",
			config:   `{"auths":{"index.docker.io/library":{"auth":"` + b64("u:p") + `"},"reg.example.com":{"auth":"` + b64("u:p") + `"}}}`,
			want:     `{"auths":{"reg.example.com":{"username":"u","password":"p","auth":"dTpw"}}}`,
			findings: []string{"warning:UnmatchableKey"},
		},
		{
			name:     "nothing usable",
			config:   `{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"osxkeychain"}`,
			findings: []string{"warning:EmptyEntry", "warning:HelperOnly"},
		},
		{name: "not JSON", config: `{"auths":`},
		{name: "not an object", config: `[]`},
		{name: "auths not an object", config: `{"auths":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, findings, err := BuildFromDockerConfig([]byte(tt.config))
			if (err != nil) != (tt.want == "") {
				t.Fatalf("err = %v, want data %s", err, tt.want)
			}
			if string(data) != tt.want {
				t.Errorf("data =\n%s\nwant\n%s", data, tt.want)
			}
			if diff := cmp.Diff(tt.findings, codes(findings), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("findings (-want +got):\n%s\n%v", diff, findings)
			}
			if tt.want == "" {
				return
			}
			if f := Validate(Secret{Name: "built", Type: TypeDockerConfigJSON, Data: map[string][]byte{KeyDockerConfigJSON: data}}); len(f) > 0 {
				t.Errorf("the built data has findings %v", f)
			}
		})
	}
}
