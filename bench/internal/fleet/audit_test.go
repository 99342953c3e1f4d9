package fleet

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	user  = "system:serviceaccount:pullsecrets-system:pullsecrets-controller"
	other = "system:serviceaccount:pullsecrets-system:pullsecrets-floor"
)

func line(stage, verb, username, ref string, code int, ts string) string {
	s := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"` + stage + `","requestURI":"/api/v1/namespaces?watch=true","verb":"` + verb +
		`","user":{"username":"` + username + `","groups":["system:serviceaccounts"]}`
	if ref != "" {
		s += `,"objectRef":` + ref
	}
	if code != 0 {
		s += `,"responseStatus":{"metadata":{},"code":` + strconv.Itoa(code) + `}`
	}
	return s + `,"requestReceivedTimestamp":"` + ts + `","stageTimestamp":"` + ts + `"}` + "\n"
}

func TestTallyCountsEachRequestOnce(t *testing.T) {
	secrets := `{"resource":"secrets","namespace":"a","name":"regcred","apiVersion":"v1"}`
	sas := `{"resource":"serviceaccounts","namespace":"a","apiVersion":"v1"}`
	lease := `{"resource":"leases","namespace":"pullsecrets-system","name":"x","apiGroup":"coordination.k8s.io","apiVersion":"v1"}`
	status := `{"resource":"clusterpullsecrets","name":"x","apiGroup":"pullsecrets.dev","apiVersion":"v1alpha1","subresource":"status"}`
	log := line("ResponseComplete", "create", user, secrets, 201, "2026-01-01T00:00:01.000000Z") +
		line("ResponseComplete", "create", user, secrets, 409, "2026-01-01T00:00:02.000000Z") +
		line("ResponseStarted", "watch", user, sas, 200, "2026-01-01T00:00:03.000000Z") +
		line("ResponseComplete", "watch", user, sas, 200, "2026-01-01T00:00:09.000000Z") +
		line("ResponseComplete", "watch", user, sas, 410, "2026-01-01T00:00:04.000000Z") +
		line("ResponseComplete", "update", user, lease, 200, "2026-01-01T00:00:08.000000Z") +
		line("ResponseComplete", "patch", user, status, 200, "2026-01-01T00:00:05.000000Z") +
		line("ResponseComplete", "get", user, "", 200, "2026-01-01T00:00:06.000000Z") +
		line("ResponseComplete", "create", other, secrets, 201, "2026-01-01T00:00:07.000000Z")

	path := filepath.Join(t.TempDir(), "audit.log")
	// Written in two pieces, the second starting mid-line, as the API
	// server may leave it when read.
	cut := len(log) - 40
	if err := os.WriteFile(path, []byte(log[:cut]), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := openAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tally := newTally(user)
	if err := l.readInto(tally); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(log[cut:]); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := l.readInto(tally); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{
		"create secrets":                                  1,
		"create secrets (409)":                            1,
		"watch serviceaccounts":                           1,
		"watch serviceaccounts (410)":                     1,
		"update leases.coordination.k8s.io":               1,
		"patch clusterpullsecrets.pullsecrets.dev/status": 1,
		"get /api/v1/namespaces":                          1,
	}
	got := map[string]int{}
	for _, rc := range tally.list() {
		got[rc.String()] = rc.Count
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	// Watches and leases do not keep a phase from settling.
	if want := time.Date(2026, 1, 1, 0, 0, 6, 0, time.UTC); !tally.lastNonWatch.Equal(want) {
		t.Errorf("last non-watch request at %v, want %v", tally.lastNonWatch, want)
	}
	if n := tally.sum(func(r Request) bool { return r.IsWrite() && r.Code == 0 }); n != 3 {
		t.Errorf("successful writes: got %d, want 3", n)
	}
}

func TestAuditPolicyNamesTheUsers(t *testing.T) {
	p := auditPolicy(user, other)
	for _, want := range []string{`"` + user + `"`, `"` + other + `"`, "RequestReceived", "level: None"} {
		if !strings.Contains(p, want) {
			t.Errorf("policy lacks %s:\n%s", want, p)
		}
	}
}
