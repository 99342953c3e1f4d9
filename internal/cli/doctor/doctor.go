// Package doctor is `kubectl pullsecrets doctor`: for each Pod that fails
// to pull an image, why, in one sentence per cause, and the command that
// fixes it. The rules live in package diagnose, shared with status.
package doctor

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/cli/status"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
)

const example = `  # Why do Pods of the current namespace fail to pull?
  kubectl pullsecrets doctor

  # One Pod, and ask the registry with the exact credentials the kubelet sends
  kubectl pullsecrets doctor pod/web-7d9f-x2x4z -n shop --verify

  # The Pods labelled app=web, in one namespace
  kubectl pullsecrets doctor -n shop -l app=web

  # Every namespace, for a script
  kubectl pullsecrets doctor -A -o json
  kubectl pullsecrets doctor -A -o name`

// Options are the flags and arguments of doctor, completed, validated and
// run in that order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	scope  cmdutil.Scope
	pods   []string
	out    *cmdutil.Output
	verify bool
	vflags cmdutil.VerifyFlags
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams, out: cmdutil.NewOutput(false)}
}

// NewCommand returns the `doctor` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "doctor [POD | pod/POD ...] [-n NAMESPACE | -A | --namespace-selector SELECTOR] [-l SELECTOR] [--verify] [-o wide|json|yaml|name|jsonpath=...]",
		Short: "Explain why Pods fail to pull their images, and how to fix it",
		Long: `For every Pod that waits on ErrImagePull or ImagePullBackOff (or that the
kubelet cannot even try, because a pull secret does not decode), and every
Pod that has not pulled yet and will fail to, say why, one sentence per
cause, each with the command that fixes it:

  - the Pod was created before its ServiceAccount got the pull secret
    (admission copies a ServiceAccount's list only into new Pods); a Pending
    Pod in that state is reported before it fails;
  - the Pod's own imagePullSecrets hide its ServiceAccount's (admission copies
    them only into Pods that list none);
  - a pull secret it lists is missing, of the wrong type, or unparsable (which
    fails every pull of the Pod);
  - no credential matches the image, and why (host, port, path, glob);
  - kubernetes.io/enforce-mountable-secrets on the ServiceAccount;
  - what the registry answered, read from the kubelet's message: credentials
    rejected (401), no access (403), pull access denied, image not found,
    registry unreachable, untrusted certificate;
  - a refused registry token that had expired (an ECR token, a copy its
    ClusterPullSecret failed to refresh): when, from the token itself, the
    ClusterPullSecret's status or the Secret's pullsecrets.dev/expires-at, and
    who should have refreshed it.

Then every ServiceAccount whose pull secrets are missing or unusable (what
status reports), since every new Pod of it gets them.

With --verify, the registry is asked directly, with exactly the credentials
the kubelet would send, in its order: the answer is then certain (the check
runs from here, not from the node). Passwords are never shown.

With POD names (NAME or pod/NAME), only those Pods are examined (in the
namespace), failing or not, and their ServiceAccounts. -l selects the Pods by
their labels, as kubectl's -l does, and combines with -n, -A and
--namespace-selector. A user who may not read Secrets (the built-in view role)
gets every cause that needs none, with a note on stderr.

Exit status: 0 when no Pod fails or will fail to pull and no ServiceAccount
has a broken pull secret, 1 when one does, a named Pod does not exist, or -l
matches no Pod, 2 for a wrong command line.`,
		Example: example,
		ValidArgsFunction: func(c *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return completePods(c, f)
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
	cmdutil.AddScopeFlags(cmd, &o.scope, "Pods")
	o.out.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.verify, "verify", false, "ask the registries, with the credentials the kubelet would send, in its order")
	cmdutil.AddVerifyFlags(cmd, &o.vflags)
	return cmd
}

// Complete resolves the scope and takes the Pod names (NAME or pod/NAME).
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	for _, a := range args {
		name, err := cmdutil.ParseName(cmd, a, "Pod")
		if err != nil {
			return err
		}
		if !slices.Contains(o.pods, name) {
			o.pods = append(o.pods, name)
		}
	}
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks the command line.
func (o *Options) Validate(cmd *cobra.Command) error {
	if len(o.pods) > 0 && !o.scope.Single() {
		return cmdutil.UsageErrorf(cmd, "POD names need one namespace (-n), not -A or --namespace-selector")
	}
	if len(o.pods) > 0 && o.scope.Selector != "" {
		return cmdutil.UsageErrorf(cmd, "give POD names or -l, not both")
	}
	return o.out.Validate(cmd)
}

