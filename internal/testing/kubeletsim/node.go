package kubeletsim

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// The kubelet's image pull back-off (pkg/kubelet/kubelet.go: backOffPeriod
// and MaxContainerBackOff, used by the image manager's backOff): a failed
// pull is tried again after 10 s, then 20 s, doubling up to 5 minutes.
const (
	DefaultBackOff    = 10 * time.Second
	DefaultMaxBackOff = 300 * time.Second
)

// Node is a kubelet stand-in for every Pod of some namespaces: it "pulls"
// each container image with the Pod's pull secrets, as the kubelet chooses
// them (package credentials), marks the Pod Running when every image has a
// credential, and otherwise writes the failure (ErrImagePull, then
// ImagePullBackOff, with FailedToRetrieveImagePullSecret for a missing
// Secret) and tries again after the kubelet's back-off. A Pod's pull
// secrets are read at every try, as the kubelet reads them at every pull:
// a Secret created after the Pod is used by the next try.
type Node struct {
	Client kubernetes.Interface
	// Serves says whether the node runs a namespace's Pods; nil serves all
	// but kube-*.
	Serves func(namespace string) bool
	// BackOff and MaxBackOff default to the kubelet's; tests scale them
	// down.
	BackOff, MaxBackOff time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	pods  map[string]*podState
	pulls int
}

type podState struct {
	failures int
	next     time.Time
}

// Pulls counts the pulls tried so far.
func (n *Node) Pulls() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pulls
}

func (n *Node) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// Run tries the due Pods every interval until ctx ends.
func (n *Node) Run(ctx context.Context, interval time.Duration) error {
	for {
		if err := n.Pass(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Pass tries once every Pod that is not running and whose back-off has
// passed.
func (n *Node) Pass(ctx context.Context) error {
	pods, err := n.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	n.mu.Lock()
	if n.pods == nil {
		n.pods = map[string]*podState{}
	}
	n.mu.Unlock()
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !n.serves(pod.Namespace) || pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodRunning {
			continue
		}
		key := string(pod.UID)
		n.mu.Lock()
		st := n.pods[key]
		if st == nil {
			st = &podState{}
			n.pods[key] = st
		}
		due := !n.now().Before(st.next)
		if due {
			n.pulls++
		}
		n.mu.Unlock()
		if !due {
			continue
		}
		missing, ok := CanPull(ctx, n.Client, pod)
		if ok {
			err = Run(ctx, n.Client, pod)
		} else {
			_, err = FailPull(ctx, n.Client, pod, Options{Cause: AccessDenied, BackOff: st.failures > 0, MissingSecrets: missing})
			n.mu.Lock()
			st.next = n.now().Add(n.backOff(st.failures))
			st.failures++
			n.mu.Unlock()
		}
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

func (n *Node) serves(ns string) bool {
	if n.Serves != nil {
		return n.Serves(ns)
	}
	return len(ns) < 5 || ns[:5] != "kube-"
}

func (n *Node) backOff(failures int) time.Duration {
	base, ceiling := n.BackOff, n.MaxBackOff
	if base == 0 {
		base = DefaultBackOff
	}
	if ceiling == 0 {
		ceiling = DefaultMaxBackOff
	}
	d := base
	for range failures {
		d *= 2
		if d >= ceiling {
			return ceiling
		}
	}
	return d
}

// CanPull reports whether the Pod's pull secrets give a credential for
// every image of its containers and init containers, as the kubelet would
// choose them, and which of its pull secrets are missing.
func CanPull(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) ([]string, bool) {
	var secrets []credentials.Secret
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			missing = append(missing, ref.Name)
			continue
		}
		secrets = append(secrets, credentials.Secret{Namespace: s.Namespace, Name: s.Name, Type: string(s.Type), Data: s.Data})
	}
	keyring := credentials.NewKeyring(secrets)
	if keyring.Err() != nil {
		return missing, false
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		m, err := keyring.Lookup(c.Image)
		if err != nil || len(m.Credentials) == 0 {
			return missing, false
		}
	}
	return missing, true
}

// Run marks the Pod Running, as the kubelet does once the images are
// pulled.
func Run(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	now := metav1.Now()
	updated := pod.DeepCopy()
	updated.Status.Phase = corev1.PodRunning
	updated.Status.StartTime = &now
	updated.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	updated.Status.ContainerStatuses = nil
	started := true
	for _, c := range pod.Spec.Containers {
		updated.Status.ContainerStatuses = append(updated.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}
