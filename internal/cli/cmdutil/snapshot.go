package cmdutil

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
)

// Snapshot is what status, doctor and restart read of a scope: its Pods,
// ServiceAccounts, the Secrets those name, and the Warning Events about
// Pods.
//
// It is read with a constant number of requests however many namespaces
// the scope holds: one LIST each of Namespaces (for -A and -l),
// ServiceAccounts, Secrets of the two pull secret types, and Warning Events
// of Pods (one field-selected LIST, filtered here), and the Pods page by
// page. Only names that the Pods and ServiceAccounts list without a pull
// secret of that name need another look: one GET each, or, when there are
// more than MaxSecretGets of them, one LIST of all Secrets.
type Snapshot struct {
	// Namespaces are the namespaces of the scope, sorted.
	Namespaces []string
	// Pods are the Pods of the scope, sorted by namespace and name.
	Pods []*corev1.Pod
	// ServiceAccounts by namespace and name.
	ServiceAccounts map[string]map[string]*corev1.ServiceAccount
	// Secrets by namespace and name: every Secret a Pod or ServiceAccount of
	// the scope lists and that exists, and every pull secret.
	Secrets map[string]map[string]*corev1.Secret
	// Events by namespace and Pod name: Warning Events about Pods.
	Events map[string]map[string][]corev1.Event
}

// MaxSecretGets is how many Secrets a Snapshot reads one by one before it
// lists them all instead.
const MaxSecretGets = 20

// SnapshotOptions say what to read.
type SnapshotOptions struct {
	// Events reads the Warning Events about Pods.
	Events bool
	// PodNames, when set, keeps only these Pods (of a single namespace).
	PodNames []string
}

