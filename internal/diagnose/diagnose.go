package diagnose

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
)

// EnforceMountableSecretsAnnotation on a ServiceAccount makes admission
// refuse Pods that list pull secrets the ServiceAccount does not.
const EnforceMountableSecretsAnnotation = "kubernetes.io/enforce-mountable-secrets"

// EventFailedToRetrieveImagePullSecret is the kubelet's Event reason for a
// pull secret it could not read.
const EventFailedToRetrieveImagePullSecret = "FailedToRetrieveImagePullSecret"

// Input is what the diagnosis of one Pod reads, all read by the caller.
type Input struct {
	Pod *corev1.Pod
	// Events are Events about the Pod, in any order; others are ignored.
	Events []corev1.Event
	// ServiceAccount is the Pod's ServiceAccount, nil when it does not
	// exist.
	ServiceAccount *corev1.ServiceAccount
	// Secrets holds Secrets of the Pod's namespace by name; a name the Pod
	// or its ServiceAccount lists that is not here does not exist.
	Secrets map[string]*corev1.Secret
	// ClusterPullSecrets is what the caller learnt of ClusterPullSecrets,
	// by name. Names not in the map were not asked for:
	// Diagnosis.ClusterPullSecretsToRead lists those whose status would
	// tell when a refused token expired.
	ClusterPullSecrets map[string]Owner
	// Now is compared with tokens' expiry; zero means time.Now().
	Now time.Time
	// SecretAccess says how much of the namespace's Secrets the caller
	// could read: everything (the zero value), the metadata of its pull
	// secrets only, or nothing (a user bound to the built-in view role).
	// What cannot be read is never reported as missing or broken.
	SecretAccess SecretAccess
}

// SecretAccess is how much of the Secrets a caller could read.
type SecretAccess int

const (
	// SecretsRead means Secrets holds every Secret that exists, with its
	// data.
	SecretsRead SecretAccess = iota
	// SecretsMetadata means Secrets holds the Secrets that exist, with their
	// type when it is a pull secret type (empty otherwise) and no data.
	SecretsMetadata
	// SecretsUnknown means nothing is known of the Secrets.
	SecretsUnknown
)

// String names the access for notes and JSON.
func (a SecretAccess) String() string {
	switch a {
	case SecretsMetadata:
		return "metadata"
	case SecretsUnknown:
		return "none"
	}
	return "read"
}

// Credential names one credential the kubelet sends: its Secret
// ("NAMESPACE/NAME"), its registry key as written and its username, never
// its password. doctor, status and match print credentials in this one
// shape.
type Credential struct {
	Secret   string `json:"secret"`
	Registry string `json:"registry"`
	Username string `json:"username"`
}

// NewCredential names c without its password.
func NewCredential(c credentials.Credential) Credential {
	return Credential{Secret: c.Secret, Registry: c.Registry, Username: c.Username}
}

// String is "NAME (REGISTRY, user USERNAME)", NAME without its namespace.
func (c Credential) String() string {
	return fmt.Sprintf("%s (%s, user %s)", secretName(c.Secret), c.Registry, c.Username)
}

// Owner is what the caller learnt of one ClusterPullSecret.
type Owner struct {
	// Object is the ClusterPullSecret; nil when it could not be read
	// (forbidden) or is gone.
	Object *v1alpha1.ClusterPullSecret
	// Gone is true when it does not exist.
	Gone bool
}

// Container is one container of the Pod and how its pull goes.
type Container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	// Reason is the waiting reason: ErrImagePull, ImagePullBackOff, or the
	// kubelet's decode error when a pull secret is unparsable.
	Reason string `json:"reason,omitempty"`
	// PullError is what the kubelet's text says the registry answered.
	PullError PullError `json:"pullError,omitempty"`
	// Credentials are the credentials the kubelet tries, in order; never a
	// password. Empty when it sends none, or when they were not looked up
	// (a container that pulls, a pull secret that breaks every pull, or
	// Secrets the caller may not read: CredentialsUnknown).
	Credentials []Credential `json:"credentials"`
	// CredentialsUnknown is true when the Secrets could not be read, so
	// what the kubelet sends is not known.
	CredentialsUnknown bool `json:"credentialsUnknown,omitempty"`
	// Fallback is true when they come from the Docker Hub fallback.
	Fallback bool `json:"fallback,omitempty"`

	// creds are the same credentials with their passwords, for --verify,
	// behind a pointer: fmt prints a nested pointer as an address, so a
	// Container or Diagnosis printed with %+v shows no password.
	creds *credentialList
}

