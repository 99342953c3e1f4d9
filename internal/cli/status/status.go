// Package status is `kubectl pullsecrets status`: the state of pull
// secrets across namespaces (which ServiceAccounts carry which, which of
// those are missing or unusable, which Pods fail to pull and why, in a
// word), for people and for CI (exit status 1 when there are problems).
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

const example = `  # The namespace of the current context
  kubectl pullsecrets status

  # Every namespace, as a CI gate (exit status 1 when something is wrong)
  kubectl pullsecrets status -A

  # The namespaces of one team, with the full sentence for each problem
  kubectl pullsecrets status -l team=shop -o wide

  # For scripts; --verify also asks the registries about failing Pods
  kubectl pullsecrets status -A -o json --verify`

// Options are the flags of status, completed, validated and run in that
// order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	scope  cmdutil.Scope
	output string
	verify bool
	vflags cmdutil.VerifyFlags
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams}
}

// NewCommand returns the `status` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "status [-n NAMESPACE | -A | -l SELECTOR] [-o wide|json|yaml|name] [--verify]",
		Short: "Show which ServiceAccounts carry which pull secrets, and what is wrong",
		Long: `Show, for the namespace (-n, else the context's), every namespace (-A) or the
namespaces whose labels match -l:

  - every ServiceAccount that lists pull secrets, and whether each exists and
    is usable by the kubelet (type, data key, JSON, base64);
  - every Pod that fails to pull an image, with the cause in a word (run
    'kubectl pullsecrets doctor' for the sentence and the fix).

A summary line ends the table. The cluster is read with a constant number of
LIST requests however many namespaces there are (Pods page by page), never a
request per namespace.

Exit status: 0 when nothing is wrong, 1 when something is (a missing or
unusable pull secret, a Pod failing to pull), 2 for a wrong command line.`,
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(cmd); err != nil {
				return err
			}
			if err := o.Validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmdutil.AddScopeFlags(cmd, &o.scope)
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: wide, json, yaml or name")
	cmd.Flags().BoolVar(&o.verify, "verify", false, "check failing pulls against the registries, with the credentials the kubelet would send")
	cmdutil.AddVerifyFlags(cmd, &o.vflags)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"wide", "json", "yaml", "name"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete resolves the scope.
