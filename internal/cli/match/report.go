package match

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

// pullSecret is one pull secret in the order the Pod would list it.
type pullSecret struct {
	// ref is "NAMESPACE/NAME".
	ref string
	// secret is nil when the Secret does not exist.
	secret *credentials.Secret
	// from says where a Secret read from a file is ("FILE:LINE").
	from string
}

// report is what the kubelet would do with the pull secrets for each
// image. The printers render it and nothing else.
type report struct {
	// source describes where the pull secrets come from.
	source  string
	secrets []pullSecret
	// keyringErr is set when the kubelet cannot use the pull secrets at
	// all: every pull of the Pod fails.
	keyringErr error
	images     []imageResult
	findings   []credentials.Finding
	// verified is set when the registries were asked (--verify).
	verified bool
}

// imageResult is the answer for one image.
type imageResult struct {
	match credentials.Match
	// verify is the registry's answer to a pull with match.Credentials,
	// in their order (anonymous when there are none); nil without
	// --verify, or when the keyring fails and the kubelet asks no
	// registry.
	verify *registrycheck.Result
}

// verifiedWith returns the place in match.Credentials (1-based) of the
// credential the registry accepted: 0 when the anonymous pull succeeded
// or nothing did. registrycheck tries the credentials in order and stops
// at the first that works, so that is the last attempt.
func (img imageResult) verifiedWith() int {
	v := img.verify
	if v == nil || !v.OK() || len(v.Attempts) == 0 || len(v.Attempts) > len(img.match.Credentials) {
		return 0
	}
	return len(v.Attempts)
}

// evaluate builds the keyring the kubelet would build from the pull
// secrets and looks each image up in it. The images are valid references
// (Validate checked them).
func evaluate(source string, secrets []pullSecret, images []string) (*report, error) {
	r := &report{source: source, secrets: secrets, findings: []credentials.Finding{}}
	var existing []credentials.Secret
	for _, ps := range secrets {
		if ps.secret == nil {
			ns, name, _ := strings.Cut(ps.ref, "/")
			r.findings = append(r.findings, credentials.MissingSecretFinding(ns, name))
			continue
		}
		existing = append(existing, *ps.secret)
		r.findings = append(r.findings, credentials.Validate(*ps.secret)...)
	}
	k := credentials.NewKeyring(existing)
	r.keyringErr = k.Err()
	for _, image := range images {
		m, err := k.Lookup(image)
		if err != nil {
			return nil, err
		}
		r.images = append(r.images, imageResult{match: m})
	}
	return r, nil
}

// verify asks the registry about each image with exactly the credentials
// the kubelet would try, in its order, all images at once
// (registrycheck.CheckMany deduplicates identical requests). An image
// without a credential is checked anonymously, as the kubelet pulls it.
// When the keyring fails the kubelet asks no registry, and neither does
// verify.
func (r *report) verify(ctx context.Context, opts registrycheck.Options) {
	r.verified = true
	if r.keyringErr != nil {
		return
	}
	reqs := make([]registrycheck.Request, 0, len(r.images))
	for _, img := range r.images {
		reqs = append(reqs, registrycheck.Request{Image: img.match.Image, Credentials: registrycheck.Candidates(img.match.Credentials)})
	}
	results := registrycheck.CheckMany(ctx, reqs, opts)
	for i := range r.images {
		r.images[i].verify = &results[i]
	}
}

// ok reports whether every image has a credential to try, no pull secret
// has an error and, with --verify, every registry check succeeded: the
// exit status is 0 only then.
func (r *report) ok() bool {
	if r.keyringErr != nil || credentials.HasError(r.findings) {
		return false
	}
	for _, img := range r.images {
		if len(img.match.Credentials) == 0 || img.unverified() {
			return false
		}
	}
	return true
}

// unverified reports whether --verify asked the registry and the pull
// failed.
func (img imageResult) unverified() bool {
	return img.verify != nil && !img.verify.OK()
}

