package registrycheck_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
)

func TestMain(m *testing.M) {
	registrytest.QuietLogs()
	os.Exit(m.Run())
}

// Passwords are distinctive so that a leak cannot hide.
const (
	alicePassword = "alice-Pa55word-7f3c9e"
	bobPassword   = "bob-Pa55word-0d41aa"
	wrongPassword = "wrong-Pa55word-b6e2d8"
)

var (
	alice = registrytest.User{Name: "alice", Password: alicePassword, Repositories: []string{"team-a/*"}}
	bob   = registrytest.User{Name: "bob", Password: bobPassword, Repositories: []string{"team-b/*"}}
)

func aliceCred() registrycheck.Credential {
	return registrycheck.Credential{Label: "team-a/regcred", Username: "alice", Password: alicePassword}
}

func bobCred() registrycheck.Credential {
	return registrycheck.Credential{Label: "team-b/regcred", Username: "bob", Password: bobPassword}
}

func wrongCred() registrycheck.Credential {
	return registrycheck.Credential{Label: "team-a/stale", Username: "alice", Password: wrongPassword}
}

// fixture is a registry with team-a/app:v1 pushed.
type fixture struct {
	reg    *registrytest.Registry
	digest string
}

func startFixture(t *testing.T, opts registrytest.Options) fixture {
	t.Helper()
	if opts.Users == nil {
		opts.Users = []registrytest.User{alice, bob}
	}
	reg := registrytest.Start(t, opts)
	d := reg.Push(t, "team-a/app", "v1")
	return fixture{reg: reg, digest: d.String()}
}

// want is what a case expects of the Result.
type want struct {
	status     registrycheck.Status
	credential string
	digest     bool // Digest is the pushed image's
	message    []string
	attempts   []registrycheck.Status
}

