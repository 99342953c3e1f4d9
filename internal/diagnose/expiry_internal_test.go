package diagnose

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestECRTokenExpiry(t *testing.T) {
	t.Parallel()
	doc := `{"payload":"p","datakey":"d","version":"2","type":"DATA_KEY","expiration":1757147299}`
	want := time.Unix(1757147299, 0).UTC()
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"get-login-password", "AWS", b64([]byte(doc)), true},
		{"unpadded", "AWS", base64.RawStdEncoding.EncodeToString([]byte(doc + " ")), true},
		{"another user", "ci-bot", b64([]byte(doc)), false},
		{"not base64", "AWS", "eyJ!!!", false},
		{"not JSON", "AWS", b64([]byte(`{"payload"`)), false},
		{"no payload", "AWS", b64([]byte(`{"expiration":1757147299}`)), false},
		{"no expiration", "AWS", b64([]byte(`{"payload":"p"}`)), false},
		{"expiration as text", "AWS", b64([]byte(`{"payload":"p","expiration":"1757147299"}`)), false},
		{"negative expiration", "AWS", b64([]byte(`{"payload":"p","expiration":-1}`)), false},
		{"a plain password", "AWS", "hunter2", false},
		{"too long", "AWS", "eyJ" + strings.Repeat("A", maxECRToken), false},
	}
	for _, tt := range tests {
		at, ok := ecrTokenExpiry(tt.user, tt.pass)
		if ok != tt.ok || (ok && !at.Equal(want)) {
			t.Errorf("%s: got %v %v, want %v %v", tt.name, at, ok, want, tt.ok)
		}
	}
}

// FuzzECRTokenExpiry: any password decodes without panicking, and a date
// comes only from an AWS token.
func FuzzECRTokenExpiry(f *testing.F) {
	f.Add("AWS", base64.StdEncoding.EncodeToString([]byte(`{"payload":"p","expiration":1757147299}`)))
	f.Add("AWS", "eyJ")
	f.Add("u", "p")
	f.Fuzz(func(t *testing.T, user, pass string) {
		if _, ok := ecrTokenExpiry(user, pass); ok && user != "AWS" {
			t.Fatalf("a date from user %q", user)
		}
	})
}
