// Package injection compiles a pull secret's registry keys into what the
// pod-injection admission policy (config/pod-injection, a
// MutatingAdmissionPolicy) matches Pod images with, and holds the Go twin of
// that policy's CEL, so that the controller, the plugin and the tests decide
// exactly as the API server does. It is pure: strings in, data out.
//
// The kubelet (pkg/credentialprovider, keyring.go and config.go, v1.37.2)
// matches an image's repository against each key: the same number of host
// labels, each label matched by the key's label as a glob
// (filepath.Match), an identical port, and the key's path a string prefix
// of the image's. Docker Hub images, and localhost ones, also match the
// key index.docker.io. The policy does the same with a regular expression
// per key, compiled here. Where it differs, on purpose:
//
//   - a key whose host uses a character class or an escape ("[", "\") is
//     left out (no real registry key does): its Pods are not injected;
//   - an image the reference grammar refuses is matched on its text, where
//     the kubelet would fail the pull anyway.
package injection

import (
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// dockerHubKey is the kubelet's defaultRegistryHost: its credentials also
// serve Docker Hub (and localhost) images that no other key matched.
const dockerHubKey = "index.docker.io"

// Registries compiles normalised keys (credentials.Keyring.Keys) for the
// policy. dockerHub says the credential serves Docker Hub images through
// the kubelet's fallback; skipped lists keys the policy cannot match.
func Registries(keys []string) (regs []v1alpha1.InjectionRegistry, dockerHub bool, skipped []string) {
	for _, key := range keys {
		if key == dockerHubKey {
			dockerHub = true
		}
		reg, ok := compile(key)
		if !ok {
			skipped = append(skipped, key)
			continue
		}
		regs = append(regs, reg)
	}
	slices.SortFunc(regs, func(a, b v1alpha1.InjectionRegistry) int { return strings.Compare(a.Key, b.Key) })
	return regs, dockerHub, skipped
}

// compile turns one normalised key (host[:port][/path]) into a host
// expression, a port and a path prefix.
func compile(key string) (v1alpha1.InjectionRegistry, bool) {
	hostport, path, _ := strings.Cut(key, "/")
	if path != "" {
		path = "/" + path
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	if host == "" || strings.ContainsAny(host, `[]\`) {
		return v1alpha1.InjectionRegistry{}, false
	}
	labels := strings.Split(host, ".")
	for i, l := range labels {
		var b strings.Builder
		for _, r := range l {
			switch r {
			case '*':
				b.WriteString(`[^.]*`)
			case '?':
				b.WriteString(`[^.]`)
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		labels[i] = b.String()
	}
	return v1alpha1.InjectionRegistry{Key: key, Host: "^" + strings.Join(labels, `\.`) + "$", Port: port, Path: path}, true
}

// Reference is an image as the policy splits it: host (with port) and
// path, without tag or digest.
type Reference struct{ Host, Path string }

// Parse splits an image as the policy's CEL does (variables.references):
// the first component is the host when it holds a '.' or a ':' or is
// localhost, else the image is on Docker Hub (library/ added to a single
// name); index.docker.io is docker.io.
func Parse(image string) Reference {
	r, _, _ := strings.Cut(image, "@")
	if first, rest, ok := strings.Cut(r, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if first == "index.docker.io" {
			first = "docker.io"
		}
		path, _, _ := strings.Cut(rest, ":")
		return Reference{Host: first, Path: "/" + path}
	}
	if !strings.Contains(r, "/") {
		r = "library/" + r
	}
	path, _, _ := strings.Cut(r, ":")
	return Reference{Host: "docker.io", Path: "/" + path}
}

// Matches reports whether the policy injects for an image: the Go twin of
// variables.credentialMatches.
func Matches(regs []v1alpha1.InjectionRegistry, dockerHub bool, image string) bool {
	ref := Parse(image)
	if dockerHub && slices.Contains([]string{"docker.io", "localhost"}, ref.Host) {
		return true
	}
	host, port, _ := strings.Cut(ref.Host, ":")
	for _, reg := range regs {
		if ok, _ := regexp.MatchString(reg.Host, host); ok && port == reg.Port && strings.HasPrefix(ref.Path, reg.Path) {
			return true
		}
	}
	return false
}
