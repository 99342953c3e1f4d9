package accounts

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/pullsecrets/pullsecrets/internal/nsindex"
)

// ErrNotSynced is returned by reads before the first list is in.
var ErrNotSynced = nsindex.ErrNotSynced

// Index holds an Account of every ServiceAccount, by namespace.
type Index struct {
	*nsindex.Index[*Account]
}

// New returns an empty index. intern (nil: none) shares strings many
// ServiceAccounts hold; onChange (nil: none) is called, once the index is
// synced, with any ServiceAccount that appears, changes (old and new) or
// goes (new is nil).
func New(intern Intern, onChange func(namespace string, old, new *Account)) *Index {
	if intern == nil {
		intern = same
	}
	convert := func(obj any) (*Account, error) {
		sa, ok := obj.(*corev1.ServiceAccount)
		if !ok {
			return nil, fmt.Errorf("accounts: unexpected object %T", obj)
		}
		return FromObject(sa, intern), nil
	}
	return &Index{nsindex.New(convert, onChange)}
}

// Start runs the index's reflector until ctx ends.
func (ix *Index) Start(ctx context.Context, c kubernetes.Interface) {
	lw := cache.NewListWatchFromClient(c.CoreV1().RESTClient(), "serviceaccounts", metav1.NamespaceAll, fields.Everything())
	go ix.Run(ctx, "accounts", lw, &corev1.ServiceAccount{})
}

// InNamespace returns the namespace's ServiceAccounts as kept (Object).
func (ix *Index) InNamespace(namespace string) ([]*corev1.ServiceAccount, error) {
	var out []*corev1.ServiceAccount
	err := ix.Index.InNamespace(namespace, func(a *Account) { out = append(out, a.Object()) })
	return out, err
}

// Account returns what is kept of one ServiceAccount, or a NotFound error.
// It is the index's own: read it, never change it. A caller that needs only
// the UID or the resourceVersion reads them here instead of building the
// object.
func (ix *Index) Account(namespace, name string) (*Account, error) {
	a, ok, err := ix.Get(namespace, name)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), name)
	}
	return a, nil
}
