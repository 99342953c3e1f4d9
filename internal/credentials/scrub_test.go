package credentials

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	t.Parallel()
	data, err := Build("registry.example.com", "robot$ci", "Pa55:w0rd-xyz", "")
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string][]byte{".dockerconfigjson": data}
	auth := base64.StdEncoding.EncodeToString([]byte("robot$ci:Pa55:w0rd-xyz"))
	text := "admission denied: data[.dockerconfigjson] " + string(data) + " auth=" + auth +
		" password Pa55:w0rd-xyz user robot$ci whole " + base64.StdEncoding.EncodeToString(data)
	got := Scrub(text, secret)
	for _, leaked := range []string{"Pa55:w0rd-xyz", "robot$ci", auth, "w0rd"} {
		if strings.Contains(got, leaked) {
			t.Errorf("%q left in %q", leaked, got)
		}
	}
	if !strings.HasPrefix(got, "admission denied: data[.dockerconfigjson] ") {
		t.Errorf("the rest of the text was changed: %q", got)
	}
	if Scrub("nothing secret here", secret) != "nothing secret here" {
		t.Error("text without secrets changed")
	}
}