type credentialList struct{ list []credentials.Credential }

// list returns the credentials with passwords (none when not looked up).
func (c *Container) list() []credentials.Credential {
	if c.creds == nil {
		return nil
	}
	return c.creds.list
}

// LookedUp reports whether the credentials the kubelet sends for the
// container were looked up (Credentials is then the answer, even empty).
func (c *Container) LookedUp() bool { return c.creds != nil }

// Diagnosis is the explanation of one Pod's pulls.
type Diagnosis struct {
	Namespace      string `json:"namespace"`
	Pod            string `json:"pod"`
	ServiceAccount string `json:"serviceAccount"`
	// Owner is the Pod's controller, "ReplicaSet/web-7d9f"; empty for a bare
	// Pod.
	Owner string `json:"owner,omitempty"`
	// Workload is the object that holds the Pod's template, as kubectl
	// names it ("deployment/web"); empty for a bare Pod.
	Workload string `json:"workload,omitempty"`
	// Recreated is true when deleting the Pod brings a replacement.
	Recreated bool `json:"recreated"`
	// PullSecrets are the names the Pod lists.
	PullSecrets []string `json:"pullSecrets"`
	// Failing is true when a container cannot pull its image.
	Failing bool `json:"failing"`
	// Pending is true when the Pod has not pulled yet and will fail to:
	// its own pull secrets have no credential for an image while its
	// ServiceAccount's have one (it was created before they were
	// attached, or its list hides theirs). Containers are then those
	// images'.
	Pending bool `json:"pending"`
	// Containers are the failing containers (every container when none
	// fails).
	Containers []Container `json:"containers"`
	Problems   []Problem   `json:"problems"`
	// SecretAccess is "read", "metadata" or "none": how much of the
	// Secrets the diagnosis could read.
	SecretAccess string `json:"secretAccess"`

	// toRead are ClusterPullSecrets not in Input.ClusterPullSecrets whose
	// status would date a refused token.
	toRead []string
}

// ClusterPullSecretsToRead returns the ClusterPullSecrets, not in the
// input, that keep copies the registry refused: their status tells when
// the copies' token expires. Diagnose again with them.
func (d *Diagnosis) ClusterPullSecretsToRead() []string { return slices.Clone(d.toRead) }

// Ref is "NAMESPACE/POD".
func (d *Diagnosis) Ref() string { return d.Namespace + "/" + d.Pod }

// Pod diagnoses one Pod.
func Pod(in Input) Diagnosis {
	pod := in.Pod
	d := Diagnosis{
		Namespace:      pod.Namespace,
		Pod:            pod.Name,
		ServiceAccount: pullfailure.ServiceAccountName(pod),
		PullSecrets:    refNames(pod.Spec.ImagePullSecrets),
		Recreated:      pullfailure.Recreator(pod) != nil,
		Containers:     []Container{},
		Problems:       []Problem{},
		SecretAccess:   in.SecretAccess.String(),
	}
	if owner := metav1.GetControllerOf(pod); owner != nil {
		d.Owner = owner.Kind + "/" + owner.Name
	}
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	x := &pass{in: in, d: &d, fix: newFixer(pod)}
	if x.fix.kind != "" {
		d.Workload = x.fix.kind + "/" + x.fix.name
	}
	x.podSecrets()
	x.containers()
	if !d.Failing {
		x.pending()
	}
	if d.Failing || d.Pending {
		x.serviceAccount()
		x.matching()
		x.expiry()
		x.registry()
	} else {
		x.mountable()
	}
	sort.SliceStable(d.Problems, func(i, j int) bool { return rank(d.Problems[i].Code) < rank(d.Problems[j].Code) })
	return d
}

// pass holds the work of one diagnosis.
type pass struct {
	in  Input
	d   *Diagnosis
	fix fixer

	keyring *credentials.Keyring
	missing []string
	// wrongType names the pull secrets that exist with a type the kubelet
	// does not read, when only their metadata could be read.
	wrongType []string
	// broken names the pull secrets the kubelet reads nothing from.
	broken map[string]bool
	events []corev1.Event
	// expired names the containers whose every credential had expired:
	// CredentialExpired says all the registry's refusal does.
	expired map[string]bool
}

func (x *pass) add(p Problem) { x.d.Problems = append(x.d.Problems, p) }

