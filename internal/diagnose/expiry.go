package diagnose

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// expiry is when a credential's token expires, and who says so.
type expiry struct {
	at     time.Time
	known  bool
	source string
}

// expiry reports the credentials the registry refused whose token had
// expired when the kubelet last sent it. A token still valid at the last
// failed pull is never blamed, however soon it expires.
func (x *pass) expiry() {
	x.expired = map[string]bool{}
	for i := range x.d.Containers {
		c := &x.d.Containers[i]
		creds := c.list()
		if !c.PullError.refused() || len(creds) == 0 {
			continue
		}
		failedAt := x.in.Now
		if e := x.lastPullFailure(c.Image); e != nil && !eventTime(e).IsZero() {
			failedAt = eventTime(e)
		}
		seen := map[string]bool{}
		all := true
		var found []Problem
		for _, cr := range creds {
			name := secretName(cr.Secret)
			exp := x.tokenExpiry(x.in.Secrets[name], cr)
			if !exp.known || exp.at.After(failedAt) {
				all = false
				continue
			}
			if !seen[name] {
				seen[name] = true
				found = append(found, x.expiredProblem(c, cr, exp))
			}
		}
		if len(found) == 0 && c.PullError == PullTokenExpired {
			// The registry's own word, for a token nothing here dates.
			found, all = append(found, x.expiredProblem(c, creds[0], expiry{source: "the registry says so"})), true
		}
		for _, p := range found {
			x.add(p)
		}
		x.expired[c.Name] = len(found) > 0 && all
	}
}

// tokenExpiry dates the token of one credential: from the token itself
// (ECR's carries its expiration), else from the status of the
// ClusterPullSecret that keeps the copy (authoritative: a refresh that
// answers the same token does not rewrite the copies), else from the
// Secret's pullsecrets.dev/expires-at annotation.
func (x *pass) tokenExpiry(s *corev1.Secret, cr credentials.Credential) expiry {
	if s == nil {
		return expiry{}
	}
	owner, cps, _ := x.owner(s)
	if at, ok := ecrTokenExpiry(cr.Username, cr.Password); ok {
		if owner != "" && cps == nil && at.Before(x.in.Now) {
			x.wantOwner(owner) // for the story, not the date
		}
		return expiry{at: at, known: true, source: "by the ECR token's own expiration"}
	}
	if cps != nil && cps.Spec.Source.Provider != nil && cps.Status.Credential != nil && cps.Status.Credential.ExpiresAt != nil {
		return expiry{at: cps.Status.Credential.ExpiresAt.UTC(), known: true, source: "per status.credential of ClusterPullSecret " + owner}
	}
	if owner != "" && cps == nil {
		x.wantOwner(owner)
	}
	if at, err := time.Parse(time.RFC3339, s.Annotations[v1alpha1.ExpiresAtAnnotation]); err == nil {
		return expiry{at: at.UTC(), known: true, source: "per its " + v1alpha1.ExpiresAtAnnotation + " annotation"}
	}
	return expiry{}
}

// owner returns the ClusterPullSecret whose copy s is, that object when
// the caller read it, and whether it is gone ("" and nil for a Secret made
// otherwise).
func (x *pass) owner(s *corev1.Secret) (string, *v1alpha1.ClusterPullSecret, bool) {
	if s.Labels[v1alpha1.ManagedByLabel] != v1alpha1.ManagedByValue || s.Labels[v1alpha1.OwnerLabel] == "" {
		return "", nil, false
	}
	name := s.Labels[v1alpha1.OwnerLabel]
	o := x.in.ClusterPullSecrets[name]
	if uid := s.Annotations[v1alpha1.OwnerUIDAnnotation]; o.Object != nil && uid != "" && uid != string(o.Object.UID) {
		return name, nil, true // left by an earlier ClusterPullSecret of that name, which is gone
	}
	return name, o.Object, o.Gone
}

// wantOwner asks the caller for a ClusterPullSecret it has not read.
func (x *pass) wantOwner(name string) {
	if _, read := x.in.ClusterPullSecrets[name]; !read && !slices.Contains(x.d.toRead, name) {
		x.d.toRead = append(x.d.toRead, name)
	}
}

// expiredProblem explains one refused credential whose token expired:
// the Secret, who should have refreshed it, when it expired, the fix.
func (x *pass) expiredProblem(c *Container, cr credentials.Credential, exp expiry) Problem {
	name := secretName(cr.Secret)
	s := x.in.Secrets[name]
	p := Problem{Code: CodeCredentialExpired, Severity: SeverityError, Container: c.Name, Secret: name}
	when := "has expired (" + exp.source + "; nothing here tells when)"
	if exp.known {
		at := exp.at.UTC()
		p.ExpiresAt = &at
		when = fmt.Sprintf("expired at %s (%s ago, %s)", at.Format(time.RFC3339), ago(x.in.Now.Sub(at)), exp.source)
	}
	ecr := isECRToken(cr) || (cr.Username == "AWS" && ecrHost.MatchString(registryHost(c.Image)))
	owner, cps, gone := "", (*v1alpha1.ClusterPullSecret)(nil), false
	if s != nil {
		owner, cps, gone = x.owner(s)
	}
	p.ClusterPullSecret = owner
	var story string
	switch {
	case owner == "", gone:
		story = "it was made by hand and nothing refreshes it"
		if gone {
			story = fmt.Sprintf("it is a copy left by ClusterPullSecret %s, which no longer exists, so nothing refreshes it", owner)
		}
		p.Fix = x.recreateToken(name, x.fix.ns, c.Image, cr, ecr) + "   # or let a ClusterPullSecret with a provider source keep it fresh (docs/short-lived-tokens.md)"
	case cps == nil:
		story = fmt.Sprintf("it is a copy kept by ClusterPullSecret %s, whose status could not be read", owner)
		p.Fix = describeCPS(owner, "its CredentialRefreshed condition says why the token was not refreshed")
	case cps.Spec.Source.Provider == nil:
		src := cps.Spec.Source.Namespace + "/" + cps.Spec.Source.Name
		story = fmt.Sprintf("it is ClusterPullSecret %s's copy of Secret %s, which holds the expired token: nothing refreshes a Secret source", owner, src)
		p.Fix = x.recreateToken(cps.Spec.Source.Name, cps.Spec.Source.Namespace, c.Image, cr, ecr) +
			fmt.Sprintf("   # or give ClusterPullSecret %s a provider source, which keeps it fresh (docs/short-lived-tokens.md)", owner)
	default:
		story, p.Fix = providerStory(cps, x.in.Now)
	}
	p.Message = fmt.Sprintf("%s refused the token the kubelet sent for %s (%s): pull secret %s holds a registry token that %s; %s",
		registryHost(c.Image), c.Image, refusal(c.PullError), name, when, story)
	return p
}

