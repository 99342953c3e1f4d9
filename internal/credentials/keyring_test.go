package credentials

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secrets []Secret
		image   string
		// normalized is checked when set.
		normalized string
		want       []string
		// miss is the Miss reason expected when want is empty.
		miss string
		// fallback: the credentials come from the Docker Hub fallback.
		fallback bool
	}{
		// Image normalisation and Docker Hub.
		{
			name:       "short Docker Hub name falls back to index.docker.io",
			secrets:    []Secret{auths("hub", "https://index.docker.io/v1/")},
			image:      "nginx",
			normalized: "docker.io/library/nginx",
			want:       []string{"team/hub https://index.docker.io/v1/ u-hub:hunter2-hub"},
			fallback:   true,
		},
		{
			name:     "all spellings of a Docker Hub image fall back",
			secrets:  []Secret{auths("hub", "index.docker.io")},
			image:    "index.docker.io/library/nginx:1.27",
			want:     []string{"team/hub index.docker.io u-hub:hunter2-hub"},
			fallback: true,
		},
		{
			name:       "user repository on Docker Hub",
			secrets:    []Secret{auths("hub", "https://index.docker.io/v2/")},
			image:      "alice/app@sha256:" + strings.Repeat("a", 64),
			normalized: "docker.io/alice/app",
			want:       []string{"team/hub https://index.docker.io/v2/ u-hub:hunter2-hub"},
			fallback:   true,
		},
		{
			name:    "docker.io key matches directly",
			secrets: []Secret{auths("hub", "docker.io")},
			image:   "nginx",
			want:    []string{"team/hub docker.io u-hub:hunter2-hub"},
		},
		{
			name:    "a direct docker.io match hides the index.docker.io fallback",
			secrets: []Secret{auths("index", "https://index.docker.io/v1/"), auths("direct", "docker.io")},
			image:   "nginx",
			want:    []string{"team/direct docker.io u-direct:hunter2-direct"},
		},
		{
			name:    "docker.io path key",
			secrets: []Secret{auths("hub", "docker.io/library")},
			image:   "nginx",
			want:    []string{"team/hub docker.io/library u-hub:hunter2-hub"},
		},
		{
			name:    "docker.io path key does not cover other users",
			secrets: []Secret{auths("hub", "docker.io/library")},
			image:   "alice/app",
			miss:    ReasonPathNotPrefix,
		},
		{
			name:    "registry-1.docker.io never matches Docker Hub images",
			secrets: []Secret{auths("hub", "registry-1.docker.io")},
			image:   "nginx",
			miss:    ReasonDifferentHost,
		},
		{
			name:    "path-scoped index.docker.io never matches",
			secrets: []Secret{auths("hub", "index.docker.io/library")},
			image:   "nginx",
			miss:    ReasonDifferentHost,
		},
		{
			name:     "localhost images fall back to Docker Hub credentials, as in the kubelet",
			secrets:  []Secret{auths("hub", "index.docker.io")},
			image:    "localhost/app",
			want:     []string{"team/hub index.docker.io u-hub:hunter2-hub"},
			fallback: true,
		},
		{
			name:       "so do images on a one-label upper-case host, as in the kubelet",
			secrets:    []Secret{auths("hub", "index.docker.io")},
			image:      "MyReg/app",
			normalized: "MyReg/app",
			want:       []string{"team/hub index.docker.io u-hub:hunter2-hub"},
			fallback:   true,
		},
		{
			name:    "the fallback is only for Docker Hub images",
			secrets: []Secret{auths("hub", "index.docker.io")},
			image:   "quay.io/app",
			miss:    ReasonDifferentHost,
		},

		// Key parsing.
		{
			name:    "scheme and /v1/ dropped",
			secrets: []Secret{auths("r", "http://reg.example.com/v1/")},
			image:   "reg.example.com/app",
			want:    []string{"team/r http://reg.example.com/v1/ u-r:hunter2-r"},
		},
		{
			name:    "/v2/ followed by a path keeps the path",
			secrets: []Secret{auths("r", "https://reg.example.com/v2/team")},
			image:   "reg.example.com/team/app",
			want:    []string{"team/r https://reg.example.com/v2/team u-r:hunter2-r"},
		},
		{
			name:    "/v2 without a trailing slash is a path",
			secrets: []Secret{auths("r", "reg.example.com/v2")},
			image:   "reg.example.com/app",
			miss:    ReasonPathNotPrefix,
		},

		// Ports.
		{
			name:    "same port",
			secrets: []Secret{auths("r", "reg.example.com:5000")},
			image:   "reg.example.com:5000/app:1",
			want:    []string{"team/r reg.example.com:5000 u-r:hunter2-r"},
		},
		{
			name:    "key port, image without port",
			secrets: []Secret{auths("r", "reg.example.com:5000")},
			image:   "reg.example.com/app",
			miss:    ReasonPortDiffers,
		},
		{
			name:    "key without port, image with port",
			secrets: []Secret{auths("r", "reg.example.com")},
			image:   "reg.example.com:5000/app",
			miss:    ReasonPortDiffers,
		},
		{
			name:    "443 is not the same as no port",
			secrets: []Secret{auths("r", "https://reg.example.com:443")},
			image:   "reg.example.com/app",
			miss:    ReasonPortDiffers,
		},

		// IPv6.
		{
			name:    "IPv6 with port",
			secrets: []Secret{auths("r", "[::1]:5000")},
			image:   "[::1]:5000/app",
			want:    []string{"team/r [::1]:5000 u-r:hunter2-r"},
		},
		{
			name:    "IPv6 with a different port",
			secrets: []Secret{auths("r", "[::1]:5000")},
			image:   "[::1]:5001/app",
			miss:    ReasonPortDiffers,
		},
		{
			name:    "IPv6 without port never matches: [::1] is a glob character class",
			secrets: []Secret{auths("r", "[::1]")},
			image:   "[::1]/app",
			miss:    ReasonDifferentHost,
		},

		// Globs.
		{
			name:    "glob matches one label",
			secrets: []Secret{auths("acr", "*.azurecr.io")},
			image:   "a.azurecr.io/app",
			want:    []string{"team/acr *.azurecr.io u-acr:hunter2-acr"},
		},
		{
			name:    "glob does not match two labels",
			secrets: []Secret{auths("acr", "*.azurecr.io")},
			image:   "a.b.azurecr.io/app",
			miss:    ReasonGlobDepthDiffers,
		},
		{
			name:    "glob does not match zero labels",
			secrets: []Secret{auths("acr", "*.azurecr.io")},
			image:   "azurecr.io/app",
			miss:    ReasonGlobDepthDiffers,
		},
		{
			name:    "glob inside a label",
			secrets: []Secret{auths("r", "reg-*.example.com")},
			image:   "reg-eu.example.com/app",
			want:    []string{"team/r reg-*.example.com u-r:hunter2-r"},
		},
		{
			name:    "host names are case-sensitive",
			secrets: []Secret{auths("r", "reg.example.com")},
			image:   "Reg.example.com/app",
			miss:    ReasonDifferentHost,
		},

		// Paths.
		{
			name:    "path is a plain string prefix",
			secrets: []Secret{auths("r", "reg.example.com/team")},
			image:   "reg.example.com/team-b/app",
			want:    []string{"team/r reg.example.com/team u-r:hunter2-r"},
		},
		{
			name:    "trailing slash makes the prefix a folder",
			secrets: []Secret{auths("r", "reg.example.com/team/")},
			image:   "reg.example.com/team-b/app",
			miss:    ReasonPathNotPrefix,
		},
		{
			name:    "path not a prefix",
			secrets: []Secret{auths("r", "reg.example.com/team")},
			image:   "reg.example.com/other/app",
			miss:    ReasonPathNotPrefix,
		},

		// Order.
		{
			name:    "every match, more specific key first",
			secrets: []Secret{auths("host", "quay.io"), auths("path", "quay.io/coreos")},
			image:   "quay.io/coreos/etcd",
			want:    []string{"team/path quay.io/coreos u-path:hunter2-path", "team/host quay.io u-host:hunter2-host"},
		},
		{
			name:    "reverse byte order, not longest first",
			secrets: []Secret{auths("glob", "*.example.com/team"), auths("host", "reg.example.com")},
			image:   "reg.example.com/team/app",
			want:    []string{"team/host reg.example.com u-host:hunter2-host", "team/glob *.example.com/team u-glob:hunter2-glob"},
		},
		{
			name:    "the same key in several secrets, in the Pod's order",
			secrets: []Secret{auths("second", "reg.example.com"), auths("first", "reg.example.com")},
			image:   "reg.example.com/app",
			want:    []string{"team/second reg.example.com u-second:hunter2-second", "team/first reg.example.com u-first:hunter2-first"},
		},
		{
			name:    "keys of one secret that normalise alike, sorted as written",
			secrets: []Secret{auths("r", "reg.example.com", "https://reg.example.com/v1/")},
			image:   "reg.example.com/app",
			want:    []string{"team/r https://reg.example.com/v1/ u-r:hunter2-r", "team/r reg.example.com u-r:hunter2-r"},
		},

		// Entry decoding.
		{
			name:    "password with colons: split on the first",
			secrets: []Secret{configJSON("r", `{"auths":{"reg.example.com":{"auth":"`+b64("user:pa:ss:")+`"}}}`)},
			image:   "reg.example.com/app",
			want:    []string{"team/r reg.example.com user:pa:ss:"},
		},
		{
			name:    "unpadded base64",
			secrets: []Secret{configJSON("r", `{"auths":{"reg.example.com":{"auth":"`+strings.TrimRight(b64("user:pass1"), "=")+`"}}}`)},
			image:   "reg.example.com/app",
			want:    []string{"team/r reg.example.com user:pass1"},
		},
		{
			name:    "auth wins over username and password",
			secrets: []Secret{configJSON("r", `{"auths":{"reg.example.com":{"username":"old","password":"old","auth":"`+b64("new:new")+`"}}}`)},
			image:   "reg.example.com/app",
			want:    []string{"team/r reg.example.com new:new"},
		},
		{
			name:    "username and password without auth",
			secrets: []Secret{configJSON("r", `{"auths":{"reg.example.com":{"username":"u","password":"p"}}}`)},
			image:   "reg.example.com/app",
			want:    []string{"team/r reg.example.com u:p"},
		},
		{
			name:    "field names are case-insensitive, as in encoding/json",
			secrets: []Secret{configJSON("r", `{"AUTHS":{"reg.example.com":{"Username":"u","PASSWORD":"p"}}}`)},
			image:   "reg.example.com/app",
			want:    []string{"team/r reg.example.com u:p"},
		},
		{
			name:    "empty entries are tried, with empty credentials",
			secrets: []Secret{configJSON("r", `{"auths":{"reg.example.com":{}}}`)},
			image:   "reg.example.com/app",
			want:    []string{"team/r reg.example.com :"},
		},
		{
			name:    "legacy .dockercfg",
			secrets: []Secret{dockercfg("old", `{"reg.example.com":{"auth":"`+b64("u:p")+`","email":"e@example.com"}}`)},
			image:   "reg.example.com/app",
			want:    []string{"team/old reg.example.com u:p"},
		},

		// Secrets the kubelet does not read.
		{
			name:    "wrong type contributes nothing",
			secrets: []Secret{{Name: "opaque", Type: TypeOpaque, Data: map[string][]byte{KeyDockerConfigJSON: []byte(`{"auths":{"reg.example.com":{"auth":"` + b64("u:p") + `"}}}`)}}},
			image:   "reg.example.com/app",
			miss:    ReasonNoKeys,
		},
		{
			name:    "legacy map under .dockerconfigjson yields nothing",
			secrets: []Secret{configJSON("r", `{"reg.example.com":{"auth":"`+b64("u:p")+`"}}`)},
			image:   "reg.example.com/app",
			miss:    ReasonNoKeys,
		},
		{
			name:    "an unparsable secret next to a good one fails everything",
			secrets: []Secret{auths("good", "reg.example.com"), configJSON("bad", `{"auths":{"other.example.com":{"auth":"%%%"}}}`)},
			image:   "reg.example.com/app",
			miss:    ReasonKeyringFailed,
		},
		{
			name:    "no secrets",
			secrets: nil,
			image:   "reg.example.com/app",
			miss:    ReasonNoKeys,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := NewKeyring(tt.secrets).Lookup(tt.image)
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tt.image, err)
			}
			if tt.normalized != "" && m.Normalized != tt.normalized {
				t.Errorf("Normalized = %q, want %q", m.Normalized, tt.normalized)
			}
			if diff := cmp.Diff(tt.want, describe(m.Credentials), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("credentials (-want +got):\n%s", diff)
			}
			if m.Fallback != tt.fallback {
				t.Errorf("Fallback = %v, want %v", m.Fallback, tt.fallback)
			}
			switch {
			case len(tt.want) > 0 && m.Miss != nil:
				t.Errorf("Miss = %+v on a match", *m.Miss)
			case len(tt.want) == 0 && m.Miss == nil:
				t.Errorf("no Miss, want reason %s", tt.miss)
			case len(tt.want) == 0 && m.Miss.Reason != tt.miss:
				t.Errorf("Miss.Reason = %s (%s), want %s", m.Miss.Reason, m.Miss.Message, tt.miss)
			}
		})
	}
}

