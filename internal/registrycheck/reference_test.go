package registrycheck

import (
	"net/http"
	"strings"
	"testing"

	"github.com/distribution/reference"
	. "github.com/onsi/gomega"
)

func TestParseImage(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		image      string
		insecure   []string
		normalized string
		registry   string // as go-containerregistry talks to it
		repository string
		what       string
		scheme     string
	}{
		{image: "nginx", normalized: "docker.io/library/nginx:latest", registry: "index.docker.io", repository: "library/nginx", what: "tag latest", scheme: "https"},
		{image: "nginx:1.27", normalized: "docker.io/library/nginx:1.27", registry: "index.docker.io", repository: "library/nginx", what: "tag 1.27", scheme: "https"},
		{image: "docker.io/bitnami/redis", normalized: "docker.io/bitnami/redis:latest", registry: "index.docker.io", repository: "bitnami/redis", what: "tag latest", scheme: "https"},
		{image: "index.docker.io/library/busybox:1", normalized: "docker.io/library/busybox:1", registry: "index.docker.io", repository: "library/busybox", what: "tag 1", scheme: "https"},
		{image: "registry.example.com:5000/team/app:v1", normalized: "registry.example.com:5000/team/app:v1", registry: "registry.example.com:5000", repository: "team/app", what: "tag v1", scheme: "https"},
		{image: "registry.example.com:5000/team/app:v1", insecure: []string{"http://registry.example.com:5000/"}, normalized: "registry.example.com:5000/team/app:v1", registry: "registry.example.com:5000", repository: "team/app", what: "tag v1", scheme: "http"},
		{image: "nginx", insecure: []string{"docker.io"}, normalized: "docker.io/library/nginx:latest", registry: "index.docker.io", repository: "library/nginx", what: "tag latest", scheme: "http"},
		{image: "ghcr.io/org/app@" + digest, normalized: "ghcr.io/org/app@" + digest, registry: "ghcr.io", repository: "org/app", what: "manifest " + digest, scheme: "https"},
		// With a tag and a digest the runtime pulls the digest.
		{image: "ghcr.io/org/app:v1@" + digest, normalized: "ghcr.io/org/app:v1@" + digest, registry: "ghcr.io", repository: "org/app", what: "manifest " + digest, scheme: "https"},
		{image: "localhost:5001/app", normalized: "localhost:5001/app:latest", registry: "localhost:5001", repository: "app", what: "tag latest", scheme: "http"},
	}
	for _, tc := range cases {
		t.Run(tc.image, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			im, err := parseImage(tc.image, newHostSet(tc.insecure).has)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(im.normalized).To(Equal(tc.normalized))
			g.Expect(im.ref.Context().RegistryStr()).To(Equal(tc.registry))
			g.Expect(im.repository).To(Equal(tc.repository))
			g.Expect(im.ref.Context().RepositoryStr()).To(Equal(tc.repository))
			g.Expect(im.what()).To(Equal(tc.what))
			if tc.scheme == "http" {
				// Only an insecure registry (or go-containerregistry's own
				// loopback guess, which schemeGuard overrules) may use HTTP.
				g.Expect(im.ref.Context().Scheme()).To(Equal("http"))
			} else {
				g.Expect(im.ref.Context().Scheme()).To(Equal("https"))
			}
		})
	}
}

func TestParseImageRejects(t *testing.T) {
	t.Parallel()
	for _, image := range []string{"", "Nginx", "registry.example.com/Team/app", "app:", "app@sha256:short", "a b"} {
		_, err := parseImage(image, newHostSet(nil).has)
		if err == nil {
			t.Errorf("parseImage(%q) accepted an invalid reference", image)
		}
	}
}

// FuzzParseImage checks that parseImage never panics and agrees with the
// kubelet's parser (reference.ParseNormalizedNamed) on what is valid.
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1", "a.b:5000/c/d:e", "x@sha256:" + strings.Repeat("a", 64), "UPPER", "::", "docker.io/library/nginx:latest"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		im, err := parseImage(s, newHostSet(nil).has)
		named, kerr := reference.ParseNormalizedNamed(s)
		if kerr != nil {
			if err == nil {
				t.Fatalf("parseImage(%q) accepted what the kubelet rejects: %v", s, kerr)
			}
			return
		}
		if err != nil {
			// go-containerregistry is stricter on a few exotic forms
			// (e.g. digest algorithms); a rejection is reported, not
			// a crash.
			return
		}
		if !strings.HasPrefix(im.normalized, named.Name()) {
			t.Fatalf("parseImage(%q) = %q, want a reference to %q", s, im.normalized, named.Name())
		}
	})
}

func TestHostSet(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := newHostSet([]string{"https://Registry.Example.com:5000/", " docker.io ", ""})
	g.Expect(s.has("registry.example.com:5000")).To(BeTrue())
	g.Expect(s.has("registry.example.com")).To(BeFalse(), "the port is part of the name")
	g.Expect(s.has("index.docker.io")).To(BeTrue())
	g.Expect(s.has("registry-1.docker.io")).To(BeTrue())
	g.Expect(s.has("")).To(BeFalse())
}

func TestSchemeGuardRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	calls := 0
	next := roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls++
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})
	g := &schemeGuard{secure: next, insecure: next, insecureHosts: newHostSet([]string{"insecure.example.com"})}
	cases := []struct {
		url     string
		refused bool
	}{
		{"http://registry.example.com/v2/", true},
		{"http://127.0.0.1:5000/v2/", true},
		{"https://registry.example.com/v2/", false},
		{"http://insecure.example.com/v2/", false},
		{"https://insecure.example.com/v2/", false},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := calls
		resp, err := g.RoundTrip(req)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if tc.refused != (err != nil) || tc.refused == (calls > before) {
			t.Errorf("%s: refused=%v (err %v, sent %v), want refused=%v", tc.url, err != nil, err, calls > before, tc.refused)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	creds := []Credential{{Label: "l", Username: "user", Password: "p4ss:word"}, {Label: "anonymous"}}
	cases := []struct{ in, want string }{
		{"nothing secret", "nothing secret"},
		{"password p4ss:word here", "password [redacted] here"},
		{"Authorization: Basic dXNlcjpwNHNzOndvcmQ=", "Authorization: Basic [redacted]"},
		{"raw dXNlcjpwNHNzOndvcmQ end", "raw [redacted] end"},
	}
	for _, tc := range cases {
		if got := scrub(tc.in, creds); got != tc.want {
			t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
