package doctor_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

const (
	ecrHost  = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	ecrImage = ecrHost + "/shop/web:1.0"
	// The secret parts of an ECR token, and a token as the fake ECR
	// endpoint mints them for the controller's copies.
	ecrPayload = "PAYLOAD-doctor-s3cret"
	ecrDataKey = "DATAKEY-doctor-s3cret"
	fakeToken  = "ecr-7-0c9f2d1e8b7a6f5e"
	lastError  = `Exited: credential provider plugin "ecr-credential-provider" (image "` + ecrHost + `"): exited with status 1 after 1.204s ` +
		`(stdout 0 bytes, stderr 412 bytes, not shown: plugin output may hold credentials)`
)

// ecrToken is what `aws ecr get-login-password` prints: base64 of a JSON
// document whose expiration is in Unix seconds.
func ecrToken(expires time.Time) string {
	doc := fmt.Sprintf(`{"payload":%q,"datakey":%q,"version":"2","type":"DATA_KEY","expiration":%d}`, ecrPayload, ecrDataKey, expires.Unix())
	return base64.StdEncoding.EncodeToString([]byte(doc))
}

func ecrSecret(ns, name, token string) *corev1.Secret {
	data, err := credentials.Build(ecrHost, "AWS", token, "")
	if err != nil {
		panic(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
}

// copyOf marks s as the controller marks its copies of ClusterPullSecret
// owner (uid), with the expiry of the credential.
func copyOf(s *corev1.Secret, owner, uid string, expires time.Time) *corev1.Secret {
	s.Labels = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: owner}
	s.Annotations = map[string]string{
		v1alpha1.OwnerUIDAnnotation:  uid,
		v1alpha1.SourceAnnotation:    "pullsecrets-system/" + v1alpha1.ProviderSecretPrefix + owner,
		v1alpha1.ExpiresAtAnnotation: expires.UTC().Format(time.RFC3339),
	}
	return s
}

var (
	timestamp = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z`)
	uidRE     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

// normaliseTimes replaces the absolute times, which move with the clock,
// for golden files; the relative ones ("120m ago") stay.
func normaliseTimes(out string) string {
	return uidRE.ReplaceAllString(timestamp.ReplaceAllString(out, "TIME"), "UID")
}

// noSecretBytes checks an output for every form of the passwords.
func noSecretBytes(g Gomega, out string, passwords ...string) {
	for _, p := range append(passwords, ecrPayload, ecrDataKey, fakeToken) {
		for _, form := range []string{p, base64.StdEncoding.EncodeToString([]byte(p)), base64.StdEncoding.EncodeToString([]byte("AWS:" + p))} {
			g.Expect(out).NotTo(ContainSubstring(form))
		}
	}
}

// TestDoctorExplainsExpiredTokens fails Pods on an ECR image with the
// node's text for an expired token (403 Forbidden) and checks what doctor
// dates and blames.
func TestDoctorExplainsExpiredTokens(t *testing.T) {
	c := testcluster.Get(t)
	tests := []struct {
		name string
		// secrets are made from now, taken in the subtest, so that "120m
		// ago" holds however long the others take.
		secrets  func(ns string, expired, soon time.Time) []*corev1.Secret
		cause    kubeletsim.Cause
		wantCode string
		wantIn   []string
		wantOut  []string
	}{
		{
			// The copy's ClusterPullSecret is gone (one GET, NotFound): the
			// annotation dates it, and nothing refreshes it any more.
			name: "credential-expired-copy", cause: kubeletsim.ExpiredToken, wantCode: diagnose.CodeCredentialExpired,
			secrets: func(ns string, expired, _ time.Time) []*corev1.Secret {
				return []*corev1.Secret{copyOf(ecrSecret(ns, "ecr", fakeToken), ns+"-gone", "00000000-0000-0000-0000-0000000000aa", expired)}
			},
			wantIn: []string{"(120m ago, per its pullsecrets.dev/expires-at annotation)", "which no longer exists, so nothing refreshes it",
				"fix: aws ecr get-login-password --region us-west-2 | kubectl pullsecrets create ecr -n "},
		},
		{
			name: "credential-expired-hand-made", cause: kubeletsim.ExpiredToken, wantCode: diagnose.CodeCredentialExpired,
			secrets: func(ns string, expired, _ time.Time) []*corev1.Secret {
				return []*corev1.Secret{ecrSecret(ns, "ecr", ecrToken(expired))}
			},
			wantIn: []string{"(120m ago, by the ECR token's own expiration)", "it was made by hand and nothing refreshes it",
				"fix: aws ecr get-login-password --region us-west-2 | kubectl pullsecrets create ecr -n "},
		},
		{
			// Stuck for another reason (403: no access to the repository)
			// with a token that expires in 5 minutes: not blamed.
			name: "credential-not-expired", cause: kubeletsim.Forbidden, wantCode: diagnose.CodeForbidden,
			secrets: func(ns string, _, soon time.Time) []*corev1.Secret {
				return []*corev1.Secret{ecrSecret(ns, "ecr", ecrToken(soon))}
			},
			wantOut: []string{diagnose.CodeCredentialExpired, "expire"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := c.Namespace(t)
			now := time.Now()
			expired, soon := now.Add(-2*time.Hour), now.Add(5*time.Minute)
			secrets := func(ns string) []*corev1.Secret { return tt.secrets(ns, expired, soon) }
			setup(t, c.Client, ns, scenario{saBefore: []string{"ecr"}, secrets: secrets, image: ecrImage,
				sim: &kubeletsim.Options{Cause: tt.cause, BackOff: true}})
			rq := &clitest.Requests{}
			res := clitest.RunRecorded(t, c.Kubeconfig, rq, "doctor", "-n", ns)
			g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
			g.Expect(res.Stderr).To(Equal(`1 Pod failing to pull in namespace "`+ns+`".`+"\n"), "the summary goes to stderr, and nothing else")
			g.Expect(res.Stdout).To(ContainSubstring(tt.wantCode + " (container web) [error]"))
			for _, want := range tt.wantIn {
				g.Expect(res.Stdout).To(ContainSubstring(want))
			}
			for _, not := range tt.wantOut {
				g.Expect(normalise(res.Stdout, ns)).NotTo(ContainSubstring(not))
			}
			noSecretBytes(g, res.Stdout+res.Stderr)
			golden(t, tt.name, normaliseTimes(normalise(res.Stdout, ns)))

			cpsReads := rq.Count(func(r clitest.Request) bool { return r.Resource() == "clusterpullsecrets" })
			if tt.name == "credential-expired-copy" {
				g.Expect(cpsReads).To(Equal(1), "one GET of the copy's ClusterPullSecret")
			} else {
				g.Expect(cpsReads).To(BeZero(), "no ClusterPullSecret is read for a Secret made by hand")
			}

			js := clitest.Run(t, c.Kubeconfig, "", "doctor", "-n", ns, "-o", "json")
			noSecretBytes(g, js.Stdout+js.Stderr)
			var report struct {
				Pods []diagnose.Diagnosis `json:"pods"`
			}
			g.Expect(json.Unmarshal([]byte(js.Stdout), &report)).To(Succeed())
			g.Expect(report.Pods).To(HaveLen(1))
			p := report.Pods[0].Problems[0]
			g.Expect(p.Code).To(Equal(tt.wantCode))
			if p.Code == diagnose.CodeCredentialExpired {
				g.Expect(p.Secret).To(Equal("ecr"))
				g.Expect(p.ExpiresAt).NotTo(BeNil())
				g.Expect(p.ExpiresAt.Unix()).To(Equal(expired.Unix()))
			}
		})
	}
}

// TestDoctorReadsTheClusterPullSecretStatus: a copy whose
// ClusterPullSecret (provider source) says in its status that the
// credential expired and the plugin fails. The status is read with one
// GET; a user who may not read ClusterPullSecrets gets the annotation's
// date instead, and no error.
func TestDoctorReadsTheClusterPullSecretStatus(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	now := time.Now()
	expired := now.Add(-2 * time.Hour)
	name := ns // cluster-scoped: unique per test, normalised in golden files

	dyn, err := dynamic.NewForConfig(c.Config)
	g.Expect(err).NotTo(HaveOccurred())
	cps := createProviderCPS(t, dyn, name, expired, now)
	uid := string(cps.GetUID())

	setup(t, c.Client, ns, scenario{saBefore: []string{"ecr"}, image: ecrImage,
		secrets: func(ns string) []*corev1.Secret {
			// The annotation still says the token lives: the status is authoritative.
			return []*corev1.Secret{copyOf(ecrSecret(ns, "ecr", fakeToken), name, uid, now.Add(4*time.Hour))}
		},
		sim: &kubeletsim.Options{Cause: kubeletsim.ExpiredToken, BackOff: true}})

	rq := &clitest.Requests{}
	res := clitest.RunRecorded(t, c.Kubeconfig, rq, "doctor", "-n", ns)
	g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
	g.Expect(res.Stderr).To(Equal(`1 Pod failing to pull in namespace "` + ns + `".` + "\n"))
	g.Expect(res.Stdout).To(ContainSubstring("CredentialExpired (container web) [error]"))
	g.Expect(res.Stdout).To(ContainSubstring("(120m ago, per status.credential of ClusterPullSecret " + name + ")"))
	g.Expect(res.Stdout).To(ContainSubstring("whose plugin ecr-credential-provider failed its last 12 refreshes (last error: " + lastError + ")"))
	g.Expect(res.Stdout).To(ContainSubstring("fix: kubectl describe clusterpullsecret " + name + "   # its CredentialRefreshed condition says why"))
	noSecretBytes(g, res.Stdout+res.Stderr)
	golden(t, "credential-expired-cluster-pull-secret", normaliseTimes(normalise(res.Stdout, ns)))
	gets := rq.Count(func(r clitest.Request) bool {
		return r.Resource() == "clusterpullsecrets" && r.Method == "GET" && strings.HasSuffix(r.Path, "/"+name)
	})
	g.Expect(gets).To(Equal(1))

	// A user with rights in the namespace only: the GET is forbidden, which
	// only makes the status unknown; the copy's annotation says the token
	// lives, so the 403 is not blamed on expiry.

	user := "doctor-" + ns
	grantNamespaceReader(t, ns, user)
	sar, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(testcluster.Context(t), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "clusterpullsecrets", Name: name,
		}},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sar.Status.Allowed).To(BeFalse(), "the user must not be able to read the ClusterPullSecret")
	var limited clitest.Result
	g.Eventually(func(g Gomega) {
		rq.Reset()
		limited = clitest.RunRecorded(t, c.Kubeconfig, rq, "--as", user, "doctor", "-n", ns)
		g.Expect(limited.Stderr).To(Equal(`1 Pod failing to pull in namespace "`+ns+`".`+"\n"), "the RoleBinding takes effect, and the forbidden GET is no error")
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(limited.Code).To(Equal(1), limited.Stdout)
	g.Expect(rq.Count(func(r clitest.Request) bool { return r.Resource() == "clusterpullsecrets" })).To(Equal(1), "the GET was tried")
	g.Expect(limited.Stdout).To(ContainSubstring("Forbidden (container web) [error]"))
	g.Expect(limited.Stdout).NotTo(ContainSubstring(diagnose.CodeCredentialExpired))
	noSecretBytes(g, limited.Stdout+limited.Stderr)
}

// createProviderCPS creates a ClusterPullSecret with a provider source and
// writes, through the status subresource, what the controller writes when
// the plugin keeps failing past the credential's expiry.
func createProviderCPS(t *testing.T, dyn dynamic.Interface, name string, expired, now time.Time) *unstructured.Unstructured {
	t.Helper()
	ctx := testcluster.Context(t)
	res := dyn.Resource(v1alpha1.GroupVersion.WithResource("clusterpullsecrets"))
	cps := &v1alpha1.ClusterPullSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ClusterPullSecret"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterPullSecretSpec{
			Source:     v1alpha1.SourceReference{Provider: &v1alpha1.CredentialProviderSource{Name: "ecr-credential-provider", Image: ecrHost}},
			SecretName: "ecr",
			Namespaces: v1alpha1.NamespaceSelector{Include: []string{name}},
		},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cps)
	if err != nil {
		t.Fatal(err)
	}
	created, err := res.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Delete(ctx, name, metav1.DeleteOptions{}) })

	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(created.Object, cps); err != nil {
		t.Fatal(err)
	}
	at := func(t time.Time) *metav1.Time { mt := metav1.NewTime(t.Truncate(time.Second)); return &mt }
	cps.Status.Credential = &v1alpha1.CredentialStatus{
		ObtainedAt: at(expired.Add(-6 * time.Hour)), ExpiresAt: at(expired), NextRefreshAt: at(now.Add(time.Minute)),
		Failures: 12, LastError: lastError,
	}
	meta.SetStatusCondition(&cps.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionCredentialRefreshed, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonRefreshFailed, Message: "plugin ecr-credential-provider failed 12 times in a row: " + lastError})
	meta.SetStatusCondition(&cps.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ReasonCredentialExpired, Message: "the credential in the copies expired"})
	if obj, err = runtime.DefaultUnstructuredConverter.ToUnstructured(cps); err != nil {
		t.Fatal(err)
	}
	updated, err := res.UpdateStatus(ctx, &unstructured.Unstructured{Object: obj}, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return updated
}

// grantNamespaceReader lets user read what doctor reads in ns, and nothing
// cluster-wide.
func grantNamespaceReader(t *testing.T, ns, user string) {
	t.Helper()
	ctx := testcluster.Context(t)
	client := testcluster.Get(t).Client
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "doctor"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "serviceaccounts", "secrets", "events"},
			Verbs: []string{"get", "list"}}},
	}
	if _, err := client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "doctor"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "doctor"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