func TestCheck(t *testing.T) {
	t.Parallel()

	type setup struct {
		image string
		creds []registrycheck.Credential
		opts  registrycheck.Options
	}
	cases := []struct {
		name string
		reg  registrytest.Options
		// setup builds the request from the running fixture.
		setup func(f fixture) setup
		want  want
	}{
		{
			name: "htpasswd over TLS, right credentials",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true,
				message: []string{"resolves to sha256:", "with the credentials of team-a/regcred"}, attempts: []registrycheck.Status{"ok"}},
		},
		{
			name: "htpasswd over TLS, wrong password",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{wrongCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusUnauthorized,
				message: []string{"rejected the credentials of team-a/stale (401 Unauthorized)"}, attempts: []registrycheck.Status{"unauthorized"}},
		},
		{
			name: "htpasswd over TLS, no credentials",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", nil, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusUnauthorized,
				message: []string{"requires credentials to pull repository team-a/app and none were given"}, attempts: []registrycheck.Status{"unauthorized"}},
		},
		{
			name: "htpasswd over plain HTTP, listed as insecure",
			reg:  registrytest.Options{Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{InsecureRegistries: []string{f.reg.Host}}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true, attempts: []registrycheck.Status{"ok"}},
		},
		{
			name: "htpasswd over plain HTTP, not listed as insecure",
			reg:  registrytest.Options{Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{}}
			},
			want: want{status: registrycheck.StatusTLSError,
				message: []string{"answered in plain HTTP, not HTTPS", "insecure registry"}, attempts: []registrycheck.Status{"tls-error"}},
		},
		{
			name: "bearer token, right credentials",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true, attempts: []registrycheck.Status{"ok"}},
		},
		{
			name: "bearer token, wrong password",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{wrongCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusUnauthorized,
				message: []string{"the token service of", "rejected the credentials of team-a/stale (401 Unauthorized)"}, attempts: []registrycheck.Status{"unauthorized"}},
		},
		{
			name: "bearer token, user without access to the repository",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{bobCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusForbidden,
				message:  []string{"accepted the credentials of team-b/regcred but their token grants no pull access to repository team-a/app", "insufficient_scope"},
				attempts: []registrycheck.Status{"forbidden"}},
		},
		{
			name: "bearer token, no credentials, private repository",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", nil, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusUnauthorized,
				message: []string{"requires credentials to pull repository team-a/app"}, attempts: []registrycheck.Status{"unauthorized"}},
		},
		{
			name: "bearer token, no credentials, public repository",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken, PublicRepositories: []string{"team-a/*"}},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", nil, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusOK, digest: true, message: []string{"without credentials"}, attempts: []registrycheck.Status{"ok"}},
		},
		{
			name: "missing tag",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v2", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusNotFound,
				message: []string{"tag v2 is not in repository team-a/app", "though the repository exists (MANIFEST_UNKNOWN)"}, attempts: []registrycheck.Status{"not-found"}},
		},
		{
			name: "missing repository",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/ghost:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusNotFound,
				message: []string{"repository team-a/ghost does not exist", "(NAME_UNKNOWN)"}, attempts: []registrycheck.Status{"not-found"}},
		},
		{
			name: "missing tag behind bearer token",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v2", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusNotFound, message: []string{"tag v2 is not in repository team-a/app"}, attempts: []registrycheck.Status{"not-found"}},
		},
		{
			name: "missing digest",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				missing := "sha256:" + strings.Repeat("ab", 32)
				return setup{f.reg.Host + "/team-a/app@" + missing, []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusNotFound, message: []string{"manifest sha256:abab", "is not in repository team-a/app"}, attempts: []registrycheck.Status{"not-found"}},
		},
		{
			name: "pinned by digest",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:ignored@" + f.digest, []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true, attempts: []registrycheck.Status{"ok"}},
		},
		{
			name: "registry down",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				f.reg.Close()
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred(), bobCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusUnreachable,
				message: []string{"refused the connection", "(1 more credential not tried)"}, attempts: []registrycheck.Status{"unreachable"}},
		},
		{
			name: "TLS with an unknown CA",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{}}
			},
			want: want{status: registrycheck.StatusTLSError,
				message: []string{"TLS certificate of", "signed by an unknown authority"}, attempts: []registrycheck.Status{"tls-error"}},
		},
		{
			name: "TLS certificate for another name",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd, CertHosts: []string{"registry.invalid"}},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusTLSError,
				message: []string{"is not valid for that name", "registry.invalid"}, attempts: []registrycheck.Status{"tls-error"}},
		},
		{
			name: "TLS with an unknown CA, listed as insecure",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{InsecureRegistries: []string{f.reg.Host}}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true, attempts: []registrycheck.Status{"ok"}},
		},
		{
			name: "slow registry hits the timeout",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd, Delay: 5 * time.Second},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred(), bobCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs, Timeout: 300 * time.Millisecond}}
			},
			want: want{status: registrycheck.StatusTimeout,
				message: []string{"did not answer in time", "300ms per image"}, attempts: []registrycheck.Status{"timeout"}},
		},
		{
			name: "second of two credentials works (kubelet order)",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{wrongCred(), aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true,
				message: []string{"(after 1 failed credential)"}, attempts: []registrycheck.Status{"unauthorized", "ok"}},
		},
		{
			name: "second of two credentials works behind bearer token",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{bobCred(), aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true, attempts: []registrycheck.Status{"forbidden", "ok"}},
		},
		{
			name: "no credential works: the most telling failure wins",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthToken},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{wrongCred(), bobCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusForbidden, message: []string{"team-b/regcred", "(2 credentials tried)"}, attempts: []registrycheck.Status{"unauthorized", "forbidden"}},
		},
		{
			name: "registry without HEAD: GET fallback",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd, NoHeadManifests: true},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusOK, credential: "team-a/regcred", digest: true, attempts: []registrycheck.Status{"ok"}},
		},
		{
			name: "credential without label",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/team-a/app:v1", []registrycheck.Credential{{Username: "alice", Password: wrongPassword}}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusUnauthorized, message: []string{"rejected the credentials of credential #1"}, attempts: []registrycheck.Status{"unauthorized"}},
		},
		{
			name: "invalid image reference",
			reg:  registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd},
			setup: func(f fixture) setup {
				return setup{f.reg.Host + "/Team-A/App:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs}}
			},
			want: want{status: registrycheck.StatusInvalidImage, message: []string{"not a valid image reference", "InvalidImageName"}},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			f := startFixture(t, tc.reg)
			s := tc.setup(f)

			start := time.Now()
			res := registrycheck.Check(context.Background(), s.image, s.creds, s.opts)
			elapsed := time.Since(start)
			t.Logf("%s: %s (%s)", res.Status, res.Message, elapsed)

			g.Expect(res.Image).To(Equal(s.image))
			g.Expect(res.Status).To(Equal(tc.want.status), res.Message)
			g.Expect(res.Credential).To(Equal(tc.want.credential))
			if tc.want.digest {
				g.Expect(res.Digest).To(Equal(f.digest))
			} else {
				g.Expect(res.Digest).To(BeEmpty())
			}
			for _, m := range tc.want.message {
				g.Expect(res.Message).To(ContainSubstring(m))
			}
			g.Expect(strings.Count(res.Message, "\n")).To(BeZero(), "one sentence, one line")
			var got []registrycheck.Status
			for _, a := range res.Attempts {
				got = append(got, a.Status)
				g.Expect(a.Message).NotTo(BeEmpty())
			}
			g.Expect(got).To(Equal(tc.want.attempts))
			if s.opts.Timeout > 0 {
				g.Expect(elapsed).To(BeNumerically("<", s.opts.Timeout+2*time.Second), "the timeout bounds the whole check")
			}
			expectNoSecret(t, res, s.creds)
		})
	}
}

