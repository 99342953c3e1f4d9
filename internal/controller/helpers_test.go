package controller_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/controller"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// controllerLogs collects every log line of the controllers the tests run,
// at every verbosity, so that a test can prove no secret byte is logged.
var controllerLogs lockedBuffer

func TestMain(m *testing.M) {
	var out io.Writer = &controllerLogs
	if os.Getenv("PULLSECRETS_TEST_LOG") != "" {
		out = io.MultiWriter(&controllerLogs, os.Stderr)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(out), zap.Level(zapcore.Level(-127))))
	registrytest.QuietLogs()
	testcluster.Main(m, testcluster.Options{ControllerManager: true, CRDPaths: []string{"../../config/crd/bases"}})
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one test's world: the cluster, a source namespace, and a label
// that selects only this test's namespaces.
type env struct {
	t       *testing.T
	c       *testcluster.Cluster
	client  client.Client
	srcNS   string
	label   map[string]string
	cpsList []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := testcluster.Get(t)
	cl, err := client.New(c.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, c: c, client: cl}
	e.srcNS = c.Namespace(t)
	e.label = map[string]string{"pullsecrets-test": e.srcNS}
	e.grantRBAC()
	t.Cleanup(e.deleteClusterPullSecrets)
	return e
}

// controllerUser is who the controller runs as in these tests: a user with
// exactly the generated RBAC of config/rbac, so every test also proves
// that the least-privilege roles are enough.
const controllerUser = "pullsecrets-controller-under-test"

// grantRBAC binds the generated ClusterRole to controllerUser, and the
// generated Role (source Secrets, leader election) in the test's source
// namespace, where the deployment binds it in its own namespace.
func (e *env) grantRBAC() {
	e.t.Helper()
	var raw []byte
	// The optional restartPods role is granted too: the tests use it.
	for _, f := range []string{"../../config/rbac/role.yaml", "../../config/rbac-restart-pods/role.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = append(append(raw, b...), "\n---\n"...)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: controllerUser}}
	for _, doc := range strings.Split(string(raw), "\n---") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			continue
		}
		switch u.GetKind() {
		case "ClusterRole":
			var role rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
				e.t.Fatal(err)
			}
			e.createOrKeep(&role)
			e.createOrKeep(&rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-under-test"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
				Subjects:   subject,
			})
		case "Role":
			var role rbacv1.Role
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
				e.t.Fatal(err)
			}
			role.Namespace = e.srcNS
			e.createOrKeep(&role)
			e.createOrKeep(&rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: e.srcNS, Name: role.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
				Subjects:   subject,
			})
		}
	}
}

func (e *env) createOrKeep(obj client.Object) {
	e.t.Helper()
	if err := e.client.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
}

// namespace creates a namespace this test's ClusterPullSecrets select.
func (e *env) namespace() string {
	e.t.Helper()
	return e.c.Namespace(e.t, e.label)
}

func (e *env) ctx() context.Context { return testcluster.Context(e.t) }

// dockerConfig builds .dockerconfigjson data with the credentials library.
func dockerConfig(t *testing.T, server, user, password string) []byte {
	t.Helper()
	data, err := credentials.Build(server, user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (e *env) source(name, server, user, password string) *corev1.Secret {
	e.t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.srcNS, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(e.t, server, user, password)},
	}
	if err := e.client.Create(e.ctx(), s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// cps creates a ClusterPullSecret selecting this test's namespaces.
func (e *env) cps(name, source string, mutate ...func(*v1alpha1.ClusterPullSecret)) *v1alpha1.ClusterPullSecret {
	e.t.Helper()
	obj := &v1alpha1.ClusterPullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterPullSecretSpec{
			Source:     v1alpha1.SourceReference{Namespace: e.srcNS, Name: source},
			Namespaces: v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{MatchLabels: e.label}},
		},
	}
	for _, m := range mutate {
		m(obj)
	}
	if err := e.client.Create(e.ctx(), obj); err != nil {
		e.t.Fatal(err)
	}
	e.cpsList = append(e.cpsList, name)
	return obj
}

// uniqueName makes a cluster-scoped name unique to the test.
func (e *env) uniqueName(base string) string {
	return base + "-" + strings.TrimPrefix(e.srcNS, "t-")[max(0, len(e.srcNS)-8):]
}

func (e *env) deleteClusterPullSecrets() {
	ctx := context.Background()
	for _, name := range e.cpsList {
		// Unstructured, so that objects the typed client cannot decode go too.
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ClusterPullSecret"))
		if err := e.client.Get(ctx, types.NamespacedName{Name: name}, obj); err != nil {
			continue
		}
		obj.SetFinalizers(nil)
		_ = e.client.Update(ctx, obj)
		_ = e.client.Delete(ctx, obj)
	}
}

// running is a controller started for one test.
type running struct {
	cancel   context.CancelFunc
	done     chan error
	registry *prometheus.Registry
}

type controllerOption func(*manager.Options)

func (e *env) startController(opts ...controllerOption) *running {
	e.t.Helper()
	o := manager.DefaultOptions()
	o.Controller.SourceNamespaces = []string{e.srcNS}
	o.Controller.KeyNamespace = e.srcNS
	o.Controller.StatusInterval = 200 * time.Millisecond
	o.MetricsAddr, o.ProbeAddr = "0", "0"
	o.LeaderElect = false
	o.AllowSeveralInProcess = true
	o.LeaderElectionNamespace = e.srcNS
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	cfg := rest.CopyConfig(e.c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: controllerUser}
	mgr, err := manager.New(cfg, o, controller.NewMetrics(reg))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), registry: reg}
	go func() { r.done <- mgr.Start(ctx) }()
	e.t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	<-r.done
}

