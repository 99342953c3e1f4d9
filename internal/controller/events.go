package controller

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

// once records the Event unless key was recorded within ttl.
func (s *eventSink) once(obj client.Object, key string, ttl time.Duration, eventType, reason, format string, args ...any) {
	key = string(obj.GetUID()) + "/" + key
	if _, ok := s.seen.Get(key); ok {
		return
	}
	s.seen.Add(key, struct{}{}, ttl)
	s.emit(obj, eventType, reason, format, args...)
}

func (s *eventSink) emit(obj client.Object, eventType, reason, format string, args ...any) {
	action := "Reconcile"
	if eventType == corev1.EventTypeWarning || eventType == corev1.EventTypeNormal {
		s.recorder.Eventf(obj, nil, eventType, reason, action, "%s", fmt.Sprintf(format, args...))
	}
}
