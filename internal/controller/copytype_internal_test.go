package controller

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// A credential written in the other pull-secret type is read by the
// kubelet as the same keyring, and converting back gives the same registry
// map byte for byte.
func TestCredentialAs(t *testing.T) {
	t.Parallel()
	build := func(server, user, pw string) []byte {
		b, err := credentials.Build(server, user, pw, "")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	jsonData := map[string][]byte{corev1.DockerConfigJsonKey: build("registry.example.com", "ci", "p:w")}
	asCfg, err := credentialAs(corev1.SecretTypeDockerConfigJson, jsonData, corev1.SecretTypeDockercfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := asCfg[corev1.DockerConfigKey]; !ok || len(asCfg) != 1 {
		t.Fatalf("keys %v", keysOf(asCfg))
	}
	back, err := credentialAs(corev1.SecretTypeDockercfg, asCfg, corev1.SecretTypeDockerConfigJson)
	if err != nil {
		t.Fatal(err)
	}
	sameKeyring(t, corev1.SecretTypeDockerConfigJson, jsonData, corev1.SecretTypeDockercfg, asCfg)
	sameKeyring(t, corev1.SecretTypeDockerConfigJson, jsonData, corev1.SecretTypeDockerConfigJson, back)

	for _, tt := range []struct {
		name     string
		from, to corev1.SecretType
		data     map[string][]byte
	}{
		{"a config.json without auths", corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg, map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"credsStore":"desktop"}`)}},
		{"not JSON", corev1.SecretTypeDockercfg, corev1.SecretTypeDockerConfigJson, map[string][]byte{corev1.DockerConfigKey: []byte(`secret-bytes{`)}},
		{"an Opaque Secret", corev1.SecretTypeOpaque, corev1.SecretTypeDockercfg, map[string][]byte{"x": []byte(`{}`)}},
		{"into an Opaque Secret", corev1.SecretTypeDockercfg, corev1.SecretTypeOpaque, map[string][]byte{corev1.DockerConfigKey: []byte(`{}`)}},
	} {
		_, err := credentialAs(tt.from, tt.data, tt.to)
		if err == nil {
			t.Errorf("%s: converted", tt.name)
			continue
		}
		if bytes.Contains([]byte(err.Error()), []byte("secret-bytes")) {
			t.Errorf("%s: the error quotes the data: %v", tt.name, err)
		}
	}
}

// Randomized: any credential the credentials library builds survives both
// conversions, and hashesIn gives each type the digest of what a copy of
// that type holds.
func TestCredentialAsRandomized(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 19))
	for i := range 300 {
		user := fmt.Sprintf("u%d", r.IntN(1000))
		pw := fmt.Sprintf("p:%d=%d", r.IntN(1000), i)
		data, err := credentials.Build(fmt.Sprintf("reg%d.example.com:%d", r.IntN(5), 5000+r.IntN(5)), user, pw, "")
		if err != nil {
			t.Fatal(err)
		}
		src := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: data}}
		if r.IntN(2) == 0 {
			cfg, err := credentialAs(src.Type, src.Data, corev1.SecretTypeDockercfg)
			if err != nil {
				t.Fatal(err)
			}
			src = &corev1.Secret{Type: corev1.SecretTypeDockercfg, Data: cfg}
		}
		hashes := hashesIn(src)
		for _, to := range pullSecretTypes {
			got, err := credentialAs(src.Type, src.Data, to)
			if err != nil {
				t.Fatal(err)
			}
			sameKeyring(t, src.Type, src.Data, to, got)
			if want := dataHash(to, got); hashes[string(to)] != want {
				t.Fatalf("hashesIn gives %s %s, the copy holds %s", to, hashes[string(to)], want)
			}
			again, err := credentialAs(to, got, src.Type)
			if err != nil {
				t.Fatal(err)
			}
			if to == src.Type && !bytes.Equal(again[keyOf(src.Type)], src.Data[keyOf(src.Type)]) {
				t.Fatalf("converting to its own type changed the data")
			}
		}
	}
}

func keyOf(t corev1.SecretType) string {
	if t == corev1.SecretTypeDockercfg {
		return corev1.DockerConfigKey
	}
	return corev1.DockerConfigJsonKey
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sameKeyring: the kubelet gets the same credentials from both Secrets for
// every registry they name.
func sameKeyring(t *testing.T, ta corev1.SecretType, a map[string][]byte, tb corev1.SecretType, b map[string][]byte) {
	t.Helper()
	ka := credentials.NewKeyring([]credentials.Secret{{Name: "a", Type: string(ta), Data: a}})
	kb := credentials.NewKeyring([]credentials.Secret{{Name: "b", Type: string(tb), Data: b}})
	if fmt.Sprint(ka.Keys()) != fmt.Sprint(kb.Keys()) || len(ka.Keys()) == 0 {
		t.Fatalf("keys %v and %v", ka.Keys(), kb.Keys())
	}
	for _, key := range ka.Keys() {
		ma, errA := ka.Lookup(key + "/app:1")
		mb, errB := kb.Lookup(key + "/app:1")
		if errA != nil || errB != nil || len(ma.Credentials) != len(mb.Credentials) || len(ma.Credentials) == 0 {
			t.Fatalf("%s: %v %v", key, errA, errB)
		}
		for i := range ma.Credentials {
			if ma.Credentials[i].Username != mb.Credentials[i].Username || ma.Credentials[i].Password != mb.Credentials[i].Password {
				t.Fatalf("%s: credentials differ", key)
			}
		}
	}
}
