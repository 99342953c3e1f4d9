// Package manifests is `kubectl pullsecrets manifests`: scan, migrate and
// rename work on manifest files, folders, kustomizations and stdin, never
// on a cluster.
package manifests

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	libmanifests "github.com/pullsecrets/pullsecrets/internal/manifests"
	"github.com/pullsecrets/pullsecrets/internal/manifests/files"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
)

// NewCommand returns the `manifests` command group.
func NewCommand(_ cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifests",
		Short: "Scan manifest files, move inline imagePullSecrets onto ServiceAccounts, rename a pull secret",
		Long: `Work on Kubernetes manifests, never on a cluster: files and folders (YAML or
JSON, several documents per file, kind: List), kustomizations, and stdin.

` + inputHelp + `

Objects without metadata.namespace are taken to be in the namespace given
with -n, else "default", as kubectl apply would place them; a
kustomization's namespace: wins, as kustomize sets it.

migrate and rename print a unified diff on stdout and what they did and
refused on stderr, and change nothing; with --write they apply it, all files
or none: nothing is written when a file cannot be read or understood, or when
any change is refused. Edits touch only the lines they must: comments, key
order, quoting, indentation, document separators and line endings survive.

` + limitsHelp + `

` + exitHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newScanCommand(streams), newMigrateCommand(streams), newRenameCommand(streams))
	return cmd
}

const inputHelp = `Inputs: PATH arguments and -f/--filename (repeatable), as kubectl takes them.
A folder named as a PATH argument is walked with its subfolders; one named
with -f only for its own files, unless -R/--recursive, as kubectl -f does.
Files in folders must end in .yaml, .yml or .json; hidden folders (.git) are
skipped. "-" reads stdin ('helm template ... | kubectl pullsecrets manifests
scan -'). A folder holding a kustomization.yaml is read as kustomize reads
it: the files and folders its resources list, recursively, with its
namespace; the kustomization itself is never taken for a manifest, and
remote resources are noted and not fetched.`

const exitHelp = `Exit status: 0 when all is well (or there is nothing to do); 1 when scan
finds an error-level problem, or migrate or rename refuse a change; 2 for
bad input (a path or file that cannot be read or understood, nothing to
read) or a wrong command line.`

// limitsHelp says the input limits, from the constants that set them.
var limitsHelp = fmt.Sprintf(`Limits: a file over %s is not read (nor more than that of stdin); files
that come to more than %s together are not read at all; a file whose YAML
aliases and merge keys (<<) expand it past %d times its nodes is left out.`,
	readlimit.MiB(readlimit.MaxFileBytes), readlimit.MiB(readlimit.MaxTotalBytes), libmanifests.MaxAliasExpansion)

// inputs are the flags every manifests verb takes to name its input.
type inputs struct {
	filenames []string
	recursive bool
	namespace string
	in        io.Reader
}

func (i *inputs) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&i.filenames, "filename", "f", nil, `a file, folder or kustomization to read, or "-" for stdin (repeatable)`)
	cmd.Flags().BoolVarP(&i.recursive, "recursive", "R", false, "walk the subfolders of folders given with -f")
}

// list turns the arguments and flags into inputs; args are PATHs.
func (i *inputs) list(cmd *cobra.Command, args []string) ([]files.Input, error) {
	var out []files.Input
	for _, a := range args {
		out = append(out, files.Input{Path: a, Recursive: true})
	}
	for _, f := range i.filenames {
		out = append(out, files.Input{Path: f, Recursive: i.recursive})
	}
	if len(out) == 0 {
		return nil, cmdutil.UsageErrorf(cmd, "%s needs at least one PATH or -f", cmd.Name())
	}
	stdin := 0
	for _, in := range out {
		if in.Path == files.Stdin {
			stdin++
		}
	}
	if stdin > 1 {
		return nil, cmdutil.UsageErrorf(cmd, `"-" (stdin) can be read once`)
	}
	ns, err := namespaceFlag(cmd)
	if err != nil {
		return nil, err
	}
	i.namespace = ns
	return out, nil
}

// hasStdin reports whether the inputs read stdin.
func hasStdin(in []files.Input) bool {
	return slices.ContainsFunc(in, func(i files.Input) bool { return i.Path == files.Stdin })
}

// namespaceFlag returns the root's -n value when it was given: the
// namespace of objects that set none.
func namespaceFlag(cmd *cobra.Command) (string, error) {
	fl := cmd.Flag("namespace")
	if fl == nil || !fl.Changed {
		return "", nil
	}
	ns := fl.Value.String()
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", cmdutil.UsageErrorf(cmd, "invalid namespace %q: %s", ns, errs[0])
	}
	return ns, nil
}

// loaded is what a verb read: the objects, the input errors and the notes.
type loaded struct {
	set    *libmanifests.Set
	errs   []libmanifests.Finding
	notes  []libmanifests.Finding
	inputs []files.Input
}

// load reads and parses the inputs.
func (i *inputs) load(in []files.Input) *loaded {
	res := files.ReadInputs(in, i.in)
	set, loadErrs := libmanifests.Load(res.Files, libmanifests.Options{Namespace: i.namespace, Kustomizations: res.Kustomizations})
	return &loaded{set: set, errs: append(res.Errors, loadErrs...), notes: res.Notes, inputs: in}
}

