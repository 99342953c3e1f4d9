package v1alpha1

// Labels and annotations pullsecrets reads and writes on other objects. They
// are part of the API: users select, audit and opt out with them.
const (
	// ManagedByLabel (app.kubernetes.io/managed-by) marks every Secret copy.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is ManagedByLabel's value.
	ManagedByValue = "pullsecrets"
	// OwnerLabel names the ClusterPullSecret a copy belongs to.
	OwnerLabel = "pullsecrets.dev/cluster-pull-secret"
	// SourceAnnotation on a copy names its source Secret, "namespace/name".
	SourceAnnotation = "pullsecrets.dev/source"
	// DataHashAnnotation on a copy is a hash of its type and data, so that
	// the controller can tell whether it is current without reading it.
	DataHashAnnotation = "pullsecrets.dev/data-hash"
	// AttachedAnnotation on a ServiceAccount records, as a JSON object, the
	// imagePullSecrets names pullsecrets added and the ClusterPullSecret that
	// added each: {"regcred":"my-cps"}. Only these are ever removed.
	AttachedAnnotation = "pullsecrets.dev/attached"
	// ProofAnnotation on a copy proves that the controller made it: an
	// HMAC, under a key only the controller reads, of the copy's namespace
	// and name and its ClusterPullSecret's name and UID. Labels anyone with
	// Secret write can set; this they cannot forge.
	ProofAnnotation = "pullsecrets.dev/proof"
	// OwnerUIDAnnotation on a copy is the UID of its ClusterPullSecret.
	OwnerUIDAnnotation = "pullsecrets.dev/cluster-pull-secret-uid"
	// AttachedProofAnnotation on a ServiceAccount proves that the
	// controller wrote AttachedAnnotation: an HMAC of the record and the
	// ServiceAccount's namespace, name and UID.
	AttachedProofAnnotation = "pullsecrets.dev/attached-proof"
	// ExpiresAtAnnotation on a copy of a plugin's credential, and on the
	// Secret holding it, is when it expires (RFC 3339), for doctor and
	// humans; status.credential.expiresAt is authoritative.
	ExpiresAtAnnotation = "pullsecrets.dev/expires-at"
	// ObtainedAtAnnotation on a provider Secret is when the plugin answered.
	ObtainedAtAnnotation = "pullsecrets.dev/obtained-at"
	// NextRefreshAnnotation on a provider Secret is when the plugin runs
	// next, so that a restarted controller keeps the schedule.
	NextRefreshAnnotation = "pullsecrets.dev/next-refresh-at"
	// ProviderSpecAnnotation on a provider Secret is a hash of the spec that
	// made it: a changed spec is refreshed at once.
	ProviderSpecAnnotation = "pullsecrets.dev/provider-spec"
	// ProviderForLabel on a provider Secret names its ClusterPullSecret.
	ProviderForLabel = "pullsecrets.dev/provider-for"
	// ProviderSecretPrefix starts the name of the Secret, in the
	// controller's namespace, that holds a plugin's latest credential: it is
	// the source the copies are made from.
	ProviderSecretPrefix = "pullsecrets-provider-"
	// OptOutAnnotation set to "true" on a Namespace or ServiceAccount keeps
	// pullsecrets away from it.
	OptOutAnnotation = "pullsecrets.dev/opt-out"
	// Finalizer lets the controller detach and delete what it made before a
	// ClusterPullSecret goes away.
	Finalizer = "pullsecrets.dev/cleanup"
)

// The ownership key: a Secret in the controller's namespace, made by the
// controller on its first start, holding the HMAC key of the proofs. Only
// the controller reads it; deleting it orphans every copy (they are then
// reported as conflicts and never touched).
const (
	// OwnershipKeySecretName is the key Secret's name.
	OwnershipKeySecretName = "pullsecrets-ownership-key"
	// OwnershipKeySecretType is the key Secret's type.
	OwnershipKeySecretType = "pullsecrets.dev/ownership-key"
	// OwnershipKeyDataKey holds the key bytes.
	OwnershipKeyDataKey = "key"
)

// CopyLabels are the labels that make a Secret one of the controller's
// copies; CopyAnnotations its annotations. Only the controller may set,
// change or remove them (the admission policy in config/policy enforces it).
var (
	CopyLabels      = []string{ManagedByLabel, OwnerLabel}
	CopyAnnotations = []string{SourceAnnotation, DataHashAnnotation, ProofAnnotation, OwnerUIDAnnotation}
	// ServiceAccountAnnotations are the controller's marks on a
	// ServiceAccount.
	ServiceAccountAnnotations = []string{AttachedAnnotation, AttachedProofAnnotation}
)

