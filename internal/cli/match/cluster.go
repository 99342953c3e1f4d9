package match

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// readSecrets reads the named Secrets of the namespace in order, as
// kubelet.getPullSecretsForPod does: an empty name is skipped, a Secret
// that does not exist is skipped and reported (secret is nil).
func readSecrets(ctx context.Context, client kubernetes.Interface, namespace string, names []string) ([]pullSecret, error) {
	var out []pullSecret
	for _, name := range names {
		if name == "" {
			continue // API validation let such entries in; the kubelet ignores them
		}
		ref := credentials.Secret{Namespace: namespace, Name: name}.Ref()
		s, err := client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, pullSecret{ref: ref})
			continue
		case err != nil:
			return nil, fmt.Errorf("get Secret %s: %w", ref, err)
		}
		out = append(out, pullSecret{ref: ref, secret: &credentials.Secret{
			Namespace: s.Namespace, Name: s.Name, Type: string(s.Type), Data: s.Data,
		}})
	}
	return out, nil
}

// serviceAccountPullSecrets returns the names a ServiceAccount lists: what
// the ServiceAccount admission plugin copies into a new Pod that lists
// none of its own.
func serviceAccountPullSecrets(ctx context.Context, client kubernetes.Interface, namespace, name string) ([]string, error) {
	sa, err := client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return refNames(sa.ImagePullSecrets), nil
}

// podPullSecrets returns the names a Pod lists, which the kubelet reads.
func podPullSecrets(ctx context.Context, client kubernetes.Interface, namespace, name string) ([]string, error) {
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get Pod %s/%s: %w", namespace, name, err)
	}
	return refNames(pod.Spec.ImagePullSecrets), nil
}

func refNames(refs []corev1.LocalObjectReference) []string {
	names := make([]string, 0, len(refs))
	for _, r := range refs {
		names = append(names, r.Name)
	}
	return names
}
