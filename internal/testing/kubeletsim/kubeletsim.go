// Package kubeletsim writes what a kubelet writes when it fails to pull an
// image: the container's waiting state in the Pod status, and the Events
// `kubectl describe pod` shows. Our control plane has no kubelet (and no
// registry to fail against), so tests and the demo use this to put Pods in
// ErrImagePull / ImagePullBackOff exactly as a node would.
//
// The texts follow the kubelet of Kubernetes v1.37
// (pkg/kubelet/images/image_manager.go: PullImage and evalCRIPullErr;
// pkg/kubelet/kuberuntime/kuberuntime_container.go: startContainer;
// pkg/kubelet/kubelet.go: FailedToRetrieveImagePullSecret) and the error
// strings containerd returns for each cause.
package kubeletsim

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
)

// Cause is why the registry refused the pull.
type Cause string

const (
	// Unauthorized means the registry rejected the credentials (or wanted some).
	Unauthorized Cause = "unauthorized"
	// AccessDenied means Docker Hub's answer to an anonymous pull of a private
	// repository, or of one that does not exist.
	AccessDenied Cause = "access-denied"
	// Forbidden means the credentials are valid but lack access.
	Forbidden Cause = "forbidden"
	// NotFound means the repository or tag does not exist.
	NotFound Cause = "not-found"
	// Unreachable means the registry host cannot be reached.
	Unreachable Cause = "unreachable"
	// ExpiredToken means the registry refused a token that has expired,
	// as ECR does 12 hours after get-login-password: 403 Forbidden with the
	// body "Your authorization token has expired. Reauthenticate and try
	// again.". containerd resolves a tag with a HEAD request, which has no
	// body, and its ErrUnexpectedStatus prints none anyway
	// (core/remotes/docker/resolver.go, core/remotes/errors), so a node
	// shows exactly the text of Forbidden: only the token tells the two
	// apart.
	ExpiredToken Cause = "expired-token"
	// BrokenSecret means a pull secret of the Pod cannot be decoded: the
	// kubelet fails before it pulls anything (MakeDockerKeyring returns the
	// decode error), so there is no Pulling Event, no back-off, and the
	// container's waiting reason is the decode error itself
	// (kuberuntime startContainer; the kubelet's reasonCache).
	BrokenSecret Cause = "broken-secret"
)

// DefaultKeyringError is the kubelet's decode error for an auth field
// without ':' (credentialprovider.decodeDockerConfigFieldAuth).
const DefaultKeyringError = "unable to parse auth field, must be formatted as base64(username:password)"

// PullError is the error text containerd reports for the cause.
func PullError(cause Cause, image string) string {
	ref := image
	host := strings.SplitN(image, "/", 2)[0]
	repoTag := strings.TrimPrefix(image, host+"/")
	repo, tag, _ := strings.Cut(repoTag, ":")
	if tag == "" {
		tag = "latest"
	}
	switch cause {
	case Unauthorized:
		return fmt.Sprintf("rpc error: code = Unknown desc = failed to pull and unpack image %q: failed to resolve reference %q: "+
			"unexpected status from HEAD request to https://%s/v2/%s/manifests/%s: 401 Unauthorized", ref, ref, host, repo, tag)
	case AccessDenied:
		return fmt.Sprintf("rpc error: code = Unknown desc = failed to pull and unpack image %q: failed to resolve reference %q: "+
			"pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed", ref, ref)
	case Forbidden, ExpiredToken:
		return fmt.Sprintf("rpc error: code = Unknown desc = failed to pull and unpack image %q: failed to resolve reference %q: "+
			"unexpected status from HEAD request to https://%s/v2/%s/manifests/%s: 403 Forbidden", ref, ref, host, repo, tag)
	case NotFound:
		return fmt.Sprintf("rpc error: code = NotFound desc = failed to pull and unpack image %q: failed to resolve reference %q: %s: not found", ref, ref, ref)
	case Unreachable:
		return fmt.Sprintf("rpc error: code = Unknown desc = failed to pull and unpack image %q: failed to resolve reference %q: "+
			"failed to do request: Head \"https://%s/v2/%s/manifests/%s\": dial tcp: lookup %s: no such host", ref, ref, host, repo, tag, host)
	}
	return fmt.Sprintf("rpc error: code = Unknown desc = failed to pull and unpack image %q: %s", ref, cause)
}

