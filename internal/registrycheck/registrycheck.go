// Package registrycheck asks a container registry whether an image can be
// pulled with given credentials, the way the kubelet and the container
// runtime would pull it, and says precisely why not when it cannot:
// credentials rejected, access denied, repository or tag missing, registry
// unreachable, TLS trouble, or no answer in time.
//
// It speaks the Docker Registry HTTP API v2 / OCI distribution protocol
// through go-containerregistry: an anonymous ping of /v2/ to read the
// WWW-Authenticate challenge, HTTP basic or bearer-token authentication, and
// a HEAD of the manifest, falling back to GET. It never downloads a layer.
//
// Passwords and tokens never appear in a Result: messages are written by
// this package, not copied from errors, and every message is scrubbed of the
// credentials it was given before it is returned.
package registrycheck

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DefaultTimeout bounds the check of one image when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultConcurrency is how many images CheckMany checks at once when
// Options.Concurrency is zero.
const DefaultConcurrency = 8

// Credential is one username and password the runtime would try.
type Credential struct {
	// Label names the credential in results, e.g.
	// "team-a/regcred (registry.example.com)". It must not hold secrets.
	Label string
	// Username and Password are sent to the registry (HTTP basic, or to
	// its token service). Both empty means anonymous.
	Username, Password string
}

// String returns the label only, so that printing a Credential by mistake
// never shows the password.
func (c Credential) String() string { return c.Label }

// GoString returns the label only, for the same reason as String (%#v).
func (c Credential) GoString() string {
	return fmt.Sprintf("registrycheck.Credential{Label: %q}", c.Label)
}

// Options tune a check. The zero value is ready to use.
type Options struct {
	// Timeout bounds the check of one image, all its credentials included;
	// DefaultTimeout when zero.
	Timeout time.Duration
	// InsecureRegistries are registry hosts ("host" or "host:port", as in
	// image references) that may be reached over plain HTTP, and whose TLS
	// certificates are not verified: Docker's --insecure-registry. Only
	// list what the user asked for. Other registries get HTTPS with
	// verified certificates, and nothing else.
	InsecureRegistries []string
	// RootCAs are the certificate authorities trusted for registries' TLS
	// certificates, instead of the system's when set (as in tls.Config). To
	// add a CA to the system's, start from x509.SystemCertPool().
	RootCAs *x509.CertPool
	// Transport, when set, carries every request instead of transports
	// built from RootCAs and InsecureRegistries (tests, proxies): its TLS
	// settings are used as they are. Plain HTTP is still refused for
	// registries not in InsecureRegistries.
	Transport http.RoundTripper
	// Concurrency is how many images CheckMany checks at once;
	// DefaultConcurrency when zero.
	Concurrency int
}

// Status is the outcome of a check, or of one credential's attempt.
type Status string

// The outcomes.
const (
	// StatusOK: the manifest resolved; Result.Digest holds its digest.
	StatusOK Status = "ok"
	// StatusUnauthorized: 401, the credentials were rejected, or the
	// registry wants credentials and none were given.
	StatusUnauthorized Status = "unauthorized"
	// StatusForbidden: the credentials were accepted but may not pull
	// this repository (403, DENIED, or a token without pull access).
	StatusForbidden Status = "forbidden"
	// StatusNotFound: the repository or the tag (or digest) does not exist;
	// the message says which, as far as the registry tells.
	StatusNotFound Status = "not-found"
	// StatusUnreachable: the name does not resolve, or the connection was
	// refused or broke.
	StatusUnreachable Status = "unreachable"
	// StatusTLSError: certificate not trusted or not valid for the name,
	// or HTTP spoken where HTTPS was expected.
	StatusTLSError Status = "tls-error"
	// StatusTimeout: no answer within Options.Timeout or the context's
	// deadline (or the context was canceled).
	StatusTimeout Status = "timeout"
	// StatusInvalidImage: the image reference does not parse; the kubelet
	// would report InvalidImageName without asking any registry.
	StatusInvalidImage Status = "invalid-image"
	// StatusError: the registry answered something else (5xx, 429 rate
	// limiting, a malformed response).
	StatusError Status = "error"
)

// Attempt is what one credential (or the anonymous pull) got.
type Attempt struct {
	// Credential is the credential's label; "" for the anonymous attempt.
	Credential string
	// Status and Message as in Result.
	Status  Status
	Message string
}

// Result is the outcome of checking one image.
type Result struct {
	// Image is the image as given.
	Image string
	// Reference is the image normalised as the kubelet does it
	// ("docker.io/library/nginx:latest"); "" if it does not parse.
	Reference string
	// Status is StatusOK if one credential (or the anonymous pull)
	// succeeded; otherwise the most telling failure among the attempts
	// (a credential that got as far as "not found" says more than one
	// that was rejected).
	Status Status
	// Digest is the manifest digest when Status is StatusOK.
	Digest string
	// Credential is the label of the credential that succeeded; "" when
	// the anonymous pull succeeded or nothing did.
	Credential string
	// Message explains Status in one sentence. It never holds a secret.
	Message string
	// Attempts are the credentials tried, in order, with their outcome.
	Attempts []Attempt
}

