package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

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
	golden(t, "healthy", normalise(ok.Stdout+"--- stderr\n"+ok.Stderr))

	res := clitest.Run(t, c.Kubeconfig, "", "status", "--namespace-selector", "team="+team)
	g.Expect(res.Code).To(Equal(1), res.Stderr)
	golden(t, "selector", normalise(res.Stdout+"--- stderr\n"+res.Stderr))
	wide := clitest.Run(t, c.Kubeconfig, "", "status", "--namespace-selector", "team="+team, "-o", "wide")
	golden(t, "selector-wide", normalise(wide.Stdout))
	bare := clitest.Run(t, c.Kubeconfig, "", "status", "--namespace-selector", "team="+team, "--no-headers")
	g.Expect(bare.Stdout).To(Equal(strings.SplitN(res.Stdout, "\n", 2)[1]), "--no-headers drops the header line and nothing else")

	names := clitest.Run(t, c.Kubeconfig, "", "status", "--namespace-selector", "team="+team, "-o", "name")
	g.Expect(names.Stdout).To(Equal("serviceaccount/builder\npod/web\n"))

	js := clitest.Run(t, c.Kubeconfig, "", "status", "--namespace-selector", "team="+team, "-o", "json")
	g.Expect(js.Code).To(Equal(1))
	var r status.Report
	g.Expect(json.Unmarshal([]byte(js.Stdout), &r)).To(Succeed())
	g.Expect(r.Namespaces).To(Equal(2))
	g.Expect(r.Problems).To(Equal(2))
	g.Expect(r.Pods).To(HaveLen(1))
	g.Expect(r.Pods[0].Problems[0].Code).To(Equal("CreatedBeforeAttach"))

	g.Expect(js.Stdout).To(HavePrefix("{\n    \"kind\": \"StatusReport\",\n    \"apiVersion\": \"cli.pullsecrets.dev/v1alpha1\",\n"))
	jp := clitest.Run(t, c.Kubeconfig, "", "status", "--namespace-selector", "team="+team, "-o", "jsonpath={.problems}")
	g.Expect(jp.Stdout).To(Equal("2"))

	for _, out := range []string{ok.Stdout, res.Stdout, wide.Stdout, js.Stdout, res.Stderr} {
		g.Expect(out).NotTo(ContainSubstring(password))
	}
	for _, args := range [][]string{
		{"-A", "--namespace-selector", "x=y"},
		{"-n", good, "-A"},
		{"-n", good, "--namespace-selector", "x=y"},
		{"-l", "=bad"},
		{"-o", "bogus"},
	} {
		usage := clitest.Run(t, c.Kubeconfig, "", append([]string{"status"}, args...)...)
		g.Expect(usage.Code).To(Equal(2), "%v: %s", args, usage.Stderr)
	}
}

// TestStatusRequests counts what status sends: with -A the same LISTs
// whatever the number of namespaces; with --namespace-selector one LIST of Namespaces and
// five LISTs per selected namespace, each in that namespace; and one GET
// per missing name either way.
func TestStatusRequests(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	all := map[int]int{}
	for _, n := range []int{2, 8} {
		team := "count-" + rand.String(6)
		for i := range n {
			ns := c.Namespace(t, map[string]string{"team": team})
			g.Expect(populate(ctx, c.Client, ns, i%2 == 1)).To(Succeed())
		}
		rq := &clitest.Requests{}
		res := clitest.RunRecorded(t, c.Kubeconfig, rq, "status", "--namespace-selector", "team="+team)
		g.Expect(res.Code).To(Equal(1), res.Stderr)
		g.Expect(rq.Count(clitest.Request.IsList)).To(Equal(1+5*n), "%v", rq.All())
		for _, req := range rq.All() {
			if req.Namespace() == "" {
				g.Expect(req.Resource()).To(Equal("namespaces"), "a cluster-wide request for --namespace-selector: %s", req)
			}
		}
		// One GET per Secret that a ServiceAccount lists and that is not a
		// pull secret (here: missing), up to cmdutil.MaxSecretGets.
		g.Expect(rq.Count(isGet)).To(Equal(n / 2))

		rq.Reset()
		res = clitest.RunRecorded(t, c.Kubeconfig, rq, "status", "-A")
		g.Expect(res.Code).To(Equal(1), res.Stderr)
		all[n] = rq.Count(clitest.Request.IsList)
	}
	g.Expect(all[8]).To(Equal(all[2]), "-A sends the same LISTs with 6 more namespaces")
}

func isGet(r clitest.Request) bool { return r.Method == http.MethodGet && !r.IsList() }

