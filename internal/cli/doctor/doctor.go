// Package doctor is `kubectl pullsecrets doctor`: for each Pod that fails
// to pull an image, why, in one sentence per cause, and the command that
// fixes it. The rules live in package diagnose, shared with status.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/cli/status"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
)

const example = `  # Why do Pods of the current namespace fail to pull?
  kubectl pullsecrets doctor

  # One Pod, and ask the registry with the exact credentials the kubelet sends
  kubectl pullsecrets doctor web-7d9f-x2x4z -n shop --verify

  # Every namespace, for a script
  kubectl pullsecrets doctor -A -o json`

// Options are the flags and arguments of doctor, completed, validated and
// run in that order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	scope  cmdutil.Scope
	pods   []string
	output string
	verify bool
	vflags cmdutil.VerifyFlags
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams}
}

// NewCommand returns the `doctor` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "doctor [POD...] [-n NAMESPACE | -A | -l SELECTOR] [--verify] [-o json|yaml]",
		Short: "Explain why Pods fail to pull their images, and how to fix it",
		Long: `For every Pod that waits on ErrImagePull or ImagePullBackOff (or that the
kubelet cannot even try, because a pull secret does not decode), say why, one
sentence per cause, each with the command that fixes it:

  - the Pod was created before its ServiceAccount got the pull secret
    (admission copies a ServiceAccount's list only into new Pods);
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

With --verify, the registry is asked directly, with exactly the credentials
the kubelet would send, in its order: the answer is then certain (the check
runs from here, not from the node). Passwords are never shown.

With POD names, only those Pods are examined (in the namespace), failing or
not. Exit status: 0 when no Pod fails to pull, 1 when one does, 2 for a wrong
command line.`,
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
	cmdutil.AddScopeFlags(cmd, &o.scope)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: sentences)")
	cmd.Flags().BoolVar(&o.verify, "verify", false, "ask the registries, with the credentials the kubelet would send, in its order")
	cmdutil.AddVerifyFlags(cmd, &o.vflags)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete resolves the scope and takes the Pod names.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	o.pods = args
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks the command line.
func (o *Options) Validate(cmd *cobra.Command) error {
	if len(o.pods) > 0 && !o.scope.Single() {
		return cmdutil.UsageErrorf(cmd, "POD names need one namespace (-n), not -A or -l")
	}
	for _, p := range o.pods {
		if errs := validation.IsDNS1123Subdomain(p); len(errs) > 0 {
			return cmdutil.UsageErrorf(cmd, "invalid Pod name %q: %s", p, errs[0])
		}
	}
	if !slices.Contains([]string{"", "json", "yaml"}, o.output) {
		return cmdutil.UsageErrorf(cmd, "unknown output format %q: use json or yaml", o.output)
	}
	return nil
}

// Report is what doctor found; -o json prints it as is.
type Report struct {
	Scope string `json:"scope"`
	// Pods are the Pods examined: the failing ones, or those named.
	Pods []diagnose.Diagnosis `json:"pods"`
	// Missing are the named Pods that do not exist.
	Missing []string `json:"missing,omitempty"`
}

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
	r := &Report{Scope: o.scope.Describe(), Pods: []diagnose.Diagnosis{}}
	found := map[string]bool{}
	owners := &clusterPullSecrets{factory: o.factory, errOut: o.streams.ErrOut, read: map[string]diagnose.Owner{}}
	now := time.Now()
	for _, pod := range snap.Pods {
		found[pod.Name] = true
		in := diagnose.Input{
			Pod: pod, Events: snap.PodEvents(pod.Namespace, pod.Name), Secrets: snap.Secrets[pod.Namespace],
			ServiceAccount:     snap.ServiceAccount(pod.Namespace, pullfailure.ServiceAccountName(pod)),
			ClusterPullSecrets: owners.read, Now: now,
		}
		d := diagnose.Pod(in)
		if names := d.ClusterPullSecretsToRead(); len(names) > 0 {
			owners.get(ctx, names)
			d = diagnose.Pod(in)
		}
		if d.Failing || len(o.pods) > 0 {
			r.Pods = append(r.Pods, d)
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
	switch o.output {
	case "json":
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	case "yaml":
		var out []byte
		if out, err = yaml.Marshal(r); err == nil {
			_, err = o.streams.Out.Write(out)
		}
	default:
		err = printText(o.streams.Out, r)
	}
	if err != nil {
		return err
	}
	for _, p := range r.Missing {
		fmt.Fprintf(o.streams.ErrOut, "error: Pod %s/%s not found\n", o.scope.Namespace, p)
	}
	if len(r.Missing) > 0 || slices.ContainsFunc(r.Pods, func(d diagnose.Diagnosis) bool { return d.Failing }) {
		return cmdutil.ErrProblemsFound
	}
	return nil
}

// printText writes one block per Pod: what fails, then each problem as a
// sentence and its fix.
func printText(w io.Writer, r *Report) error {
	var b strings.Builder
	failing := 0
	for _, d := range r.Pods {
		if d.Failing {
			failing++
		}
		writePod(&b, d)
		b.WriteString("\n")
	}
	switch {
	case len(r.Pods) == 0 && len(r.Missing) == 0:
		fmt.Fprintf(&b, "No Pod fails to pull an image in %s.\n", r.Scope)
	case len(r.Pods) > 0:
		fmt.Fprintf(&b, "%d %s failing to pull in %s.\n", failing, plural(failing, "Pod"), r.Scope)
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
	if d.Failing {
		state = "fails to pull"
	}
	fmt.Fprintf(b, "Pod %s %s (ServiceAccount %s; %s)\n", d.Ref(), state, d.ServiceAccount, owner)
	if len(d.PullSecrets) == 0 {
		b.WriteString("  pull secrets: <none>\n")
	} else {
		fmt.Fprintf(b, "  pull secrets: %s\n", strings.Join(d.PullSecrets, ", "))
	}
	if d.Failing {
		for _, c := range d.Containers {
			reason := c.Reason
			if c.PullError == diagnose.PullKeyring {
				reason = "not pulled: " + reason
			}
			fmt.Fprintf(b, "  container %s: %s: %s\n", c.Name, c.Image, reason)
			if c.Credentials != nil {
				creds := "none (anonymous pull)"
				if len(c.Credentials) > 0 {
					creds = strings.Join(c.Credentials, "; ")
				}
				fmt.Fprintf(b, "    credentials the kubelet sends: %s\n", creds)
			}
		}
	}
	for _, p := range d.Problems {
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
