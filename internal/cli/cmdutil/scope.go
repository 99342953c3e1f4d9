package cmdutil

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Scope is the set of namespaces a command works on: the one namespace of
// -n (or the kubeconfig context), every namespace (-A), or the namespaces
// whose labels match -l.
//
// Commands LIST each resource in each of ListNamespaces: one cluster-wide
// LIST for -A and one namespaced LIST for a single namespace, whatever the
// number of namespaces; for -l, one namespaced LIST per selected namespace,
// so that a user whose rights cover only those namespaces (and the LIST of
// Namespaces that -l needs) can use it, and nothing outside the selection
// is read.
type Scope struct {
	// AllNamespaces is -A.
	AllNamespaces bool
	// Selector is -l: a label selector on namespaces.
	Selector string
	// Namespace is the single namespace when neither -A nor -l is given.
	Namespace string

	selector labels.Selector
	// names holds the namespaces -l selected; nil for -A and one namespace.
	names map[string]bool
	// selected lists them, sorted.
	selected []string
}

// ListWorkers is how many LISTs a command sends at once for -l.
const ListWorkers = 8

// AddScopeFlags adds -A/--all-namespaces and -l/--selector (namespaces) to
// cmd.
func AddScopeFlags(cmd *cobra.Command, s *Scope) {
	cmd.Flags().BoolVarP(&s.AllNamespaces, "all-namespaces", "A", false, "every namespace")
	cmd.Flags().StringVarP(&s.Selector, "selector", "l", "", "namespaces whose labels match this selector (e.g. team=shop)")
}

// Complete resolves the namespace and parses the selector; bad input is a
// usage error.
func (s *Scope) Complete(cmd *cobra.Command, f Factory) error {
	if s.AllNamespaces && s.Selector != "" {
		return UsageErrorf(cmd, "give -A or -l, not both")
	}
	if s.Selector != "" {
		sel, err := labels.Parse(s.Selector)
		if err != nil {
			return UsageErrorf(cmd, "invalid selector %q: %v", s.Selector, err)
		}
		s.selector = sel
	}
	if s.AllNamespaces || s.Selector != "" {
		return nil
	}
	ns, _, err := f.Namespace()
	if err != nil {
		return err
	}
	s.Namespace = ns
	return nil
}

// Single reports whether the scope is one namespace.
func (s *Scope) Single() bool { return !s.AllNamespaces && s.Selector == "" }

// ListNamespaces are the namespaces to send each LIST to, after Resolve:
// the single namespace, "" (all at once) for -A, or each namespace -l
// selected.
func (s *Scope) ListNamespaces() []string {
	switch {
	case s.Single():
		return []string{s.Namespace}
	case s.selector != nil:
		return s.selected
	}
	return []string{metav1.NamespaceAll}
}

// EachNamespace calls list with each of ListNamespaces, up to ListWorkers
// at a time, and returns the first error. list must be safe to call
// concurrently.
func (s *Scope) EachNamespace(list func(namespace string) error) error {
	var tasks []func() error
	for _, ns := range s.ListNamespaces() {
		tasks = append(tasks, func() error { return list(ns) })
	}
	return RunAll(tasks, ListWorkers)
}

// RunAll runs the tasks, up to workers at a time, and returns the error of
// the first task (in order) that failed.
func RunAll(tasks []func() error, workers int) error {
	errs := make([]error, len(tasks))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(tasks)) {
		wg.Go(func() {
			for i := range jobs {
				errs[i] = tasks[i]()
			}
		})
	}
	for i := range tasks {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Resolve lists the namespaces of the scope, sorted: one LIST of
// Namespaces (with the label selector for -l), or none for a single
// namespace. It must run before Contains.
func (s *Scope) Resolve(ctx context.Context, client kubernetes.Interface) ([]string, error) {
	if s.Single() {
		return []string{s.Namespace}, nil
	}
	opts := metav1.ListOptions{}
	if s.selector != nil {
		opts.LabelSelector = s.selector.String()
	}
	list, err := client.CoreV1().Namespaces().List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list Namespaces: %w", err)
	}
	names := make([]string, 0, len(list.Items))
	for _, ns := range list.Items {
		if ns.Status.Phase == corev1.NamespaceTerminating {
			continue
		}
		names = append(names, ns.Name)
	}
	slices.Sort(names)
	if s.selector != nil {
		s.selected = names
		s.names = make(map[string]bool, len(names))
		for _, n := range names {
			s.names[n] = true
		}
	}
	return names, nil
}

// Contains reports whether an object's namespace is in the scope.
func (s *Scope) Contains(namespace string) bool {
	switch {
	case s.Single():
		return namespace == s.Namespace
	case s.names != nil:
		return s.names[namespace]
	}
	return true
}

// Describe names the scope for messages: `namespace "shop"`, `every
// namespace`, `namespaces matching team=shop`.
func (s *Scope) Describe() string {
	switch {
	case s.AllNamespaces:
		return "every namespace"
	case s.Selector != "":
		return "namespaces matching " + s.Selector
	}
	return fmt.Sprintf("namespace %q", s.Namespace)
}

// DescribeList names a list namespace for messages: `namespace "shop"`, or
// the scope's description for a cluster-wide LIST.
func (s *Scope) DescribeList(ns string) string {
	if ns == metav1.NamespaceAll {
		return s.Describe()
	}
	return fmt.Sprintf("namespace %q", ns)
}
