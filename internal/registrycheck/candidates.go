package registrycheck

import (
	"fmt"
	"strings"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// Candidates returns the credentials to check an image with, given what
// the kubelet would try for it (credentials.Keyring.Lookup's
// Match.Credentials), in the same order. Each is labelled
// "NAME (KEY, user USERNAME)": the pull secret's name, its registry key as
// written and the username, never the password. No credentials means an
// anonymous pull, as for the kubelet.
//
// Every command that checks the kubelet's credentials builds them here, so
// that they are checked in the kubelet's order and named alike.
func Candidates(creds []credentials.Credential) []Credential {
	out := make([]Credential, 0, len(creds))
	for _, c := range creds {
		name := c.Secret
		if _, n, ok := strings.Cut(c.Secret, "/"); ok {
			name = n
		}
		out = append(out, Credential{
			Label:    fmt.Sprintf("%s (%s, user %s)", name, c.Registry, c.Username),
			Username: c.Username,
			Password: c.Password,
		})
	}
	return out
}
