package credentials

import (
	"strings"
	"testing"
)

func TestMatchImage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		pattern, image string
		want           bool
	}{
		// The examples of the kubelet's CredentialProvider.matchImages doc.
		{"123456789.dkr.ecr.us-east-1.amazonaws.com", "123456789.dkr.ecr.us-east-1.amazonaws.com", true},
		{"123456789.dkr.ecr.us-east-1.amazonaws.com", "123456789.dkr.ecr.us-east-1.amazonaws.com/team/app", true},
		{"*.dkr.ecr.*.amazonaws.com", "123456789.dkr.ecr.us-east-1.amazonaws.com/team/app", true},
		{"*.azurecr.io", "myregistry.azurecr.io/app", true},
		{"*.azurecr.io", "a.b.azurecr.io/app", false},
		{"*.azurecr.io", "azurecr.io/app", false},
		{"gcr.io", "gcr.io/project/app", true},
		{"gcr.io", "us.gcr.io/project/app", false},
		{"*.*.registry.io", "a.b.registry.io/x", true},
		{"registry.io:8080/path", "registry.io:8080/path/app", true},
		{"registry.io:8080/path", "registry.io/path/app", false},
		{"registry.io:8080/path", "registry.io:8080/other/app", false},
		// The path is a plain string prefix, as upstream.
		{"registry.io/team", "registry.io/team-b/app", true},
		{"app*.k8s.io", "appfoo.k8s.io/x", true},
		{"%invalid%", "anything", false},
		{"registry.io", "%bad%", false},
	} {
		if got := MatchImage(tt.pattern, tt.image); got != tt.want {
			t.Errorf("MatchImage(%q, %q) = %v, want %v", tt.pattern, tt.image, got, tt.want)
		}
	}
}

func TestProviderImage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want, err string }{
		{in: "123456789012.dkr.ecr.us-west-2.amazonaws.com", want: "123456789012.dkr.ecr.us-west-2.amazonaws.com"},
		{in: "registry:5000", want: "registry:5000"},
		{in: "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app:1.0", want: "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app"},
		{in: "library/nginx:1", want: "docker.io/library/nginx"},
		{in: "Bad/Upper", err: "must be lowercase"},
		{in: "%zz", err: "invalid URL escape"},
	} {
		got, err := ProviderImage(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ProviderImage(%q) error = %v, want one containing %q", tt.in, err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("ProviderImage(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