// Options say how far the simulated kubelet got.
type Options struct {
	// Cause of the failure for every container.
	Cause Cause
	// BackOff moves the containers on to ImagePullBackOff, as the kubelet
	// does after the first failure; otherwise they stay in ErrImagePull.
	BackOff bool
	// MissingSecrets are pull secrets the Pod lists that do not exist; the
	// kubelet reports them first.
	MissingSecrets []string
	// KeyringError is the decode error of a BrokenSecret failure;
	// DefaultKeyringError when empty.
	KeyringError string
}

// FailPull writes the Pod status and Events of a failed pull of every
// container's image, through the API as the kubelet does.
func FailPull(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, opts Options) (*corev1.Pod, error) {
	status := pod.Status.DeepCopy()
	status.Phase = corev1.PodPending
	status.HostIP = "10.0.0.1"
	now := metav1.Now()
	status.StartTime = &now
	status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
	}
	status.ContainerStatuses = nil
	var events []*corev1.Event
	if opts.Cause == BrokenSecret {
		events, status.ContainerStatuses = brokenSecret(pod, opts)
		return write(ctx, client, pod, status, events)
	}
	if len(opts.MissingSecrets) > 0 {
		events = append(events, event(pod, "", corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(opts.MissingSecrets, ", "))))
	}
	for _, c := range pod.Spec.Containers {
		pullErr := PullError(opts.Cause, c.Image)
		fieldPath := fmt.Sprintf("spec.containers{%s}", c.Name)
		waiting := &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: pullErr}
		events = append(events,
			event(pod, fieldPath, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image)),
			event(pod, fieldPath, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %s", c.Image, pullErr)),
			event(pod, fieldPath, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull"),
		)
		if opts.BackOff {
			waiting = &corev1.ContainerStateWaiting{
				Reason:  "ImagePullBackOff",
				Message: fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, pullErr),
			}
			events = append(events,
				event(pod, fieldPath, corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", c.Image)),
				event(pod, fieldPath, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff"),
			)
		}
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, State: corev1.ContainerState{Waiting: waiting},
		})
	}

	return write(ctx, client, pod, status, events)
}

// brokenSecret is the kubelet's answer to a pull secret it cannot decode:
// one "Error: <decode error>" Event per container, and the decode error as
// waiting reason and message. It records no FailedToRetrieveImagePullSecret
// (that needs an ErrImagePull) and never backs off (no pull was tried).
func brokenSecret(pod *corev1.Pod, opts Options) ([]*corev1.Event, []corev1.ContainerStatus) {
	msg := opts.KeyringError
	if msg == "" {
		msg = DefaultKeyringError
	}
	var events []*corev1.Event
	var statuses []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		events = append(events, event(pod, fmt.Sprintf("spec.containers{%s}", c.Name), corev1.EventTypeWarning, "Failed", "Error: "+msg))
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: msg, Message: msg}},
		})
	}
	return events, statuses
}

// write stores the status and records the Events, as the kubelet does.
func write(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, status *corev1.PodStatus, events []*corev1.Event) (*corev1.Pod, error) {
	// The scheduler would have bound the Pod; a status update cannot.
	updated := pod.DeepCopy()
	updated.Status = *status
	out, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update status of Pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	for _, e := range events {
		if _, err := client.CoreV1().Events(pod.Namespace).Create(ctx, e, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("record event for Pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	return out, nil
}

func event(pod *corev1.Pod, fieldPath, eventType, reason, message string) *corev1.Event {
	now := metav1.NewTime(time.Now())
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%s", pod.Name, rand.String(10)),
			Namespace: pod.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, FieldPath: fieldPath,
		},
		Reason:              reason,
		Message:             message,
		Type:                eventType,
		Source:              corev1.EventSource{Component: "kubelet", Host: "node-1"},
		ReportingController: "kubelet",
		ReportingInstance:   "node-1",
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
	}
}
