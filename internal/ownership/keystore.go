package ownership

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// LoadOrCreateKey reads the key Secret in namespace, creating it with a new
// random key when it does not exist. Replicas racing to create it all end
// up with the one that won.
func LoadOrCreateKey(ctx context.Context, c client.Client, reader client.Reader, namespace string) (*Key, error) {
	ref := types.NamespacedName{Namespace: namespace, Name: v1alpha1.OwnershipKeySecretName}
	for attempt := 0; attempt < 3; attempt++ {
		var s corev1.Secret
		err := reader.Get(ctx, ref, &s)
		if err == nil {
			return keyFrom(&s)
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("read ownership key Secret %s: %w", ref, err)
		}
		secret, err := GenerateKey()
		if err != nil {
			return nil, err
		}
		obj := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: namespace, Name: v1alpha1.OwnershipKeySecretName,
				Labels: map[string]string{"app.kubernetes.io/name": "pullsecrets", "app.kubernetes.io/component": "ownership-key"},
			},
			Type: v1alpha1.OwnershipKeySecretType,
			Data: map[string][]byte{v1alpha1.OwnershipKeyDataKey: secret},
		}
		err = c.Create(ctx, obj)
		if err == nil {
			return NewKey(secret)
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create ownership key Secret %s: %w", ref, err)
		}
	}
	return nil, fmt.Errorf("ownership key Secret %s: created and deleted concurrently", ref)
}

func keyFrom(s *corev1.Secret) (*Key, error) {
	if s.Type != v1alpha1.OwnershipKeySecretType {
		return nil, fmt.Errorf("ownership key Secret %s/%s has type %q, want %q: %w", s.Namespace, s.Name, s.Type, v1alpha1.OwnershipKeySecretType, ErrNoKey)
	}
	k, err := NewKey(s.Data[v1alpha1.OwnershipKeyDataKey])
	if err != nil {
		return nil, fmt.Errorf("ownership key Secret %s/%s: %w", s.Namespace, s.Name, ErrNoKey)
	}
	return k, nil
}
