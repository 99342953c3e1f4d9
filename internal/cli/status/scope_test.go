package status_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// troubled makes, in ns: the pull secret regcred; ServiceAccount app,
// which gets regcred after Pod web (failed by kubeletsim, labelled
// app=web) and Pod later (Pending: the kubelet has not pulled yet) were
// created; ServiceAccount builder listing an Opaque Secret; and Pod quiet
// (app=quiet), healthy.
func troubled(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := client.CoreV1().Secrets(ns).Create(ctx, pullSecret(ns, "regcred"), metav1.CreateOptions{})
	must(err)
	opaque := pullSecret(ns, "opaque")
	opaque.Type = corev1.SecretTypeOpaque
	_, err = client.CoreV1().Secrets(ns).Create(ctx, opaque, metav1.CreateOptions{})
	must(err)
	_, err = client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}, metav1.CreateOptions{})
	must(err)
	_, err = client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder", Labels: map[string]string{"app": "build"}},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "opaque"}}}, metav1.CreateOptions{})
	must(err)
	pod := func(name, app string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/shop/web:1.0"}}},
		}
	}
	web, err := client.CoreV1().Pods(ns).Create(ctx, pod("web", "web"), metav1.CreateOptions{})
	must(err)
	_, err = client.CoreV1().Pods(ns).Create(ctx, pod("later", "web"), metav1.CreateOptions{})
	must(err)
	quiet := pod("quiet", "quiet")
	quiet.Spec.ServiceAccountName = "default"
	quiet.Spec.Containers[0].Image = "nginx"
	_, err = client.CoreV1().Pods(ns).Create(ctx, quiet, metav1.CreateOptions{})
	must(err)
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "app", metav1.GetOptions{})
	must(err)
	sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	_, err = client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
	must(err)
	_, err = kubeletsim.FailPull(ctx, client, web, kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true})
	must(err)
}

// TestDoctorCoversWhatStatusReports: a Pending Pod created before its
// ServiceAccount got the pull secret its image needs, and a ServiceAccount
// whose pull secret is of the wrong type, are reported by status and by
// doctor alike, before the Pod fails.
func TestDoctorCoversWhatStatusReports(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	troubled(t, c.Client, ns)

	st := clitest.Run(t, c.Kubeconfig, "", "status", "-n", ns)
	g.Expect(st.Code).To(Equal(1), st.Stderr)
	g.Expect(st.Stdout).To(ContainSubstring("serviceaccount/builder   opaque         SecretWrongType"))
	g.Expect(st.Stdout).To(MatchRegexp(`pod/later\s+<none>\s+Pending: CreatedBeforeAttach`))
	g.Expect(st.Stdout).To(MatchRegexp(`pod/web\s+<none>\s+ImagePullBackOff: CreatedBeforeAttach`))
	g.Expect(st.Stdout).NotTo(ContainSubstring("pod/quiet"))
	g.Expect(st.Stderr).To(ContainSubstring("1 Pod failing to pull, 1 Pending that will fail."))

	doc := clitest.Run(t, c.Kubeconfig, "", "doctor", "-n", ns)
	g.Expect(doc.Code).To(Equal(1), doc.Stderr)
	g.Expect(doc.Stdout).To(ContainSubstring("Pod " + ns + "/later will fail to pull (it has not pulled yet)"))
	g.Expect(doc.Stdout).To(ContainSubstring("CreatedBeforeAttach [error]: Pod later was created before ServiceAccount app got regcred"))
	g.Expect(doc.Stdout).To(ContainSubstring("fix: kubectl -n " + ns + " delete pod later"))
	g.Expect(doc.Stdout).To(ContainSubstring("Pod " + ns + "/web fails to pull"))
	g.Expect(doc.Stdout).To(ContainSubstring("ServiceAccount " + ns + "/builder: its new Pods get opaque\n  SecretWrongType [error]: pull secret opaque of ServiceAccount builder is unusable"))
	g.Expect(doc.Stderr).To(ContainSubstring("1 Pod failing to pull, 1 Pending Pod that will fail to pull, 1 ServiceAccount with a broken pull secret in namespace"))

	names := clitest.Run(t, c.Kubeconfig, "", "doctor", "-n", ns, "-o", "name")
	g.Expect(names.Stdout).To(Equal("pod/later\npod/web\nserviceaccount/builder\n"))
	one := clitest.Run(t, c.Kubeconfig, "", "doctor", "pod/later", "-n", ns)
	g.Expect(one.Code).To(Equal(1), one.Stderr)
	g.Expect(one.Stdout).To(HavePrefix("Pod " + ns + "/later will fail to pull"))
	g.Expect(one.Stdout).NotTo(ContainSubstring("Pod " + ns + "/web"))
	wrongType := clitest.Run(t, c.Kubeconfig, "", "doctor", "deployment/later", "-n", ns)
	g.Expect(wrongType.Code).To(Equal(2), wrongType.Stderr)
}

