package credentials

import (
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// The seed corpus of the fuzz tests runs with every `go test`; run one for
// longer with e.g. `go test -run '^$' -fuzz '^FuzzKeyring$' -fuzztime 30s`.

// secretTypes are the types the fuzz tests give their Secrets, picked by
// a fuzzed number, with the data key each reads.
var secretTypes = []struct{ typ, key string }{
	{TypeDockerConfigJSON, KeyDockerConfigJSON},
	{TypeDockercfg, KeyDockercfg},
	{TypeOpaque, KeyDockerConfigJSON},
}

func fuzzSecret(kind uint8, data []byte) Secret {
	st := secretTypes[int(kind)%len(secretTypes)]
	return Secret{Namespace: "fuzz", Name: "s", Type: st.typ, Data: map[string][]byte{st.key: data}}
}

// FuzzValidate: Validate never panics, every finding is well formed, and
// the findings say the kubelet fails the Pod exactly when its own decode
// of the data fails.
func FuzzValidate(f *testing.F) {
	for _, tt := range validationCases() {
		for _, data := range tt.secret.Data {
			f.Add(uint8(0), data)
			f.Add(uint8(1), data)
		}
	}
	f.Add(uint8(0), []byte(`{"auths":{"r":{"auth":"!!"},"r":{"auth":"`+goodAuth()+`"}}}`))
	f.Add(uint8(0), []byte(`{"auths":{"r":{"auth":"`+goodAuth()+`"},"r":{"auth":"!!"}}}`))
	f.Add(uint8(1), []byte(`{"auths":{"reg.example.com":{"auth":"`+goodAuth()+`"}},"other.example.com":{}}`))
	f.Add(uint8(2), []byte(`{}`))
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		s := fuzzSecret(kind, data)
		findings := Validate(s)
		failing := false
		for _, f := range findings {
			if f.Secret != "fuzz/s" || f.Message == "" || (f.Severity != SeverityError && f.Severity != SeverityWarning) || f.Code == "" {
				t.Fatalf("malformed finding %+v", f)
			}
			failing = failing || failsKeyring(f.Code)
		}
		keyringErr := NewKeyring([]Secret{s}).Err()
		if (keyringErr != nil) != failing {
			t.Fatalf("keyring error %v, but findings %v", keyringErr, codes(findings))
		}
		if failing && !HasError(findings) {
			t.Fatalf("the keyring fails but no finding is an error: %v", codes(findings))
		}
		if s.Type == TypeOpaque || len(data) == 0 {
			return
		}
		_, decodeErr := decodeForKubelet(data, s.Type == TypeDockercfg)
		if (decodeErr != nil) != failing {
			t.Fatalf("kubelet decode error %v, but findings %v", decodeErr, codes(findings))
		}
	})
}

