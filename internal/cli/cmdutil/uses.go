package cmdutil

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/secretuse"
)

// ReadUses reads, in each of the scope's list namespaces, what can hold a
// Secret (package secretuse): ServiceAccounts, Pods (page by page) and the
// templates of Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
// CronJobs and ReplicationControllers, one LIST per kind; keep says which
// namespaces matter. rename and detach keep a Secret by these, with the
// controller's rules.
func ReadUses(ctx context.Context, client kubernetes.Interface, scope *Scope, keep func(namespace string) bool) (map[string]*secretuse.Namespace, error) {
	out := map[string]*secretuse.Namespace{}
	var mu sync.Mutex
	at := func(ns string) *secretuse.Namespace {
		n := out[ns]
		if n == nil {
			n = &secretuse.Namespace{}
			out[ns] = n
		}
		return n
	}
	addTemplate := func(obj any) {
		t, ok := secretuse.TemplateOf(obj)
		if !ok || !keep(t.Namespace) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		n := at(t.Namespace)
		n.Templates = append(n.Templates, t)
	}
	err := scope.EachNamespace(func(ns string) error {
		if ns != metav1.NamespaceAll && !keep(ns) {
			return nil
		}
		opts := metav1.ListOptions{}
		where := inNamespace(ns)
		apps, batch, core := client.AppsV1(), client.BatchV1(), client.CoreV1()
		sas, err := core.ServiceAccounts(ns).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list ServiceAccounts%s: %w", where, err)
		}
		mu.Lock()
		for i := range sas.Items {
			if sa := &sas.Items[i]; keep(sa.Namespace) {
				at(sa.Namespace).ServiceAccounts = append(at(sa.Namespace).ServiceAccounts, sa)
			}
		}
		mu.Unlock()
		err = ListPods(ctx, client, ns, "", func(p *corev1.Pod) {
			if !keep(p.Namespace) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			at(p.Namespace).Pods = append(at(p.Namespace).Pods, p)
		})
		if err != nil {
			return err
		}
		lists := []struct {
			kind string
			list func() ([]any, error)
		}{
			{"Deployments", func() ([]any, error) {
				l, err := apps.Deployments(ns).List(ctx, opts)
				return items(l, err, func() []any { return ptrs(l.Items) })
			}},
			{"ReplicaSets", func() ([]any, error) {
				l, err := apps.ReplicaSets(ns).List(ctx, opts)
				return items(l, err, func() []any { return ptrs(l.Items) })
			}},
			{"StatefulSets", func() ([]any, error) {
				l, err := apps.StatefulSets(ns).List(ctx, opts)
				return items(l, err, func() []any { return ptrs(l.Items) })
			}},
			{"DaemonSets", func() ([]any, error) {
				l, err := apps.DaemonSets(ns).List(ctx, opts)
				return items(l, err, func() []any { return ptrs(l.Items) })
			}},
			{"Jobs", func() ([]any, error) {
				l, err := batch.Jobs(ns).List(ctx, opts)
				return items(l, err, func() []any { return ptrs(l.Items) })
			}},
			{"CronJobs", func() ([]any, error) {
				l, err := batch.CronJobs(ns).List(ctx, opts)
				return items(l, err, func() []any { return ptrs(l.Items) })
			}},
			{"ReplicationControllers", func() ([]any, error) {
				l, err := core.ReplicationControllers(ns).List(ctx, opts)
				return items(l, err, func() []any { return ptrs(l.Items) })
			}},
		}
		for _, l := range lists {
			objs, err := l.list()
			if err != nil {
				return fmt.Errorf("list %s%s: %w", l.kind, where, err)
			}
			for _, obj := range objs {
				addTemplate(obj)
			}
		}
		return nil
	})
	return out, err
}

// items returns the items of a LIST that succeeded.
func items[L any](_ L, err error, get func() []any) ([]any, error) {
	if err != nil {
		return nil, err
	}
	return get(), nil
}

// ptrs returns pointers to the items, as any.
func ptrs[T any](list []T) []any {
	out := make([]any, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}
