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
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

const (
	image    = "registry.example.com/shop/web:1.0"
	password = "s3cret-Pa55word"
)

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func pullSecret(name, server string) *corev1.Secret {
	data, err := credentials.Build(server, "ci-bot", password, "")
	if err != nil {
		panic(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
}

func brokenSecret(name string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte("no-colon-here"))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"` + auth + `"}}}`)},
	}
}

func opaque(name string) *corev1.Secret {
	s := pullSecret(name, "registry.example.com")
	s.Type = corev1.SecretTypeOpaque
	return s
}

type podOpt func(*corev1.Pod)

func owned(kind, name string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr.To(true), APIVersion: "apps/v1"}}
		if kind == "ReplicaSet" {
			p.Labels = map[string]string{"pod-template-hash": "7d9f"}
		}
	}
}

func lists(names ...string) podOpt {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
		}
	}
}

func waiting(reason, message string) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "web", Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		}}
	}
}

func failing(cause kubeletsim.Cause) podOpt {
	return func(p *corev1.Pod) {
		waiting("ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", image, kubeletsim.PullError(cause, image)))(p)
	}
}

func newPod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-7d9f-x2x4z", UID: "uid-1", CreationTimestamp: metav1.NewTime(created)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// sa returns a ServiceAccount whose imagePullSecrets last changed at
// changed (managedFields), listing names.
func sa(changed time.Time, names ...string) *corev1.ServiceAccount {
	s := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default"}}
	for _, n := range names {
		s.ImagePullSecrets = append(s.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	if len(names) > 0 {
		s.ManagedFields = []metav1.ManagedFieldsEntry{{
			Manager: "kubectl-pullsecrets", Operation: metav1.ManagedFieldsOperationUpdate, Time: ptr.To(metav1.NewTime(changed)),
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:imagePullSecrets":{}}`),
		}}
	}
	return s
}

func secrets(list ...*corev1.Secret) map[string]*corev1.Secret {
	m := map[string]*corev1.Secret{}
	for _, s := range list {
		m[s.Name] = s
	}
	return m
}

func codes(ps []diagnose.Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}

