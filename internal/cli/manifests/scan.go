package manifests

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	libmanifests "github.com/pullsecrets/pullsecrets/internal/manifests"
)

// scanOptions are the flags of scan.
type scanOptions struct {
	streams genericiooptions.IOStreams
	output  string
}

func newScanCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &scanOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "scan PATH... [-o text|json]",
		Short: "List workloads, ServiceAccounts and pull Secrets in manifest files, and what is wrong with them",
		Long: `List every workload with the ServiceAccount its Pods run as, its inline
imagePullSecrets and its images by registry; every ServiceAccount with its
imagePullSecrets; and every pull Secret manifest, checked the kubelet's way
(stringData included, contents never printed). Then the problems: pull
secrets or ServiceAccounts no manifest defines, Secrets the kubelet cannot
use, and images that no pull secret of their Pods matches.

Exit status 1 when a file cannot be read or an error-level problem is found;
unmatched images are warnings (public images need no credentials).

` + limitsHelp,
		Example: `  kubectl pullsecrets manifests scan deploy/
  kubectl pullsecrets manifests scan deploy/ -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.UsageErrorf(cmd, "scan needs at least one PATH")
			}
			if o.output != "text" && o.output != "json" {
				return cmdutil.UsageErrorf(cmd, "unknown output format %q: use text or json", o.output)
			}
			ns, err := namespaceFlag(cmd)
			if err != nil {
				return err
			}
			set, errs := load(args, ns)
			return o.run(libmanifests.Scan(set, errs))
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func (o *scanOptions) run(r *libmanifests.ScanReport) error {
	if o.output == "json" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("encode scan report: %w", err)
		}
		fmt.Fprintln(o.streams.Out, string(b))
	} else {
		writeScanText(o.streams.Out, r)
		for _, e := range r.Errors {
			fmt.Fprintln(o.streams.ErrOut, e.String())
		}
	}
	if r.HasErrors() {
		return cmdutil.ErrProblemsFound
	}
	return nil
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
		fmt.Fprintln(w, "No problems found.")
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