// expectNoSecret fails if a password, or a basic auth header made of it,
// appears anywhere in res, however it is printed.
func expectNoSecret(t *testing.T, res registrycheck.Result, creds []registrycheck.Credential) {
	t.Helper()
	printed := fmt.Sprintf("%v\n%+v\n%#v\n%v\n%+v\n%#v", res, res, res, creds, creds, creds)
	for _, c := range append(creds, aliceCred(), bobCred(), wrongCred()) {
		for _, secret := range []string{
			c.Password,
			base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password)),
		} {
			if strings.Contains(printed, secret) {
				t.Errorf("secret of %s leaked into the result:\n%s", c.Label, printed)
			}
		}
	}
}

func TestCheckNeverDownloadsLayers(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	for _, auth := range []registrytest.Auth{registrytest.AuthHtpasswd, registrytest.AuthToken} {
		f := startFixture(t, registrytest.Options{TLS: true, Auth: auth, NoHeadManifests: auth == registrytest.AuthToken})
		res := registrycheck.Check(context.Background(), f.reg.Host+"/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs})
		g.Expect(res.Status).To(Equal(registrycheck.StatusOK), res.Message)

		var manifests []string
		for _, r := range f.reg.Requests() {
			g.Expect(r.Path).NotTo(ContainSubstring("/blobs/"), "no blob may be requested")
			if strings.Contains(r.Path, "/manifests/") {
				manifests = append(manifests, r.Method)
			}
		}
		if auth == registrytest.AuthToken {
			// HEAD refused, so one GET of the manifest (and nothing else).
			g.Expect(manifests).To(HaveExactElements("HEAD", "GET"))
			continue
		}
		g.Expect(manifests).To(HaveExactElements("HEAD"))
	}
}

func TestCheckHonoursContextDeadline(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := startFixture(t, registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd, Delay: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	start := time.Now()
	res := registrycheck.Check(ctx, f.reg.Host+"/team-a/app:v1", []registrycheck.Credential{aliceCred()}, registrycheck.Options{RootCAs: f.reg.RootCAs})
	g.Expect(res.Status).To(Equal(registrycheck.StatusTimeout), res.Message)
	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
}

func TestCheckMany(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	f := startFixture(t, registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd})
	f.reg.Push(t, "team-a/other", "v1")
	f.reg.ResetRequests()

	creds := []registrycheck.Credential{aliceCred()}
	reqs := []registrycheck.Request{
		{Image: f.reg.Host + "/team-a/app:v1", Credentials: creds},
		{Image: f.reg.Host + "/team-a/app:missing", Credentials: creds},
		{Image: f.reg.Host + "/team-a/other:v1", Credentials: []registrycheck.Credential{wrongCred()}},
		{Image: f.reg.Host + "/team-a/app:v1", Credentials: creds}, // same as the first
		{Image: "Not A Reference"},
		{Image: f.reg.Host + "/team-a/other:v1", Credentials: creds},
	}
	results := registrycheck.CheckMany(context.Background(), reqs, registrycheck.Options{RootCAs: f.reg.RootCAs, Concurrency: 3})

	g.Expect(results).To(HaveLen(len(reqs)))
	var statuses []registrycheck.Status
	for i, r := range results {
		g.Expect(r.Image).To(Equal(reqs[i].Image), "results in input order")
		statuses = append(statuses, r.Status)
		expectNoSecret(t, r, reqs[i].Credentials)
	}
	g.Expect(statuses).To(HaveExactElements(
		registrycheck.StatusOK, registrycheck.StatusNotFound, registrycheck.StatusUnauthorized,
		registrycheck.StatusOK, registrycheck.StatusInvalidImage, registrycheck.StatusOK,
	))
	g.Expect(results[3]).To(Equal(results[0]), "a duplicate request gets the same result")

	heads := 0
	for _, r := range f.reg.Requests() {
		if r.Method == "HEAD" && strings.HasSuffix(r.Path, "/team-a/app/manifests/v1") {
			heads++
		}
	}
	g.Expect(heads).To(Equal(1), "the duplicate request is checked once")
}

func TestCheckManyEmpty(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	g.Expect(registrycheck.CheckMany(context.Background(), nil, registrycheck.Options{})).To(BeEmpty())
}

func TestCredentialPrintsNoPassword(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	c := aliceCred()
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		g.Expect(fmt.Sprintf(format, c)).NotTo(ContainSubstring(alicePassword), format)
		g.Expect(fmt.Sprintf(format, []registrycheck.Credential{c})).NotTo(ContainSubstring(alicePassword), format)
		g.Expect(fmt.Sprintf(format, registrycheck.Request{Image: "x", Credentials: []registrycheck.Credential{c}})).NotTo(ContainSubstring(alicePassword), format)
	}
}

