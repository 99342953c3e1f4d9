package diagnose_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

const (
	ecrHost  = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	ecrImage = ecrHost + "/shop/web:1.0"
	// The parts of an ECR token that are secret; none may be printed.
	ecrPayload = "PAYLOAD-s3cret-bytes"
	ecrDataKey = "DATAKEY-s3cret-bytes"
	cpsUID     = "0b6c3a52-0000-4000-8000-000000000001"
)

var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// ecrToken is what `aws ecr get-login-password` prints: base64 of a JSON
// document whose expiration is in Unix seconds.
func ecrToken(expires time.Time) string {
	doc := fmt.Sprintf(`{"payload":%q,"datakey":%q,"version":"2","type":"DATA_KEY","expiration":%d}`, ecrPayload, ecrDataKey, expires.Unix())
	return base64.StdEncoding.EncodeToString([]byte(doc))
}

// secretWith holds one credential for server.
func secretWith(name, server, user, pass string) *corev1.Secret {
	data, err := credentials.Build(server, user, pass, "")
	if err != nil {
		panic(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
}

// ecrSecret is a Secret made by hand from an ECR token.
func ecrSecret(name string, expires time.Time) *corev1.Secret {
	return secretWith(name, ecrHost, "AWS", ecrToken(expires))
}

// copyOf marks s as the copy ClusterPullSecret owner keeps, with the
// expires-at annotation when expires is not zero, as the controller writes
// it.
func copyOf(s *corev1.Secret, owner string, expires time.Time) *corev1.Secret {
	s.Labels = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: owner}
	s.Annotations = map[string]string{v1alpha1.OwnerUIDAnnotation: cpsUID, v1alpha1.SourceAnnotation: "pullsecrets-system/pullsecrets-provider-" + owner}
	if !expires.IsZero() {
		s.Annotations[v1alpha1.ExpiresAtAnnotation] = expires.Format(time.RFC3339)
	}
	return s
}

// providerCPS is a ClusterPullSecret with a provider source whose status
// says the credential expires at expires, after failures failed refreshes.
func providerCPS(expires time.Time, failures int32, lastError string) *v1alpha1.ClusterPullSecret {
	at := metav1.NewTime(expires)
	return &v1alpha1.ClusterPullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr", UID: cpsUID},
		Spec: v1alpha1.ClusterPullSecretSpec{Source: v1alpha1.SourceReference{
			Provider: &v1alpha1.CredentialProviderSource{Name: "ecr-credential-provider", Image: ecrHost},
		}},
		Status: v1alpha1.ClusterPullSecretStatus{Credential: &v1alpha1.CredentialStatus{ExpiresAt: &at, Failures: failures, LastError: lastError}},
	}
}

// refusedWith makes the Pod's only container fail on img for cause, as
// kubeletsim writes it.
func refusedWith(cause kubeletsim.Cause, img string) podOpt {
	return refusedText(img, kubeletsim.PullError(cause, img))
}

func refusedText(img, text string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Image = img
		waiting("ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", img, text))(p)
	}
}

// pullFailedAt is the kubelet's "Failed to pull image" Event, last seen at.
func pullFailedAt(at time.Time, img string, cause kubeletsim.Cause) corev1.Event {
	return corev1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-7d9f-x2x4z", UID: "uid-1"},
		Reason:         "Failed", Type: corev1.EventTypeWarning, LastTimestamp: metav1.NewTime(at),
		Message: fmt.Sprintf("Failed to pull image %q: %s", img, kubeletsim.PullError(cause, img)),
	}
}

