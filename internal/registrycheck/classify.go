package registrycheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// attemptInfo is what an attempt's messages are made of.
type attemptInfo struct {
	im        image
	label     string
	anonymous bool
	timeout   time.Duration
	obs       *observer
	// repoProbe is the error of reading one page of the repository's tag
	// list after the manifest was not found; nil if not probed.
	repoProbe *error
}

func (a attemptInfo) ok(digest string) outcome {
	how := "with the credentials of " + a.label
	if a.anonymous {
		how = "without credentials"
	}
	return outcome{status: StatusOK, digest: digest, msg: fmt.Sprintf("%s resolves to %s %s", a.im.normalized, digest, how)}
}

// retryWithGet reports whether a failed HEAD is worth a GET: HEAD answers
// carry no error body (so no error code), and some servers mishandle HEAD.
// Not when the network failed, nor when the token service said no.
func retryWithGet(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if terr, ok := errors.AsType[*transport.Error](err); ok {
		return terr.Request == nil || terr.Request.Method == http.MethodHead
	}
	return !isNetwork(err)
}

// isNetwork reports whether err happened below HTTP: DNS, TCP, TLS.
func isNetwork(err error) bool {
	_, op := errors.AsType[*net.OpError](err)
	_, dns := errors.AsType[*net.DNSError](err)
	_, plain := errors.AsType[*errPlainHTTP](err)
	return op || dns || plain || tlsMessage(err) != ""
}

// isNotFound reports whether the registry said 404 or a not-found code.
func isNotFound(err error) bool {
	terr, ok := errors.AsType[*transport.Error](err)
	if !ok {
		return false
	}
	return terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.NameUnknownErrorCode) || hasCode(terr, transport.ManifestUnknownErrorCode)
}

func hasCode(terr *transport.Error, code transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// classify turns an attempt's error into a status and a sentence. It never
// quotes the request (it holds the Authorization header) and quotes error
// texts only where they cannot hold a secret.
func (a attemptInfo) classify(ctx context.Context, err error) outcome {
	host := hostOf(err, a.im.domain)

	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return outcome{status: StatusTimeout, msg: fmt.Sprintf("%s did not answer in time (the check allows %s per image)", host, a.timeout)}
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return outcome{status: StatusTimeout, msg: fmt.Sprintf("the check of %s was canceled before %s answered", a.im.normalized, host)}
	}
	if nerr, ok := errors.AsType[net.Error](err); ok && nerr.Timeout() {
		return outcome{status: StatusTimeout, msg: fmt.Sprintf("%s did not answer in time (%s)", host, firstLine(nerr.Error()))}
	}
	if msg := tlsMessage(err); msg != "" {
		return outcome{status: StatusTLSError, msg: fmt.Sprintf(msg, host)}
	}
	if msg := networkMessage(err); msg != "" {
		return outcome{status: StatusUnreachable, msg: fmt.Sprintf(msg, host)}
	}
	if perr, ok := errors.AsType[*errPlainHTTP](err); ok {
		return outcome{status: StatusTLSError, msg: fmt.Sprintf("refusing to speak plain HTTP to %s, which is not listed as an insecure registry", perr.host)}
	}
	if terr, ok := errors.AsType[*transport.Error](err); ok {
		return a.classifyHTTP(terr)
	}
	return outcome{status: StatusError, msg: fmt.Sprintf("could not resolve %s on %s: %s", a.im.normalized, host, firstLine(err.Error()))}
}

// hostOf returns the host of the request that failed, or fallback: a
// token service or a redirect may live elsewhere than the registry.
func hostOf(err error, fallback string) string {
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		if u, perr := url.Parse(uerr.URL); perr == nil && u.Host != "" {
			return u.Host
		}
	}
	return fallback
}

// tlsMessage returns a sentence (with %s for the host) if err is about
// TLS, or "".
func tlsMessage(err error) string {
	if errors.Is(err, http.ErrSchemeMismatch) {
		return "%s answered in plain HTTP, not HTTPS; a plain-HTTP registry must be listed as an insecure registry"
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return "%s does not speak TLS; a plain-HTTP registry must be listed as an insecure registry"
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return "the TLS certificate of %s is signed by an unknown authority; trust its CA, or list the registry as insecure to skip verification"
	}
	if herr, ok := errors.AsType[x509.HostnameError](err); ok {
		return "the TLS certificate of %s is not valid for that name (it is for " + escape(certificateNames(herr.Certificate)) + ")"
	}
	if cerr, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return "the TLS certificate of %s is invalid (" + escape(strings.TrimPrefix(cerr.Error(), "x509: ")) + ")"
	}
	if verr, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return "the TLS certificate of %s could not be verified (" + escape(firstLine(verr.Err.Error())) + ")"
	}
	if aerr, ok := errors.AsType[tls.AlertError](err); ok {
		return "the TLS handshake with %s failed (" + escape(aerr.Error()) + ")"
	}
	return ""
}

// networkMessage returns a sentence (with %s for the host) if err is about
// reaching the host, or "".
func networkMessage(err error) string {
	if derr, ok := errors.AsType[*net.DNSError](err); ok {
		return "the name of %s does not resolve (" + escape(derr.Err) + ")"
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "%s refused the connection: nothing listens there, or a firewall rejects it"
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "%s closed the connection unexpectedly"
	}
	if oerr, ok := errors.AsType[*net.OpError](err); ok {
		return "could not connect to %s (" + escape(firstLine(oerr.Err.Error())) + ")"
	}
	return ""
}

