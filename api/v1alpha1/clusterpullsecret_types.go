package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterPullSecret keeps one registry credential, copied from a source
// Secret, in every selected namespace, and attaches it to the selected
// ServiceAccounts so that the API server puts it into every new Pod.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=cps,categories=pullsecrets
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Namespaces",type=string,JSONPath=`.status.namespaces.summary`,description="Namespaces ready/matched"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="the name is used as a label value: at most 63 characters"
type ClusterPullSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterPullSecretSpec   `json:"spec"`
	Status ClusterPullSecretStatus `json:"status,omitempty"`
}

// ClusterPullSecretSpec says which credential goes where.
// +kubebuilder:validation:XValidation:rule="self.attachTo != 'Pods' || !has(self.serviceAccounts) || !has(self.serviceAccounts.selector)",message="attachTo: Pods cannot select ServiceAccounts by label (spec.serviceAccounts.selector): admission sees the Pod, never its ServiceAccount; select them by name (spec.serviceAccounts.names) or use attachTo: ServiceAccounts"
type ClusterPullSecretSpec struct {
	// Source is the Secret whose type and data are copied. It must be of
	// type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg, in a
	// namespace the controller is allowed to read from (its own by default).
	Source SourceReference `json:"source"`

	// SecretName is the name of the copy in each namespace, and the name
	// attached to ServiceAccounts. Defaults to the ClusterPullSecret's name.
	// Changing it renames: new copies first, then the new name is attached,
	// then the old one detached; old copies are deleted once no Pod lists
	// them.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`

	// Namespaces selects the namespaces that get a copy. Empty selects every
	// namespace except kube-system, kube-public and kube-node-lease (which
	// are selected only when named in include). A namespace opts out with
	// the annotation pullsecrets.dev/opt-out: "true".
	// +optional
	Namespaces NamespaceSelector `json:"namespaces,omitempty"`

	// ServiceAccounts selects, in each selected namespace, the
	// ServiceAccounts that get SecretName in their imagePullSecrets. Empty
	// selects all of them. A ServiceAccount opts out with the annotation
	// pullsecrets.dev/opt-out: "true".
	// +optional
	ServiceAccounts ServiceAccountSelector `json:"serviceAccounts,omitempty"`

	// AttachTo says where SecretName goes: ServiceAccounts (default), whose
	// imagePullSecrets the API server copies into every new Pod; or Pods,
	// where a MutatingAdmissionPolicy shipped with pullsecrets adds it to
	// each new Pod whose images the credential is for, and no
	// ServiceAccount is written (for ServiceAccounts a GitOps tool owns;
	// docs/gitops.md). Pods mode selects ServiceAccounts by name only:
	// admission sees the Pod, never its ServiceAccount.
	// +optional
	// +kubebuilder:default=ServiceAccounts
	AttachTo AttachTarget `json:"attachTo,omitempty"`

	// RestartPods says what to do with Pods that failed to pull before their
	// ServiceAccount got the secret: Never (default) only reports them;
	// OnPullFailure deletes those whose owner (ReplicaSet, StatefulSet,
	// DaemonSet, Job) will recreate them, so that the new Pod gets the
	// secret. Bare Pods are never deleted.
	// +optional
	// +kubebuilder:default=Never
	RestartPods RestartPolicy `json:"restartPods,omitempty"`

	// Verify, when set, checks the source credentials against a registry.
	// +optional
	Verify *VerifySpec `json:"verify,omitempty"`
}

// SourceReference says where the credential comes from: a Secret (namespace
// and name), or a kubelet credential provider plugin that mints short-lived
// registry tokens (provider).
// +kubebuilder:validation:XValidation:rule="has(self.provider) != (has(self.namespace) && has(self.name))",message="set either namespace and name (a Secret) or provider (a credential provider plugin)"
type SourceReference struct {
	// Namespace of the source Secret.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
	// Name of the source Secret.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`
	// Provider runs a kubelet credential provider plugin, as the kubelet
	// does, and copies the credential it answers; the controller refreshes
	// it well before it expires (docs/short-lived-tokens.md).
	// +optional
	Provider *CredentialProviderSource `json:"provider,omitempty"`
}

