package manifests

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"

	"github.com/distribution/reference"
	yaml "go.yaml.in/yaml/v3"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// Severities of scan findings: errors make `manifests scan` exit 1.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Codes of scan findings, besides the credentials package's codes for
// Secret contents.
const (
	// CodeDanglingSecret: a pull secret is named but no Secret manifest
	// (nor a SealedSecret or ExternalSecret) in the files defines it.
	CodeDanglingSecret = "DanglingSecret"
	// CodeDanglingServiceAccount: Pods run as a ServiceAccount, other than
	// "default", that no manifest in the files defines; they are rejected
	// unless it exists in the cluster.
	CodeDanglingServiceAccount = "DanglingServiceAccount"
	// CodeUnmatchedImage: no credential of the Pods' pull secrets matches
	// an image (fine for a public image).
	CodeUnmatchedImage = "UnmatchedImage"
	// CodeInvalidImage: an image reference does not parse.
	CodeInvalidImage = "InvalidImage"
	// CodeInvalidList: imagePullSecrets is not a list of names.
	CodeInvalidList = "InvalidList"
	// CodeKeyringFails: one of the Pods' pull secrets cannot be decoded, so
	// the kubelet fails every image pull of those Pods.
	CodeKeyringFails = "KeyringFails"
)

// ScanReport is what Scan finds. It holds Secret names and findings, never
// Secret data.
type ScanReport struct {
	Workloads       []WorkloadReport       `json:"workloads"`
	ServiceAccounts []ServiceAccountReport `json:"serviceAccounts"`
	Secrets         []SecretReport         `json:"secrets"`
	Findings        []ScanFinding          `json:"findings"`
	Errors          []Finding              `json:"errors"`
}

// HasErrors reports whether the scan found an error-level problem or could
// not read a file.
func (r *ScanReport) HasErrors() bool {
	if len(r.Errors) > 0 {
		return true
	}
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// ScanFinding is a problem found by Scan.
type ScanFinding struct {
	Finding
	Severity string `json:"severity"`
	Code     string `json:"code"`
}

// WorkloadReport describes a workload.
type WorkloadReport struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	// ServiceAccount is the one its Pods run as; ServiceAccountField the
	// field naming it, "" when defaulted.
	ServiceAccount      string `json:"serviceAccount"`
	ServiceAccountField string `json:"serviceAccountField,omitempty"`
	// ImagePullSecrets are the Pod template's own.
	ImagePullSecrets []string `json:"imagePullSecrets"`
	// EffectivePullSecrets are those its Pods get: their own, else the
	// ServiceAccount's when its manifest is among the files.
	EffectivePullSecrets []string `json:"effectivePullSecrets"`
	// PullSecretsFrom is "pod", "serviceAccount", or "unknown" when the Pods
	// have none of their own and the ServiceAccount is not among the files.
	PullSecretsFrom string `json:"pullSecretsFrom"`
	// Registries groups the images by registry host.
	Registries []RegistryImages `json:"registries"`
}

// RegistryImages are the images of one registry.
type RegistryImages struct {
	Registry string   `json:"registry"`
	Images   []string `json:"images"`
}

// ServiceAccountReport describes a ServiceAccount manifest.
type ServiceAccountReport struct {
	Namespace        string   `json:"namespace"`
	Name             string   `json:"name"`
	File             string   `json:"file"`
	Line             int      `json:"line"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	// EnforceMountableSecrets is the kubernetes.io/enforce-mountable-secrets
	// annotation, when set.
	EnforceMountableSecrets string `json:"enforceMountableSecrets,omitempty"`
}

// SecretReport describes a pull Secret manifest (of a pull secret type, or
// named as a pull secret), and how the kubelet would read it.
type SecretReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Type      string `json:"type,omitempty"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	// Checked is false when the contents are not in the file (a
	// SealedSecret or ExternalSecret).
	Checked bool `json:"checked"`
	// Valid is true when checked and the credentials library found no
	// error.
	Valid bool `json:"valid"`
}

type nsName struct{ namespace, name string }

// secretDef is a Secret defined by the files.
type secretDef struct {
	obj    *Object
	secret *credentials.Secret // nil when the contents are not in the file
}

