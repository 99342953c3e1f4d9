package manifests

import (
	"strings"
	"testing"
)

func TestDiffHeadersFollowGit(t *testing.T) {
	for _, tt := range []struct {
		path, created, want string
	}{
		{path: "deploy/web.yaml", want: "--- a/deploy/web.yaml\n+++ b/deploy/web.yaml\n"},
		{path: "/srv/deploy/web.yaml", want: "--- a/srv/deploy/web.yaml\n+++ b/srv/deploy/web.yaml\n"},
		{path: "/srv/deploy/sa.yaml", created: "yes", want: "--- /dev/null\n+++ b/srv/deploy/sa.yaml\n"},
	} {
		c := Change{Path: tt.path, Before: []byte("a: 1\n"), After: []byte("a: 2\n"), Created: tt.created != ""}
		if c.Created {
			c.Before = nil
		}
		if got := Diff(c); !strings.HasPrefix(got, tt.want) {
			t.Errorf("Diff(%s) starts\n%s\nwant\n%s", tt.path, got, tt.want)
		}
	}
}
