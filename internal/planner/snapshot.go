package planner

import (
	"time"

	"github.com/pullsecrets/pullsecrets/internal/selection"
)

// Snapshot is what the caches show of one namespace, and of every
// ClusterPullSecret.
type Snapshot struct {
	Namespace          Namespace
	ClusterPullSecrets []ClusterPullSecret
	// Copies are the namespace's Secrets that wear the controller's labels,
	// proven or not.
	Copies []Copy
	// Blocked names Secrets that exist but are not copies (learned when a
	// create failed), with a note for humans.
	Blocked         map[string]string
	ServiceAccounts []ServiceAccount
	// Pods and Workloads need only be those that reference a Secret or are
	// stuck on a pull: the others never change a plan.
	Pods      []Pod
	Workloads []Workload
	// UsageUnknown: Pods and templates are not all listed yet (the
	// controller just started). Nothing is retired and no Pod restarted
	// until they are; copies and attachments go on.
	UsageUnknown bool
	// Now is when the snapshot was read: the planner's only clock, for
	// the backoff of fights over a ServiceAccount's list.
	Now time.Time
	// AdoptMarked: the operator who lost the ownership key asked to adopt
	// every copy marked for a live ClusterPullSecret (by name and UID),
	// whatever it holds, and the records naming them (docs/controller.md,
	// "The ownership key").
	AdoptMarked bool
	// UnprovenNote is added to what is said of a Secret wearing the
	// controller's marks without a valid proof (how to recover a lost
	// key).
	UnprovenNote string
}

// Namespace is the namespace planned for.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Terminating bool
}

// ClusterPullSecret is one ClusterPullSecret, as far as a namespace cares.
type ClusterPullSecret struct {
	Name    string
	UID     string
	Created time.Time
	// Deleting: the object is being deleted; everything it made goes.
	Deleting bool
	// Invalid, when set, says why the spec cannot be used; nothing of this
	// ClusterPullSecret is touched until it is fixed.
	Invalid string
	// Selector is nil when Invalid is set.
	Selector    *selection.Selector
	SecretName  string
	RestartPods bool
	Source      Source
	// AttachToPods: the name goes on new Pods through the pod-injection
	// policy (spec.attachTo: Pods); no ServiceAccount is edited for it.
	AttachToPods bool
	// InjectingFrom is when the pod-injection policy adds SecretName to new
	// Pods: its params were published long enough before for the API
	// server to have read them, and the policy is installed. Zero: it does
	// not (yet), or Injected is another name.
	InjectingFrom time.Time
	// Injected is the name the pod-injection policy adds to new Pods for
	// it (status.injection, while the policy is installed), whatever the
	// mode: an old name for a moment after a rename, and through a switch
	// back to ServiceAccounts until its namespaces are Ready. "" when none.
	Injected string
	// InjectionProblem, in Pods mode, says why the API server cannot
	// inject (no MutatingAdmissionPolicy, the policy not installed).
	InjectionProblem string
}

// Source is the state of a ClusterPullSecret's credential.
type Source struct {
	// Problem is a condition reason (SourceNotFound, SourceInvalid, ...)
	// when the credential cannot be copied; copies are then left as they
	// are.
	Problem string
	Message string
	// Hash identifies the content a new copy gets: the source's type and
	// data.
	Hash string
	// Type is the source's Secret type, which a new copy takes.
	Type string
	// HashAs identifies, per Secret type, the content a copy of that type
	// must have: the same credential written in that type (a Secret's type
	// cannot change; dockercfg and dockerconfigjson hold the same
	// credential). A copy of a type not listed must have Hash.
	HashAs map[string]string `json:"-"`
	// Matches reports whether the credential is one the kubelet would use
	// for an image; nil matches nothing.
	Matches func(image string) bool `json:"-"`
}

// Copy is a Secret wearing the controller's labels.
type Copy struct {
	Name string
	UID  string
	// Owner and OwnerUID name the ClusterPullSecret the marks claim.
	Owner    string
	OwnerUID string
	// Hash identifies the type and data the copy holds.
	Hash string
	// Type is the copy's Secret type, which cannot change.
	Type string
	// Proven: the marks carry a valid ownership proof. An unproven Secret is
	// never modified nor deleted, unless adopted (docs/controller.md, "The
	// ownership key"): marked for a live ClusterPullSecret at its current
	// name and holding its current credential, or AdoptMarked.
	Proven bool
	// Proof is the proof annotation as read ("": none); a write of the copy
	// tests it, so that a copy whose marks changed since is not written.
	Proof string
	// Resign: proven by an older key of the ring; written again with the
	// signing key.
	Resign bool
	// Restore: the controller's own copy (the object it made or proved,
	// known by its UID) whose marks someone changed. It counts as proven
	// and is written back whole, marks included (CopyWrite.Restore).
	Restore  bool
	Deleting bool
}

// ServiceAccount is one ServiceAccount of the namespace.
type ServiceAccount struct {
	Name            string
	UID             string
	ResourceVersion string
	Labels          map[string]string
	Annotations     map[string]string
	PullSecrets     []string
	// Record maps each name the controller attached to the
	// ClusterPullSecret that attached it.
	Record map[string]string
	// Reattached lists, per name, when the controller put it back after
	// someone else removed it: the history of a fight over the list.
	Reattached map[string][]time.Time
	// RecordProblem, when set, says why the record cannot be trusted; the
	// ServiceAccount is then left alone, unless its record is adopted.
	RecordProblem string
	// Unverified is the record as read when its proof does not check (a
	// ServiceAccount restored with a new UID, a lost key): adopted when
	// every entry is a name the controller would attach there itself.
	Unverified map[string]string
	// RecordResign: the record's proof was made by an older key of the
	// ring; it is written again with the signing key.
	RecordResign bool
	Deleting     bool
}

// Owner identifies a Pod's or workload's controller.
type Owner struct {
	Group string
	Kind  string
	Name  string
	UID   string
}

// Pod is a Pod of the namespace.
type Pod struct {
	Name           string
	UID            string
	ServiceAccount string
	// PullSecrets is the Pod's own imagePullSecrets.
	PullSecrets []string
	// SecretRefs are every Secret the Pod reads: pull secrets, secret and
	// projected volumes, env and envFrom.
	SecretRefs []string
	// Finished: Succeeded or Failed; it never starts a container again.
	Finished bool
	Deleting bool
	Owner    *Owner
	// StuckImages are the images of containers waiting on a failed pull.
	StuckImages []string
}

// Workload is a Pod template: a Deployment, ReplicaSet, StatefulSet,
// DaemonSet, Job, CronJob or ReplicationController.
type Workload struct {
	Owner
	// PullSecrets is the template's own imagePullSecrets.
	PullSecrets []string
	// SecretRefs are every Secret the template reads.
	SecretRefs []string
	// Active: the template may still make Pods (not a finished Job, not a
	// Deployment's scaled-down history).
	Active bool
	// FailureBudget is how many more Pod failures a Job can afford before
	// it fails; negative means unlimited (not a Job).
	FailureBudget int
}
