package usage

import (
	"strings"
	"unique"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pullsecrets/pullsecrets/internal/planner"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
	"github.com/pullsecrets/pullsecrets/internal/secretuse"
)

// names is a list of names interned as one string: Pods of one template
// share it, so it costs one pointer per Pod.
type names = unique.Handle[string]

var noNames = unique.Make("")

func internNames(list []string) names { return unique.Make(strings.Join(list, "\x00")) }

func (r *record) split(h names) []string {
	if h == noNames {
		return nil
	}
	return strings.Split(h.Value(), "\x00")
}

// record is what the index keeps of a Pod or a workload. It implements
// metav1.ObjectMetaAccessor only so that client-go can key it.
type record struct {
	namespace unique.Handle[string]
	name      string
	// uid is a stuck Pod's (a restart needs it) or a workload's own.
	uid string
	// owner is a stuck Pod's controller, interned: the Pods of one
	// template share it.
	owner    unique.Handle[planner.Owner]
	hasOwner bool
	// kind is a workload's group and kind, interned (a few values in all).
	// The workload is its own owner, from kind, name and uid: interning
	// the whole owner would share nothing, each has its own UID.
	kind        unique.Handle[groupKind]
	sa          unique.Handle[string]
	pullSecrets names
	refs        names
	// stuck are a stuck Pod's images, interned as one string: the Pods of
	// one template share it.
	stuck names
	// budget is a Job's affordable failures, -1 for anything else.
	budget int32
}

// groupKind is a workload's API group and kind.
type groupKind struct{ group, kind string }

// GetObjectMeta returns the record's name, for client-go's key functions.
func (r *record) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: r.namespace.Value(), Name: r.name}
}

func (r *record) equal(o *record) bool {
	if r == nil || o == nil {
		return r == o
	}
	return *r == *o
}

// podRecord returns what the planner needs of a Pod, or nil when the Pod
// cannot change a plan: it reads no Secret and is not stuck on a pull, or
// it will never start a container again.
func podRecord(pod *corev1.Pod) *record {
	if !secretuse.PodLive(pod) {
		return nil
	}
	refs := SecretRefs(&pod.Spec)
	var stuck []string
	for _, c := range pullfailure.StuckContainers(pod) {
		stuck = append(stuck, c.Image)
	}
	if len(refs) == 0 && len(stuck) == 0 {
		return nil
	}
	r := &record{
		namespace: unique.Make(pod.Namespace), name: pod.Name, sa: unique.Make(pullfailure.ServiceAccountName(pod)),
		pullSecrets: internNames(PullSecrets(&pod.Spec)), refs: internNames(refs), stuck: internNames(stuck), budget: -1,
	}
	if len(stuck) > 0 {
		r.uid = string(pod.UID)
		if ref := metav1.GetControllerOf(pod); ref != nil {
			r.owner, r.hasOwner = unique.Make(ownerOf(ref)), true
		}
	}
	return r
}

func ownerOf(ref *metav1.OwnerReference) planner.Owner {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion) // an unparsable group matches no workload
	return planner.Owner{Group: gv.Group, Kind: ref.Kind, Name: ref.Name, UID: string(ref.UID)}
}

func (r *record) pod() planner.Pod {
	p := planner.Pod{
		Name: r.name, UID: r.uid, ServiceAccount: r.sa.Value(),
		PullSecrets: r.split(r.pullSecrets), SecretRefs: r.split(r.refs), StuckImages: r.split(r.stuck),
	}
	if r.hasOwner {
		o := r.owner.Value()
		p.Owner = &o
	}
	return p
}

func (r *record) workload() planner.Workload {
	k := r.kind.Value()
	return planner.Workload{
		Owner:       planner.Owner{Group: k.group, Kind: k.kind, Name: r.name, UID: r.uid},
		PullSecrets: r.split(r.pullSecrets), SecretRefs: r.split(r.refs), Active: true, FailureBudget: int(r.budget),
	}
}

// workloadRecord returns what the planner needs of a workload's template, or
// nil when the template can no longer make Pods.
func workloadRecord(obj any) *record {
	t, ok := secretuse.TemplateOf(obj)
	if !ok || !t.Active {
		return nil
	}
	budget := int32(-1)
	if j, ok := obj.(*batchv1.Job); ok {
		limit := int32(6) // the API's default backoffLimit
		if j.Spec.BackoffLimit != nil {
			limit = *j.Spec.BackoffLimit
		}
		budget = max(limit-j.Status.Failed, 0)
	}
	refs := SecretRefs(t.Spec)
	if len(refs) == 0 && (t.Kind == "Deployment" || t.Kind == "CronJob") {
		return nil // not a Pod's owner, and reads no Secret: never in a plan
	}
	return &record{
		namespace: unique.Make(t.Namespace), name: t.Name, uid: t.UID, kind: unique.Make(groupKind{t.Group, t.Kind}),
		pullSecrets: internNames(PullSecrets(t.Spec)), refs: internNames(refs), budget: budget,
	}
}
