package cmdutil

import (
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DryRun is the --dry-run strategy, as kubectl spells it.
type DryRun string

const (
	// DryRunNone writes for real.
	DryRunNone DryRun = "none"
	// DryRunClient writes nothing and only says what it would do.
	DryRunClient DryRun = "client"
	// DryRunServer sends every write with dryRun=All: the API server
	// validates and admits it, and stores nothing.
	DryRunServer DryRun = "server"
)

// AddDryRunFlag adds --dry-run=none|client|server to cmd, bound to target.
// A bare --dry-run means client, as in kubectl.
func AddDryRunFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVar(target, "dry-run", string(DryRunNone),
		`"none", "client" or "server": with client nothing is sent, with server every write is sent with dryRun=All and nothing is stored`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = string(DryRunClient)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions(
		[]cobra.Completion{string(DryRunNone), string(DryRunClient), string(DryRunServer)}, cobra.ShellCompDirectiveNoFileComp))
}

// ParseDryRun checks a --dry-run value; a wrong one is a usage error.
func ParseDryRun(cmd *cobra.Command, value string) (DryRun, error) {
	switch d := DryRun(value); d {
	case DryRunNone, DryRunClient, DryRunServer:
		return d, nil
	case "":
		return DryRunNone, nil
	}
	return "", UsageErrorf(cmd, "invalid --dry-run %q: use none, client or server", value)
}

// ServerDryRun returns the dryRun option of every write: [All] for server,
// nil otherwise (client dry runs make no write at all).
func (d DryRun) ServerDryRun() []string {
	if d == DryRunServer {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// Writes reports whether the command sends writes (for real or as a server
// dry run).
func (d DryRun) Writes() bool { return d != DryRunClient }

// Suffix is what kubectl appends to each line of a dry run: "" for none,
// " (dry run)" or " (server dry run)".
func (d DryRun) Suffix() string {
	switch d {
	case DryRunClient:
		return " (dry run)"
	case DryRunServer:
		return " (server dry run)"
	}
	return ""
}

// Printf writes one result line with the dry-run suffix, as kubectl does:
// `serviceaccount/default attached (dry run)`.
func (d DryRun) Printf(w interface{ Write([]byte) (int, error) }, format string, args ...any) {
	fmt.Fprintf(w, format+d.Suffix()+"\n", args...)
}