// podSecrets reads the Secrets the Pod lists, in order, as
// kubelet.getPullSecretsForPod does, and reports the ones it cannot use.
func (x *pass) podSecrets() {
	x.broken = map[string]bool{}
	var secrets []credentials.Secret
	for _, name := range x.d.PullSecrets {
		if name == "" {
			continue // API validation let such entries in; the kubelet skips them
		}
		s, ok := x.in.Secrets[name]
		switch {
		case x.in.SecretAccess == SecretsUnknown:
		case !ok || s == nil:
			x.missing = append(x.missing, name)
		case x.in.SecretAccess == SecretsMetadata:
			if !isPullSecretType(s.Type) {
				x.wrongType = append(x.wrongType, name)
			}
		default:
			secrets = append(secrets, toSecret(s))
		}
	}
	x.keyring = credentials.NewKeyring(secrets)
	for _, e := range x.in.Events {
		if e.InvolvedObject.Name != x.in.Pod.Name || e.InvolvedObject.Namespace != x.in.Pod.Namespace {
			continue
		}
		if e.InvolvedObject.UID != "" && x.in.Pod.UID != "" && e.InvolvedObject.UID != x.in.Pod.UID {
			continue // an earlier Pod of the same name (StatefulSet)
		}
		x.events = append(x.events, e)
	}
}

// containers finds the containers that cannot pull.
func (x *pass) containers() {
	pod := x.in.Pod
	for _, c := range pullfailure.StuckContainers(pod) {
		x.d.Containers = append(x.d.Containers, Container{Name: c.Name, Image: c.Image, Reason: c.Reason, PullError: Classify(c.Message), Credentials: []Credential{}})
	}
	// A pull secret the kubelet cannot decode fails the pull before it
	// starts: the waiting reason is the decode error itself, not
	// ErrImagePull (kuberuntime startContainer, kubelet reasonCache).
	if x.keyring.Err() != nil && pod.DeletionTimestamp == nil {
		for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
			for _, cs := range statuses {
				if w := cs.State.Waiting; w != nil && Classify(w.Reason) == PullKeyring {
					x.d.Containers = append(x.d.Containers, Container{Name: cs.Name, Image: cs.Image, Reason: w.Reason, PullError: PullKeyring, Credentials: []Credential{}})
				}
			}
		}
	}
	x.d.Failing = len(x.d.Containers) > 0
	for i := range x.d.Containers {
		c := &x.d.Containers[i]
		if c.PullError == PullUnknown {
			c.PullError = Classify(x.lastPullEvent(c.Image))
		}
	}
	if x.d.Failing {
		return
	}
	for _, c := range allContainers(pod) {
		x.d.Containers = append(x.d.Containers, Container{Name: c.Name, Image: c.Image, Credentials: []Credential{}})
	}
}

// ReasonPending is the Reason of a container that has not pulled yet and
// will fail to (Diagnosis.Pending).
const ReasonPending = "Pending"

// pending predicts the failure of a Pod that has not pulled yet: a
// container not started whose image no pull secret of the Pod has a
// credential for, while its ServiceAccount's have one. The ServiceAccount
// got them after the Pod was created (or the Pod's own list hides them):
// the kubelet will pull anonymously, unless the node already holds the
// image. Only with the Secrets' data, which tells what matches.
func (x *pass) pending() {
	pod := x.in.Pod
	if x.in.SecretAccess != SecretsRead || x.in.ServiceAccount == nil || pod.DeletionTimestamp != nil ||
		(pod.Status.Phase != corev1.PodPending && pod.Status.Phase != "") || x.keyring.Err() != nil {
		return
	}
	started := map[string]bool{}
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range statuses {
			if cs.ImageID != "" || cs.State.Running != nil || cs.State.Terminated != nil {
				started[cs.Name] = true
			}
		}
	}
	var failing []Container
	for _, c := range allContainers(pod) {
		if started[c.Name] || !x.saHelps(c.Image) {
			continue
		}
		if m, err := x.keyring.Lookup(c.Image); err != nil || len(m.Credentials) > 0 {
			continue
		}
		failing = append(failing, Container{Name: c.Name, Image: c.Image, Reason: ReasonPending, Credentials: []Credential{}})
	}
	if len(failing) > 0 {
		x.d.Pending, x.d.Containers = true, failing
	}
}

