package credentials

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// candidate is one key's reason for not matching an image.
type candidate struct {
	key    indexedKey
	rank   int // lower is nearer
	shared int // host labels or path bytes in common: more is nearer
	reason string
}

// nearest explains a miss from the key nearest to matching: a key whose
// host matches beats one whose port differs, which beats a glob of the
// wrong depth, which beats a different host. Only the nearest key's
// message is written: with many keys, that is most of the work.
func (k *Keyring) nearest(repo string, target *url.URL) *Miss {
	var best candidate
	found := false
	if target != nil {
		split := newSplitKey(target)
		for _, ik := range k.index {
			if ik.url == nil {
				continue
			}
			c := classify(ik, split)
			if !found || c.rank < best.rank || (c.rank == best.rank && c.shared > best.shared) {
				best, found = c, true
			}
		}
	}
	if !found {
		return &Miss{Reason: ReasonNoKeys, Message: fmt.Sprintf("the pull secrets hold no registry key the kubelet can match against %s", repo)}
	}
	first := k.creds[best.key.key][0]
	return &Miss{Secret: first.Secret, Registry: first.Registry, Reason: best.reason, Message: best.message(target, first.Registry)}
}

// classify says why the key does not match, by the tests of URLsMatch.
func classify(ik indexedKey, target splitKey) candidate {
	key := ik.split
	c := candidate{key: ik}
	switch {
	case labelsMatch(key.labels, target.labels) && key.port == target.port:
		c.rank, c.reason = 0, ReasonPathNotPrefix
		c.shared = commonPrefix(key.path, target.path)
	case labelsMatch(key.labels, target.labels):
		c.rank, c.reason = 1, ReasonPortDiffers
	case hasGlob(key.labels) && suffixesMatch(key.labels, target.labels):
		c.rank, c.reason = 2, ReasonGlobDepthDiffers
	default:
		c.rank, c.reason = 3, ReasonDifferentHost
		c.shared = sharedSuffix(key.labels, target.labels)
		if sameButCase(key.labels, target.labels) {
			// The same host but for case is the likeliest intent.
			c.shared = len(key.labels) + 1
		}
	}
	return c
}

// message explains the candidate in a sentence, naming the key as written.
func (c candidate) message(target *url.URL, written string) string {
	key := c.key.split
	targetSplit := newSplitKey(target)
	switch c.reason {
	case ReasonPathNotPrefix:
		return fmt.Sprintf("key %q is for path %q, which is not a string prefix of the image path %q", written, key.path, target.Path)
	case ReasonPortDiffers:
		return fmt.Sprintf("key %q has %s and the image has %s: the kubelet compares ports exactly, and no port is not the same as :443", written, portText(key.port), portText(targetSplit.port))
	case ReasonGlobDepthDiffers:
		return fmt.Sprintf("key %q has %d host labels and the image host %q has %d: each '*' matches exactly one label", written, len(key.labels), target.Host, len(targetSplit.labels))
	}
	msg := fmt.Sprintf("nearest key %q is for host %q, not the image's %q", written, c.key.url.Host, target.Host)
	switch {
	case strings.EqualFold(c.key.url.Host, target.Host):
		msg += ": the kubelet compares host names case-sensitively"
	case target.Host == "docker.io":
		msg += ": Docker Hub images match keys for docker.io, or the bare index.docker.io (https://index.docker.io/v1/)"
	}
	return msg
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

// sameButCase reports whether two hosts differ only in case.
func sameButCase(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
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
