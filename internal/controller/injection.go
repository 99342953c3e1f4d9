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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/injection"
)

// enforceMountableSecrets is the ServiceAccount annotation with which the
// API server refuses a Pod whose pull secrets the ServiceAccount does not
// list (deprecated since 1.32, still enforced).
const enforceMountableSecrets = "kubernetes.io/enforce-mountable-secrets"

// indexPodsSkip indexes the ServiceAccounts whose Pods the pod-injection
// policy must skip, which it cannot tell from the Pod: those that opt out,
// and those that enforce mountable secrets.
const indexPodsSkip = "pullsecrets.dev/pods-skip"

// podsSkip is the index function of indexPodsSkip.
func podsSkip(obj client.Object) []string {
	a := obj.GetAnnotations()
	if a[v1alpha1.OptOutAnnotation] == "true" || a[enforceMountableSecrets] == "true" {
		return []string{"true"}
	}
	return nil
}

// injectionCheckInterval is how often the pod-injection policy's presence
// is checked: two GETs.
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
// params. The controller only reads them: it holds no write permission
// on admission policies.
type injectionPolicy struct {
	name      string
	reader    client.Reader
	discovery discovery.DiscoveryInterface
	changed   func()

	mu        sync.Mutex
	available bool
	why       string
}

// RBAC: read the shipped policy and binding, to say whether Pods mode works.
//
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingadmissionpolicies;mutatingadmissionpolicybindings,verbs=get

func newInjectionPolicy(name string, reader client.Reader, d discovery.DiscoveryInterface) *injectionPolicy {
	return &injectionPolicy{name: name, reader: reader, discovery: d, changed: func() {}, why: "not checked yet"}
}

// state reports whether Pods mode works, and why not.
func (p *injectionPolicy) state() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.available, p.why
}

// NeedLeaderElection: every replica reports the same.
func (p *injectionPolicy) NeedLeaderElection() bool { return false }

// Start checks now and every injectionCheckInterval until ctx ends.
func (p *injectionPolicy) Start(ctx context.Context) error {
	ticker := time.NewTicker(injectionCheckInterval)
	defer ticker.Stop()
	for {
		ok, why := p.check(ctx)
		p.mu.Lock()
		moved := ok != p.available || why != p.why
		p.available, p.why = ok, why
		p.mu.Unlock()
		if moved {
			log.FromContext(ctx).Info("pod injection policy", "available", ok, "why", why)
			p.changed()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// check looks for the policy and its binding in the newest version the API
// server serves.
func (p *injectionPolicy) check(ctx context.Context) (bool, string) {
	var gv schema.GroupVersion
	for _, candidate := range policyGroups {
		res, err := p.discovery.ServerResourcesForGroupVersion(candidate.String())
		if err != nil {
			continue
		}
		if slices.ContainsFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "mutatingadmissionpolicies" }) {
			gv = candidate
			break
		}
	}
	if gv.Empty() {
		return false, "this API server serves no MutatingAdmissionPolicy (admissionregistration.k8s.io/v1 from Kubernetes 1.36, v1beta1 behind a feature gate in 1.34-1.35): use attachTo: ServiceAccounts"
	}
	policy := &unstructured.Unstructured{}
	policy.SetGroupVersionKind(gv.WithKind("MutatingAdmissionPolicy"))
	if err := p.reader.Get(ctx, types.NamespacedName{Name: p.name}, policy); err != nil {
		if apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("the MutatingAdmissionPolicy %s is not installed (kustomize component config/pod-injection, Helm podInjection.enabled)", p.name)
		}
		return false, fmt.Sprintf("the MutatingAdmissionPolicy %s cannot be read: %v", p.name, err)
	}
	kind, _, _ := unstructured.NestedString(policy.Object, "spec", "paramKind", "kind")
	if kind != cpsGVK.Kind {
		return false, fmt.Sprintf("the MutatingAdmissionPolicy %s does not take ClusterPullSecrets as params", p.name)
	}
	binding := &unstructured.Unstructured{}
	binding.SetGroupVersionKind(gv.WithKind("MutatingAdmissionPolicyBinding"))
	if err := p.reader.Get(ctx, types.NamespacedName{Name: p.name}, binding); err != nil {
		if apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("the MutatingAdmissionPolicyBinding %s is not installed", p.name)
		}
		return false, fmt.Sprintf("the MutatingAdmissionPolicyBinding %s cannot be read: %v", p.name, err)
	}
	if name, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName"); name != p.name {
		return false, fmt.Sprintf("the MutatingAdmissionPolicyBinding %s binds %q, not %s", p.name, name, p.name)
	}
	return true, ""
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
	var sas corev1.ServiceAccountList
	if err := r.client.List(ctx, &sas, client.MatchingFields{indexPodsSkip: "true"}); err != nil {
		return nil, fmt.Errorf("list ServiceAccounts that opt out or enforce mountable secrets: %w", err)
	}
	var out []string
	for i := range sas.Items {
		sa := &sas.Items[i]
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