// lastPullEvent returns the newest "Failed to pull image" text for image.
func (x *pass) lastPullEvent(image string) string {
	e := x.lastPullFailure(image)
	if e == nil {
		return ""
	}
	return strings.TrimPrefix(e.Message, fmt.Sprintf("Failed to pull image %q: ", image))
}

// lastPullFailure returns the newest "Failed to pull image" Event for
// image, nil when there is none.
func (x *pass) lastPullFailure(image string) *corev1.Event {
	var best *corev1.Event
	prefix := fmt.Sprintf("Failed to pull image %q: ", image)
	for i := range x.events {
		e := &x.events[i]
		if e.Reason != "Failed" || !strings.HasPrefix(e.Message, prefix) {
			continue
		}
		if best == nil || eventTime(e).After(eventTime(best)) {
			best = e
		}
	}
	return best
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// reportedMissing reports whether the kubelet said it could not read name.
func (x *pass) reportedMissing(name string) bool {
	for _, e := range x.events {
		if e.Reason == EventFailedToRetrieveImagePullSecret && strings.Contains(e.Message, name) {
			return true
		}
	}
	return false
}

// matching reports the Pod's pull secrets the kubelet cannot use, and the
// images no credential matches.
func (x *pass) matching() {
	pod := x.in.Pod
	for _, name := range x.missing {
		how := "does not exist"
		if x.reportedMissing(name) {
			how = "does not exist (the kubelet reported " + EventFailedToRetrieveImagePullSecret + ")"
		}
		x.add(Problem{
			Code: CodeSecretMissing, Severity: SeverityError, Secret: name,
			Message: fmt.Sprintf("Pod %s lists pull secret %s, which %s in namespace %s: the kubelet pulls without it", pod.Name, name, how, pod.Namespace),
			Fix:     x.fix.create(name, x.firstImage(), false),
		})
	}
	for _, name := range x.wrongType {
		x.broken[name] = true
		x.add(Problem{
			Code: CodeSecretWrongType, Severity: SeverityError, Secret: name,
			Message: fmt.Sprintf("pull secret %s is not of type %s or %s: the kubelet reads no credentials from it", name, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg),
			Fix:     x.fix.create(name, x.firstImage(), true),
		})
	}
	if x.in.SecretAccess != SecretsRead {
		for i := range x.d.Containers {
			x.d.Containers[i].CredentialsUnknown = true
		}
		return // without the Secrets' data, what the kubelet sends is unknown
	}
	for _, f := range x.keyring.Findings() {
		if f.Severity != credentials.SeverityError {
			continue
		}
		name := secretName(f.Secret)
		if x.broken[name] {
			continue // one problem per Secret: the first error says enough
		}
		x.broken[name] = true
		code, effect := CodeSecretWrongType, "the kubelet reads no credentials from it"
		if failsKeyring(f.Code) {
			code, effect = CodeSecretUnparsable, "the kubelet cannot decode it and so fails every image pull of the Pod, from every registry"
		}
		msg := fmt.Sprintf("pull secret %s is unusable (%s: %s)", name, f.Code, strings.TrimSuffix(f.Message, "."))
		if !strings.Contains(f.Message, "kubelet") {
			msg += ": " + effect
		}
		x.add(Problem{
			Code: code, Severity: SeverityError, Secret: name,
			Message: msg,
			Fix:     x.fix.create(name, x.firstImage(), true),
		})
	}
	if x.keyring.Err() != nil {
		return
	}
	for i := range x.d.Containers {
		c := &x.d.Containers[i]
		m, err := x.keyring.Lookup(c.Image)
		if err != nil {
			continue // an invalid image name is InvalidImageName, not a pull failure
		}
		c.Fallback = m.Fallback
		c.creds = &credentialList{list: m.Credentials}
		c.Credentials = []Credential{}
		for _, cr := range m.Credentials {
			c.Credentials = append(c.Credentials, NewCredential(cr))
		}
		if m.Miss == nil {
			continue
		}
		if c.PullError == PullNotFound || c.PullError == PullUnreachable || c.PullError == PullTLS {
			continue // anonymous pulls got that far: the credentials are not the problem
		}
		// A Docker Hub image may be public: pulling it anonymously is fine.
		msg := fmt.Sprintf("no pull secret of Pod %s has a credential for %s (%s), so the kubelet pulls it anonymously", pod.Name, c.Image, m.Miss.Message)
		if len(x.d.PullSecrets) == 0 {
			msg = fmt.Sprintf("Pod %s lists no pull secret, so the kubelet pulls %s anonymously", pod.Name, c.Image)
		}
		if x.saExplains(c.Image) {
			continue // the ServiceAccount has the credential: that story says what to do
		}
		x.add(Problem{
			Code: CodeNoCredential, Severity: SeverityError, Container: c.Name,
			Message: msg,
			Fix:     x.fix.createFor(c.Image, x.d.ServiceAccount),
		})
	}
}

// firstImage is the image of the first failing container.
func (x *pass) firstImage() string {
	if len(x.d.Containers) == 0 {
		return ""
	}
	return x.d.Containers[0].Image
}

// serviceAccount explains a Pod whose list lacks what its ServiceAccount
// carries now: created before the ServiceAccount got it, or a list of its
// own that hides the ServiceAccount's.
func (x *pass) serviceAccount() {
	pod, sa := x.in.Pod, x.in.ServiceAccount
	if sa == nil {
		x.add(Problem{
			Code: CodeServiceAccountMissing, Severity: SeverityError,
			Message: fmt.Sprintf("ServiceAccount %s/%s of Pod %s does not exist, so new Pods cannot be created with it and nothing can be attached", pod.Namespace, x.d.ServiceAccount, pod.Name),
			Fix:     fmt.Sprintf("kubectl -n %s create serviceaccount %s", pod.Namespace, x.d.ServiceAccount),
		})
		return
	}
	saNames := refNames(sa.ImagePullSecrets)
	var lacking []string
	for _, n := range saNames {
		if n != "" && !slices.Contains(x.d.PullSecrets, n) && !slices.Contains(lacking, n) {
			lacking = append(lacking, n)
		}
	}
	x.mountable()
	if len(lacking) == 0 {
		return
	}
	sev := SeverityWarning
	for _, c := range x.d.Containers {
		if x.saHelps(c.Image) || x.in.SecretAccess != SecretsRead {
			sev = SeverityError // without the Secrets' data, the likeliest cause
		}
	}
	list := strings.Join(lacking, ", ")
	if x.createdBefore(sa) {
		msg := fmt.Sprintf("Pod %s was created before ServiceAccount %s got %s: admission copies a ServiceAccount's pull secrets into a Pod only when it is created", pod.Name, sa.Name, list)
		if len(x.d.PullSecrets) > 0 {
			msg = fmt.Sprintf("Pod %s was created when ServiceAccount %s listed only %s, before it got %s: admission copies a ServiceAccount's pull secrets into a Pod only when it is created", pod.Name, sa.Name, strings.Join(x.d.PullSecrets, ", "), list)
		}
		fix := x.fix.restart(x.d.Recreated)
		if x.d.Pending {
			msg += "; it has not pulled yet and will pull without them"
			if x.d.Recreated {
				fix = fmt.Sprintf("kubectl -n %s delete pod %s   # restart waits until it fails; its %s recreates it with the ServiceAccount's pull secrets", pod.Namespace, pod.Name, x.d.Owner)
			}
		}
		x.add(Problem{Code: CodeCreatedBeforeAttach, Severity: sev, Secret: lacking[0], Message: msg, Fix: fix})
		return
	}
	x.add(Problem{
		Code: CodeListHidesServiceAccount, Severity: sev, Secret: lacking[0],
		Message: fmt.Sprintf("Pod %s lists its own imagePullSecrets (%s), which hide those of ServiceAccount %s (%s): admission copies the ServiceAccount's list only into Pods that list none",
			pod.Name, strings.Join(x.d.PullSecrets, ", "), sa.Name, strings.Join(saNames, ", ")),
		Fix: x.fix.addToTemplate(lacking),
	})
}

// createdBefore reports whether the Pod's list is what admission copied
// from an older version of the ServiceAccount: an empty list, or a subset
// of the ServiceAccount's list while the ServiceAccount's imagePullSecrets
// changed after the Pod was created.
func (x *pass) createdBefore(sa *corev1.ServiceAccount) bool {
	own := x.d.PullSecrets
	if len(own) == 0 {
		return true
	}
	for _, n := range own {
		if !slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == n }) {
			return false // a name the ServiceAccount never had: from the template
		}
	}
	if changed, ok := pullSecretsChanged(sa); ok {
		return !changed.Before(x.in.Pod.CreationTimestamp.Time)
	}
	// Without managedFields: admission copies in order, so the Pod's list
	// is a prefix of the ServiceAccount's list when names were appended.
	saNames := refNames(sa.ImagePullSecrets)
	return len(own) < len(saNames) && slices.Equal(own, saNames[:len(own)])
}