// CredentialProviderSource asks a kubelet credential provider plugin for
// the credential. Plugins are configured by the cluster admin, as for the
// kubelet: the controller's CredentialProviderConfig
// (kubelet.config.k8s.io/v1, --credential-provider-config) says which
// plugins exist, the images each may be asked for (matchImages), and their
// args, env and service account token audience. A ClusterPullSecret only
// names a configured provider and the image it wants
// (docs/short-lived-tokens.md).
// +kubebuilder:validation:XValidation:rule="!has(self.args)",message="args moved to the cluster admin's CredentialProviderConfig (the controller's --credential-provider-config; docs/short-lived-tokens.md): a ClusterPullSecret can no longer set a plugin's arguments"
// +kubebuilder:validation:XValidation:rule="!has(self.env)",message="env moved to the cluster admin's CredentialProviderConfig (the controller's --credential-provider-config; docs/short-lived-tokens.md): a ClusterPullSecret can no longer set a plugin's environment"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountTokenAudience)",message="serviceAccountTokenAudience moved to the cluster admin's CredentialProviderConfig, as tokenAttributes.serviceAccountTokenAudience (docs/short-lived-tokens.md): a ClusterPullSecret can no longer choose a token audience"
// +kubebuilder:validation:XValidation:rule="!has(self.defaultCacheDuration)",message="defaultCacheDuration moved to the cluster admin's CredentialProviderConfig (docs/short-lived-tokens.md)"
// +kubebuilder:validation:XValidation:rule="!has(self.apiVersion)",message="apiVersion moved to the cluster admin's CredentialProviderConfig (docs/short-lived-tokens.md)"
type CredentialProviderSource struct {
	// Name of a provider in the controller's CredentialProviderConfig.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][-A-Za-z0-9_.]*$`
	Name string `json:"name"`
	// Image the credential is asked for: an image or a registry host
	// (123456789012.dkr.ecr.us-west-2.amazonaws.com). One of the
	// provider's matchImages must match it, as the kubelet requires.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
	// MinCacheDuration raises a shorter cacheDuration answered by the
	// plugin: ACR's answer (5m) is a kubelet cache hint, not the token's
	// life (3h).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule=`self.matches('^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')`,message="must be a duration such as 30m or 1h"
	MinCacheDuration *metav1.Duration `json:"minCacheDuration,omitempty"`

	// Refused: moved to the controller's
	// CredentialProviderConfig; kept in the schema so that an object that
	// still holds it is refused with a message instead of served without
	// it.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Refused, as APIVersion.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	Args []string `json:"args,omitempty"`
	// Refused, as APIVersion.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Env []ExecEnvVar `json:"env,omitempty"`
	// Refused, as APIVersion.
	// +optional
	// +kubebuilder:validation:Type=string
	DefaultCacheDuration *metav1.Duration `json:"defaultCacheDuration,omitempty"`
	// Refused, as APIVersion: now the provider's
	// tokenAttributes.serviceAccountTokenAudience.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountTokenAudience string `json:"serviceAccountTokenAudience,omitempty"`
}

// MovedFields lists the fields set in p that moved to the controller's
// CredentialProviderConfig; a ClusterPullSecret holding any is refused.
// apiVersion is not among them: objects stored before the move hold the
// old default, and the controller accepts it when it equals the
// configured provider's.
func (p *CredentialProviderSource) MovedFields() []string {
	var moved []string
	if len(p.Args) > 0 {
		moved = append(moved, "args")
	}
	if len(p.Env) > 0 {
		moved = append(moved, "env")
	}
	if p.DefaultCacheDuration != nil {
		moved = append(moved, "defaultCacheDuration")
	}
	if p.ServiceAccountTokenAudience != "" {
		moved = append(moved, "serviceAccountTokenAudience")
	}
	return moved
}

