// Package rename is `kubectl pullsecrets rename OLD NEW`: rename a pull
// secret in a cluster in the controller's order, so that no Pod is ever
// without it: copy OLD to NEW, attach NEW where OLD was (replacing it in
// place), and delete OLD only once no live Pod lists it.
package rename

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/cli/create"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// lastApplied is kubectl's annotation holding the whole applied object,
// data included: never copied to NEW.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Options are the flags and arguments of rename, completed, validated and
// run in that order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	oldName, newName string
	scope            cmdutil.Scope
	keepOld          bool
	updateWorkloads  bool
	dryRunFlag       string
	dryRun           cmdutil.DryRun
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams}
}

// NewCommand returns the `rename` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "rename OLD NEW [-n NAMESPACE | -A | -l SELECTOR] [--update-workloads] [--keep-old]",
		Short: "Rename a pull secret: copy, attach the new name, detach the old, retire it",
		Long: `In each namespace holding the pull secret OLD, in the controller's order:

  1. copy OLD to NEW (same type and data; a NEW that exists must hold the same);
  2. on every ServiceAccount listing OLD, put NEW in its place (one update;
     other entries kept), so new Pods get NEW;
  3. with --update-workloads, repoint the Pod templates that list OLD inline
     (Deployment, StatefulSet, DaemonSet, CronJob, ReplicaSet without an owner)
     with a JSON patch; for Deployments, StatefulSets and DaemonSets this
     starts a rollout. A Job's template cannot change: it is reported;
  4. delete OLD, unless --keep-old, and only when no live Pod lists it (a
     restarted container may need to pull again); otherwise say which Pods
     hold it: run the command again once they are gone.

A copy made by a ClusterPullSecret is left alone: change its spec.secretName.
Run twice, it finishes what is left and changes nothing else.`,
		Example: `  kubectl pullsecrets rename regcred registry-creds -n shop
  kubectl pullsecrets rename regcred registry-creds -A --update-workloads --dry-run=server`,
		ValidArgsFunction: func(c *cobra.Command, args []string, s string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return cmdutil.CompletePullSecrets(f)(c, args, s)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmdutil.AddScopeFlags(cmd, &o.scope)
	cmdutil.AddDryRunFlag(cmd, &o.dryRunFlag)
	cmd.Flags().BoolVar(&o.keepOld, "keep-old", false, "do not delete OLD")
	cmd.Flags().BoolVar(&o.updateWorkloads, "update-workloads", false, "repoint Pod templates that list OLD inline (starts rollouts)")
	return cmd
}

// Complete takes the names, the scope and the dry-run strategy.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 2 {
		return cmdutil.UsageErrorf(cmd, "rename needs OLD and NEW")
	}
	o.oldName, o.newName = args[0], args[1]
	var err error
	if o.dryRun, err = cmdutil.ParseDryRun(cmd, o.dryRunFlag); err != nil {
		return err
	}
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks the names before any request.
func (o *Options) Validate(cmd *cobra.Command) error {
	for _, n := range []string{o.oldName, o.newName} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			return cmdutil.UsageErrorf(cmd, "invalid Secret name %q: %s", n, errs[0])
		}
	}
	if o.oldName == o.newName {
		return cmdutil.UsageErrorf(cmd, "OLD and NEW are the same name")
	}
	return nil
}

// world is what rename reads of the scope, with one LIST per kind in each
// list namespace (only where OLD exists, after the Secrets).
type world struct {
	old, new  map[string]*corev1.Secret
	sas       map[string][]*corev1.ServiceAccount
	pods      map[string][]*corev1.Pod
	workloads map[string][]workload
}

// Run reads the scope and renames namespace by namespace.
func (o *Options) Run(ctx context.Context) error {
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	if _, err := o.scope.Resolve(ctx, client); err != nil {
		return err
	}
	w, err := o.read(ctx, client)
	if err != nil {
		return err
	}
	if len(w.old) == 0 {
		return fmt.Errorf("get Secret %s: not found in %s", o.oldName, o.scope.Describe())
	}
	namespaces := make([]string, 0, len(w.old))
	for ns := range w.old {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)
	failed := false
	for _, ns := range namespaces {
		if !o.renameIn(ctx, client, w, ns) {
			failed = true
		}
	}
	if failed {
		return cmdutil.ErrProblemsFound
	}
	return nil
}