func (o *Options) Complete(cmd *cobra.Command) error {
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks the output format.
func (o *Options) Validate(cmd *cobra.Command) error {
	if !slices.Contains([]string{"", "wide", "json", "yaml", "name"}, o.output) {
		return cmdutil.UsageErrorf(cmd, "unknown output format %q: use wide, json, yaml or name", o.output)
	}
	return nil
}

// Run reads the scope, builds the report and prints it.
func (o *Options) Run(ctx context.Context) error {
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	meta, err := o.factory.MetadataClient()
	if err != nil {
		return err
	}
	snap, err := cmdutil.ReadSnapshot(ctx, client, meta, &o.scope, cmdutil.SnapshotOptions{Events: true})
	if err != nil {
		return err
	}
	r := Build(snap, o.scope.Describe())
	if o.verify {
		opts, err := o.vflags.Options()
		if err != nil {
			return err
		}
		Verify(ctx, r.Pods, opts)
		r.count()
	}
	switch o.output {
	case "json":
		err = printJSON(o.streams.Out, r)
	case "yaml":
		err = printYAML(o.streams.Out, r)
	case "name":
		err = printNames(o.streams.Out, r)
	default:
		err = printTable(o.streams.Out, r, o.output == "wide")
	}
	if err != nil {
		return err
	}
	if r.Problems > 0 {
		return cmdutil.ErrProblemsFound
	}
	return nil
}

// Report is the status of a scope; -o json prints it as is.
type Report struct {
	Scope      string `json:"scope"`
	Namespaces int    `json:"namespaces"`
	// ServiceAccounts are those that list pull secrets.
	ServiceAccounts []ServiceAccount `json:"serviceAccounts"`
	// Pods are the Pods failing to pull.
	Pods []diagnose.Diagnosis `json:"pods"`
	// Problems counts the errors: an error of a ServiceAccount's pull
	// secret, and each failing Pod.
	Problems int `json:"problems"`
}

// ServiceAccount is one ServiceAccount that lists pull secrets.
type ServiceAccount struct {
	Namespace   string             `json:"namespace"`
	Name        string             `json:"name"`
	PullSecrets []string           `json:"pullSecrets"`
	Problems    []diagnose.Problem `json:"problems"`
}

// Build makes the report of a snapshot.
func Build(snap *cmdutil.Snapshot, scope string) *Report {
	r := &Report{Scope: scope, Namespaces: len(snap.Namespaces), ServiceAccounts: []ServiceAccount{}, Pods: []diagnose.Diagnosis{}}
	for _, ns := range snap.Namespaces {
		sas := snap.ServiceAccounts[ns]
		names := make([]string, 0, len(sas))
		for name := range sas {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			sa := sas[name]
			if len(sa.ImagePullSecrets) == 0 {
				continue
			}
			st := ServiceAccount{Namespace: ns, Name: name, Problems: diagnose.ServiceAccount(sa, snap.Secrets[ns])}
			for _, ref := range sa.ImagePullSecrets {
				st.PullSecrets = append(st.PullSecrets, ref.Name)
			}
			r.ServiceAccounts = append(r.ServiceAccounts, st)
		}
	}
	for _, pod := range snap.Pods {
		if d := snap.Diagnose(pod); d.Failing {
			r.Pods = append(r.Pods, d)
		}
	}
	r.count()
	return r
}

// Verify checks the failing pulls of the Pods against their registries,
// all at once (registrycheck.CheckMany deduplicates identical requests).
func Verify(ctx context.Context, pods []diagnose.Diagnosis, opts registrycheck.Options) {
	var reqs []registrycheck.Request
	var counts []int
	for i := range pods {
		rs := pods[i].VerifyRequests()
		reqs = append(reqs, rs...)
		counts = append(counts, len(rs))
	}
	results := registrycheck.CheckMany(ctx, reqs, opts)
	for i := range pods {
		pods[i].ApplyVerification(results[:counts[i]])
		results = results[counts[i]:]
	}
}

func (r *Report) count() {
	r.Problems = len(r.Pods)
	for _, sa := range r.ServiceAccounts {
		if diagnose.HasError(sa.Problems) {
			r.Problems++
		}
	}
}

// Summary is the line that ends the table.
func (r *Report) Summary() string {
	var failing []string
	for _, sa := range r.ServiceAccounts {
		if diagnose.HasError(sa.Problems) {
			failing = append(failing, sa.Namespace+"/"+sa.Name)
		}
	}
	s := fmt.Sprintf("%s: %d %s, %d %s with pull secrets (%d with a problem), %d %s failing to pull.",
		r.Scope, r.Namespaces, plural(r.Namespaces, "namespace"),
		len(r.ServiceAccounts), plural(len(r.ServiceAccounts), "ServiceAccount"), len(failing),
		len(r.Pods), plural(len(r.Pods), "Pod"))
	if r.Problems > 0 {
		s += " Run 'kubectl pullsecrets doctor' for causes and fixes."
	}
	return s
}

func printTable(w io.Writer, r *Report, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := "NAMESPACE\tOBJECT\tPULL SECRETS\tSTATUS"
	if wide {
		header += "\tMESSAGE"
	}
	fmt.Fprintln(tw, header)
	for _, row := range rows(r) {
		line := strings.Join([]string{row.namespace, row.object, row.secrets, row.status}, "\t")
		if wide {
			line += "\t" + row.message
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

type row struct {
	namespace, object, secrets, status, message string
	problem                                     bool
}

// rows lists ServiceAccounts and failing Pods, namespace by namespace.
func rows(r *Report) []row {
	var out []row
	for _, sa := range r.ServiceAccounts {
		rw := row{namespace: sa.Namespace, object: "serviceaccount/" + sa.Name, secrets: strings.Join(sa.PullSecrets, ","), status: "OK", message: "-"}
		if len(sa.Problems) > 0 {
			rw.status, rw.message, rw.problem = codes(sa.Problems), messages(sa.Problems), diagnose.HasError(sa.Problems)
		}
		out = append(out, rw)
	}
	for _, d := range r.Pods {
		secrets := strings.Join(d.PullSecrets, ",")
		if secrets == "" {
			secrets = "<none>"
		}
		status := d.Containers[0].Reason
		if d.Containers[0].PullError == diagnose.PullKeyring {
			status = "KeyringError" // the reason is the kubelet's decode error; the code says the rest
		}
		if len(d.Problems) > 0 {
			status += ": " + codes(d.Problems)
		}
		out = append(out, row{namespace: d.Namespace, object: "pod/" + d.Pod, secrets: secrets, status: status, message: messages(d.Problems), problem: true})
	}
	slices.SortStableFunc(out, func(a, b row) int { return strings.Compare(a.namespace, b.namespace) })
	return out
}

// codes joins the codes of the errors (the warnings when there is none).
func codes(ps []diagnose.Problem) string {
	var out []string
	for _, p := range ps {
		if p.Severity == diagnose.SeverityError || !diagnose.HasError(ps) {
			if !slices.Contains(out, p.Code) {
				out = append(out, p.Code)
			}
		}
	}
	return strings.Join(out, ",")
}

func messages(ps []diagnose.Problem) string {
	if len(ps) == 0 {
		return "-"
	}
	return ps[0].Message
}

func printNames(w io.Writer, r *Report) error {
	for _, rw := range rows(r) {
		if rw.problem {
			if _, err := fmt.Fprintln(w, rw.object); err != nil {
				return err
			}
		}
	}
	return nil
}

func printJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func printYAML(w io.Writer, r *Report) error {
	out, err := yaml.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = w.Write(out)
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