// providerStory says why a ClusterPullSecret with a provider source left
// an expired token in a copy, and where to look.
func providerStory(cps *v1alpha1.ClusterPullSecret, now time.Time) (string, string) {
	plugin := cps.Spec.Source.Provider.Name
	cs := cps.Status.Credential
	if cs == nil {
		cs = &v1alpha1.CredentialStatus{}
	}
	if cs.ExpiresAt != nil && cs.ExpiresAt.After(now) && cs.Failures == 0 {
		return fmt.Sprintf("it is a copy kept by ClusterPullSecret %s, whose plugin %s holds a fresh token (until %s) that this copy did not get",
				cps.Name, plugin, cs.ExpiresAt.UTC().Format(time.RFC3339)),
			describeCPS(cps.Name, "its status (failingNamespaces, conditions) says why this namespace's copy is not current")
	}
	story := fmt.Sprintf("it is a copy kept by ClusterPullSecret %s, whose plugin %s", cps.Name, plugin)
	if cs.Failures > 0 {
		story += fmt.Sprintf(" failed its last %d %s", cs.Failures, plural(int(cs.Failures), "refresh", "refreshes"))
		if cs.LastError != "" {
			story += " (last error: " + strings.TrimSuffix(cs.LastError, ".") + ")"
		}
	} else {
		story += " has not refreshed it and records no failure: is the controller running?"
	}
	return story, describeCPS(cps.Name, fmt.Sprintf("its CredentialRefreshed condition says why; check the cloud identity plugin %s runs with (docs/short-lived-tokens.md)", plugin))
}

func describeCPS(name, why string) string {
	return fmt.Sprintf("kubectl describe clusterpullsecret %s   # %s", name, why)
}

// recreateToken replaces the Secret name in ns with a fresh token: from
// the AWS CLI for an ECR token, else a credential only the user has.
func (x *pass) recreateToken(name, ns, image string, cr credentials.Credential, ecr bool) string {
	if !ecr {
		f := x.fix
		f.ns = ns
		return f.recreate(name, image, cr.Username)
	}
	region := ""
	if m := ecrHost.FindStringSubmatch(registryHost(image)); m != nil {
		region = " --region " + m[1]
	}
	return fmt.Sprintf("aws ecr get-login-password%s | kubectl pullsecrets create %s -n %s --overwrite%s --docker-username=AWS --docker-password-stdin",
		region, name, ns, serverFlag(image))
}

// ecrHost matches a private ECR registry and captures its region.
var ecrHost = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

func isECRToken(cr credentials.Credential) bool {
	_, ok := ecrTokenExpiry(cr.Username, cr.Password)
	return ok
}

// maxECRToken bounds what is decoded: real tokens are about 2 KB.
const maxECRToken = 64 << 10

// ecrTokenExpiry reads the expiration of an ECR authorization token
// (`aws ecr get-login-password`, user AWS): base64 of a JSON document
// {"payload", "datakey", "version", "type", "expiration": Unix seconds}.
// Only the expiration is read; nothing of the token is ever returned, and
// decoding errors, which could quote it, are dropped.
func ecrTokenExpiry(username, password string) (time.Time, bool) {
	if username != "AWS" || len(password) > maxECRToken || !strings.HasPrefix(password, "eyJ") { // base64 of `{"`
		return time.Time{}, false
	}
	raw, err := base64.StdEncoding.DecodeString(password)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(password); err != nil {
			return time.Time{}, false
		}
	}
	var tok struct {
		Payload    string   `json:"payload"`
		Expiration *float64 `json:"expiration"`
	}
	if json.Unmarshal(raw, &tok) != nil || tok.Payload == "" || tok.Expiration == nil || *tok.Expiration <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(*tok.Expiration), 0).UTC(), true
}

// refusal names the registry's answer as the kubelet's text gave it.
func refusal(e PullError) string {
	switch e {
	case PullUnauthorized:
		return "401 Unauthorized"
	case PullForbidden:
		return "403 Forbidden"
	case PullAccessDenied:
		return "pull access denied"
	case PullTokenExpired:
		return "authorization token has expired"
	}
	return string(e)
}

// ago is a duration as kubectl prints ages.
func ago(d time.Duration) string {
	return duration.HumanDuration(max(d, 0))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
