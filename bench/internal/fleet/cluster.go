package fleet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/testing/controlplane"
)

const (
	// sourceNamespace is where config/rbac/role.yaml's Role lives, and the
	// controller's only source namespace.
	sourceNamespace = "pullsecrets-system"
	sourceName      = "registry-credentials"
	cpsName         = "fleet"
	secretName      = "regcred"
	renamedSecret   = "regcred-v2"
	registry        = "registry.example.com"
	// fleetLabel marks the benchmark's namespaces; the ClusterPullSecret
	// selects them and nothing else, so that the minimal write count is
	// exact.
	fleetLabel = "bench.pullsecrets.dev/fleet"
)

// identity is a ServiceAccount of the source namespace whose name the
// benchmark gives a client certificate. The controller and the floor client
// run as two of them, with a ServiceAccount's user name and groups, so that
// RBAC binds them as config/rbac/role_binding.yaml does and the API
// server's Priority and Fairness puts both in the service-accounts flow
// schema (workload-low), as in a real cluster.
type identity string

const (
	controllerIdentity identity = "pullsecrets-controller"
	floorIdentity      identity = "pullsecrets-floor"
)

func (i identity) user() string { return "system:serviceaccount:" + sourceNamespace + ":" + string(i) }

func (identity) groups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + sourceNamespace}
}

// pool runs do(i) for every i in [0, n) on workers goroutines, and returns
// the first error; after an error no new work starts.
func pool(ctx context.Context, workers, n int, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

func fleetNamespace(i int) string { return fmt.Sprintf("fleet-%05d", i) }

// serviceAccountName names the i-th ServiceAccount of a namespace; the
// first is the `default` one kube-controller-manager makes.
func serviceAccountName(i int) string {
	if i == 0 {
		return "default"
	}
	return fmt.Sprintf("app-%d", i)
}

// createNamespace creates a fleet namespace with its ServiceAccounts and
// its unrelated Secrets. The `default` ServiceAccount is left to
// kube-controller-manager unless withDefault: at its default 20 requests a
// second it would take most of the setup of a large fleet.
func createNamespace(ctx context.Context, c kubernetes.Interface, name string, serviceAccounts int, unrelated [][]byte, withDefault bool) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{fleetLabel: "true"}}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	if withDefault {
		if err := controlplane.EnsureDefaultServiceAccount(ctx, c, name); err != nil {
			return err
		}
	}
	for i := 1; i < serviceAccounts; i++ {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: serviceAccountName(i)}}
		if _, err := c.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ServiceAccount %s/%s: %w", name, sa.Name, err)
		}
	}
	for i, data := range unrelated {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: fmt.Sprintf("unrelated-%d", i)},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"payload": data},
		}
		if _, err := c.CoreV1().Secrets(name).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", name, s.Name, err)
		}
	}
	return nil
}

// unrelatedPayloads returns n random payloads of size bytes: random so that
// no layer can compress or share them.
func unrelatedPayloads(n, size int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
		for j := range out[i] {
			out[i][j] = byte(rng.Uint32())
		}
	}
	return out
}

// dockerConfig returns the source's .dockerconfigjson for a password.
func dockerConfig(password string) (map[string][]byte, error) {
	return dockerConfigFor(registry, password)
}

// dockerConfigFor returns a .dockerconfigjson for a registry and password.
func dockerConfigFor(reg, password string) (map[string][]byte, error) {
	data, err := credentials.Build(reg, "fleet-bench", password, "")
	if err != nil {
		return nil, fmt.Errorf("build docker config: %w", err)
	}
	return map[string][]byte{corev1.DockerConfigJsonKey: data}, nil
}

// createSource creates the source namespace and credential.
func createSource(ctx context.Context, c kubernetes.Interface, data map[string][]byte) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sourceNamespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", sourceNamespace, err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: sourceNamespace, Name: sourceName},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       data,
	}
	if _, err := c.CoreV1().Secrets(sourceNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create source Secret %s/%s: %w", sourceNamespace, sourceName, err)
	}
	return nil
}

// grantRBAC creates the generated ClusterRole and Role of rolePath and binds
// them, as config/rbac/role_binding.yaml does, to the ServiceAccounts of
// the identities.
func grantRBAC(ctx context.Context, c kubernetes.Interface, rolePath string, ids ...identity) error {
	raw, err := os.ReadFile(rolePath)
	if err != nil {
		return fmt.Errorf("read RBAC: %w", err)
	}
	var subjects []rbacv1.Subject
	for _, id := range ids {
		subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: sourceNamespace, Name: string(id)})
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sourceNamespace, Name: string(id)}}
		if _, err := c.CoreV1().ServiceAccounts(sourceNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ServiceAccount %s/%s: %w", sourceNamespace, id, err)
		}
	}
	found := 0
	for doc := range strings.SplitSeq(string(raw), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("parse %s: %w", rolePath, err)
		}
		switch obj["kind"] {
		case "ClusterRole":
			var role rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &role); err != nil {
				return fmt.Errorf("read ClusterRole of %s: %w", rolePath, err)
			}
			if _, err := c.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
			}
			binding := &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
				Subjects:   subjects,
			}
			if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("bind ClusterRole %s: %w", role.Name, err)
			}
			found++
		case "Role":
			var role rbacv1.Role
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &role); err != nil {
				return fmt.Errorf("read Role of %s: %w", rolePath, err)
			}
			if role.Namespace != sourceNamespace {
				return fmt.Errorf("%s: Role %s is for namespace %q, the benchmark's source namespace is %s", rolePath, role.Name, role.Namespace, sourceNamespace)
			}
			if _, err := c.RbacV1().Roles(role.Namespace).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create Role %s/%s: %w", role.Namespace, role.Name, err)
			}
			binding := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: role.Namespace, Name: role.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
				Subjects:   subjects,
			}
			if _, err := c.RbacV1().RoleBindings(role.Namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("bind Role %s/%s: %w", role.Namespace, role.Name, err)
			}
			found++
		}
	}
	if found == 0 {
		return fmt.Errorf("%s holds no ClusterRole or Role", rolePath)
	}
	return nil
}
