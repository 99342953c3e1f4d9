// Package rename is `kubectl pullsecrets rename OLD NEW`: rename a pull
// secret in a cluster in the controller's order, so that no Pod is ever
// without it: copy OLD to NEW, attach NEW where OLD was (replacing it in
// place), and delete OLD only once nothing uses it, by the controller's
// retirement rules (package secretuse). Every namespace is planned before
// the first write; one that cannot be renamed stops them all.
package rename

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/cli/create"
	"github.com/pullsecrets/pullsecrets/internal/secretuse"
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
	write            cmdutil.Write
	out              *cmdutil.Output
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams, scope: cmdutil.Scope{Writes: true}, out: cmdutil.NewOutput(false)}
}

// NewCommand returns the `rename` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "rename OLD NEW [-n NAMESPACE | -A | --namespace-selector SELECTOR] [-l SELECTOR] [--update-workloads] [--keep-old]",
		Short: "Rename a pull secret: copy, attach the new name, detach the old, retire it",
		Long: `In each namespace holding the pull secret OLD, in the controller's order:

  1. copy OLD to NEW (same type and data; a NEW that exists must hold the same);
  2. on every ServiceAccount listing OLD, put NEW in its place (one update;
     other entries kept), so new Pods get NEW;
  3. with --update-workloads, repoint the Pod templates that list OLD inline
     (Deployment, StatefulSet, DaemonSet, CronJob, ReplicationController,
     ReplicaSet without an owner) with a JSON patch; for Deployments,
     StatefulSets and DaemonSets this starts a rollout. A Job's template
     cannot change: it is reported;
  4. delete OLD, unless --keep-old, and only when nothing uses it any more, by
     the rules the controller retires its copies with: no ServiceAccount lists
     it, no live Pod reads it (a restarted container may need to pull again),
     no Pod template that can still make Pods reads it (a Deployment at zero
     replicas, a CronJob, a running Job, the ReplicaSets of a rollout in
     progress). Otherwise it says what holds it: run the command again once
     nothing does.

Nothing is written anywhere unless every namespace can be renamed: a copy
made by a ClusterPullSecret (change its spec.secretName), an OLD that is not
a pull secret, or a NEW that holds other credentials refuses the whole run.
Run twice, it finishes what is left and changes nothing else.

OLD and NEW are NAME or secret/NAME. -l selects, by their labels, the Secrets
OLD to rename, as kubectl's -l does. -A and --namespace-selector leave out
kube-system, kube-public and kube-node-lease (name one with -n). With
-o name|json|yaml the objects written go to stdout (Secrets without their
data) and the lines to stderr.`,
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
	cmdutil.AddScopeFlags(cmd, &o.scope, "Secrets OLD")
	o.write.AddFlags(cmd)
	o.out.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.keepOld, "keep-old", false, "do not delete OLD")
	cmd.Flags().BoolVar(&o.updateWorkloads, "update-workloads", false, "repoint Pod templates that list OLD inline (starts rollouts)")
	return cmd
}

// Complete takes the names, the scope and the write flags.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 2 {
		return cmdutil.UsageErrorf(cmd, "rename needs OLD and NEW")
	}
	var err error
	if o.oldName, err = cmdutil.ParseName(cmd, args[0], "Secret"); err != nil {
		return err
	}
	if o.newName, err = cmdutil.ParseName(cmd, args[1], "Secret"); err != nil {
		return err
	}
	if err := o.write.Complete(cmd); err != nil {
		return err
	}
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks the names before any request.
func (o *Options) Validate(cmd *cobra.Command) error {
	if o.oldName == o.newName {
		return cmdutil.UsageErrorf(cmd, "OLD and NEW are the same name")
	}
	return o.out.Validate(cmd)
}

func (o *Options) options() planOptions {
	return planOptions{oldName: o.oldName, newName: o.newName, updateWorkloads: o.updateWorkloads, keepOld: o.keepOld}
}