// TestScopes: a namespace that does not exist is an error; -l selects
// objects and combines with -n; a selector that matches nothing says so
// with exit status 1.
func TestScopes(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	troubled(t, c.Client, ns)

	for _, verb := range []string{"status", "doctor", "restart"} {
		res := clitest.Run(t, c.Kubeconfig, "", verb, "-n", "no-such-namespace-x")
		g.Expect(res.Code).To(Equal(1), "%s: %s", verb, res.Stdout)
		g.Expect(res.Stderr).To(ContainSubstring(`namespace "no-such-namespace-x" does not exist`), verb)
	}

	quiet := clitest.Run(t, c.Kubeconfig, "", "doctor", "-n", ns, "-l", "app=quiet")
	g.Expect(quiet.Code).To(Equal(0), quiet.Stderr)
	g.Expect(quiet.Stderr).To(ContainSubstring(`No Pod fails to pull an image in namespace "` + ns + `", -l app=quiet.`))
	web := clitest.Run(t, c.Kubeconfig, "", "doctor", "-n", ns, "-l", "app=web", "-o", "name")
	g.Expect(web.Code).To(Equal(1), web.Stderr)
	g.Expect(web.Stdout).To(Equal("pod/later\npod/web\n"), "-l and -n together: the Pods labelled app=web in that namespace")

	st := clitest.Run(t, c.Kubeconfig, "", "status", "-n", ns, "-l", "app=build", "-o", "name")
	g.Expect(st.Code).To(Equal(1), st.Stderr)
	g.Expect(st.Stdout).To(Equal("serviceaccount/builder\n"), "-l selects the ServiceAccounts and Pods status shows")

	for _, verb := range []string{"status", "doctor", "restart"} {
		none := clitest.Run(t, c.Kubeconfig, "", verb, "-n", ns, "-l", "app=nothing")
		g.Expect(none.Code).To(Equal(1), "%s: %s", verb, none.Stdout)
		g.Expect(none.Stderr).To(MatchRegexp(`no (ServiceAccount or )?Pod matches -l app=nothing in namespace "`+ns+`"`), verb)
	}
	sel := clitest.Run(t, c.Kubeconfig, "", "status", "--namespace-selector", "no-such-label=x")
	g.Expect(sel.Code).To(Equal(1))
	g.Expect(sel.Stderr).To(ContainSubstring("no namespace in the namespaces matching no-such-label=x"))
}

// TestViewRoleRunsStatusAndDoctor runs status and doctor as a
// ServiceAccount bound (RoleBinding) to the rules of the built-in view
// ClusterRole, which reads no Secret: both work, skip the Secrets with a
// note, and still explain the failing Pod.
func TestViewRoleRunsStatusAndDoctor(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	troubled(t, c.Client, ns)
	user := "system:serviceaccount:" + ns + ":viewer"
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer"}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	// view is an aggregated ClusterRole that kube-controller-manager fills
	// in, and it does not run here: bind the roles it aggregates.
	for _, role := range aggregatedRoles(t, c.Client, "view", map[string]bool{}) {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer-" + strings.TrimPrefix(role, "system:")},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "viewer"}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		}
		_, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	can := func(verb, resource string) func() (bool, error) {
		return func() (bool, error) {
			review, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: resource},
			}}, metav1.CreateOptions{})
			return err == nil && review.Status.Allowed, err
		}
	}
	for _, r := range []string{"pods", "serviceaccounts", "events"} {
		g.Eventually(can("list", r)).WithTimeout(30*time.Second).Should(BeTrue(), "list %s", r)
	}
	g.Expect(can("list", "secrets")()).To(BeFalse(), "view reads no Secret")

	as := []string{"--as", user}
	st := clitest.Run(t, c.Kubeconfig, "", append(as, "status", "-n", ns)...)
	g.Expect(st.Stderr).NotTo(ContainSubstring("error:"))
	g.Expect(st.Code).To(Equal(1), st.Stderr)
	g.Expect(st.Stderr).To(ContainSubstring(`note: the Secrets in namespace "` + ns + `" were skipped (reading them is forbidden, as with the view role)`))
	g.Expect(st.Stdout).To(MatchRegexp(`pod/web\s+<none>\s+ImagePullBackOff: CreatedBeforeAttach`))
	g.Expect(st.Stdout).To(MatchRegexp(`serviceaccount/builder\s+opaque\s+OK`), "a Secret it cannot read is not called broken")

	doc := clitest.Run(t, c.Kubeconfig, "", append(as, "doctor", "-n", ns)...)
	g.Expect(doc.Stderr).NotTo(ContainSubstring("error:"))
	g.Expect(doc.Code).To(Equal(1), doc.Stderr)
	g.Expect(doc.Stdout).To(ContainSubstring("Pod " + ns + "/web fails to pull"))
	g.Expect(doc.Stdout).To(ContainSubstring("credentials the kubelet sends: unknown (the Secrets may not be read)"))
	g.Expect(doc.Stdout).To(ContainSubstring("CreatedBeforeAttach [error]: Pod web was created before ServiceAccount app got regcred"))
	g.Expect(doc.Stdout).NotTo(ContainSubstring("SecretMissing"))
	g.Expect(doc.Stdout + doc.Stderr).NotTo(ContainSubstring(password))
}
