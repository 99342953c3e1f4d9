package diagnose_test

import (
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

func phase(p corev1.PodPhase) podOpt { return func(pod *corev1.Pod) { pod.Status.Phase = p } }

func running() podOpt {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: image, ImageID: "sha256:abc",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	}
}

// TestPendingPodThatWillFail: a Pod that has not pulled yet, created
// before its ServiceAccount got the pull secret that matches its image,
// is reported before it fails; one that got it, that runs, or whose
// ServiceAccount's secrets do not match, is not.
func TestPendingPodThatWillFail(t *testing.T) {
	t.Parallel()
	later, earlier := created.Add(time.Hour), created.Add(-time.Hour)
	good := secrets(pullSecret("regcred", "registry.example.com"), pullSecret("team", "other.example.com"))
	tests := []struct {
		name    string
		pod     *corev1.Pod
		sa      *corev1.ServiceAccount
		want    []string
		pending bool
		fix     string
	}{
		{"created before the attach, no status yet", newPod(owned("ReplicaSet", "web-7d9f")), sa(later, "regcred"),
			[]string{diagnose.CodeCreatedBeforeAttach}, true, "kubectl -n shop delete pod web-7d9f-x2x4z   # restart waits until it fails; its ReplicaSet/web-7d9f recreates it with the ServiceAccount's pull secrets"},
		{"created before the attach, Pending, ContainerCreating", newPod(owned("ReplicaSet", "web-7d9f"), phase(corev1.PodPending), waiting("ContainerCreating", "")), sa(later, "regcred"),
			[]string{diagnose.CodeCreatedBeforeAttach}, true, ""},
		{"a bare Pod created before the attach", newPod(), sa(later, "regcred"),
			[]string{diagnose.CodeCreatedBeforeAttach}, true, "kubectl -n shop delete pod web-7d9f-x2x4z   # a bare Pod: create it again from its manifest afterwards"},
		{"its own list hides the ServiceAccount's", newPod(owned("ReplicaSet", "web-7d9f"), lists("team")), sa(earlier, "regcred"),
			[]string{diagnose.CodeListHidesServiceAccount}, true, ""},
		{"created after the attach: it has the secret", newPod(lists("regcred")), sa(earlier, "regcred"), []string{}, false, ""},
		{"already running: the image is pulled", newPod(running()), sa(later, "regcred"), []string{}, false, ""},
		{"the ServiceAccount's secret is for another registry", newPod(), sa(later, "team"), []string{}, false, ""},
		{"no ServiceAccount", newPod(), nil, []string{}, false, ""},
		{"Succeeded", newPod(phase(corev1.PodSucceeded)), sa(later, "regcred"), []string{}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			d := diagnose.Pod(diagnose.Input{Pod: tt.pod, ServiceAccount: tt.sa, Secrets: good})
			g.Expect(codes(d.Problems)).To(Equal(tt.want), "%+v", d.Problems)
			g.Expect(d.Pending).To(Equal(tt.pending))
			g.Expect(d.Failing).To(BeFalse())
			if tt.pending {
				g.Expect(d.Problems[0].Severity).To(Equal(diagnose.SeverityError))
				g.Expect(d.Containers).To(HaveLen(1))
				g.Expect(d.Containers[0].Reason).To(Equal(diagnose.ReasonPending))
				g.Expect(d.Containers[0].Credentials).To(BeEmpty())
			}
			if tt.fix != "" {
				g.Expect(d.Problems[0].Fix).To(Equal(tt.fix))
			}
		})
	}
}

// TestWithoutSecretAccess: with the Secrets unreadable (the view role) a
// diagnosis never calls a Secret missing or broken, says the credentials
// are unknown, and still reads the ServiceAccount story and the registry's
// answer; with their metadata only, missing and wrong-typed Secrets are
// known and their data is not judged.
func TestWithoutSecretAccess(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	later, earlier := created.Add(time.Hour), created.Add(-time.Hour)

	unknown := diagnose.Pod(diagnose.Input{Pod: newPod(owned("ReplicaSet", "web-7d9f"), failing(kubeletsim.Unauthorized)),
		ServiceAccount: sa(later, "regcred"), SecretAccess: diagnose.SecretsUnknown})
	g.Expect(codes(unknown.Problems)).To(Equal([]string{diagnose.CodeCreatedBeforeAttach, diagnose.CodeCredentialsRequired}))
	g.Expect(unknown.Problems[0].Severity).To(Equal(diagnose.SeverityError))
	g.Expect(unknown.Containers[0].CredentialsUnknown).To(BeTrue())
	g.Expect(unknown.SecretAccess).To(Equal("none"))
	g.Expect(unknown.Problems[1].Message).To(ContainSubstring("which you may not read"))

	listed := diagnose.Pod(diagnose.Input{Pod: newPod(lists("regcred", "gone"), failing(kubeletsim.Unauthorized)),
		ServiceAccount: sa(earlier, "regcred"), SecretAccess: diagnose.SecretsUnknown})
	g.Expect(codes(listed.Problems)).To(Equal([]string{diagnose.CodeCredentialsRejected}), "a Secret it cannot see is not missing")
	g.Expect(diagnose.ServiceAccount(sa(earlier, "regcred", "gone"), nil, diagnose.SecretsUnknown)).To(BeEmpty())

	meta := map[string]*corev1.Secret{
		"regcred": {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson},
		"opaque":  {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "opaque"}},
	}
	m := diagnose.Pod(diagnose.Input{Pod: newPod(lists("regcred", "opaque", "gone"), failing(kubeletsim.Unauthorized)),
		ServiceAccount: sa(earlier, "regcred", "opaque", "gone"), Secrets: meta, SecretAccess: diagnose.SecretsMetadata})
	g.Expect(codes(m.Problems)).To(ConsistOf(diagnose.CodeSecretMissing, diagnose.CodeSecretWrongType, diagnose.CodeCredentialsRejected))
	g.Expect(codes(diagnose.ServiceAccount(sa(earlier, "regcred", "opaque", "gone"), meta, diagnose.SecretsMetadata))).
		To(Equal([]string{diagnose.CodeSecretWrongType, diagnose.CodeSecretMissing}))
}

// TestCredentialShape: a diagnosis gives credentials as objects (secret,
// registry, username), as match does, and lists are [] rather than null.
func TestCredentialShape(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	d := diagnose.Pod(diagnose.Input{Pod: newPod(lists("regcred"), failing(kubeletsim.Unauthorized)),
		ServiceAccount: sa(created, "regcred"), Secrets: secrets(pullSecret("regcred", "registry.example.com"))})
	raw, err := json.Marshal(d)
	g.Expect(err).NotTo(HaveOccurred())
	var shape struct {
		Containers []struct {
			Credentials []map[string]string `json:"credentials"`
		} `json:"containers"`
	}
	g.Expect(json.Unmarshal(raw, &shape)).To(Succeed())
	g.Expect(shape.Containers[0].Credentials).To(Equal([]map[string]string{{"secret": "shop/regcred", "registry": "registry.example.com", "username": "ci-bot"}}))

	healthy, err := json.Marshal(diagnose.Pod(diagnose.Input{Pod: newPod(running()), ServiceAccount: sa(created)}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(healthy)).NotTo(ContainSubstring("null"), "%s", healthy)
}
