package credentials

// Severity says whether a Finding stops a pull secret from working.
type Severity string

const (
	// SeverityError: the kubelet gets no credentials from the Secret, or
	// fails every image pull of the Pod because of it.
	SeverityError Severity = "error"
	// SeverityWarning: the Secret works, but not entirely as its author
	// probably meant.
	SeverityWarning Severity = "warning"
)

// Finding codes: stable identifiers that scripts and the controller may
// depend on. docs/credentials.md explains each one and what the kubelet
// does.
const (
	CodeWrongType       = "WrongType"
	CodeMissingKey      = "MissingKey"
	CodeNotJSON         = "NotJSON"
	CodeBadStructure    = "BadStructure"
	CodeWrapperMismatch = "WrapperMismatch"
	CodeBadBase64       = "BadBase64"
	CodeAuthNoColon     = "AuthNoColon"
	CodeNoUsableEntry   = "NoUsableEntry"
	CodeAuthMismatch    = "AuthMismatch"
	CodeEmptyEntry      = "EmptyEntry"
	CodeIgnoredToken    = "IgnoredToken"
	CodeDuplicateKey    = "DuplicateKey"
	CodeUnmatchableKey  = "UnmatchableKey"
	CodeHelperOnly      = "HelperOnly"
	CodeMissingSecret   = "MissingSecret"
)

// Finding is one problem found in a pull secret. Its Message never holds
// secret bytes and never quotes the Secret's data.
type Finding struct {
	Secret   string   `json:"secret"`
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	Registry string   `json:"registry,omitempty"`
	Message  string   `json:"message"`
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
