package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// auditPolicy logs every request of the benchmark's two identities (the
// controller and the floor client) at Metadata level, and nothing else: the
// benchmark's own reads and resets, as administrator, are not counted.
// RequestReceived is omitted so that one request is one line, except
// watches, which also log ResponseStarted.
func auditPolicy(users ...string) string {
	quoted := make([]string, len(users))
	for i, u := range users {
		quoted[i] = fmt.Sprintf("%q", u)
	}
	return `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: [` + strings.Join(quoted, ", ") + `]
- level: None
`
}

// auditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type auditEvent struct {
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// Request is one kind of request: verb and resource, and the response code
// when the request failed (0 for every success).
type Request struct {
	Verb string `json:"verb"`
	// Resource is resource[.group][/subresource], or the path of a
	// non-resource request such as discovery.
	Resource string `json:"resource"`
	// Code is the HTTP status of a failed request; 0 for successes.
	Code int `json:"code,omitempty"`
}

func (r Request) String() string {
	s := r.Verb + " " + r.Resource
	if r.Code != 0 {
		s += fmt.Sprintf(" (%d)", r.Code)
	}
	return s
}

// IsWatch reports whether the request is a watch.
func (r Request) IsWatch() bool { return r.Verb == "watch" }

// IsWrite reports whether the request changes state.
func (r Request) IsWrite() bool {
	switch r.Verb {
	case "create", "update", "patch", "delete", "deletecollection", "apply":
		return true
	}
	return false
}

// IsLease reports whether the request is leader election's.
func (r Request) IsLease() bool { return strings.HasPrefix(r.Resource, "leases.coordination.k8s.io") }

// request maps an audit event to the request it counts as, and false when
// the event does not count: watches count once, when their response starts
// (or when they fail before that), every other request when it completes.
func (e *auditEvent) request() (Request, bool) {
	code := 0
	if e.ResponseStatus != nil {
		code = e.ResponseStatus.Code
	}
	switch {
	case e.Verb == "watch" && e.Stage == "ResponseStarted":
	case e.Verb == "watch" && e.Stage == "ResponseComplete" && code >= 300:
	case e.Verb != "watch" && (e.Stage == "ResponseComplete" || e.Stage == "Panic"):
	default:
		return Request{}, false
	}
	r := Request{Verb: e.Verb, Resource: e.resource()}
	if e.Stage == "Panic" && code == 0 {
		code = 500
	}
	if code >= 300 {
		r.Code = code
	}
	return r, true
}

func (e *auditEvent) resource() string {
	if e.ObjectRef == nil || e.ObjectRef.Resource == "" {
		if u, err := url.Parse(e.RequestURI); err == nil {
			return u.Path
		}
		return e.RequestURI
	}
	s := e.ObjectRef.Resource
	if e.ObjectRef.APIGroup != "" {
		s += "." + e.ObjectRef.APIGroup
	}
	if e.ObjectRef.Subresource != "" {
		s += "/" + e.ObjectRef.Subresource
	}
	return s
}

// Tally counts one user's requests.
type Tally struct {
	user   string
	counts map[Request]int
	// lastNonWatch is when the user's latest request other than a watch or
	// leader election completed, by the API server's clock.
	lastNonWatch time.Time
	// firstWrite is when the user's first write of a Secret or a
	// ServiceAccount completed.
	firstWrite time.Time
}

func newTally(user string) *Tally {
	return &Tally{user: user, counts: map[Request]int{}}
}

func (t *Tally) add(e *auditEvent) {
	if e.User.Username != t.user {
		return
	}
	r, ok := e.request()
	if !ok {
		return
	}
	t.counts[r]++
	if !r.IsWatch() && !r.IsLease() && e.StageTimestamp.After(t.lastNonWatch) {
		t.lastNonWatch = e.StageTimestamp
	}
	if r.IsWrite() && (r.Resource == "secrets" || r.Resource == "serviceaccounts") && r.Code == 0 &&
		(t.firstWrite.IsZero() || e.StageTimestamp.Before(t.firstWrite)) {
		t.firstWrite = e.StageTimestamp
	}
}

// sum adds the counts of the requests for which keep returns true.
func (t *Tally) sum(keep func(Request) bool) int {
	n := 0
	for r, c := range t.counts {
		if keep(r) {
			n += c
		}
	}
	return n
}

// RequestCount is a Request and how many times it was made.
type RequestCount struct {
	Request
	Count int `json:"count"`
}

// list returns the counts sorted: successes before failures, then by
// resource and verb.
func (t *Tally) list() []RequestCount {
	out := make([]RequestCount, 0, len(t.counts))
	for r, c := range t.counts {
		out = append(out, RequestCount{Request: r, Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return lessRequest(out[i].Request, out[j].Request) })
	return out
}

func sortRequests(rs []Request) {
	sort.Slice(rs, func(i, j int) bool { return lessRequest(rs[i], rs[j]) })
}

func lessRequest(a, b Request) bool {
	if (a.Code == 0) != (b.Code == 0) {
		return a.Code == 0
	}
	if a.Resource != b.Resource {
		return a.Resource < b.Resource
	}
	if a.Verb != b.Verb {
		return a.Verb < b.Verb
	}
	return a.Code < b.Code
}

// auditLog reads an audit log file as it grows.
type auditLog struct {
	f       *os.File
	r       *bufio.Reader
	partial []byte
}

func openAuditLog(path string) (*auditLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &auditLog{f: f, r: bufio.NewReaderSize(f, 1<<20)}, nil
}

func (l *auditLog) Close() error { return l.f.Close() }

// readInto feeds every complete line written since the last call to t. A
// line still being written is kept for the next call.
func (l *auditLog) readInto(t *Tally) error {
	for {
		line, err := l.r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if len(l.partial) > 0 {
				line = append(l.partial, line...)
				l.partial = nil
			}
			if perr := parseAuditLine(line, t); perr != nil {
				return perr
			}
		} else if len(line) > 0 {
			l.partial = append(l.partial, line...)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
	}
}

func parseAuditLine(line []byte, t *Tally) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil
	}
	var e auditEvent
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("parse audit log line %.80q: %w", line, err)
	}
	t.add(&e)
	return nil
}
