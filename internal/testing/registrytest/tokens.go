package registrytest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Token service constants: the registry trusts tokens for this service from
// this issuer.
const (
	tokenService = "registrytest"
	tokenIssuer  = "registrytest-issuer"
	tokenPath    = "/token"
)

// issuer is a small Docker token service
// (https://distribution.github.io/distribution/spec/auth/token/): it checks
// HTTP basic credentials and grants each user the actions it may perform on
// the repositories it asked for, nothing more. As the specification says, a
// scope the user may not have is not an error: the token simply lacks it, and
// the registry then answers 401 with error="insufficient_scope".
type issuer struct {
	users  []User
	public []string
	signer jose.Signer
}

func newIssuer(key *ecdsa.PrivateKey, users []User, public []string) (*issuer, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", token.GetJWKThumbprint(&key.PublicKey))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("create token signer: %w", err)
	}
	return &issuer{users: users, public: public, signer: signer}, nil
}

func (is *issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	subject := ""
	var user *User
	if name, password, ok := r.BasicAuth(); ok {
		user = is.authenticate(name, password)
		if user == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`))
			return
		}
		subject = user.Name
	}

	var access []*token.ResourceActions
	for _, scope := range r.URL.Query()["scope"] {
		// A scope parameter may hold several space-separated scopes.
		for s := range strings.FieldsSeq(scope) {
			if ra := is.grant(user, s); ra != nil {
				access = append(access, ra)
			}
		}
	}

	now := time.Now()
	claims := token.ClaimSet{
		Issuer:     tokenIssuer,
		Subject:    subject,
		Audience:   token.AudienceList{r.URL.Query().Get("service")},
		Expiration: now.Add(5 * time.Minute).Unix(),
		NotBefore:  now.Add(-time.Minute).Unix(),
		IssuedAt:   now.Unix(),
		JWTID:      randomHex(8),
		Access:     access,
	}
	raw, err := jwt.Signed(is.signer).Claims(claims).Serialize()
	if err != nil {
		http.Error(w, "sign token", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":      raw,
		"expires_in": 300,
		"issued_at":  now.UTC().Format(time.RFC3339),
	})
}

// authenticate returns the user with that name and password, or nil.
func (is *issuer) authenticate(name, password string) *User {
	for i := range is.users {
		u := &is.users[i]
		if u.Name == name && subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1 {
			return u
		}
	}
	return nil
}

// grant returns what user (nil = anonymous) may do within the requested
// scope "repository:NAME:ACTIONS", or nil for nothing.
func (is *issuer) grant(user *User, scope string) *token.ResourceActions {
	typ, rest, ok := strings.Cut(scope, ":")
	if !ok || typ != "repository" {
		return nil
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return nil
	}
	repo, actions := rest[:i], strings.Split(rest[i+1:], ",")

	var allowed []string
	switch {
	case user != nil && matchAny(user.Repositories, repo):
		allowed = []string{"pull", "push"}
	case matchAny(is.public, repo):
		allowed = []string{"pull"}
	}
	var granted []string
	for _, a := range actions {
		if slices.Contains(allowed, a) {
			granted = append(granted, a)
		}
	}
	if len(granted) == 0 {
		return nil
	}
	return &token.ResourceActions{Type: "repository", Name: repo, Actions: granted}
}

// matchAny reports whether repo matches one of the path.Match patterns.
func matchAny(patterns []string, repo string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, repo); ok || p == "*" {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
