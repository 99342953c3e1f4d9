package credentials

import "fmt"

// Severity says whether a Finding stops a pull secret from working.
type Severity string

const (
	// SeverityError means the kubelet gets no credentials from the Secret,
	// or fails every image pull of the Pod because of it.
	SeverityError Severity = "error"
	// SeverityWarning means the Secret works, but not entirely as its
	// author probably meant.
	SeverityWarning Severity = "warning"
)

// Finding codes: stable identifiers that scripts and the controller may
// depend on. docs/credentials.md explains each one with examples.
const (
	// CodeWrongType (error) means the Secret's type is neither
	// kubernetes.io/dockerconfigjson nor kubernetes.io/dockercfg: the
	// kubelet skips it silently and pulls as if it were not listed.
	CodeWrongType = "WrongType"
	// CodeMissingKey (error) means the type is right but its data key
	// (.dockerconfigjson or .dockercfg) is absent or empty: the kubelet
	// skips the Secret silently.
	CodeMissingKey = "MissingKey"
	// CodeNotJSON (error) means the data is not valid JSON: the kubelet's
	// decode fails, and with it every image pull of the Pod, even from
	// registries other pull secrets cover.
	CodeNotJSON = "NotJSON"
	// CodeBadStructure (error) means valid JSON of the wrong shape (the
	// document, "auths", an entry or HttpHeaders not an object, a field
	// not a string): the kubelet's decode fails, and every image pull of
	// the Pod with it.
	CodeBadStructure = "BadStructure"
	// CodeWrapperMismatch (error) means a legacy {KEY: ENTRY} map under
	// .dockerconfigjson, or a config.json {"auths": ...} under .dockercfg:
	// the kubelet decodes it without error and silently gets no usable
	// credentials.
	CodeWrapperMismatch = "WrapperMismatch"
	// CodeBadBase64 (error) means an auth field is not valid base64 in the
	// mode the kubelet picks (padded when it ends in '=', else unpadded):
	// the kubelet fails every image pull of the Pod.
	CodeBadBase64 = "BadBase64"
	// CodeAuthNoColon (error) means an auth field decodes to text without
	// ':', so not username:password: the kubelet fails every image pull of
	// the Pod.
	CodeAuthNoColon = "AuthNoColon"
	// CodeNoUsableEntry (error) means the Secret decodes, but no entry has
	// credentials under a key that can match an image: the kubelet gets
	// nothing it can use from it.
	CodeNoUsableEntry = "NoUsableEntry"
	// CodeAuthMismatch (warning) means an entry's auth and its username or
	// password fields disagree: the kubelet uses auth and ignores the
	// fields.
	CodeAuthMismatch = "AuthMismatch"
	// CodeEmptyEntry (warning) means an entry has no username, password or
	// auth: the kubelet still tries it for matching images, with empty
	// credentials, which is an anonymous pull.
	CodeEmptyEntry = "EmptyEntry"
	// CodeIgnoredToken (warning) means an entry sets identitytoken or
	// registrytoken: the kubelet does not read them and sends only the
	// username and password.
	CodeIgnoredToken = "IgnoredToken"
	// CodeDuplicateKey (warning) means several keys of one Secret normalise
	// to the same registry: the kubelet tries them all, in Go map order,
	// which changes from one pull to the next.
	CodeDuplicateKey = "DuplicateKey"
	// CodeUnmatchableKey (warning) means a key the kubelet ignores (it does
	// not parse as a URL), that never matches an image (no host, IPv6
	// without a port, a bad glob, a path or port on index.docker.io, an
	// upper-case path), or that matches only unusual spellings of the
	// images it is meant for (registry-1.docker.io).
	CodeUnmatchableKey = "UnmatchableKey"
	// CodeHelperOnly (warning) is reported by BuildFromDockerConfig only: a
	// registry's credentials are kept by a credential helper (credsStore,
	// credHelpers), which the kubelet cannot run, so they are left out.
	CodeHelperOnly = "HelperOnly"
	// CodeMissingSecret (warning) means a pull secret the Pod lists does
	// not exist: the kubelet skips it, pulls with the others, and records a
	// FailedToRetrieveImagePullSecret event only when a pull then fails.
	CodeMissingSecret = "MissingSecret"
)

// Finding is one problem found in a pull secret. Its Message never holds
// secret bytes and never quotes the Secret's data.
type Finding struct {
	// Secret is the "NAMESPACE/NAME" of the pull secret; empty for
	// BuildFromDockerConfig.
	Secret   string   `json:"secret"`
	Severity Severity `json:"severity"`
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Registry is the registry key concerned, as written (user info
	// redacted); empty when the finding is about the whole Secret.
	Registry string `json:"registry,omitempty"`
	// Message explains the problem and what the kubelet does about it.
	Message string `json:"message"`
}

// MissingSecretFinding is the CodeMissingSecret finding for a pull secret
// that the Pod lists and the namespace does not hold, for callers that read
// Secrets from the API.
func MissingSecretFinding(namespace, name string) Finding {
	ref := Secret{Namespace: namespace, Name: name}.Ref()
	return Finding{
		Secret:   ref,
		Severity: SeverityWarning,
		Code:     CodeMissingSecret,
		Message:  fmt.Sprintf("Secret %s not found: the kubelet skips it and pulls with the other pull secrets (it records a FailedToRetrieveImagePullSecret event only when a pull fails)", ref),
	}
}

// HasError reports whether any finding is an error.
func HasError(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// failsKeyring reports whether a finding code means the kubelet fails the
// whole keyring of the Pod, not only this Secret.
func failsKeyring(code string) bool {
	switch code {
	case CodeNotJSON, CodeBadStructure, CodeBadBase64, CodeAuthNoColon:
		return true
	}
	return false
}