// ExecEnvVar is an environment variable of a plugin (deprecated: see
// CredentialProviderSource.Env).
type ExecEnvVar struct {
	// Name of the variable.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// Value of the variable.
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// NamespaceSelector selects namespaces by label and by name.
type NamespaceSelector struct {
	// Selector matches namespace labels. Empty matches all.
	// +optional
	// +kubebuilder:validation:XValidation:rule=`!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'] && ((e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0)))`,message="matchExpressions: operator must be In, NotIn, Exists or DoesNotExist; In and NotIn need values, Exists and DoesNotExist take none"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Include lists namespace names or globs (`team-*`, `?` for one
	// character); when set, only matching namespaces are selected. Naming
	// kube-system, kube-public or kube-node-lease here (exactly, not by a
	// glob) selects it.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$`
	Include []string `json:"include,omitempty"`
	// Exclude lists namespace names or globs that are never selected.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$`
	Exclude []string `json:"exclude,omitempty"`
}

// ServiceAccountSelector selects ServiceAccounts within a namespace.
type ServiceAccountSelector struct {
	// Names lists ServiceAccount names or globs. Empty means all.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9*?]([-a-z0-9*?.]*[a-z0-9*?])?$`
	Names []string `json:"names,omitempty"`
	// Selector matches ServiceAccount labels. Empty matches all.
	// +optional
	// +kubebuilder:validation:XValidation:rule=`!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'] && ((e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0)))`,message="matchExpressions: operator must be In, NotIn, Exists or DoesNotExist; In and NotIn need values, Exists and DoesNotExist take none"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// AttachTarget is where a ClusterPullSecret's name goes.
// +kubebuilder:validation:Enum=ServiceAccounts;Pods
type AttachTarget string

const (
	// AttachToServiceAccounts puts the name on the selected
	// ServiceAccounts' imagePullSecrets.
	AttachToServiceAccounts AttachTarget = "ServiceAccounts"
	// AttachToPods has the admission policy add the name to new Pods.
	AttachToPods AttachTarget = "Pods"
)

// RestartPolicy says whether Pods stuck on pulls are replaced.
// +kubebuilder:validation:Enum=Never;OnPullFailure
type RestartPolicy string

const (
	// RestartNever only reports Pods stuck on pulls.
	RestartNever RestartPolicy = "Never"
	// RestartOnPullFailure deletes Pods stuck on pulls whose owner will
	// recreate them with the secret.
	RestartOnPullFailure RestartPolicy = "OnPullFailure"
)

// VerifySpec configures the registry check of the source credentials.
type VerifySpec struct {
	// Image is pulled (manifest only, never layers) with the source
	// credentials, exactly as the kubelet would choose them.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
	// Interval between checks, a Go duration of at least 1m (`30m`, `1h`);
	// the credentials are also checked whenever they change. Defaults to 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule=`self.matches('^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('1m')`,message="must be a duration such as 30m or 1h, of at least 1m"
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Insecure allows plain HTTP or an unverified TLS certificate for the
	// image's registry.
	// +optional
	Insecure bool `json:"insecure,omitempty"`
}

// ClusterPullSecretStatus is what the controller observed and did.
type ClusterPullSecretStatus struct {
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, and CredentialsVerified when spec.verify is set.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// SecretName is the name of the copies being rolled out.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// SourceResourceVersion is the resourceVersion of the source Secret
	// whose data the copies are being brought to. (Not a hash of the data:
	// status is readable by more people than the Secret, and a hash of a
	// weak password is an offline guessing oracle.)
	// +optional
	SourceResourceVersion string `json:"sourceResourceVersion,omitempty"`
	// Namespaces counts the selected namespaces.
	// +optional
	Namespaces NamespaceCounts `json:"namespaces,omitempty"`
	// ServiceAccountsAttached counts ServiceAccounts carrying SecretName
	// because of this ClusterPullSecret.
	// +optional
	ServiceAccountsAttached int32 `json:"serviceAccountsAttached,omitempty"`
	// PendingRetirement counts old copies kept because something still
	// uses them.
	// +optional
	PendingRetirement int32 `json:"pendingRetirement,omitempty"`
	// Retiring lists up to 20 old copies kept, and what holds each (Pods,
	// workload templates, ServiceAccounts), sorted by namespace.
	// +optional
	// +listType=atomic
	Retiring []RetiringCopy `json:"retiring,omitempty"`
	// StuckPods lists up to 20 Pods that fail to pull an image this
	// credential is for and that the controller does not restart, with why.
	// +optional
	// +listType=atomic
	StuckPods []StuckPod `json:"stuckPods,omitempty"`
	// FailingNamespaces lists up to 20 namespaces that are not ready, with
	// the reason, sorted by name.
	// +optional
	// +listType=atomic
	FailingNamespaces []NamespaceFailure `json:"failingNamespaces,omitempty"`
	// LastVerification is the time of the last registry check.
	// +optional
	LastVerification *metav1.Time `json:"lastVerification,omitempty"`
	// Credential describes, for a provider source, the credential in the
	// copies: when it was obtained, when it expires, when it is refreshed.
	// +optional
	Credential *CredentialStatus `json:"credential,omitempty"`
	// Injection is what the admission policy pullsecrets-pod-injection
	// reads, as its params, to add the name to new Pods. The controller
	// publishes it for attachTo: Pods, and keeps it while a switch back to
	// ServiceAccounts is rolled out, so that no Pod is created without the
	// credential. Only the controller writes status.
	// +optional
	Injection *InjectionStatus `json:"injection,omitempty"`
}

// InjectionStatus tells the pod-injection policy what to add to which Pods.
type InjectionStatus struct {
	// SecretName is the name added to new Pods' imagePullSecrets.
	SecretName string `json:"secretName"`
	// Registries the credential is for, pre-compiled for CEL from the keys
	// of the source credential, as the kubelet matches them: a Pod is
	// injected when one of its images (init and ephemeral containers
	// included) matches one.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Registries []InjectionRegistry `json:"registries,omitempty"`
	// DockerHub: the credential has a key the kubelet uses for Docker Hub
	// images (docker.io, index.docker.io).
	// +optional
	DockerHub bool `json:"dockerHub,omitempty"`
	// SkipServiceAccounts lists "namespace/name" of selected
	// ServiceAccounts annotated kubernetes.io/enforce-mountable-secrets:
	// "true", whose Pods the API server would refuse with a name the
	// ServiceAccount does not list; their Pods are not injected.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	SkipServiceAccounts []string `json:"skipServiceAccounts,omitempty"`
	// Since is when this injection was first published.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// InjectionRegistry is one key of the credential, as CEL matches it.
type InjectionRegistry struct {
	// Key is the credential's key, for humans.
	Key string `json:"key"`
	// Host is a regular expression for the image's host without port: the
	// key's host labels, each a glob matching one label.
	Host string `json:"host"`
	// Port must equal the image's port ("" for none).
	// +optional
	Port string `json:"port,omitempty"`
	// Path must be a prefix of the image's path ("/team/app").
	// +optional
	Path string `json:"path,omitempty"`
}

// CredentialStatus is the state of a credential minted by a plugin.
type CredentialStatus struct {
	// ObtainedAt is when the plugin answered the credential in place.
	// +optional
	ObtainedAt *metav1.Time `json:"obtainedAt,omitempty"`
	// ExpiresAt is when that credential expires (obtained plus the
	// plugin's cacheDuration).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// NextRefreshAt is when the plugin runs next.
	// +optional
	NextRefreshAt *metav1.Time `json:"nextRefreshAt,omitempty"`
	// Failures counts runs in a row that failed; the credential in place is
	// kept through them.
	// +optional
	Failures int32 `json:"failures,omitempty"`
	// LastError says why the last run failed; never holds secret bytes.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// NamespaceCounts counts namespaces.
type NamespaceCounts struct {
	// Matched namespaces are selected by the spec.
	// +optional
	Matched int32 `json:"matched,omitempty"`
	// Ready namespaces have an up-to-date copy attached to every selected
	// ServiceAccount.
	// +optional
	Ready int32 `json:"ready,omitempty"`
	// Summary is "ready/matched", for kubectl get.
	// +optional
	Summary string `json:"summary,omitempty"`
}

// NamespaceFailure says why a namespace is not ready.
type NamespaceFailure struct {
	// Namespace name.
	Namespace string `json:"namespace"`
	// Reason, one of the condition reasons.
	Reason string `json:"reason"`
	// Message for humans; never holds secret bytes.
	// +optional
	Message string `json:"message,omitempty"`
}

// RetiringCopy is an old copy kept because something still uses it.
type RetiringCopy struct {
	// Namespace of the copy.
	Namespace string `json:"namespace"`
	// Secret is the copy's name.
	Secret string `json:"secret"`
	// HeldBy names up to 5 users, e.g. "Pod web-1", "Deployment api",
	// "ServiceAccount builder".
	// +optional
	// +listType=atomic
	HeldBy []string `json:"heldBy,omitempty"`
}

// StuckPod is a Pod that fails to pull and is not restarted.
type StuckPod struct {
	// Namespace of the Pod.
	Namespace string `json:"namespace"`
	// Pod name.
	Pod string `json:"pod"`
	// Reason it is not restarted.
	Reason string `json:"reason"`
}

// ClusterPullSecretList is a list of ClusterPullSecrets.
//
// +kubebuilder:object:root=true
type ClusterPullSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterPullSecret `json:"items"`
}
