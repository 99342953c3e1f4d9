package cmdutil

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
)

// SystemNamespaces are left out of -A and --namespace-selector by the
// verbs that write, unless named (-n, or a --namespace-selector that names
// them by kubernetes.io/metadata.name): no pull secret of a team belongs
// there.
var SystemNamespaces = []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// Scope is where a command works and on which objects:
//
//   - the namespaces: the one namespace of -n (or the kubeconfig context),
//     every namespace (-A), or those whose labels match
//     --namespace-selector;
//   - the objects in them: with -l, only those whose labels match, as
//     kubectl's -l selects objects (which objects, the verb says).
//
// -n with -A or --namespace-selector is a usage error, never silently
// dropped; -l combines with any of them.
//
// Commands LIST each resource in each of ListNamespaces: one cluster-wide
// LIST for -A and one namespaced LIST for a single namespace, whatever the
// number of namespaces; for --namespace-selector, one namespaced LIST per
// selected namespace, so that a user whose rights cover only those
// namespaces (and the LIST of Namespaces the selector needs) can use it,
// and nothing outside the selection is read.
type Scope struct {
	// AllNamespaces is -A.
	AllNamespaces bool
	// Selector is -l: a label selector on the objects the verb works on.
	Selector string
	// NamespaceSelector is --namespace-selector: a label selector on
	// Namespaces.
	NamespaceSelector string
	// Namespace is the single namespace when neither -A nor
	// --namespace-selector is given.
	Namespace string
	// Writes is set by verbs that write: -A and --namespace-selector then
	// leave out SystemNamespaces unless named.
	Writes bool

	objects    labels.Selector
	namespaces labels.Selector
	// names holds the namespaces of a multi-namespace scope, after
	// Resolve; nil for one namespace.
	names map[string]bool
	// selected lists them, sorted.
	selected []string
	// skipped are the system namespaces Resolve left out.
	skipped []string
	// terminating is set when the single namespace is being deleted.
	terminating bool
}

// ListWorkers is how many LISTs a command sends at once for
// --namespace-selector.
const ListWorkers = 8

// AddScopeFlags adds -A/--all-namespaces, -l/--selector and
// --namespace-selector to cmd; objects says what -l selects ("Pods",
// "ServiceAccounts").
func AddScopeFlags(cmd *cobra.Command, s *Scope, objects string) {
	cmd.Flags().BoolVarP(&s.AllNamespaces, "all-namespaces", "A", false, "every namespace")
	cmd.Flags().StringVarP(&s.Selector, "selector", "l", "", "only the "+objects+" whose labels match this selector (e.g. app=web), as kubectl's -l; combines with -n, -A and --namespace-selector")
	cmd.Flags().StringVar(&s.NamespaceSelector, "namespace-selector", "", "the namespaces whose labels match this selector (e.g. team=shop), instead of -n")
}

// Complete resolves the namespace and parses the selectors; a wrong
// combination or selector is a usage error.
func (s *Scope) Complete(cmd *cobra.Command, f Factory) error {
	ns, explicit, err := f.Namespace()
	if err != nil {
		return err
	}
	switch {
	case s.AllNamespaces && s.NamespaceSelector != "":
		return UsageErrorf(cmd, "give -A or --namespace-selector, not both")
	case explicit && s.AllNamespaces:
		return UsageErrorf(cmd, "give -n or -A, not both")
	case explicit && s.NamespaceSelector != "":
		return UsageErrorf(cmd, "give -n or --namespace-selector, not both")
	}
	if s.Selector != "" {
		if s.objects, err = labels.Parse(s.Selector); err != nil {
			return UsageErrorf(cmd, "invalid selector %q: %v", s.Selector, err)
		}
	}
	if s.NamespaceSelector != "" {
		if s.namespaces, err = labels.Parse(s.NamespaceSelector); err != nil {
			return UsageErrorf(cmd, "invalid namespace selector %q: %v", s.NamespaceSelector, err)
		}
	}
	if s.Single() {
		s.Namespace = ns
	}
	return nil
}

// Single reports whether the scope is one namespace.
func (s *Scope) Single() bool { return !s.AllNamespaces && s.NamespaceSelector == "" }

// ObjectSelector is the -l selector for LISTs ("" without -l).
func (s *Scope) ObjectSelector() string {
	if s.objects == nil {
		return ""
	}
	return s.objects.String()
}

// Matches reports whether an object's labels match -l (always true without
// -l).
func (s *Scope) Matches(objLabels map[string]string) bool {
	return s.objects == nil || s.objects.Matches(labels.Set(objLabels))
}

