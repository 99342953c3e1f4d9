// Package admission proves the shipped ValidatingAdmissionPolicies against
// the real API server, installed from the kustomize tree and from the Helm
// chart: what the controller's identity may write, that nobody else may
// touch its marks or its ownership key, and the optional policy on broad
// ClusterPullSecrets. Every case runs as a dry run and for real.
package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
	"github.com/pullsecrets/pullsecrets/test/internal/deploytest"
)

// No kube-controller-manager: a deleted namespace stays Terminating with
// its content, which the ownership key's deletion case needs.
func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{})
}

// installation is one way of installing pullsecrets.
type installation struct {
	name string
	// namespace is the controller's namespace.
	namespace string
	// prefix starts the chart's cluster-scoped names.
	prefix string
	objs   []*unstructured.Unstructured
	// policies are the policies installed, without prefix.
	policies []string
}

// env holds one installation's clients and namespaces.
type env struct {
	installation
	admin client.Client
	// clients by actor: controller impersonates the controller's
	// ServiceAccount; tenant is bound to the built-in admin ClusterRole in
	// tenantNS only; ops to admin in the controller's namespace only;
	// break-glass is ops in the group pullsecrets:admins; platform may write
	// ClusterPullSecrets, platform-admin too, in pullsecrets:platform-admins.
	clients  map[string]client.Client
	config   *rest.Config
	tenantNS string
	seq      atomic.Int64
}

func (e *env) client(as string) client.Client {
	c, ok := e.clients[as]
	if !ok {
		panic("unknown actor " + as)
	}
	return c
}

// name returns a fresh object name, unique across installations (some
// objects are cluster-scoped).
func (e *env) name(prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, e.installation.name, e.seq.Add(1))
}

func (e *env) controllerUser() string {
	return "system:serviceaccount:" + e.namespace + ":pullsecrets-controller"
}

// install applies an installation, binds the test users, and removes its
// admission policies when the test ends, waiting until they no longer act.
func install(t *testing.T, c *testcluster.Cluster, in installation) *env {
	t.Helper()
	admin := deploytest.Client(t, c.Config)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: in.namespace}}
	if err := admin.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	deploytest.Apply(t, admin, in.objs)
	e := &env{installation: in, admin: admin, tenantNS: c.Namespace(t), config: c.Config}
	bind(t, admin, e.tenantNS, "tenant")
	bind(t, admin, in.namespace, "ops")
	as := func(user string, groups ...string) client.Client {
		return deploytest.Client(t, deploytest.Impersonate(c.Config, user, groups...))
	}
	e.clients = map[string]client.Client{
		"controller":     as(e.controllerUser()),
		"tenant":         as("tenant"),
		"ops":            as("ops"),
		"break-glass":    as("ops", "pullsecrets:admins"),
		"platform":       as("platform"),
		"platform-admin": as("platform", "pullsecrets:platform-admins"),
	}
	t.Cleanup(func() {
		deploytest.Delete(t, admin, in.objs, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
		e.waitPolicies(t, false)
	})
	return e
}

// bind binds the built-in admin ClusterRole to user in namespace.
func bind(t *testing.T, c client.Client, namespace, user string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-admin", Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := c.Create(context.Background(), rb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// probes are requests the policies deny and RBAC allows: when they are
// denied, the policies act.
func (e *env) probes() map[string]func(ctx context.Context) error {
	all := map[string]func(ctx context.Context) error{
		"controller-writes": func(ctx context.Context) error {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: e.tenantNS}, Type: corev1.SecretTypeOpaque}
			return e.client("controller").Create(ctx, s, client.DryRunAll)
		},
		"marks": func(ctx context.Context) error {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: e.tenantNS,
				Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}}}
			return e.client("tenant").Create(ctx, s, client.DryRunAll)
		},
		"controller-tokens": func(ctx context.Context) error {
			cs, err := kubernetes.NewForConfig(deploytest.Impersonate(e.config, e.controllerUser()))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return e.requestToken(ctx, cs, []string{"probe.example.com"}, 600, true)
		},
		"broad-selection": func(ctx context.Context) error {
			return e.client("platform").Create(ctx, cps("probe", everything), client.DryRunAll)
		},
	}
	probes := map[string]func(ctx context.Context) error{}
	for _, p := range e.policies {
		probes[p] = all[p]
	}
	return probes
}

// waitPolicies waits until the policies' bindings act (active) or no longer
// do: a binding takes effect a moment after it is written.
func (e *env) waitPolicies(t *testing.T, active bool) {
	t.Helper()
	for policy, probe := range e.probes() {
		var last error
		err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			last = probe(ctx)
			if active {
				return e.deniedBy(last, policy), nil
			}
			// The token probe cannot succeed once the test has deleted
			// the controller's namespace: for it, not being denied by the
			// policy is enough.
			if policy == "controller-tokens" {
				return !e.deniedBy(last, policy), nil
			}
			return last == nil, nil
		})
		if err != nil {
			t.Fatalf("policy %s%s: active=%v never reached; last answer: %v", e.prefix, policy, active, last)
		}
	}
}