// Report is what doctor found; -o json|yaml|jsonpath prints it.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	Scope           string `json:"scope"`
	// Pods are the Pods examined: the failing ones (and Pending ones that
	// will fail), or those named.
	Pods []diagnose.Diagnosis `json:"pods"`
	// ServiceAccounts are the ServiceAccounts with a problem of their pull
	// secrets: in the scope, or those of the named or selected Pods.
	ServiceAccounts []status.ServiceAccount `json:"serviceAccounts"`
	// Missing are the named Pods that do not exist.
	Missing []string `json:"missing"`
	// Notes say what could not be read (Secrets the user may not read).
	Notes []string `json:"notes"`
}

// DeepCopyObject makes Report a runtime.Object, for cli-runtime's
// printers.
func (r *Report) DeepCopyObject() runtime.Object { return cmdutil.DeepCopyJSON(r) }

// Run reads the scope, diagnoses the Pods and prints the report.
func (o *Options) Run(ctx context.Context) error {
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	meta, err := o.factory.MetadataClient()
	if err != nil {
		return err
	}
	snap, err := cmdutil.ReadSnapshot(ctx, client, meta, &o.scope, cmdutil.SnapshotOptions{Events: true, PodNames: o.pods})
	if err != nil {
		return err
	}
	r := &Report{TypeMeta: cmdutil.TypeMeta("DoctorReport"), Scope: o.scope.Describe(), Pods: []diagnose.Diagnosis{},
		ServiceAccounts: []status.ServiceAccount{}, Missing: []string{}, Notes: snap.SecretNotes(&o.scope)}
	if r.Notes == nil {
		r.Notes = []string{}
	}
	found := map[string]bool{}
	owners := &clusterPullSecrets{factory: o.factory, errOut: o.streams.ErrOut, read: map[string]diagnose.Owner{}}
	now := time.Now()
	examinedSAs := map[[2]string]bool{}
	for _, pod := range snap.Pods {
		found[pod.Name] = true
		in := diagnose.Input{
			Pod: pod, Events: snap.PodEvents(pod.Namespace, pod.Name), Secrets: snap.Secrets[pod.Namespace],
			ServiceAccount:     snap.ServiceAccount(pod.Namespace, pullfailure.ServiceAccountName(pod)),
			ClusterPullSecrets: owners.read, Now: now, SecretAccess: snap.SecretAccess(pod.Namespace),
		}
		d := diagnose.Pod(in)
		if names := d.ClusterPullSecretsToRead(); len(names) > 0 {
			owners.get(ctx, names)
			d = diagnose.Pod(in)
		}
		examinedSAs[[2]string{pod.Namespace, d.ServiceAccount}] = true
		if d.Failing || d.Pending || len(o.pods) > 0 {
			r.Pods = append(r.Pods, d)
		}
	}
	everySA := len(o.pods) == 0 && o.scope.Selector == ""
	for _, ns := range snap.Namespaces {
		for _, name := range slices.Sorted(maps.Keys(snap.ServiceAccounts[ns])) {
			sa := snap.ServiceAccounts[ns][name]
			if len(sa.ImagePullSecrets) == 0 || (!everySA && !examinedSAs[[2]string{ns, name}]) {
				continue
			}
			problems := diagnose.ServiceAccount(sa, snap.Secrets[ns], snap.SecretAccess(ns))
			if diagnose.HasError(problems) {
				st := status.ServiceAccount{Namespace: ns, Name: name, PullSecrets: []string{}, Problems: problems}
				for _, ref := range sa.ImagePullSecrets {
					st.PullSecrets = append(st.PullSecrets, ref.Name)
				}
				r.ServiceAccounts = append(r.ServiceAccounts, st)
			}
		}
	}
	for _, p := range o.pods {
		if !found[p] {
			r.Missing = append(r.Missing, p)
		}
	}
	if o.verify {
		opts, err := o.vflags.Options()
		if err != nil {
			return err
		}
		status.Verify(ctx, r.Pods, opts)
	}
	text := func(w io.Writer) error { return printText(w, r) }
	if err := o.out.PrintReport(o.streams.Out, o.streams.ErrOut, r.Notes, r, problemRefs(r), text); err != nil {
		return err
	}
	fmt.Fprintln(o.streams.ErrOut, summary(r))
	for _, p := range r.Missing {
		fmt.Fprintf(o.streams.ErrOut, "error: Pod %s/%s not found\n", o.scope.Namespace, p)
	}
	switch {
	case len(snap.Pods) == 0 && o.scope.Selector != "":
		return cmdutil.NoMatch("no Pod matches -l %s in %s", o.scope.Selector, o.scope.DescribeList(""))
	case len(r.Missing) > 0 || len(r.ServiceAccounts) > 0 || slices.ContainsFunc(r.Pods, func(d diagnose.Diagnosis) bool { return d.Failing || d.Pending }):
		return cmdutil.ErrProblemsFound
	}
	return nil
}