// Run reads the scope, plans every namespace, and writes only when no
// namespace is refused.
func (o *Options) Run(ctx context.Context) error {
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	if _, err := o.scope.Resolve(ctx, client); err != nil {
		return err
	}
	if o.scope.Terminating() {
		return cmdutil.Refused("namespace %q is being deleted", o.scope.Namespace)
	}
	o.scope.NoteSkipped(o.streams.ErrOut)
	olds, news, err := o.readSecrets(ctx, client)
	if err != nil {
		return err
	}
	if len(olds) == 0 {
		what := "Secret " + o.oldName
		if o.scope.Selector != "" {
			what += " matching -l " + o.scope.Selector
		}
		return cmdutil.NoMatch("%s not found in %s", what, o.scope.DescribeList(""))
	}
	uses, err := cmdutil.ReadUses(ctx, client, &o.scope, func(ns string) bool { return olds[ns] != nil })
	if err != nil {
		return err
	}
	var plans []nsPlan
	var refused []string
	for _, ns := range slices.Sorted(maps.Keys(olds)) {
		in := secretuse.Namespace{}
		if u := uses[ns]; u != nil {
			in = *u
		}
		p := plan(ns, olds[ns], news[ns], in, o.options())
		if p.refused != "" {
			refused = append(refused, p.refused)
		}
		plans = append(plans, p)
	}
	if len(refused) > 0 {
		for _, r := range refused[:len(refused)-1] {
			fmt.Fprintf(o.streams.ErrOut, "error: %s\n", r)
		}
		return cmdutil.Refused("%s", refused[len(refused)-1])
	}
	info := o.out.Info(o.streams.Out, o.streams.ErrOut)
	failed := false
	var written []runtime.Object
	for _, p := range plans {
		objs, ok := o.apply(ctx, client, p, info)
		written = append(written, objs...)
		failed = failed || !ok
	}
	if err := o.out.PrintWritten(written, o.streams.Out); err != nil {
		return err
	}
	if failed {
		return cmdutil.ErrProblemsFound
	}
	return nil
}

// readSecrets reads OLD (with the -l selector) and NEW in each list
// namespace: one LIST selected by name each.
func (o *Options) readSecrets(ctx context.Context, client kubernetes.Interface) (olds, news map[string]*corev1.Secret, err error) {
	olds, news = map[string]*corev1.Secret{}, map[string]*corev1.Secret{}
	var mu sync.Mutex
	err = o.scope.EachNamespace(func(ns string) error {
		for _, q := range []struct {
			name, selector string
			into           map[string]*corev1.Secret
		}{{o.oldName, o.scope.ObjectSelector(), olds}, {o.newName, "", news}} {
			list, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", q.name).String(), LabelSelector: q.selector})
			if err != nil {
				return fmt.Errorf("list Secrets named %s in %s: %w", q.name, o.scope.DescribeList(ns), err)
			}
			mu.Lock()
			for i := range list.Items {
				if s := &list.Items[i]; o.scope.Contains(s.Namespace) {
					q.into[s.Namespace] = s
				}
			}
			mu.Unlock()
		}
		return nil
	})
	return olds, news, err
}