// classifyHTTP explains an HTTP answer of the registry or its token service.
func (a attemptInfo) classifyHTTP(terr *transport.Error) outcome {
	host, repo := a.im.domain, a.im.repository
	status := fmt.Sprintf("%d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
	path := ""
	if terr.Request != nil && terr.Request.URL != nil {
		path = terr.Request.URL.Path
		host = terr.Request.URL.Host
	}

	if !isRegistryAPI(path) && path != "" {
		// The token service, where basic credentials become a bearer token.
		switch {
		case terr.StatusCode == http.StatusUnauthorized && a.anonymous:
			return outcome{status: StatusUnauthorized, msg: fmt.Sprintf("the token service of %s refuses anonymous access (%s)", a.im.domain, status)}
		case terr.StatusCode == http.StatusUnauthorized:
			return outcome{status: StatusUnauthorized, msg: fmt.Sprintf("the token service of %s rejected the credentials of %s (%s)", a.im.domain, a.label, status)}
		case terr.StatusCode == http.StatusForbidden:
			return outcome{status: StatusForbidden, msg: fmt.Sprintf("the token service of %s denied %s access to repository %s (%s)", a.im.domain, a.who(), repo, status)}
		}
		return outcome{status: StatusError, msg: fmt.Sprintf("the token service of %s (%s) answered %s", a.im.domain, host, status)}
	}

	switch {
	case hasCode(terr, transport.DeniedErrorCode) || terr.StatusCode == http.StatusForbidden:
		return outcome{status: StatusForbidden, msg: fmt.Sprintf("%s denied %s pull access to repository %s (%s)", host, a.who(), repo, codeOr(terr, status))}
	case hasCode(terr, transport.NameUnknownErrorCode):
		return outcome{status: StatusNotFound, msg: fmt.Sprintf("repository %s does not exist on %s (NAME_UNKNOWN)", repo, host)}
	case isNotFound(terr) && path == "/v2/":
		return outcome{status: StatusError, msg: fmt.Sprintf("%s answered %s to GET /v2/: it does not look like a container registry", host, status)}
	case isNotFound(terr):
		return a.notFound(terr, host, status)
	case terr.StatusCode == http.StatusUnauthorized && a.anonymous:
		return outcome{status: StatusUnauthorized, msg: fmt.Sprintf("%s requires credentials to pull repository %s and %s (%s)", host, repo, a.noCredentials(), status)}
	case terr.StatusCode == http.StatusUnauthorized && a.obs.scopeDenied.Load():
		return outcome{status: StatusForbidden, msg: fmt.Sprintf("%s accepted the credentials of %s but their token grants no pull access to repository %s (401 insufficient_scope; some registries also say this of a repository that does not exist)", host, a.label, repo)}
	case terr.StatusCode == http.StatusUnauthorized:
		return outcome{status: StatusUnauthorized, msg: fmt.Sprintf("%s rejected the credentials of %s (%s)", host, a.label, status)}
	case terr.StatusCode == http.StatusTooManyRequests || hasCode(terr, transport.TooManyRequestsErrorCode):
		return outcome{status: StatusError, msg: fmt.Sprintf("%s is rate-limiting pulls (%s)", host, codeOr(terr, status))}
	}
	return outcome{status: StatusError, msg: fmt.Sprintf("%s answered %s for %s", host, codeOr(terr, status), a.im.normalized)}
}

// notFound says whether the repository or the manifest is missing, as far
// as the registry tells: its error code, else the tag list probe.
func (a attemptInfo) notFound(terr *transport.Error, host, status string) outcome {
	code := codeOr(terr, status)
	repo := a.im.repository
	if a.repoProbe != nil {
		perr := *a.repoProbe
		if perr == nil {
			return outcome{status: StatusNotFound, msg: fmt.Sprintf("%s is not in repository %s on %s, though the repository exists (%s)", a.im.what(), repo, host, code)}
		}
		if pterr, ok := errors.AsType[*transport.Error](perr); ok && isNotFound(pterr) {
			return outcome{status: StatusNotFound, msg: fmt.Sprintf("repository %s does not exist on %s (%s)", repo, host, codeOr(pterr, "404 Not Found"))}
		}
	}
	return outcome{status: StatusNotFound, msg: fmt.Sprintf("%s has no %s in repository %s (%s) and does not say whether the repository or the tag is missing", host, a.im.what(), repo, code)}
}

// noCredentials explains an anonymous attempt: no credential matched, or
// the one given was empty.
func (a attemptInfo) noCredentials() string {
	if a.label != "" {
		return a.label + " holds no username or password"
	}
	return "none were given"
}

// who names the party of an attempt in messages.
func (a attemptInfo) who() string {
	if a.anonymous {
		return "anonymous users"
	}
	return a.label
}

// codeOr returns the registry's error codes ("MANIFEST_UNKNOWN"), or
// fallback when it sent none.
func codeOr(terr *transport.Error, fallback string) string {
	var codes []string
	for _, d := range terr.Errors {
		if d.Code != "" {
			codes = append(codes, escape(string(d.Code)))
		}
	}
	if len(codes) == 0 {
		return fallback
	}
	return strings.Join(codes, ", ")
}

// firstLine keeps the first line of an error text, at most 200 bytes:
// some errors append a whole response body after a newline.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// escape makes text safe inside a format string.
func escape(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// certificateNames lists the names and addresses a certificate is for.
func certificateNames(cert *x509.Certificate) string {
	if cert == nil {
		return "other names"
	}
	names := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no name at all"
	}
	return strings.Join(names, ", ")
}