// pullSecretsChanged returns when imagePullSecrets last changed, from the
// managedFields entry that owns it (the time moves whenever that manager
// changes a field it owns).
func pullSecretsChanged(sa *corev1.ServiceAccount) (time.Time, bool) {
	var latest time.Time
	found := false
	for _, mf := range sa.ManagedFields {
		if mf.Time == nil || mf.FieldsV1 == nil || !strings.Contains(mf.FieldsV1.GetRawString(), `"f:imagePullSecrets"`) {
			continue
		}
		if !found || mf.Time.After(latest) {
			latest, found = mf.Time.Time, true
		}
	}
	return latest, found
}

// saHelps reports whether the ServiceAccount's pull secrets have a
// credential for image.
func (x *pass) saHelps(image string) bool {
	sa := x.in.ServiceAccount
	if sa == nil {
		return false
	}
	var secrets []credentials.Secret
	for _, r := range sa.ImagePullSecrets {
		if s, ok := x.in.Secrets[r.Name]; ok && s != nil {
			secrets = append(secrets, toSecret(s))
		}
	}
	kr := credentials.NewKeyring(secrets)
	if kr.Err() != nil {
		return false
	}
	m, err := kr.Lookup(image)
	return err == nil && len(m.Credentials) > 0
}

// mountable reports a Pod whose pull secrets its ServiceAccount does not
// list while the ServiceAccount enforces mountable secrets: admission
// refuses new Pods like it.
func (x *pass) mountable() {
	pod, sa := x.in.Pod, x.in.ServiceAccount
	if sa == nil || sa.Annotations[EnforceMountableSecretsAnnotation] != "true" {
		return
	}
	for _, n := range x.d.PullSecrets {
		if n == "" || slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == n }) {
			continue
		}
		if slices.ContainsFunc(x.d.Problems, func(p Problem) bool { return p.Code == CodeNotMountable && p.Secret == n }) {
			continue
		}
		x.add(Problem{
			Code: CodeNotMountable, Severity: SeverityWarning, Secret: n,
			Message: fmt.Sprintf("ServiceAccount %s has %s and does not list %s, which Pod %s lists: admission refuses new Pods like it (their owner reports FailedCreate)",
				sa.Name, EnforceMountableSecretsAnnotation, n, pod.Name),
			Fix: fmt.Sprintf("kubectl pullsecrets attach %s -n %s --service-account %s", n, pod.Namespace, sa.Name),
		})
	}
}

