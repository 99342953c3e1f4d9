package injection_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/injection"
)

func keyring(t *testing.T, keys ...string) *credentials.Keyring {
	t.Helper()
	var auths []string
	for _, k := range keys {
		auths = append(auths, fmt.Sprintf("%q:{\"auth\":\"dXNlcjpwYXNz\"}", k))
	}
	data := []byte(`{"auths":{` + strings.Join(auths, ",") + `}}`)
	return credentials.NewKeyring([]credentials.Secret{{Name: "s", Type: credentials.TypeDockerConfigJSON,
		Data: map[string][]byte{credentials.KeyDockerConfigJSON: data}}})
}

// kubelet reports whether the kubelet would send the credential for image.
func kubelet(t *testing.T, k *credentials.Keyring, image string) bool {
	t.Helper()
	m, err := k.Lookup(image)
	return err == nil && len(m.Credentials) > 0
}

func TestMatchesAsTheKubelet(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		keys  []string
		image string
		want  bool
	}{
		{[]string{"registry.example.com"}, "registry.example.com/team/app:1.0", true},
		{[]string{"registry.example.com"}, "registry.example.com:5000/team/app", false},
		{[]string{"registry.example.com:5000"}, "registry.example.com:5000/team/app", true},
		{[]string{"https://registry.example.com/v2/"}, "registry.example.com/app", true},
		{[]string{"registry.example.com/team"}, "registry.example.com/team-b/app", true},
		{[]string{"registry.example.com/team"}, "registry.example.com/other/app", false},
		{[]string{"*.azurecr.io"}, "my.azurecr.io/app", true},
		{[]string{"*.azurecr.io"}, "a.b.azurecr.io/app", false},
		{[]string{"*.azurecr.io"}, "azurecr.io/app", false},
		// A key is parsed as a URL: "?" starts its query, so the key is "reg".
		{[]string{"reg?.example.com"}, "reg1.example.com/app", false},
		{[]string{"r*.example.com"}, "reg1.example.com/app", true},
		{[]string{"https://index.docker.io/v1/"}, "nginx:1.27", true},
		{[]string{"https://index.docker.io/v1/"}, "library/nginx", true},
		{[]string{"https://index.docker.io/v1/"}, "docker.io/team/app", true},
		{[]string{"https://index.docker.io/v1/"}, "index.docker.io/team/app", true},
		{[]string{"https://index.docker.io/v1/"}, "localhost/app", true},
		{[]string{"https://index.docker.io/v1/"}, "quay.io/app", false},
		{[]string{"docker.io"}, "nginx", true},
		{[]string{"docker.io/team"}, "team/app", true},
		{[]string{"docker.io/team"}, "nginx", false},
		{[]string{"quay.io"}, "nginx", false},
		{[]string{"registry.example.com"}, "registry.example.com/app@sha256:" + strings.Repeat("a", 64), true},
		{[]string{"localhost:5000"}, "localhost:5000/app", true},
		{[]string{"localhost"}, "localhost/app", true},
	} {
		regs, hub, _ := injection.Registries(keyring(t, tt.keys...).Keys())
		if got := injection.Matches(regs, hub, tt.image); got != tt.want {
			t.Errorf("keys %v, image %q: Matches = %v, want %v (regs %+v)", tt.keys, tt.image, got, tt.want, regs)
		}
		if got := kubelet(t, keyring(t, tt.keys...), tt.image); got != tt.want {
			t.Errorf("keys %v, image %q: the kubelet says %v; the table is wrong", tt.keys, tt.image, got)
		}
	}
}

func TestRegistriesSkipsCharacterClasses(t *testing.T) {
	t.Parallel()
	regs, _, skipped := injection.Registries([]string{"reg[0-9].example.com", "registry.example.com"})
	if len(regs) != 1 || regs[0].Key != "registry.example.com" || len(skipped) != 1 {
		t.Fatalf("regs %+v, skipped %v", regs, skipped)
	}
}

// Randomized: for keys and images drawn from a small alphabet of hosts,
// ports, globs and paths, the policy's match is the kubelet's.
func TestMatchesAsTheKubeletRandomized(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	label := func() string { return pick("a", "b", "reg", "r1", "x-y") }
	glob := func() string { return pick("a", "b", "reg", "*", "r?", "*g", "x-y") }
	host := func(l func() string) string {
		n := 1 + rng.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = l()
		}
		return strings.Join(parts, ".")
	}
	path := func() string { return pick("", "/team", "/team/app", "/te", "/other") }
	port := func() string { return pick("", "", ":5000", ":443") }
	outcomes := map[bool]int{}
	for i := range 20000 {
		var keys []string
		for range 1 + rng.IntN(3) {
			k := host(glob) + port() + path()
			if rng.IntN(10) == 0 {
				k = pick("https://index.docker.io/v1/", "docker.io", "docker.io/library", "localhost", "localhost:5000")
			}
			keys = append(keys, k)
		}
		image := host(label) + port() + pick("/team/app", "/team-b/app", "/other/x", "/app") + pick("", ":1.0", "@sha256:"+strings.Repeat("b", 64))
		switch rng.IntN(8) {
		case 2, 3, 4:
			// From a key: its globs filled in, sometimes wrongly.
			from := strings.NewReplacer("*g", pick("reg", "g", "x"), "r?", pick("r1", "rr", "r"), "*", pick("a", "reg", "")).Replace(keys[0])
			if !strings.Contains(from, "://") {
				image = from + pick("/app", "/team/app", "/app:1.0", "/team-b/x")
			}
		case 0:
			image = pick("nginx", "team/app:2", "library/redis", "docker.io/team/app", "index.docker.io/x/y:1")
		case 1:
			image = pick("localhost/app", "localhost:5000/team/app")
		}
		k := keyring(t, keys...)
		regs, hub, skipped := injection.Registries(k.Keys())
		if len(skipped) > 0 {
			continue
		}
		if _, err := k.Lookup(image); err != nil {
			continue // not an image reference: the kubelet fails its pull whatever the policy does
		}
		got, want := injection.Matches(regs, hub, image), kubelet(t, k, image)
		if got != want {
			t.Fatalf("case %d: keys %v, image %q: Matches = %v, the kubelet %v", i, keys, image, got, want)
		}
		outcomes[want]++
	}
	if outcomes[true] < 1000 || outcomes[false] < 1000 {
		t.Fatalf("the cases say little: %d matches, %d misses", outcomes[true], outcomes[false])
	}
	t.Logf("%d matches, %d misses", outcomes[true], outcomes[false])
}
