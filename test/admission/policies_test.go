package admission

import (
	"context"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
	"github.com/pullsecrets/pullsecrets/test/internal/deploytest"
)

// mark is one of the controller's labels or annotations.
type mark struct {
	label bool
	key   string
	value string
}

func (m mark) set(o metav1.Object, value string) {
	if m.label {
		l := maps.Clone(o.GetLabels())
		if l == nil {
			l = map[string]string{}
		}
		l[m.key] = value
		o.SetLabels(l)
		return
	}
	a := maps.Clone(o.GetAnnotations())
	if a == nil {
		a = map[string]string{}
	}
	a[m.key] = value
	o.SetAnnotations(a)
}

func (m mark) unset(o metav1.Object) {
	if m.label {
		l := maps.Clone(o.GetLabels())
		delete(l, m.key)
		o.SetLabels(l)
		return
	}
	a := maps.Clone(o.GetAnnotations())
	delete(a, m.key)
	o.SetAnnotations(a)
}

// secretMarks are the marks of a copy, from the API: a mark added there
// and not to the policy fails these tests.
func secretMarks() []mark {
	labels, annotations := copyMarks()
	var marks []mark
	for _, k := range v1alpha1.CopyLabels {
		marks = append(marks, mark{label: true, key: k, value: labels[k]})
	}
	for _, k := range v1alpha1.CopyAnnotations {
		marks = append(marks, mark{key: k, value: annotations[k]})
	}
	return marks
}

func serviceAccountMarks() []mark {
	var marks []mark
	for _, k := range v1alpha1.ServiceAccountAnnotations {
		marks = append(marks, mark{key: k, value: "x"})
	}
	return marks
}