func (o *Options) read(ctx context.Context, client kubernetes.Interface) (*world, error) {
	w := &world{old: map[string]*corev1.Secret{}, new: map[string]*corev1.Secret{}, sas: map[string][]*corev1.ServiceAccount{},
		pods: map[string][]*corev1.Pod{}, workloads: map[string][]workload{}}
	var mu sync.Mutex
	// The Secrets first: the other objects matter only where OLD is.
	err := o.scope.EachNamespace(func(ns string) error {
		for name, into := range map[string]map[string]*corev1.Secret{o.oldName: w.old, o.newName: w.new} {
			list, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
			if err != nil {
				return fmt.Errorf("list Secrets named %s in %s: %w", name, o.scope.DescribeList(ns), err)
			}
			mu.Lock()
			for i := range list.Items {
				if s := &list.Items[i]; o.scope.Contains(s.Namespace) {
					into[s.Namespace] = s
				}
			}
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = o.scope.EachNamespace(func(ns string) error {
		if ns != metav1.NamespaceAll && w.old[ns] == nil {
			return nil // no OLD here: nothing to read
		}
		return o.readAround(ctx, client, ns, w, &mu)
	})
	return w, err
}

// readAround reads, in namespace ns ("" for all), the ServiceAccounts, Pods
// and (with --update-workloads) workloads that list OLD where OLD exists.
func (o *Options) readAround(ctx context.Context, client kubernetes.Interface, ns string, w *world, mu *sync.Mutex) error {
	sas, err := client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list ServiceAccounts in %s: %w", o.scope.DescribeList(ns), err)
	}
	mu.Lock()
	for i := range sas.Items {
		sa := &sas.Items[i]
		if w.old[sa.Namespace] != nil && serviceaccount.Has(sa, o.oldName) {
			w.sas[sa.Namespace] = append(w.sas[sa.Namespace], sa)
		}
	}
	mu.Unlock()
	err = cmdutil.ListPods(ctx, client, ns, func(p *corev1.Pod) {
		mu.Lock()
		defer mu.Unlock()
		if w.old[p.Namespace] != nil && listsName(p.Spec.ImagePullSecrets, o.oldName) {
			w.pods[p.Namespace] = append(w.pods[p.Namespace], p)
		}
	})
	if err != nil || !o.updateWorkloads {
		return err
	}
	all, err := listWorkloads(ctx, client, ns, o.oldName)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	for _, wl := range all {
		if w.old[wl.namespace] != nil {
			w.workloads[wl.namespace] = append(w.workloads[wl.namespace], wl)
		}
	}
	return nil
}

// renameIn renames in one namespace and reports whether all went well.
func (o *Options) renameIn(ctx context.Context, client kubernetes.Interface, w *world, ns string) bool {
	where := ""
	if !o.scope.Single() {
		where = " in namespace " + ns
	}
	say := func(format string, args ...any) { o.dryRun.Printf(o.streams.Out, format+where, args...) }
	fail := func(format string, args ...any) bool {
		fmt.Fprintf(o.streams.ErrOut, "error: "+format+"\n", args...)
		return false
	}
	old := w.old[ns]
	if old.Labels[v1alpha1.ManagedByLabel] == v1alpha1.ManagedByValue {
		return fail("secret %s/%s is a copy made by ClusterPullSecret %s: change its spec.secretName instead", ns, o.oldName, old.Labels[v1alpha1.OwnerLabel])
	}
	if old.Type != corev1.SecretTypeDockerConfigJson && old.Type != corev1.SecretTypeDockercfg {
		return fail("secret %s/%s is of type %s, not a pull secret: nothing was changed in %s", ns, o.oldName, old.Type, ns)
	}

	// 1. Copy.
	if existing := w.new[ns]; existing != nil {
		if existing.Type != old.Type || !sameData(existing.Data, old.Data) {
			return fail("secret %s/%s exists and holds other credentials than %s: nothing was changed in %s", ns, o.newName, o.oldName, ns)
		}
		say("secret/%s unchanged", o.newName)
	} else if err := o.copySecret(ctx, client, old); err != nil {
		return fail("%v", err)
	} else {
		say("secret/%s created (copy of %s)", o.newName, o.oldName)
	}

	// 2. Attach NEW in OLD's place: one update per ServiceAccount.
	ok := true
	store := serviceaccount.ClientsetStore{Client: client, DryRun: o.dryRun.ServerDryRun()}
	for _, sa := range w.sas[ns] {
		if o.dryRun == cmdutil.DryRunClient {
			say("serviceaccount/%s %s -> %s", sa.Name, o.oldName, o.newName)
			continue
		}
		_, _, err := serviceaccount.Update(ctx, store, sa, func(sa *corev1.ServiceAccount) (bool, error) {
			return replaceRef(&sa.ImagePullSecrets, o.oldName, o.newName), nil
		})
		if err != nil && !serviceaccount.IsGone(err) {
			ok = fail("%v", err)
			continue
		}
		say("serviceaccount/%s %s -> %s", sa.Name, o.oldName, o.newName)
	}

	// 3. Workloads.
	for _, wl := range w.workloads[ns] {
		if wl.immutable != "" {
			fmt.Fprintf(o.streams.ErrOut, "warning: %s/%s%s lists %s: %s\n", wl.resource, wl.name, where, o.oldName, wl.immutable)
			continue
		}
		if err := o.patch(ctx, client, wl); err != nil {
			ok = fail("%v", err)
			continue
		}
		say("%s/%s patched (%s -> %s): %s", wl.resource, wl.name, o.oldName, o.newName, wl.effect)
	}

	// 4. Retire OLD once no live Pod lists it.
	if o.keepOld || !ok {
		say("secret/%s kept", o.oldName)
		return ok
	}
	var holders []string
	for _, p := range w.pods[ns] {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			holders = append(holders, p.Name)
		}
	}
	if len(holders) > 0 {
		say("secret/%s kept: %d live %s %s it (%s); run this again once they are gone", o.oldName, len(holders), plural(len(holders), "Pod"), plural3(len(holders)), strings.Join(holders, ", "))
		return true
	}
	if o.dryRun != cmdutil.DryRunClient {
		uid := old.UID
		err := client.CoreV1().Secrets(ns).Delete(ctx, o.oldName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, DryRun: o.dryRun.ServerDryRun()})
		if err != nil && !apierrors.IsNotFound(err) {
			return fail("delete Secret %s/%s: %v", ns, o.oldName, err)
		}
	}
	say("secret/%s deleted", o.oldName)
	return true
}