// The -o json contract. Field names and shapes are stable: scripts use
// them.
type (
	// Report is what -o json|yaml|jsonpath prints.
	Report struct {
		metav1.TypeMeta `json:",inline"`
		Error           string        `json:"error,omitempty"`
		Images          []jsonImage   `json:"images"`
		Findings        []jsonFinding `json:"findings"`
	}
	jsonImage struct {
		Image       string                `json:"image"`
		Credentials []diagnose.Credential `json:"credentials"`
		// Verify is only there with --verify, and not when the keyring
		// fails (error is set: no registry is asked).
		Verify *jsonVerify `json:"verify,omitempty"`
	}
	// jsonVerify is the registry's answer to a pull with the credentials,
	// in their order (anonymous when there are none).
	jsonVerify struct {
		// Status is a registrycheck status: ok, unauthorized, forbidden,
		// not-found, unreachable, tls-error, timeout, invalid-image, error.
		Status string `json:"status"`
		// Reference is the image as pulled ("docker.io/library/nginx:latest").
		Reference string `json:"reference,omitempty"`
		// Digest is the manifest's digest when status is ok.
		Digest string `json:"digest,omitempty"`
		// Try is the 1-based place in credentials of the credential the
		// registry accepted, and Secret and Registry name it; all three
		// are absent when the anonymous pull succeeded or nothing did.
		Try      int    `json:"try,omitempty"`
		Secret   string `json:"secret,omitempty"`
		Registry string `json:"registry,omitempty"`
		// Message explains status in one sentence.
		Message string `json:"message"`
	}
	jsonFinding struct {
		Secret   string `json:"secret"`
		Severity string `json:"severity"`
		Code     string `json:"code"`
		Message  string `json:"message"`
	}
)

// DeepCopyObject makes Report a runtime.Object, for cli-runtime's
// printers.
func (r *Report) DeepCopyObject() runtime.Object { return cmdutil.DeepCopyJSON(r) }

// toReport turns the report into the -o json contract.
func toReport(r *report) *Report {
	out := &Report{TypeMeta: cmdutil.TypeMeta("MatchReport"), Images: []jsonImage{}, Findings: []jsonFinding{}}
	if r.keyringErr != nil {
		out.Error = r.keyringErr.Error()
	}
	for _, img := range r.images {
		ji := jsonImage{Image: img.match.Image, Credentials: []diagnose.Credential{}}
		for _, c := range img.match.Credentials {
			ji.Credentials = append(ji.Credentials, diagnose.NewCredential(c))
		}
		if v := img.verify; v != nil {
			ji.Verify = &jsonVerify{Status: string(v.Status), Reference: v.Reference, Digest: v.Digest, Message: v.Message}
			if try := img.verifiedWith(); try > 0 {
				c := img.match.Credentials[try-1]
				ji.Verify.Try, ji.Verify.Secret, ji.Verify.Registry = try, c.Secret, c.Registry
			}
		}
		out.Images = append(out.Images, ji)
	}
	for _, f := range r.findings {
		out.Findings = append(out.Findings, jsonFinding{Secret: f.Secret, Severity: string(f.Severity), Code: f.Code, Message: f.Message})
	}
	return out
}

// names are the pull secrets that give an image a credential, each once,
// in the kubelet's order (image by image), for -o name.
func names(r *report) []cmdutil.Ref {
	var out []cmdutil.Ref
	seen := map[string]bool{}
	for _, img := range r.images {
		for _, c := range img.match.Credentials {
			if seen[c.Secret] {
				continue
			}
			seen[c.Secret] = true
			ns, name, _ := strings.Cut(c.Secret, "/")
			out = append(out, cmdutil.Ref{Kind: "Secret", Namespace: ns, Name: name})
		}
	}
	return out
}

