package manager

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The secure /metrics endpoint serves only callers the API server
// authenticates (TokenReview) and authorizes for the path (a
// SubjectAccessReview of a non-resource URL), as controller-runtime's
// metrics/filters does. That package builds on k8s.io/apiserver's
// authentication and authorization stack, whose package initialisation
// alone (CEL, gRPC, feature gates) added 23 MiB to the controller's
// resident memory and 41 MB to its binary (docs/benchmarks.md); these two
// reviews are all the endpoint needs.

// Review caching, as controller-runtime's filter: a scraper every 15 s
// costs two reviews a minute at most.
const (
	reviewAllowTTL   = time.Minute
	reviewDenyTTL    = 10 * time.Second
	reviewCacheLimit = 1024
)

// reviewer answers whether a bearer token may get a path.
type reviewer struct {
	tokens authenticationclient.TokenReviewInterface
	access authorizationclient.SubjectAccessReviewInterface
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]review
}

type review struct {
	code  int
	until time.Time
}

// metricsAuthFilter is the metrics server's FilterProvider.
func metricsAuthFilter(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authenticationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	authz, err := authorizationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	r := &reviewer{tokens: authn.TokenReviews(), access: authz.SubjectAccessReviews(), now: time.Now, cache: map[[sha256.Size]byte]review{}}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			code, err := r.allowed(req.Context(), bearer(req), strings.ToLower(req.Method), req.URL.Path)
			if err != nil {
				log.Error(err, "metrics request not reviewed", "path", req.URL.Path)
			}
			if code != http.StatusOK {
				http.Error(w, http.StatusText(code), code)
				return
			}
			next.ServeHTTP(w, req)
		}), nil
	}, nil
}

// bearer returns a request's bearer token, or "".
func bearer(req *http.Request) string {
	scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// allowed returns the status the request gets: 200, 401 (no token, or not
// authenticated), 403 (not authorized), or 500 (a review failed, or the
// API server said why it could not authenticate the token).
func (r *reviewer) allowed(ctx context.Context, token, verb, path string) (int, error) {
	if token == "" {
		return http.StatusUnauthorized, nil
	}
	key := sha256.Sum256([]byte(verb + "\x00" + path + "\x00" + token))
	now := r.now()
	r.mu.Lock()
	if c, ok := r.cache[key]; ok && now.Before(c.until) {
		r.mu.Unlock()
		return c.code, nil
	}
	r.mu.Unlock()

	tr, err := r.tokens.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return http.StatusInternalServerError, err
	}
	var sar *authorizationv1.SubjectAccessReview
	if tr.Status.Authenticated {
		u := tr.Status.User
		extra := make(map[string]authorizationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
		sar, err = r.access.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
		}}, metav1.CreateOptions{})
		if err != nil {
			return http.StatusInternalServerError, err
		}
	}
	code := decide(tr.Status, sar)
	if code == http.StatusInternalServerError {
		return code, nil // the token was refused with a reason: not cached
	}
	ttl := reviewDenyTTL
	if code == http.StatusOK {
		ttl = reviewAllowTTL
	}
	r.mu.Lock()
	if len(r.cache) >= reviewCacheLimit {
		clear(r.cache)
	}
	r.cache[key] = review{code: code, until: now.Add(ttl)}
	r.mu.Unlock()
	return code, nil
}

// decide maps the reviews to a status, as controller-runtime's filter does:
// a token refused with an error is a 500, one refused without is a 401, an
// authenticated user the authorizer does not allow a 403. Pure.
func decide(tokens authenticationv1.TokenReviewStatus, access *authorizationv1.SubjectAccessReview) int {
	switch {
	case !tokens.Authenticated && tokens.Error != "":
		return http.StatusInternalServerError
	case !tokens.Authenticated:
		return http.StatusUnauthorized
	case access == nil || !access.Status.Allowed || access.Status.Denied:
		return http.StatusForbidden
	}
	return http.StatusOK
}
