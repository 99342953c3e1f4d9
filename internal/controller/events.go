package controller

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// maxEventMemo bounds how many one-off Events are remembered.
const maxEventMemo = 4096

// eventSink records Events, each key at most once per TTL: most Events are
// about a fact (a Pod restarted, a conflict) that every reconcile sees
// again. The memo is bounded and expires, so losing it costs at most a
// repeated Event.
type eventSink struct {
	recorder events.EventRecorder
	seen     *cache.LRUExpireCache
}

func newEventSink(r events.EventRecorder) *eventSink {
	return &eventSink{recorder: r, seen: cache.NewLRUExpireCache(maxEventMemo)}
}

// once records the Event unless key was recorded within ttl. related, when
// set, is the object the Event is about, and keeps its Events apart from
// others of the same reason: only for Pod restarts, which the rate limit
// bounds. Stuck Pods, retired copies and conflicts are many at once in a
// large fleet: they fold into one client-go series per reason (whose
// message is the first one) and status lists them all.
func (s *eventSink) once(obj client.Object, related runtime.Object, key string, ttl time.Duration, eventType, reason, format string, args ...any) {
	key = string(obj.GetUID()) + "/" + key
	if _, ok := s.seen.Get(key); ok {
		return
	}
	s.seen.Add(key, struct{}{}, ttl)
	s.emit(obj, related, eventType, reason, format, args...)
}

func (s *eventSink) emit(obj client.Object, related runtime.Object, eventType, reason, format string, args ...any) {
	// Without its resourceVersion, so that every status write does not
	// start a new series.
	regarding := &v1alpha1.ClusterPullSecret{ObjectMeta: metav1.ObjectMeta{Name: obj.GetName(), UID: obj.GetUID()}}
	s.recorder.Eventf(regarding, related, eventType, reason, "Reconcile", "%s", fmt.Sprintf(format, args...))
}

// podRef is the related object of a Pod restart's Event.
func podRef(ns, name string) runtime.Object {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}
