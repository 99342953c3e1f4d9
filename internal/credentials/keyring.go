package credentials

import (
	"fmt"
	"log/slog"
	"net/url"
	"sort"
)

// Keyring is what the kubelet builds from a Pod's pull secrets
// (secrets.MakeDockerKeyring over a credentialprovider.BasicDockerKeyring),
// without the node's own credentials and credential provider plugins, which
// the kubelet consults after these.
type Keyring struct {
	err      error
	findings []Finding
	// index holds the normalised keys in the kubelet's lookup order.
	index []indexedKey
	// creds holds, per normalised key, the credentials in the order the
	// kubelet adds them: by Secret, then by key as written.
	creds map[string][]Credential
}

// indexedKey is a normalised key with what Lookup needs of it parsed once,
// where the kubelet parses it again for every lookup; the outcome is the
// same. url is nil when the key does not parse (then it never matches).
type indexedKey struct {
	key   string
	url   *url.URL
	split splitKey
}

// NewKeyring builds the keyring the kubelet would build from secrets, given
// in the order the Pod lists them. Secrets the kubelet does not read (wrong
// type, missing key) contribute nothing; the first Secret the kubelet cannot
// decode makes Err non-nil.
func NewKeyring(secrets []Secret) *Keyring {
	k := &Keyring{creds: map[string][]Credential{}}
	seen := map[string]bool{}
	var keys []string
	for _, s := range secrets {
		src := readSecret(s)
		k.findings = append(k.findings, src.findings...)
		if src.failure != "" && k.err == nil {
			// secretsToTrackedDockerConfigs returns on the first error, and
			// the kubelet then fails the pull of every image of the Pod.
			k.err = fmt.Errorf("pull secret %s: %s", src.ref, src.failure)
		}
		for _, e := range src.entries {
			k.creds[e.key] = append(k.creds[e.key], Credential{Secret: src.ref, Registry: redactKey(e.raw), Username: e.username, Password: e.password})
			if !seen[e.key] {
				seen[e.key] = true
				keys = append(keys, e.key)
			}
		}
	}
	// BasicDockerKeyring.Add: the index is the set of keys sorted in
	// reverse byte order, so "quay.io/coreos" comes before "quay.io". This
	// is close to, but not the same as, longest first.
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	for _, key := range keys {
		ik := indexedKey{key: key}
		if u, err := parseSchemelessURL(key); err == nil {
			ik.url, ik.split = u, newSplitKey(u)
		}
		k.index = append(k.index, ik)
	}
	return k
}

// Keys returns the normalised registry keys (host[:port][/path]), in the
// kubelet's lookup order. Keys name registries, never credentials.
func (k *Keyring) Keys() []string {
	out := make([]string, 0, len(k.index))
	for _, ik := range k.index {
		out = append(out, ik.key)
	}
	return out
}

// Err is non-nil when the kubelet could not use these pull secrets at all:
// decoding one of them fails, and the kubelet then fails every image pull of
// the Pod, even from registries the other Secrets cover. The message names
// the Secret and the problem, and never quotes its data.
func (k *Keyring) Err() error { return k.err }

// Findings returns the findings of every Secret, in order.
func (k *Keyring) Findings() []Finding { return k.findings }

// String describes the keyring by its size: its fields hold passwords,
// which fmt would print for %v of a *Keyring.
func (k *Keyring) String() string {
	n := 0
	for _, creds := range k.creds {
		n += len(creds)
	}
	failed := ""
	if k.err != nil {
		failed = ", failed"
	}
	return fmt.Sprintf("credentials.Keyring{%d keys, %d credentials%s}", len(k.index), n, failed)
}

// Format prints String for every verb.
func (k *Keyring) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k.String()) }

// Match is the answer for one image: the credentials the kubelet would try,
// in its order, or why there are none.
type Match struct {
	// Image is the image reference as given.
	Image string
	// Normalized is the repository the kubelet looks credentials up for,
	// e.g. docker.io/library/nginx for nginx:1.27.
	Normalized string
	// Credentials are tried in this order until a pull succeeds; empty when
	// none applies.
	Credentials []Credential
	// Fallback is true when the credentials come from the kubelet's
	// Docker Hub fallback (the key index.docker.io, used when no key
	// matched), which also applies to localhost/... images.
	Fallback bool
	// Miss explains an empty Credentials.
	Miss *Miss
}

