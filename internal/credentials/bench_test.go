package credentials

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkLookup1000Keys looks one image up in a keyring built from one
// Secret with 1,000 registry keys, as a Pod's pull secrets of a large
// organisation may hold: hosts, ports, paths and globs. The keyring is
// built once, as the controller does per source Secret; the kubelet builds
// it again for every pull.
func BenchmarkLookup1000Keys(b *testing.B) {
	entries := make([]string, 0, 1000)
	for i := range 1000 {
		var key string
		switch i % 4 {
		case 0:
			key = fmt.Sprintf("reg%03d.example.com", i)
		case 1:
			key = fmt.Sprintf("https://reg%03d.example.com:5000/v2/", i)
		case 2:
			key = fmt.Sprintf("registry.example.com/team%03d", i)
		default:
			key = fmt.Sprintf("*.zone%03d.example.com", i)
		}
		entries = append(entries, fmt.Sprintf("%q:{\"auth\":%q}", key, b64(fmt.Sprintf("u%d:hunter2-%d", i, i))))
	}
	k := NewKeyring([]Secret{configJSON("big", `{"auths":{`+strings.Join(entries, ",")+`}}`)})
	if k.Err() != nil || len(k.index) != 1000 {
		b.Fatalf("keyring: %v, %d keys", k.Err(), len(k.index))
	}
	for _, bm := range []struct{ name, image string }{
		{"match", "registry.example.com/team502/app:1.0"},
		{"miss", "ghcr.io/acme/app:1.0"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m, err := k.Lookup(bm.image)
				if err != nil || (len(m.Credentials) == 0) != (bm.name == "miss") {
					b.Fatalf("Lookup(%q) = %d credentials, %v", bm.image, len(m.Credentials), err)
				}
			}
		})
	}
}
