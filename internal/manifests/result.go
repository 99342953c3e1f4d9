package manifests

import (
	"fmt"
	"io/fs"
)

// File is one manifest file: its path, its bytes and its mode.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
	// Kustomization is the path of the kustomization file whose resources
	// list this file, "" when none does.
	Kustomization string
	// Namespace is the namespace the kustomization (or one that includes
	// it) gives every object of the file, "" when none: kustomize's
	// namespace: replaces metadata.namespace.
	Namespace string
}

// Kustomization is a kustomization file among the inputs: followed for
// its resources, never read as a manifest, and edited to list the files
// migrate creates next to the ones it lists.
type Kustomization struct {
	File
	// PullSecretPatches names the patches of the kustomization that mention
	// imagePullSecrets or a ServiceAccount: migrate leaves alone the
	// workloads of its files, since a patch could put a list back that
	// would hide the ServiceAccount's.
	PullSecretPatches []string
	// SecretGenerators are the Secrets its secretGenerator makes.
	SecretGenerators []GeneratedSecret
}

// GeneratedSecret is a Secret a kustomization's secretGenerator makes.
type GeneratedSecret struct {
	Name, Namespace, Type string
}

// Finding is one line of a report: where, about which object, and what.
// It never carries Secret data.
type Finding struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
}

// String renders the finding as "file:line: Object: message".
func (f Finding) String() string {
	pos := f.File
	if f.Line > 0 {
		pos = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	if f.Object == "" {
		return pos + ": " + f.Message
	}
	return pos + ": " + f.Object + ": " + f.Message
}

// Change is a file to write: its old and new bytes. Created files have no
// old bytes.
type Change struct {
	Path    string
	Before  []byte
	After   []byte
	Mode    fs.FileMode
	Created bool
}

// Result is what Migrate or Rename would do.
type Result struct {
	// Changes are the files to write, edited ones in input order, then
	// created ones.
	Changes []Change
	// Notes say what changes, what is merged and what is assumed.
	Notes []Finding
	// Refused lists what was left alone because changing it would change
	// behaviour or could not be done safely, with the reason.
	Refused []Finding
	// Errors are files that could not be read, parsed or understood.
	Errors []Finding
}

// NothingToDo reports whether the result changes nothing and found no
// problem.
func (r *Result) NothingToDo() bool {
	return len(r.Changes) == 0 && len(r.Refused) == 0 && len(r.Errors) == 0
}