func (o *Options) copySecret(ctx context.Context, client kubernetes.Interface, old *corev1.Secret) error {
	cp := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: o.newName, Namespace: old.Namespace, Labels: map[string]string{}, Annotations: map[string]string{}},
		Type:       old.Type,
		Data:       old.Data,
	}
	for k, v := range old.Labels {
		cp.Labels[k] = v
	}
	for k, v := range old.Annotations {
		if k != lastApplied {
			cp.Annotations[k] = v
		}
	}
	cp.Labels[v1alpha1.ManagedByLabel] = create.ManagedByValue
	if o.dryRun == cmdutil.DryRunClient {
		return nil
	}
	_, err := client.CoreV1().Secrets(old.Namespace).Create(ctx, cp, metav1.CreateOptions{DryRun: o.dryRun.ServerDryRun()})
	if err != nil {
		return fmt.Errorf("create Secret %s/%s: %w", old.Namespace, o.newName, err)
	}
	return nil
}

// patch repoints a workload's template with a JSON patch that first tests
// the list it read, so a concurrent change is never overwritten.
func (o *Options) patch(ctx context.Context, client kubernetes.Interface, wl workload) error {
	if o.dryRun == cmdutil.DryRunClient {
		return nil
	}
	updated := slices.Clone(wl.list)
	replaceRef(&updated, o.oldName, o.newName)
	ops := []map[string]any{
		{"op": "test", "path": wl.path, "value": wl.list},
		{"op": "replace", "path": wl.path, "value": updated},
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{DryRun: o.dryRun.ServerDryRun()}
	apps, batch := client.AppsV1(), client.BatchV1()
	switch wl.resource {
	case "deployment.apps":
		_, err = apps.Deployments(wl.namespace).Patch(ctx, wl.name, types.JSONPatchType, body, opts)
	case "statefulset.apps":
		_, err = apps.StatefulSets(wl.namespace).Patch(ctx, wl.name, types.JSONPatchType, body, opts)
	case "daemonset.apps":
		_, err = apps.DaemonSets(wl.namespace).Patch(ctx, wl.name, types.JSONPatchType, body, opts)
	case "replicaset.apps":
		_, err = apps.ReplicaSets(wl.namespace).Patch(ctx, wl.name, types.JSONPatchType, body, opts)
	case "cronjob.batch":
		_, err = batch.CronJobs(wl.namespace).Patch(ctx, wl.name, types.JSONPatchType, body, opts)
	}
	if err != nil {
		return fmt.Errorf("patch %s %s/%s: %w", wl.resource, wl.namespace, wl.name, err)
	}
	return nil
}

// workload is an object whose Pod template lists OLD inline.
type workload struct {
	resource, namespace, name string
	// path is the JSON pointer of the template's imagePullSecrets.
	path string
	list []corev1.LocalObjectReference
	// effect says what the patch sets off.
	effect string
	// immutable, when set, says why the template cannot be patched.
	immutable string
}

// listWorkloads lists the workloads whose templates list name: one LIST per
// kind.
func listWorkloads(ctx context.Context, client kubernetes.Interface, ns, name string) ([]workload, error) {
	const tpl = "/spec/template/spec/imagePullSecrets"
	var out []workload
	add := func(resource string, meta metav1.ObjectMeta, spec *corev1.PodSpec, path, effect, immutable string) {
		if listsName(spec.ImagePullSecrets, name) {
			out = append(out, workload{resource: resource, namespace: meta.Namespace, name: meta.Name, path: path, list: spec.ImagePullSecrets, effect: effect, immutable: immutable})
		}
	}
	apps, batch := client.AppsV1(), client.BatchV1()
	deps, err := apps.Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Deployments: %w", err)
	}
	for _, d := range deps.Items {
		add("deployment.apps", d.ObjectMeta, &d.Spec.Template.Spec, tpl, "this starts a rollout", "")
	}
	sts, err := apps.StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list StatefulSets: %w", err)
	}
	for _, s := range sts.Items {
		add("statefulset.apps", s.ObjectMeta, &s.Spec.Template.Spec, tpl, "this starts a rollout", "")
	}
	dss, err := apps.DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list DaemonSets: %w", err)
	}
	for _, d := range dss.Items {
		add("daemonset.apps", d.ObjectMeta, &d.Spec.Template.Spec, tpl, "this starts a rollout", "")
	}
	rss, err := apps.ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list ReplicaSets: %w", err)
	}
	for _, r := range rss.Items {
		if metav1.GetControllerOf(&r) != nil {
			continue // its Deployment's rollout replaces it
		}
		add("replicaset.apps", r.ObjectMeta, &r.Spec.Template.Spec, tpl, "only new Pods get it (a ReplicaSet does not replace its Pods)", "")
	}
	cjs, err := batch.CronJobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list CronJobs: %w", err)
	}
	for _, c := range cjs.Items {
		add("cronjob.batch", c.ObjectMeta, &c.Spec.JobTemplate.Spec.Template.Spec, "/spec/jobTemplate/spec/template/spec/imagePullSecrets", "the next Jobs use it", "")
	}
	jobs, err := batch.Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Jobs: %w", err)
	}
	for _, j := range jobs.Items {
		if isFinished(&j) {
			continue
		}
		add("job.batch", j.ObjectMeta, &j.Spec.Template.Spec, tpl, "", "a Job's template cannot change; it keeps the old name until it is deleted")
	}
	return out, nil
}

func isFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// replaceRef puts newName in oldName's place, or drops oldName when
// newName is already listed. It reports whether it changed the list.
func replaceRef(list *[]corev1.LocalObjectReference, oldName, newName string) bool {
	if !listsName(*list, oldName) {
		return false
	}
	hasNew := listsName(*list, newName)
	out := make([]corev1.LocalObjectReference, 0, len(*list))
	for _, r := range *list {
		switch {
		case r.Name == oldName && !hasNew:
			out = append(out, corev1.LocalObjectReference{Name: newName})
			hasNew = true
		case r.Name == oldName:
		default:
			out = append(out, r)
		}
	}
	*list = out
	return true
}

func listsName(list []corev1.LocalObjectReference, name string) bool {
	return slices.ContainsFunc(list, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// plural3 is the verb "list" agreeing with n Pods.
func plural3(n int) string {
	if n == 1 {
		return "lists"
	}
	return "list"
}
