package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/cli/status"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{})
}

const password = "status-Pa55word-xyz"

func pullSecret(ns, name string) *corev1.Secret {
	data, err := credentials.Build("registry.example.com", "ci-bot", password, "")
	if err != nil {
		panic(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
}

// populate gives a namespace a good pull secret on the default
// ServiceAccount, and when broken, a ServiceAccount listing a missing
// Secret and a Pod created before its ServiceAccount got the secret, failed
// by kubeletsim.
func populate(ctx context.Context, client kubernetes.Interface, ns string, broken bool) error {
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, pullSecret(ns, "regcred"), metav1.CreateOptions{}); err != nil {
		return err
	}
	if !broken {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}
		_, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
		return err
	}
	builder := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "gone"}}}
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, builder, metav1.CreateOptions{}); err != nil {
		return err
	}
	app := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, app, metav1.CreateOptions{}); err != nil {
		return err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/shop/web:1.0"}}},
	}
	created, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	// The ServiceAccount gets the secret after the Pod was created.
	cur, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		return err
	}
	cur.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	if _, err := client.CoreV1().ServiceAccounts(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return err
	}
	_, err = kubeletsim.FailPull(ctx, client, created, kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true})
	return err
}

func TestStatusTableJSONAndExitStatus(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	team := "status-" + rand.String(6)
	good := namespace(t, c, team+"-a", team)
	bad := namespace(t, c, team+"-b", team)
	g.Expect(populate(ctx, c.Client, good, false)).To(Succeed())
	g.Expect(populate(ctx, c.Client, bad, true)).To(Succeed())

	ok := clitest.Run(t, c.Kubeconfig, "", "status", "-n", good)
	g.Expect(ok.Code).To(Equal(0), ok.Stderr)
	golden(t, "healthy", normalise(ok.Stdout))

	res := clitest.Run(t, c.Kubeconfig, "", "status", "-l", "team="+team)
	g.Expect(res.Code).To(Equal(1), res.Stderr)
	golden(t, "selector", normalise(res.Stdout))
	wide := clitest.Run(t, c.Kubeconfig, "", "status", "-l", "team="+team, "-o", "wide")
	golden(t, "selector-wide", normalise(wide.Stdout))

	names := clitest.Run(t, c.Kubeconfig, "", "status", "-l", "team="+team, "-o", "name")
	g.Expect(names.Stdout).To(Equal("serviceaccount/builder\npod/web\n"))

	js := clitest.Run(t, c.Kubeconfig, "", "status", "-l", "team="+team, "-o", "json")
	g.Expect(js.Code).To(Equal(1))
	var r status.Report
	g.Expect(json.Unmarshal([]byte(js.Stdout), &r)).To(Succeed())
	g.Expect(r.Namespaces).To(Equal(2))
	g.Expect(r.Problems).To(Equal(2))
	g.Expect(r.Pods).To(HaveLen(1))
	g.Expect(r.Pods[0].Problems[0].Code).To(Equal("CreatedBeforeAttach"))

	for _, out := range []string{ok.Stdout, res.Stdout, wide.Stdout, js.Stdout, res.Stderr} {
		g.Expect(out).NotTo(ContainSubstring(password))
	}
	usage := clitest.Run(t, c.Kubeconfig, "", "status", "-A", "-l", "x=y")
	g.Expect(usage.Code).To(Equal(2))
}

// TestStatusRequestsDoNotGrowWithNamespaces reads 2 and then 8 namespaces
// and counts the requests: the same LISTs, and no GET.
func TestStatusRequestsDoNotGrowWithNamespaces(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	counts := map[int]*requests{}
	for _, n := range []int{2, 8} {
		team := "count-" + rand.String(6)
		for i := range n {
			ns := c.Namespace(t, map[string]string{"team": team})
			g.Expect(populate(ctx, c.Client, ns, i%2 == 1)).To(Succeed())
		}
		rq := &requests{}
		code, _, errOut := run(t, c.Kubeconfig, rq, "status", "-l", "team="+team)
		g.Expect(code).To(Equal(1), errOut)
		counts[n] = rq
	}
	g.Expect(counts[8].lists.Load()).To(Equal(counts[2].lists.Load()))
	// One GET per Secret that a ServiceAccount lists and that is not a
	// pull secret (here: missing), up to cmdutil.MaxSecretGets.
	g.Expect(counts[2].gets.Load()).To(Equal(int64(1)))
	g.Expect(counts[8].gets.Load()).To(Equal(int64(4)))
}

// namespace makes a namespace of a fixed name, labelled team=team, so that
// the order of rows in golden files is known.
func namespace(t *testing.T, c *testcluster.Cluster, name, team string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": team}}}
	if _, err := c.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "default"}}
	if _, err := c.Client.CoreV1().ServiceAccounts(name).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// requests counts what a command sent to the API server.
type requests struct {
	lists, gets, writes atomic.Int64
}

type countingTransport struct {
	next http.RoundTripper
	rq   *requests
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.Method != http.MethodGet:
		c.rq.writes.Add(1)
	case isList(req.URL.Path):
		c.rq.lists.Add(1)
	default:
		c.rq.gets.Add(1)
	}
	return c.next.RoundTrip(req)
}

// isList tells a LIST from a GET by the path: a LIST ends with the
// resource, a GET with a name after it.
func isList(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) > 0 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) > 0 && parts[0] == "apis":
		parts = parts[3:]
	}
	if len(parts) > 2 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	return len(parts) == 1
}

// countingGetter adds the counting transport to every client.
type countingGetter struct {
	*genericclioptions.ConfigFlags
	rq *requests
}

func (g countingGetter) ToRESTConfig() (*rest.Config, error) {
	cfg, err := g.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, rq: g.rq} })
	return cfg, nil
}

// run runs `status` (or doctor's twin) in-process with a counting client.
func run(t testing.TB, kubeconfig string, rq *requests, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	f := cmdutil.NewFactory(countingGetter{ConfigFlags: flags, rq: rq})
	cmd := status.NewCommand(f, streams)
	cmd.SetArgs(args[1:])
	cmd.SetOut(io.Discard)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.Execute()
	return cmdutil.ExitCode(err), out.String(), errOut.String()
}

// normalise replaces the random part of the names with as many x, so that
// columns stay aligned.
func normalise(out string) string {
	return regexp.MustCompile(`status-[a-z0-9]{6}`).ReplaceAllString(out, "status-xxxxxx")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	clitest.Golden(t, filepath.Join("testdata", name+".golden"), got)
}

// populateMany makes n namespaces labelled team=team, concurrently; one in
// fifty is broken.
func populateMany(ctx context.Context, client kubernetes.Interface, team string, n int) error {
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				ns := fmt.Sprintf("%s-%05d", team, i)
				_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": team}}}, metav1.CreateOptions{})
				if err == nil {
					_, err = client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}, metav1.CreateOptions{})
				}
				if err == nil {
					err = populate(ctx, client, ns, i%50 == 0)
				}
				if err != nil {
					errs <- fmt.Errorf("namespace %s: %w", ns, err)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}
