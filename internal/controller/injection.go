package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/injection"
)

// enforceMountableSecrets is the ServiceAccount annotation with which the
// API server refuses a Pod whose pull secrets the ServiceAccount does not
// list (deprecated since 1.32, still enforced).
const enforceMountableSecrets = accounts.EnforceMountableSecrets

// podsSkip reports the ServiceAccounts whose Pods the pod-injection policy
// must skip, which it cannot tell from the Pod: those that opt out, and
// those that enforce mountable secrets.
func podsSkip(a *accounts.Account) bool {
	optOut, _ := a.Annotation(v1alpha1.OptOutAnnotation)
	enforce, _ := a.Annotation(enforceMountableSecrets)
	return optOut == "true" || enforce == "true"
}

// injectionCheckInterval is how often the pod-injection policy's presence
// is checked until it is watched: a discovery request and two GETs.
const injectionCheckInterval = 30 * time.Second

// injectionGrace is how long an injection must have been published before
// a switch from ServiceAccounts to Pods detaches the names: the API server
// reads params through a watch, a moment behind the write.
const injectionGrace = 5 * time.Second

// policyGroups are the versions of MutatingAdmissionPolicy, newest first:
// GA since 1.36, beta (off by default) in 1.34 and 1.35.
var policyGroups = []schema.GroupVersion{
	{Group: "admissionregistration.k8s.io", Version: "v1"},
	{Group: "admissionregistration.k8s.io", Version: "v1beta1"},
}

// injectionPolicy knows whether the API server injects names into Pods:
// it serves MutatingAdmissionPolicy, and the policy shipped with
// pullsecrets and its binding are installed, with ClusterPullSecrets as
// params. The controller only reads them (it holds no write permission on
// admission policies): by GET until a watch of the two objects has synced,
// then from the watch alone, so that a steady cluster costs no request.
type injectionPolicy struct {
	name      string
	reader    client.Reader
	discovery discovery.DiscoveryInterface
	dynamic   dynamic.Interface // nil: GETs only
	changed   func()

	mu        sync.Mutex
	available bool
	why       string
}

// RBAC: read the shipped policy and binding, to say whether Pods mode works.
//
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingadmissionpolicies;mutatingadmissionpolicybindings,verbs=get;list;watch

func newInjectionPolicy(name string, reader client.Reader, d discovery.DiscoveryInterface, dyn dynamic.Interface) *injectionPolicy {
	return &injectionPolicy{name: name, reader: reader, discovery: d, dynamic: dyn, changed: func() {}, why: "not checked yet"}
}

// state reports whether Pods mode works, and why not.
func (p *injectionPolicy) state() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.available, p.why
}

// NeedLeaderElection: every replica reports the same.
func (p *injectionPolicy) NeedLeaderElection() bool { return false }

// Start checks now, at every change the watch sees once it runs, and every
// injectionCheckInterval before (discovery and GETs), until ctx ends.
func (p *injectionPolicy) Start(ctx context.Context) error {
	ticker := time.NewTicker(injectionCheckInterval)
	defer ticker.Stop()
	var w *policyWatch
	for {
		var ok bool
		var why string
		switch gv, served := p.discover(w); {
		case !served:
			ok, why = false, noPolicyAPI
		case w != nil && w.synced():
			ok, why = p.judge(w.get(w.policies), w.get(w.bindings))
		default:
			if w == nil && p.dynamic != nil {
				w = p.watch(ctx, gv)
			}
			ok, why = p.check(ctx, gv)
		}
		p.mu.Lock()
		moved := ok != p.available || why != p.why
		p.available, p.why = ok, why
		p.mu.Unlock()
		if moved {
			log.FromContext(ctx).Info("pod injection policy", "available", ok, "why", why)
			p.changed()
		}
		var kick <-chan struct{}
		if w != nil {
			kick = w.kick
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-ticker.C:
		}
	}
}

const noPolicyAPI = "this API server serves no MutatingAdmissionPolicy (admissionregistration.k8s.io/v1 from Kubernetes 1.36, v1beta1 behind a feature gate in 1.34-1.35): use attachTo: ServiceAccounts"

// discover finds the newest version of MutatingAdmissionPolicy the API
// server serves; once watched, the version watched.
func (p *injectionPolicy) discover(w *policyWatch) (schema.GroupVersion, bool) {
	if w != nil {
		return w.gv, true
	}
	for _, candidate := range policyGroups {
		res, err := p.discovery.ServerResourcesForGroupVersion(candidate.String())
		if err != nil {
			continue
		}
		if slices.ContainsFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "mutatingadmissionpolicies" }) {
			return candidate, true
		}
	}
	return schema.GroupVersion{}, false
}

// check reads the policy and its binding with GETs (nil: not installed).
func (p *injectionPolicy) check(ctx context.Context, gv schema.GroupVersion) (bool, string) {
	var objs [2]*unstructured.Unstructured
	for i, kind := range []string{"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"} {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gv.WithKind(kind))
		err := p.reader.Get(ctx, types.NamespacedName{Name: p.name}, obj)
		switch {
		case apierrors.IsNotFound(err):
			obj = nil
		case err != nil:
			return false, fmt.Sprintf("the %s %s cannot be read: %v", kind, p.name, err)
		}
		objs[i] = obj
	}
	return p.judge(objs[0], objs[1])
}

