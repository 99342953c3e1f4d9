// Package pullfailure recognises Pods that the kubelet cannot start because
// an image pull fails, and whether deleting such a Pod brings a replacement.
// The controller (restartPods) and the plugin (status, doctor, restart)
// share it, so they agree on what "stuck on a pull" means.
package pullfailure

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Waiting reasons the kubelet sets on a container whose image it cannot
// pull (pkg/kubelet/images/types.go upstream).
const (
	// ReasonErrImagePull: the last pull attempt failed.
	ReasonErrImagePull = "ErrImagePull"
	// ReasonImagePullBackOff: the kubelet waits before the next attempt.
	ReasonImagePullBackOff = "ImagePullBackOff"
)

// Container is one container waiting on a failed pull.
type Container struct {
	Name    string
	Image   string
	Reason  string
	Message string
}

// StuckContainers lists the Pod's containers (init, regular and ephemeral)
// that wait on a failed image pull.
func StuckContainers(pod *corev1.Pod) []Container {
	var out []Container
	for _, statuses := range [][]corev1.ContainerStatus{
		pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses,
	} {
		for _, cs := range statuses {
			w := cs.State.Waiting
			if w == nil || (w.Reason != ReasonErrImagePull && w.Reason != ReasonImagePullBackOff) {
				continue
			}
			out = append(out, Container{Name: cs.Name, Image: cs.Image, Reason: w.Reason, Message: w.Message})
		}
	}
	return out
}

// IsStuck reports whether any container of the Pod waits on a failed pull.
func IsStuck(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && len(StuckContainers(pod)) > 0
}

// recreatingOwners are the controllers that replace a deleted Pod.
var recreatingOwners = []string{"ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}

// Recreator returns the controller that will recreate the Pod once it is
// deleted, or nil for a bare Pod (or one owned by something we do not know
// to recreate Pods, which we must not delete).
func Recreator(pod *corev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || !slices.Contains(recreatingOwners, ref.Kind) {
		return nil
	}
	return ref
}

// Lists reports whether the Pod's own imagePullSecrets name the secret.
func Lists(pod *corev1.Pod, secret string) bool {
	return slices.ContainsFunc(pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == secret })
}

// ServiceAccountName is the ServiceAccount the Pod runs as, defaulted as the
// admission plugin does.
func ServiceAccountName(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	if pod.Spec.DeprecatedServiceAccount != "" {
		return pod.Spec.DeprecatedServiceAccount
	}
	return "default"
}
