package fleet

import (
	"strings"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var samples []time.Duration
	for i := 50; i >= 1; i-- {
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	cases := []struct {
		p    float64
		want time.Duration
	}{
		{50, 25 * time.Millisecond},
		{99, 50 * time.Millisecond}, // over 50 samples, p99 is the largest
		{100, 50 * time.Millisecond},
		{1, 1 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(samples, c.p); got != c.want {
			t.Errorf("p%v: got %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("no samples: got %v", got)
	}
	if samples[0] != 50*time.Millisecond {
		t.Error("percentile sorted its input")
	}
}

func TestParseStatCPU(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	stat := "4242 (pullsecrets ctl) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Error("no error for a line without a command name")
	}
}

func TestProcFieldAndKiB(t *testing.T) {
	status := []byte("Name:\tpullsecrets\nVmHWM:\t   81236 kB\nVmRSS:\t   70000 kB\n")
	hwm, err := kib(procField(status, "VmHWM", ":"))
	if err != nil {
		t.Fatal(err)
	}
	if hwm != 81236<<10 {
		t.Errorf("VmHWM: got %d", hwm)
	}
	if got := procField(status, "Missing", ":"); got != "" {
		t.Errorf("missing field: got %q", got)
	}
}

func TestParseStatAndMachineCPU(t *testing.T) {
	comm, ppid, cpu, err := parseStat("77 (kube-apiserver) S 42 77 42 0 -1 0 0 0 0 0 100 100 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if comm != "kube-apiserver" || ppid != 42 || cpu != 2*time.Second {
		t.Errorf("got %q %d %v", comm, ppid, cpu)
	}
	if got := processName(comm); got != "apiserver" {
		t.Errorf("processName: got %q", got)
	}
	busy, total := parseMachineCPU("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n")
	if busy != 150 || total != 1000 {
		t.Errorf("machine CPU: got busy %d total %d, want 150 1000", busy, total)
	}
}

func TestParseCounters(t *testing.T) {
	text := `# HELP controller_runtime_reconcile_total Total number of reconciliations per controller
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="namespace",result="success"} 4003
controller_runtime_reconcile_total{controller="namespace",result="error"} 2
controller_runtime_reconcile_total{controller="clusterpullsecret",result="requeue_after"} 7
pullsecrets_api_requests_total{resource="secrets",verb="create"} 1000
pullsecrets_api_requests_total{resource="serviceaccounts",verb="update"} 3000
workqueue_adds_total{controller="namespace",name="namespace"} 9
`
	c := parseCounters(strings.NewReader(text))
	if c.Reconciles["namespace"] != 4005 || c.Reconciles["clusterpullsecret"] != 7 || c.APIRequests != 4000 {
		t.Errorf("got %+v", c)
	}
	d := c.since(controllerCounters{Reconciles: map[string]float64{"namespace": 5}, APIRequests: 1000})
	if d.Reconciles["namespace"] != 4000 || d.APIRequests != 3000 {
		t.Errorf("since: got %+v", d)
	}
}

func TestParseWatchTraffic(t *testing.T) {
	text := `apiserver_watch_events_total{group="",resource="secrets",version="v1"} 10
apiserver_watch_events_total{group="",resource="serviceaccounts",version="v1"} 30
apiserver_watch_events_sizes_bucket{group="",resource="secrets",version="v1",le="1024"} 10
apiserver_watch_events_sizes_sum{group="",resource="secrets",version="v1"} 5000
apiserver_watch_events_sizes_count{group="",resource="secrets",version="v1"} 10
`
	got := parseWatchTraffic(strings.NewReader(text))
	if got.Events != 40 || got.Bytes != 5000 {
		t.Errorf("got %+v", got)
	}
}