// judge says whether a policy and binding (nil: not installed) inject the
// names of ClusterPullSecrets. Pure.
func (p *injectionPolicy) judge(policy, binding *unstructured.Unstructured) (bool, string) {
	if policy == nil {
		return false, fmt.Sprintf("the MutatingAdmissionPolicy %s is not installed (kustomize component config/pod-injection, Helm podInjection.enabled)", p.name)
	}
	if kind, _, _ := unstructured.NestedString(policy.Object, "spec", "paramKind", "kind"); kind != cpsGVK.Kind {
		return false, fmt.Sprintf("the MutatingAdmissionPolicy %s does not take ClusterPullSecrets as params", p.name)
	}
	if binding == nil {
		return false, fmt.Sprintf("the MutatingAdmissionPolicyBinding %s is not installed", p.name)
	}
	if name, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName"); name != p.name {
		return false, fmt.Sprintf("the MutatingAdmissionPolicyBinding %s binds %q, not %s", p.name, name, p.name)
	}
	return true, ""
}

// policyWatch watches the policy and the binding of one name.
type policyWatch struct {
	gv                 schema.GroupVersion
	name               string
	policies, bindings toolscache.SharedIndexInformer
	kick               chan struct{}
}

// watch starts informers on the policy and binding named p.name.
func (p *injectionPolicy) watch(ctx context.Context, gv schema.GroupVersion) *policyWatch {
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(p.dynamic, 0, metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", p.name).String()
	})
	w := &policyWatch{
		gv: gv, name: p.name, kick: make(chan struct{}, 1),
		policies: factory.ForResource(gv.WithResource("mutatingadmissionpolicies")).Informer(),
		bindings: factory.ForResource(gv.WithResource("mutatingadmissionpolicybindings")).Informer(),
	}
	kick := func(any) {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{AddFunc: kick, UpdateFunc: func(_, obj any) { kick(obj) }, DeleteFunc: kick}
	for _, inf := range []toolscache.SharedIndexInformer{w.policies, w.bindings} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			log.FromContext(ctx).Error(err, "watch the pod injection policy; it is read every 30s instead")
			return nil
		}
	}
	factory.Start(ctx.Done())
	go func() {
		// Synced: judged from the watch from now on.
		if toolscache.WaitForCacheSync(ctx.Done(), w.policies.HasSynced, w.bindings.HasSynced) {
			kick(nil)
		}
	}()
	return w
}

func (w *policyWatch) synced() bool { return w.policies.HasSynced() && w.bindings.HasSynced() }

// get returns the object of the watched name in an informer (nil: none).
func (w *policyWatch) get(inf toolscache.SharedIndexInformer) *unstructured.Unstructured {
	obj, ok, err := inf.GetStore().GetByKey(w.name)
	if err != nil || !ok {
		return nil
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u
}

// desiredInjection is what status.injection says: published for attachTo:
// Pods when the policy works and the source is usable; kept, as it is,
// through a source problem (the copies are kept too) and through a switch
// back to ServiceAccounts until every namespace is Ready, so that no Pod
// is created without the credential. Pure.
func desiredInjection(cps *v1alpha1.ClusterPullSecret, src sourceState, available bool, skipped []string, settled bool, now time.Time) *v1alpha1.InjectionStatus {
	stored := cps.Status.Injection
	switch {
	case cps.Spec.AttachTo != v1alpha1.AttachToPods:
		if stored != nil && !settled {
			return stored
		}
		return nil
	case !available:
		return nil
	case !src.ok():
		return stored
	}
	regs, hub, _ := injection.Registries(src.Keys)
	out := &v1alpha1.InjectionStatus{
		SecretName: secretNameOf(cps), Registries: regs, DockerHub: hub,
		SkipServiceAccounts: skipped[:min(len(skipped), maxSkipped)],
	}
	since := metav1.NewTime(now.Truncate(time.Second))
	if stored != nil && stored.SecretName == out.SecretName && stored.Since != nil {
		since = *stored.Since
	}
	out.Since = &since
	return out
}

// maxSkipped is the API's bound on status.injection.skipServiceAccounts.
const maxSkipped = 1024

// skippedServiceAccounts lists "namespace/name" of the ServiceAccounts a
// Pods-mode ClusterPullSecret selects by name whose Pods the policy must
// not inject: they opt out (the policy never sees a ServiceAccount), or
// they enforce mountable secrets (the API server would refuse their Pods).
func (r *cpsReconciler) skippedServiceAccounts(ctx context.Context, d decodedCPS) ([]string, error) {
	var skip []types.NamespacedName
	if err := r.read.accounts.Each(func(a *accounts.Account) bool {
		if podsSkip(a) {
			skip = append(skip, types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("list ServiceAccounts that opt out or enforce mountable secrets: %w", err)
	}
	var out []string
	for _, sa := range skip {
		var ns corev1.Namespace
		if err := r.client.Get(ctx, types.NamespacedName{Name: sa.Namespace}, &ns); err != nil {
			continue
		}
		// By name only: Pods mode selects no ServiceAccount by label, and
		// the opt-out is the reason to list it.
		if d.sel.Namespace(&ns) && d.sel.ServiceAccountMeta(sa.Name, nil, nil) {
			out = append(out, sa.Namespace+"/"+sa.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}
