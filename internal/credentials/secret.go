package credentials

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// The Secret types and data keys the kubelet reads pull credentials from
// (k8s.io/api core/v1 SecretTypeDockerConfigJson, DockerConfigJsonKey,
// SecretTypeDockercfg, DockerConfigKey).
const (
	// TypeDockerConfigJSON is the Secret type of a config.json style
	// Secret, whose data key KeyDockerConfigJSON holds {"auths": {...}}.
	TypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	// KeyDockerConfigJSON is the data key of a TypeDockerConfigJSON Secret.
	KeyDockerConfigJSON = ".dockerconfigjson"
	// TypeDockercfg is the Secret type of a legacy ~/.dockercfg Secret,
	// whose data key KeyDockercfg holds the bare {KEY: ENTRY} map.
	TypeDockercfg = "kubernetes.io/dockercfg"
	// KeyDockercfg is the data key of a TypeDockercfg Secret.
	KeyDockercfg = ".dockercfg"
	// TypeOpaque is the type the API server gives a Secret created
	// without one.
	TypeOpaque = "Opaque"
)

// Secret is a pull secret as read from the API or a file: only what the
// kubelet looks at.
type Secret struct {
	Namespace string
	Name      string
	Type      string
	Data      map[string][]byte
}

// Ref returns "NAMESPACE/NAME", with namespace "default" when it is empty
// (a manifest without a namespace).
func (s Secret) Ref() string {
	ns := s.Namespace
	if ns == "" {
		ns = "default"
	}
	return ns + "/" + s.Name
}

// String describes the Secret without its data: only the data keys and
// their sizes, so that a Secret printed by mistake leaks nothing.
func (s Secret) String() string {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "Secret %s type=%q data={", s.Ref(), s.Type)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q: %d bytes", k, len(s.Data[k]))
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v redacts the data too.
func (s Secret) GoString() string { return s.String() }

// Format prints String for every verb, so that no verb (%d, %x on the
// data) can print the data.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// LogValue keeps the data out of structured logs: the Secret's reference,
// type and data keys only.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("secret", s.Ref()), slog.String("type", s.Type), slog.Any("dataKeys", sortedKeys(s.Data)))
}

// MarshalJSON encodes what LogValue shows, never the data: a Secret is not
// meant to be serialised, and one encoded by mistake must leak nothing.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Secret   string   `json:"secret"`
		Type     string   `json:"type"`
		DataKeys []string `json:"dataKeys"`
	}{s.Ref(), s.Type, sortedKeys(s.Data)})
}

// formatRedacted writes a redacted description for any fmt verb: quoted
// for %q, as is otherwise.
func formatRedacted(f fmt.State, verb rune, description string) {
	if verb == 'q' {
		description = fmt.Sprintf("%q", description)
	}
	_, _ = f.Write([]byte(description))
}