// Credential is one set of credentials the kubelet would send. Its String,
// GoString and LogValue leave the password out, and so does JSON encoding.
type Credential struct {
	// Secret is the "NAMESPACE/NAME" of the pull secret it comes from.
	Secret string
	// Registry is the key as written in the Secret (user info redacted).
	Registry string
	Username string
	Password string `json:"-"`
}

// String describes the credential without its password.
func (c Credential) String() string {
	pass := "<empty>"
	if c.Password != "" {
		pass = "<redacted>"
	}
	return fmt.Sprintf("%s %s username=%q password=%s", c.Secret, c.Registry, c.Username, pass)
}

// GoString is String, so that %#v redacts the password too.
func (c Credential) GoString() string { return "credentials.Credential{" + c.String() + "}" }

// Format prints String (GoString for %#v) for every verb, so that no verb
// can print the password.
func (c Credential) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		formatRedacted(f, verb, c.GoString())
		return
	}
	formatRedacted(f, verb, c.String())
}

// LogValue keeps the password out of structured logs.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("secret", c.Secret), slog.String("registry", c.Registry), slog.String("username", c.Username))
}

// Reasons a Miss gives.
const (
	// ReasonKeyringFailed: a pull secret cannot be decoded, so the kubelet
	// tries no credentials at all (see Keyring.Err).
	ReasonKeyringFailed = "KeyringFailed"
	// ReasonNoKeys: the pull secrets hold no registry key at all.
	ReasonNoKeys = "NoKeys"
	// ReasonPathNotPrefix: the host matches, but the key's path is not a
	// string prefix of the image's.
	ReasonPathNotPrefix = "PathNotPrefix"
	// ReasonPortDiffers: the host matches, the port does not (no port is
	// not the same as :443).
	ReasonPortDiffers = "PortDiffers"
	// ReasonGlobDepthDiffers: a glob key has a different number of host
	// labels than the image ('*' matches exactly one label).
	ReasonGlobDepthDiffers = "GlobDepthDiffers"
	// ReasonDifferentHost: no key names the image's host.
	ReasonDifferentHost = "DifferentHost"
)

// Miss explains why no credential matched an image, from the key that came
// nearest.
type Miss struct {
	// Secret is the "NAMESPACE/NAME" holding the nearest key.
	Secret string
	// Registry is the nearest key as written.
	Registry string
	// Reason is one of the Reason constants.
	Reason string
	// Message explains it in a sentence.
	Message string
}

// Lookup returns the credentials the kubelet would try for image, in its
// order (BasicDockerKeyring.Lookup). It fails only when image is not a
// valid image reference.
func (k *Keyring) Lookup(image string) (Match, error) {
	repo, err := normalizeImage(image)
	if err != nil {
		return Match{}, fmt.Errorf("parse image %q: %w", image, err)
	}
	m := Match{Image: image, Normalized: repo, Credentials: []Credential{}}
	if k.err != nil {
		m.Miss = &Miss{Reason: ReasonKeyringFailed, Message: "the kubelet tries no credentials: " + k.err.Error()}
		return m, nil
	}
	target, targetErr := parseSchemelessURL(repo)
	if targetErr == nil {
		split := newSplitKey(target)
		for _, ik := range k.index {
			if ik.url == nil {
				continue
			}
			// URLsMatchStr's error (a bad glob) means no match, as in
			// Lookup, which ignores it.
			if matched, _ := urlsMatch(ik.split, split); matched {
				m.Credentials = append(m.Credentials, k.creds[ik.key]...)
			}
		}
	}
	if len(m.Credentials) > 0 {
		return m, nil
	}
	if isDefaultRegistryMatch(repo) {
		if creds, ok := k.creds[defaultRegistryHost]; ok {
			m.Credentials = append(m.Credentials, creds...)
			m.Fallback = true
			return m, nil
		}
	}
	m.Miss = k.nearest(repo, target)
	return m, nil
}
