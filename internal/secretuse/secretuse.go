// Package secretuse says what still uses a Secret in a namespace: the
// ServiceAccounts that list it, the live Pods that read it, and the Pod
// templates that can still make Pods that read it. A Secret is retired
// (deleted) only when nothing here holds it: the controller for its copies
// (internal/planner's holders and internal/usage's records), and the
// plugin's rename and detach for the Secrets people made. The rules live
// here once so that the two cannot drift apart.
//
// It is pure: callers pass objects they have read.
package secretuse

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Refs lists, sorted and without repeats, every Secret a Pod spec reads:
// image pull secrets, secret and projected volumes, CSI node publish
// secrets, and env and envFrom of every container (init and ephemeral
// included).
func Refs(spec *corev1.PodSpec) []string {
	var out []string
	add := func(name string) {
		if name != "" {
			out = append(out, name)
		}
	}
	for _, r := range spec.ImagePullSecrets {
		add(r.Name)
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					add(s.Secret.Name)
				}
			}
		}
		if v.CSI != nil && v.CSI.NodePublishSecretRef != nil {
			add(v.CSI.NodePublishSecretRef.Name)
		}
	}
	envs := func(env []corev1.EnvVar, from []corev1.EnvFromSource) {
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, f := range from {
			if f.SecretRef != nil {
				add(f.SecretRef.Name)
			}
		}
	}
	for _, c := range spec.InitContainers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range spec.Containers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range spec.EphemeralContainers {
		envs(c.Env, c.EnvFrom)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// PodLive reports whether a Pod may still start a container, and so read
// its Secrets again (a restarted container pulls again): it has not
// Succeeded or Failed and is not being deleted.
func PodLive(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && pod.DeletionTimestamp == nil
}

// Template is the Pod template of a workload.
type Template struct {
	// Group and Kind name the workload's type: "apps", "Deployment".
	Group, Kind string
	// Namespace, Name and UID name the workload.
	Namespace, Name, UID string
	// Spec is the template's Pod spec; nil for a ReplicationController
	// without a template.
	Spec *corev1.PodSpec
	// Controlled is true when another object controls the workload (a
	// Deployment's ReplicaSet, a CronJob's Job): that object's template
	// is the one to change.
	Controlled bool
	// Active: the template may still make Pods. A Deployment at zero
	// replicas is active (it scales up again); a finished Job, a
	// Deployment's scaled-down ReplicaSet (history: its Deployment's own
	// template stands for it) and an object being deleted are not.
	Active bool
}

// String names the workload as holders are named: "Deployment web".
func (t Template) String() string { return t.Kind + " " + t.Name }

// TemplateOf returns the Pod template of a Deployment, ReplicaSet,
// StatefulSet, DaemonSet, Job, CronJob or ReplicationController, and false
// for any other object.
func TemplateOf(obj any) (Template, bool) {
	var (
		meta   *metav1.ObjectMeta
		t      Template
		active = true
	)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		meta, t = &o.ObjectMeta, Template{Group: "apps", Kind: "Deployment", Spec: &o.Spec.Template.Spec}
	case *appsv1.ReplicaSet:
		meta, t = &o.ObjectMeta, Template{Group: "apps", Kind: "ReplicaSet", Spec: &o.Spec.Template.Spec}
		history := replicas(o.Spec.Replicas) == 0 && o.Status.Replicas == 0 && metav1.GetControllerOf(o) != nil
		active = !history
	case *appsv1.StatefulSet:
		meta, t = &o.ObjectMeta, Template{Group: "apps", Kind: "StatefulSet", Spec: &o.Spec.Template.Spec}
	case *appsv1.DaemonSet:
		meta, t = &o.ObjectMeta, Template{Group: "apps", Kind: "DaemonSet", Spec: &o.Spec.Template.Spec}
	case *batchv1.Job:
		meta, t = &o.ObjectMeta, Template{Group: "batch", Kind: "Job", Spec: &o.Spec.Template.Spec}
		active = !JobFinished(o)
	case *batchv1.CronJob:
		meta, t = &o.ObjectMeta, Template{Group: "batch", Kind: "CronJob", Spec: &o.Spec.JobTemplate.Spec.Template.Spec}
	case *corev1.ReplicationController:
		meta, t = &o.ObjectMeta, Template{Kind: "ReplicationController"}
		if o.Spec.Template != nil {
			t.Spec = &o.Spec.Template.Spec
		}
		active = o.Spec.Template != nil
	default:
		return Template{}, false
	}
	t.Namespace, t.Name, t.UID = meta.Namespace, meta.Name, string(meta.UID)
	t.Controlled = metav1.GetControllerOf(meta) != nil
	t.Active = active && meta.DeletionTimestamp == nil
	return t, true
}

// JobFinished reports whether a Job is Complete or Failed: it makes no
// more Pods.
func JobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// Namespace is what holds Secrets in one namespace, as read by the caller:
// ServiceAccounts with their lists as they are (or will be, after the
// caller's own edits), Pods, and workload templates.
type Namespace struct {
	ServiceAccounts []*corev1.ServiceAccount
	Pods            []*corev1.Pod
	Templates       []Template
}

// User is anything that may read a Secret, reduced to what the rule
// reads: the planner, which keeps records rather than objects, builds
// these and calls HeldBy; Holders builds them from objects.
type User struct {
	// Kind and Name name it in HeldBy's answer: "Pod web-1".
	Kind, Name string
	// Refs are the Secrets it reads (a ServiceAccount: its imagePullSecrets;
	// a Pod or template: Refs of its spec).
	Refs []string
	// Live: it may still read them. A ServiceAccount not being deleted, a
	// Pod for which PodLive holds, an Active template.
	Live bool
}

// HeldBy names, sorted and once each, the live users that read name:
// "ServiceAccount default", "Pod web-1", "Deployment web". A Secret is
// retired only when it is empty.
func HeldBy(name string, users []User) []string {
	var out []string
	for _, u := range users {
		if u.Live && slices.Contains(u.Refs, name) {
			out = append(out, u.Kind+" "+u.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Users reduces what a namespace holds to Users.
func (in Namespace) Users() []User {
	var out []User
	for _, sa := range in.ServiceAccounts {
		refs := make([]string, 0, len(sa.ImagePullSecrets))
		for _, r := range sa.ImagePullSecrets {
			refs = append(refs, r.Name)
		}
		out = append(out, User{Kind: "ServiceAccount", Name: sa.Name, Refs: refs, Live: sa.DeletionTimestamp == nil})
	}
	for _, p := range in.Pods {
		out = append(out, User{Kind: "Pod", Name: p.Name, Refs: Refs(&p.Spec), Live: PodLive(p)})
	}
	for _, t := range in.Templates {
		u := User{Kind: t.Kind, Name: t.Name, Live: t.Active && t.Spec != nil}
		if t.Spec != nil {
			u.Refs = Refs(t.Spec)
		}
		out = append(out, u)
	}
	return out
}

// Holders names what still uses the Secret name, sorted: "ServiceAccount
// default" for a ServiceAccount (not being deleted) that lists it, "Pod x"
// for a live Pod that reads it (PodLive, Refs), "Deployment web" for an
// active template that reads it. It is the rule of the controller's
// retirement (internal/planner's holders, which reads the same facts from
// its records: see HeldBy): a Secret is deleted only when this is empty.
func Holders(name string, in Namespace) []string {
	return HeldBy(name, in.Users())
}
