// Package attach is `kubectl pullsecrets attach` and `detach`: add a pull
// secret to, or remove it from, the imagePullSecrets of ServiceAccounts in
// one namespace or many, keeping every other entry (the list is atomic:
// read, merge, write with the resourceVersion, retry on conflict).
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
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
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
	scope           cmdutil.Scope
	dryRunFlag      string
	dryRun          cmdutil.DryRun
}

// NewOptions returns Options with their defaults; detach selects the verb.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams, detach bool) *Options {
	return &Options{factory: f, streams: streams, detach: detach}
}

// NewCommand returns the `attach` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams, false)
	cmd := &cobra.Command{
		Use:   "attach SECRET [--service-account SA... | --all-service-accounts] [-n NAMESPACE | -A | -l SELECTOR]",
		Short: "Attach a pull secret to ServiceAccounts, keeping their other entries",
		Long: `Append SECRET to the imagePullSecrets of ServiceAccounts (default: "default")
in the namespace, in every namespace (-A) or in the namespaces whose labels
match -l. Every other entry is kept, in order; an entry already there is left
as it is ("unchanged"). Each ServiceAccount is read, merged and written with
its resourceVersion, and merged again on a conflict, so a concurrent writer
loses nothing.

Only Pods created afterwards get the secret (admission copies a
ServiceAccount's list into new Pods): 'kubectl pullsecrets restart' replaces
the ones stuck on a pull. A namespace without the Secret gets a warning, and
the attachment all the same (Pods pull without it until it exists).

A progress bar is drawn on stderr when it is a terminal.`,
		Example: `  # The default ServiceAccount of the current namespace
  kubectl pullsecrets attach regcred

  # Two ServiceAccounts of every namespace labelled team=shop, as a server dry run
  kubectl pullsecrets attach regcred -l team=shop --service-account default --service-account builder --dry-run=server

  # Every ServiceAccount of every namespace
  kubectl pullsecrets attach regcred -A --all-service-accounts`,
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
		Use:   "detach SECRET [--service-account SA... | --all-service-accounts] [-n NAMESPACE | -A | -l SELECTOR]",
		Short: "Remove a pull secret from ServiceAccounts, keeping their other entries",
		Long: `Remove SECRET from the imagePullSecrets of ServiceAccounts (default:
"default") in the namespace, in every namespace (-A) or in the namespaces
whose labels match -l. No other entry is touched. The Secret itself is not
deleted, and running Pods keep their own copy of the list.

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
	cmdutil.AddScopeFlags(cmd, &o.scope)
	cmdutil.AddDryRunFlag(cmd, &o.dryRunFlag)
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

// Complete takes the Secret name, the scope and the dry-run strategy.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return cmdutil.UsageErrorf(cmd, "%s needs exactly one SECRET", cmd.Name())
	}
	o.secret = args[0]
	if len(o.serviceAccounts) == 0 && !o.allSAs {
		o.serviceAccounts = []string{"default"}
	}
	var err error
	if o.dryRun, err = cmdutil.ParseDryRun(cmd, o.dryRunFlag); err != nil {
		return err
	}
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks names before any request.
func (o *Options) Validate(cmd *cobra.Command) error {
	if errs := validation.IsDNS1123Subdomain(o.secret); len(errs) > 0 {
		return cmdutil.UsageErrorf(cmd, "invalid Secret name %q: %s", o.secret, errs[0])
	}
	if o.allSAs && cmd.Flags().Changed("service-account") {
		return cmdutil.UsageErrorf(cmd, "give --service-account or --all-service-accounts, not both")
	}
	for _, sa := range o.serviceAccounts {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			return cmdutil.UsageErrorf(cmd, "invalid ServiceAccount name %q: %s", sa, errs[0])
		}
	}
	return nil
}

// result is the outcome for one ServiceAccount.
type result struct {
	line    string
	warning string
	err     error
}

// Run reads the ServiceAccounts and the Secret's presence of the scope
// (one LIST each per list namespace), then updates the ServiceAccounts.
func (o *Options) Run(ctx context.Context) error {
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	namespaces, err := o.scope.Resolve(ctx, client)
	if err != nil {
		return err
	}
	targets, missingSAs, err := o.targets(ctx, client, namespaces)
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
	results := make([]result, len(targets))
	progress := cmdutil.NewProgress(o.streams.ErrOut, len(targets), o.verb()+"ing")
	store := serviceaccount.ClientsetStore{Client: client, DryRun: o.dryRun.ServerDryRun()}
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
	for _, m := range missingSAs {
		fmt.Fprintf(o.streams.ErrOut, "warning: ServiceAccount %s not found\n", m)
	}
	if len(targets) == 0 {
		fmt.Fprintf(o.streams.ErrOut, "warning: no ServiceAccount to %s in %s\n", o.verb(), o.scope.Describe())
	}
	for _, r := range results {
		if r.warning != "" {
			fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", r.warning)
		}
		if r.err != nil {
			fmt.Fprintf(o.streams.ErrOut, "error: %v\n", r.err)
			failed = true
			continue
		}
		o.dryRun.Printf(o.streams.Out, "%s", r.line)
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
// name, and the named ones that do not exist (single namespace only: with
// several, a namespace without that ServiceAccount is not an error).
func (o *Options) targets(ctx context.Context, client kubernetes.Interface, namespaces []string) ([]*corev1.ServiceAccount, []string, error) {
	opts := metav1.ListOptions{}
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
		return nil, nil, err
	}
	var out []*corev1.ServiceAccount
	found := map[string]bool{}
	for i := range all {
		sa := &all[i]
		if !o.scope.Contains(sa.Namespace) || (!o.allSAs && !slices.Contains(o.serviceAccounts, sa.Name)) {
			continue
		}
		found[sa.Namespace+"/"+sa.Name] = true
		out = append(out, sa)
	}
	slices.SortFunc(out, func(a, b *corev1.ServiceAccount) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	var missing []string
	if o.scope.Single() && !o.allSAs {
		for _, name := range o.serviceAccounts {
			if ref := namespaces[0] + "/" + name; !found[ref] {
				missing = append(missing, ref)
			}
		}
	}
	return out, missing, nil
}

// secretPresence lists the namespaces of the scope holding the Secret:
// one LIST selected by name in each list namespace, of metadata only, since
// presence is all it needs.
func (o *Options) secretPresence(ctx context.Context, meta metadata.Interface) (map[string]bool, error) {
	var mu sync.Mutex
	have := map[string]bool{}
	err := o.scope.EachNamespace(func(ns string) error {
		list, err := meta.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", o.secret).String(),
		})
		if err != nil {
			return fmt.Errorf("list Secrets named %s in %s: %w", o.secret, o.scope.DescribeList(ns), err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range list.Items {
			have[s.Namespace] = true
		}
		return nil
	})
	return have, err
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
	if o.dryRun == cmdutil.DryRunClient {
		changed, _ := mutate(sa.DeepCopy())
		if !changed {
			done = "unchanged"
		}
		r.line = fmt.Sprintf("serviceaccount/%s %s%s", sa.Name, done, where)
		return r
	}
	_, wrote, err := serviceaccount.Update(ctx, store, sa, mutate)
	switch {
	case serviceaccount.IsGone(err):
		r.line = fmt.Sprintf("serviceaccount/%s gone%s", sa.Name, where)
		return r
	case err != nil:
		r.err = err
		return r
	case !wrote:
		done = "unchanged"
	}
	r.line = fmt.Sprintf("serviceaccount/%s %s%s", sa.Name, done, where)
	return r
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
