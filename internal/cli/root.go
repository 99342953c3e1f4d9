// Package cli builds the kubectl-pullsecrets command tree: the standard
// kubectl flags on the root, one package per subcommand below it.
package cli

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/attach"
	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/cli/create"
	"github.com/pullsecrets/pullsecrets/internal/cli/doctor"
	"github.com/pullsecrets/pullsecrets/internal/cli/manifests"
	"github.com/pullsecrets/pullsecrets/internal/cli/match"
	"github.com/pullsecrets/pullsecrets/internal/cli/rename"
	"github.com/pullsecrets/pullsecrets/internal/cli/restart"
	"github.com/pullsecrets/pullsecrets/internal/cli/status"
	"github.com/pullsecrets/pullsecrets/internal/cli/version"
)

// NewCommand returns the root command, wired to the given streams.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	return NewCommandWithConfig(streams, genericclioptions.NewConfigFlags(true))
}

// NewCommandWithConfig is NewCommand over the given kubectl flags: tests
// set their WrapConfigFn to record requests.
func NewCommandWithConfig(streams genericiooptions.IOStreams, configFlags *genericclioptions.ConfigFlags) *cobra.Command {
	configFlags = configFlags.WithWarningPrinter(streams)
	f := cmdutil.NewFactory(configFlags)

	cmd := &cobra.Command{
		Use:   "kubectl-pullsecrets",
		Short: "Keep image pull secrets on ServiceAccounts, and explain ImagePullBackOff",
		Long: `kubectl pullsecrets manages registry credentials the way Kubernetes means them
to be used: as docker-registry Secrets attached to ServiceAccounts, which the
API server copies into every new Pod. It creates and attaches them, renames
them, reports their state, explains why Pods fail to pull, and works on plain
manifest files for teams that deploy YAML.`,
		Annotations: map[string]string{
			// Shown in help and usage lines, as kubectl shows plugins.
			cobra.CommandDisplayNameAnnotation: "kubectl pullsecrets",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable, so that cobra validates its arguments (an unknown verb)
		// instead of printing help and exiting 0.
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	configFlags.AddFlags(cmd.PersistentFlags())
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return cmdutil.UsageErrorf(c, "%v", err)
	})

	for _, sub := range subcommands(f, streams) {
		cmd.AddCommand(sub)
	}
	// The root takes no arguments of its own: anything left is a mistyped
	// verb, a usage error like every other.
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return cmdutil.UsageErrorf(c, "unknown command %q", args[0])
		}
		return nil
	}
	usageErrorsForArgs(cmd)
	return cmd
}

// usageErrorsForArgs makes every positional-argument check in the tree
// report a usage error (exit status 2) rather than a failure.
func usageErrorsForArgs(cmd *cobra.Command) {
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil {
				var exit *cmdutil.ExitError
				if errors.As(err, &exit) {
					return err
				}
				return cmdutil.UsageErrorf(c, "%v", err)
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		usageErrorsForArgs(sub)
	}
}

// subcommands lists every verb; keep it sorted.
func subcommands(f cmdutil.Factory, streams genericiooptions.IOStreams) []*cobra.Command {
	return []*cobra.Command{
		// one constructor per line: pkg.NewCommand(f, streams),
		attach.NewCommand(f, streams),
		create.NewCommand(f, streams),
		attach.NewDetachCommand(f, streams),
		doctor.NewCommand(f, streams),
		manifests.NewCommand(f, streams),
		match.NewCommand(f, streams),
		rename.NewCommand(f, streams),
		restart.NewCommand(f, streams),
		status.NewCommand(f, streams),
		version.NewCommand(f, streams),
	}
}

// Run runs the command line and returns the exit status.
func Run(args []string, streams genericiooptions.IOStreams) int {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	err := cmd.Execute()
	cmdutil.PrintError(streams.ErrOut, err)
	return cmdutil.ExitCode(err)
}