func controllerCases() []policyCase {
	const denied = "controller-writes"
	cases := []policyCase{
		{name: "controller creates a dockerconfigjson copy", as: "controller", prepare: func(t *testing.T, e *env) request {
			return create(copyObject(e.tenantNS, e.name("copy"), corev1.SecretTypeDockerConfigJson))
		}},
		{name: "controller creates a dockercfg copy", as: "controller", prepare: func(t *testing.T, e *env) request {
			return create(copyObject(e.tenantNS, e.name("copy"), corev1.SecretTypeDockercfg))
		}},
		{name: "controller rotates a copy, marks kept", as: "controller", prepare: func(t *testing.T, e *env) request {
			return update(e.copy(t), func(s *corev1.Secret) {
				s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"registry.example.com":{"auth":"dXNlcjpuZXc="}}}`)
				s.Annotations[v1alpha1.DataHashAnnotation] = "sha256:4567"
				s.Annotations[v1alpha1.ProofAnnotation] = "hmac-4567"
			})
		}},
		{name: "controller deletes a copy", as: "controller", prepare: func(t *testing.T, e *env) request {
			return remove(e.copy(t))
		}},
		{name: "controller creates its ownership key", as: "controller", prepare: func(t *testing.T, e *env) request {
			e.noKey(t)
			return create(keyObject(e.namespace))
		}},
		{name: "controller updates its ownership key", as: "controller", prepare: func(t *testing.T, e *env) request {
			return update(e.key(t), func(s *corev1.Secret) {
				s.Data[v1alpha1.OwnershipKeyDataKey] = []byte("fedcba9876543210fedcba9876543210")
			})
		}},
		{name: "controller deletes its ownership key", as: "controller", prepare: func(t *testing.T, e *env) request {
			return remove(e.key(t))
		}},
		{name: "controller stores a plugin's credential in its namespace", as: "controller", prepare: func(t *testing.T, e *env) request {
			return create(providerCredential(e.namespace, "pullsecrets-provider-"+e.name("ecr")))
		}},
		{name: "controller stores a plugin's credential in another namespace", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(providerCredential(e.tenantNS, "pullsecrets-provider-"+e.name("ecr")))
		}},
		{name: "controller stores a plugin's credential under another name", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(providerCredential(e.namespace, e.name("ecr")))
		}},
		{name: "controller stores a plugin's credential as an Opaque Secret", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			s := providerCredential(e.namespace, "pullsecrets-provider-"+e.name("ecr"))
			s.Type = corev1.SecretTypeOpaque
			return create(s)
		}},
		{name: "controller attaches to a ServiceAccount", as: "controller", prepare: func(t *testing.T, e *env) request {
			return update(e.serviceAccount(t), attach)
		}},
		{name: "controller detaches from a ServiceAccount", as: "controller", prepare: func(t *testing.T, e *env) request {
			return update(e.attached(t), func(sa *corev1.ServiceAccount) {
				sa.ImagePullSecrets = nil
				delete(sa.Annotations, v1alpha1.AttachedAnnotation)
				delete(sa.Annotations, v1alpha1.AttachedProofAnnotation)
			})
		}},
		{name: "controller deletes a Pod stuck on a pull that a ReplicaSet owns", as: "controller", prepare: func(t *testing.T, e *env) request {
			return remove(e.pod(t, true, true))
		}},

		{name: "controller creates a service-account-token Secret in kube-system", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(&corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: e.name("token"), Namespace: metav1.NamespaceSystem,
					Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
				Type: corev1.SecretTypeServiceAccountToken,
			})
		}},
		{name: "controller creates a service-account-token Secret with every copy mark", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			s := copyObject(metav1.NamespaceSystem, e.name("token"), corev1.SecretTypeServiceAccountToken)
			s.Annotations[corev1.ServiceAccountNameKey] = "default"
			s.Data = nil
			return create(s)
		}},
		{name: "controller creates an Opaque Secret", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: e.name("opaque"), Namespace: e.tenantNS}, Type: corev1.SecretTypeOpaque})
		}},
		{name: "controller creates an Opaque Secret with every copy mark", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(copyObject(e.tenantNS, e.name("opaque"), corev1.SecretTypeOpaque))
		}},
		{name: "controller creates a pull secret without marks", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(pullSecret(e.tenantNS, e.name("plain")))
		}},
		{name: "controller creates a copy managed by another tool", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			s := copyObject(e.tenantNS, e.name("copy"), corev1.SecretTypeDockerConfigJson)
			s.Labels[v1alpha1.ManagedByLabel] = "helm"
			return create(s)
		}},
		{name: "controller strips the proof of a copy", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.copy(t), func(s *corev1.Secret) { delete(s.Annotations, v1alpha1.ProofAnnotation) })
		}},
		// An administrator (whom the marks policy lets) changed a copy's
		// marks: the controller puts them back while the copy still carries
		// every mark; one removed, the policy keeps it from writing.
		{name: "controller puts back the marks changed on its copy", as: "controller", prepare: func(t *testing.T, e *env) request {
			edited := e.copy(t)
			edited.Labels[v1alpha1.OwnerLabel] = "another"
			edited.Annotations[v1alpha1.ProofAnnotation] = "hmac-someone-elses"
			must(t, e.admin.Update(context.Background(), edited), "an administrator changes the marks of a copy")
			return update(edited, func(s *corev1.Secret) { s.Labels, s.Annotations = copyMarks() })
		}},
		{name: "controller puts back the proof removed from its copy", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			edited := e.copy(t)
			delete(edited.Annotations, v1alpha1.ProofAnnotation)
			must(t, e.admin.Update(context.Background(), edited), "an administrator removes the proof of a copy")
			return update(edited, func(s *corev1.Secret) { s.Labels, s.Annotations = copyMarks() })
		}},
		{name: "controller adopts a pull secret it did not make", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.foreign(t), func(s *corev1.Secret) { s.Labels, s.Annotations = copyMarks() })
		}},
		{name: "controller changes a pull secret it did not make", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.foreign(t), func(s *corev1.Secret) { s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{}}`) })
		}},
		{name: "controller deletes a pull secret it did not make", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return remove(e.foreign(t))
		}},
		{name: "controller creates an ownership key of another type", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			e.noKey(t)
			s := keyObject(e.namespace)
			s.Type = corev1.SecretTypeOpaque
			return create(s)
		}},
		{name: "controller creates its ownership key in another namespace", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(keyObject(e.tenantNS))
		}},
		{name: "controller sets another annotation on a ServiceAccount", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.attached(t), func(sa *corev1.ServiceAccount) {
				sa.Annotations["eks.amazonaws.com/role-arn"] = "arn:aws:iam::111122223333:role/admin"
			})
		}},
		{name: "controller changes another annotation of a ServiceAccount", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.attached(t), func(sa *corev1.ServiceAccount) { sa.Annotations["team"] = "other" })
		}},
		{name: "controller labels a ServiceAccount", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.attached(t), func(sa *corev1.ServiceAccount) { sa.Labels["app"] = "other" })
		}},
		{name: "controller turns off token automount of a ServiceAccount", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.attached(t), func(sa *corev1.ServiceAccount) { sa.AutomountServiceAccountToken = ptr(false) })
		}},
		{name: "controller deletes a running Pod", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return remove(e.pod(t, true, false))
		}},
		{name: "controller deletes a bare Pod stuck on a pull", as: "controller", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return remove(e.pod(t, false, true))
		}},
	}
	for _, m := range secretMarks() {
		cases = append(cases, policyCase{name: "controller creates a copy without " + m.key, as: "controller", deniedBy: denied,
			prepare: func(t *testing.T, e *env) request {
				s := copyObject(e.tenantNS, e.name("copy"), corev1.SecretTypeDockerConfigJson)
				m.unset(s)
				return create(s)
			}})
	}
	return cases
}

