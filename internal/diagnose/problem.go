package diagnose

import "time"

// Severity says whether a Problem breaks pulls.
type Severity string

const (
	// SeverityError is a cause of the failing pull, or a pull secret the
	// kubelet cannot use.
	SeverityError Severity = "error"
	// SeverityWarning is for what works now, but will not as meant (replacement Pods
	// refused, a credential that would not match anyway).
	SeverityWarning Severity = "warning"
)

// Problem codes: stable identifiers for scripts (-o json). docs/cli.md
// explains each.
const (
	// CodeSecretMissing: a pull secret the Pod or ServiceAccount lists does
	// not exist; the kubelet pulls without it.
	CodeSecretMissing = "SecretMissing"
	// CodeSecretWrongType: the Secret exists but the kubelet reads no
	// credentials from it (wrong type, missing key, wrong wrapper, no usable
	// entry).
	CodeSecretWrongType = "SecretWrongType"
	// CodeSecretUnparsable: the kubelet cannot decode the Secret, which
	// fails every pull of the Pod, even from other registries.
	CodeSecretUnparsable = "SecretUnparsable"
	// CodeNoCredential: no pull secret of the Pod has a key that matches
	// the image.
	CodeNoCredential = "NoCredential"
	// CodeCreatedBeforeAttach: the ServiceAccount got pull secrets after
	// the Pod was created; admission copied the older list (or none).
	CodeCreatedBeforeAttach = "CreatedBeforeAttach"
	// CodeListHidesServiceAccount: the Pod lists its own imagePullSecrets
	// (from its template), so admission did not copy the ServiceAccount's.
	CodeListHidesServiceAccount = "ListHidesServiceAccount"
	// CodeNotMountable: the ServiceAccount has
	// kubernetes.io/enforce-mountable-secrets and the Pod lists pull
	// secrets it does not: admission refuses such Pods.
	CodeNotMountable = "NotMountable"
	// CodeServiceAccountMissing: the Pod's ServiceAccount does not exist.
	CodeServiceAccountMissing = "ServiceAccountMissing"
	// CodeCredentialsRejected: the registry answered 401 to the credentials
	// the kubelet sent.
	CodeCredentialsRejected = "CredentialsRejected"
	// CodeCredentialsRequired: the registry answered 401 and the kubelet
	// sent no credentials.
	CodeCredentialsRequired = "CredentialsRequired"
	// CodeCredentialExpired: the registry refused a token that had
	// expired when the kubelet sent it (a copy a ClusterPullSecret failed to
	// refresh, or a Secret made by hand from a short-lived token).
	CodeCredentialExpired = "CredentialExpired"
	// CodeForbidden: the credentials are valid but may not pull the
	// repository.
	CodeForbidden = "Forbidden"
	// CodeAccessDenied: the registry would not say whether the repository
	// is missing or private (Docker Hub).
	CodeAccessDenied = "AccessDenied"
	// CodeImageNotFound: the repository or tag does not exist.
	CodeImageNotFound = "ImageNotFound"
	// CodeRegistryUnreachable: the node could not reach the registry.
	CodeRegistryUnreachable = "RegistryUnreachable"
	// CodeRegistryTLS: the registry's certificate is not trusted.
	CodeRegistryTLS = "RegistryTLS"
	// CodeRegistryOK: --verify: the registry serves the image with the
	// Pod's credentials now; the failure was on the node's side or is over.
	CodeRegistryOK = "RegistryOK"
	// CodePullFailed: the pull failed for a reason the kubelet's text does
	// not tell.
	CodePullFailed = "PullFailed"
)

// Problem is one finding, in one sentence, with the command that fixes it.
// Its Message never holds secret bytes.
type Problem struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	// Container is the container concerned; empty for the whole Pod.
	Container string `json:"container,omitempty"`
	// Secret is the pull secret concerned (a name in the namespace).
	Secret string `json:"secret,omitempty"`
	// Message explains the problem in one sentence.
	Message string `json:"message"`
	// Fix is a command line (`kubectl pullsecrets ...` or `kubectl ...`)
	// that fixes it, with UPPER-CASE placeholders for what only the user
	// knows.
	Fix string `json:"fix,omitempty"`
	// ClusterPullSecret is the ClusterPullSecret whose copy Secret is.
	ClusterPullSecret string `json:"clusterPullSecret,omitempty"`
	// ExpiresAt is when Secret's token expired (CredentialExpired), when
	// something tells.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// Verified is true when a registry check (--verify) established it,
	// not only the kubelet's text.
	Verified bool `json:"verified,omitempty"`
}

// HasError reports whether any problem is an error.
func HasError(problems []Problem) bool {
	for _, p := range problems {
		if p.Severity == SeverityError {
			return true
		}
	}
	return false
}

// rank orders problems for reading: what breaks every pull first, then the
// ServiceAccount story, then matching, then the registry.
func rank(code string) int {
	switch code {
	case CodeSecretUnparsable:
		return 0
	case CodeServiceAccountMissing:
		return 1
	case CodeCreatedBeforeAttach, CodeListHidesServiceAccount:
		return 2
	case CodeSecretMissing, CodeSecretWrongType:
		return 3
	case CodeNoCredential:
		return 4
	case CodeNotMountable:
		return 6
	}
	return 5
}