// FuzzKeyring: NewKeyring and Lookup never panic on any data and image,
// and Lookup answers what a literal port of the kubelet's
// BasicDockerKeyring answers, in the same order.
func FuzzKeyring(f *testing.F) {
	seeds := []struct{ data, image string }{
		{`{"auths":{"quay.io":{"auth":"` + b64("a:b") + `"},"quay.io/coreos":{"username":"c","password":"d"}}}`, "quay.io/coreos/etcd"},
		{`{"auths":{"*.example.com/team":{"auth":"` + b64("a:b") + `"},"reg.example.com":{"auth":"` + b64("c:d") + `"}}}`, "reg.example.com/team/app"},
		{`{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("a:b") + `"}}}`, "nginx"},
		{`{"auths":{"index.docker.io":{"auth":"` + b64("a:b") + `"}}}`, "localhost/app"},
		{`{"auths":{"[::1]:5000":{"auth":"` + b64("a:b") + `"},"[::1]":{}}}`, "[::1]:5000/app"},
		{`{"auths":{"reg.example.com:5000":{},"reg.example.com":{},"http://reg.example.com/v2/":{}}}`, "reg.example.com:5000/a/b:1"},
		{`{"auths":{"a[.example.com":{},"*.*.io":{}}}`, "a.b.io/x@sha256:" + strings.Repeat("a", 64)},
		{`{"auths":{"docker.io/library":{}}}`, "library/nginx:1.27"},
		{`{"auths":{"reg.example.com/v1/":{}}}`, "Reg.example.com/app"},
		{`{"auths":{"%zz":{}}}`, ""},
	}
	for _, s := range seeds {
		f.Add(uint8(0), []byte(s.data), s.image)
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte, image string) {
		s := fuzzSecret(kind, data)
		k := NewKeyring([]Secret{s})
		m, err := k.Lookup(image)
		if _, parseErr := reference.ParseNormalizedNamed(image); (err != nil) != (parseErr != nil) {
			t.Fatalf("Lookup(%q) error %v, reference parse error %v", image, err, parseErr)
		}
		if err != nil {
			return
		}
		if m.Credentials == nil || (len(m.Credentials) == 0) != (m.Miss != nil) {
			t.Fatalf("Lookup(%q) = %d credentials, Miss %+v", image, len(m.Credentials), m.Miss)
		}
		if m.Miss != nil && (m.Miss.Reason == "" || m.Miss.Message == "") {
			t.Fatalf("malformed Miss %+v", m.Miss)
		}
		if k.Err() != nil {
			return
		}
		var cfgs []kubeletConfig
		if st := s.Type; st == TypeDockerConfigJSON || st == TypeDockercfg {
			if len(data) > 0 {
				cfg, err := decodeForKubelet(data, st == TypeDockercfg)
				if err != nil {
					t.Fatalf("the keyring has no error, the kubelet's decode fails: %v", err)
				}
				cfgs = append(cfgs, cfg)
			}
		}
		want := upstreamLookup(cfgs, m.Normalized)
		got := make([]string, len(m.Credentials))
		for i, c := range m.Credentials {
			got[i] = c.Username + ":" + c.Password
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Lookup(%q) gives %q, the kubelet %q", image, got, want)
		}
	})
}

// upstreamLookup is BasicDockerKeyring.Add and Lookup of kubernetes
// v1.37.2 pkg/credentialprovider/keyring.go, step by step,
// returning username:password pairs. Only the order of keys within one
// config differs: the kubelet ranges over a map, and this (like the
// package) takes them sorted.
func upstreamLookup(cfgs []kubeletConfig, image string) []string {
	var index []string
	creds := map[string][]string{}
	for _, cfg := range cfgs {
		raws := make([]string, 0, len(cfg))
		for raw := range cfg {
			raws = append(raws, raw)
		}
		sort.Strings(raws)
		for _, repository := range raws {
			entry := cfg[repository]
			if !strings.HasPrefix(repository, "https://") && !strings.HasPrefix(repository, "http://") {
				repository = "https://" + repository
			}
			parsed, err := url.Parse(repository)
			if err != nil {
				continue
			}
			effectivePath := parsed.Path
			if strings.HasPrefix(effectivePath, "/v2/") || strings.HasPrefix(effectivePath, "/v1/") {
				effectivePath = effectivePath[3:]
			}
			var key string
			if (len(effectivePath) > 0) && (effectivePath != "/") {
				key = parsed.Host + effectivePath
			} else {
				key = parsed.Host
			}
			creds[key] = append(creds[key], entry.Username+":"+entry.Password)
			index = append(index, key)
		}
		slices.Sort(index)
		index = slices.Compact(index)
		sort.Sort(sort.Reverse(sort.StringSlice(index)))
	}

	ret := []string{}
	for _, k := range index {
		if matched, _ := urlsMatchStr(k, image); matched {
			ret = append(ret, creds[k]...)
		}
	}
	if len(ret) > 0 {
		return ret
	}
	if isDefaultRegistryMatch(image) {
		if auth, ok := creds[defaultRegistryHost]; ok {
			return auth
		}
	}
	return []string{}
}

// urlsMatchStr is credentialprovider.URLsMatchStr.
func urlsMatchStr(glob, target string) (bool, error) {
	globURL, err := parseSchemelessURL(glob)
	if err != nil {
		return false, err
	}
	targetURL, err := parseSchemelessURL(target)
	if err != nil {
		return false, err
	}
	return upstreamURLsMatch(globURL, targetURL)
}