func tenantCases() []policyCase {
	const denied = "marks"
	cases := []policyCase{
		{name: "tenant creates its own pull secret", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return create(pullSecret(e.tenantNS, e.name("own")))
		}},
		{name: "tenant creates a Secret another tool manages", as: "tenant", prepare: func(t *testing.T, e *env) request {
			s := pullSecret(e.tenantNS, e.name("helm"))
			s.Labels = map[string]string{v1alpha1.ManagedByLabel: "helm"}
			return create(s)
		}},
		{name: "tenant hands its Secret from one tool to another", as: "tenant", prepare: func(t *testing.T, e *env) request {
			s := pullSecret(e.tenantNS, e.name("helm"))
			s.Labels = map[string]string{v1alpha1.ManagedByLabel: "helm"}
			must(t, e.client("tenant").Create(context.Background(), s), "create")
			return update(s, func(s *corev1.Secret) { s.Labels[v1alpha1.ManagedByLabel] = "argocd" })
		}},
		{name: "tenant labels a copy for its backups", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return update(e.copy(t), func(s *corev1.Secret) { s.Labels["backup"] = "daily" })
		}},
		{name: "tenant edits a copy's data, marks kept", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return update(e.copy(t), func(s *corev1.Secret) { s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{}}`) })
		}},
		{name: "tenant deletes a copy", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return remove(e.copy(t))
		}},
		{name: "tenant opts an attached ServiceAccount out", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return update(e.attached(t), func(sa *corev1.ServiceAccount) { sa.Annotations[v1alpha1.OptOutAnnotation] = "true" })
		}},
		{name: "tenant adds its own pull secret to an attached ServiceAccount", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return update(e.attached(t), func(sa *corev1.ServiceAccount) {
				sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: "own"})
			})
		}},
		{name: "tenant deletes an attached ServiceAccount", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return remove(e.attached(t))
		}},
		{name: "tenant forges a copy with every mark", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return create(copyObject(e.tenantNS, e.name("forged"), corev1.SecretTypeDockerConfigJson))
		}},
		{name: "tenant hands a copy to another tool", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.copy(t), func(s *corev1.Secret) { s.Labels[v1alpha1.ManagedByLabel] = "helm" })
		}},
		{name: "tenant creates the ownership key's name in its namespace", as: "tenant", prepare: func(t *testing.T, e *env) request {
			return create(keyObject(e.tenantNS))
		}},
	}
	for _, m := range secretMarks() {
		cases = append(cases,
			policyCase{name: "tenant creates a Secret with " + m.key, as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				s := pullSecret(e.tenantNS, e.name("forged"))
				m.set(s, m.value)
				return create(s)
			}},
			policyCase{name: "tenant adds " + m.key + " to its pull secret", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				return update(e.foreign(t), func(s *corev1.Secret) { m.set(s, m.value) })
			}},
			policyCase{name: "tenant removes " + m.key + " from a copy", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				return update(e.copy(t), func(s *corev1.Secret) { m.unset(s) })
			}},
			policyCase{name: "tenant changes " + m.key + " of a copy", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				return update(e.copy(t), func(s *corev1.Secret) { m.set(s, m.value+"-forged") })
			}},
		)
	}
	for _, m := range serviceAccountMarks() {
		cases = append(cases,
			policyCase{name: "tenant creates a ServiceAccount with " + m.key, as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: e.name("sa"), Namespace: e.tenantNS}}
				m.set(sa, m.value)
				return create(sa)
			}},
			policyCase{name: "tenant adds " + m.key + " to a ServiceAccount", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				return update(e.serviceAccount(t), func(sa *corev1.ServiceAccount) { m.set(sa, m.value) })
			}},
			policyCase{name: "tenant removes " + m.key + " from an attached ServiceAccount", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				return update(e.attached(t), func(sa *corev1.ServiceAccount) { m.unset(sa) })
			}},
			policyCase{name: "tenant changes " + m.key + " of an attached ServiceAccount", as: "tenant", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
				return update(e.attached(t), func(sa *corev1.ServiceAccount) { m.set(sa, `{"own":"forged"}`) })
			}},
		)
	}
	return cases
}

func keyCases() []policyCase {
	return []policyCase{
		{name: "ops creates a source Secret in the controller's namespace", as: "ops", prepare: func(t *testing.T, e *env) request {
			return create(pullSecret(e.namespace, e.name("registry-credentials")))
		}},
		{name: "ops updates the ownership key", as: "ops", deniedBy: "marks", prepare: func(t *testing.T, e *env) request {
			return update(e.key(t), func(s *corev1.Secret) {
				s.Data[v1alpha1.OwnershipKeyDataKey] = []byte("known-to-ops-known-to-ops-000000")
			})
		}},
		{name: "ops labels the ownership key", as: "ops", deniedBy: "marks", prepare: func(t *testing.T, e *env) request {
			return update(e.key(t), func(s *corev1.Secret) { s.Labels = map[string]string{"backup": "daily"} })
		}},
		{name: "ops deletes the ownership key", as: "ops", deniedBy: "marks", prepare: func(t *testing.T, e *env) request {
			return remove(e.key(t))
		}},
		{name: "ops creates the ownership key before the controller", as: "ops", deniedBy: "marks", prepare: func(t *testing.T, e *env) request {
			e.noKey(t)
			return create(keyObject(e.namespace))
		}},
		{name: "break-glass admin strips the marks of a copy", as: "break-glass", prepare: func(t *testing.T, e *env) request {
			return update(e.copyIn(t, e.namespace, corev1.SecretTypeDockerConfigJson), func(s *corev1.Secret) {
				s.Labels, s.Annotations = nil, nil
			})
		}},
		{name: "break-glass admin deletes the ownership key", as: "break-glass", prepare: func(t *testing.T, e *env) request {
			return remove(e.key(t))
		}},
	}
}

// shipped are the policies installed by default.
var shipped = []string{"controller-writes", "marks", "controller-tokens"}

func installations(t *testing.T) []installation {
	return []installation{
		{
			name: "kustomize", namespace: "pullsecrets-system", policies: shipped,
			objs: deploytest.Decode(t, deploytest.Kustomize(t, "config/default", "config/rbac-restart-pods")),
		},
		{
			name: "helm", namespace: "pullsecrets-helm", prefix: "pullsecrets-", policies: shipped,
			objs: deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-helm", "--set", "rbac.restartPods=true")),
		},
	}
}

func TestShippedPolicies(t *testing.T) {
	c := testcluster.Get(t)
	deploytest.AggregateBuiltinRoles(t, deploytest.Client(t, c.Config))
	for _, in := range installations(t) {
		t.Run(in.name, func(t *testing.T) {
			e := install(t, c, in)
			e.waitPolicies(t, true)
			e.run(t, controllerCases())
			e.run(t, tenantCases())
			e.run(t, keyCases())
			e.runTokenCases(t)
			t.Run("ops deletes the ownership key of a terminating namespace", func(t *testing.T) {
				e.deleteKeyWhileTerminating(t)
			})
		})
	}
}

// deleteKeyWhileTerminating deletes the controller's namespace, which stays
// Terminating (no namespace controller here), and checks that the key may
// then be deleted, as the namespace controller must.
func (e *env) deleteKeyWhileTerminating(t *testing.T) {
	ctx := testcluster.Context(t)
	key := e.key(t)
	if err := e.client("ops").Delete(ctx, key.DeepCopy(), client.DryRunAll); !e.deniedBy(err, "marks") {
		t.Fatalf("before the namespace is deleted: want denied, got %v", err)
	}
	must(t, e.admin.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.namespace}}), "delete the namespace")
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var ns corev1.Namespace
		err := e.admin.Get(ctx, client.ObjectKey{Name: e.namespace}, &ns)
		return err == nil && ns.DeletionTimestamp != nil, err
	})
	must(t, err, "wait for the namespace to terminate")
	for _, opts := range [][]client.DeleteOption{{client.DryRunAll}, nil} {
		if err := e.client("ops").Delete(ctx, key.DeepCopy(), opts...); err != nil {
			t.Fatalf("delete %v: want allowed, got %v", opts, err)
		}
	}
}

// providerCredential is the Secret the controller keeps a plugin's latest
// answer in.
func providerCredential(namespace, name string) *corev1.Secret {
	s := pullSecret(namespace, name)
	s.Labels = map[string]string{v1alpha1.ProviderForLabel: "ecr"}
	return s
}