// deniedBy reports whether err is the denial of the named shipped policy.
func (e *env) deniedBy(err error, policy string) bool {
	return err != nil && apierrors.IsForbidden(err) &&
		strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+e.prefix+"pullsecrets-"+policy+"'")
}

// request is what a case does: the object it acts on and the call.
type request struct {
	// obj is the object acted on; for a create, the object to create.
	obj  client.Object
	call func(ctx context.Context, c client.Client, opts ...dryRun) error
	// creates says the call creates obj (nothing existed before).
	creates bool
}

// dryRun is the option every request takes: DryRunAll or nothing.
type dryRun interface {
	client.CreateOption
	client.UpdateOption
	client.PatchOption
	client.DeleteOption
}

// policyCase is one row of the tables.
type policyCase struct {
	name string
	as   string
	// prepare makes the objects the request needs, as their real owners
	// would, and returns the request.
	prepare func(t *testing.T, e *env) request
	// deniedBy names the policy that denies it ("" for allowed).
	deniedBy string
}

// run runs every case twice, as a server-side dry run and for real, each
// time on fresh objects.
func (e *env) run(t *testing.T, cases []policyCase) {
	t.Helper()
	for _, tc := range cases {
		for _, dry := range []bool{true, false} {
			mode := "real"
			if dry {
				mode = "dry-run"
			}
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				ctx := testcluster.Context(t)
				req := tc.prepare(t, e)
				before := req.obj.DeepCopyObject().(client.Object)
				var opts []dryRun
				if dry {
					opts = append(opts, client.DryRunAll)
				}
				err := req.call(ctx, e.client(tc.as), opts...)
				switch {
				case tc.deniedBy == "" && err != nil:
					t.Fatalf("want allowed, got: %v", err)
				case tc.deniedBy != "" && !e.deniedBy(err, tc.deniedBy):
					t.Fatalf("want denied by %spullsecrets-%s, got: %v", e.prefix, tc.deniedBy, err)
				}
				if dry || tc.deniedBy != "" {
					e.unchanged(t, before, req.creates)
				}
			})
		}
	}
}

// unchanged checks that a dry-run or denied request wrote nothing.
func (e *env) unchanged(t *testing.T, before client.Object, created bool) {
	t.Helper()
	now := before.DeepCopyObject().(client.Object)
	err := e.admin.Get(context.Background(), client.ObjectKeyFromObject(before), now)
	if created {
		if !apierrors.IsNotFound(err) {
			t.Fatalf("%s was created (get: %v)", before.GetName(), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s is gone: %v", before.GetName(), err)
	}
	if now.GetResourceVersion() != before.GetResourceVersion() {
		t.Fatalf("%s was written: resourceVersion %s -> %s", before.GetName(), before.GetResourceVersion(), now.GetResourceVersion())
	}
}

func create(obj client.Object) request {
	return request{obj: obj, creates: true, call: func(ctx context.Context, c client.Client, opts ...dryRun) error {
		return c.Create(ctx, obj.DeepCopyObject().(client.Object), createOpts(opts)...)
	}}
}

// update writes what edit makes of obj as the controller would: a merge
// patch, which for a ServiceAccount carries the resourceVersion read (its
// imagePullSecrets list is atomic: serviceaccount.MergePatch).
func update[T client.Object](obj T, edit func(T)) request {
	return request{obj: obj, call: func(ctx context.Context, c client.Client, opts ...dryRun) error {
		changed := obj.DeepCopyObject().(T)
		edit(changed)
		from := client.MergeFrom(obj)
		if _, ok := client.Object(changed).(*corev1.ServiceAccount); ok {
			from = client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})
		}
		return c.Patch(ctx, changed, from, patchOpts(opts)...)
	}}
}

func remove(obj client.Object) request {
	return request{obj: obj, call: func(ctx context.Context, c client.Client, opts ...dryRun) error {
		// The UID precondition, as the controller deletes.
		o := []client.DeleteOption{client.Preconditions{UID: ptr(obj.GetUID())}}
		for _, d := range opts {
			o = append(o, d)
		}
		return c.Delete(ctx, obj.DeepCopyObject().(client.Object), o...)
	}}
}

func createOpts(opts []dryRun) []client.CreateOption {
	var o []client.CreateOption
	for _, d := range opts {
		o = append(o, d)
	}
	return o
}

func patchOpts(opts []dryRun) []client.PatchOption {
	var o []client.PatchOption
	for _, d := range opts {
		o = append(o, d)
	}
	return o
}

func ptr[T any](v T) *T { return &v }

// must fails the test on a setup error.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			t.Fatalf("%s: %v (%s)", what, err, status.Status().Reason)
		}
		t.Fatalf("%s: %v", what, err)
	}
}