// ReadSnapshot reads the scope. The LISTs run concurrently.
func ReadSnapshot(ctx context.Context, client kubernetes.Interface, scope *Scope, opts SnapshotOptions) (*Snapshot, error) {
	namespaces, err := scope.Resolve(ctx, client)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{
		Namespaces:      namespaces,
		ServiceAccounts: map[string]map[string]*corev1.ServiceAccount{},
		Secrets:         map[string]map[string]*corev1.Secret{},
		Events:          map[string]map[string][]corev1.Event{},
	}
	ns := scope.ListNamespace()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	var pullSecrets [2][]corev1.Secret
	run(func() error {
		return ListPods(ctx, client, ns, func(p *corev1.Pod) {
			if scope.Contains(p.Namespace) && (len(opts.PodNames) == 0 || slices.Contains(opts.PodNames, p.Name)) {
				s.Pods = append(s.Pods, p)
			}
		})
	})
	var sas []corev1.ServiceAccount
	run(func() error {
		list, err := client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list ServiceAccounts%s: %w", inNamespace(ns), err)
		}
		sas = list.Items
		return nil
	})
	for i, t := range []corev1.SecretType{corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg} {
		run(func() error {
			list, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("type", string(t)).String()})
			if err != nil {
				return fmt.Errorf("list Secrets of type %s%s: %w", t, inNamespace(ns), err)
			}
			pullSecrets[i] = list.Items
			return nil
		})
	}
	var events []corev1.Event
	if opts.Events {
		run(func() error {
			sel := fields.Set{"involvedObject.kind": "Pod", "type": corev1.EventTypeWarning}.AsSelector().String()
			return pagedEvents(ctx, client, ns, sel, func(e *corev1.Event) { events = append(events, *e) })
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	slices.SortFunc(s.Pods, func(a, b *corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for i := range sas {
		sa := &sas[i]
		if scope.Contains(sa.Namespace) {
			put(s.ServiceAccounts, sa.Namespace, sa.Name, sa)
		}
	}
	for _, list := range pullSecrets {
		for i := range list {
			if scope.Contains(list[i].Namespace) {
				put(s.Secrets, list[i].Namespace, list[i].Name, &list[i])
			}
		}
	}
	for _, e := range events {
		if scope.Contains(e.InvolvedObject.Namespace) {
			m := s.Events[e.InvolvedObject.Namespace]
			if m == nil {
				m = map[string][]corev1.Event{}
				s.Events[e.InvolvedObject.Namespace] = m
			}
			m[e.InvolvedObject.Name] = append(m[e.InvolvedObject.Name], e)
		}
	}
	if err := s.readOtherSecrets(ctx, client, ns); err != nil {
		return nil, err
	}
	return s, nil
}

// readOtherSecrets reads the Secrets listed by name that are not pull
// secret types: they exist with a wrong type, or not at all.
func (s *Snapshot) readOtherSecrets(ctx context.Context, client kubernetes.Interface, ns string) error {
	type ref struct{ ns, name string }
	var unknown []ref
	seen := map[ref]bool{}
	want := func(namespace string, refs []corev1.LocalObjectReference) {
		for _, r := range refs {
			k := ref{namespace, r.Name}
			if r.Name == "" || seen[k] || s.Secret(namespace, r.Name) != nil {
				continue
			}
			seen[k] = true
			unknown = append(unknown, k)
		}
	}
	for _, p := range s.Pods {
		want(p.Namespace, p.Spec.ImagePullSecrets)
	}
	for _, namespace := range sortedKeys(s.ServiceAccounts) {
		for _, name := range sortedKeys(s.ServiceAccounts[namespace]) {
			want(namespace, s.ServiceAccounts[namespace][name].ImagePullSecrets)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	if len(unknown) > MaxSecretGets {
		opts := metav1.ListOptions{Limit: PageSize}
		for {
			page, err := client.CoreV1().Secrets(ns).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("list Secrets%s: %w", inNamespace(ns), err)
			}
			for i := range page.Items {
				if sec := &page.Items[i]; seen[ref{sec.Namespace, sec.Name}] {
					put(s.Secrets, sec.Namespace, sec.Name, sec)
				}
			}
			if page.Continue == "" {
				return nil
			}
			opts.Continue = page.Continue
		}
	}
	for _, r := range unknown {
		sec, err := client.CoreV1().Secrets(r.ns).Get(ctx, r.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("get Secret %s/%s: %w", r.ns, r.name, err)
		}
		put(s.Secrets, sec.Namespace, sec.Name, sec)
	}
	return nil
}

// Secret returns a Secret of the snapshot, or nil.
func (s *Snapshot) Secret(namespace, name string) *corev1.Secret {
	return s.Secrets[namespace][name]
}

// ServiceAccount returns a ServiceAccount of the snapshot, or nil.
func (s *Snapshot) ServiceAccount(namespace, name string) *corev1.ServiceAccount {
	return s.ServiceAccounts[namespace][name]
}

// PodEvents returns the Events about a Pod.
func (s *Snapshot) PodEvents(namespace, name string) []corev1.Event {
	return s.Events[namespace][name]
}

func pagedEvents(ctx context.Context, client kubernetes.Interface, ns, selector string, each func(*corev1.Event)) error {
	opts := metav1.ListOptions{FieldSelector: selector, Limit: PageSize}
	for {
		page, err := client.CoreV1().Events(ns).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list Events%s: %w", inNamespace(ns), err)
		}
		for i := range page.Items {
			each(&page.Items[i])
		}
		if page.Continue == "" {
			return nil
		}
		opts.Continue = page.Continue
	}
}

func put[T any](m map[string]map[string]*T, ns, name string, v *T) {
	inner := m[ns]
	if inner == nil {
		inner = map[string]*T{}
		m[ns] = inner
	}
	inner[name] = v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Diagnose explains a Pod of the snapshot (package diagnose).
func (s *Snapshot) Diagnose(pod *corev1.Pod) diagnose.Diagnosis {
	return diagnose.Pod(diagnose.Input{
		Pod:            pod,
		Events:         s.PodEvents(pod.Namespace, pod.Name),
		ServiceAccount: s.ServiceAccount(pod.Namespace, pullfailure.ServiceAccountName(pod)),
		Secrets:        s.Secrets[pod.Namespace],
	})
}
