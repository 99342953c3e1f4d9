package manifests

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	libmanifests "github.com/pullsecrets/pullsecrets/internal/manifests"
)

// scanOptions are the flags of scan.
type scanOptions struct {
	streams genericiooptions.IOStreams
	inputs
	out *cmdutil.Output
}

// ScanReport is what scan prints with -o json|yaml|jsonpath.
type ScanReport struct {
	metav1.TypeMeta `json:",inline"`
	*libmanifests.ScanReport
	// Notes say what was left out on purpose (remote kustomize resources)
	// or is not applied (kustomize's images:).
	Notes []libmanifests.Finding `json:"notes"`
}

// DeepCopyObject makes ScanReport a runtime.Object, for cli-runtime's
// printers.
func (r *ScanReport) DeepCopyObject() runtime.Object { return cmdutil.DeepCopyJSON(r) }

func newScanCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &scanOptions{streams: streams, out: cmdutil.NewOutput(false, "text")}
	cmd := &cobra.Command{
		Use:   "scan [PATH... | -f PATH... | -] [-o wide|json|yaml|name|jsonpath=...]",
		Short: "List workloads, ServiceAccounts and pull Secrets in manifest files, and what is wrong with them",
		Long: `List every workload with the ServiceAccount its Pods run as, its inline
imagePullSecrets and its images by registry; every ServiceAccount with its
imagePullSecrets; and every pull Secret manifest, checked the kubelet's way
(stringData included, contents never printed; a kustomization's
secretGenerator counts as defining its Secret). Then the problems: pull
secrets or ServiceAccounts no manifest defines, Secrets the kubelet cannot
use, and images that no pull secret of their Pods matches.

Unmatched images are warnings (public images need no credentials). The
report goes to stdout, input errors and notes to stderr. "No problems
found." is said only when something was scanned. With -o name, the objects
with an error-level problem.

` + inputHelp + `

` + limitsHelp + `

Exit status: 0 when nothing is wrong (warnings allowed), 1 when an
error-level problem is found, 2 for bad input (a path or file that cannot be
read or understood, or no Kubernetes object at all) or a wrong command line.`,
		Example: `  kubectl pullsecrets manifests scan deploy/
  kubectl pullsecrets manifests scan config/default -o json
  helm template shop ./chart | kubectl pullsecrets manifests scan -
  kustomize build overlays/prod | kubectl pullsecrets manifests scan -f -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := o.list(cmd, args)
			if err != nil {
				return err
			}
			if err := o.out.Validate(cmd); err != nil {
				return err
			}
			o.in = o.streams.In
			return o.run(o.load(in))
		},
	}
	o.addFlags(cmd)
	o.out.AddFlags(cmd)
	return cmd
}

func (o *scanOptions) run(l *loaded) error {
	r := libmanifests.Scan(l.set, l.errs)
	printFindings(o.streams.ErrOut, "error: ", r.Errors)
	printFindings(o.streams.ErrOut, "note: ", l.notes)
	switch {
	case l.empty() && len(r.Errors) > 0:
		return &cmdutil.ExitError{Code: cmdutil.ExitUsage} // nothing was read: no report
	case l.empty():
		return badInput("no Kubernetes object in %s: nothing to scan", describeInputs(l.inputs))
	}
	var err error
	switch {
	case o.out.Structured():
		err = o.out.PrintObject(&ScanReport{TypeMeta: cmdutil.TypeMeta("ScanReport"), ScanReport: r, Notes: nonNil(l.notes)}, o.streams.Out)
	case o.out.Name():
		err = cmdutil.PrintNames(problemObjects(r), o.streams.Out)
	default:
		writeScanText(o.streams.Out, r)
		fmt.Fprintln(o.streams.ErrOut, scanSummary(r))
	}
	if err != nil {
		return err
	}
	switch {
	case len(r.Errors) > 0:
		return &cmdutil.ExitError{Code: cmdutil.ExitUsage}
	case r.HasErrors():
		return cmdutil.ErrProblemsFound
	}
	return nil
}

// scanSummary is the line that ends the text report, on stderr.
func scanSummary(r *libmanifests.ScanReport) string {
	errs, warnings := 0, 0
	for _, f := range r.Findings {
		if f.Severity == libmanifests.SeverityError {
			errs++
		} else {
			warnings++
		}
	}
	s := fmt.Sprintf("%d %s, %d %s, %d pull %s: %d %s, %d %s",
		len(r.Workloads), plural(len(r.Workloads), "workload"), len(r.ServiceAccounts), plural(len(r.ServiceAccounts), "ServiceAccount"),
		len(r.Secrets), plural(len(r.Secrets), "Secret"), errs, plural(errs, "error"), warnings, plural(warnings, "warning"))
	if len(r.Errors) > 0 {
		s += fmt.Sprintf("; %d %s could not be read or understood", len(r.Errors), plural(len(r.Errors), "input"))
	}
	return s + "."
}

// kindGroups are the API groups of the kinds scan reports, for -o name.
var kindGroups = map[string]string{
	"Deployment": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "ReplicaSet": "apps",
	"Job": "batch", "CronJob": "batch",
}

// problemObjects are the objects with an error-level finding, once each,
// for -o name.
func problemObjects(r *libmanifests.ScanReport) []cmdutil.Ref {
	var out []cmdutil.Ref
	seen := map[string]bool{}
	for _, f := range r.Findings {
		if f.Severity != libmanifests.SeverityError || f.Object == "" || seen[f.Object] {
			continue
		}
		seen[f.Object] = true
		kind, ref, _ := strings.Cut(f.Object, " ")
		ns, name, _ := strings.Cut(ref, "/")
		out = append(out, cmdutil.Ref{Group: kindGroups[kind], Kind: kind, Namespace: ns, Name: name})
	}
	return out
}

func writeScanText(w io.Writer, r *libmanifests.ScanReport) {
	fmt.Fprintf(w, "Workloads (%d):\n", len(r.Workloads))
	for _, wl := range r.Workloads {
		sa := wl.ServiceAccount
		if wl.ServiceAccountField == "" {
			sa += " (no serviceAccountName)"
		}
		fmt.Fprintf(w, "  %s/%s %s  %s:%d\n", wl.Namespace, wl.Name, wl.Kind, wl.File, wl.Line)
		fmt.Fprintf(w, "    serviceAccount: %s\n", sa)
		fmt.Fprintf(w, "    imagePullSecrets: %s", names(wl.ImagePullSecrets))
		switch wl.PullSecretsFrom {
		case "serviceAccount":
			fmt.Fprintf(w, " (its Pods get %s from the ServiceAccount)", names(wl.EffectivePullSecrets))
		case "unknown":
			fmt.Fprint(w, " (its Pods get the ServiceAccount's, which is not among the files)")
		}
		fmt.Fprintln(w)
		for _, reg := range wl.Registries {
			fmt.Fprintf(w, "    %s: %s\n", reg.Registry, strings.Join(reg.Images, ", "))
		}
	}
	fmt.Fprintf(w, "ServiceAccounts (%d):\n", len(r.ServiceAccounts))
	for _, sa := range r.ServiceAccounts {
		extra := ""
		if sa.EnforceMountableSecrets != "" {
			extra = "  enforce-mountable-secrets: " + sa.EnforceMountableSecrets
		}
		fmt.Fprintf(w, "  %s/%s  %s:%d\n    imagePullSecrets: %s%s\n", sa.Namespace, sa.Name, sa.File, sa.Line, names(sa.ImagePullSecrets), extra)
	}
	fmt.Fprintf(w, "Pull Secrets (%d):\n", len(r.Secrets))
	for _, s := range r.Secrets {
		state := "ok"
		switch {
		case !s.Checked:
			state = "contents not in the files (" + s.Kind + ")"
		case !s.Valid:
			state = "has errors, see below"
		}
		typ := s.Type
		if typ == "" {
			typ = s.Kind
		}
		fmt.Fprintf(w, "  %s/%s %s  %s:%d  %s\n", s.Namespace, s.Name, typ, s.File, s.Line, state)
	}
	if len(r.Findings) == 0 {
		if len(r.Errors) == 0 {
			fmt.Fprintln(w, "No problems found.")
		}
		return
	}
	fmt.Fprintf(w, "Problems (%d):\n", len(r.Findings))
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  %s: %s %s: %s\n", position(f.Finding), f.Severity, f.Code, strings.TrimPrefix(f.String(), position(f.Finding)+": "))
	}
}

func position(f libmanifests.Finding) string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return f.File
}

func names(n []string) string {
	if len(n) == 0 {
		return "none"
	}
	return "[" + strings.Join(n, ", ") + "]"
}