func TestLookupRejectsInvalidImages(t *testing.T) {
	t.Parallel()
	k := NewKeyring([]Secret{auths("r", "reg.example.com")})
	for _, image := range []string{"", "Nginx", "reg.example.com/App", "nginx:", "a b"} {
		if m, err := k.Lookup(image); err == nil {
			t.Errorf("Lookup(%q) = %+v, want an error", image, m)
		}
	}
}

func TestMissExplainsTheNearestKey(t *testing.T) {
	t.Parallel()
	k := NewKeyring([]Secret{
		auths("far", "gcr.io"),
		auths("glob", "*.eu.example.com"),
		auths("port", "reg.example.com:5000"),
	})
	m, err := k.Lookup("reg.example.com/app")
	if err != nil {
		t.Fatal(err)
	}
	want := &Miss{
		Secret:   "team/port",
		Registry: "reg.example.com:5000",
		Reason:   ReasonPortDiffers,
		Message:  `key "reg.example.com:5000" has port 5000 and the image has no port: the kubelet compares ports exactly, and no port is not the same as :443`,
	}
	if diff := cmp.Diff(want, m.Miss); diff != "" {
		t.Errorf("Miss (-want +got):\n%s", diff)
	}
}

func TestMissPrefersTheHostThatDiffersInCase(t *testing.T) {
	t.Parallel()
	k := NewKeyring([]Secret{auths("quay", "quay.io/coreos"), auths("ghcr", "ghcr.io/acme")})
	m, err := k.Lookup("Ghcr.io/acme/app")
	if err != nil {
		t.Fatal(err)
	}
	if m.Miss == nil || m.Miss.Registry != "ghcr.io/acme" || !strings.HasSuffix(m.Miss.Message, "the kubelet compares host names case-sensitively") {
		t.Errorf("Miss = %+v, want the ghcr.io/acme key, explained by case", m.Miss)
	}
}

func TestKeyringErrNamesTheFirstBadSecret(t *testing.T) {
	t.Parallel()
	k := NewKeyring([]Secret{
		auths("good", "reg.example.com"),
		configJSON("nocolon", `{"auths":{"a.example.com":{"auth":"`+b64("justtoken")+`"}}}`),
		configJSON("notjson", `{"auths":`),
	})
	err := k.Err()
	if err == nil {
		t.Fatal("Err() = nil, want the first undecodable secret")
	}
	for _, want := range []string{"team/nocolon", `"a.example.com"`, "no ':'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %q, want it to mention %q", err, want)
		}
	}
	if got := codes(k.Findings()); !cmp.Equal(got, []string{"error:AuthNoColon", "error:NotJSON"}) {
		t.Errorf("Findings() codes = %v, want the problems of both bad secrets", got)
	}
}
