package doctor_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	registrytest.QuietLogs()
	testcluster.Main(m, testcluster.Options{CRDPaths: []string{"../../../config/crd/bases"}})
}

const (
	image    = "registry.example.com/shop/web:1.0"
	password = "doctor-Pa55word-xyz"
)

func pullSecret(ns, name, server string) *corev1.Secret {
	data, err := credentials.Build(server, "ci-bot", password, "")
	if err != nil {
		panic(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
}

// scenario sets up one namespace: Secrets, the default ServiceAccount's
// list, one Pod named web, and what the kubelet reported.
type scenario struct {
	name string
	// secrets are created first.
	secrets func(ns string) []*corev1.Secret
	// saBefore is the default ServiceAccount's list when the Pod is
	// created; saAfter, when set, is its list afterwards.
	saBefore, saAfter []string
	// podLists is the Pod's own imagePullSecrets.
	podLists []string
	owner    bool
	image    string
	sim      *kubeletsim.Options
	args     []string
	wantCode int
	wantIn   []string
}

func TestDoctorExplainsEachCause(t *testing.T) {
	c := testcluster.Get(t)
	regular := func(ns string) []*corev1.Secret {
		return []*corev1.Secret{pullSecret(ns, "regcred", "registry.example.com")}
	}
	tests := []scenario{
		{
			name: "created-before-attach", secrets: regular, saAfter: []string{"regcred"}, owner: true,
			sim: &kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true}, wantCode: 1,
			wantIn: []string{"CreatedBeforeAttach", "fix: kubectl pullsecrets restart -n "},
		},
		{
			name: "list-hides-service-account", saBefore: []string{"regcred"}, podLists: []string{"team"}, owner: true,
			secrets: func(ns string) []*corev1.Secret {
				return []*corev1.Secret{pullSecret(ns, "regcred", "registry.example.com"), pullSecret(ns, "team", "other.example.com")}
			},
			sim: &kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true}, wantCode: 1,
			wantIn: []string{"ListHidesServiceAccount", `patch deployment/web --type=json`},
		},
		{
			name: "secret-missing", saBefore: []string{"regcred"},
			sim: &kubeletsim.Options{Cause: kubeletsim.Unauthorized, MissingSecrets: []string{"regcred"}}, wantCode: 1,
			wantIn: []string{"SecretMissing", "FailedToRetrieveImagePullSecret"},
		},
		{
			name: "secret-wrong-type", saBefore: []string{"regcred"},
			secrets: func(ns string) []*corev1.Secret {
				s := pullSecret(ns, "regcred", "registry.example.com")
				s.Type = corev1.SecretTypeOpaque
				return []*corev1.Secret{s}
			},
			sim: &kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true}, wantCode: 1,
			wantIn: []string{"SecretWrongType"},
		},
		{
			name: "secret-unparsable", saBefore: []string{"regcred"},
			secrets: func(ns string) []*corev1.Secret {
				auth := base64.StdEncoding.EncodeToString([]byte("no-colon"))
				return []*corev1.Secret{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
					Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"` + auth + `"}}}`)},
				}}
			},
			sim: &kubeletsim.Options{Cause: kubeletsim.BrokenSecret}, wantCode: 1,
			wantIn: []string{"SecretUnparsable", "fails every image pull"},
		},
		{
			name: "no-credential-matches", saBefore: []string{"regcred"},
			secrets: func(ns string) []*corev1.Secret {
				return []*corev1.Secret{pullSecret(ns, "regcred", "registry.example.com:5000")}
			},
			sim: &kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true}, wantCode: 1,
			wantIn: []string{"NoCredential", "compares ports exactly"},
		},
		{
			name: "credentials-rejected", saBefore: []string{"regcred"}, secrets: regular,
			sim: &kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true}, wantCode: 1,
			wantIn: []string{"CredentialsRejected", "--verify --verify-image " + image},
		},
		{
			name: "forbidden", saBefore: []string{"regcred"}, secrets: regular,
			sim: &kubeletsim.Options{Cause: kubeletsim.Forbidden}, wantCode: 1, wantIn: []string{"Forbidden"},
		},
		{
			name: "access-denied", saBefore: []string{"regcred"}, secrets: regular,
			sim: &kubeletsim.Options{Cause: kubeletsim.AccessDenied}, wantCode: 1, wantIn: []string{"AccessDenied"},
		},
		{
			name: "image-not-found", saBefore: []string{"regcred"}, secrets: regular, owner: true,
			sim: &kubeletsim.Options{Cause: kubeletsim.NotFound}, wantCode: 1, wantIn: []string{"ImageNotFound", "set image deployment/web web=IMAGE:TAG"},
		},
		{
			name: "registry-unreachable", saBefore: []string{"regcred"}, secrets: regular,
			sim: &kubeletsim.Options{Cause: kubeletsim.Unreachable}, wantCode: 1, wantIn: []string{"RegistryUnreachable"},
		},
		{
			name: "healthy", saBefore: []string{"regcred"}, secrets: regular, wantCode: 0,
			wantIn: []string{"No Pod fails to pull an image"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := c.Namespace(t)
			setup(t, c.Client, ns, tt)
			res := clitest.Run(t, c.Kubeconfig, "", append([]string{"doctor", "-n", ns}, tt.args...)...)
			g.Expect(res.Code).To(Equal(tt.wantCode), res.Stdout+res.Stderr)
			for _, want := range tt.wantIn {
				g.Expect(res.Stdout + res.Stderr).To(ContainSubstring(want))
			}
			g.Expect(res.Stdout + res.Stderr).NotTo(ContainSubstring(password))
			golden(t, tt.name, normalise(res.Stdout+"--- stderr\n"+res.Stderr, ns))

			js := clitest.Run(t, c.Kubeconfig, "", "doctor", "-n", ns, "-o", "json")
			g.Expect(js.Code).To(Equal(tt.wantCode))
			g.Expect(js.Stdout).NotTo(ContainSubstring(password))
			var report struct {
				Pods []diagnose.Diagnosis `json:"pods"`
			}
			g.Expect(json.Unmarshal([]byte(js.Stdout), &report)).To(Succeed())
			if tt.wantCode == 1 {
				g.Expect(report.Pods).To(HaveLen(1))
				g.Expect(report.Pods[0].Problems).NotTo(BeEmpty())
				g.Expect(report.Pods[0].Problems[0].Fix).NotTo(BeEmpty())
			}
		})
	}
}

// setup makes the scenario's objects and fails the Pod's pull as the
// kubelet would.
func setup(t *testing.T, client kubernetes.Interface, ns string, sc scenario) *corev1.Pod {
	t.Helper()
	ctx := testcluster.Context(t)
	if sc.secrets != nil {
		for _, s := range sc.secrets(ns) {
			if _, err := client.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	setSA(t, client, ns, sc.saBefore)
	img := sc.image
	if img == "" {
		img = image
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: img}}},
	}
	if sc.owner {
		// An owner that does not exist: no controller-manager runs here to
		// collect the Pod, and doctor only reads the reference.
		pod.Name = "web-7d9f-x2x4z"
		pod.Labels = map[string]string{"pod-template-hash": "7d9f"}
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f", UID: "00000000-0000-0000-0000-000000000001", Controller: ptr.To(true)}}
	}
	for _, n := range sc.podLists {
		pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	created, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.saAfter != nil {
		setSA(t, client, ns, sc.saAfter)
	}
	if sc.sim == nil {
		return created
	}
	failed, err := kubeletsim.FailPull(ctx, client, created, *sc.sim)
	if err != nil {
		t.Fatal(err)
	}
	return failed
}

func setSA(t *testing.T, client kubernetes.Interface, ns string, names []string) {
	t.Helper()
	ctx := context.Background()
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = serviceaccount.Update(ctx, serviceaccount.ClientsetStore{Client: client}, sa, func(sa *corev1.ServiceAccount) (bool, error) {
		changed := false
		for _, n := range names {
			changed = serviceaccount.Attach(sa, n) || changed
		}
		return changed, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var randomSuffix = regexp.MustCompile(`t-[a-z0-9-]+-[0-9a-f]{6}`)

// normalise replaces the test's namespace, and registry hosts on random
// ports, for golden files.
func normalise(out, ns string) string {
	out = strings.ReplaceAll(out, ns, "NAMESPACE")
	out = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out, "REGISTRY")
	out = regexp.MustCompile(`sha256:[0-9a-f]{64}`).ReplaceAllString(out, "sha256:DIGEST")
	return randomSuffix.ReplaceAllString(out, "NAMESPACE")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	clitest.Golden(t, filepath.Join("testdata", name+".golden"), got)
}

func TestDoctorVerifyAsksTheRegistry(t *testing.T) {
	c := testcluster.Get(t)
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd,
		Users: []registrytest.User{{Name: "ci-bot", Password: password, Repositories: []string{"*"}}}})
	reg.Push(t, "shop/web", "1.0")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, reg.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	secretFor := func(pass string) func(ns string) []*corev1.Secret {
		return func(ns string) []*corev1.Secret {
			data, err := credentials.Build(reg.Host, "ci-bot", pass, "")
			if err != nil {
				panic(err)
			}
			return []*corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
				Data: map[string][]byte{corev1.DockerConfigJsonKey: data}}}
		}
	}
	tests := []struct {
		name, image, pass string
		cause             kubeletsim.Cause
		want              string
	}{
		{name: "verify-ok", image: reg.Host + "/shop/web:1.0", pass: password, cause: kubeletsim.Unreachable, want: "RegistryOK (container web) [warning, verified]"},
		{name: "verify-unauthorized", image: reg.Host + "/shop/web:1.0", pass: "wrong-" + password, cause: kubeletsim.Unauthorized, want: "CredentialsRejected (container web) [error, verified]"},
		{name: "verify-not-found", image: reg.Host + "/shop/web:2.0", pass: password, cause: kubeletsim.NotFound, want: "ImageNotFound (container web) [error, verified]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := c.Namespace(t)
			setup(t, c.Client, ns, scenario{saBefore: []string{"regcred"}, secrets: secretFor(tt.pass), image: tt.image,
				sim: &kubeletsim.Options{Cause: tt.cause, BackOff: true}})
			res := clitest.Run(t, c.Kubeconfig, "", "doctor", "web", "-n", ns, "--verify", "--registry-ca-file", caFile)
			g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
			g.Expect(res.Stdout).To(ContainSubstring(tt.want))
			g.Expect(res.Stdout + res.Stderr).NotTo(ContainSubstring(tt.pass))
			golden(t, tt.name, normalise(res.Stdout+"--- stderr\n"+res.Stderr, ns))
		})
	}
}

func TestDoctorNamedPodAndUsage(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	res := clitest.Run(t, c.Kubeconfig, "", "doctor", "ghost", "-n", ns)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(ContainSubstring("Pod " + ns + "/ghost not found"))

	bad := clitest.Run(t, c.Kubeconfig, "", "doctor", "web", "-A")
	g.Expect(bad.Code).To(Equal(2))
	bad = clitest.Run(t, c.Kubeconfig, "", "doctor", "-o", "bogus")
	g.Expect(bad.Code).To(Equal(2))
	bad = clitest.Run(t, c.Kubeconfig, "", "doctor", "secret/web", "-n", ns)
	g.Expect(bad.Code).To(Equal(2), "a TYPE/NAME of another type")
	typed := clitest.Run(t, c.Kubeconfig, "", "doctor", "pods/ghost", "-n", ns)
	g.Expect(typed.Code).To(Equal(1))
	g.Expect(typed.Stderr).To(ContainSubstring("Pod "+ns+"/ghost not found"), "pod/NAME and pods/NAME name a Pod, as in kubectl")
}