// Condition types.
const (
	// ConditionReady is True when every selected namespace has an up-to-date
	// copy attached to every selected ServiceAccount.
	ConditionReady = "Ready"
	// ConditionCredentialsVerified reports the last registry check.
	ConditionCredentialsVerified = "CredentialsVerified"
	// ConditionCredentialRefreshed reports the last run of a provider
	// source's plugin.
	ConditionCredentialRefreshed = "CredentialRefreshed"
)

// Condition and Event reasons: the same strings serve both.
const (
	// ReasonReady: everything is in place.
	ReasonReady = "Ready"
	// ReasonProgressing: copies or attachments are being rolled out.
	ReasonProgressing = "Progressing"
	// ReasonSourceNotFound: the source Secret does not exist, or is in a
	// namespace the controller may not read. Copies are left as they are.
	ReasonSourceNotFound = "SourceNotFound"
	// ReasonSourceInvalid: the source is not a usable pull secret. Copies
	// are left as they are.
	ReasonSourceInvalid = "SourceInvalid"
	// ReasonProviderNotConfigured: the provider source names a plugin that
	// the controller's CredentialProviderConfig does not configure, or that
	// configuration cannot be read. Copies are left as they are.
	ReasonProviderNotConfigured = "ProviderNotConfigured"
	// ReasonImageNotAllowed: the provider source's image is matched by none
	// of the provider's matchImages. Copies are left as they are.
	ReasonImageNotAllowed = "ImageNotAllowed"
	// ReasonPodInjectionUnavailable: attachTo is Pods but the API server
	// cannot inject (no MutatingAdmissionPolicy, or the shipped policy is
	// not installed). Copies are kept; nothing is attached.
	ReasonPodInjectionUnavailable = "PodInjectionUnavailable"
	// ReasonContested: another writer (a GitOps tool) keeps removing the
	// name from ServiceAccounts; the controller backs off and says who.
	ReasonContested = "Contested"
	// ReasonOwnershipKeyMissing: the controller holds no ownership key it
	// may use (the key Secret is gone while marks made with it exist, or
	// unreadable); nothing is written until it is back or recovered.
	ReasonOwnershipKeyMissing = "OwnershipKeyMissing"
	// ReasonOwnershipKey is the reason of Events about the key: made,
	// restored from memory, rotated, merged, recovered, older keys dropped.
	ReasonOwnershipKey = "OwnershipKey"
	// ReasonConflict: a Secret of the same name that pullsecrets did not
	// create, or that another ClusterPullSecret owns, is in the way.
	ReasonConflict = "Conflict"
	// ReasonWriteFailed: the API server refused a write.
	ReasonWriteFailed = "WriteFailed"
	// ReasonInvalidSpec: a selector or glob in the spec does not parse.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonRecordInvalid: a selected ServiceAccount's attachment record is
	// malformed or was changed by someone else; it is left alone.
	ReasonRecordInvalid = "RecordInvalid"
	// ReasonDeleting: the ClusterPullSecret is being deleted and its copies
	// and attachments are being removed.
	ReasonDeleting = "Deleting"
	// ReasonNoNamespaces: nothing is selected.
	ReasonNoNamespaces = "NoNamespaces"
	// ReasonPodRestarted: a Pod stuck on a pull was deleted so that its
	// owner recreates it with the secret.
	ReasonPodRestarted = "PodRestarted"
	// ReasonPodStuck: a Pod stuck on a pull lacks the secret and cannot be
	// restarted by pullsecrets (bare Pod, or restartPods is Never).
	ReasonPodStuck = "PodStuck"
	// ReasonCopyRetired: an old copy was deleted once no Pod listed it.
	ReasonCopyRetired = "CopyRetired"
	// ReasonRefreshed: the plugin answered a usable credential.
	ReasonRefreshed = "Refreshed"
	// ReasonRefreshFailed: the plugin failed; the credential in place is
	// kept and the run retried with backoff.
	ReasonRefreshFailed = "RefreshFailed"
	// ReasonCredentialExpired: the credential in the copies has expired and
	// no fresh one could be obtained.
	ReasonCredentialExpired = "CredentialExpired"
	// ReasonVerified: the registry accepted the credentials.
	ReasonVerified = "Verified"
	// ReasonVerificationFailed: the registry check failed; propagation goes on.
	ReasonVerificationFailed = "VerificationFailed"
)
