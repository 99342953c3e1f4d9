package cli_test

import (
	"strings"
	"testing"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
)

func TestUsageErrorsExitWithStatus2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"no-such-verb"},
		{"--no-such-flag"},
	} {
		res := clitest.Run(t, "", "", args...)
		if res.Code != cmdutil.ExitUsage {
			t.Errorf("%v: exit status %d, want %d (stderr %q)", args, res.Code, cmdutil.ExitUsage, res.Stderr)
		}
		if !strings.HasPrefix(res.Stderr, "error: ") || !strings.Contains(res.Stderr, "--help") {
			t.Errorf("%v: stderr %q should be one error line and a pointer to --help", args, res.Stderr)
		}
	}
}

func TestHelpExitsWithStatus0(t *testing.T) {
	t.Parallel()
	res := clitest.Run(t, "", "", "--help")
	if res.Code != cmdutil.ExitOK {
		t.Fatalf("exit status %d, stderr %q", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "kubectl pullsecrets") {
		t.Errorf("help should present the plugin as `kubectl pullsecrets`:\n%s", res.Stdout)
	}
}