// TestSelectorNeedsRightsInTheSelectedNamespacesOnly runs status, doctor
// and attach with --namespace-selector as a user bound to the built-in edit ClusterRole's
// rules in the two namespaces it selects, and allowed to list Namespaces (which it
// needs), nothing else: they work, and every request stays inside those
// namespaces. With more names missing than cmdutil.MaxSecretGets, which
// Secrets exist is read as metadata only.
func TestSelectorNeedsRightsInTheSelectedNamespacesOnly(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	team := "rbac-" + rand.String(6)
	user := "user-" + team
	good := c.Namespace(t, map[string]string{"team": team})
	bad := c.Namespace(t, map[string]string{"team": team})
	g.Expect(populate(ctx, c.Client, good, false)).To(Succeed())
	g.Expect(populate(ctx, c.Client, bad, true)).To(Succeed())
	many := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: bad, Name: "many"}}
	for i := range cmdutil.MaxSecretGets + 5 {
		many.ImagePullSecrets = append(many.ImagePullSecrets, corev1.LocalObjectReference{Name: fmt.Sprintf("missing-%d", i)})
	}
	_, err := c.Client.CoreV1().ServiceAccounts(bad).Create(ctx, many, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	grantSelectorUser(t, c.Client, user, good, bad)

	rq := &clitest.Requests{}
	as := []string{"--as", user}
	denied := clitest.RunRecorded(t, c.Kubeconfig, rq, append(as, "status", "-A")...)
	g.Expect(denied.Stderr).To(ContainSubstring("forbidden"), "the user must not be able to read every namespace")

	for _, args := range [][]string{
		{"status", "--namespace-selector", "team=" + team},
		{"doctor", "--namespace-selector", "team=" + team},
		{"attach", "regcred", "--namespace-selector", "team=" + team, "--dry-run=server"},
	} {
		rq.Reset()
		res := clitest.RunRecorded(t, c.Kubeconfig, rq, append(as, args...)...)
		g.Expect(res.Stderr).NotTo(ContainSubstring("forbidden"), "%v", args)
		g.Expect(res.Code).To(Or(Equal(0), Equal(1)), "%v: %s", args, res.Stderr)
		g.Expect(res.Stdout).NotTo(BeEmpty(), "%v", args)
		for _, req := range rq.All() {
			if ns := req.Namespace(); ns != "" {
				g.Expect(ns).To(BeElementOf(good, bad), "%v: %s", args, req)
			} else {
				g.Expect(req.Resource()).To(Equal("namespaces"), "%v sent a cluster-wide request: %s", args, req)
			}
			if req.Resource() == "secrets" && req.IsList() && !strings.Contains(req.Query, "type") {
				g.Expect(req.MetadataOnly()).To(BeTrue(), "%v read Secret data to learn names: %s", args, req)
			}
		}
		if args[0] != "attach" {
			g.Expect(rq.Count(func(r clitest.Request) bool { return r.Resource() == "secrets" && r.IsList() && r.MetadataOnly() })).
				To(Equal(2), "%v: which of the %d missing names exist, one metadata LIST per namespace", args, cmdutil.MaxSecretGets+6)
		}
	}
	res := clitest.RunRecorded(t, c.Kubeconfig, rq, append(as, "status", "--namespace-selector", "team="+team, "-o", "json")...)
	var r status.Report
	g.Expect(json.Unmarshal([]byte(res.Stdout), &r)).To(Succeed(), res.Stderr)
	g.Expect(r.Namespaces).To(Equal(2))
	g.Expect(r.Problems).To(Equal(3), "builder's missing Secret, many's missing Secrets, the Pod created before its ServiceAccount got the secret")
}

// aggregatedRoles returns the ClusterRoles whose rules make up role: itself,
// or for an aggregated role, those its selectors pick, recursively.
func aggregatedRoles(t *testing.T, client kubernetes.Interface, name string, seen map[string]bool) []string {
	t.Helper()
	if seen[name] {
		return nil
	}
	seen[name] = true
	role, err := client.RbacV1().ClusterRoles().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if role.AggregationRule == nil {
		return []string{name}
	}
	var out []string
	for _, sel := range role.AggregationRule.ClusterRoleSelectors {
		list, err := client.RbacV1().ClusterRoles().List(context.Background(), metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&sel)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.Items {
			out = append(out, aggregatedRoles(t, client, r.Name, seen)...)
		}
	}
	return out
}

// grantSelectorUser lets user list Namespaces, and binds it to the rules of
// the built-in edit ClusterRole in namespaces.
func grantSelectorUser(t *testing.T, client kubernetes.Interface, user string, namespaces ...string) {
	t.Helper()
	ctx := context.Background()
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-namespaces"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		Subjects:   subject,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	// edit is an aggregated ClusterRole whose rules kube-controller-manager
	// fills in, and it does not run here: bind the roles it aggregates.
	roles := aggregatedRoles(t, client, "edit", map[string]bool{})
	for _, ns := range namespaces {
		for _, name := range roles {
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user + "-" + strings.TrimPrefix(name, "system:")},
				Subjects:   subject,
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			}
			if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The authorizer learns of bindings from a watch: wait until it has.
	allowed := func(ns, resource string) func() (bool, error) {
		return func() (bool, error) {
			review, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: resource},
			}}, metav1.CreateOptions{})
			return err == nil && review.Status.Allowed, err
		}
	}
	g := NewWithT(t)
	g.Eventually(allowed("", "namespaces")).WithTimeout(30 * time.Second).Should(BeTrue())
	for _, ns := range namespaces {
		for _, resource := range []string{"pods", "serviceaccounts", "secrets", "events"} {
			g.Eventually(allowed(ns, resource)).WithTimeout(30*time.Second).Should(BeTrue(), "list %s in %s", resource, ns)
		}
	}
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