func TestCredentialExpired(t *testing.T) {
	t.Parallel()
	hour := time.Hour
	failing := "Exited: credential provider plugin ecr-credential-provider exited with status 1 after 2.1s (stdout 0 bytes, stderr 312 bytes)"
	tests := []struct {
		name    string
		pod     *corev1.Pod
		secrets map[string]*corev1.Secret
		cps     map[string]diagnose.Owner
		events  []corev1.Event
		want    []string
		// wantIn are in the first problem's message; wantFix is its fix.
		wantIn  []string
		wantFix string
		wantCPS string
		// toRead is what ClusterPullSecretsToRead asks for.
		toRead []string
	}{
		{
			name: "hand-made ECR token, expired: the token's own expiration", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(ecrSecret("ecr", now.Add(-2*hour))),
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn: []string{
				ecrHost + " refused the token the kubelet sent for " + ecrImage + " (403 Forbidden)",
				"pull secret ecr holds a registry token that expired at 2026-03-04T10:00:00Z (120m ago, by the ECR token's own expiration)",
				"it was made by hand and nothing refreshes it",
			},
			wantFix: "aws ecr get-login-password --region us-west-2 | kubectl pullsecrets create ecr -n shop --overwrite --docker-server=" + ecrHost +
				" --docker-username=AWS --docker-password-stdin   # or let a ClusterPullSecret with a provider source keep it fresh (docs/short-lived-tokens.md)",
		},
		{
			name: "hand-made ECR token expiring in 5 minutes: not blamed", pod: newPod(lists("ecr"), refusedWith(kubeletsim.Forbidden, ecrImage)),
			secrets: secrets(ecrSecret("ecr", now.Add(5*time.Minute))),
			want:    []string{diagnose.CodeForbidden},
		},
		{
			name: "expired token, but the image does not exist: not blamed", pod: newPod(lists("ecr"), refusedWith(kubeletsim.NotFound, ecrImage)),
			secrets: secrets(ecrSecret("ecr", now.Add(-2*hour))),
			want:    []string{diagnose.CodeImageNotFound},
		},
		{
			name: "expired token, but the registry is unreachable: not blamed", pod: newPod(lists("ecr"), refusedWith(kubeletsim.Unreachable, ecrImage)),
			secrets: secrets(ecrSecret("ecr", now.Add(-2*hour))),
			want:    []string{diagnose.CodeRegistryUnreachable},
		},
		{
			name: "expired token for another registry: not blamed", pod: newPod(lists("ecr", "regcred"), refusedWith(kubeletsim.Forbidden, image)),
			secrets: secrets(ecrSecret("ecr", now.Add(-2*hour)), pullSecret("regcred", "registry.example.com")),
			want:    []string{diagnose.CodeForbidden},
			wantIn:  []string{"(403 Forbidden): regcred (registry.example.com, user ci-bot)"},
		},
		{
			name: "token expired after the last failed pull: not blamed", pod: newPod(lists("ecr"), refusedWith(kubeletsim.Forbidden, ecrImage)),
			secrets: secrets(ecrSecret("ecr", now.Add(-30*time.Minute))),
			events:  []corev1.Event{pullFailedAt(now.Add(-hour), ecrImage, kubeletsim.Forbidden)},
			want:    []string{diagnose.CodeForbidden},
		},
		{
			name: "token expired before the last failed pull", pod: newPod(lists("ecr"), refusedWith(kubeletsim.Forbidden, ecrImage)),
			secrets: secrets(ecrSecret("ecr", now.Add(-30*time.Minute))),
			events:  []corev1.Event{pullFailedAt(now.Add(-hour), ecrImage, kubeletsim.Forbidden), pullFailedAt(now.Add(-time.Minute), ecrImage, kubeletsim.Forbidden)},
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn:  []string{"expired at 2026-03-04T11:30:00Z (30m ago, by the ECR token's own expiration)"},
		},
		{
			name: "running Pod with an expired token: nothing", pod: newPod(lists("ecr")),
			secrets: secrets(ecrSecret("ecr", now.Add(-2*hour))),
			want:    []string{},
		},
		{
			name: "copy, expires-at annotation past, ClusterPullSecret not read", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(secretWith("ecr", ecrHost, "AWS", "opaque-token"), "ecr", now.Add(-3*hour))),
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn: []string{
				"expired at 2026-03-04T09:00:00Z (3h ago, per its pullsecrets.dev/expires-at annotation)",
				"it is a copy kept by ClusterPullSecret ecr, whose status could not be read",
			},
			wantFix: "kubectl describe clusterpullsecret ecr   # its CredentialRefreshed condition says why the token was not refreshed",
			wantCPS: "ecr", toRead: []string{"ecr"},
		},
		{
			name: "copy, ClusterPullSecret forbidden (nil): annotation, nothing more to read", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(secretWith("ecr", ecrHost, "AWS", "opaque-token"), "ecr", now.Add(-3*hour))),
			cps:     map[string]diagnose.Owner{"ecr": {}},
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn:  []string{"whose status could not be read"},
			wantCPS: "ecr",
		},
		{
			name: "copy whose ClusterPullSecret is gone: nothing refreshes it", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(ecrSecret("ecr", now.Add(-3*hour)), "ecr", now.Add(-3*hour))),
			cps:     map[string]diagnose.Owner{"ecr": {Gone: true}},
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn:  []string{"it is a copy left by ClusterPullSecret ecr, which no longer exists, so nothing refreshes it"},
			wantFix: "aws ecr get-login-password --region us-west-2 | kubectl pullsecrets create ecr -n shop --overwrite --docker-server=" + ecrHost +
				" --docker-username=AWS --docker-password-stdin   # or let a ClusterPullSecret with a provider source keep it fresh (docs/short-lived-tokens.md)",
			wantCPS: "ecr",
		},
		{
			name: "copy, annotation past but status says refreshed (same token): not blamed", pod: newPod(lists("ecr"), refusedWith(kubeletsim.Forbidden, ecrImage)),
			secrets: secrets(copyOf(secretWith("ecr", ecrHost, "AWS", "opaque-token"), "ecr", now.Add(-3*hour))),
			cps:     map[string]diagnose.Owner{"ecr": {Object: providerCPS(now.Add(3*hour), 0, "")}},
			want:    []string{diagnose.CodeForbidden},
		},
		{
			name: "copy, status says expired, refreshes failing", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(secretWith("ecr", ecrHost, "AWS", "opaque-token"), "ecr", now.Add(2*hour))),
			cps:     map[string]diagnose.Owner{"ecr": {Object: providerCPS(now.Add(-90*time.Minute), 7, failing)}},
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn: []string{
				"expired at 2026-03-04T10:30:00Z (90m ago, per status.credential of ClusterPullSecret ecr)",
				"it is a copy kept by ClusterPullSecret ecr, whose plugin ecr-credential-provider failed its last 7 refreshes (last error: " + failing + ")",
			},
			wantFix: "kubectl describe clusterpullsecret ecr   # its CredentialRefreshed condition says why; check the cloud identity plugin ecr-credential-provider runs with (docs/short-lived-tokens.md)",
			wantCPS: "ecr",
		},
		{
			name: "copy, status expired, no failure recorded", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(secretWith("ecr", ecrHost, "AWS", "opaque-token"), "ecr", time.Time{})),
			cps:     map[string]diagnose.Owner{"ecr": {Object: providerCPS(now.Add(-hour), 0, "")}},
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn:  []string{"has not refreshed it and records no failure: is the controller running?"},
			wantCPS: "ecr",
		},
		{
			name: "copy holding an expired ECR token while the ClusterPullSecret holds a fresh one", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(ecrSecret("ecr", now.Add(-hour)), "ecr", now.Add(-hour))),
			cps:     map[string]diagnose.Owner{"ecr": {Object: providerCPS(now.Add(5*hour), 0, "")}},
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn: []string{
				"(60m ago, by the ECR token's own expiration)",
				"whose plugin ecr-credential-provider holds a fresh token (until 2026-03-04T17:00:00Z) that this copy did not get",
			},
			wantFix: "kubectl describe clusterpullsecret ecr   # its status (failingNamespaces, conditions) says why this namespace's copy is not current",
			wantCPS: "ecr",
		},
		{
			name:    "copy's ECR token still valid though the status says expired (ECR tokens outlive cacheDuration): not blamed",
			pod:     newPod(lists("ecr"), refusedWith(kubeletsim.Forbidden, ecrImage)),
			secrets: secrets(copyOf(ecrSecret("ecr", now.Add(5*hour)), "ecr", now.Add(-hour))),
			cps:     map[string]diagnose.Owner{"ecr": {Object: providerCPS(now.Add(-hour), 3, failing)}},
			want:    []string{diagnose.CodeForbidden},
		},
		{
			name: "copy of a Secret source holding an ECR token", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(ecrSecret("ecr", now.Add(-hour)), "ecr", time.Time{})),
			cps: map[string]diagnose.Owner{"ecr": {Object: &v1alpha1.ClusterPullSecret{
				ObjectMeta: metav1.ObjectMeta{Name: "ecr", UID: cpsUID},
				Spec:       v1alpha1.ClusterPullSecretSpec{Source: v1alpha1.SourceReference{Namespace: "platform", Name: "ecr-login"}},
			}}},
			want:    []string{diagnose.CodeCredentialExpired},
			wantCPS: "ecr",
			wantIn:  []string{"it is ClusterPullSecret ecr's copy of Secret platform/ecr-login, which holds the expired token: nothing refreshes a Secret source"},
			wantFix: "aws ecr get-login-password --region us-west-2 | kubectl pullsecrets create ecr-login -n platform --overwrite --docker-server=" + ecrHost +
				" --docker-username=AWS --docker-password-stdin   # or give ClusterPullSecret ecr a provider source, which keeps it fresh (docs/short-lived-tokens.md)",
		},
		{
			name: "copy left by an earlier ClusterPullSecret of the same name: its status is not about it", pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)),
			secrets: secrets(copyOf(secretWith("ecr", ecrHost, "AWS", "opaque-token"), "ecr", time.Time{})),
			cps: map[string]diagnose.Owner{"ecr": {Object: func() *v1alpha1.ClusterPullSecret {
				c := providerCPS(now.Add(-hour), 2, failing)
				c.UID = types.UID("another-uid")
				return c
			}()}},
			want: []string{diagnose.CodeForbidden},
		},
		{
			name: "hand-made, annotated, 401: replaces CredentialsRejected", pod: newPod(lists("regcred"), refusedWith(kubeletsim.Unauthorized, image)),
			secrets: secrets(func() *corev1.Secret {
				s := pullSecret("regcred", "registry.example.com")
				s.Annotations = map[string]string{v1alpha1.ExpiresAtAnnotation: now.Add(-10 * time.Minute).Format(time.RFC3339)}
				return s
			}()),
			want:   []string{diagnose.CodeCredentialExpired},
			wantIn: []string{"(401 Unauthorized): pull secret regcred holds a registry token that expired at 2026-03-04T11:50:00Z (10m ago, per its pullsecrets.dev/expires-at annotation)"},
			wantFix: "kubectl pullsecrets create regcred -n shop --overwrite --docker-server=registry.example.com --docker-username=ci-bot --docker-password-stdin --verify --verify-image " + image +
				"   # or let a ClusterPullSecret with a provider source keep it fresh (docs/short-lived-tokens.md)",
		},
		{
			name: "pull access denied with an expired token", pod: newPod(lists("ecr"), refusedWith(kubeletsim.AccessDenied, ecrImage)),
			secrets: secrets(ecrSecret("ecr", now.Add(-2*hour))),
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn:  []string{"(pull access denied)"},
		},
		{
			name: "two credentials, only the first expired: both told", pod: newPod(lists("old", "regcred"), refusedWith(kubeletsim.Forbidden, image)),
			secrets: secrets(func() *corev1.Secret {
				s := pullSecret("old", "registry.example.com")
				s.Annotations = map[string]string{v1alpha1.ExpiresAtAnnotation: now.Add(-hour).Format(time.RFC3339)}
				return s
			}(), pullSecret("regcred", "registry.example.com")),
			want:   []string{diagnose.CodeCredentialExpired, diagnose.CodeForbidden},
			wantIn: []string{"pull secret old holds a registry token that expired"},
		},
		{
			name: "the registry's own word (CRI-O prints ECR's text), no date known",
			pod: newPod(lists("regcred"), refusedText(ecrImage, fmt.Sprintf("rpc error: code = Unknown desc = reading manifest 1.0 in %s/shop/web: "+
				"denied: Your authorization token has expired. Reauthenticate and try again.", ecrHost))),
			secrets: secrets(secretWith("regcred", ecrHost, "AWS", "opaque-token")),
			want:    []string{diagnose.CodeCredentialExpired},
			wantIn:  []string{"(authorization token has expired): pull secret regcred holds a registry token that has expired (the registry says so; nothing here tells when)"},
		},
		{
			name: "unparsable expires-at: unknown, not blamed", pod: newPod(lists("regcred"), refusedWith(kubeletsim.Forbidden, image)),
			secrets: secrets(func() *corev1.Secret {
				s := pullSecret("regcred", "registry.example.com")
				s.Annotations = map[string]string{v1alpha1.ExpiresAtAnnotation: "yesterday"}
				return s
			}()),
			want: []string{diagnose.CodeForbidden},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			d := diagnose.Pod(diagnose.Input{Pod: tt.pod, ServiceAccount: sa(created), Secrets: tt.secrets, Events: tt.events,
				ClusterPullSecrets: tt.cps, Now: now})
			g.Expect(codes(d.Problems)).To(Equal(tt.want), "%+v", d.Problems)
			g.Expect(d.ClusterPullSecretsToRead()).To(ConsistOf(tt.toRead))
			noSecretIn(g, d, tt.secrets)
			if len(d.Problems) == 0 {
				return
			}
			p := d.Problems[0]
			for _, want := range tt.wantIn {
				g.Expect(p.Message).To(ContainSubstring(want))
			}
			if tt.wantFix != "" {
				g.Expect(p.Fix).To(Equal(tt.wantFix))
			}
			if p.Code == diagnose.CodeCredentialExpired {
				g.Expect(p.Secret).NotTo(BeEmpty())
				g.Expect(p.Container).To(Equal("web"))
				g.Expect(p.ClusterPullSecret).To(Equal(tt.wantCPS))
			}
		})
	}
}

