// Package clitest runs kubectl-pullsecrets command lines in-process, with
// their IO captured, for command tests against the local control plane.
package clitest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli"
)

// Result is what a command line printed and its exit status.
type Result struct {
	Stdout string
	Stderr string
	Code   int
}

// Run runs `kubectl pullsecrets <args>` with stdin as input. When kubeconfig
// is not empty it is passed as --kubeconfig.
func Run(t testing.TB, kubeconfig, stdin string, args ...string) Result {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: io.NopCloser(strings.NewReader(stdin)), Out: &out, ErrOut: &errOut}
	if kubeconfig != "" {
		args = append([]string{"--kubeconfig", kubeconfig}, args...)
	}
	code := cli.Run(args, streams)
	return Result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}
