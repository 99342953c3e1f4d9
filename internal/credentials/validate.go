package credentials

import (
	"fmt"
	"sort"
)

// source is one pull secret read the kubelet's way.
type source struct {
	ref string
	// failure is set when the kubelet's decode of the Secret fails, which
	// fails every image pull of the Pod. It never holds secret bytes.
	failure string
	// entries are the kubelet's decoded entries, sorted by key as written;
	// empty when the kubelet does not read the Secret or fails on it.
	entries  []sourceEntry
	findings []Finding
}

// sourceEntry is one registry entry the kubelet adds to its keyring.
type sourceEntry struct {
	raw      string
	key      string
	username string
	password string
}

// readSecret reads a Secret as secrets.secretsToTrackedDockerConfigs does,
// and inspects it for findings.
func readSecret(s Secret) source {
	src := source{ref: s.Ref()}
	dataKey, legacy, problem := kubeletDataKey(s)
	if problem != nil {
		problem.Secret = src.ref
		src.findings = []Finding{*problem}
		return src
	}
	data := s.Data[dataKey]
	in := &inspector{secret: src.ref, where: dataKey}
	inspected := in.inspectDocument(data, legacy)

	cfg, err := decodeForKubelet(data, legacy)
	if err != nil {
		if !in.failed() {
			// Inspection must explain every failure of the kubelet's decode;
			// this is the net for a case it does not know (such as a key
			// repeated in the JSON, first with a bad value).
			in.add(SeverityError, CodeBadStructure, "", "the kubelet cannot decode it (a value has the wrong JSON type, or is repeated with a bad value); the kubelet fails every image pull of the Pod")
		}
		for _, f := range in.findings {
			if failsKeyring(f.Code) {
				src.failure = f.Message
				break
			}
		}
		src.findings = in.findings
		return src
	}

	usable := false
	for _, e := range inspected {
		usable = usable || e.usable()
	}
	if !usable && len(inspected) > 0 {
		in.add(SeverityError, CodeNoUsableEntry, "", "no entry has credentials under a key that can match an image: the kubelet gets no usable credentials from it")
	}
	src.findings = in.findings

	raws := make([]string, 0, len(cfg))
	for raw := range cfg {
		raws = append(raws, raw)
	}
	// The kubelet ranges over a Go map here, so entries of one Secret that
	// normalise to the same key come in random order; sorting makes ours
	// stable (and CodeDuplicateKey reports the case).
	sort.Strings(raws)
	for _, raw := range raws {
		key, err := normalizeKey(raw)
		if err != nil {
			continue // BasicDockerKeyring.Add logs and skips it
		}
		e := cfg[raw]
		src.entries = append(src.entries, sourceEntry{raw: raw, key: key, username: e.Username, password: e.Password})
	}
	return src
}

// kubeletDataKey returns the data key the kubelet reads from s, following
// secretsToTrackedDockerConfigs: the type decides, and the key must be
// present and not empty. Otherwise it returns the finding that explains why
// the kubelet ignores the Secret.
func kubeletDataKey(s Secret) (dataKey string, legacy bool, problem *Finding) {
	switch s.Type {
	case TypeDockerConfigJSON:
		if len(s.Data[KeyDockerConfigJSON]) > 0 {
			return KeyDockerConfigJSON, false, nil
		}
		return "", false, missingKey(s, KeyDockerConfigJSON, KeyDockercfg, TypeDockercfg)
	case TypeDockercfg:
		if len(s.Data[KeyDockercfg]) > 0 {
			return KeyDockercfg, true, nil
		}
		return "", false, missingKey(s, KeyDockercfg, KeyDockerConfigJSON, TypeDockerConfigJSON)
	}
	typ := fmt.Sprintf("type %q", s.Type)
	if s.Type == "" {
		typ = "no type (the API server makes it " + TypeOpaque + ")"
	}
	hint := ""
	switch {
	case len(s.Data[KeyDockerConfigJSON]) > 0:
		hint = fmt.Sprintf("; its %s needs type %s", KeyDockerConfigJSON, TypeDockerConfigJSON)
	case len(s.Data[KeyDockercfg]) > 0:
		hint = fmt.Sprintf("; its %s needs type %s", KeyDockercfg, TypeDockercfg)
	}
	return "", false, &Finding{
		Severity: SeverityError,
		Code:     CodeWrongType,
		Message:  fmt.Sprintf("Secret has %s: the kubelet reads pull credentials only from types %s and %s, and ignores it%s", typ, TypeDockerConfigJSON, TypeDockercfg, hint),
	}
}

func missingKey(s Secret, want, other, otherType string) *Finding {
	msg := fmt.Sprintf("Secret of type %s has no %s data (or it is empty): the kubelet ignores it", s.Type, want)
	if len(s.Data[other]) > 0 {
		msg += fmt.Sprintf("; its %s needs type %s", other, otherType)
	}
	return &Finding{Severity: SeverityError, Code: CodeMissingKey, Message: msg}
}

// Validate returns the findings about one pull secret: errors when the
// kubelet gets no credentials from it or fails the Pod's pulls because of
// it, warnings when it works but not as its author probably meant. The
// controller treats a Secret with any error finding as invalid.
func Validate(s Secret) []Finding {
	return readSecret(s).findings
}