// OK reports whether the image can be pulled.
func (r Result) OK() bool { return r.Status == StatusOK }

// Request is one image and the credentials the kubelet would try for it,
// in its order.
type Request struct {
	Image       string
	Credentials []Credential
}

// Check checks whether image can be pulled with creds, tried in order until
// one works, the way a Pod's pull goes: the kubelet's image manager looks up
// every credential matching the image, key by key in reverse byte order of
// the normalised keys (BasicDockerKeyring.Add's sort.Reverse:
// "quay.io/coreos" before "quay.io", but also "reg.example.com" before the
// longer "*.example.com/team"), and for one key in the Pod's order of
// Secrets: the order credentials.Keyring.Lookup gives and Candidates keeps.
// Then kubeGenericRuntimeManager.PullImage
// (pkg/kubelet/kuberuntime/kuberuntime_image.go, Kubernetes 1.37) asks the
// runtime to pull with each in turn, returning on the first success; with
// no credential at all it pulls anonymously once. It never falls back to
// an anonymous pull after credentials failed, and neither does Check.
//
// Unlike the kubelet, Check stops after the first attempt that could not
// reach the registry (unreachable, tls-error, timeout): another credential
// would meet the same network.
func Check(ctx context.Context, image string, creds []Credential, opts Options) Result {
	c := newChecker(opts)
	defer c.close()
	return c.check(ctx, image, creds)
}

// CheckMany checks many images, Options.Concurrency at a time, sharing
// connections, and returns their results in the order of reqs. Requests for
// the same image with the same credentials are checked once.
func CheckMany(ctx context.Context, reqs []Request, opts Options) []Result {
	c := newChecker(opts)
	defer c.close()

	results := make([]Result, len(reqs))
	first := map[[sha256.Size]byte]int{} // request key -> first index
	dups := map[int][]int{}              // first index -> later duplicates
	var unique []int
	for i, r := range reqs {
		k := requestKey(r)
		if j, ok := first[k]; ok {
			dups[j] = append(dups[j], i)
			continue
		}
		first[k] = i
		unique = append(unique, i)
	}

	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(c.concurrency, len(unique)) {
		wg.Go(func() {
			for i := range jobs {
				results[i] = c.check(ctx, reqs[i].Image, reqs[i].Credentials)
			}
		})
	}
	for _, i := range unique {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	for i, later := range dups {
		for _, j := range later {
			results[j] = results[i]
			results[j].Image = reqs[j].Image
			results[j].Attempts = append([]Attempt(nil), results[i].Attempts...)
		}
	}
	return results
}

// requestKey identifies a request by a hash, so the map holds no passwords.
func requestKey(r Request) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%q", r.Image)
	for _, c := range r.Credentials {
		fmt.Fprintf(h, " %q %q %q", c.Label, c.Username, c.Password)
	}
	var k [sha256.Size]byte
	copy(k[:], h.Sum(nil))
	return k
}

// checker holds what the checks of one Check or CheckMany call share.
type checker struct {
	rt          http.RoundTripper
	insecure    hostSet
	timeout     time.Duration
	concurrency int
	closers     []func()
}

func newChecker(opts Options) *checker {
	c := &checker{
		insecure:    newHostSet(opts.InsecureRegistries),
		timeout:     opts.Timeout,
		concurrency: opts.Concurrency,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.concurrency <= 0 {
		c.concurrency = DefaultConcurrency
	}
	guard := &schemeGuard{insecureHosts: c.insecure}
	if opts.Transport != nil {
		guard.secure, guard.insecure = opts.Transport, opts.Transport
	} else {
		secure := newHTTPTransport(secureTLS(opts.RootCAs), c.concurrency)
		insecure := newHTTPTransport(insecureTLS(), c.concurrency)
		guard.secure, guard.insecure = secure, insecure
		c.closers = append(c.closers, secure.CloseIdleConnections, insecure.CloseIdleConnections)
	}
	c.rt = guard
	return c
}

// close lets go of the connections this checker opened.
func (c *checker) close() {
	for _, f := range c.closers {
		f()
	}
}

// retryBackoff retries what go-containerregistry deems temporary (5xx, 429,
// connection resets) quickly: a check answers a question, it should not
// outwait a struggling registry. go-containerregistry's default waits 1s,
// then 3s.
func retryBackoff() remote.Backoff {
	return remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}
}