// registry reads what the registry answered from the kubelet's text.
func (x *pass) registry() {
	for i := range x.d.Containers {
		c := &x.d.Containers[i]
		if x.expired[c.Name] {
			continue // CredentialExpired says why the registry refused
		}
		host := registryHost(c.Image)
		var p Problem
		switch c.PullError {
		case PullUnauthorized:
			if c.CredentialsUnknown {
				code := CodeCredentialsRequired
				if len(x.d.PullSecrets) > 0 {
					code = CodeCredentialsRejected
				}
				p = Problem{Code: code, Severity: SeverityError,
					Message: fmt.Sprintf("%s refused the pull of %s (401 Unauthorized): the kubelet sent no credentials it accepts (the pull secrets, which you may not read, would tell which)", host, c.Image),
					Fix:     x.fix.verify()}
				break
			}
			if len(c.Credentials) == 0 {
				if x.has(CodeNoCredential, c.Name) || x.saExplains(c.Image) {
					continue // already said: no credential, and the registry wants one
				}
				p = Problem{Code: CodeCredentialsRequired, Severity: SeverityError,
					Message: fmt.Sprintf("%s requires credentials for %s and the kubelet sent none (401 Unauthorized)", host, c.Image),
					Fix:     x.fix.createFor(c.Image, x.d.ServiceAccount)}
			} else {
				p = Problem{Code: CodeCredentialsRejected, Severity: SeverityError, Secret: secretName(c.list()[0].Secret),
					Message: fmt.Sprintf("%s rejected the credentials the kubelet sent for %s (401 Unauthorized): %s", host, c.Image, credList(c.Credentials)),
					Fix:     x.fix.recreate(secretName(c.list()[0].Secret), c.Image, c.list()[0].Username)}
			}
		case PullForbidden, PullTokenExpired:
			p = Problem{Code: CodeForbidden, Severity: SeverityError,
				Message: fmt.Sprintf("%s accepted the credentials but they may not pull %s (403 Forbidden): %s", host, c.Image, credList(c.Credentials)),
				Fix:     x.fix.verify()}
		case PullAccessDenied:
			why := "the repository does not exist, or it is private and the kubelet sent no credentials for it"
			if len(c.Credentials) > 0 {
				why = "the repository does not exist, or these credentials may not pull it: " + credList(c.Credentials)
			}
			p = Problem{Code: CodeAccessDenied, Severity: SeverityError,
				Message: fmt.Sprintf("%s denied the pull of %s (pull access denied): %s", host, c.Image, why),
				Fix:     x.fix.verify()}
		case PullNotFound:
			p = Problem{Code: CodeImageNotFound, Severity: SeverityError,
				Message: fmt.Sprintf("image %s does not exist on %s (not found): check the repository and tag", c.Image, host),
				Fix:     x.fix.setImage(c.Name)}
		case PullUnreachable:
			p = Problem{Code: CodeRegistryUnreachable, Severity: SeverityError,
				Message: fmt.Sprintf("the node could not reach %s to pull %s (DNS, network or firewall): pull secrets do not matter until it can", host, c.Image),
				Fix:     x.fix.verify()}
		case PullTLS:
			p = Problem{Code: CodeRegistryTLS, Severity: SeverityError,
				Message: fmt.Sprintf("the node does not trust the TLS certificate of %s: configure the container runtime to trust its CA", host),
				Fix:     x.fix.verify()}
		case PullKeyring:
			continue // the unparsable Secret is reported already
		default:
			if x.hasAny(c.Name) {
				continue
			}
			p = Problem{Code: CodePullFailed, Severity: SeverityError,
				Message: fmt.Sprintf("the kubelet failed to pull %s for a reason its message does not tell", c.Image),
				Fix:     x.fix.verify()}
		}
		p.Container = c.Name
		x.add(p)
	}
}

