package diagnose

import (
	"strings"
)

// PullError is what the registry (or the network) answered, as far as the
// kubelet's error text tells.
type PullError string

// Pull errors read from containerd's messages (the ones package kubeletsim
// writes, and real nodes show).
const (
	// PullUnknown: the text says nothing this package recognises.
	PullUnknown PullError = ""
	// PullUnauthorized: 401 Unauthorized: credentials rejected, or none
	// sent where the registry wants some.
	PullUnauthorized PullError = "unauthorized"
	// PullForbidden: 403 Forbidden: the credentials are valid but may not
	// read the repository.
	PullForbidden PullError = "forbidden"
	// PullTokenExpired: the registry said the token has expired (ECR's
	// "Your authorization token has expired", behind a 403). containerd
	// never shows it (it resolves with HEAD, whose answer has no body);
	// runtimes that print the registry's errors (CRI-O, cri-dockerd) do.
	PullTokenExpired PullError = "token-expired"
	// PullAccessDenied: Docker Hub's "pull access denied, repository does
	// not exist or may require authorization".
	PullAccessDenied PullError = "access-denied"
	// PullNotFound: the repository or tag does not exist.
	PullNotFound PullError = "not-found"
	// PullUnreachable: DNS failure, connection refused, timeout.
	PullUnreachable PullError = "unreachable"
	// PullTLS: the registry's certificate was not trusted.
	PullTLS PullError = "tls-error"
	// PullKeyring: the kubelet could not decode a pull secret and pulled
	// nothing (the waiting reason is the decode error).
	PullKeyring PullError = "keyring"
)

// Classify reads a kubelet or containerd pull error text. The order
// matters: "pull access denied" texts also say "authorization failed", ECR's
// expired token comes as "denied: ...", and HEAD errors name the URL before
// the status.
func Classify(text string) PullError {
	t := strings.ToLower(text)
	switch {
	case t == "":
		return PullUnknown
	case strings.Contains(t, "authorization token has expired"):
		return PullTokenExpired
	case strings.Contains(t, "pull access denied"):
		return PullAccessDenied
	case strings.Contains(t, "401 unauthorized"), strings.Contains(t, "unauthorized: authentication required"),
		strings.Contains(t, "unauthorized: incorrect username or password"):
		return PullUnauthorized
	case strings.Contains(t, "403 forbidden"), strings.Contains(t, "denied: "):
		return PullForbidden
	case strings.Contains(t, "x509:"), strings.Contains(t, "tls: "), strings.Contains(t, "certificate signed by unknown authority"):
		return PullTLS
	case strings.Contains(t, "no such host"), strings.Contains(t, "connection refused"), strings.Contains(t, "i/o timeout"),
		strings.Contains(t, "network is unreachable"), strings.Contains(t, "dial tcp"), strings.Contains(t, "context deadline exceeded"):
		return PullUnreachable
	case strings.Contains(t, "code = notfound"), strings.HasSuffix(t, ": not found"), strings.Contains(t, "manifest unknown"),
		strings.Contains(t, "name unknown"):
		return PullNotFound
	case isKeyringError(t):
		return PullKeyring
	}
	return PullUnknown
}

// keyringErrors are the texts the kubelet's pull secret decoding fails with
// (pkg/credentialprovider/config.go, encoding/json, encoding/base64).
var keyringErrors = []string{
	"unable to parse auth field",
	"illegal base64 data",
	"invalid character",
	"cannot unmarshal",
	"unexpected end of json input",
}

func isKeyringError(t string) bool {
	for _, k := range keyringErrors {
		if strings.Contains(t, k) {
			return true
		}
	}
	return false
}

// refused reports whether the registry refused the credentials the kubelet
// sent, or would not say (pull access denied): what an expired token gets.
func (e PullError) refused() bool {
	switch e {
	case PullUnauthorized, PullForbidden, PullAccessDenied, PullTokenExpired:
		return true
	}
	return false
}
