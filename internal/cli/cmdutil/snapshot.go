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
	"k8s.io/client-go/metadata"

	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
)

// Snapshot is what status, doctor and restart read of a scope: its Pods,
// ServiceAccounts, the Secrets those name, and the Warning Events about
// Pods.
//
// It reads, in each of the scope's ListNamespaces, one LIST each of
// ServiceAccounts, Secrets of the two pull secret types, and Warning
// Events of Pods (field-selected, paged), and the Pods page by page. For
// one namespace and for -A (plus one LIST of Namespaces) that is a
// constant number of requests however many namespaces there are; for
// --namespace-selector
// it is one LIST of Namespaces and those 4 or 5 LISTs per selected
// namespace, ListWorkers at a time, so that rights in those namespaces are
// enough. Names that Pods and ServiceAccounts list without a pull secret
// of that name need another look: one GET each; or, when there are more
// than MaxSecretGets of them, a metadata-only LIST of Secrets in each list
// namespace (no Secret data is read) and one GET for each that exists with
// another type, whose type and keys diagnose reports.
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

	// access says, by list namespace ("" for -A), how much of the Secrets
	// could be read: a user bound to the built-in view role may read no
	// Secret, and one with rights to their metadata only no data.
	access map[string]diagnose.SecretAccess
}

// SecretAccess returns how much of the Secrets of namespace could be read.
func (s *Snapshot) SecretAccess(namespace string) diagnose.SecretAccess {
	if a, ok := s.access[namespace]; ok {
		return a
	}
	return s.access[metav1.NamespaceAll]
}

