// Package registrytest runs a real container registry for tests: the CNCF
// distribution registry (github.com/distribution/distribution/v3), in
// process, on a loopback port, with in-memory storage. It can serve plain
// HTTP or TLS with a throw-away CA, authenticate with htpasswd (HTTP basic)
// or with bearer tokens from a small token service that grants each user
// pull access to chosen repositories only, and it can be slowed down.
//
//	reg := registrytest.Start(t, registrytest.Options{
//		TLS:   true,
//		Auth:  registrytest.AuthToken,
//		Users: []registrytest.User{{Name: "alice", Password: "s3cret", Repositories: []string{"team-a/*"}}},
//	})
//	digest := reg.Push(t, "team-a/app", "v1")
//	// pull reg.Host + "/team-a/app:v1", trusting reg.RootCAs
//
// The registry logs through logrus' standard logger; call [QuietLogs] from a
// TestMain to keep test output readable.
package registrytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// The registry finds its auth and storage back ends by name in
	// registries these packages fill when imported.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Auth selects how the registry authenticates clients.
type Auth string

// The authentication modes.
const (
	// AuthNone lets anyone pull and push.
	AuthNone Auth = ""
	// AuthHtpasswd asks for HTTP basic credentials on every request
	// (WWW-Authenticate: Basic); every valid user may access every repository.
	AuthHtpasswd Auth = "htpasswd"
	// AuthToken sends clients to a token service (WWW-Authenticate: Bearer)
	// that grants each user access only to its User.Repositories.
	AuthToken Auth = "token"
)

// User is an account of the registry.
type User struct {
	// Name and Password are the user's credentials.
	Name, Password string
	// Repositories the user may pull from and push to under AuthToken, as
	// path.Match patterns ("team-a/*"); "*" is every repository. Under
	// AuthHtpasswd every user may access everything.
	Repositories []string
}

// Options configure a registry.
type Options struct {
	// TLS serves HTTPS with a certificate from a CA made for this registry
	// only (Registry.RootCAs trusts it); otherwise plain HTTP.
	TLS bool
	// CertHosts are the names and IP addresses the server certificate is
	// valid for; default 127.0.0.1, ::1 and localhost. Set it to something
	// else to serve a certificate that does not match the address.
	CertHosts []string
	// Auth is the authentication mode.
	Auth Auth
	// Users are the accounts under AuthHtpasswd and AuthToken.
	Users []User
	// PublicRepositories may be pulled anonymously under AuthToken
	// (path.Match patterns).
	PublicRepositories []string
	// Delay holds every response back this long (or until the client gives
	// up), to play a slow registry. Push is not delayed.
	Delay time.Duration
	// NoHeadManifests answers HEAD requests for manifests with 405 Method
	// Not Allowed, like some proxies and old registries, so clients must
	// fall back to GET.
	NoHeadManifests bool
}

// Request is one HTTP request the registry (or its token service) served.
type Request struct {
	// Method and Path of the request, e.g. "HEAD", "/v2/team-a/app/manifests/v1".
	Method, Path string
}

// Registry is a running registry.
type Registry struct {
	// Host is the registry's host:port, as it appears in image references,
	// e.g. "127.0.0.1:41234".
	Host string
	// URL is the base URL, "https://" or "http://" followed by Host.
	URL string
	// RootCAs trusts the registry's certificate; nil without TLS.
	RootCAs *x509.CertPool
	// CAPEM is the PEM-encoded CA certificate; nil without TLS.
	CAPEM []byte

	server *httptest.Server
	app    *handlers.App
	admin  authn.Authenticator
	tr     *http.Transport

	mu       sync.Mutex
	requests []Request
	closed   bool
}

// setupHeader marks the requests of Push, which Options.Delay spares and
// Requests leaves out.
const setupHeader = "X-Registrytest-Setup"

// Start starts a registry and stops it when the test ends.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	reg, err := start(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(reg.Close)
	return reg
}