// apply writes one namespace's plan, in the controller's order, and says
// each step on info. OLD is deleted only when every step before
// succeeded.
func (o *Options) apply(ctx context.Context, client kubernetes.Interface, p nsPlan, info io.Writer) ([]runtime.Object, bool) {
	opts := o.options()
	where := ""
	if !o.scope.Single() {
		where = " in namespace " + p.namespace
	}
	say := func(format string, args ...any) { o.write.Printf(info, format+where, args...) }
	fail := func(format string, args ...any) bool {
		fmt.Fprintf(o.streams.ErrOut, "error: "+format+"\n", args...)
		return false
	}
	var written []runtime.Object

	// 1. Copy.
	if p.copy {
		cp, err := o.copySecret(ctx, client, p.old)
		if err != nil {
			return written, fail("%v", err)
		}
		written = append(written, cp)
		say("secret/%s created (copy of %s)", o.newName, o.oldName)
	} else {
		say("secret/%s unchanged", o.newName)
	}

	// 2. Attach NEW in OLD's place: one update per ServiceAccount.
	ok := true
	store := o.write.Store(client)
	for _, e := range p.serviceAccounts {
		if o.write.DryRun == cmdutil.DryRunClient {
			cp := e.sa.DeepCopy()
			cp.ImagePullSecrets = e.list
			written = append(written, cp)
			say("serviceaccount/%s %s -> %s", e.sa.Name, o.oldName, o.newName)
			continue
		}
		stored, wrote, err := serviceaccount.Update(ctx, store, e.sa, func(sa *corev1.ServiceAccount) (bool, error) {
			return replaceRef(&sa.ImagePullSecrets, o.oldName, o.newName), nil
		})
		if err != nil && !serviceaccount.IsGone(err) {
			ok = fail("%v", err)
			continue
		}
		if wrote {
			written = append(written, stored)
		}
		say("serviceaccount/%s %s -> %s", e.sa.Name, o.oldName, o.newName)
	}

	// 3. Workloads.
	for _, w := range p.warnings {
		fmt.Fprintf(o.streams.ErrOut, "warning: %s%s\n", w, where)
	}
	for _, pt := range p.patches {
		obj, err := o.patch(ctx, client, p.namespace, pt)
		if err != nil {
			ok = fail("%v", err)
			continue
		}
		if obj != nil {
			written = append(written, obj)
		}
		say("%s/%s patched (%s -> %s): %s", pt.resource, pt.name, o.oldName, o.newName, pt.effect)
	}

	// 4. Retire OLD once nothing uses it.
	switch {
	case !ok:
		say("secret/%s kept: a step above failed", o.oldName)
		return written, false
	case !p.retire:
		say("secret/%s kept: %s", o.oldName, p.keptBecause(opts))
		return written, true
	}
	if o.write.DryRun != cmdutil.DryRunClient {
		err := client.CoreV1().Secrets(p.namespace).Delete(ctx, o.oldName, o.write.Delete(p.old.UID))
		switch {
		case apierrors.IsConflict(err):
			return written, fail("secret %s/%s was replaced meanwhile: not deleted; run this again", p.namespace, o.oldName)
		case err != nil && !apierrors.IsNotFound(err):
			return written, fail("delete Secret %s/%s: %v", p.namespace, o.oldName, err)
		}
	}
	written = append(written, p.old)
	say("secret/%s deleted", o.oldName)
	return written, true
}

func (o *Options) copySecret(ctx context.Context, client kubernetes.Interface, old *corev1.Secret) (*corev1.Secret, error) {
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
	if o.write.DryRun == cmdutil.DryRunClient {
		return cp, nil
	}
	stored, err := client.CoreV1().Secrets(old.Namespace).Create(ctx, cp, o.write.Create())
	if err != nil {
		return nil, fmt.Errorf("create Secret %s/%s: %w", old.Namespace, o.newName, err)
	}
	return stored, nil
}

// patch repoints a workload's template with a JSON patch that first tests
// the list it read, so a concurrent change is never overwritten.
func (o *Options) patch(ctx context.Context, client kubernetes.Interface, ns string, pt patch) (runtime.Object, error) {
	if o.write.DryRun == cmdutil.DryRunClient {
		return nil, nil
	}
	ops := []map[string]any{
		{"op": "test", "path": pt.path, "value": pt.list},
		{"op": "replace", "path": pt.path, "value": pt.updated},
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	opts := o.write.Patch()
	apps, batch, core := client.AppsV1(), client.BatchV1(), client.CoreV1()
	var obj runtime.Object
	switch pt.resource {
	case "deployment.apps":
		obj, err = apps.Deployments(ns).Patch(ctx, pt.name, types.JSONPatchType, body, opts)
	case "statefulset.apps":
		obj, err = apps.StatefulSets(ns).Patch(ctx, pt.name, types.JSONPatchType, body, opts)
	case "daemonset.apps":
		obj, err = apps.DaemonSets(ns).Patch(ctx, pt.name, types.JSONPatchType, body, opts)
	case "replicaset.apps":
		obj, err = apps.ReplicaSets(ns).Patch(ctx, pt.name, types.JSONPatchType, body, opts)
	case "replicationcontroller":
		obj, err = core.ReplicationControllers(ns).Patch(ctx, pt.name, types.JSONPatchType, body, opts)
	case "cronjob.batch":
		obj, err = batch.CronJobs(ns).Patch(ctx, pt.name, types.JSONPatchType, body, opts)
	default:
		err = fmt.Errorf("cannot patch a %s", pt.resource)
	}
	if err != nil {
		return nil, fmt.Errorf("patch %s %s/%s: %w", pt.resource, ns, pt.name, err)
	}
	return obj, nil
}
