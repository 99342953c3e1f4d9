// Package attach is `kubectl pullsecrets attach` and `detach`: add a pull
// secret to, or remove it from, the imagePullSecrets of ServiceAccounts in
// one namespace or many, keeping every other entry (the list is atomic:
// read, merge, write with the resourceVersion, retry on conflict). Every
// precondition is checked before the first write: nothing is written when
// one fails.
package attach

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/secretuse"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// workers is how many ServiceAccounts are updated at once across
// namespaces; the client's QPS limit (cmdutil) is the real bound.
const workers = 8

// Options are the flags and arguments of attach and detach, completed,
// validated and run in that order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams
	detach  bool

	secret          string
	serviceAccounts []string
	allSAs          bool
	named           bool
	scope           cmdutil.Scope
	write           cmdutil.Write
	out             *cmdutil.Output
}

// NewOptions returns Options with their defaults; detach selects the verb.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams, detach bool) *Options {
	return &Options{factory: f, streams: streams, detach: detach, scope: cmdutil.Scope{Writes: true}, out: cmdutil.NewOutput(false)}
}

const scopeHelp = `ServiceAccounts: --service-account NAME (repeatable; NAME or
serviceaccount/NAME), --all-service-accounts, or -l to select them by their
labels as kubectl's -l does; default: "default". -l combines with
--service-account (those of the names whose labels match).

Namespaces: -n (else the context's), -A (every namespace but kube-system,
kube-public and kube-node-lease; name one with -n) or --namespace-selector
(the namespaces whose labels match).

Nothing is written unless every precondition holds: the namespace exists, in
one namespace every ServiceAccount named exists, and something matches.`

// NewCommand returns the `attach` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams, false)
	cmd := &cobra.Command{
		Use:   "attach SECRET [--service-account SA... | --all-service-accounts | -l SELECTOR] [-n NAMESPACE | -A | --namespace-selector SELECTOR]",
		Short: "Attach a pull secret to ServiceAccounts, keeping their other entries",
		Long: `Append SECRET (NAME or secret/NAME) to the imagePullSecrets of ServiceAccounts.
Every other entry is kept, in order; an entry already there is left as it is
("unchanged"). Each ServiceAccount is read, merged and written with its
resourceVersion, and merged again on a conflict, so a concurrent writer loses
nothing.

` + scopeHelp + ` A Secret of that name that is not a pull secret
(kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg) is refused: the
kubelet would read nothing from it. A namespace without the Secret gets a
warning, and the attachment all the same (Pods pull without it until it
exists).

Only Pods created afterwards get the secret (admission copies a
ServiceAccount's list into new Pods): 'kubectl pullsecrets restart' replaces
the ones stuck on a pull.

With -o name|json|yaml the ServiceAccounts changed go to stdout and the lines
to stderr. A progress bar is drawn on stderr when it is a terminal.`,
		Example: `  # The default ServiceAccount of the current namespace
  kubectl pullsecrets attach regcred

  # Two ServiceAccounts of every namespace labelled team=shop, as a server dry run
  kubectl pullsecrets attach regcred --namespace-selector team=shop --service-account default --service-account builder --dry-run=server

  # The ServiceAccounts labelled tier=web in every namespace
  kubectl pullsecrets attach regcred -A -l tier=web`,
		ValidArgsFunction: completeSecret(f),
		RunE:              o.runE,
	}
	o.addFlags(cmd)
	return cmd
}

// NewDetachCommand returns the `detach` command.
func NewDetachCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams, true)
	cmd := &cobra.Command{
		Use:   "detach SECRET [--service-account SA... | --all-service-accounts | -l SELECTOR] [-n NAMESPACE | -A | --namespace-selector SELECTOR]",
		Short: "Remove a pull secret from ServiceAccounts, keeping their other entries",
		Long: `Remove SECRET (NAME or secret/NAME) from the imagePullSecrets of
ServiceAccounts. No other entry is touched.

` + scopeHelp + `

The Secret itself is never deleted, and running Pods keep their own copy of
the list. Afterwards, in each namespace where it was detached, a note on
stderr says what still uses the Secret, by the rules the controller retires
its copies with (ServiceAccounts listing it, live Pods reading it, Pod
templates that can still make Pods reading it: a Deployment at zero replicas
included), and how to finish: delete it once nothing does.

When a ClusterPullSecret attached the name (annotation pullsecrets.dev/attached),
the name is removed all the same, with a warning: the controller will attach
it again; change the ClusterPullSecret instead.`,
		Example: `  kubectl pullsecrets detach regcred
  kubectl pullsecrets detach regcred -A --all-service-accounts --dry-run`,
		ValidArgsFunction: completeSecret(f),
		RunE:              o.runE,
	}
	o.addFlags(cmd)
	return cmd
}