// upstreamURLsMatch is credentialprovider.URLsMatch, which splits both
// URLs at every call.
func upstreamURLsMatch(globURL *url.URL, targetURL *url.URL) (bool, error) {
	globURLParts, globPort := splitURL(globURL)
	targetURLParts, targetPort := splitURL(targetURL)
	if globPort != targetPort {
		return false, nil
	}
	if len(globURLParts) != len(targetURLParts) {
		return false, nil
	}
	if !strings.HasPrefix(targetURL.Path, globURL.Path) {
		return false, nil
	}
	for k, globURLPart := range globURLParts {
		matched, err := filepath.Match(globURLPart, targetURLParts[k])
		if err != nil {
			return false, err
		}
		if !matched {
			return false, nil
		}
	}
	return true, nil
}

// FuzzBuildRoundTrip: what Build accepts, the kubelet decodes back to the
// same server, username and password, and Lookup gives them back for an
// image on that server whenever the server is a key that can match.
func FuzzBuildRoundTrip(f *testing.F) {
	f.Add(DefaultServer, "alice", "s3cr:et<&>", "a@example.com")
	f.Add("reg.example.com:5000", "bob", "pässwörd", "")
	f.Add("ghcr.io", "u", `p"q\r`, "")
	f.Add("https://reg.example.com/v2/team/", "robot$team", "tok=en==", "")
	f.Add("*.azurecr.io", "00000000-0000-0000-0000-000000000000", "pw", "")
	f.Add("[::1]:5000", "u", " leading and trailing ", "")
	f.Add("localhost:5000", "u", "p\n", "")
	f.Add("index.docker.io", "u", "p", "")
	f.Add("docker.io/library", "u", "p", "")
	f.Fuzz(func(t *testing.T, server, username, password, email string) {
		data, err := Build(server, username, password, email)
		if err != nil {
			return
		}
		cfg, err := decodeForKubelet(data, false)
		if err != nil {
			t.Fatalf("the kubelet cannot decode what Build gives: %v", err)
		}
		entry, ok := cfg[server]
		if len(cfg) != 1 || !ok || entry.Username != username || entry.Password != password || entry.Email != email {
			t.Fatalf("Build(%q, %q, _, %q) decodes to %d entries, entry for the server: %v, username %q, email %q", server, username, email, len(cfg), ok, entry.Username, entry.Email)
		}
		secret := Secret{Namespace: "fuzz", Name: "built", Type: TypeDockerConfigJSON, Data: map[string][]byte{KeyDockerConfigJSON: data}}
		k := NewKeyring([]Secret{secret})
		if k.Err() != nil {
			t.Fatalf("keyring of a built Secret fails: %v", k.Err())
		}
		image, ok := imageOn(server)
		if !ok {
			return
		}
		m, err := k.Lookup(image)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", image, err)
		}
		if len(m.Credentials) != 1 || m.Credentials[0].Username != username || m.Credentials[0].Password != password || m.Credentials[0].Registry != redactKey(server) {
			t.Fatalf("Build for %q, Lookup(%q) = %v (%+v)", server, image, m.Credentials, m.Miss)
		}
	})
}

// imageOn returns an image that the registry key server is meant to cover:
// its host and path, and a repository below. It reports false for keys
// that never match (Validate reports those) and when the result is not an
// image reference the kubelet would look up on that host, such as a glob.
func imageOn(server string) (string, bool) {
	key, err := normalizeKey(server)
	if err != nil {
		return "", false
	}
	if _, usable := keyProblem(key); !usable {
		return "", false
	}
	image := strings.TrimSuffix(key, "/") + "/fuzz"
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", false
	}
	host, _, _ := strings.Cut(key, "/")
	switch domain := reference.Domain(named); {
	case domain == host, host == defaultRegistryHost && domain == "docker.io":
		return image, true
	default:
		return "", false // e.g. a key without a dot: the image is on Docker Hub
	}
}
