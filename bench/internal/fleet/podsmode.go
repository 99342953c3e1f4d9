package fleet

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// Pods mode (--attach-to pods): the ClusterPullSecret has spec.attachTo:
// Pods, the MutatingAdmissionPolicy of config/pod-injection is installed,
// and the controller should write one copy per namespace and no
// ServiceAccount at all. The phases are the same; their goals leave
// ServiceAccounts out, and the cold start also waits for the status the
// policy reads (status.injection). At the end, the admission cost of a
// Pod create is measured against the same cluster without the policy.

// attached is the goal that every ServiceAccount of the namespaces
// satisfies pred; in Pods mode nothing is attached, and it always holds.
func (b *bench) attached(namespaces []string, pred func(*corev1.ServiceAccount) bool) goal {
	if b.opts.podsMode() {
		return func(*tracker) (bool, time.Time) { return true, time.Time{} }
	}
	return allServiceAccounts(namespaces, b.opts.ServiceAccounts, pred)
}

// attachWrites is how many ServiceAccount writes attaching a name in n
// namespaces takes: none in Pods mode.
func (b *bench) attachWrites(n int) int {
	if b.opts.podsMode() {
		return 0
	}
	return n * b.opts.ServiceAccounts
}

// attachTarget is the ClusterPullSecret's spec.attachTo.
func (b *bench) attachTarget() v1alpha1.AttachTarget {
	if b.opts.podsMode() {
		return v1alpha1.AttachToPods
	}
	return v1alpha1.AttachToServiceAccounts
}

// readPolicy reads the MutatingAdmissionPolicy and its binding from a
// manifest file of two documents.
func readPolicy(path string) (*admissionv1.MutatingAdmissionPolicy, *admissionv1.MutatingAdmissionPolicyBinding, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read pod-injection policy: %w", err)
	}
	var policy *admissionv1.MutatingAdmissionPolicy
	var binding *admissionv1.MutatingAdmissionPolicyBinding
	for doc := range strings.SplitSeq(string(raw), "\n---") {
		var kind struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", path, err)
		}
		switch kind.Kind {
		case "MutatingAdmissionPolicy":
			policy = &admissionv1.MutatingAdmissionPolicy{}
			err = yaml.UnmarshalStrict([]byte(doc), policy)
		case "MutatingAdmissionPolicyBinding":
			binding = &admissionv1.MutatingAdmissionPolicyBinding{}
			err = yaml.UnmarshalStrict([]byte(doc), binding)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("parse %s %s: %w", path, kind.Kind, err)
		}
	}
	if policy == nil || binding == nil {
		return nil, nil, fmt.Errorf("%s: needs a MutatingAdmissionPolicy and a MutatingAdmissionPolicyBinding", path)
	}
	return policy, binding, nil
}

// installPolicy installs the pod-injection policy and its binding, as
// administrator, before the controller first starts, as config/default
// does.
func (b *bench) installPolicy(ctx context.Context) error {
	policy, binding, err := readPolicy(b.opts.PodInjection)
	if err != nil {
		return err
	}
	b.binding = binding
	if _, err := b.admin.AdmissionregistrationV1().MutatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create MutatingAdmissionPolicy %s: %w", policy.Name, err)
	}
	return b.bind(ctx, true)
}

// bind creates or deletes the policy's binding: without it the API server
// evaluates nothing for a Pod create.
func (b *bench) bind(ctx context.Context, on bool) error {
	c := b.admin.AdmissionregistrationV1().MutatingAdmissionPolicyBindings()
	if on {
		obj := b.binding.DeepCopy()
		if _, err := c.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create MutatingAdmissionPolicyBinding %s: %w", obj.Name, err)
		}
		return nil
	}
	if err := c.Delete(ctx, b.binding.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete MutatingAdmissionPolicyBinding %s: %w", b.binding.Name, err)
	}
	return nil
}

