package credentials

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
)

// minSecretLen is the shortest string Scrub hides: shorter ones (field
// names, "ci") would blank out ordinary words.
const minSecretLen = 4

// Scrub removes from text every secret a pull secret's data holds: the raw
// data, its base64, every string value in its JSON, and the username and
// password inside each auth. API errors about a write sometimes quote what
// was written; this keeps such text fit for status, Events and logs.
func Scrub(text string, data map[string][]byte) string {
	var secrets []string
	add := func(s string) {
		if len(s) >= minSecretLen {
			secrets = append(secrets, s)
		}
	}
	for _, v := range data {
		add(string(v))
		add(base64.StdEncoding.EncodeToString(v))
		var doc any
		if json.Unmarshal(v, &doc) == nil {
			walkStrings(doc, func(s string) {
				add(s)
				if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
					add(string(dec))
					user, pass, _ := strings.Cut(string(dec), ":")
					add(user)
					add(pass)
				}
			})
		}
	}
	// Longest first, so that a password inside a longer secret is not
	// replaced first and the rest left visible.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, "<redacted>")
	}
	return text
}

func walkStrings(v any, f func(string)) {
	switch t := v.(type) {
	case string:
		f(t)
	case map[string]any:
		for _, x := range t {
			walkStrings(x, f)
		}
	case []any:
		for _, x := range t {
			walkStrings(x, f)
		}
	}
}