// printText writes the report for people: the pull secrets, then per
// image the credentials the kubelet tries in order, or why there are
// none, then the findings; the summary goes to errOut.
func printText(w, errOut io.Writer, r *report) error {
	fmt.Fprintf(w, "Pull secrets %s, in the kubelet's order:\n", r.source)
	if len(r.secrets) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, ps := range r.secrets {
		switch {
		case ps.secret == nil:
			fmt.Fprintf(w, "  %s (not found: the kubelet skips it)\n", ps.ref)
		case ps.from != "":
			fmt.Fprintf(w, "  %s (%s)\n", ps.ref, ps.from)
		default:
			fmt.Fprintf(w, "  %s\n", ps.ref)
		}
	}
	if r.keyringErr != nil {
		fmt.Fprintf(w, "\nThe kubelet cannot use these pull secrets: %v.\n", r.keyringErr)
	}
	without, failed := 0, 0
	for _, img := range r.images {
		m := img.match
		fmt.Fprintf(w, "\nImage %s (%s):\n", m.Image, m.Normalized)
		if img.unverified() {
			failed++
		}
		if len(m.Credentials) == 0 {
			without++
			writeMiss(w, m.Miss)
			writeVerify(w, img)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TRY\tSECRET\tREGISTRY\tUSERNAME")
		for i, c := range m.Credentials {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, c.Secret, display(c.Registry), display(c.Username))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if m.Fallback && !strings.HasPrefix(m.Normalized, "docker.io/") {
			fmt.Fprintln(w, "  (no key matches: the kubelet's Docker Hub fallback applies, since the first part of the name has no '.' or ':')")
		}
		writeVerify(w, img)
	}

	errs, warnings := 0, 0
	if len(r.findings) > 0 {
		fmt.Fprintln(w, "\nFindings:")
	}
	for _, f := range r.findings {
		if f.Severity == credentials.SeverityError {
			errs++
		} else {
			warnings++
		}
		fmt.Fprintf(w, "  %s %s %s: %s\n", f.Secret, f.Severity, f.Code, f.Message)
	}
	verified := ""
	if r.verified {
		verified = fmt.Sprintf(", %d failing the registry check", failed)
	}
	_, err := fmt.Fprintf(errOut, "%d of %d %s without a credential%s; %d %s, %d %s.\n",
		without, len(r.images), plural(len(r.images), "image"), verified, errs, plural(errs, "error"), warnings, plural(warnings, "warning"))
	return err
}

// writeVerify says what the registry answered (--verify): the digest and
// the credential it took, or why the pull fails.
func writeVerify(w io.Writer, img imageResult) {
	v := img.verify
	switch {
	case v == nil:
	case !v.OK():
		fmt.Fprintf(w, "  verified: %s: %s\n", v.Status, v.Message)
	case img.verifiedWith() == 0:
		fmt.Fprintf(w, "  verified: ok (%s) without credentials\n", v.Digest)
	default:
		try := img.verifiedWith()
		c := img.match.Credentials[try-1]
		fmt.Fprintf(w, "  verified: ok (%s) with secret %s key %s", v.Digest, c.Secret, display(c.Registry))
		if try > 1 {
			// The ones before it failed: a credential is tried only
			// when the one before did not work.
			fmt.Fprintf(w, " (try %d)", try)
		}
		fmt.Fprintln(w)
	}
}

// writeMiss explains why an image gets no credential.
func writeMiss(w io.Writer, miss *credentials.Miss) {
	switch {
	case miss == nil:
		fmt.Fprintln(w, "  no credential")
	case miss.Reason == credentials.ReasonKeyringFailed:
		fmt.Fprintln(w, "  no credential: the pull fails before any registry is asked (see above)")
		return
	case miss.Secret != "":
		fmt.Fprintf(w, "  no credential (%s, %s): %s\n", miss.Reason, miss.Secret, miss.Message)
	default:
		fmt.Fprintf(w, "  no credential (%s): %s\n", miss.Reason, miss.Message)
	}
	fmt.Fprintln(w, "  the kubelet pulls it without credentials (fine for a public image)")
}

// display shows text from a Secret safely on a terminal: quoted when it
// is empty or holds spaces or control characters.
func display(s string) string {
	if s == "" {
		return `""`
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