// ListNamespaces are the namespaces to send each LIST to, after Resolve:
// the single namespace, "" (all at once) for -A, or each namespace
// --namespace-selector selected.
func (s *Scope) ListNamespaces() []string {
	switch {
	case s.Single():
		return []string{s.Namespace}
	case s.namespaces != nil:
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

// Resolve learns the namespaces of the scope, sorted, and checks that the
// scope names something: a single namespace must exist (one GET; a user
// who may not read it is taken at their word), and -A or
// --namespace-selector must leave at least one namespace (one LIST of
// Namespaces, with the selector). It must run before Contains.
func (s *Scope) Resolve(ctx context.Context, client kubernetes.Interface) ([]string, error) {
	if s.Single() {
		ns, err := client.CoreV1().Namespaces().Get(ctx, s.Namespace, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, &ExitError{Code: ExitProblems, Err: fmt.Errorf("namespace %q does not exist", s.Namespace)}
		case apierrors.IsForbidden(err):
			// May not read Namespaces: its LISTs will say what it holds.
		case err != nil:
			return nil, fmt.Errorf("get Namespace %s: %w", s.Namespace, err)
		default:
			s.terminating = ns.Status.Phase == corev1.NamespaceTerminating
		}
		return []string{s.Namespace}, nil
	}
	opts := metav1.ListOptions{}
	if s.namespaces != nil {
		opts.LabelSelector = s.namespaces.String()
	}
	list, err := client.CoreV1().Namespaces().List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list Namespaces: %w", err)
	}
	names := make([]string, 0, len(list.Items))
	for _, ns := range list.Items {
		switch {
		case ns.Status.Phase == corev1.NamespaceTerminating:
		case s.Writes && slices.Contains(SystemNamespaces, ns.Name) && !s.namesNamespace(ns.Name):
			s.skipped = append(s.skipped, ns.Name)
		default:
			names = append(names, ns.Name)
		}
	}
	slices.Sort(names)
	slices.Sort(s.skipped)
	s.selected = names
	s.names = make(map[string]bool, len(names))
	for _, n := range names {
		s.names[n] = true
	}
	if len(names) == 0 {
		return nil, &ExitError{Code: ExitProblems, Err: fmt.Errorf("no namespace in %s", s.describeNamespaces())}
	}
	return names, nil
}

// namesNamespace reports whether --namespace-selector names ns by its
// kubernetes.io/metadata.name label (= or in).
func (s *Scope) namesNamespace(ns string) bool {
	if s.namespaces == nil {
		return false
	}
	reqs, _ := s.namespaces.Requirements()
	for _, r := range reqs {
		if r.Key() == corev1.LabelMetadataName && (r.Operator() == selection.Equals || r.Operator() == selection.DoubleEquals || r.Operator() == selection.In) && r.Values().Has(ns) {
			return true
		}
	}
	return false
}

// Skipped returns the system namespaces Resolve left out (writing verbs,
// -A or --namespace-selector), sorted.
func (s *Scope) Skipped() []string { return slices.Clone(s.skipped) }

// NoteSkipped says on w which system namespaces were left out, if any.
func (s *Scope) NoteSkipped(w interface{ Write([]byte) (int, error) }) {
	if len(s.skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "note: left out the system namespaces %s; name one with -n to include it\n", strings.Join(s.skipped, ", "))
}

// Terminating reports whether the single namespace is being deleted.
func (s *Scope) Terminating() bool { return s.terminating }

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
// namespace`, `namespaces matching team=shop`, followed by the -l
// selector when there is one: `namespace "shop", objects matching
// app=web`.
func (s *Scope) Describe() string {
	d := s.describeNamespaces()
	if s.Selector != "" {
		d += ", -l " + s.Selector
	}
	return d
}

// DescribeObjects names what the scope selects: `Pods in namespace
// "shop"`, `Pods matching app=web in every namespace`.
func (s *Scope) DescribeObjects(kind string) string {
	if s.Selector != "" {
		kind += " matching " + s.Selector
	}
	return kind + " in " + s.describeNamespaces()
}

func (s *Scope) describeNamespaces() string {
	switch {
	case s.AllNamespaces && s.Writes:
		return "every namespace but the system ones"
	case s.AllNamespaces:
		return "every namespace"
	case s.NamespaceSelector != "":
		return "the namespaces matching " + s.NamespaceSelector
	}
	return fmt.Sprintf("namespace %q", s.Namespace)
}

// DescribeList names a list namespace for messages: `namespace "shop"`, or
// the scope's namespaces for a cluster-wide LIST.
func (s *Scope) DescribeList(ns string) string {
	if ns == metav1.NamespaceAll {
		return s.describeNamespaces()
	}
	return fmt.Sprintf("namespace %q", ns)
}

// NoMatch ends a command whose scope matched nothing (status 1): a CI gate
// that checks nothing must not pass.
func NoMatch(format string, args ...any) error {
	return &ExitError{Code: ExitProblems, Err: fmt.Errorf(format, args...)}
}