// requests returns the controller's API requests by "verb resource".
func (r *running) requests() map[string]float64 {
	out := map[string]float64{}
	families, _ := r.registry.Gather()
	for _, f := range families {
		if f.GetName() != "pullsecrets_api_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var verb, resource string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "verb":
					verb = l.GetValue()
				case "resource":
					resource = l.GetValue()
				}
			}
			out[verb+" "+resource] += m.GetCounter().GetValue()
		}
	}
	return out
}

// writes keeps only the write verbs of requests.
func writes(req map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range req {
		verb := strings.SplitN(k, " ", 2)[0]
		if verb == "create" || verb == "update" || verb == "patch" || verb == "delete" {
			out[k] = v
		}
	}
	return out
}

func (e *env) serviceAccount(ns, name string, secrets ...string) *corev1.ServiceAccount {
	e.t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, s := range secrets {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	if err := e.client.Create(e.ctx(), sa); err != nil {
		e.t.Fatal(err)
	}
	return sa
}

func (e *env) pullSecretNames(ns, sa string) func() []string {
	return func() []string {
		var obj corev1.ServiceAccount
		if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: sa}, &obj); err != nil {
			return []string{"error: " + err.Error()}
		}
		var names []string
		for _, r := range obj.ImagePullSecrets {
			names = append(names, r.Name)
		}
		return names
	}
}

func (e *env) secret(ns, name string) func() *corev1.Secret {
	return func() *corev1.Secret {
		var s corev1.Secret
		if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "error: " + err.Error()}}
		}
		return &s
	}
}

func (e *env) readyCondition(name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		var obj v1alpha1.ClusterPullSecret
		if err := e.client.Get(context.Background(), types.NamespacedName{Name: name}, &obj); err != nil {
			return &metav1.Condition{Reason: "error: " + err.Error()}
		}
		c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.ObservedGeneration != obj.Generation {
			return &metav1.Condition{Reason: "not observed"}
		}
		return c
	}
}

func (e *env) status(name string) v1alpha1.ClusterPullSecretStatus {
	e.t.Helper()
	var obj v1alpha1.ClusterPullSecret
	if err := e.client.Get(context.Background(), types.NamespacedName{Name: name}, &obj); err != nil {
		e.t.Fatal(err)
	}
	return obj.Status
}

// eventReasons lists the reasons of Events about a ClusterPullSecret.
func (e *env) eventReasons(name string) func() []string {
	return func() []string {
		var list corev1.EventList
		if err := e.client.List(context.Background(), &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			return []string{"error: " + err.Error()}
		}
		var reasons []string
		for _, ev := range list.Items {
			if ev.InvolvedObject.Kind == "ClusterPullSecret" && ev.InvolvedObject.Name == name {
				reasons = append(reasons, ev.Reason)
			}
		}
		return reasons
	}
}

func eventually(g Gomega, f any) AsyncAssertion {
	return g.Eventually(f).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond)
}

func consistently(g Gomega, f any) AsyncAssertion {
	return g.Consistently(f).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond)
}

// storeUnderLaxSchema stores obj as an older, laxer CRD would have let it
// in: it drops the CEL rules of the CRD's schema at path (under
// spec.versions[0].schema.openAPIV3Schema.properties, "properties" left
// out), creates obj, puts the schema back, and waits until a probe
// object the rules refuse is refused again.
func (e *env) storeUnderLaxSchema(obj *unstructured.Unstructured, probe func() *unstructured.Unstructured, path ...string) {
	e.t.Helper()
	g := NewWithT(e.t)
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Name: "clusterpullsecrets.pullsecrets.dev"}, crd)).To(Succeed())
	strict := crd.DeepCopy()
	lax := crd.DeepCopy()
	versions, _, _ := unstructured.NestedSlice(lax.Object, "spec", "versions")
	full := []string{"schema", "openAPIV3Schema"}
	for _, p := range path {
		full = append(full, "properties", p)
	}
	node, _, _ := unstructured.NestedMap(versions[0].(map[string]any), full...)
	g.Expect(node).NotTo(BeNil(), "no schema at %v", path)
	delete(node, "x-kubernetes-validations")
	g.Expect(unstructured.SetNestedMap(versions[0].(map[string]any), node, full...)).To(Succeed())
	g.Expect(unstructured.SetNestedSlice(lax.Object, versions, "spec", "versions")).To(Succeed())
	g.Expect(e.client.Update(e.ctx(), lax)).To(Succeed())
	restore := func() {
		var cur unstructured.Unstructured
		cur.SetGroupVersionKind(crd.GroupVersionKind())
		if err := e.client.Get(context.Background(), types.NamespacedName{Name: crd.GetName()}, &cur); err != nil {
			return
		}
		strict.SetResourceVersion(cur.GetResourceVersion())
		_ = e.client.Update(context.Background(), strict)
	}
	e.t.Cleanup(restore)
	g.Eventually(func() error { return e.client.Create(e.ctx(), obj.DeepCopy(), client.DryRunAll) }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(e.client.Create(e.ctx(), obj)).To(Succeed())
	restore()
	g.Eventually(func() error {
		return e.client.Create(e.ctx(), probe(), client.DryRunAll)
	}).WithTimeout(30*time.Second).ShouldNot(Succeed(), "the strict schema is back")
}