// saExplains reports whether the ServiceAccount story (created before,
// hidden list) explains a missing credential for image: the
// ServiceAccount has one.
func (x *pass) saExplains(image string) bool {
	return (x.has(CodeCreatedBeforeAttach, "") || x.has(CodeListHidesServiceAccount, "")) && x.saHelps(image)
}

// has reports a problem of code about container (or the whole Pod).
func (x *pass) has(code, container string) bool {
	return slices.ContainsFunc(x.d.Problems, func(p Problem) bool {
		return p.Code == code && (p.Container == "" || p.Container == container)
	})
}

// hasAny reports whether an error explains container already.
func (x *pass) hasAny(container string) bool {
	return slices.ContainsFunc(x.d.Problems, func(p Problem) bool {
		return p.Severity == SeverityError && (p.Container == "" || p.Container == container)
	})
}

func credList(creds []Credential) string {
	if len(creds) == 0 {
		return "none"
	}
	out := make([]string, len(creds))
	for i, c := range creds {
		out[i] = c.String()
	}
	return strings.Join(out, "; ")
}

func isPullSecretType(t corev1.SecretType) bool {
	return t == corev1.SecretTypeDockerConfigJson || t == corev1.SecretTypeDockercfg
}

// secretName turns "NAMESPACE/NAME" into NAME.
func secretName(ref string) string {
	if _, name, ok := strings.Cut(ref, "/"); ok {
		return name
	}
	return ref
}

// failsKeyring mirrors credentials' list of findings that fail the whole
// keyring.
func failsKeyring(code string) bool {
	switch code {
	case credentials.CodeNotJSON, credentials.CodeBadStructure, credentials.CodeBadBase64, credentials.CodeAuthNoColon:
		return true
	}
	return false
}

func toSecret(s *corev1.Secret) credentials.Secret {
	return credentials.Secret{Namespace: s.Namespace, Name: s.Name, Type: string(s.Type), Data: s.Data}
}

func refNames(refs []corev1.LocalObjectReference) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.Name)
	}
	return out
}

func allContainers(pod *corev1.Pod) []corev1.Container {
	return append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...)
}

// registryHost is the registry of an image as people write it: docker.io
// for Docker Hub.
func registryHost(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return strings.SplitN(image, "/", 2)[0]
	}
	return reference.Domain(named)
}
