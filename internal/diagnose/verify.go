package diagnose

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

// registryCodes are the problems read from the kubelet's text, which a
// registry check replaces.
var registryCodes = []string{
	CodeCredentialsRejected, CodeCredentialsRequired, CodeForbidden, CodeAccessDenied,
	CodeImageNotFound, CodeRegistryUnreachable, CodeRegistryTLS, CodePullFailed,
}

// VerifyRequests returns one registry check per failing container that
// the kubelet got as far as pulling: the image, and the credentials the
// kubelet tries, in its order (none: an anonymous pull). Each request
// carries passwords: hand it to registrycheck and nothing else.
func (d *Diagnosis) VerifyRequests() []registrycheck.Request {
	var reqs []registrycheck.Request
	for _, c := range d.verifiable() {
		reqs = append(reqs, registrycheck.Request{Image: c.Image, Credentials: registrycheck.Candidates(c.list())})
	}
	return reqs
}

// verifiable lists the containers VerifyRequests checks, in its order.
func (d *Diagnosis) verifiable() []*Container {
	var out []*Container
	if !d.Failing {
		return nil
	}
	for i := range d.Containers {
		if d.Containers[i].PullError != PullKeyring && d.Containers[i].LookedUp() {
			out = append(out, &d.Containers[i])
		}
	}
	return out
}

// ApplyVerification replaces what the kubelet's text suggested about the
// registry with the registry's own answers, given in the order of
// VerifyRequests. The check runs from here, not from the node: network
// answers say so.
func (d *Diagnosis) ApplyVerification(results []registrycheck.Result) {
	fix := fixer{ns: d.Namespace, pod: d.Pod}
	fix.kind, fix.name, _ = strings.Cut(d.Workload, "/")
	for i, c := range d.verifiable() {
		if i >= len(results) {
			return
		}
		res := results[i]
		d.Problems = slices.DeleteFunc(d.Problems, func(p Problem) bool {
			return p.Container == c.Name && slices.Contains(registryCodes, p.Code)
		})
		p := Problem{Container: c.Name, Severity: SeverityError, Verified: true, Message: "registry check: " + res.Message}
		switch res.Status {
		case registrycheck.StatusOK:
			// The registry takes the token now: it had not expired, whatever dated it.
			d.Problems = slices.DeleteFunc(d.Problems, func(p Problem) bool { return p.Container == c.Name && p.Code == CodeCredentialExpired })
			p.Code, p.Severity = CodeRegistryOK, SeverityWarning
			p.Message += "; the registry serves the image with what the Pod sends, so the node failed for its own reasons (network, mirror, runtime configuration) or the cause is gone: retry the Pod"
			p.Fix = fmt.Sprintf("kubectl -n %s delete pod %s", d.Namespace, d.Pod)
			if d.Recreated {
				p.Fix += "   # its " + d.Owner + " recreates it"
			}
		case registrycheck.StatusUnauthorized:
			p.Code = CodeCredentialsRequired
			p.Fix = fix.createFor(c.Image, d.ServiceAccount)
			if creds := c.list(); len(creds) > 0 {
				p.Code, p.Secret = CodeCredentialsRejected, secretName(creds[0].Secret)
				p.Fix = fix.recreate(p.Secret, c.Image, creds[0].Username)
			}
		case registrycheck.StatusForbidden:
			p.Code = CodeForbidden
			p.Message += "; grant that account pull access to the repository, or use credentials that have it"
			if creds := c.list(); len(creds) > 0 {
				p.Secret = secretName(creds[0].Secret)
				p.Fix = fix.recreate(p.Secret, c.Image, "")
			}
		case registrycheck.StatusNotFound:
			p.Code = CodeImageNotFound
			p.Message += "; correct the image reference"
			p.Fix = fix.setImage(c.Name)
		case registrycheck.StatusUnreachable, registrycheck.StatusTimeout:
			p.Code = CodeRegistryUnreachable
			p.Message += " (checked from this machine, not from the node)"
		case registrycheck.StatusTLSError:
			p.Code = CodeRegistryTLS
			p.Message += " (checked from this machine; pass --registry-ca-file or --insecure-registry to check with the node's trust)"
		default:
			p.Code = CodePullFailed
		}
		d.Problems = append(d.Problems, p)
	}
}