// Scan reports every workload with its ServiceAccount, pull secrets and
// images by registry; ServiceAccounts and their pull secrets; pull Secrets,
// checked with the credentials library (contents never reported); names
// that no manifest defines; and images no pull secret of their Pods
// matches.
func Scan(set *Set, errs []Finding) *ScanReport {
	r := &ScanReport{Workloads: []WorkloadReport{}, ServiceAccounts: []ServiceAccountReport{}, Secrets: []SecretReport{}, Findings: []ScanFinding{}, Errors: errs}
	if r.Errors == nil {
		r.Errors = []Finding{}
	}
	add := func(o *Object, line int, sev, code, format string, args ...any) {
		r.Findings = append(r.Findings, ScanFinding{Finding: o.at(line, format, args...), Severity: sev, Code: code})
	}

	sas := map[nsName]*Object{}
	saRefs := map[nsName]refList{}
	secrets := map[nsName]*secretDef{}
	var order []nsName
	define := func(k nsName, o *Object) {
		if _, dup := secrets[k]; !dup {
			order = append(order, k)
		}
		secrets[k] = &secretDef{obj: o}
	}
	referenced := map[nsName]bool{}
	for _, w := range set.Workloads {
		for _, n := range w.PullSecrets {
			referenced[nsName{w.Namespace, n}] = true
		}
	}
	for _, o := range set.Objects {
		switch {
		case o.group() == "" && o.Kind == "ServiceAccount":
			k := nsName{o.Namespace, o.Name}
			sas[k] = o
			refs := readRefs(o.node, fieldPullSecrets)
			saRefs[k] = refs
			for _, n := range refs.names {
				referenced[nsName{o.Namespace, n}] = true
			}
		case o.group() == "" && o.Kind == "Secret", o.group() == "bitnami.com" && o.Kind == "SealedSecret":
			define(nsName{o.Namespace, o.Name}, o)
		case o.group() == "external-secrets.io" && o.Kind == "ExternalSecret":
			name := o.Name
			if t, ok := walk(o.node, "spec", "target"); ok && scalar(t, "name") != "" {
				name = scalar(t, "name")
			}
			define(nsName{o.Namespace, name}, o)
		}
	}

	for _, g := range set.Generated {
		define(nsName{g.Namespace, g.Name}, g)
	}

	// Pull Secrets: those of a pull type, and any named as a pull secret.
	for _, k := range order {
		def := secrets[k]
		o := def.obj
		rep := SecretReport{Namespace: k.namespace, Name: k.name, Kind: o.Kind, File: o.File, Line: o.Line}
		if o.Kind == "Secret" {
			s, problem := readSecret(o)
			rep.Type = s.Type
			isPull := s.Type == credentials.TypeDockerConfigJSON || s.Type == credentials.TypeDockercfg
			if !isPull && !referenced[k] {
				continue
			}
			if problem != "" {
				add(o, o.Line, SeverityError, string(credentials.CodeBadStructure), "%s", problem)
			} else {
				def.secret = &s
				rep.Checked = true
				fs := credentials.Validate(s)
				rep.Valid = !credentials.HasError(fs)
				for _, f := range fs {
					add(o, o.Line, string(f.Severity), f.Code, "%s", f.Message)
				}
			}
		} else if !referenced[k] {
			continue
		}
		r.Secrets = append(r.Secrets, rep)
	}

	for _, o := range set.Objects {
		if o.group() != "" || o.Kind != "ServiceAccount" {
			continue
		}
		refs := saRefs[nsName{o.Namespace, o.Name}]
		r.ServiceAccounts = append(r.ServiceAccounts, ServiceAccountReport{Namespace: o.Namespace, Name: o.Name, File: o.File, Line: o.Line,
			ImagePullSecrets: nonNil(refs.names), EnforceMountableSecrets: annotation(o, EnforceMountableSecretsAnnotation)})
		if refs.err != "" {
			add(o, refs.slot.key.Line, SeverityError, CodeInvalidList, "%s", refs.err)
		}
		for _, n := range refs.names {
			if secrets[nsName{o.Namespace, n}] == nil {
				add(o, refs.slot.key.Line, SeverityError, CodeDanglingSecret, "imagePullSecrets names %s, which no manifest in namespace %s defines", n, o.Namespace)
			}
		}
	}

	for _, w := range set.Workloads {
		wr := WorkloadReport{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, File: w.File, Line: w.Line,
			ServiceAccount: w.ServiceAccount, ServiceAccountField: w.ServiceAccountField, ImagePullSecrets: nonNil(w.PullSecrets), Registries: []RegistryImages{}}
		if w.pull.err != "" {
			add(w.Object, w.pull.slot.key.Line, SeverityError, CodeInvalidList, "%s", w.pull.err)
		}
		for _, n := range w.PullSecrets {
			if secrets[nsName{w.Namespace, n}] == nil {
				add(w.Object, w.pull.slot.key.Line, SeverityError, CodeDanglingSecret, "imagePullSecrets names %s, which no manifest in namespace %s defines", n, w.Namespace)
			}
		}
		sa, saKnown := sas[nsName{w.Namespace, w.ServiceAccount}]
		if !saKnown && w.ServiceAccount != defaultServiceAccount {
			add(w.Object, w.Line, SeverityError, CodeDanglingServiceAccount, "runs as ServiceAccount %s, which no manifest in namespace %s defines; its Pods are rejected unless it exists in the cluster", w.ServiceAccount, w.Namespace)
		}
		switch {
		case len(w.PullSecrets) > 0:
			wr.EffectivePullSecrets, wr.PullSecretsFrom = w.PullSecrets, "pod"
		case saKnown:
			wr.EffectivePullSecrets, wr.PullSecretsFrom = nonNil(saRefs[nsName{sa.Namespace, sa.Name}].names), "serviceAccount"
		default:
			wr.EffectivePullSecrets, wr.PullSecretsFrom = []string{}, "unknown"
		}
		wr.Registries = scanImages(w, wr.EffectivePullSecrets, secrets, add)
		r.Workloads = append(r.Workloads, wr)
	}
	return r
}

