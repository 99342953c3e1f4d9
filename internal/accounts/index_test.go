package accounts

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Account answers ErrNotSynced before the first list, then the kept UID
// and resourceVersion of a listed ServiceAccount, the new ones after a
// watched update, and NotFound for one that is not there or is gone.
func TestAccountReadsTheKeptVersion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := watch.NewFake()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			sa := full("shop", "app")
			sa.ResourceVersion = "3"
			return &corev1.ServiceAccountList{ListMeta: metav1.ListMeta{ResourceVersion: "3"}, Items: []corev1.ServiceAccount{*sa}}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return events, nil },
	}
	ix := New(nil, nil)
	if _, err := ix.Account("shop", "app"); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before the list: %v", err)
	}
	go ix.Run(ctx, "accounts-test", listThenWatch{lw}, &corev1.ServiceAccount{})
	if err := ix.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := ix.Account("shop", "app")
	if err != nil || a.UID != "uid-app" || a.ResourceVersion != "3" {
		t.Fatalf("listed: %+v, %v", a, err)
	}
	if _, err := ix.Account("shop", "web"); !apierrors.IsNotFound(err) {
		t.Fatalf("a ServiceAccount never listed: %v", err)
	}

	updated := full("shop", "app")
	updated.ResourceVersion = "4"
	g := NewWithT(t)
	version := func() (string, error) {
		a, err := ix.Account("shop", "app")
		if err != nil {
			return "", err
		}
		return a.ResourceVersion, nil
	}
	events.Modify(updated)
	g.Eventually(version).WithTimeout(10 * time.Second).Should(Equal("4"))
	events.Delete(updated)
	g.Eventually(func() bool { _, err := version(); return apierrors.IsNotFound(err) }).WithTimeout(10 * time.Second).Should(BeTrue())
}

// listThenWatch tells the reflector to list, then watch: the fake watch
// cannot stream the initial list (client-go's WatchListClient).
type listThenWatch struct{ *cache.ListWatch }

func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }
