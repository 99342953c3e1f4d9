// Package status is `kubectl pullsecrets status`: the state of pull
// secrets across namespaces (which ServiceAccounts carry which, which of
// those are missing or unusable, which Pods fail or will fail to pull and
// why, in a word), for people and for CI (exit status 1 when there are
// problems).
package status

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

const example = `  # The namespace of the current context
  kubectl pullsecrets status

  # Every namespace, as a CI gate (exit status 1 when something is wrong)
  kubectl pullsecrets status -A

  # The namespaces of one team, with the full sentence for each problem
  kubectl pullsecrets status --namespace-selector team=shop -o wide

  # Only the ServiceAccounts and Pods labelled app=web, in one namespace
  kubectl pullsecrets status -n shop -l app=web

  # For scripts; --verify also asks the registries about failing Pods
  kubectl pullsecrets status -A -o json --verify
  kubectl pullsecrets status -A -o jsonpath='{.problems}'`

// Options are the flags of status, completed, validated and run in that
// order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	scope  cmdutil.Scope
	out    *cmdutil.Output
	verify bool
	vflags cmdutil.VerifyFlags
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams, out: cmdutil.NewOutput(true)}
}

// NewCommand returns the `status` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "status [-n NAMESPACE | -A | --namespace-selector SELECTOR] [-l SELECTOR] [-o wide|json|yaml|name|jsonpath=...] [--verify]",
		Short: "Show which ServiceAccounts carry which pull secrets, and what is wrong",
		Long: `Show, for the namespace (-n, else the context's), every namespace (-A) or the
namespaces whose labels match --namespace-selector:

  - every ServiceAccount that lists pull secrets, and whether each exists and
    is usable by the kubelet (type, data key, JSON, base64);
  - every Pod that fails to pull an image, or has not pulled yet and will fail
    to (created before its ServiceAccount got the pull secret its image
    needs), with the cause in a word ('kubectl pullsecrets doctor' gives the
    sentence and the fix).

-l selects the ServiceAccounts and Pods shown by their labels, as kubectl's
-l does; it combines with -n, -A and --namespace-selector.

A namespace that does not exist is an error, and so is a -l or
--namespace-selector that matches nothing (exit status 1). A user who may not
read Secrets (the built-in view role) gets the rest, with a note on stderr.

The table goes to stdout, the summary line to stderr. The cluster is read with
a constant number of LIST requests however many namespaces -A covers (Pods
page by page).

Exit status: 0 when nothing is wrong, 1 when something is (a missing or
unusable pull secret, a Pod failing or about to fail to pull) or nothing
matched, 2 for a wrong command line.`,
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
	cmdutil.AddScopeFlags(cmd, &o.scope, "ServiceAccounts and Pods")
	o.out.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.verify, "verify", false, "check failing pulls against the registries, with the credentials the kubelet would send")
	cmdutil.AddVerifyFlags(cmd, &o.vflags)
	return cmd
}

// Complete resolves the scope.
func (o *Options) Complete(cmd *cobra.Command) error {
	return o.scope.Complete(cmd, o.factory)
}

// Validate checks the output format.
func (o *Options) Validate(cmd *cobra.Command) error {
	return o.out.Validate(cmd)
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
	r := Build(snap, &o.scope)
	if o.verify {
		opts, err := o.vflags.Options()
		if err != nil {
			return err
		}
		Verify(ctx, r.Pods, opts)
		r.count()
	}
	table := func(w io.Writer) error { return o.out.PrintTable(Table(r), w) }
	if err := o.out.PrintReport(o.streams.Out, o.streams.ErrOut, r.Notes, r, problemRefs(r), table); err != nil {
		return err
	}
	fmt.Fprintln(o.streams.ErrOut, r.Summary())
	switch {
	case r.Matched == 0 && o.scope.Selector != "":
		return cmdutil.NoMatch("no ServiceAccount or Pod matches -l %s in %s", o.scope.Selector, o.scope.DescribeList(""))
	case r.Problems > 0:
		return cmdutil.ErrProblemsFound
	}
	return nil
}

// Report is the status of a scope; -o json|yaml|jsonpath prints it.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	// Scope describes the namespaces and the -l selector.
	Scope string `json:"scope"`
	// Namespaces counts the namespaces read.
	Namespaces int `json:"namespaces"`
	// ServiceAccounts are those that list pull secrets (and match -l).
	ServiceAccounts []ServiceAccount `json:"serviceAccounts"`
	// Pods are the Pods failing to pull, or Pending and about to.
	Pods []diagnose.Diagnosis `json:"pods"`
	// Problems counts the errors: a ServiceAccount with an error of a
	// pull secret, and each Pod.
	Problems int `json:"problems"`
	// Matched counts the ServiceAccounts and Pods that -l selected (all of
	// them without -l).
	Matched int `json:"matched"`
	// Notes say what could not be read (Secrets the user may not read).
	Notes []string `json:"notes"`
}

// DeepCopyObject makes Report a runtime.Object, for cli-runtime's
// printers.
func (r *Report) DeepCopyObject() runtime.Object { return cmdutil.DeepCopyJSON(r) }

// ServiceAccount is one ServiceAccount that lists pull secrets.
type ServiceAccount struct {
	Namespace   string             `json:"namespace"`
	Name        string             `json:"name"`
	PullSecrets []string           `json:"pullSecrets"`
	Problems    []diagnose.Problem `json:"problems"`
}

// Build makes the report of a snapshot.
func Build(snap *cmdutil.Snapshot, scope *cmdutil.Scope) *Report {
	r := &Report{TypeMeta: cmdutil.TypeMeta("StatusReport"), Scope: scope.Describe(), Namespaces: len(snap.Namespaces),
		ServiceAccounts: []ServiceAccount{}, Pods: []diagnose.Diagnosis{}, Notes: snap.SecretNotes(scope)}
	if r.Notes == nil {
		r.Notes = []string{}
	}
	for _, ns := range snap.Namespaces {
		sas := snap.ServiceAccounts[ns]
		names := make([]string, 0, len(sas))
		for name := range sas {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			sa := sas[name]
			if !scope.Matches(sa.Labels) {
				continue
			}
			r.Matched++
			if len(sa.ImagePullSecrets) == 0 {
				continue
			}
			st := ServiceAccount{Namespace: ns, Name: name, PullSecrets: []string{}, Problems: diagnose.ServiceAccount(sa, snap.Secrets[ns], snap.SecretAccess(ns))}
			for _, ref := range sa.ImagePullSecrets {
				st.PullSecrets = append(st.PullSecrets, ref.Name)
			}
			r.ServiceAccounts = append(r.ServiceAccounts, st)
		}
	}
	r.Matched += len(snap.Pods)
	for _, pod := range snap.Pods {
		if d := snap.Diagnose(pod); d.Failing || d.Pending {
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

// Summary is the line that follows the table, on stderr.
func (r *Report) Summary() string {
	failing, pending := 0, 0
	for _, d := range r.Pods {
		if d.Pending {
			pending++
		} else {
			failing++
		}
	}
	withProblem := 0
	for _, sa := range r.ServiceAccounts {
		if diagnose.HasError(sa.Problems) {
			withProblem++
		}
	}
	s := fmt.Sprintf("%s: %d %s, %d %s with pull secrets (%d with a problem), %d %s failing to pull",
		r.Scope, r.Namespaces, plural(r.Namespaces, "namespace"),
		len(r.ServiceAccounts), plural(len(r.ServiceAccounts), "ServiceAccount"), withProblem,
		failing, plural(failing, "Pod"))
	if pending > 0 {
		s += fmt.Sprintf(", %d Pending that will fail", pending)
	}
	s += "."
	if r.Problems > 0 {
		s += " Run 'kubectl pullsecrets doctor' for causes and fixes."
	}
	return s
}

// Table is the report as a table: ServiceAccounts and Pods, namespace by
// namespace; MESSAGE (the first problem's sentence) only with -o wide.
func Table(r *Report) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		cmdutil.Column("Namespace", 0), cmdutil.Column("Object", 0), cmdutil.Column("Pull Secrets", 0),
		cmdutil.Column("Status", 0), cmdutil.Column("Message", 1),
	}}
	for _, rw := range rows(r) {
		t.Rows = append(t.Rows, cmdutil.Row(rw.namespace, rw.object, rw.secrets, rw.status, rw.message))
	}
	return t
}

type row struct {
	namespace, kind, name, object, secrets, status, message string
	problem                                                 bool
}

// rows lists ServiceAccounts and failing Pods, namespace by namespace.
func rows(r *Report) []row {
	var out []row
	for _, sa := range r.ServiceAccounts {
		rw := row{namespace: sa.Namespace, kind: "ServiceAccount", name: sa.Name, object: "serviceaccount/" + sa.Name, secrets: strings.Join(sa.PullSecrets, ","), status: "OK", message: "-"}
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
		out = append(out, row{namespace: d.Namespace, kind: "Pod", name: d.Pod, object: "pod/" + d.Pod, secrets: secrets, status: status, message: messages(d.Problems), problem: true})
	}
	slices.SortStableFunc(out, func(a, b row) int { return strings.Compare(a.namespace, b.namespace) })
	return out
}

// problemRefs are the objects with a problem, for -o name.
func problemRefs(r *Report) []cmdutil.Ref {
	var out []cmdutil.Ref
	for _, rw := range rows(r) {
		if rw.problem {
			out = append(out, cmdutil.Ref{Kind: rw.kind, Namespace: rw.namespace, Name: rw.name})
		}
	}
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

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
