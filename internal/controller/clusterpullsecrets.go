package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
	"github.com/pullsecrets/pullsecrets/internal/selection"
)

// minVerifyInterval is the least spec.verify.interval honoured (the CRD
// refuses less; an object stored before that rule still gets no more).
const minVerifyInterval = time.Minute

// cpsGVK is the ClusterPullSecret kind. The controller caches it
// unstructured and decodes each object itself, so that one object it
// cannot decode (stored under an older schema, or edited around the
// validation) is reported and skipped instead of stopping the cache.
var cpsGVK = v1alpha1.GroupVersion.WithKind("ClusterPullSecret")

func newUnstructuredCPS() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(cpsGVK)
	return u
}

// decodedCPS is one ClusterPullSecret: the object when it decodes, and
// what the planner sees of it.
type decodedCPS struct {
	obj  *v1alpha1.ClusterPullSecret // nil when it does not decode
	plan planner.ClusterPullSecret
	sel  *selection.Selector
}

// cpsCache decodes the cached ClusterPullSecrets, memoized by UID and
// resourceVersion.
type cpsCache struct {
	client client.Client
	mu     sync.Mutex
	memo   map[types.UID]decodedCPS
	rv     map[types.UID]string
}

func newCPSCache(c client.Client) *cpsCache {
	return &cpsCache{client: c, memo: map[types.UID]decodedCPS{}, rv: map[types.UID]string{}}
}

// list returns every ClusterPullSecret.
func (c *cpsCache) list(ctx context.Context) ([]decodedCPS, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(cpsGVK.GroupVersion().WithKind("ClusterPullSecretList"))
	if err := c.client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list ClusterPullSecrets: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]decodedCPS, 0, len(list.Items))
	live := make(map[types.UID]bool, len(list.Items))
	for i := range list.Items {
		u := &list.Items[i]
		live[u.GetUID()] = true
		out = append(out, c.decoded(u))
	}
	for uid := range c.memo {
		if !live[uid] {
			delete(c.memo, uid)
			delete(c.rv, uid)
		}
	}
	return out, nil
}

// get returns one ClusterPullSecret, decoded, and the cached object: the
// cache's own, not a copy, so callers must not change it (they copy it to
// write). Every namespace plan that reports a conflict or a stuck Pod
// reads its ClusterPullSecret: a deep copy and a decode each time were a
// copy of the whole status per plan, many at once in a cold start.
func (c *cpsCache) get(ctx context.Context, name string) (decodedCPS, *unstructured.Unstructured, error) {
	u := newUnstructuredCPS()
	if err := c.client.Get(ctx, types.NamespacedName{Name: name}, u, client.UnsafeDisableDeepCopy); err != nil {
		return decodedCPS{}, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decoded(u), u, nil
}

// decoded returns u decoded, from the memo when its version was decoded
// before. c.mu is held.
func (c *cpsCache) decoded(u *unstructured.Unstructured) decodedCPS {
	if d, ok := c.memo[u.GetUID()]; ok && c.rv[u.GetUID()] == u.GetResourceVersion() {
		return d
	}
	d := decode(u)
	c.memo[u.GetUID()], c.rv[u.GetUID()] = d, u.GetResourceVersion()
	return d
}

// decode turns an object into what the controller works with; a spec it
// cannot use becomes an Invalid planner entry, which freezes everything of
// it.
func decode(u *unstructured.Unstructured) decodedCPS {
	d := decodedCPS{plan: planner.ClusterPullSecret{
		Name: u.GetName(), UID: string(u.GetUID()), Created: u.GetCreationTimestamp().Time, Deleting: u.GetDeletionTimestamp() != nil,
	}}
	var obj v1alpha1.ClusterPullSecret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
		d.plan.Invalid = "the object cannot be read: " + describeDecodeError(err)
		return d
	}
	d.obj = &obj
	d.plan.SecretName = secretNameOf(&obj)
	d.plan.RestartPods = obj.Spec.RestartPods == v1alpha1.RestartOnPullFailure
	if err := validate(&obj); err != nil {
		d.plan.Invalid = err.Error()
		return d
	}
	sel, err := selection.New(&obj.Spec)
	if err != nil {
		d.plan.Invalid = err.Error()
		return d
	}
	d.sel, d.plan.Selector = sel, sel
	return d
}

// validate checks what the CRD schema may have let through.
func validate(obj *v1alpha1.ClusterPullSecret) error {
	if v := obj.Spec.Verify; v != nil && v.Interval != nil && v.Interval.Duration < minVerifyInterval {
		return fmt.Errorf("spec.verify.interval: %s is less than the minimum %s", v.Interval.Duration, minVerifyInterval)
	}
	return nil
}

// describeDecodeError keeps the decoder's message short: it goes into
// status and Events.
func describeDecodeError(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}

func secretNameOf(cps *v1alpha1.ClusterPullSecret) string {
	if cps.Spec.SecretName != "" {
		return cps.Spec.SecretName
	}
	return cps.Name
}
