package status_test

import (
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// fleet is made once per test binary.
var fleet struct {
	sync.Once
	err error
}

// benchNamespaces is the size of the fleet, PULLSECRETS_BENCH_NAMESPACES
// to change it.
func benchNamespaces(b *testing.B) int {
	n := 5000
	if v := os.Getenv("PULLSECRETS_BENCH_NAMESPACES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("PULLSECRETS_BENCH_NAMESPACES: %v", err)
		}
	}
	return n
}

// BenchmarkStatusAllNamespaces runs `status -A` over a fleet of namespaces
// (5,000 by default), each with a pull secret on a ServiceAccount, one in
// fifty with a missing Secret and a Pod failing to pull. It reports the
// time per run and the requests one run sends: the LIST count stays the
// same whatever the number of namespaces (Pods and Events come in pages of
// 500), and no GET is sent. Only `go test -bench` runs it; making the fleet
// happens before the timer starts.
func BenchmarkStatusAllNamespaces(b *testing.B) {
	c := testcluster.Get(b)
	n := benchNamespaces(b)
	// The testing package calls a benchmark more than once (b.N = 1 first):
	// the fleet is made on the first call only.
	fleet.Do(func() {
		start := time.Now()
		fleet.err = populateMany(testcluster.Context(b), c.Client, "bench-"+rand.String(5), n)
		b.Logf("made %d namespaces in %s", n, time.Since(start).Round(time.Second))
	})
	if fleet.err != nil {
		b.Fatal(fleet.err)
	}
	var rq clitest.Requests
	b.ResetTimer()
	for range b.N {
		if res := clitest.RunRecorded(b, c.Kubeconfig, &rq, "status", "-A"); res.Code != 1 {
			b.Fatalf("exit status %d: %s", res.Code, res.Stderr)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rq.Count(clitest.Request.IsList))/float64(b.N), "lists/op")
	b.ReportMetric(float64(rq.Count(isGet))/float64(b.N), "gets/op")
	b.ReportMetric(float64(rq.Count(func(r clitest.Request) bool { return r.Method != http.MethodGet }))/float64(b.N), "writes/op")
	b.ReportMetric(float64(n), "namespaces")
}