func (o *Options) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&o.serviceAccounts, "service-account", nil, `ServiceAccount name (repeatable; default "default")`)
	fl.BoolVar(&o.allSAs, "all-service-accounts", false, "every ServiceAccount of the namespaces")
	cmdutil.AddScopeFlags(cmd, &o.scope, "ServiceAccounts")
	o.write.AddFlags(cmd)
	o.out.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("service-account", cmdutil.CompleteServiceAccounts(o.factory))
}

func (o *Options) runE(cmd *cobra.Command, args []string) error {
	if err := o.Complete(cmd, args); err != nil {
		return err
	}
	if err := o.Validate(cmd); err != nil {
		return err
	}
	return o.Run(cmd.Context())
}

// Complete takes the Secret and ServiceAccount names (NAME or TYPE/NAME),
// the scope and the write flags.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return cmdutil.UsageErrorf(cmd, "%s needs exactly one SECRET", cmd.Name())
	}
	var err error
	if o.secret, err = cmdutil.ParseName(cmd, args[0], "Secret"); err != nil {
		return err
	}
	o.named = len(o.serviceAccounts) > 0
	for i, sa := range o.serviceAccounts {
		if o.serviceAccounts[i], err = cmdutil.ParseName(cmd, sa, "ServiceAccount"); err != nil {
			return err
		}
	}
	if !o.named && !o.allSAs && o.scope.Selector == "" {
		o.serviceAccounts = []string{"default"}
		o.named = true
	}
	if err := o.write.Complete(cmd); err != nil {
		return err
	}
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks the flags before any request.
func (o *Options) Validate(cmd *cobra.Command) error {
	if o.allSAs && cmd.Flags().Changed("service-account") {
		return cmdutil.UsageErrorf(cmd, "give --service-account or --all-service-accounts, not both")
	}
	return o.out.Validate(cmd)
}

// result is the outcome for one ServiceAccount.
type result struct {
	line    string
	warning string
	err     error
	written *corev1.ServiceAccount
}

// Run checks every precondition, then updates the ServiceAccounts.
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
	targets, err := o.targets(ctx, client)
	if err != nil {
		return err
	}
	meta, err := o.factory.MetadataClient()
	if err != nil {
		return err
	}
	have, err := o.secretPresence(ctx, meta)
	if err != nil {
		return err
	}

	info := o.out.Info(o.streams.Out, o.streams.ErrOut)
	results := make([]result, len(targets))
	progress := cmdutil.NewProgress(o.streams.ErrOut, len(targets), o.verb()+"ing")
	store := o.write.Store(client)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(targets)) {
		wg.Go(func() {
			for i := range jobs {
				results[i] = o.one(ctx, store, targets[i], have)
				progress.Add(1)
			}
		})
	}
	for i := range targets {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	progress.Done()

	failed := false
	var written []runtime.Object
	detachedIn := map[string]bool{}
	for i, r := range results {
		if r.warning != "" {
			fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", r.warning)
		}
		if r.err != nil {
			fmt.Fprintf(o.streams.ErrOut, "error: %v\n", r.err)
			failed = true
			continue
		}
		o.write.Printf(info, "%s", r.line)
		if r.written != nil {
			written = append(written, r.written)
			detachedIn[targets[i].Namespace] = true
		}
	}
	if err := o.out.PrintWritten(written, o.streams.Out); err != nil {
		return err
	}
	if o.detach && o.write.DryRun != cmdutil.DryRunClient {
		o.noteUses(ctx, client, have, detachedIn)
	}
	if failed {
		return cmdutil.ErrProblemsFound
	}
	return nil
}