// problemRefs are the Pods failing (or about to) and the ServiceAccounts
// with a broken pull secret, for -o name.
func problemRefs(r *Report) []cmdutil.Ref {
	var out []cmdutil.Ref
	for _, d := range r.Pods {
		if d.Failing || d.Pending {
			out = append(out, cmdutil.Ref{Kind: "Pod", Namespace: d.Namespace, Name: d.Pod})
		}
	}
	for _, sa := range r.ServiceAccounts {
		out = append(out, cmdutil.Ref{Kind: "ServiceAccount", Namespace: sa.Namespace, Name: sa.Name})
	}
	return out
}

// summary is the line that ends the output, on stderr.
func summary(r *Report) string {
	failing, pending := 0, 0
	for _, d := range r.Pods {
		switch {
		case d.Failing:
			failing++
		case d.Pending:
			pending++
		}
	}
	var parts []string
	if failing > 0 || pending == 0 {
		parts = append(parts, fmt.Sprintf("%d %s failing to pull", failing, plural(failing, "Pod")))
	}
	if pending > 0 {
		parts = append(parts, fmt.Sprintf("%d Pending %s that will fail to pull", pending, plural(pending, "Pod")))
	}
	if n := len(r.ServiceAccounts); n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s with a broken pull secret", n, plural(n, "ServiceAccount")))
	}
	if failing == 0 && pending == 0 && len(r.ServiceAccounts) == 0 {
		return fmt.Sprintf("No Pod fails to pull an image in %s.", r.Scope)
	}
	return fmt.Sprintf("%s in %s.", strings.Join(parts, ", "), r.Scope)
}

// printText writes one block per Pod: what fails, then each problem as a
// sentence and its fix; then one per ServiceAccount with a broken pull
// secret.
func printText(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, d := range r.Pods {
		writePod(&b, d)
		b.WriteString("\n")
	}
	for _, sa := range r.ServiceAccounts {
		fmt.Fprintf(&b, "ServiceAccount %s/%s: its new Pods get %s\n", sa.Namespace, sa.Name, strings.Join(sa.PullSecrets, ", "))
		writeProblems(&b, sa.Problems)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writePod(b *strings.Builder, d diagnose.Diagnosis) {
	owner := "no owner: deleting it does not bring it back"
	if d.Owner != "" {
		owner = d.Owner
	}
	state := "pulls its images"
	switch {
	case d.Failing:
		state = "fails to pull"
	case d.Pending:
		state = "will fail to pull (it has not pulled yet)"
	}
	fmt.Fprintf(b, "Pod %s %s (ServiceAccount %s; %s)\n", d.Ref(), state, d.ServiceAccount, owner)
	if len(d.PullSecrets) == 0 {
		b.WriteString("  pull secrets: <none>\n")
	} else {
		fmt.Fprintf(b, "  pull secrets: %s\n", strings.Join(d.PullSecrets, ", "))
	}
	if d.Failing || d.Pending {
		for _, c := range d.Containers {
			reason := c.Reason
			if c.PullError == diagnose.PullKeyring {
				reason = "not pulled: " + reason
			}
			fmt.Fprintf(b, "  container %s: %s: %s\n", c.Name, c.Image, reason)
			switch {
			case c.CredentialsUnknown:
				fmt.Fprintf(b, "    credentials the kubelet sends: unknown (the Secrets may not be read)\n")
			case c.LookedUp():
				creds := "none (anonymous pull)"
				if len(c.Credentials) > 0 {
					names := make([]string, len(c.Credentials))
					for i, cr := range c.Credentials {
						names[i] = cr.String()
					}
					creds = strings.Join(names, "; ")
				}
				fmt.Fprintf(b, "    credentials the kubelet sends: %s\n", creds)
			}
		}
	}
	writeProblems(b, d.Problems)
}

// writeProblems writes each problem as a sentence and its fix.
func writeProblems(b *strings.Builder, problems []diagnose.Problem) {
	for _, p := range problems {
		where := ""
		if p.Container != "" {
			where = " (container " + p.Container + ")"
		}
		verified := ""
		if p.Verified {
			verified = ", verified"
		}
		fmt.Fprintf(b, "  %s%s [%s%s]: %s.\n", p.Code, where, p.Severity, verified, strings.TrimSuffix(p.Message, "."))
		if p.Fix != "" {
			fmt.Fprintf(b, "    fix: %s\n", p.Fix)
		}
	}
}

// completePods completes Pod names of the namespace.
func completePods(c *cobra.Command, f cmdutil.Factory) ([]cobra.Completion, cobra.ShellCompDirective) {
	ns, _, err := f.Namespace()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	client, err := f.KubernetesClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: cmdutil.PageSize})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]cobra.Completion, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
