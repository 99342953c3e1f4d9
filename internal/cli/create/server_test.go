package create

import (
	"strings"
	"testing"
)

func TestCheckServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		server string
		want   string // "" for accepted, else part of the error
	}{
		{"registry.example.com", ""},
		{"https://index.docker.io/v1/", ""},
		{"registry.example.com:5000", ""},
		{"http://registry.example.com:5000/v2/", ""},
		{"registry.example.com/team", ""},
		{"*.azurecr.io", ""},
		{"localhost:5000", ""},
		{"localhost", ""},
		{"10.0.0.1", ""},
		{"[::1]:5000", ""},
		{"registry:5000", ""},
		{"123456789012.dkr.ecr.us-west-2.amazonaws.com", ""},
		{"registry.example.com:65535", ""},
		{"not a url", "cannot be parsed as a URL"},
		{"registry.example.com:99999", "port 99999 is not a port"},
		{"registry.example.com:0", "port 0 is not a port"},
		{"registry", "has no dot and no port"},
		{"myteam/app", "has no dot and no port"},
		{"index.docker.io/library", "never matches"},
		{"[::1]", "IPv6 address without a port"},
		{"", "empty"},
	} {
		err := CheckServer(tc.server)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: refused: %v", tc.server, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: got %v, want an error with %q", tc.server, err, tc.want)
		}
	}
}