// SecretNotes says, once per list namespace, where Secrets could not be
// read and what that leaves out, for stderr.
func (s *Snapshot) SecretNotes(scope *Scope) []string {
	var out []string
	for _, ns := range sortedKeys(s.access) {
		where := scope.DescribeList(ns)
		switch s.access[ns] {
		case diagnose.SecretsMetadata:
			out = append(out, fmt.Sprintf("note: the Secrets in %s were read as metadata only (reading their data is forbidden): missing and wrong-typed pull secrets are found, what is inside them is not checked", where))
		case diagnose.SecretsUnknown:
			out = append(out, fmt.Sprintf("note: the Secrets in %s were skipped (reading them is forbidden, as with the view role): pull secrets are named but not checked, and the credentials the kubelet sends are unknown", where))
		}
	}
	return out
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
func ReadSnapshot(ctx context.Context, client kubernetes.Interface, meta metadata.Interface, scope *Scope, opts SnapshotOptions) (*Snapshot, error) {
	namespaces, err := scope.Resolve(ctx, client)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{
		Namespaces:      namespaces,
		ServiceAccounts: map[string]map[string]*corev1.ServiceAccount{},
		Secrets:         map[string]map[string]*corev1.Secret{},
		Events:          map[string]map[string][]corev1.Event{},
		access:          map[string]diagnose.SecretAccess{},
	}
	lists := scope.ListNamespaces()
	parts := make([]snapshotPart, len(lists))
	var tasks []func() error
	for i, ns := range lists {
		tasks = append(tasks, parts[i].tasks(ctx, client, meta, ns, scope.ObjectSelector(), opts)...)
	}
	if err := RunAll(tasks, ListWorkers); err != nil {
		return nil, err
	}
	for i, part := range parts {
		s.access[lists[i]] = max(part.access[0], part.access[1])
		for _, p := range part.pods {
			if scope.Contains(p.Namespace) && (len(opts.PodNames) == 0 || slices.Contains(opts.PodNames, p.Name)) {
				s.Pods = append(s.Pods, p)
			}
		}
		for i := range part.sas {
			if sa := &part.sas[i]; scope.Contains(sa.Namespace) {
				put(s.ServiceAccounts, sa.Namespace, sa.Name, sa)
			}
		}
		for _, list := range part.pullSecrets {
			for i := range list {
				if scope.Contains(list[i].Namespace) {
					put(s.Secrets, list[i].Namespace, list[i].Name, &list[i])
				}
			}
		}
		for _, e := range part.events {
			if scope.Contains(e.InvolvedObject.Namespace) {
				m := s.Events[e.InvolvedObject.Namespace]
				if m == nil {
					m = map[string][]corev1.Event{}
					s.Events[e.InvolvedObject.Namespace] = m
				}
				m[e.InvolvedObject.Name] = append(m[e.InvolvedObject.Name], e)
			}
		}
	}
	slices.SortFunc(s.Pods, func(a, b *corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if err := s.readOtherSecrets(ctx, client, meta, scope); err != nil {
		return nil, err
	}
	return s, nil
}

// snapshotPart is what the LISTs of one list namespace return.
type snapshotPart struct {
	pods        []*corev1.Pod
	sas         []corev1.ServiceAccount
	pullSecrets [2][]corev1.Secret
	access      [2]diagnose.SecretAccess
	events      []corev1.Event
}

// tasks returns the LISTs of namespace ns ("" for all), each filling its
// own field of p. Pods are listed with the -l selector; ServiceAccounts
// all, since a Pod's diagnosis needs its own whatever its labels. Secrets
// the user may not read are listed as metadata (names and types of pull
// secrets, no data), or skipped when that is forbidden too.
func (p *snapshotPart) tasks(ctx context.Context, client kubernetes.Interface, meta metadata.Interface, ns, selector string, opts SnapshotOptions) []func() error {
	tasks := []func() error{
		func() error {
			return ListPods(ctx, client, ns, selector, func(pod *corev1.Pod) { p.pods = append(p.pods, pod) })
		},
		func() error {
			list, err := client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("list ServiceAccounts%s: %w", inNamespace(ns), err)
			}
			p.sas = list.Items
			return nil
		},
	}
	for i, t := range []corev1.SecretType{corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg} {
		tasks = append(tasks, func() error {
			byType := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("type", string(t)).String()}
			list, err := client.CoreV1().Secrets(ns).List(ctx, byType)
			if err == nil {
				p.pullSecrets[i] = list.Items
				return nil
			}
			if !apierrors.IsForbidden(err) {
				return fmt.Errorf("list Secrets of type %s%s: %w", t, inNamespace(ns), err)
			}
			metas, err := meta.Resource(secretsResource).Namespace(ns).List(ctx, byType)
			switch {
			case apierrors.IsForbidden(err):
				p.access[i] = diagnose.SecretsUnknown
				return nil
			case err != nil:
				return fmt.Errorf("list Secrets of type %s (metadata only)%s: %w", t, inNamespace(ns), err)
			}
			p.access[i] = diagnose.SecretsMetadata
			for _, m := range metas.Items {
				p.pullSecrets[i] = append(p.pullSecrets[i], corev1.Secret{ObjectMeta: m.ObjectMeta, Type: t})
			}
			return nil
		})
	}
	if opts.Events {
		tasks = append(tasks, func() error {
			sel := fields.Set{"involvedObject.kind": "Pod", "type": corev1.EventTypeWarning}.AsSelector().String()
			return pagedEvents(ctx, client, ns, sel, func(e *corev1.Event) { p.events = append(p.events, *e) })
		})
	}
	return tasks
}

var secretsResource = corev1.SchemeGroupVersion.WithResource("secrets")

// readOtherSecrets reads the Secrets listed by name that are not pull
// secret types: they exist with a wrong type, or not at all.
func (s *Snapshot) readOtherSecrets(ctx context.Context, client kubernetes.Interface, meta metadata.Interface, scope *Scope) error {
	var unknown []secretRef
	seen := map[secretRef]bool{}
	want := func(namespace string, refs []corev1.LocalObjectReference) {
		for _, r := range refs {
			k := secretRef{namespace, r.Name}
			if r.Name == "" || seen[k] || s.Secret(namespace, r.Name) != nil {
				continue
			}
			seen[k] = true
			unknown = append(unknown, k)
		}
	}
	for _, p := range s.Pods {
		if s.SecretAccess(p.Namespace) != diagnose.SecretsUnknown {
			want(p.Namespace, p.Spec.ImagePullSecrets)
		}
	}
	for _, namespace := range sortedKeys(s.ServiceAccounts) {
		if s.SecretAccess(namespace) == diagnose.SecretsUnknown {
			continue
		}
		for _, name := range sortedKeys(s.ServiceAccounts[namespace]) {
			want(namespace, s.ServiceAccounts[namespace][name].ImagePullSecrets)
		}
	}
	if len(unknown) > MaxSecretGets {
		exist, err := existingSecrets(ctx, meta, scope, seen)
		if err != nil {
			return err
		}
		unknown = slices.DeleteFunc(unknown, func(r secretRef) bool { return !exist[r] })
	}
	for _, r := range unknown {
		if s.SecretAccess(r.ns) == diagnose.SecretsMetadata {
			// It exists, and is not of a pull secret type (those were
			// listed): its metadata says so without its data.
			m, err := meta.Resource(secretsResource).Namespace(r.ns).Get(ctx, r.name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
				continue
			case err != nil:
				return fmt.Errorf("get Secret %s/%s (metadata only): %w", r.ns, r.name, err)
			}
			put(s.Secrets, r.ns, r.name, &corev1.Secret{ObjectMeta: m.ObjectMeta})
			continue
		}
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

// secretRef names a Secret.
type secretRef struct{ ns, name string }

// existingSecrets returns which of the wanted Secrets exist, from their
// metadata only, page by page in each of the scope's list namespaces.
func existingSecrets(ctx context.Context, meta metadata.Interface, scope *Scope, wanted map[secretRef]bool) (map[secretRef]bool, error) {
	var mu sync.Mutex
	exist := map[secretRef]bool{}
	secrets := corev1.SchemeGroupVersion.WithResource("secrets")
	err := scope.EachNamespace(func(ns string) error {
		opts := metav1.ListOptions{Limit: PageSize}
		for {
			page, err := meta.Resource(secrets).Namespace(ns).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("list Secrets (metadata only)%s: %w", inNamespace(ns), err)
			}
			mu.Lock()
			for _, item := range page.Items {
				if r := (secretRef{item.Namespace, item.Name}); wanted[r] {
					exist[r] = true
				}
			}
			mu.Unlock()
			if page.Continue == "" {
				return nil
			}
			opts.Continue = page.Continue
		}
	})
	return exist, err
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
		SecretAccess:   s.SecretAccess(pod.Namespace),
	})
}
