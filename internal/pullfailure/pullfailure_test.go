package pullfailure_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
)

func waiting(reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: "app", Image: "reg/app:1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func TestIsStuck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{"back-off", corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ImagePullBackOff")}}}, true},
		{"err pull", corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ErrImagePull")}}}, true},
		{"init container", corev1.Pod{Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{waiting("ImagePullBackOff")}}}, true},
		{"creating", corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating")}}}, false},
		{"pending without status", corev1.Pod{}, false},
		{"already deleting", corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &metav1.Time{}},
			Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ImagePullBackOff")}},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := pullfailure.IsStuck(&tt.pod); got != tt.want {
				t.Errorf("IsStuck = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecreator(t *testing.T) {
	t.Parallel()
	owned := func(kind string, controller bool) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Kind: kind, Name: "o", Controller: ptr.To(controller)}}}}
	}
	for kind, want := range map[string]bool{"ReplicaSet": true, "StatefulSet": true, "DaemonSet": true, "Job": true, "ReplicationController": true, "Node": false, "SomeCRD": false} {
		if got := pullfailure.Recreator(owned(kind, true)) != nil; got != want {
			t.Errorf("owner %s: recreated = %v, want %v", kind, got, want)
		}
	}
	if pullfailure.Recreator(owned("ReplicaSet", false)) != nil {
		t.Error("a non-controller owner reference does not recreate the Pod")
	}
	if pullfailure.Recreator(&corev1.Pod{}) != nil {
		t.Error("a bare Pod has no recreator")
	}
}

func TestServiceAccountName(t *testing.T) {
	t.Parallel()
	if got := pullfailure.ServiceAccountName(&corev1.Pod{}); got != "default" {
		t.Errorf("empty = %q, want default", got)
	}
	if got := pullfailure.ServiceAccountName(&corev1.Pod{Spec: corev1.PodSpec{DeprecatedServiceAccount: "old"}}); got != "old" {
		t.Errorf("deprecated field = %q, want old", got)
	}
}
