package manager

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestDecideAsControllerRuntimesFilter(t *testing.T) {
	t.Parallel()
	allowed := &authorizationv1.SubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}}
	denied := &authorizationv1.SubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true, Denied: true}}
	for _, c := range []struct {
		name   string
		tokens authenticationv1.TokenReviewStatus
		access *authorizationv1.SubjectAccessReview
		want   int
	}{
		{"allowed", authenticationv1.TokenReviewStatus{Authenticated: true}, allowed, http.StatusOK},
		{"not authorized", authenticationv1.TokenReviewStatus{Authenticated: true}, &authorizationv1.SubjectAccessReview{}, http.StatusForbidden},
		{"explicitly denied", authenticationv1.TokenReviewStatus{Authenticated: true}, denied, http.StatusForbidden},
		{"not authenticated", authenticationv1.TokenReviewStatus{}, nil, http.StatusUnauthorized},
		{"refused with a reason", authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}, nil, http.StatusInternalServerError},
	} {
		if got := decide(c.tokens, c.access); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// The filter asks the API server about the caller's token and the path it
// gets, serves only what the reviews allow, and asks again only once a
// decision is older than its TTL.
func TestMetricsFilterReviewsAndCaches(t *testing.T) {
	t.Parallel()
	cs := fake.NewClientset()
	var tokenReviews, accessReviews int
	cs.PrependReactor("create", "tokenreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		tokenReviews++
		tr := a.(clienttesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		switch tr.Spec.Token {
		case "reader", "other":
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: tr.Spec.Token, Groups: []string{"g"}}}
		default:
			tr.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		accessReviews++
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		na := sar.Spec.NonResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "reader" && na != nil && na.Path == "/metrics" && na.Verb == "get" && len(sar.Spec.Groups) == 1
		return true, sar, nil
	})
	clock := time.Unix(0, 0)
	r := &reviewer{tokens: cs.AuthenticationV1().TokenReviews(), access: cs.AuthorizationV1().SubjectAccessReviews(),
		now: func() time.Time { return clock }, cache: map[[32]byte]review{}}
	served := 0
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ })
	get := func(auth string) int {
		req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		code, _ := r.allowed(req.Context(), bearer(req), "get", req.URL.Path)
		if code == http.StatusOK {
			next.ServeHTTP(rec, req)
		}
		return code
	}
	for _, c := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Basic cmVhZGVy", http.StatusUnauthorized},
		{"Bearer not-a-token", http.StatusInternalServerError},
		{"Bearer other", http.StatusForbidden},
		{"Bearer reader", http.StatusOK},
		{"bearer  reader", http.StatusOK},
	} {
		if got := get(c.auth); got != c.want {
			t.Errorf("%q: %d, want %d", c.auth, got, c.want)
		}
	}
	if served != 2 {
		t.Fatalf("served %d, want 2", served)
	}
	// reader and other were reviewed once each; not-a-token is not cached.
	if tokenReviews != 3 || accessReviews != 2 {
		t.Fatalf("reviews %d/%d, want 3/2", tokenReviews, accessReviews)
	}
	clock = clock.Add(reviewDenyTTL + time.Second)
	get("Bearer reader")
	get("Bearer other")
	if tokenReviews != 4 || accessReviews != 3 {
		t.Fatalf("after the deny TTL: reviews %d/%d, want 4/3 (the denial asked again, the allowance still cached)", tokenReviews, accessReviews)
	}
}
