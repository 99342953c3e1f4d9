package version_test

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/cli/version"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
	buildversion "github.com/pullsecrets/pullsecrets/internal/version"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{})
}

// aggregateView fills the built-in view ClusterRole from the roles its
// aggregationRule selects, as kube-controller-manager's clusterrole
// aggregation does (the test control plane does not run that loop).
func aggregateView(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	view, err := c.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, sel := range view.AggregationRule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: s.String()})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts.Items {
			if p.Name != "view" {
				rules = append(rules, p.Rules...)
			}
		}
	}
	view.Rules = rules
	if _, err := c.RbacV1().ClusterRoles().Update(ctx, view, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("aggregate ClusterRole view: %v", err)
	}
}

func deployment(labels map[string]string, images ...string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pullsecrets-controller", Labels: labels}}
	d.Spec.Replicas = ptr.To[int32](2)
	d.Status.ReadyReplicas = 1
	for i, image := range images {
		name := "controller"
		if i > 0 {
			name = "sidecar"
		}
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: name, Image: image})
	}
	return d
}

func TestFromDeployment(t *testing.T) {
	t.Parallel()
	const repo = "ghcr.io/pullsecrets/pullsecrets-controller"
	const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name      string
		d         *appsv1.Deployment
		version   string
		from      string
		wantImage string
	}{
		{"the version label wins", deployment(map[string]string{"app.kubernetes.io/version": "0.2.0", "helm.sh/chart": "pullsecrets-0.1.0"}, repo+":0.0.9"),
			"0.2.0", "label app.kubernetes.io/version", repo + ":0.0.9"},
		{"the Helm chart label", deployment(map[string]string{"helm.sh/chart": "pullsecrets-0.3.0-rc.1"}, repo+digest),
			"0.3.0-rc.1", "label helm.sh/chart", repo + digest},
		{"the image tag, a digest after it", deployment(nil, repo+":0.2.0"+digest), "0.2.0", "image tag", repo + ":0.2.0" + digest},
		{"a registry port is no tag", deployment(nil, "localhost:5000/pullsecrets-controller"+digest), "", "", "localhost:5000/pullsecrets-controller" + digest},
		{"a v is dropped", deployment(nil, "localhost:5000/pullsecrets-controller:v0.2.0"), "0.2.0", "image tag", "localhost:5000/pullsecrets-controller:v0.2.0"},
		{"latest says nothing", deployment(nil, repo+":latest"), "", "", repo + ":latest"},
		{"another chart's label is ignored", deployment(map[string]string{"helm.sh/chart": "other-1.0.0"}, repo), "", "", repo},
		{"the controller container, not a sidecar", deployment(nil, repo+":0.2.0", "proxy:9.9.9"), "0.2.0", "image tag", repo + ":0.2.0"},
		{"no containers", deployment(nil), "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := version.FromDeployment(tc.d)
			if got.Version != tc.version || got.VersionFrom != tc.from || got.Image != tc.wantImage {
				t.Errorf("FromDeployment: version %q from %q image %q, want %q from %q image %q",
					got.Version, got.VersionFrom, got.Image, tc.version, tc.from, tc.wantImage)
			}
			if got.Namespace != "ns" || got.Name != "pullsecrets-controller" || got.Replicas != 2 || got.ReadyReplicas != 1 {
				t.Errorf("FromDeployment: %+v", got)
			}
		})
	}
}

// --client reads no cluster (none is configured here) and prints the
// binary's own build as JSON.
func TestClientJSON(t *testing.T) {
	t.Parallel()
	res := clitest.Run(t, "", "", "version", "--client", "-o", "json")
	if res.Code != cmdutil.ExitOK {
		t.Fatalf("exit status %d, stderr %q", res.Code, res.Stderr)
	}
	var r version.Report
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, res.Stdout)
	}
	want := buildversion.Get()
	if r.ClientVersion != want {
		t.Errorf("clientVersion %+v, want %+v", r.ClientVersion, want)
	}
	if r.ClientVersion.Platform != runtime.GOOS+"/"+runtime.GOARCH || r.Controllers != nil || r.ControllerError != "" {
		t.Errorf("report %+v", r)
	}
	for _, key := range []string{`"clientVersion"`, `"version"`, `"goVersion"`, `"platform"`, `"dirty"`} {
		if !strings.Contains(res.Stdout, key) {
			t.Errorf("-o json lacks %s:\n%s", key, res.Stdout)
		}
	}
}

