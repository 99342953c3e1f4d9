package credentials

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// candidate is one key's reason for not matching an image.
type candidate struct {
	key     string
	rank    int // lower is nearer
	shared  int // host labels or path bytes in common: more is nearer
	reason  string
	message string
}

// nearest explains a miss from the key nearest to matching: a key whose
// host matches beats one whose port differs, which beats a glob of the
// wrong depth, which beats a different host.
func (k *Keyring) nearest(repo string, target *url.URL) *Miss {
	var best *candidate
	for _, ik := range k.index {
		if ik.urlErr != nil || target == nil {
			continue
		}
		c := explain(ik, target, k.creds[ik.key][0].Registry)
		if best == nil || c.rank < best.rank || (c.rank == best.rank && c.shared > best.shared) {
			best = &c
		}
	}
	if best == nil {
		return &Miss{Reason: ReasonNoKeys, Message: fmt.Sprintf("the pull secrets hold no registry key the kubelet can match against %s", repo)}
	}
	first := k.creds[best.key][0]
	return &Miss{Secret: first.Secret, Registry: first.Registry, Reason: best.reason, Message: best.message}
}

// explain says why the key does not match, by the tests of URLsMatch.
func explain(ik indexedKey, target *url.URL, written string) candidate {
	keyLabels, keyPort := splitURL(ik.url)
	targetLabels, targetPort := splitURL(target)
	c := candidate{key: ik.key}
	switch {
	case labelsMatch(keyLabels, targetLabels) && keyPort == targetPort:
		c.rank, c.reason = 0, ReasonPathNotPrefix
		c.shared = commonPrefix(ik.url.Path, target.Path)
		c.message = fmt.Sprintf("key %q is for path %q, which is not a string prefix of the image path %q", written, ik.url.Path, target.Path)
	case labelsMatch(keyLabels, targetLabels):
		c.rank, c.reason = 1, ReasonPortDiffers
		c.message = fmt.Sprintf("key %q has %s and the image has %s: the kubelet compares ports exactly, and no port is not the same as :443", written, portText(keyPort), portText(targetPort))
	case hasGlob(keyLabels) && suffixesMatch(keyLabels, targetLabels):
		c.rank, c.reason = 2, ReasonGlobDepthDiffers
		c.message = fmt.Sprintf("key %q has %d host labels and the image host %q has %d: each '*' matches exactly one label", written, len(keyLabels), target.Host, len(targetLabels))
	default:
		c.rank, c.reason = 3, ReasonDifferentHost
		c.shared = sharedSuffix(keyLabels, targetLabels)
		c.message = fmt.Sprintf("nearest key %q is for host %q, not the image's %q", written, ik.url.Host, target.Host)
		switch {
		case strings.EqualFold(ik.url.Host, target.Host):
			c.message += ": the kubelet compares host names case-sensitively"
		case target.Host == "docker.io":
			c.message += ": Docker Hub images match keys for docker.io, or the bare index.docker.io (https://index.docker.io/v1/)"
		}
	}
	return c
}

// labelsMatch is the host part of URLsMatch: as many labels, each matching
// as a glob.
func labelsMatch(glob, target []string) bool {
	if len(glob) != len(target) {
		return false
	}
	for i := range glob {
		if ok, err := filepath.Match(glob[i], target[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

// suffixesMatch reports whether the shorter host's labels match the
// longer's last labels, as with *.azurecr.io against a.b.azurecr.io.
func suffixesMatch(glob, target []string) bool {
	n := min(len(glob), len(target))
	return labelsMatch(glob[len(glob)-n:], target[len(target)-n:])
}

// sharedSuffix counts the trailing host labels two hosts have in common.
func sharedSuffix(glob, target []string) int {
	n := 0
	for i, j := len(glob)-1, len(target)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if ok, err := filepath.Match(glob[i], target[j]); err != nil || !ok {
			break
		}
		n++
	}
	return n
}

func hasGlob(labels []string) bool {
	for _, l := range labels {
		if strings.ContainsAny(l, `*?[\`) {
			return true
		}
	}
	return false
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func portText(port string) string {
	if port == "" {
		return "no port"
	}
	return "port " + port
}
