// Package fakeecr is an Amazon ECR API endpoint for tests. It speaks the
// AWS JSON 1.1 protocol of GetAuthorizationToken
// (AmazonEC2ContainerRegistry_V20150921), mints a new short-lived password
// at every call, as ECR does, and says which passwords are still valid, so
// that a registry stand-in can accept only current tokens.
//
// The real ecr-credential-provider finds it through AWS_ENDPOINT_URL_ECR
// (aws-sdk-go-v2 service-specific endpoints); Env returns that and fake
// static credentials:
//
//	ecr := fakeecr.Start(t, fakeecr.Options{})
//	plugin.Env = ecr.Env(t)
//	// request image ecr.Host("us-west-2") + "/app"
//	ecr.Valid(password) // true until it expires
//
// It checks the SigV4 Authorization header's scope (access key, region,
// service ecr), not the signature.
package fakeecr

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Target is the X-Amz-Target of GetAuthorizationToken.
const Target = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"

// AccessKeyID and SecretAccessKey are the fake credentials Env hands out.
const (
	AccessKeyID     = "AKIAFAKEECRTESTKEY01"
	SecretAccessKey = "fake-secret-access-key"
)

// Options configure the endpoint.
type Options struct {
	// Account is the 12-digit account of the registry host; default 123456789012.
	Account string
	// Lifetime of a token; default 12 hours, as ECR.
	Lifetime time.Duration
	// Now is the clock of expiry; default time.Now.
	Now func() time.Time
}

// Call is one request the endpoint served.
type Call struct {
	// Target is the X-Amz-Target header.
	Target string
	// AccessKeyID, Region and Service come from the SigV4 credential scope.
	AccessKeyID, Region, Service string
	// Status is the HTTP status answered.
	Status int
}

// Token is one password the endpoint minted.
type Token struct {
	Password string
	Region   string
	Expires  time.Time
}

// Server is a running endpoint.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string

	opts    Options
	mu      sync.Mutex
	tokens  []Token
	calls   []Call
	failing []failure
}

type failure struct {
	status        int
	code, message string
}

// Start runs an endpoint until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := New(o)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// New returns an endpoint to serve yourself (the cloud demo does); set URL
// to where it is served.
func New(o Options) *Server {
	if o.Account == "" {
		o.Account = "123456789012"
	}
	if o.Lifetime == 0 {
		o.Lifetime = 12 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{opts: o}
}

// ServeHTTP answers GetAuthorizationToken.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r) }

// EnvIn is Env with the AWS files in dir instead of a test's folder.
func (s *Server) EnvIn(dir string) []string {
	return []string{
		"AWS_ENDPOINT_URL_ECR=" + s.URL,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"HOME=" + dir,
	}
}

// Host is the private registry host of the account in region, from which
// ecr-credential-provider takes its region.
func (s *Server) Host(region string) string {
	return s.opts.Account + ".dkr.ecr." + region + ".amazonaws.com"
}

// Env is what an AWS SDK v2 client needs to use this endpoint with fake
// credentials and nothing from the developer's ~/.aws or an instance
// metadata service.
func (s *Server) Env(t testing.TB) []string { return s.EnvIn(t.TempDir()) }

// FailNext makes the next n calls fail with an AWS JSON error: status,
// code (e.g. AccessDeniedException) and message.
func (s *Server) FailNext(n, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failing = append(s.failing, failure{status, code, message})
	}
}

// Recover drops the failures still queued by FailNext.
func (s *Server) Recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = nil
}

// Valid reports whether password was minted here and has not expired.
func (s *Server) Valid(password string) bool {
	for _, p := range s.ValidPasswords() {
		if p == password {
			return true
		}
	}
	return false
}

// ValidPasswords are the minted passwords that have not expired, oldest first.
func (s *Server) ValidPasswords() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	var out []string
	for _, tok := range s.tokens {
		if now.Before(tok.Expires) {
			out = append(out, tok.Password)
		}
	}
	return out
}

// Tokens are every password minted, expired or not, oldest first.
func (s *Server) Tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Token(nil), s.tokens...)
}

// Current is the newest password, or "" before the first call.
func (s *Server) Current() Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) == 0 {
		return Token{}
	}
	return s.tokens[len(s.tokens)-1]
}

// Calls are the requests served so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// scope is the credential scope of a SigV4 Authorization header:
// Credential=AKID/DATE/REGION/SERVICE/aws4_request.
var scope = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call := Call{Target: r.Header.Get("X-Amz-Target")}
	if m := scope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		call.AccessKeyID, call.Region, call.Service = m[1], m[2], m[3]
	}
	status, body := s.answer(r, call)
	call.Status = status
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", newID())
	if status != http.StatusOK {
		var e struct {
			Type string `json:"__type"`
		}
		_ = json.Unmarshal(body, &e)
		w.Header().Set("X-Amzn-Errortype", e.Type)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// answer returns the status and JSON body for one request.
func (s *Server) answer(r *http.Request, call Call) (int, []byte) {
	errorBody := func(status int, code, message string) (int, []byte) {
		b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
		return status, b
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		return errorBody(http.StatusNotFound, "UnknownOperationException", "POST / only")
	case call.Target != Target:
		return errorBody(http.StatusBadRequest, "UnknownOperationException", "only GetAuthorizationToken is served")
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1"):
		return errorBody(http.StatusBadRequest, "SerializationException", "want application/x-amz-json-1.1")
	case call.AccessKeyID != AccessKeyID || call.Service != "ecr" || call.Region == "":
		return errorBody(http.StatusForbidden, "UnrecognizedClientException", "the request is not signed for ecr with the fake access key")
	}
	var input struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil || json.Unmarshal(body, &input) != nil {
		return errorBody(http.StatusBadRequest, "SerializationException", "the body is not a JSON object")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failing) > 0 {
		f := s.failing[0]
		s.failing = s.failing[1:]
		return errorBody(f.status, f.code, f.message)
	}
	tok := Token{Password: fmt.Sprintf("ecr-%d-%s", len(s.tokens)+1, newID()), Region: call.Region, Expires: s.opts.Now().Add(s.opts.Lifetime)}
	s.tokens = append(s.tokens, tok)
	out := map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + tok.Password)),
		// AWS JSON 1.1 timestamps are epoch seconds.
		"expiresAt":     float64(tok.Expires.UnixMilli()) / 1000,
		"proxyEndpoint": "https://" + s.Host(call.Region),
	}}}
	b, _ := json.Marshal(out)
	return http.StatusOK, b
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