// empty reports whether nothing was read: no object at all.
func (l *loaded) empty() bool {
	return len(l.set.Objects) == 0 && len(l.set.Generated) == 0
}

// badInput ends a command whose input could not be read or understood:
// status 2.
func badInput(format string, args ...any) error {
	return &cmdutil.ExitError{Code: cmdutil.ExitUsage, Err: fmt.Errorf(format, args...)}
}

// printFindings writes findings to w, one per line, with a prefix.
func printFindings(w io.Writer, prefix string, findings []libmanifests.Finding) {
	for _, f := range findings {
		fmt.Fprintln(w, prefix+f.String())
	}
}

// describeInputs names the inputs for messages.
func describeInputs(in []files.Input) string {
	if len(in) == 1 {
		if in[0].Path == files.Stdin {
			return "stdin"
		}
		return in[0].Path
	}
	return fmt.Sprintf("the %d inputs", len(in))
}

// editOptions are the flags and arguments of migrate and rename.
type editOptions struct {
	streams genericiooptions.IOStreams
	inputs
	write bool
	out   *cmdutil.Output
}

// EditReport is what migrate and rename print with -o json|yaml|jsonpath.
type EditReport struct {
	metav1.TypeMeta `json:",inline"`
	// Changes are the files to edit or create, with their unified diff.
	Changes []FileChange `json:"changes"`
	// Written is true when --write wrote them.
	Written bool                   `json:"written"`
	Notes   []libmanifests.Finding `json:"notes"`
	Refused []libmanifests.Finding `json:"refused"`
	Errors  []libmanifests.Finding `json:"errors"`
}

// FileChange is one file to write.
type FileChange struct {
	Path    string `json:"path"`
	Created bool   `json:"created"`
	Diff    string `json:"diff"`
}

// DeepCopyObject makes EditReport a runtime.Object, for cli-runtime's
// printers.
func (r *EditReport) DeepCopyObject() runtime.Object { return cmdutil.DeepCopyJSON(r) }

// report prints (or, with --write, applies) a Result: the diff on stdout,
// what changes, what is refused and the summary on stderr; input errors on
// stderr as file:line: problem. Nothing is written unless every input was
// read and no change is refused.
func (o *editOptions) report(l *loaded, res *libmanifests.Result) error {
	out, errOut := o.streams.Out, o.streams.ErrOut
	printFindings(errOut, "error: ", res.Errors)
	printFindings(errOut, "note: ", l.notes)
	switch {
	case l.empty() && len(res.Errors) > 0:
		return &cmdutil.ExitError{Code: cmdutil.ExitUsage} // nothing was read
	case l.empty():
		return badInput("no Kubernetes object in %s", describeInputs(l.inputs))
	}
	bad, refused := len(res.Errors) > 0, len(res.Refused) > 0
	write := o.write && !bad && !refused && len(res.Changes) > 0
	var written []string
	var writeErr error
	if write {
		// All or none: a change can span files.
		written, writeErr = files.WriteAll(res.Changes)
	}
	if o.out.Structured() {
		r := &EditReport{TypeMeta: cmdutil.TypeMeta("ManifestsEditReport"), Changes: []FileChange{}, Written: write && writeErr == nil,
			Notes: nonNil(res.Notes), Refused: nonNil(res.Refused), Errors: nonNil(res.Errors)}
		for _, c := range res.Changes {
			r.Changes = append(r.Changes, FileChange{Path: c.Path, Created: c.Created, Diff: libmanifests.Diff(c)})
		}
		if err := o.out.PrintObject(r, out); err != nil {
			return err
		}
	}
	edited, created := 0, 0
	for _, c := range res.Changes {
		if c.Created {
			created++
		} else {
			edited++
		}
		switch {
		case o.out.Name() && (!write || slices.Contains(written, c.Path)):
			fmt.Fprintln(out, c.Path)
		case o.out.Human() && !write:
			fmt.Fprint(out, libmanifests.Diff(c))
		}
	}
	if write && o.out.Human() {
		for _, c := range res.Changes {
			if !slices.Contains(written, c.Path) {
				continue
			}
			verb := "wrote"
			if c.Created {
				verb = "created"
			}
			fmt.Fprintf(out, "%s %s\n", verb, c.Path)
		}
	}
	if writeErr != nil {
		fmt.Fprintln(errOut, "error: "+writeErr.Error())
	}
	section(errOut, "Changes:", res.Notes)
	section(errOut, "Refused:", res.Refused)
	switch {
	case res.NothingToDo():
		fmt.Fprintln(errOut, "nothing to do")
	case len(res.Changes) == 0:
		fmt.Fprintln(errOut, "No file to change.")
	case write && writeErr == nil:
		fmt.Fprintf(errOut, "%d %s edited, %d created.\n", edited, plural(edited, "file"), created)
	case o.write && (bad || refused):
		fmt.Fprintf(errOut, "%d %s would be edited, %d created; nothing was written: %s.\n", edited, plural(edited, "file"), created, whyNot(bad, refused))
	case !o.write:
		fmt.Fprintf(errOut, "%d %s would be edited, %d created; run again with --write to apply.\n", edited, plural(edited, "file"), created)
	}
	switch {
	case bad:
		return &cmdutil.ExitError{Code: cmdutil.ExitUsage}
	case refused || writeErr != nil:
		return cmdutil.ErrProblemsFound
	}
	return nil
}

