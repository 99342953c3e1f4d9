package credprovider

import (
	"strings"
	"testing"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

func testRunner(t testing.TB) *Runner {
	t.Helper()
	r, err := NewRunner(Options{BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const secretMark = "SECRETMARK"

func TestDecodeResponse(t *testing.T) {
	r := testRunner(t)
	const v1 = `"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse"`
	for _, tc := range []struct {
		name, apiVersion, data, problem string
	}{
		{"v1", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image","cacheDuration":"1h","auth":{"r.io":{"username":"u","password":"p"}}}`, ""},
		{"v1beta1", "credentialprovider.kubelet.k8s.io/v1beta1", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderResponse","cacheKeyType":"Global"}`, ""},
		{"v1alpha1", "credentialprovider.kubelet.k8s.io/v1alpha1", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","kind":"CredentialProviderResponse","cacheKeyType":"Registry"}`, ""},
		{"trailing newline", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image"}` + "\n", ""},
		{"empty", APIVersionV1, "", "wrote nothing to stdout"},
		{"blank", APIVersionV1, " \n\t", "wrote nothing to stdout"},
		{"text", APIVersionV1, "token " + secretMark, "not JSON to stdout (syntax error at byte 2)"},
		{"two documents", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image"}{}`, "not JSON to stdout"},
		{"yaml", APIVersionV1, "apiVersion: credentialprovider.kubelet.k8s.io/v1\nkind: CredentialProviderResponse\n", "not JSON"},
		{"array", APIVersionV1, `["` + secretMark + `"]`, "not an object with string apiVersion and kind"},
		{"kind not a string", APIVersionV1, `{"apiVersion":"x","kind":1}`, "not an object with string apiVersion and kind"},
		{"no apiVersion", APIVersionV1, `{"kind":"CredentialProviderResponse","cacheKeyType":"Image"}`, "without an apiVersion"},
		{"other known version", APIVersionV1, `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderResponse","cacheKeyType":"Image"}`, "answered in credentialprovider.kubelet.k8s.io/v1beta1, want credentialprovider.kubelet.k8s.io/v1 as configured"},
		{"unknown version", APIVersionV1, `{"apiVersion":"` + secretMark + `/v1","kind":"CredentialProviderResponse"}`, "no credential provider version"},
		{"no kind", APIVersionV1, `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Image"}`, "a kind other than CredentialProviderResponse"},
		{"request kind", APIVersionV1, `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"` + secretMark + `"}`, "a kind other than CredentialProviderResponse"},
		{"unknown kind", APIVersionV1, `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"` + secretMark + `"}`, "a kind other than CredentialProviderResponse"},
		{"unknown field", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image","` + secretMark + `":1}`, "unknown or duplicate fields"},
		{"duplicate field", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image","cacheKeyType":"` + secretMark + `"}`, "unknown or duplicate fields"},
		{"unknown auth field", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image","auth":{"r.io":{"password":"` + secretMark + `","token":"x"}}}`, "unknown or duplicate fields"},
		{"password a number", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image","auth":{"r.io":{"username":"` + secretMark + `","password":1}}}`, "does not decode"},
		{"bad duration", APIVersionV1, `{` + v1 + `,"cacheKeyType":"Image","cacheDuration":"` + secretMark + `"}`, "does not decode"},
		{"no cacheKeyType", APIVersionV1, `{` + v1 + `,"auth":{"r.io":{"username":"u","password":"p"}}}`, "without a cacheKeyType"},
		{"lower-case cacheKeyType", APIVersionV1, `{` + v1 + `,"cacheKeyType":"registry"}`, "other than Image, Registry or Global"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, problem := r.decodeResponse(tc.apiVersion, []byte(tc.data))
			if tc.problem == "" {
				if problem != "" || resp == nil {
					t.Fatalf("decode: %q, want a response", problem)
				}
				return
			}
			if !strings.Contains(problem, tc.problem) {
				t.Errorf("decode: %q, want %q", problem, tc.problem)
			}
			if strings.Contains(problem, secretMark) {
				t.Errorf("decode: %q quotes the plugin's output", problem)
			}
		})
	}
}

func FuzzDecodeResponse(f *testing.F) {
	for _, seed := range []string{
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Image","auth":{"SECRETMARK":{"username":"SECRETMARK","password":"SECRETMARK"}}}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","SECRETMARK":1}`,
		`{"apiVersion":"SECRETMARK/v1","kind":"SECRETMARK"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheDuration":"SECRETMARK"}`,
		`SECRETMARK`,
	} {
		f.Add([]byte(seed))
	}
	r := testRunner(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, problem := r.decodeResponse(APIVersionV1, data)
		if (resp == nil) == (problem == "") {
			t.Fatalf("decode: response %v and problem %q", resp != nil, problem)
		}
		if strings.Contains(problem, secretMark) {
			t.Fatalf("decode: %q quotes the plugin's output", problem)
		}
	})
}

func TestBuildDockerConfigJSON(t *testing.T) {
	for _, tc := range []struct {
		name      string
		auth      map[string]AuthConfig
		image     string
		wantUser  string
		wantCodes string
		wantErr   bool
	}{
		{"ecr host", map[string]AuthConfig{"123456789012.dkr.ecr.us-west-2.amazonaws.com": {"AWS", "p"}}, "123456789012.dkr.ecr.us-west-2.amazonaws.com/app", "AWS", "", false},
		{"ecr glob", map[string]AuthConfig{"*.dkr.ecr.*.amazonaws.com": {"AWS", "p"}}, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1", "AWS", "", false},
		{"gcp keys", map[string]AuthConfig{"gcr.io": {"_token", "p"}, "*.gcr.io": {"_token", "p"}, "*.pkg.dev": {"_token", "p"}, "container.cloud.google.com": {"_token", "p"}},
			"europe-west1-docker.pkg.dev/proj/repo/app", "_token", "", false},
		// acr-credential-provider adds an anonymous *.azurecr.* entry: left out with a warning.
		{"acr with its anonymous entry", map[string]AuthConfig{"*.azurecr.*": {}, "team.azurecr.io": {"00000000-0000-0000-0000-000000000000", "p"}},
			"team.azurecr.io/app", "00000000-0000-0000-0000-000000000000", "EmptyEntry", false},
		{"only anonymous", map[string]AuthConfig{"*.azurecr.*": {}}, "", "", "EmptyEntry", true},
		{"password only", map[string]AuthConfig{"r.io": {"", "token"}}, "r.io/app", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, findings, err := buildDockerConfigJSON(tc.auth)
			if got := findingCodes(findings); tc.wantCodes != "" && got != tc.wantCodes {
				t.Errorf("findings %s, want %s", got, tc.wantCodes)
			}
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error, want one")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k := credentials.NewKeyring([]credentials.Secret{{Name: "s", Type: credentials.TypeDockerConfigJSON, Data: map[string][]byte{credentials.KeyDockerConfigJSON: data}}})
			if k.Err() != nil || credentials.HasError(k.Findings()) {
				t.Fatalf("the kubelet would refuse the Secret: %v %v", k.Err(), k.Findings())
			}
			m, err := k.Lookup(tc.image)
			if err != nil || len(m.Credentials) == 0 {
				t.Fatalf("%s matches nothing: %v %v", tc.image, err, m.Miss)
			}
			if c := m.Credentials[0]; c.Username != tc.wantUser || c.Password == "" {
				t.Errorf("first credential %v, want username %q", c, tc.wantUser)
			}
		})
	}
}

func TestCacheDurationDefaults(t *testing.T) {
	// Plugin.Validate refuses negative settings; cacheDuration itself never returns one.
	p := Plugin{Name: "x", APIVersion: APIVersionV1, DefaultCacheDuration: time.Minute}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	p.MinCacheDuration = -time.Second
	if p.Validate() == nil {
		t.Error("negative MinCacheDuration accepted")
	}
}
