// Package usage keeps, per namespace, which Secrets live Pods and Pod
// templates read and which Pods are stuck on an image pull: what the
// planner needs to hold back the retirement of a copy and to restart Pods.
// It stores a few words per object, not the objects, so a healthy Pod that
// reads no Secret costs nothing and one that does costs a small record
// (docs/benchmarks.md has the figures).
package usage

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// SecretRefs lists, sorted and without repeats, every Secret a Pod spec
// reads: image pull secrets, secret and projected volumes, CSI node
// publish secrets, and env and envFrom of every container.
func SecretRefs(spec *corev1.PodSpec) []string {
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

// PullSecrets lists a Pod spec's own imagePullSecrets, in order.
func PullSecrets(spec *corev1.PodSpec) []string {
	if len(spec.ImagePullSecrets) == 0 {
		return nil
	}
	out := make([]string, 0, len(spec.ImagePullSecrets))
	for _, r := range spec.ImagePullSecrets {
		out = append(out, r.Name)
	}
	return out
}
