package clitest

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"github.com/pullsecrets/pullsecrets/internal/cli"
	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
)

// Request is one request a command sent to the API server.
type Request struct {
	Method string
	Path   string
	Query  string
	// Accept holds as=PartialObjectMetadataList for a metadata-only LIST.
	Accept string
}

// parts returns the path after /api/v1 or /apis/GROUP/VERSION.
func (r Request) parts() []string {
	parts := strings.Split(strings.Trim(r.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		return parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		return parts[3:]
	}
	return nil
}

// Namespace is the namespace of the request, "" for a cluster-wide one.
func (r Request) Namespace() string {
	if p := r.parts(); len(p) > 2 && p[0] == "namespaces" {
		return p[1]
	}
	return ""
}

// Resource is the resource the request is about ("secrets").
func (r Request) Resource() string {
	p := r.parts()
	if len(p) > 2 && p[0] == "namespaces" {
		p = p[2:]
	}
	if len(p) == 0 {
		return ""
	}
	return p[0]
}

// IsList reports whether the request is a LIST: a GET of a collection.
func (r Request) IsList() bool {
	p := r.parts()
	if len(p) > 2 && p[0] == "namespaces" {
		p = p[2:]
	}
	return r.Method == http.MethodGet && len(p) == 1
}

// MetadataOnly reports whether the request asks for metadata only.
func (r Request) MetadataOnly() bool {
	return strings.Contains(r.Accept, "as=PartialObjectMetadata")
}

func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	if r.MetadataOnly() {
		s += " (metadata only)"
	}
	return s
}

// Requests records what commands sent; it is safe for concurrent use.
type Requests struct {
	mu   sync.Mutex
	list []Request
}

// All returns the requests recorded so far, in order.
func (r *Requests) All() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// Count returns how many recorded requests match.
func (r *Requests) Count(match func(Request) bool) int {
	n := 0
	for _, req := range r.All() {
		if match(req) {
			n++
		}
	}
	return n
}

// Reset forgets the requests recorded so far.
func (r *Requests) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = nil
}

func (r *Requests) add(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, Request{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, Accept: req.Header.Get("Accept")})
}

type recordingTransport struct {
	next http.RoundTripper
	rq   *Requests
}

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.rq.add(req)
	return t.next.RoundTrip(req)
}

// Wrap returns a rest.Config wrapper that records every request into rq.
func (r *Requests) Wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return recordingTransport{next: rt, rq: r} })
	return cfg
}

// RunRecorded runs `kubectl pullsecrets <args>` in-process like Run, with
// --kubeconfig kubeconfig, and records every request it sends into rq.
func RunRecorded(t testing.TB, kubeconfig string, rq *Requests, args ...string) Result {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: io.NopCloser(strings.NewReader("")), Out: &out, ErrOut: &errOut}
	flags := genericclioptions.NewConfigFlags(true).WithWrapConfigFn(rq.Wrap)
	cmd := cli.NewCommandWithConfig(streams, flags)
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err := cmd.Execute()
	cmdutil.PrintError(&errOut, err)
	return Result{Stdout: out.String(), Stderr: errOut.String(), Code: cmdutil.ExitCode(err)}
}