func (c *checker) check(ctx context.Context, imageRef string, creds []Credential) Result {
	res := Result{Image: imageRef}
	im, err := parseImage(imageRef, c.insecure.has)
	if err != nil {
		res.Status = StatusInvalidImage
		res.Message = fmt.Sprintf("%q is not a valid image reference, so the kubelet would not even try to pull it (InvalidImageName)", imageRef)
		return res
	}
	res.Reference = im.normalized

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	candidates := creds
	if len(candidates) == 0 {
		candidates = []Credential{{}} // the anonymous pull
	}
	var outcomes []outcome
	for i, cred := range candidates {
		label := cred.Label
		if label == "" && len(creds) > 0 {
			label = fmt.Sprintf("credential #%d", i+1)
		}
		o := c.attempt(ctx, im, cred, label)
		o.msg = scrub(o.msg, creds)
		outcomes = append(outcomes, o)
		res.Attempts = append(res.Attempts, Attempt{Credential: label, Status: o.status, Message: o.msg})
		if o.status == StatusOK {
			res.Status, res.Digest, res.Credential, res.Message = StatusOK, o.digest, label, o.msg
			if i > 0 {
				res.Message += fmt.Sprintf(" (after %d failed credential%s)", i, plural(i))
			}
			return res
		}
		if o.status.network() {
			break
		}
	}

	best := outcomes[0]
	for _, o := range outcomes[1:] {
		if o.status.rank() > best.status.rank() {
			best = o
		}
	}
	res.Status, res.Message = best.status, best.msg
	tried, skipped := len(outcomes), len(candidates)-len(outcomes)
	switch {
	case tried > 1 && skipped > 0:
		res.Message += fmt.Sprintf(" (%d credentials tried, %d not tried)", tried, skipped)
	case tried > 1:
		res.Message += fmt.Sprintf(" (%d credentials tried)", tried)
	case skipped > 0:
		res.Message += fmt.Sprintf(" (%d more credential%s not tried)", skipped, plural(skipped))
	}
	return res
}

// outcome is one attempt's result before it becomes an Attempt.
type outcome struct {
	status Status
	digest string
	msg    string
}

// network reports whether s is about reaching the registry at all, which
// no other credential can change.
func (s Status) network() bool {
	return s == StatusUnreachable || s == StatusTLSError || s == StatusTimeout
}

// rank orders failures by how much they say about the image: a credential
// that got as far as "not found" proves access, one that was refused proves
// little, and a network failure nothing.
func (s Status) rank() int {
	switch s {
	case StatusNotFound:
		return 6
	case StatusForbidden:
		return 5
	case StatusUnauthorized:
		return 4
	case StatusError:
		return 3
	case StatusTimeout:
		return 2
	case StatusTLSError:
		return 1
	default:
		return 0
	}
}

// attempt resolves the manifest with one credential: HEAD, then GET when
// HEAD failed in a way GET may not (HEAD answers carry no error body, and
// some registries and proxies mishandle HEAD). containerd does the same.
func (c *checker) attempt(ctx context.Context, im image, cred Credential, label string) outcome {
	obs := &observer{next: c.rt}
	auth := authn.Anonymous
	if cred.Username != "" || cred.Password != "" {
		auth = &authn.Basic{Username: cred.Username, Password: cred.Password}
	}
	puller, err := remote.NewPuller(
		remote.WithAuth(auth),
		remote.WithTransport(obs),
		remote.WithUserAgent("pullsecrets-registrycheck"),
		remote.WithRetryBackoff(retryBackoff()),
	)
	if err != nil {
		return outcome{status: StatusError, msg: fmt.Sprintf("could not set up a client for %s", im.domain)}
	}
	a := attemptInfo{im: im, label: label, anonymous: auth == authn.Anonymous, timeout: c.timeout, obs: obs}

	desc, err := puller.Head(ctx, im.ref)
	if err == nil {
		return a.ok(desc.Digest.String())
	}
	if !retryWithGet(ctx, err) {
		return a.classify(ctx, err)
	}
	got, err := puller.Get(ctx, im.ref)
	if err == nil {
		return a.ok(got.Digest.String())
	}
	if isNotFound(err) {
		// Many registries (distribution among them) answer MANIFEST_UNKNOWN
		// for a repository that does not exist; their tag list says
		// NAME_UNKNOWN. One page of one tag is enough to tell.
		perr := probeRepository(ctx, im, auth, obs)
		a.repoProbe = &perr
	}
	return a.classify(ctx, err)
}

// scrub removes every password of creds, raw or inside a basic auth
// header, from s. Messages are built from registry answers and error texts
// that should never echo a secret; this makes sure.
func scrub(s string, creds []Credential) string {
	for _, c := range creds {
		if c.Password == "" {
			continue
		}
		userPass := c.Username + ":" + c.Password
		for _, secret := range []string{
			base64.StdEncoding.EncodeToString([]byte(userPass)),
			base64.RawStdEncoding.EncodeToString([]byte(userPass)),
			c.Password,
		} {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// probeRepository reads one tag of the image's repository, to learn whether
// the repository exists: nil if it does, the registry's error otherwise.
// It does not use remote.Lister, which rejects the answer of an HTTPS
// registry on a loopback or private address (it expects plain HTTP there
// when it validates the next-page link).
func probeRepository(ctx context.Context, im image, auth authn.Authenticator, rt http.RoundTripper) error {
	repo := im.ref.Context()
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, rt, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return err
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/tags/list", RawQuery: "n=1"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	client := &http.Client{
		Transport: tr,
		// A tag list has no reason to redirect; an answer that does says
		// nothing about the repository.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return transport.CheckError(resp, http.StatusOK)
}
