// Package usage keeps, per namespace, which Secrets live Pods and Pod
// templates read and which Pods are stuck on an image pull: what the
// planner needs to hold back the retirement of a copy and to restart Pods.
// It stores a few words per object, not the objects, so a healthy Pod that
// reads no Secret costs nothing and one that does costs a small record
// (docs/benchmarks.md has the figures).
package usage

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/pullsecrets/pullsecrets/internal/secretuse"
)

// SecretRefs lists, sorted and without repeats, every Secret a Pod spec
// reads: image pull secrets, secret and projected volumes, CSI node
// publish secrets, and env and envFrom of every container. The rule is
// package secretuse's, shared with the plugin.
func SecretRefs(spec *corev1.PodSpec) []string { return secretuse.Refs(spec) }

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