func TestPod(t *testing.T) {
	t.Parallel()
	later, earlier := created.Add(time.Hour), created.Add(-time.Hour)
	missingEvent := corev1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-7d9f-x2x4z", UID: "uid-1"},
		Reason:         diagnose.EventFailedToRetrieveImagePullSecret,
		Message:        "Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed.",
	}
	tests := []struct {
		name      string
		pod       *corev1.Pod
		sa        *corev1.ServiceAccount
		secrets   map[string]*corev1.Secret
		events    []corev1.Event
		want      []string
		wantFix   string
		wantInMsg string
		failing   bool
	}{
		{
			name: "running Pod: nothing", pod: newPod(lists("regcred")), sa: sa(earlier, "regcred"),
			secrets: secrets(pullSecret("regcred", "registry.example.com")), want: []string{},
		},
		{
			name: "created before the ServiceAccount got the secret", pod: newPod(owned("ReplicaSet", "web-7d9f"), failing(kubeletsim.Unauthorized)),
			sa: sa(later, "regcred"), secrets: secrets(pullSecret("regcred", "registry.example.com")),
			want: []string{diagnose.CodeCreatedBeforeAttach}, failing: true,
			wantFix: "kubectl pullsecrets restart -n shop", wantInMsg: "was created before ServiceAccount default got regcred",
		},
		{
			name: "created when the ServiceAccount had an older list", pod: newPod(owned("ReplicaSet", "web-7d9f"), lists("old"), failing(kubeletsim.Unauthorized)),
			sa: sa(later, "old", "regcred"), secrets: secrets(pullSecret("old", "other.example.com"), pullSecret("regcred", "registry.example.com")),
			want: []string{diagnose.CodeCreatedBeforeAttach}, failing: true,
			wantInMsg: "listed only old, before it got regcred",
		},
		{
			name: "own list hides the ServiceAccount's", pod: newPod(owned("ReplicaSet", "web-7d9f"), lists("team"), failing(kubeletsim.Unauthorized)),
			sa: sa(earlier, "regcred"), secrets: secrets(pullSecret("team", "other.example.com"), pullSecret("regcred", "registry.example.com")),
			want: []string{diagnose.CodeListHidesServiceAccount}, failing: true,
			wantFix:   `kubectl -n shop patch deployment/web --type=json -p '[{"op":"add","path":"/spec/template/spec/imagePullSecrets/-","value":{"name":"regcred"}}]'`,
			wantInMsg: "which hide those of ServiceAccount default",
		},
		{
			name: "missing secret", pod: newPod(lists("regcred"), failing(kubeletsim.Unauthorized)), sa: sa(earlier, "regcred"),
			secrets: secrets(), events: []corev1.Event{missingEvent},
			want: []string{diagnose.CodeSecretMissing, diagnose.CodeNoCredential}, failing: true,
			wantFix:   "kubectl pullsecrets create regcred -n shop --docker-server=registry.example.com --docker-username=USER --docker-password-stdin",
			wantInMsg: "the kubelet reported FailedToRetrieveImagePullSecret",
		},
		{
			name: "wrong type", pod: newPod(lists("regcred"), failing(kubeletsim.Unauthorized)), sa: sa(earlier, "regcred"),
			secrets: secrets(opaque("regcred")),
			want:    []string{diagnose.CodeSecretWrongType, diagnose.CodeNoCredential}, failing: true,
			wantInMsg: "WrongType",
		},
		{
			name: "unparsable secret fails before any pull", pod: newPod(lists("regcred"), waiting(kubeletsim.DefaultKeyringError, kubeletsim.DefaultKeyringError)),
			sa: sa(earlier, "regcred"), secrets: secrets(brokenSecret("regcred")),
			want: []string{diagnose.CodeSecretUnparsable}, failing: true,
			wantFix:   "kubectl pullsecrets create regcred -n shop --docker-server=registry.example.com --docker-username=USER --docker-password-stdin --overwrite",
			wantInMsg: "fails every image pull of the Pod",
		},
		{
			name: "no key matches", pod: newPod(lists("regcred"), failing(kubeletsim.Unauthorized)), sa: sa(earlier, "regcred"),
			secrets: secrets(pullSecret("regcred", "registry.example.com:5000")),
			want:    []string{diagnose.CodeNoCredential}, failing: true,
			wantInMsg: "the kubelet compares ports exactly",
		},
		{
			name: "credentials rejected", pod: newPod(lists("regcred"), failing(kubeletsim.Unauthorized)), sa: sa(earlier, "regcred"),
			secrets: secrets(pullSecret("regcred", "registry.example.com")),
			want:    []string{diagnose.CodeCredentialsRejected}, failing: true,
			wantFix:   "kubectl pullsecrets create regcred -n shop --overwrite --docker-server=registry.example.com --docker-username=ci-bot --docker-password-stdin --verify --verify-image " + image,
			wantInMsg: "rejected the credentials the kubelet sent for " + image + " (401 Unauthorized): regcred (registry.example.com, user ci-bot)",
		},
		{
			name: "forbidden", pod: newPod(lists("regcred"), failing(kubeletsim.Forbidden)), sa: sa(earlier, "regcred"),
			secrets: secrets(pullSecret("regcred", "registry.example.com")), want: []string{diagnose.CodeForbidden}, failing: true,
		},
		{
			name: "access denied", pod: newPod(lists("regcred"), failing(kubeletsim.AccessDenied)), sa: sa(earlier, "regcred"),
			secrets: secrets(pullSecret("regcred", "registry.example.com")), want: []string{diagnose.CodeAccessDenied}, failing: true,
		},
		{
			name: "not found", pod: newPod(owned("StatefulSet", "db"), lists("regcred"), failing(kubeletsim.NotFound)), sa: sa(earlier, "regcred"),
			secrets: secrets(pullSecret("regcred", "registry.example.com")), want: []string{diagnose.CodeImageNotFound}, failing: true,
			wantFix: "kubectl -n shop set image statefulset/db web=IMAGE:TAG",
		},
		{
			name: "unreachable", pod: newPod(lists("regcred"), failing(kubeletsim.Unreachable)), sa: sa(earlier, "regcred"),
			secrets: secrets(pullSecret("regcred", "registry.example.com")), want: []string{diagnose.CodeRegistryUnreachable}, failing: true,
		},
		{
			name: "no pull secret anywhere", pod: newPod(failing(kubeletsim.Unauthorized)), sa: sa(earlier),
			secrets: secrets(), want: []string{diagnose.CodeNoCredential}, failing: true,
			wantFix: "kubectl pullsecrets create registry-example-com -n shop --docker-server=registry.example.com --docker-username=USER --docker-password-stdin --attach default && kubectl pullsecrets restart -n shop",
		},
		{
			name: "enforce-mountable-secrets", pod: newPod(lists("team")),
			sa: func() *corev1.ServiceAccount {
				s := sa(earlier, "regcred")
				s.Annotations = map[string]string{diagnose.EnforceMountableSecretsAnnotation: "true"}
				return s
			}(),
			secrets: secrets(pullSecret("team", "registry.example.com")), want: []string{diagnose.CodeNotMountable},
			wantFix: "kubectl pullsecrets attach team -n shop --service-account default",
		},
		{
			name: "ServiceAccount gone", pod: newPod(lists("regcred"), failing(kubeletsim.Forbidden)),
			secrets: secrets(pullSecret("regcred", "registry.example.com")),
			want:    []string{diagnose.CodeServiceAccountMissing, diagnose.CodeForbidden}, failing: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			d := diagnose.Pod(diagnose.Input{Pod: tt.pod, ServiceAccount: tt.sa, Secrets: tt.secrets, Events: tt.events})
			g.Expect(codes(d.Problems)).To(Equal(tt.want), "%+v", d.Problems)
			g.Expect(d.Failing).To(Equal(tt.failing))
			if len(d.Problems) == 0 {
				return
			}
			if tt.wantFix != "" {
				g.Expect(d.Problems[0].Fix).To(Equal(tt.wantFix))
			}
			if tt.wantInMsg != "" {
				g.Expect(d.Problems[0].Message).To(ContainSubstring(tt.wantInMsg))
			}
			raw, err := json.Marshal(d)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(raw)).NotTo(ContainSubstring(password))
			g.Expect(fmt.Sprintf("%+v %#v", d, d)).NotTo(ContainSubstring(password))
		})
	}
}