func start(dir string, opts Options) (*Registry, error) {
	admin := User{Name: "registrytest-admin", Password: randomHex(16), Repositories: []string{"*"}}
	users := append([]User{admin}, opts.Users...)
	reg := &Registry{admin: &authn.Basic{Username: admin.Name, Password: admin.Password}}

	reg.server = httptest.NewUnstartedServer(nil)
	// Failed TLS handshakes are what some tests are about, not news.
	reg.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	reg.Host = reg.server.Listener.Addr().String()
	reg.URL = scheme + "://" + reg.Host

	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory":    configuration.Parameters{},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
	}
	cfg.HTTP.Secret = randomHex(16)

	mux := http.NewServeMux()
	switch opts.Auth {
	case AuthNone:
	case AuthHtpasswd:
		path := filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(path, users); err != nil {
			return nil, err
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "registrytest", "path": path}}
	case AuthToken:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate token signing key: %w", err)
		}
		certPEM, err := signingCertificate(key)
		if err != nil {
			return nil, err
		}
		bundle := filepath.Join(dir, "token-signer.pem")
		if err := os.WriteFile(bundle, certPEM, 0o600); err != nil {
			return nil, fmt.Errorf("write token signing certificate: %w", err)
		}
		is, err := newIssuer(key, users, opts.PublicRepositories)
		if err != nil {
			return nil, err
		}
		// The token service shares the registry's host and port: clients
		// (go-containerregistry among them) refuse a token realm on another
		// loopback or private address, a guard against SSRF.
		mux.Handle(tokenPath, is)
		cfg.Auth = configuration.Auth{"token": configuration.Parameters{
			"realm":          reg.URL + tokenPath,
			"service":        tokenService,
			"issuer":         tokenIssuer,
			"rootcertbundle": bundle,
		}}
	default:
		return nil, fmt.Errorf("unknown auth mode %q", opts.Auth)
	}

	reg.app = handlers.NewApp(context.Background(), cfg)
	mux.Handle("/", reg.app)
	reg.server.Config.Handler = reg.middleware(mux, opts)

	reg.tr = http.DefaultTransport.(*http.Transport).Clone()
	if opts.TLS {
		ca, err := newAuthority("registrytest CA " + reg.Host)
		if err != nil {
			return nil, err
		}
		hosts := opts.CertHosts
		if len(hosts) == 0 {
			hosts = []string{"127.0.0.1", "::1", "localhost"}
		}
		cert, err := ca.serverCertificate(hosts)
		if err != nil {
			return nil, err
		}
		reg.RootCAs = x509.NewCertPool()
		reg.RootCAs.AddCert(ca.cert)
		reg.CAPEM = ca.pem
		reg.server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		// Push trusts the CA but not the names: CertHosts may be wrong on purpose.
		reg.tr.TLSClientConfig = &tls.Config{
			RootCAs:    reg.RootCAs,
			ServerName: hosts[0],
			MinVersion: tls.VersionTLS12,
		}
		reg.server.StartTLS()
		return reg, nil
	}
	reg.server.Start()
	return reg, nil
}

// middleware records requests, plays a slow or HEAD-less registry, and lets
// Push through untouched.
func (r *Registry) middleware(next http.Handler, opts Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get(setupHeader) != "" {
			next.ServeHTTP(w, req)
			return
		}
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path})
		r.mu.Unlock()

		if opts.Delay > 0 {
			select {
			case <-time.After(opts.Delay):
			case <-req.Context().Done():
				return
			}
		}
		if opts.NoHeadManifests && req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/manifests/") {
			http.Error(w, "HEAD not allowed", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Push pushes a small random image (one layer of 1 KiB) to repo:tag as the
// registry's administrator and returns its manifest digest.
func (r *Registry) Push(t testing.TB, repo, tag string) v1.Hash {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatalf("random image: %v", err)
	}
	var opts []name.Option
	if strings.HasPrefix(r.URL, "http://") {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewTag(r.Host+"/"+repo+":"+tag, opts...)
	if err != nil {
		t.Fatalf("image reference: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(r.admin), remote.WithTransport(setupTransport{r.tr})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatalf("image digest: %v", err)
	}
	return digest
}

// setupTransport marks requests as Push's own.
type setupTransport struct{ next http.RoundTripper }

func (s setupTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(setupHeader, "1")
	return s.next.RoundTrip(req)
}

// Requests returns the requests served so far, Push's excepted, in order.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// ResetRequests forgets the requests served so far.
func (r *Registry) ResetRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// Close stops the registry; later connections are refused. It is safe to
// call more than once.
func (r *Registry) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	r.server.CloseClientConnections()
	r.server.Close()
	r.tr.CloseIdleConnections()
	_ = r.app.Shutdown()
}

// ClosedAddress returns a loopback host:port where nothing listens: a port
// that was just free, so connections to it are refused.
func ClosedAddress(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

// QuietLogs turns the registry's logging (logrus' standard logger, shared by
// the whole test binary) down to errors. Call it once from TestMain, before
// tests run in parallel.
func QuietLogs() {
	logrus.SetLevel(logrus.ErrorLevel)
	logrus.SetOutput(io.Discard)
}

func writeHtpasswd(path string, users []User) error {
	var b strings.Builder
	for _, u := range users {
		// The registry checks the hash on every request: the minimum cost
		// keeps benchmarks about the client, not bcrypt.
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("hash password of %s: %w", u.Name, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u.Name, hash)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write htpasswd: %w", err)
	}
	return nil
}