func TestTextAndUsage(t *testing.T) {
	t.Parallel()
	res := clitest.Run(t, "", "", "version", "--client")
	if res.Code != cmdutil.ExitOK || !strings.HasPrefix(res.Stdout, "Client:     "+buildversion.Get().Version+" (") || strings.Count(res.Stdout, "\n") != 1 {
		t.Errorf("version --client: status %d, stdout %q", res.Code, res.Stdout)
	}
	if res := clitest.Run(t, "", "", "version", "-o", "wide"); res.Code != cmdutil.ExitUsage {
		t.Errorf("-o wide: exit status %d, want %d", res.Code, cmdutil.ExitUsage)
	}
	if res := clitest.Run(t, "", "", "version", "extra"); res.Code != cmdutil.ExitUsage {
		t.Errorf("an argument: exit status %d, want %d", res.Code, cmdutil.ExitUsage)
	}
}

// A user with the built-in view role in the controller's namespace reads
// the controller's version with -n; without -n the cluster-wide list is
// forbidden and so is the default namespace: the report says so, exit 0.
func TestControllerVersionAsViewUser(t *testing.T) {
	c := testcluster.Get(t)
	ctx := context.Background()
	g := NewWithT(t)
	ns := c.Namespace(t)
	dep := deployment(map[string]string{
		"app.kubernetes.io/name": "pullsecrets", "app.kubernetes.io/component": "controller", "app.kubernetes.io/version": "0.2.0",
	}, "ghcr.io/pullsecrets/pullsecrets-controller:0.2.0")
	dep.Namespace = ns
	dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	dep.Spec.Template.Labels = map[string]string{"app": "x"}
	_, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	other := deployment(map[string]string{"app.kubernetes.io/name": "something-else"}, "nginx:1.0")
	other.Namespace, other.Name = ns, "other"
	other.Spec.Selector, other.Spec.Template.Labels = dep.Spec.Selector, dep.Spec.Template.Labels
	_, err = c.Client.AppsV1().Deployments(ns).Create(ctx, other, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	aggregateView(t, c.Client)
	user := "viewer-" + ns
	_, err = c.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	run := func(args ...string) version.Report {
		res := clitest.Run(t, c.Kubeconfig, "", append([]string{"--as", user, "version", "-o", "json"}, args...)...)
		g.Expect(res.Code).To(Equal(cmdutil.ExitOK), res.Stderr)
		var r version.Report
		g.Expect(json.Unmarshal([]byte(res.Stdout), &r)).To(Succeed(), res.Stdout)
		g.Expect(r.ClientVersion).To(Equal(buildversion.Get()))
		return r
	}
	// RBAC is served from the API server's cache: give it a moment.
	g.Eventually(func() []version.Controller { return run("-n", ns).Controllers }).WithTimeout(30 * time.Second).Should(Equal([]version.Controller{{
		Namespace: ns, Name: "pullsecrets-controller", Version: "0.2.0", VersionFrom: "label app.kubernetes.io/version",
		Image: "ghcr.io/pullsecrets/pullsecrets-controller:0.2.0", Replicas: 2,
	}}))

	r := run()
	g.Expect(r.Controllers).To(BeEmpty())
	g.Expect(r.ControllerError).To(And(ContainSubstring("forbidden"), ContainSubstring("namespace "+version.DefaultControllerNamespace)))

	// The administrator lists every namespace.
	res := clitest.Run(t, c.Kubeconfig, "", "version")
	g.Expect(res.Code).To(Equal(cmdutil.ExitOK), res.Stderr)
	g.Expect(res.Stdout).To(ContainSubstring("Controller: 0.2.0 (Deployment " + ns + "/pullsecrets-controller, 0/2 ready, image ghcr.io/pullsecrets/pullsecrets-controller:0.2.0, version from label app.kubernetes.io/version)"))
}