// noSecretIn checks every form of the diagnosis for the passwords of the
// Secrets, the auth strings and the parts of ECR tokens.
func noSecretIn(g Gomega, d diagnose.Diagnosis, secrets map[string]*corev1.Secret) {
	raw, err := json.Marshal(d)
	g.Expect(err).NotTo(HaveOccurred())
	out := string(raw) + fmt.Sprintf("%+v %#v %v", d, d, d)
	forbidden := []string{password, ecrPayload, ecrDataKey, "opaque-token"}
	for _, s := range secrets {
		for _, entry := range parsedEntries(s) {
			forbidden = append(forbidden, entry.Password, entry.Auth, base64.StdEncoding.EncodeToString([]byte(entry.Password)))
		}
	}
	for _, f := range forbidden {
		if f != "" {
			g.Expect(out).NotTo(ContainSubstring(f))
		}
	}
}

type entry struct {
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

func parsedEntries(s *corev1.Secret) []entry {
	var doc struct {
		Auths map[string]entry `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &doc); err != nil {
		return nil
	}
	var out []entry
	for _, e := range doc.Auths {
		out = append(out, e)
	}
	return out
}

func TestCredentialExpiredWithVerification(t *testing.T) {
	t.Parallel()
	in := diagnose.Input{Pod: newPod(lists("ecr"), refusedWith(kubeletsim.ExpiredToken, ecrImage)), ServiceAccount: sa(created),
		Secrets: secrets(ecrSecret("ecr", now.Add(-time.Hour))), Now: now}
	for status, want := range map[registrycheck.Status][]string{
		// The registry takes the token: it had not expired, whatever dated it.
		registrycheck.StatusOK: {diagnose.CodeRegistryOK},
		// The registry confirms the refusal: the expiry explains it.
		registrycheck.StatusForbidden: {diagnose.CodeCredentialExpired, diagnose.CodeForbidden},
	} {
		t.Run(string(status), func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			d := diagnose.Pod(in)
			g.Expect(codes(d.Problems)).To(Equal([]string{diagnose.CodeCredentialExpired}))
			g.Expect(d.VerifyRequests()).To(HaveLen(1))
			d.ApplyVerification([]registrycheck.Result{{Status: status, Message: "checked"}})
			g.Expect(codes(d.Problems)).To(Equal(want))
		})
	}
}

func TestExpiredTokenIsClassifiedLikeForbidden(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	text := kubeletsim.PullError(kubeletsim.ExpiredToken, ecrImage)
	g.Expect(diagnose.Classify(text)).To(Equal(diagnose.PullForbidden), "containerd shows only the 403: the token tells the rest")
	g.Expect(text).To(Equal(kubeletsim.PullError(kubeletsim.Forbidden, ecrImage)))
	g.Expect(strings.ToLower(text)).NotTo(ContainSubstring("expired"))
	g.Expect(diagnose.Classify("denied: Your authorization token has expired. Reauthenticate and try again.")).To(Equal(diagnose.PullTokenExpired))
}
