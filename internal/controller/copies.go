package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// errForeignSecret: a Secret of that name exists and is not ours to touch.
var errForeignSecret = errors.New("a Secret of that name exists and was not created by this ClusterPullSecret")

// copies writes Secret copies. The controller has no permission to read
// Secrets outside the source namespaces, so every write is built to be safe
// without a read: creates fail on an existing Secret, patches first test the
// owner label, and deletes carry the UID seen in the metadata cache.
type copies struct {
	client client.Client
	log    *writeLog
}

func copyMetaFrom(obj metav1.Object) *copyMeta {
	return &copyMeta{
		Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		Owner: obj.GetLabels()[v1alpha1.OwnerLabel], Hash: obj.GetAnnotations()[v1alpha1.DataHashAnnotation],
	}
}

func desiredCopy(namespace, name, owner string, src sourceState) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      name,
			Labels:    map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: owner},
			Annotations: map[string]string{
				v1alpha1.SourceAnnotation:   src.Secret.Namespace + "/" + src.Secret.Name,
				v1alpha1.DataHashAnnotation: src.Hash,
			},
		},
		Type: src.Secret.Type,
		Data: src.Secret.Data,
	}
}

// create creates a copy. errForeignSecret means a Secret of that name
// already exists that our cache does not show as ours.
func (c *copies) create(ctx context.Context, desired *corev1.Secret) (*copyMeta, error) {
	obj := desired.DeepCopy()
	if err := c.client.Create(ctx, obj); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, errForeignSecret
		}
		return nil, fmt.Errorf("create Secret %s/%s: %w", desired.Namespace, desired.Name, err)
	}
	meta := copyMetaFrom(obj)
	c.log.recordCopy(key(obj), "", meta, false)
	return meta, nil
}

type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func pointer(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(p)
	}
	return "/" + strings.Join(parts, "/")
}

// update brings an existing copy of ours to the desired data. The patch
// tests the owner label first, so a Secret that stopped being ours since the
// cache saw it is never modified. A type change cannot be patched (the field
// is immutable): the copy is then replaced.
func (c *copies) update(ctx context.Context, current *copyMeta, desired *corev1.Secret) (*copyMeta, error) {
	ops := []jsonPatchOp{
		{Op: "test", Path: pointer("metadata", "labels", v1alpha1.OwnerLabel), Value: current.Owner},
		{Op: "test", Path: pointer("metadata", "uid"), Value: string(current.UID)},
		{Op: "replace", Path: pointer("data"), Value: desired.Data},
		{Op: "add", Path: pointer("metadata", "annotations", v1alpha1.DataHashAnnotation), Value: desired.Annotations[v1alpha1.DataHashAnnotation]},
		{Op: "add", Path: pointer("metadata", "annotations", v1alpha1.SourceAnnotation), Value: desired.Annotations[v1alpha1.SourceAnnotation]},
		{Op: "replace", Path: pointer("type"), Value: desired.Type},
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: current.Namespace, Name: current.Name}}
	err = c.client.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, raw))
	switch {
	case err == nil:
		meta := copyMetaFrom(obj)
		c.log.recordCopy(key(obj), current.ResourceVersion, meta, false)
		return meta, nil
	case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "immutable"):
		// The source changed type (dockercfg <-> dockerconfigjson).
		if err := c.delete(ctx, current); err != nil {
			return nil, err
		}
		return c.create(ctx, desired)
	case apierrors.IsInvalid(err) || apierrors.IsConflict(err):
		// A failed test op is reported as 422; the Secret is no longer the
		// one we own.
		return nil, errForeignSecret
	default:
		return nil, fmt.Errorf("update Secret %s/%s: %w", current.Namespace, current.Name, err)
	}
}

// delete deletes a copy of ours, only if it is still the object we saw.
func (c *copies) delete(ctx context.Context, current *copyMeta) error {
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: current.Namespace, Name: current.Name}}
	uid := current.UID
	err := c.client.Delete(ctx, obj, client.Preconditions{UID: &uid})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", current.Namespace, current.Name, err)
	}
	c.log.recordCopy(types.NamespacedName{Namespace: current.Namespace, Name: current.Name}, current.ResourceVersion, nil, true)
	return nil
}

func key(obj metav1.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
}
