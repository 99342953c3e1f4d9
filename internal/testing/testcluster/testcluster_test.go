package testcluster_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{ControllerManager: true})
}

// TestServiceAccountAdmissionCopiesPullSecrets is the scenario the whole
// project rests on, run against the real API server: a ServiceAccount's
// imagePullSecrets reach Pods created after it was patched, and only those.
func TestServiceAccountAdmissionCopiesPullSecrets(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	core := c.Client.CoreV1()

	before, err := core.Pods(ns).Create(ctx, pod("before"), metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: ns},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
			`{"auths":{"registry.example.com":{"username":"u","password":"p","auth":"dTpw"}}}`)},
	}
	_, err = core.Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	sa, err := core.ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: "regcred"})
	_, err = core.ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	labels := map[string]string{"app": "demo"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod("").Spec,
			},
		},
	}
	_, err = c.Client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	// kube-controller-manager turns the Deployment into a ReplicaSet and a
	// Pod; the API server's admission fills in the pull secrets.
	var created corev1.Pod
	g.Eventually(func(g Gomega) {
		pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=demo"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pods.Items).To(HaveLen(1))
		created = pods.Items[0]
	}).WithTimeout(time.Minute).Should(Succeed())

	g.Expect(created.Spec.ServiceAccountName).To(Equal("default"))
	g.Expect(created.Spec.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "regcred"}}))
	g.Expect(created.OwnerReferences).To(ContainElement(HaveField("Kind", "ReplicaSet")))

	before, err = core.Pods(ns).Get(ctx, before.Name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(before.Spec.ImagePullSecrets).To(BeEmpty(), "a Pod's pull secrets never change after creation")
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.example.com/team/app:1",
		}}},
	}
}

// panicEnv makes TestHelperPanicsWithCluster run; it is set only by
// TestNoProcessLeftBehindAfterPanic, in a child test binary.
const panicEnv = "PULLSECRETS_TESTCLUSTER_PANIC"

// TestHelperPanicsWithCluster starts the control plane, prints the PIDs of
// everything it runs, and panics, as a buggy test would.
func TestHelperPanicsWithCluster(t *testing.T) {
	if os.Getenv(panicEnv) == "" {
		t.Skip("helper for TestNoProcessLeftBehindAfterPanic")
	}
	c := testcluster.Get(t)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(c.Kubeconfig), "daemon.pid"))
	if err != nil {
		t.Fatal(err)
	}
	daemon, _ := strconv.Atoi(string(raw))
	pids := append([]int{daemon}, childrenOf(daemon)...)
	fmt.Fprintf(os.Stdout, "STATE %s\n", filepath.Dir(c.Kubeconfig))
	fmt.Fprintf(os.Stdout, "PIDS %v\n", strings.Trim(fmt.Sprint(pids), "[]"))
	panic("a test panics while the control plane runs")
}

func TestNoProcessLeftBehindAfterPanic(t *testing.T) {
	testcluster.Get(t) // only to skip under -short
	if runtime.GOOS != "linux" {
		t.Skip("reads process state from /proc")
	}
	g := NewWithT(t)
	self, err := os.Executable()
	g.Expect(err).NotTo(HaveOccurred())

	cmd := exec.Command(self, "-test.run=^TestHelperPanicsWithCluster$", "-test.v")
	cmd.Env = append(os.Environ(), panicEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	g.Expect(err).To(HaveOccurred(), "the helper must panic")
	g.Expect(out.String()).To(ContainSubstring("a test panics while the control plane runs"))

	var pids []int
	var stateDir string
	scanner := bufio.NewScanner(&out)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "STATE "); ok {
			stateDir = rest
		}
		if rest, ok := strings.CutPrefix(scanner.Text(), "PIDS "); ok {
			for _, f := range strings.Fields(rest) {
				pid, _ := strconv.Atoi(f)
				pids = append(pids, pid)
			}
		}
	}
	// The daemon, etcd, kube-apiserver and kube-controller-manager.
	g.Expect(pids).To(HaveLen(4), "helper output:\n%s", out.String())

	g.Eventually(func() []int {
		return slices.DeleteFunc(slices.Clone(pids), func(pid int) bool { return !alive(pid) })
	}).WithTimeout(90*time.Second).WithPolling(200*time.Millisecond).Should(BeEmpty(),
		"processes of the panicked test binary are still running")
	g.Eventually(func() error { _, err := os.Stat(stateDir); return err }).WithTimeout(30*time.Second).
		Should(MatchError(os.ErrNotExist), "the daemon removes the state folder the dead test binary left")
}

// childrenOf lists the PIDs whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var children []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := parentAndState(child); ppid == pid {
			children = append(children, child)
		}
	}
	return children
}

// alive reports whether pid runs; a zombie has already exited.
func alive(pid int) bool {
	_, state := parentAndState(pid)
	return state != "" && state != "Z" && state != "X"
}

func parentAndState(pid int) (int, string) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	// The command name is in parentheses and may hold spaces.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(fields) < 2 {
		return 0, ""
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid, fields[0]
}
