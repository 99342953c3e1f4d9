package match

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
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
}

// imageResult is the answer for one image. A later --verify adds the
// registry's answer for the same credentials here (a
// registrycheck.Result), and the printers a column for it.
type imageResult struct {
	match credentials.Match
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

// ok reports whether every image has a credential to try and no pull
// secret has an error: the exit status is 0 only then.
func (r *report) ok() bool {
	if r.keyringErr != nil || credentials.HasError(r.findings) {
		return false
	}
	for _, img := range r.images {
		if len(img.match.Credentials) == 0 {
			return false
		}
	}
	return true
}

// The -o json contract. Field names and shapes are stable: scripts use
// them.
type (
	jsonReport struct {
		Error    string        `json:"error,omitempty"`
		Images   []jsonImage   `json:"images"`
		Findings []jsonFinding `json:"findings"`
	}
	jsonImage struct {
		Image       string           `json:"image"`
		Credentials []jsonCredential `json:"credentials"`
	}
	jsonCredential struct {
		Secret   string `json:"secret"`
		Registry string `json:"registry"`
		Username string `json:"username"`
	}
	jsonFinding struct {
		Secret   string `json:"secret"`
		Severity string `json:"severity"`
		Code     string `json:"code"`
		Message  string `json:"message"`
	}
)

// printJSON writes the report as the -o json contract.
func printJSON(w io.Writer, r *report) error {
	out := jsonReport{Images: []jsonImage{}, Findings: []jsonFinding{}}
	if r.keyringErr != nil {
		out.Error = r.keyringErr.Error()
	}
	for _, img := range r.images {
		ji := jsonImage{Image: img.match.Image, Credentials: []jsonCredential{}}
		for _, c := range img.match.Credentials {
			ji.Credentials = append(ji.Credentials, jsonCredential{Secret: c.Secret, Registry: c.Registry, Username: c.Username})
		}
		out.Images = append(out.Images, ji)
	}
	for _, f := range r.findings {
		out.Findings = append(out.Findings, jsonFinding{Secret: f.Secret, Severity: string(f.Severity), Code: f.Code, Message: f.Message})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printText writes the report for people: the pull secrets, then per
// image the credentials the kubelet tries in order, or why there are
// none, then the findings and a summary.
func printText(w io.Writer, r *report) error {
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
	without := 0
	for _, img := range r.images {
		m := img.match
		fmt.Fprintf(w, "\nImage %s (%s):\n", m.Image, m.Normalized)
		if len(m.Credentials) == 0 {
			without++
			writeMiss(w, m.Miss)
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
	_, err := fmt.Fprintf(w, "\n%d of %d %s without a credential; %d %s, %d %s.\n",
		without, len(r.images), plural(len(r.images), "image"), errs, plural(errs, "error"), warnings, plural(warnings, "warning"))
	return err
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
