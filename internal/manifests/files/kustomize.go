package files

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"

	"github.com/pullsecrets/pullsecrets/internal/manifests"
)

// kustomizationIn returns the kustomization file of folder dir, "" when it
// has none (kustomize's names: kustomization.yaml, kustomization.yml,
// Kustomization).
func kustomizationIn(dir string) string {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// isKustomizationFile reports whether path is named as kustomize names its
// files.
func isKustomizationFile(path string) bool {
	return slices.Contains(konfig.RecognizedKustomizationFileNames(), filepath.Base(path))
}

// remote matches the resources kustomize fetches (git repositories, URLs):
// they are not in the files, and are never fetched here.
var remote = regexp.MustCompile(`^([a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)|\?ref=|\.git(//|$)`)

// pullSecretFields are the texts that make a patch touch what migrate
// moves: a Pod template's imagePullSecrets or its ServiceAccount.
var pullSecretFields = regexp.MustCompile(`imagePullSecrets|serviceAccount`)

// kustomization reads the kustomization file at path, with kustomize's own
// types and strict decoding (types.Kustomization.Unmarshal), and follows
// its resources and components: files are added, folders are
// kustomizations in turn (kustomize requires it), remote resources are
// noted and left out. namespace is the namespace an including
// kustomization sets, which wins over this one's (kustomize applies the
// outer transformer last).
func (r *reader) kustomization(path, namespace string) {
	abs, err := filepath.Abs(path)
	if err == nil && r.seenKustomization[abs] {
		return
	}
	r.seenKustomization[abs] = true
	info, err := os.Stat(path)
	if err != nil {
		r.fail(path, 0, "cannot read: "+reason(err))
		return
	}
	data, err := r.budget.ReadFile(path)
	if err != nil {
		r.readError(path, err)
		return
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		r.fail(path, 0, "not a valid kustomization: "+sanitizeKustomizeError(err))
		return
	}
	k.FixKustomization()
	if errs := k.EnforceFields(); len(errs) > 0 {
		r.fail(path, 0, "not a valid kustomization: "+strings.Join(errs, "; "))
		return
	}
	if namespace == "" {
		namespace = k.Namespace
	}
	dir := filepath.Dir(path)
	kz := manifests.Kustomization{File: manifests.File{Path: path, Data: data, Mode: info.Mode().Perm(), Namespace: namespace}}
	for _, g := range k.SecretGenerator {
		ns := g.Namespace
		if namespace != "" {
			ns = namespace
		}
		kz.SecretGenerators = append(kz.SecretGenerators, manifests.GeneratedSecret{Name: g.Name, Namespace: ns, Type: g.Type})
	}
	var patches []string
	for _, p := range k.Patches {
		patches = r.checkPatch(patches, dir, p.Path, p.Patch)
	}
	for _, p := range k.PatchesJson6902 { //nolint:staticcheck // deprecated, and still applied by kustomize: a patch there matters as much
		patches = r.checkPatch(patches, dir, p.Path, p.Patch)
	}
	for _, p := range k.PatchesStrategicMerge { //nolint:staticcheck // deprecated, and still applied by kustomize: a patch there matters as much
		if _, err := os.Stat(filepath.Join(dir, string(p))); err == nil {
			patches = r.checkPatch(patches, dir, string(p), "")
		} else {
			patches = r.checkPatch(patches, dir, "", string(p))
		}
	}
	for _, rep := range k.Replacements {
		text, _ := json.Marshal(rep) // plain data: cannot fail
		if rep.Path != "" {
			patches = r.checkPatch(patches, dir, rep.Path, "")
		} else if pullSecretFields.Match(text) {
			patches = append(patches, "a replacement")
		}
	}
	kz.PullSecretPatches = patches
	if len(k.HelmCharts) > 0 {
		r.note(path, "its helmCharts are not rendered here: scan the output of 'kustomize build --enable-helm' instead")
	}
	if len(k.Images) > 0 {
		r.note(path, "its images: field renames images when kustomize builds; the images here are as the files write them")
	}
	r.kustomizations = append(r.kustomizations, kz)
	for _, res := range append(slices.Clone(k.Resources), k.Components...) {
		if remote.MatchString(res) {
			r.note(path, fmt.Sprintf("resource %s is remote: not followed", res))
			continue
		}
		p := filepath.Join(dir, res)
		info, err := os.Stat(p)
		if err != nil {
			r.fail(path, 0, fmt.Sprintf("resource %s: cannot read: %s", res, reason(err)))
			continue
		}
		if info.IsDir() {
			inner := kustomizationIn(p)
			if inner == "" {
				r.fail(path, 0, fmt.Sprintf("resource %s is a folder without a kustomization file, which kustomize refuses", res))
				continue
			}
			r.kustomization(inner, namespace)
			continue
		}
		r.add(p, info, path, namespace)
	}
}

// checkPatch adds a description of the patch (a file under dir, or inline
// text) when it mentions imagePullSecrets or a ServiceAccount.
func (r *reader) checkPatch(out []string, dir, path, inline string) []string {
	text, what := inline, "an inline patch"
	if path != "" {
		data, err := r.budget.ReadFile(filepath.Join(dir, path))
		if err != nil {
			r.readError(filepath.Join(dir, path), err)
			return out
		}
		text, what = string(data), "patch "+path
	}
	if pullSecretFields.MatchString(text) {
		out = append(out, what)
	}
	return out
}

// listedBy returns the kustomization file of the file's folder when its
// resources list the file, and its namespace: a file named on its own
// still belongs to it, and files created next to it must be listed too.
func (r *reader) listedBy(path string) (string, string) {
	k := kustomizationIn(filepath.Dir(path))
	if k == "" {
		return "", ""
	}
	data, err := os.ReadFile(k) // #nosec G304 -- a kustomization the user's folder holds; parsed, never printed
	if err != nil || int64(len(data)) > r.budget.PerFile {
		return "", ""
	}
	var kz types.Kustomization
	if kz.Unmarshal(data) != nil {
		return "", ""
	}
	kz.FixKustomization()
	for _, res := range kz.Resources {
		if filepath.Clean(filepath.Join(filepath.Dir(k), res)) == filepath.Clean(path) {
			if !r.haveKustomization(k) {
				info, err := os.Stat(k)
				if err != nil {
					return "", ""
				}
				r.kustomizations = append(r.kustomizations, manifests.Kustomization{File: manifests.File{Path: k, Data: data, Mode: info.Mode().Perm(), Namespace: kz.Namespace}})
			}
			return k, kz.Namespace
		}
	}
	return "", ""
}

func (r *reader) haveKustomization(path string) bool {
	return slices.ContainsFunc(r.kustomizations, func(k manifests.Kustomization) bool { return k.Path == path })
}

// kustomizeQuoted matches quoted text in kustomize's errors, which may
// come from the file.
var kustomizeQuoted = regexp.MustCompile(`"[^"]*"|'[^']*'`)

// sanitizeKustomizeError keeps kustomize's reason without text it quotes
// from the file.
func sanitizeKustomizeError(err error) string {
	msg := kustomizeQuoted.ReplaceAllString(err.Error(), `"..."`)
	msg = strings.TrimPrefix(msg, "invalid Kustomization: ")
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}
