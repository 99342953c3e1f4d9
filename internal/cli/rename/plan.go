package rename

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/secretuse"
)

// planOptions are what the command line says of every namespace.
type planOptions struct {
	oldName, newName string
	updateWorkloads  bool
	keepOld          bool
}

// nsPlan is what rename does in one namespace, decided before anything is
// written.
type nsPlan struct {
	namespace string
	// refused, when set, says why nothing may change in this namespace;
	// then nothing is written in any namespace.
	refused string
	old     *corev1.Secret
	// copy is true when NEW must be created; false when it exists with the
	// same type and data.
	copy bool
	// serviceAccounts get NEW in OLD's place.
	serviceAccounts []saEdit
	// patches repoint templates that list OLD (--update-workloads).
	patches []patch
	// warnings are templates that list OLD and cannot change (a Job).
	warnings []string
	// inline are the templates that list OLD and were not repointed
	// (no --update-workloads).
	inline []string
	// held names what still uses OLD after this plan (secretuse.Holders);
	// OLD is deleted only when it is empty and --keep-old is not given.
	held   []string
	retire bool
}

// saEdit is a ServiceAccount and its list with NEW in OLD's place.
type saEdit struct {
	sa   *corev1.ServiceAccount
	list []corev1.LocalObjectReference
}

// patch repoints one template's imagePullSecrets with a JSON patch that
// first tests the list it read.
type patch struct {
	// resource is kubectl's name of the kind: "deployment.apps".
	resource, name string
	// path is the JSON pointer of the template's imagePullSecrets.
	path          string
	list, updated []corev1.LocalObjectReference
	// effect says what the patch sets off.
	effect string
}

// kinds says, per template kind that rename can repoint, its kubectl
// resource name, the path of its template's spec, and what a change does.
var kinds = map[string]struct{ resource, spec, effect string }{
	"Deployment":            {"deployment.apps", "/spec/template/spec", "this starts a rollout"},
	"StatefulSet":           {"statefulset.apps", "/spec/template/spec", "this starts a rollout"},
	"DaemonSet":             {"daemonset.apps", "/spec/template/spec", "this starts a rollout"},
	"ReplicaSet":            {"replicaset.apps", "/spec/template/spec", "only new Pods get it (a ReplicaSet does not replace its Pods)"},
	"ReplicationController": {"replicationcontroller", "/spec/template/spec", "only new Pods get it (a ReplicationController does not replace its Pods)"},
	"CronJob":               {"cronjob.batch", "/spec/jobTemplate/spec/template/spec", "the next Jobs use it"},
}

// plan decides what rename does in namespace ns, from OLD, NEW (nil when
// absent) and what uses Secrets there. It is pure.
func plan(ns string, old, newSecret *corev1.Secret, uses secretuse.Namespace, o planOptions) nsPlan {
	p := nsPlan{namespace: ns, old: old}
	switch {
	case old.Labels[v1alpha1.ManagedByLabel] == v1alpha1.ManagedByValue:
		p.refused = fmt.Sprintf("secret %s/%s is a copy made by ClusterPullSecret %s: change its spec.secretName instead", ns, o.oldName, old.Labels[v1alpha1.OwnerLabel])
		return p
	case old.Type != corev1.SecretTypeDockerConfigJson && old.Type != corev1.SecretTypeDockercfg:
		p.refused = fmt.Sprintf("secret %s/%s is of type %s, not a pull secret", ns, o.oldName, old.Type)
		return p
	case newSecret != nil && (newSecret.Type != old.Type || !sameData(newSecret.Data, old.Data)):
		p.refused = fmt.Sprintf("secret %s/%s exists and holds other credentials than %s", ns, o.newName, o.oldName)
		return p
	}
	p.copy = newSecret == nil

	after := secretuse.Namespace{Pods: uses.Pods}
	for _, sa := range uses.ServiceAccounts {
		list := slices.Clone(sa.ImagePullSecrets)
		if sa.DeletionTimestamp == nil && replaceRef(&list, o.oldName, o.newName) {
			p.serviceAccounts = append(p.serviceAccounts, saEdit{sa: sa, list: list})
			cp := sa.DeepCopy()
			cp.ImagePullSecrets = list
			sa = cp
		}
		after.ServiceAccounts = append(after.ServiceAccounts, sa)
	}
	for _, t := range uses.Templates {
		if t.Spec != nil && t.Active && listsName(t.Spec.ImagePullSecrets, o.oldName) && !t.Controlled {
			k, patchable := kinds[t.Kind]
			switch {
			case !patchable:
				p.warnings = append(p.warnings, fmt.Sprintf("%s lists %s: a %s's template cannot change; it keeps the old name until it finishes or is deleted", t, o.oldName, t.Kind))
			case !o.updateWorkloads:
				p.inline = append(p.inline, t.String())
			default:
				updated := slices.Clone(t.Spec.ImagePullSecrets)
				replaceRef(&updated, o.oldName, o.newName)
				p.patches = append(p.patches, patch{resource: k.resource, name: t.Name, path: k.spec + "/imagePullSecrets",
					list: t.Spec.ImagePullSecrets, updated: updated, effect: k.effect})
				spec := t.Spec.DeepCopy()
				spec.ImagePullSecrets = updated
				t.Spec = spec
			}
		}
		after.Templates = append(after.Templates, t)
	}
	p.held = secretuse.Holders(o.oldName, after)
	p.retire = !o.keepOld && len(p.held) == 0
	return p
}

// keptBecause says why OLD stays, for `secret/OLD kept: ...`.
func (p nsPlan) keptBecause(o planOptions) string {
	if o.keepOld {
		return "--keep-old"
	}
	s := "still used by " + strings.Join(p.held, ", ")
	if len(p.inline) > 0 {
		s += fmt.Sprintf(" (%s %s it inline: --update-workloads repoints %s)", strings.Join(p.inline, ", "), plural(len(p.inline), "lists", "list"), plural(len(p.inline), "it", "them"))
	}
	return s + "; run this again once nothing uses it"
}

// replaceRef puts newName in oldName's place, or drops oldName when
// newName is already listed. It reports whether it changed the list.
func replaceRef(list *[]corev1.LocalObjectReference, oldName, newName string) bool {
	if !listsName(*list, oldName) {
		return false
	}
	hasNew := listsName(*list, newName)
	out := make([]corev1.LocalObjectReference, 0, len(*list))
	for _, r := range *list {
		switch {
		case r.Name == oldName && !hasNew:
			out = append(out, corev1.LocalObjectReference{Name: newName})
			hasNew = true
		case r.Name == oldName:
		default:
			out = append(out, r)
		}
	}
	*list = out
	return true
}

func listsName(list []corev1.LocalObjectReference, name string) bool {
	return slices.ContainsFunc(list, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
