package admission

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

var dockerConfigJSON = []byte(`{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}`)

// copyMarks are the labels and annotations of a copy, with values.
func copyMarks() (map[string]string, map[string]string) {
	return map[string]string{
			v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue,
			v1alpha1.OwnerLabel:     "registry-example-com",
		}, map[string]string{
			v1alpha1.SourceAnnotation:   "pullsecrets-system/registry-credentials",
			v1alpha1.DataHashAnnotation: "sha256:0123",
			v1alpha1.ProofAnnotation:    "hmac-0123",
			v1alpha1.OwnerUIDAnnotation: "8d3c2b1a-0000-4000-8000-000000000000",
		}
}

// copyObject is a Secret as the controller writes its copies.
func copyObject(namespace, name string, typ corev1.SecretType) *corev1.Secret {
	labels, annotations := copyMarks()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels, Annotations: annotations},
		Type:       typ,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfigJSON},
	}
	if typ == corev1.SecretTypeDockercfg {
		s.Data = map[string][]byte{corev1.DockerConfigKey: []byte(`{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}`)}
	}
	return s
}

// pullSecret is a pull secret without marks, as a team makes its own.
func pullSecret(namespace, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfigJSON},
	}
}

// copyIn has the controller make a copy in namespace.
func (e *env) copyIn(t *testing.T, namespace string, typ corev1.SecretType) *corev1.Secret {
	t.Helper()
	s := copyObject(namespace, e.name("copy"), typ)
	must(t, e.client("controller").Create(context.Background(), s), "the controller creates a copy")
	return s
}

// copy has the controller make a copy in the tenant's namespace.
func (e *env) copy(t *testing.T) *corev1.Secret {
	t.Helper()
	return e.copyIn(t, e.tenantNS, corev1.SecretTypeDockerConfigJson)
}

// foreign has the tenant make its own pull secret.
func (e *env) foreign(t *testing.T) *corev1.Secret {
	t.Helper()
	s := pullSecret(e.tenantNS, e.name("own"))
	must(t, e.client("tenant").Create(context.Background(), s), "the tenant creates a pull secret")
	return s
}

// serviceAccount has the tenant make a ServiceAccount.
func (e *env) serviceAccount(t *testing.T) *corev1.ServiceAccount {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: e.name("sa"), Namespace: e.tenantNS,
		Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"team": "shop"}}}
	must(t, e.client("tenant").Create(context.Background(), sa), "the tenant creates a ServiceAccount")
	return sa
}

// attach makes what the controller writes on a ServiceAccount.
func attach(sa *corev1.ServiceAccount) {
	sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: "regcred"})
	if sa.Annotations == nil {
		sa.Annotations = map[string]string{}
	}
	sa.Annotations[v1alpha1.AttachedAnnotation] = `{"regcred":"registry-example-com"}`
	sa.Annotations[v1alpha1.AttachedProofAnnotation] = "hmac-4567"
}

// attached is a tenant's ServiceAccount the controller attached to.
func (e *env) attached(t *testing.T) *corev1.ServiceAccount {
	t.Helper()
	sa := e.serviceAccount(t)
	attach(sa)
	patch, err := serviceaccount.MergePatch(sa)
	must(t, err, "the controller's patch")
	must(t, e.client("controller").Patch(context.Background(), sa, client.RawPatch(types.MergePatchType, patch)), "the controller attaches")
	return sa
}

// pod makes a Pod, owned by a ReplicaSet or bare, waiting on a pull or
// running.
func (e *env) pod(t *testing.T, owned, stuck bool) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: e.name("pod"), Namespace: e.tenantNS},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/shop/web:1.0"}}},
	}
	if owned {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4f",
			UID: types.UID("0b1c2d3e-0000-4000-8000-000000000000"), Controller: ptr(true)}}
	}
	must(t, e.admin.Create(ctx, p), "create Pod")
	state := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	if stuck {
		state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: p.Spec.Containers[0].Image, State: state}}
	must(t, e.admin.Status().Update(ctx, p), "write the Pod's status as the kubelet would")
	return p
}

// key returns the ownership key, which the controller makes if missing.
func (e *env) key(t *testing.T) *corev1.Secret {
	t.Helper()
	ctx := context.Background()
	s := keyObject(e.namespace)
	err := e.client("controller").Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		err = e.admin.Get(ctx, client.ObjectKeyFromObject(s), s)
	}
	must(t, err, "the controller creates its ownership key")
	return s
}

func keyObject(namespace string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.OwnershipKeySecretName, Namespace: namespace},
		Type:       v1alpha1.OwnershipKeySecretType,
		Data:       map[string][]byte{v1alpha1.OwnershipKeyDataKey: []byte("0123456789abcdef0123456789abcdef")},
	}
}

// noKey removes the ownership key (as a cluster administrator) so that a
// case can create it.
func (e *env) noKey(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s := keyObject(e.namespace)
	if err := e.admin.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(e.admin.Get(ctx, client.ObjectKeyFromObject(s), &corev1.Secret{})), nil
	})
	must(t, err, "wait for the ownership key to be gone")
}