func whyNot(bad, refused bool) string {
	if bad {
		return "some input could not be read or understood (see above); fix it or leave it out"
	}
	return "some changes were refused (see above); fix them, or leave their files out"
}

func nonNil(f []libmanifests.Finding) []libmanifests.Finding {
	if f == nil {
		return []libmanifests.Finding{}
	}
	return f
}

func section(w io.Writer, title string, findings []libmanifests.Finding) {
	if len(findings) == 0 {
		return
	}
	fmt.Fprintln(w, title)
	for _, f := range findings {
		fmt.Fprintln(w, "  "+f.String())
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func (o *editOptions) complete(cmd *cobra.Command, args []string) ([]files.Input, error) {
	in, err := o.list(cmd, args)
	if err != nil {
		return nil, err
	}
	if o.write && hasStdin(in) {
		return nil, cmdutil.UsageErrorf(cmd, `--write cannot write back to stdin ("-"): write the input to a file first`)
	}
	if err := o.out.Validate(cmd); err != nil {
		return nil, err
	}
	o.in = o.streams.In
	return in, nil
}

func newMigrateCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &editOptions{streams: streams, out: cmdutil.NewOutput(false)}
	cmd := &cobra.Command{
		Use:   "migrate [PATH... | -f PATH...] [--write]",
		Short: "Move inline imagePullSecrets from Pod templates onto their ServiceAccounts",
		Long: `For every workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, CronJob, PodTemplate) with inline imagePullSecrets,
remove them from the Pod template and add them to the ServiceAccount it runs
as (serviceAccountName, else the deprecated serviceAccount, else "default"),
in the same namespace: in that ServiceAccount's manifest when it is among the
files, else in a new file next to the workload. In a kustomization, the new
file is added to the resources of the kustomization that lists the workload,
comments kept, so that kustomize builds it.

The API server copies a ServiceAccount's list only into Pods that have none,
so the move keeps every Pod's pull secrets, or only adds to them when
workloads on one ServiceAccount had different lists (the summary says what
is merged). A ServiceAccount with kubernetes.io/enforce-mountable-secrets,
or defined twice, and workloads of a kustomization whose patches touch
imagePullSecrets or serviceAccountName, are refused with the reason.

` + inputHelp + `

` + limitsHelp + `

` + exitHelp,
		Example: `  kubectl pullsecrets manifests migrate deploy/
  kubectl pullsecrets manifests migrate deploy/ --write
  kubectl pullsecrets manifests migrate -f overlays/prod -R --write
  helm template shop ./chart | kubectl pullsecrets manifests migrate -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := o.complete(cmd, args)
			if err != nil {
				return err
			}
			l := o.load(in)
			return o.report(l, libmanifests.Migrate(l.set, l.errs, libmanifests.MigrateOptions{Exists: files.Exists}))
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.write, "write", false, "apply the changes instead of printing a diff")
	o.out.AddFlags(cmd)
	return cmd
}

func newRenameCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &editOptions{streams: streams, out: cmdutil.NewOutput(false)}
	cmd := &cobra.Command{
		Use:   "rename OLD NEW [PATH... | -f PATH...] [--write]",
		Short: "Rename a pull secret in Pod templates, ServiceAccounts and its Secret manifest",
		Long: `Rename the pull secret OLD to NEW everywhere in the files: Pod templates'
imagePullSecrets, ServiceAccounts' imagePullSecrets and secrets, and the
Secret manifest itself. A list that already names NEW drops OLD instead.

A namespace is refused, with the reason, when it defines both Secrets, when
OLD is not a pull secret type, when a workload also mounts OLD or reads it
into env (those would break), or when a kustomization's secretGenerator
makes it.

` + inputHelp + `

` + limitsHelp + `

` + exitHelp,
		Example: `  kubectl pullsecrets manifests rename regcred registry-creds deploy/ --write`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return cmdutil.UsageErrorf(cmd, "rename needs OLD, NEW and at least one PATH or -f")
			}
			oldName, newName := args[0], args[1]
			for _, n := range []string{oldName, newName} {
				if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
					return cmdutil.UsageErrorf(cmd, "invalid Secret name %q: %s", n, errs[0])
				}
			}
			if oldName == newName {
				return cmdutil.UsageErrorf(cmd, "OLD and NEW are the same name")
			}
			in, err := o.complete(cmd, args[2:])
			if err != nil {
				return err
			}
			l := o.load(in)
			return o.report(l, libmanifests.Rename(l.set, l.errs, oldName, newName))
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.write, "write", false, "apply the changes instead of printing a diff")
	o.out.AddFlags(cmd)
	return cmd
}
