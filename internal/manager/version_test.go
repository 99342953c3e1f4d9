package manager_test

import (
	"bytes"
	"testing"

	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/version"
)

// --version prints the build and exits before validating other flags or
// reading a kubeconfig.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	cmd := manager.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version", "--workers=0", "--kubeconfig=/nonexistent"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := "pullsecrets-controller " + version.Get().String() + "\n"; out.String() != want {
		t.Errorf("--version printed %q, want %q", out.String(), want)
	}
}
