package registrycheck

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// errPlainHTTP is returned instead of sending a request over plain HTTP to
// a host the user did not list as insecure.
type errPlainHTTP struct{ host string }

func (e *errPlainHTTP) Error() string {
	return fmt.Sprintf("refusing plain HTTP to %s: not an insecure registry", e.host)
}

// hostSet is a set of registry hosts (host or host:port), lower case.
type hostSet map[string]bool

// newHostSet normalises the user's list of insecure registries: a scheme or
// a trailing slash is forgiven, and Docker Hub's names mean each other.
func newHostSet(hosts []string) hostSet {
	set := hostSet{}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
		h = strings.TrimSuffix(h, "/")
		if h == "" {
			continue
		}
		set[h] = true
		if isDockerHub(h) {
			set["docker.io"], set["index.docker.io"], set["registry-1.docker.io"] = true, true, true
		}
	}
	return set
}

// isDockerHub reports whether h names Docker Hub's registry: references say
// docker.io, clients talk to index.docker.io or registry-1.docker.io.
func isDockerHub(h string) bool {
	return h == "docker.io" || h == "index.docker.io" || h == "registry-1.docker.io"
}

func (s hostSet) has(host string) bool { return s[strings.ToLower(host)] }

// schemeGuard sends requests for insecure registries through a transport
// that does not verify certificates, everything else through a verifying
// one, and refuses plain HTTP unless the host is an insecure registry.
//
// go-containerregistry falls back to plain HTTP on its own for loopback and
// RFC 1918 addresses; Docker and containerd only do so for hosts they are
// told about (and localhost). The guard makes the opt-in the only way, so a
// check never sends credentials in clear text by surprise.
type schemeGuard struct {
	secure, insecure http.RoundTripper
	insecureHosts    hostSet
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if g.insecureHosts.has(req.URL.Host) {
		return g.insecure.RoundTrip(req)
	}
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, &errPlainHTTP{host: req.URL.Host}
	}
	return g.secure.RoundTrip(req)
}

// newHTTPTransport is http.DefaultTransport with its own TLS settings and
// room for the connections CheckMany keeps open to one registry.
func newHTTPTransport(cfg *tls.Config, conns int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	tr.MaxIdleConnsPerHost = max(conns, 2)
	return tr
}

// observer remembers what the registry said in WWW-Authenticate headers,
// which go-containerregistry's errors do not carry.
type observer struct {
	next http.RoundTripper
	// scopeDenied: a manifest request was answered 401 with a Bearer
	// challenge saying error="insufficient_scope": the token (issued for
	// these credentials) does not grant pull on the repository.
	scopeDenied atomic.Bool
}

func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !isRegistryAPI(req.URL.Path) {
		return resp, err
	}
	for _, c := range resp.Header.Values("WWW-Authenticate") {
		c = strings.ToLower(c)
		if strings.HasPrefix(c, "bearer") && strings.Contains(c, "insufficient_scope") {
			o.scopeDenied.Store(true)
		}
	}
	return resp, nil
}

// isRegistryAPI tells the registry's own endpoints (ping, manifests, tag
// list) from the token service's, which may share the host.
func isRegistryAPI(path string) bool {
	return path == "/v2/" || strings.Contains(path, "/manifests/") || strings.HasSuffix(path, "/tags/list")
}

// secureTLS verifies certificates against roots (nil: the system's).
func secureTLS(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// insecureTLS skips certificate verification: it serves only the
// registries the user listed as insecure (schemeGuard sees to that).
func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true}
}