// scanImages groups the workload's images by registry and checks each
// against the keyring of its Pods' pull secrets, when all of them are
// known.
func scanImages(w *Workload, pullSecrets []string, secrets map[nsName]*secretDef, add func(*Object, int, string, string, string, ...any)) []RegistryImages {
	var keyring *credentials.Keyring
	if len(pullSecrets) > 0 {
		var list []credentials.Secret
		for _, n := range pullSecrets {
			def := secrets[nsName{w.Namespace, n}]
			if def == nil || def.secret == nil {
				list = nil
				break
			}
			list = append(list, *def.secret)
		}
		if list != nil {
			keyring = credentials.NewKeyring(list)
			if err := keyring.Err(); err != nil {
				add(w.Object, w.Line, SeverityError, CodeKeyringFails, "every image pull of its Pods fails: %v", err)
				keyring = nil
			}
		}
	}
	byRegistry := map[string][]string{}
	for _, img := range w.Images {
		named, err := reference.ParseNormalizedNamed(img.Image)
		if err != nil {
			add(w.Object, img.Line, SeverityError, CodeInvalidImage, "container %s: image %q is not a valid reference", img.Container, img.Image)
			continue
		}
		registry := reference.Domain(named)
		if !slices.Contains(byRegistry[registry], img.Image) {
			byRegistry[registry] = append(byRegistry[registry], img.Image)
		}
		if keyring == nil {
			continue
		}
		m, err := keyring.Lookup(img.Image)
		if err != nil || len(m.Credentials) > 0 {
			continue
		}
		why := ""
		if m.Miss != nil {
			why = ": " + m.Miss.Message
		}
		add(w.Object, img.Line, SeverityWarning, CodeUnmatchedImage, "container %s: no credential of %s matches image %s (fine if it is public)%s", img.Container, list(pullSecrets), img.Image, why)
	}
	out := make([]RegistryImages, 0, len(byRegistry))
	for reg, imgs := range byRegistry {
		out = append(out, RegistryImages{Registry: reg, Images: imgs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Registry < out[j].Registry })
	return out
}

// readSecret reads a Secret manifest as the API server would store it:
// data base64-decoded, stringData merged over it, type Opaque when absent.
// The problem it returns names keys, never values.
func readSecret(o *Object) (credentials.Secret, string) {
	s := credentials.Secret{Namespace: o.Namespace, Name: o.Name, Type: scalar(o.node, "type"), Data: map[string][]byte{}}
	if s.Type == "" {
		s.Type = credentials.TypeOpaque
	}
	for _, field := range []string{"data", "stringData"} {
		sl, ok := lookup(o.node, field)
		if !ok || isNull(sl.value) {
			continue
		}
		m := resolve(sl.value)
		if m.Kind != yaml.MappingNode {
			return s, field + " is not a mapping"
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := resolve(m.Content[i]).Value, resolve(m.Content[i+1])
			if v.Kind != yaml.ScalarNode {
				return s, fmt.Sprintf("%s.%s is not a string", field, k)
			}
			if field == "stringData" {
				s.Data[k] = []byte(v.Value)
				continue
			}
			b, err := base64.StdEncoding.DecodeString(v.Value)
			if err != nil {
				return s, fmt.Sprintf("data.%s is not valid base64 (the API server rejects the Secret)", k)
			}
			s.Data[k] = b
		}
	}
	return s, ""
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