func (o *Options) verb() string {
	if o.detach {
		return "detach"
	}
	return "attach"
}

// targets lists the ServiceAccounts to update, sorted by namespace and
// name. In one namespace, every ServiceAccount named must exist; across
// several, a namespace without one is skipped. Nothing to update at all is
// an error: the command would do nothing while meaning to.
func (o *Options) targets(ctx context.Context, client kubernetes.Interface) ([]*corev1.ServiceAccount, error) {
	opts := metav1.ListOptions{LabelSelector: o.scope.ObjectSelector()}
	if len(o.serviceAccounts) == 1 && !o.allSAs {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", o.serviceAccounts[0]).String()
	}
	var mu sync.Mutex
	var all []corev1.ServiceAccount
	err := o.scope.EachNamespace(func(ns string) error {
		list, err := client.CoreV1().ServiceAccounts(ns).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list ServiceAccounts in %s: %w", o.scope.DescribeList(ns), err)
		}
		mu.Lock()
		all = append(all, list.Items...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []*corev1.ServiceAccount
	found := map[string]bool{}
	for i := range all {
		sa := &all[i]
		if !o.scope.Contains(sa.Namespace) || (o.named && !slices.Contains(o.serviceAccounts, sa.Name)) {
			continue
		}
		found[sa.Name] = true
		out = append(out, sa)
	}
	slices.SortFunc(out, func(a, b *corev1.ServiceAccount) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if o.scope.Single() && o.named {
		var missing []string
		for _, name := range o.serviceAccounts {
			if !found[name] {
				missing = append(missing, o.scope.Namespace+"/"+name)
			}
		}
		switch {
		case len(missing) > 0 && o.scope.Selector != "":
			return nil, cmdutil.Refused("ServiceAccount %s does not exist or does not match -l %s", strings.Join(missing, ", "), o.scope.Selector)
		case len(missing) > 0:
			return nil, cmdutil.Refused("ServiceAccount %s does not exist", strings.Join(missing, ", "))
		}
	}
	if len(out) == 0 {
		what := "ServiceAccounts"
		if o.named {
			what = "ServiceAccounts named " + strings.Join(o.serviceAccounts, ", ")
		}
		return nil, cmdutil.NoMatch("no ServiceAccount to %s: no %s", o.verb(), o.scope.DescribeObjects(what))
	}
	return out, nil
}

// secretPresence lists the namespaces of the scope holding the Secret, and
// refuses (attach) when one holds it with a type the kubelet does not read:
// per list namespace, one metadata-only LIST selected by name, and, where
// it exists, one by name and type (no Secret data is read).
func (o *Options) secretPresence(ctx context.Context, meta metadata.Interface) (map[string]bool, error) {
	var mu sync.Mutex
	have := map[string]bool{}
	var wrong []string
	secrets := meta.Resource(corev1.SchemeGroupVersion.WithResource("secrets"))
	byName := fields.OneTermEqualSelector("metadata.name", o.secret)
	err := o.scope.EachNamespace(func(ns string) error {
		list, err := secrets.Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: byName.String()})
		if err != nil {
			return fmt.Errorf("list Secrets named %s in %s: %w", o.secret, o.scope.DescribeList(ns), err)
		}
		found := false
		mu.Lock()
		for _, s := range list.Items {
			if o.scope.Contains(s.Namespace) {
				have[s.Namespace], found = true, true
			}
		}
		mu.Unlock()
		if !found || o.detach {
			return nil
		}
		other := fields.AndSelectors(byName,
			fields.OneTermNotEqualSelector("type", string(corev1.SecretTypeDockerConfigJson)),
			fields.OneTermNotEqualSelector("type", string(corev1.SecretTypeDockercfg)))
		bad, err := secrets.Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: other.String()})
		if err != nil {
			return fmt.Errorf("list Secrets named %s in %s: %w", o.secret, o.scope.DescribeList(ns), err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range bad.Items {
			if o.scope.Contains(s.Namespace) {
				wrong = append(wrong, s.Namespace+"/"+s.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(wrong) > 0 {
		slices.Sort(wrong)
		return nil, cmdutil.Refused("secret %s is not of type %s or %s: the kubelet would read no credentials from it (recreate it with 'kubectl pullsecrets create %s --overwrite ...')",
			strings.Join(wrong, ", "), corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg, o.secret)
	}
	return have, nil
}

// one attaches or detaches on one ServiceAccount.
func (o *Options) one(ctx context.Context, store serviceaccount.Store, sa *corev1.ServiceAccount, have map[string]bool) result {
	where := ""
	if !o.scope.Single() {
		where = " in namespace " + sa.Namespace
	}
	var r result
	if !o.detach && !have[sa.Namespace] {
		r.warning = fmt.Sprintf("Secret %s/%s does not exist: Pods of ServiceAccount %s pull without it until it does", sa.Namespace, o.secret, sa.Name)
	}
	if o.detach {
		if rec, err := serviceaccount.ReadRecord(sa); err == nil && rec[o.secret] != "" && serviceaccount.Has(sa, o.secret) {
			r.warning = fmt.Sprintf("ClusterPullSecret %s attached %s to ServiceAccount %s/%s and will attach it again: change the ClusterPullSecret's namespaces or serviceAccounts instead",
				rec[o.secret], o.secret, sa.Namespace, sa.Name)
		}
	}
	mutate := func(sa *corev1.ServiceAccount) (bool, error) {
		if o.detach {
			return serviceaccount.Detach(sa, o.secret), nil
		}
		return serviceaccount.Attach(sa, o.secret), nil
	}
	done := o.verb() + "ed"
	if o.write.DryRun == cmdutil.DryRunClient {
		cp := sa.DeepCopy()
		if changed, _ := mutate(cp); changed {
			r.written = cp
		} else {
			done = "unchanged"
		}
		r.line = fmt.Sprintf("serviceaccount/%s %s%s", sa.Name, done, where)
		return r
	}
	stored, wrote, err := serviceaccount.Update(ctx, store, sa, mutate)
	switch {
	case serviceaccount.IsGone(err):
		r.line = fmt.Sprintf("serviceaccount/%s gone%s", sa.Name, where)
		return r
	case err != nil:
		r.err = err
		return r
	case !wrote:
		done = "unchanged"
	default:
		r.written = stored
	}
	r.line = fmt.Sprintf("serviceaccount/%s %s%s", sa.Name, done, where)
	return r
}

// noteUses says, in each namespace where the Secret was detached and
// exists, what still uses it (the controller's retirement rules, package
// secretuse) and how to finish. It is advice: a read that fails says so
// and fails nothing.
func (o *Options) noteUses(ctx context.Context, client kubernetes.Interface, have, detachedIn map[string]bool) {
	keep := func(ns string) bool { return detachedIn[ns] && have[ns] }
	if len(detachedIn) == 0 {
		return
	}
	uses, err := cmdutil.ReadUses(ctx, client, &o.scope, keep)
	if err != nil {
		fmt.Fprintf(o.streams.ErrOut, "note: what still uses Secret %s is unknown (%v)\n", o.secret, err)
		return
	}
	for _, ns := range sortedKeys(detachedIn) {
		if !have[ns] {
			continue
		}
		in := uses[ns]
		if in == nil {
			in = &secretuse.Namespace{}
		}
		held := secretuse.Holders(o.secret, *in)
		if len(held) > 0 {
			fmt.Fprintf(o.streams.ErrOut, "note: Secret %s/%s is still used by %s, so it stays; once nothing uses it, delete it: kubectl -n %s delete secret %s\n",
				ns, o.secret, strings.Join(held, ", "), ns, o.secret)
			continue
		}
		fmt.Fprintf(o.streams.ErrOut, "note: nothing in namespace %s uses Secret %s any more; delete it if nothing else needs it: kubectl -n %s delete secret %s\n", ns, o.secret, ns, o.secret)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func completeSecret(f cmdutil.Factory) cobra.CompletionFunc {
	complete := cmdutil.CompletePullSecrets(f)
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(c, args, toComplete)
	}
}
