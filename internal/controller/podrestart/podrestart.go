package podrestart

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrForbidden means the controller may not delete Pods: the optional
// restart role is not granted.
var ErrForbidden = errors.New("the controller may not delete Pods: bind the ClusterRole pullsecrets-controller-restart-pods (config/rbac-restart-pods, Helm value rbac.restartPods) to use restartPods")

// Restarter deletes Pods, at most at its rate.
type Restarter struct {
	client  client.Writer
	limiter *rate.Limiter
}

// New returns a Restarter deleting at most perSecond Pods a second.
func New(c client.Writer, perSecond float64) *Restarter {
	return &Restarter{client: c, limiter: rate.NewLimiter(rate.Limit(perSecond), 1)}
}

// Restart deletes the Pod if it is still the one planned (same UID). It
// returns a delay when the rate limit postpones it; a Pod already gone is
// not an error.
func (r *Restarter) Restart(ctx context.Context, namespace, name string, uid types.UID) (time.Duration, error) {
	res := r.limiter.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, nil
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	err := r.client.Delete(ctx, pod, client.Preconditions{UID: &uid})
	switch {
	case err == nil, apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return 0, nil
	case apierrors.IsForbidden(err):
		return 0, ErrForbidden
	default:
		return 0, fmt.Errorf("delete Pod %s/%s: %w", namespace, name, err)
	}
}
