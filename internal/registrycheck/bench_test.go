package registrycheck_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
)

// BenchmarkCheckMany100 verifies 100 distinct images (10 repositories of 10
// tags) with one credential each, against a TLS registry on loopback, with
// basic auth and with bearer tokens. The figures are the client's cost plus
// the in-process registry's, on the same cores.
func BenchmarkCheckMany100(b *testing.B) {
	for _, auth := range []registrytest.Auth{registrytest.AuthHtpasswd, registrytest.AuthToken} {
		b.Run(string(auth), func(b *testing.B) {
			reg := registrytest.Start(b, registrytest.Options{TLS: true, Auth: auth, Users: []registrytest.User{alice}})
			reqs := make([]registrycheck.Request, 100)
			for i := range reqs {
				repo, tag := fmt.Sprintf("team-a/app-%d", i/10), fmt.Sprintf("v%d", i%10)
				reg.Push(b, repo, tag)
				reqs[i] = registrycheck.Request{Image: reg.Host + "/" + repo + ":" + tag, Credentials: []registrycheck.Credential{aliceCred()}}
			}
			opts := registrycheck.Options{RootCAs: reg.RootCAs}
			reg.ResetRequests()

			for b.Loop() {
				for i, r := range registrycheck.CheckMany(context.Background(), reqs, opts) {
					if !r.OK() {
						b.Fatalf("image %d: %s: %s", i, r.Status, r.Message)
					}
				}
			}

			images := float64(len(reqs) * b.N)
			b.ReportMetric(images/b.Elapsed().Seconds(), "images/s")
			b.ReportMetric(float64(len(reg.Requests()))/images, "requests/image")
		})
	}
}