// waitInjection waits until the ClusterPullSecret publishes the name in
// status.injection, polling as administrator (not audited), and returns
// when it first saw it.
func (b *bench) waitInjection(ctx context.Context, cps, name string) (time.Time, error) {
	var at time.Time
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, b.opts.Timeout, true, func(ctx context.Context) (bool, error) {
		var obj v1alpha1.ClusterPullSecret
		if err := b.crd.Get(ctx, client.ObjectKey{Name: cps}, &obj); err != nil {
			return false, nil //nolint:nilerr // retried until the timeout
		}
		if inj := obj.Status.Injection; inj != nil && inj.SecretName == name {
			at = time.Now()
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return at, fmt.Errorf("wait for ClusterPullSecret %s to publish status.injection %s: %w", cps, name, err)
	}
	return at, nil
}

// AdmissionCost is the latency of Pod creates (server-side dry runs, one
// at a time, as administrator) under one admission configuration.
type AdmissionCost struct {
	Name string `json:"name"`
	// Params is how many ClusterPullSecrets the policy was evaluated with
	// (0: the binding was deleted, the policy evaluates nothing).
	Params  int `json:"params"`
	Samples int `json:"samples"`
	// Injected counts the created Pods whose imagePullSecrets got the
	// main ClusterPullSecret's name: all of them with the policy, none
	// without, or the configuration was not what it says.
	Injected   int     `json:"injected"`
	P50Millis  float64 `json:"p50Millis"`
	P90Millis  float64 `json:"p90Millis"`
	P99Millis  float64 `json:"p99Millis"`
	MaxMillis  float64 `json:"maxMillis"`
	MeanMillis float64 `json:"meanMillis"`
	// LoadAverage is /proc/loadavg when the configuration was measured.
	LoadAverage string `json:"loadAverage"`
}

// admissionNamespaces is how many fleet namespaces the Pod creates are
// spread over; the extra ClusterPullSecrets select only them.
const admissionNamespaces = 10

// admissionLabel marks the namespaces of the admission measurement.
const admissionLabel = "bench.pullsecrets.dev/admission"

// extraCPS names the i-th extra ClusterPullSecret, its source and its
// registry: each is for a registry of its own, so that the policy
// evaluates it in full for every Pod and injects nothing.
func extraCPS(i int) (cps, source, reg string) {
	return fmt.Sprintf("extra-%02d", i), fmt.Sprintf("registry-credentials-%02d", i), fmt.Sprintf("registry-%02d.example.com", i)
}

// admission measures the cost of Pod creates: without the policy, with
// the main ClusterPullSecret alone, with AdmissionParams of them, and
// without the policy again (the machine's drift over the measurement).
// Then it removes the extra ClusterPullSecrets and their copies.
func (b *bench) admission(ctx context.Context, ctrl *controllerProcess) error {
	if !b.opts.podsMode() || b.opts.AdmissionPods == 0 {
		return nil
	}
	name := b.currentName
	nss := b.namespaces[:min(admissionNamespaces, len(b.namespaces))]
	for _, ns := range nss {
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:"true"}}}`, admissionLabel)
		if _, err := b.admin.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("label namespace %s: %w", ns, err)
		}
	}
	p, err := b.begin(ctx, "admission", controllerIdentity, ctrl)
	if err != nil {
		return err
	}
	var out []AdmissionCost
	measure := func(label string, params int, bound bool) error {
		if err := b.bind(ctx, bound); err != nil {
			return err
		}
		if err := b.waitAdmission(ctx, nss[0], name, bound); err != nil {
			return err
		}
		c, err := b.timePodCreates(ctx, nss, name)
		if err != nil {
			return err
		}
		c.Name, c.Params = label, params
		if !bound {
			c.Params = 0
		}
		b.logf("admission %s: p50 %.2f ms, p99 %.2f ms, %d / %d injected", label, c.P50Millis, c.P99Millis, c.Injected, c.Samples)
		out = append(out, c)
		return nil
	}
	if err := measure("no policy", 0, false); err != nil {
		return err
	}
	if err := measure("1 ClusterPullSecret", 1, true); err != nil {
		return err
	}
	if b.opts.AdmissionParams > 1 {
		if err := b.addExtraCPSs(ctx); err != nil {
			return err
		}
		// The API server reads params through a watch, a moment behind
		// their status: as long as the controller's own grace.
		time.Sleep(5 * time.Second)
		if err := measure(fmt.Sprintf("%d ClusterPullSecrets", b.opts.AdmissionParams), b.opts.AdmissionParams, true); err != nil {
			return err
		}
	}
	if err := measure("no policy, again", 0, false); err != nil {
		return err
	}
	if err := b.bind(ctx, true); err != nil {
		return err
	}
	b.result.Admission = out
	if err := b.removeExtraCPSs(ctx); err != nil {
		return err
	}
	settled, err := b.settle(ctx, p, 0)
	if err != nil {
		return err
	}
	_, err = b.end(ctx, p, Phase{Settled: settled})
	return err
}

// waitAdmission waits until a dry-run Pod create shows the configuration
// in force: the name injected with the binding, not without it.
func (b *bench) waitAdmission(ctx context.Context, ns, name string, bound bool) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := b.dryRunPod(ctx, ns, 0)
		if err != nil {
			return false, err
		}
		return lists(got, name) == bound, nil
	})
}

// admissionPod is the Pod the admission measurement creates: a replica of
// Deployment web, pulling from the credential's registry.
func (b *bench) admissionPod(ns string, i int) *corev1.Pod {
	w := nsWorkloads{ns: ns, holder: heldByNothing, serviceAccounts: b.opts.ServiceAccounts}
	pod := podFrom(ns, fmt.Sprintf("admission-%d", i), w.webTemplate(webImage), metav1.OwnerReference{})
	pod.OwnerReferences = nil
	return pod
}

func (b *bench) dryRunPod(ctx context.Context, ns string, i int) (*corev1.Pod, error) {
	got, err := b.admin.CoreV1().Pods(ns).Create(ctx, b.admissionPod(ns, i), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("dry-run create Pod %s/admission-%d: %w", ns, i, err)
	}
	return got, nil
}

func lists(pod *corev1.Pod, name string) bool {
	return slices.ContainsFunc(pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}

// timePodCreates creates AdmissionPods Pods, one at a time, over the
// namespaces, as server-side dry runs, and times each round trip.
func (b *bench) timePodCreates(ctx context.Context, nss []string, name string) (AdmissionCost, error) {
	samples := make([]time.Duration, 0, b.opts.AdmissionPods)
	c := AdmissionCost{Samples: b.opts.AdmissionPods, LoadAverage: readMachine().LoadAverage}
	var sum time.Duration
	for i := range b.opts.AdmissionPods {
		start := time.Now()
		got, err := b.dryRunPod(ctx, nss[i%len(nss)], i)
		d := time.Since(start)
		if err != nil {
			return c, err
		}
		if lists(got, name) {
			c.Injected++
		}
		samples = append(samples, d)
		sum += d
	}
	c.P50Millis, c.P90Millis = ms(percentile(samples, 50)), ms(percentile(samples, 90))
	c.P99Millis, c.MaxMillis = ms(percentile(samples, 99)), ms(percentile(samples, 100))
	c.MeanMillis = ms(sum / time.Duration(len(samples)))
	return c, nil
}

// addExtraCPSs creates AdmissionParams-1 more ClusterPullSecrets in Pods
// mode, each from a source for its own registry, selecting the admission
// namespaces, and waits until each publishes status.injection.
func (b *bench) addExtraCPSs(ctx context.Context) error {
	for i := 1; i < b.opts.AdmissionParams; i++ {
		name, source, reg := extraCPS(i)
		data, err := dockerConfigFor(reg, "extra-password")
		if err != nil {
			return err
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: sourceNamespace, Name: source},
			Type:       corev1.SecretTypeDockerConfigJson, Data: data,
		}
		if _, err := b.admin.CoreV1().Secrets(sourceNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create source Secret %s/%s: %w", sourceNamespace, source, err)
		}
		cps := &v1alpha1.ClusterPullSecret{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.ClusterPullSecretSpec{
				Source:     v1alpha1.SourceReference{Namespace: sourceNamespace, Name: source},
				SecretName: "regcred-" + name,
				AttachTo:   v1alpha1.AttachToPods,
				Namespaces: v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{admissionLabel: "true"}}},
			},
		}
		if err := b.crd.Create(ctx, cps); err != nil {
			return fmt.Errorf("create ClusterPullSecret %s: %w", name, err)
		}
	}
	for i := 1; i < b.opts.AdmissionParams; i++ {
		name, _, _ := extraCPS(i)
		if _, err := b.waitInjection(ctx, name, "regcred-"+name); err != nil {
			return err
		}
	}
	return nil
}

// removeExtraCPSs deletes the extra ClusterPullSecrets and waits until
// the controller has removed their copies and finalizers.
func (b *bench) removeExtraCPSs(ctx context.Context) error {
	for i := 1; i < b.opts.AdmissionParams; i++ {
		name, _, _ := extraCPS(i)
		cps := &v1alpha1.ClusterPullSecret{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := b.crd.Delete(ctx, cps); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ClusterPullSecret %s: %w", name, err)
		}
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, b.opts.Timeout, true, func(ctx context.Context) (bool, error) {
		for i := 1; i < b.opts.AdmissionParams; i++ {
			name, _, _ := extraCPS(i)
			err := b.crd.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.ClusterPullSecret{})
			if !apierrors.IsNotFound(err) {
				return false, nil //nolint:nilerr // still there, or retried until the timeout
			}
		}
		return true, nil
	})
}
