// Package manifests works on Kubernetes manifest files offline, without a
// cluster: it finds workloads, ServiceAccounts and pull Secrets (Load, Scan),
// moves inline imagePullSecrets from Pod templates onto ServiceAccounts where
// that keeps every Pod's pull secrets the same or only adds to them
// (Migrate), and renames a pull secret everywhere (Rename).
//
// Edits are spliced into the original text by package yamledit, so
// everything an edit does not need to touch survives byte for byte. Every
// edited file is re-parsed and compared with the intended change before it
// is offered; a file that would differ in anything else is left alone and the
// objects involved are reported as refused.
package manifests
