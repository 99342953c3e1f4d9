// Package manifests is `kubectl pullsecrets manifests`: scan, migrate and
// rename work on manifest files and folders, never on a cluster.
package manifests

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	libmanifests "github.com/pullsecrets/pullsecrets/internal/manifests"
	"github.com/pullsecrets/pullsecrets/internal/manifests/files"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
)

// NewCommand returns the `manifests` command group.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifests",
		Short: "Scan manifest files, move inline imagePullSecrets onto ServiceAccounts, rename a pull secret",
		Long: `Work on Kubernetes manifest files and folders (YAML or JSON, several documents
per file, kind: List), never on a cluster.

Objects without metadata.namespace are taken to be in the namespace given
with -n, else "default", as kubectl apply would place them.

migrate and rename print a unified diff and a summary and change nothing;
with --write they apply it, all files or none, replacing each file
atomically. Edits touch only the lines they must: comments, key order,
quoting, indentation, document separators and line endings survive.

` + limitsHelp + `

Exit status: 0 when all is well (or there is nothing to do), 1 when
something was refused, a file could not be read, or scan found a problem,
2 for a wrong command line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newScanCommand(streams), newMigrateCommand(streams), newRenameCommand(streams))
	return cmd
}

// limitsHelp says the input limits, from the constants that set them.
var limitsHelp = fmt.Sprintf(`Limits: a file over %s is not read (it is reported, the others go on);
files that come to more than %s together are not read at all; a file whose
YAML aliases and merge keys (<<) expand it past %d times its nodes is left
out.`, readlimit.MiB(readlimit.MaxFileBytes), readlimit.MiB(readlimit.MaxTotalBytes), libmanifests.MaxAliasExpansion)

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

// load reads and parses the files under paths.
func load(paths []string, namespace string) (*libmanifests.Set, []libmanifests.Finding) {
	in, readErrs := files.Read(paths)
	set, loadErrs := libmanifests.Load(in, libmanifests.Options{Namespace: namespace})
	return set, append(readErrs, loadErrs...)
}

// editOptions are the flags and arguments of migrate and rename.
type editOptions struct {
	streams   genericiooptions.IOStreams
	write     bool
	paths     []string
	namespace string
}

// report prints (or, with --write, applies) a Result: diffs on stdout,
// then the summary; unreadable files on stderr as file:line: problem.
func (o *editOptions) report(res *libmanifests.Result) error {
	out, errOut := o.streams.Out, o.streams.ErrOut
	for _, e := range res.Errors {
		fmt.Fprintln(errOut, e.String())
	}
	if res.NothingToDo() {
		fmt.Fprintln(out, "nothing to do")
		return nil
	}
	failed := len(res.Errors) > 0 || len(res.Refused) > 0
	edited, created := 0, 0
	for _, c := range res.Changes {
		if c.Created {
			created++
		} else {
			edited++
		}
		if !o.write {
			fmt.Fprint(out, libmanifests.Diff(c))
		}
	}
	if o.write && len(res.Changes) > 0 {
		// All or none: a change can span files.
		written, err := files.WriteAll(res.Changes)
		if err != nil {
			fmt.Fprintln(errOut, err)
			failed = true
		}
		created, edited = 0, 0
		for _, c := range res.Changes {
			if !slices.Contains(written, c.Path) {
				continue
			}
			verb := "wrote"
			if c.Created {
				verb = "created"
				created++
			} else {
				edited++
			}
			fmt.Fprintf(out, "%s %s\n", verb, c.Path)
		}
	}
	section(out, "Changes:", res.Notes)
	section(out, "Refused:", res.Refused)
	switch {
	case len(res.Changes) == 0:
		fmt.Fprintln(out, "No file to change.")
	case o.write:
		fmt.Fprintf(out, "%d %s edited, %d created.\n", edited, plural(edited, "file"), created)
	default:
		fmt.Fprintf(out, "%d %s would be edited, %d created; run again with --write to apply.\n", edited, plural(edited, "file"), created)
	}
	if failed {
		return cmdutil.ErrProblemsFound
	}
	return nil
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

func newMigrateCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &editOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "migrate PATH... [--write]",
		Short: "Move inline imagePullSecrets from Pod templates onto their ServiceAccounts",
		Long: `For every workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, CronJob, PodTemplate) with inline imagePullSecrets,
remove them from the Pod template and add them to the ServiceAccount it runs
as (serviceAccountName, else the deprecated serviceAccount, else "default"),
in the same namespace: in that ServiceAccount's manifest when it is among the
files, else in a new file next to the workload.

The API server copies a ServiceAccount's list only into Pods that have none,
so the move keeps every Pod's pull secrets, or only adds to them when
workloads on one ServiceAccount had different lists (the summary says what
is merged). A ServiceAccount with kubernetes.io/enforce-mountable-secrets,
or defined twice, is refused with the reason.

` + limitsHelp,
		Example: `  kubectl pullsecrets manifests migrate deploy/
  kubectl pullsecrets manifests migrate deploy/ --write`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.UsageErrorf(cmd, "migrate needs at least one PATH")
			}
			ns, err := namespaceFlag(cmd)
			if err != nil {
				return err
			}
			o.paths, o.namespace = args, ns
			set, errs := load(o.paths, o.namespace)
			return o.report(libmanifests.Migrate(set, errs, libmanifests.MigrateOptions{Exists: files.Exists}))
		},
	}
	cmd.Flags().BoolVar(&o.write, "write", false, "apply the changes instead of printing a diff")
	return cmd
}

func newRenameCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &editOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "rename OLD NEW PATH... [--write]",
		Short: "Rename a pull secret in Pod templates, ServiceAccounts and its Secret manifest",
		Long: `Rename the pull secret OLD to NEW everywhere in the files: Pod templates'
imagePullSecrets, ServiceAccounts' imagePullSecrets and secrets, and the
Secret manifest itself. A list that already names NEW drops OLD instead.

A namespace is refused, with the reason, when it defines both Secrets, when
OLD is not a pull secret type, or when a workload also mounts OLD or reads it
into env: those would break.

` + limitsHelp,
		Example: `  kubectl pullsecrets manifests rename regcred registry-creds deploy/ --write`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) < 3 {
				return cmdutil.UsageErrorf(cmd, "rename needs OLD, NEW and at least one PATH")
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
			ns, err := namespaceFlag(cmd)
			if err != nil {
				return err
			}
			o.paths, o.namespace = args[2:], ns
			set, errs := load(o.paths, o.namespace)
			return o.report(libmanifests.Rename(set, errs, oldName, newName))
		},
	}
	cmd.Flags().BoolVar(&o.write, "write", false, "apply the changes instead of printing a diff")
	return cmd
}