// leakyTransport plays a broken proxy that quotes the request's
// Authorization header, decoded, in its errors: the result must still not
// show the password.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v2/" {
		return &http.Response{
			StatusCode: http.StatusUnauthorized,
			Header:     http.Header{"Www-Authenticate": []string{`Basic realm="leaky"`}},
			Body:       http.NoBody,
			Request:    req,
		}, nil
	}
	user, password, _ := req.BasicAuth()
	return nil, fmt.Errorf("proxy failure for %s (%s:%s)", req.Header.Get("Authorization"), user, password)
}

func TestCheckScrubsSecretsFromErrors(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	creds := []registrycheck.Credential{wrongCred(), aliceCred()}
	res := registrycheck.Check(context.Background(), "registry.example.com/team-a/app:v1", creds, registrycheck.Options{Transport: leakyTransport{}})

	g.Expect(res.Status).To(Equal(registrycheck.StatusError))
	g.Expect(res.Attempts).To(HaveLen(2))
	g.Expect(res.Message).To(ContainSubstring("proxy failure for Basic [redacted]"), "the error text is kept, the secret is not")
	expectNoSecret(t, res, creds)
}

// answer is a canned HTTP answer of fakeRegistry.
type answer struct {
	status int
	header http.Header
	body   string
}

// fakeRegistry answers by "METHOD path" (or "* path"), 404 otherwise: for
// answers distribution never gives (403 DENIED, 429, 5xx, a token service
// that says 403).
type fakeRegistry map[string]answer

func (f fakeRegistry) RoundTrip(req *http.Request) (*http.Response, error) {
	a, ok := f[req.Method+" "+req.URL.Path]
	if !ok {
		a, ok = f["* "+req.URL.Path]
	}
	if !ok {
		a = answer{status: http.StatusNotFound}
	}
	header := a.header.Clone() // answers are shared by parallel requests
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json")
	return &http.Response{
		StatusCode: a.status,
		Header:     header,
		Body:       io.NopCloser(strings.NewReader(a.body)),
		Request:    req,
	}, nil
}

func TestCheckOtherRegistryAnswers(t *testing.T) {
	t.Parallel()
	const manifest = "/v2/team-a/app/manifests/v1"
	basic := answer{status: http.StatusUnauthorized, header: http.Header{"Www-Authenticate": []string{`Basic realm="fake"`}}}
	bearer := answer{status: http.StatusUnauthorized, header: http.Header{"Www-Authenticate": []string{`Bearer realm="https://registry.example.com/token",service="fake"`}}}
	cases := []struct {
		name    string
		fake    fakeRegistry
		status  registrycheck.Status
		message string
	}{
		{
			name:    "403 DENIED",
			fake:    fakeRegistry{"GET /v2/": basic, "* " + manifest: {status: http.StatusForbidden, body: `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`}},
			status:  registrycheck.StatusForbidden,
			message: "registry.example.com denied team-a/regcred pull access to repository team-a/app (DENIED)",
		},
		{
			name:    "token service says 403",
			fake:    fakeRegistry{"GET /v2/": bearer, "GET /token": {status: http.StatusForbidden}},
			status:  registrycheck.StatusForbidden,
			message: "the token service of registry.example.com denied team-a/regcred access to repository team-a/app (403 Forbidden)",
		},
		{
			name:    "rate limited",
			fake:    fakeRegistry{"GET /v2/": basic, "* " + manifest: {status: http.StatusTooManyRequests, body: `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`}},
			status:  registrycheck.StatusError,
			message: "registry.example.com is rate-limiting pulls (TOOMANYREQUESTS)",
		},
		{
			name:    "server error",
			fake:    fakeRegistry{"GET /v2/": basic, "* " + manifest: {status: http.StatusServiceUnavailable}},
			status:  registrycheck.StatusError,
			message: "registry.example.com answered 503 Service Unavailable for registry.example.com/team-a/app:v1",
		},
		{
			name:    "not a registry",
			fake:    fakeRegistry{},
			status:  registrycheck.StatusError,
			message: "registry.example.com answered 404 Not Found to GET /v2/: it does not look like a container registry",
		},
		{
			name:    "404 without code, tag list says nothing either",
			fake:    fakeRegistry{"GET /v2/": basic, "* /v2/team-a/app/tags/list": {status: http.StatusInternalServerError}},
			status:  registrycheck.StatusNotFound,
			message: "registry.example.com has no tag v1 in repository team-a/app (404 Not Found) and does not say whether the repository or the tag is missing",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			creds := []registrycheck.Credential{aliceCred()}
			res := registrycheck.Check(context.Background(), "registry.example.com/team-a/app:v1", creds, registrycheck.Options{Transport: tc.fake})
			g.Expect(res.Status).To(Equal(tc.status), res.Message)
			g.Expect(res.Message).To(Equal(tc.message))
			expectNoSecret(t, res, creds)
		})
	}
}
