package fakeecr

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, s *Server, target, region string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	if region != "" {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+AccessKeyID+"/20260301/"+region+"/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestGetAuthorizationToken(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := Start(t, Options{Lifetime: time.Hour, Now: func() time.Time { return now }})

	status, body := call(t, s, Target, "us-west-2")
	if status != http.StatusOK {
		t.Fatalf("status %d %v", status, body)
	}
	data := body["authorizationData"].([]any)[0].(map[string]any)
	raw, err := base64.StdEncoding.DecodeString(data["authorizationToken"].(string))
	if err != nil {
		t.Fatal(err)
	}
	user, password, _ := strings.Cut(string(raw), ":")
	if user != "AWS" || password != s.Current().Password || !s.Valid(password) {
		t.Errorf("token for %q, want AWS and the current, valid password", user)
	}
	if got := data["expiresAt"].(float64); got != float64(now.Add(time.Hour).Unix()) {
		t.Errorf("expiresAt %v, want an hour on, in epoch seconds", got)
	}
	if got := data["proxyEndpoint"]; got != "https://123456789012.dkr.ecr.us-west-2.amazonaws.com" {
		t.Errorf("proxyEndpoint %v", got)
	}

	_, _ = call(t, s, Target, "us-west-2")
	if s.Valid(password) == false || s.Current().Password == password || len(s.ValidPasswords()) != 2 {
		t.Error("a second call must mint a new password and keep the first valid")
	}
	now = now.Add(time.Hour)
	if s.Valid(password) || len(s.ValidPasswords()) != 0 {
		t.Error("passwords must expire after their lifetime")
	}
}

func TestRefusals(t *testing.T) {
	s := Start(t, Options{})
	for _, tc := range []struct {
		name, target, region string
		status               int
		code                 string
	}{
		{"unsigned", Target, "", http.StatusForbidden, "UnrecognizedClientException"},
		{"other operation", "AmazonEC2ContainerRegistry_V20150921.ListImages", "us-west-2", http.StatusBadRequest, "UnknownOperationException"},
	} {
		status, body := call(t, s, tc.target, tc.region)
		if status != tc.status || body["__type"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	s.FailNext(1, http.StatusBadRequest, "AccessDeniedException", "no")
	if status, body := call(t, s, Target, "us-west-2"); status != http.StatusBadRequest || body["__type"] != "AccessDeniedException" {
		t.Errorf("FailNext: %d %v", status, body)
	}
	if status, _ := call(t, s, Target, "us-west-2"); status != http.StatusOK {
		t.Errorf("after the failure: %d, want 200", status)
	}
	if calls := s.Calls(); len(calls) != 4 || calls[3].Region != "us-west-2" {
		t.Errorf("calls %+v", calls)
	}
}
