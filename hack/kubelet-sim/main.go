// Command kubelet-sim stands in for the kubelet in the demo: the local
// control plane has no nodes, so Pods would stay Pending forever. Every
// second it looks at new Pods and decides, as a kubelet would, whether
// their images can be pulled: a Pod whose pull secrets give a credential
// for every image (the credentials library's lookup, exactly the kubelet's
// matching) is marked Running; any other Pod gets ErrImagePull and then
// ImagePullBackOff, with the Events a kubelet writes (package kubeletsim).
//
//	kubelet-sim --kubeconfig FILE [--namespace NS ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

type namespaces []string

func (n *namespaces) String() string     { return strings.Join(*n, ",") }
func (n *namespaces) Set(v string) error { *n = append(*n, v); return nil }

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	var only namespaces
	flag.Var(&only, "namespace", "namespace to serve (repeatable); default: all but kube-*")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubelet-sim: %v\n", err)
		os.Exit(1)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	for {
		if err := pass(ctx, client, only); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "kubelet-sim: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// pass handles every Pod the simulated kubelet has not started yet.
func pass(ctx context.Context, client kubernetes.Interface, only namespaces) error {
	pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !served(pod.Namespace, only) || pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodRunning {
			continue
		}
		if len(pod.Status.ContainerStatuses) > 0 && pod.Status.ContainerStatuses[0].State.Waiting != nil &&
			pod.Status.ContainerStatuses[0].State.Waiting.Reason == "ImagePullBackOff" {
			continue // already failing; a real kubelet would keep backing off
		}
		missing, ok := canPull(ctx, client, pod)
		if ok {
			err = run(ctx, client, pod)
		} else {
			_, err = kubeletsim.FailPull(ctx, client, pod, kubeletsim.Options{Cause: kubeletsim.AccessDenied, BackOff: true, MissingSecrets: missing})
		}
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

func served(ns string, only namespaces) bool {
	if len(only) == 0 {
		return !strings.HasPrefix(ns, "kube-")
	}
	for _, n := range only {
		if n == ns {
			return true
		}
	}
	return false
}

// canPull reports whether the Pod's pull secrets give a credential for
// every image, and which of them are missing.
func canPull(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) ([]string, bool) {
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
	for _, c := range pod.Spec.Containers {
		m, err := keyring.Lookup(c.Image)
		if err != nil || len(m.Credentials) == 0 {
			return missing, false
		}
	}
	return missing, true
}

// run marks the Pod Running, as the kubelet does once the images are pulled.
func run(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

func ptr[T any](v T) *T { return &v }