func TestApplyVerification(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	pod := newPod(lists("regcred"), failing(kubeletsim.Unauthorized))
	d := diagnose.Pod(diagnose.Input{Pod: pod, ServiceAccount: sa(created, "regcred"), Secrets: secrets(pullSecret("regcred", "registry.example.com"))})
	reqs := d.VerifyRequests()
	g.Expect(reqs).To(HaveLen(1))
	g.Expect(reqs[0].Image).To(Equal(image))
	g.Expect(reqs[0].Credentials).To(HaveLen(1))
	g.Expect(reqs[0].Credentials[0].Password).To(Equal(password))

	d.ApplyVerification([]registrycheck.Result{{Status: registrycheck.StatusNotFound, Message: "tag 1.0 is not in repository shop/web"}})
	g.Expect(codes(d.Problems)).To(Equal([]string{diagnose.CodeImageNotFound}))
	g.Expect(d.Problems[0].Verified).To(BeTrue())
	g.Expect(d.Problems[0].Message).To(HavePrefix("registry check: tag 1.0"))
}

func TestServiceAccount(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	s := sa(created, "ok", "missing", "opaque", "broken", "ok")
	ps := diagnose.ServiceAccount(s, secrets(pullSecret("ok", "registry.example.com"), opaque("opaque"), brokenSecret("broken")), diagnose.SecretsRead)
	g.Expect(codes(ps)).To(Equal([]string{diagnose.CodeSecretMissing, diagnose.CodeSecretWrongType, diagnose.CodeSecretUnparsable}))
	for _, p := range ps {
		g.Expect(p.Fix).To(HavePrefix("kubectl pullsecrets create " + p.Secret + " -n shop"))
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for cause, want := range map[kubeletsim.Cause]diagnose.PullError{
		kubeletsim.Unauthorized: diagnose.PullUnauthorized,
		kubeletsim.AccessDenied: diagnose.PullAccessDenied,
		kubeletsim.Forbidden:    diagnose.PullForbidden,
		kubeletsim.NotFound:     diagnose.PullNotFound,
		kubeletsim.Unreachable:  diagnose.PullUnreachable,
		kubeletsim.ExpiredToken: diagnose.PullForbidden,
	} {
		for _, img := range []string{image, "nginx", "localhost:5000/a/b@sha256:" + strings.Repeat("a", 64)} {
			if got := diagnose.Classify(kubeletsim.PullError(cause, img)); got != want {
				t.Errorf("%s %s: got %q, want %q", cause, img, got, want)
			}
		}
	}
	for text, want := range map[string]diagnose.PullError{
		kubeletsim.DefaultKeyringError:                                                diagnose.PullKeyring,
		"illegal base64 data at input byte 4":                                         diagnose.PullKeyring,
		"x509: certificate signed by unknown authority":                               diagnose.PullTLS,
		"something else entirely":                                                     diagnose.PullUnknown,
		"Get https://r/v2/: dial tcp 10.0.0.9:443: i/o timeout":                       diagnose.PullUnreachable,
		"failed to resolve reference: docker.io/x/y:1: not found":                     diagnose.PullNotFound,
		"unexpected status: 403 Forbidden":                                            diagnose.PullForbidden,
		"denied: Your authorization token has expired. Reauthenticate and try again.": diagnose.PullTokenExpired,
	} {
		if got := diagnose.Classify(text); got != want {
			t.Errorf("%q: got %q, want %q", text, got, want)
		}
	}
}
