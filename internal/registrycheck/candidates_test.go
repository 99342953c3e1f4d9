package registrycheck_test

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

// TestCandidates: the kubelet's credentials become registrycheck's in the
// same order, labelled by Secret name, key and username, never password.
func TestCandidates(t *testing.T) {
	g := NewWithT(t)
	k := credentials.NewKeyring([]credentials.Secret{
		secret(t, "team-a", "host", "quay.io", "quay-robot", "quay-"+alicePassword),
		secret(t, "team-a", "path", "quay.io/coreos", "coreos-robot", "coreos-"+bobPassword),
	})
	m, err := k.Lookup("quay.io/coreos/etcd")
	g.Expect(err).NotTo(HaveOccurred())

	got := registrycheck.Candidates(m.Credentials)
	g.Expect(got).To(Equal([]registrycheck.Credential{
		{Label: "path (quay.io/coreos, user coreos-robot)", Username: "coreos-robot", Password: "coreos-" + bobPassword},
		{Label: "host (quay.io, user quay-robot)", Username: "quay-robot", Password: "quay-" + alicePassword},
	}))
	for _, c := range got {
		g.Expect(c.Label).NotTo(ContainSubstring("Pa55word"))
		g.Expect(fmt.Sprintf("%v %+v %#v", c, c, c)).NotTo(ContainSubstring("Pa55word"))
	}

	// No credential: an anonymous pull.
	g.Expect(registrycheck.Candidates(nil)).To(BeEmpty())
}

func secret(t *testing.T, ns, name, server, username, password string) credentials.Secret {
	t.Helper()
	data, err := credentials.Build(server, username, password, "")
	if err != nil {
		t.Fatal(err)
	}
	return credentials.Secret{Namespace: ns, Name: name, Type: credentials.TypeDockerConfigJSON,
		Data: map[string][]byte{credentials.KeyDockerConfigJSON: data}}
}
