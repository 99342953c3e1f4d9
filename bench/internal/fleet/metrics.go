package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// freePort returns a loopback address nothing listens on, for the
// controller's metrics endpoint.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// controllerCounters are the controller's own counters the benchmark
// reports: reconciles by controller, and the API requests the controller
// counted itself, to cross-check the audit log.
type controllerCounters struct {
	Reconciles  map[string]float64
	APIRequests float64
}

// scrapeMetrics reads the counters from the controller's /metrics. An
// endpoint that does not answer (yet) gives empty counters: the figures
// are then missing, not wrong.
func scrapeMetrics(ctx context.Context, addr string) controllerCounters {
	c := controllerCounters{Reconciles: map[string]float64{}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return c
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c
	}
	return parseCounters(resp.Body)
}

// parseCounters reads the two counter families from Prometheus text
// format.
func parseCounters(r io.Reader) controllerCounters {
	c := controllerCounters{Reconciles: map[string]float64{}}
	eachSample(r, func(series string, v float64) {
		switch {
		case strings.HasPrefix(series, "controller_runtime_reconcile_total{"):
			c.Reconciles[label(series, "controller")] += v
		case strings.HasPrefix(series, "pullsecrets_api_requests_total{"):
			c.APIRequests += v
		}
	})
	return c
}

// eachSample calls f with every sample of a Prometheus text exposition.
func eachSample(r io.Reader, f func(series string, v float64)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		f(line[:i], v)
	}
}

// watchTraffic is what the API server sent to all watchers: how many
// events, and how many bytes.
type watchTraffic struct {
	Events, Bytes float64
}

// parseWatchTraffic sums apiserver_watch_events_total and
// apiserver_watch_events_sizes over every resource.
func parseWatchTraffic(r io.Reader) watchTraffic {
	var t watchTraffic
	eachSample(r, func(series string, v float64) {
		name, _, _ := strings.Cut(series, "{")
		switch name {
		case "apiserver_watch_events_total":
			t.Events += v
		case "apiserver_watch_events_sizes_sum":
			t.Bytes += v
		}
	})
	return t
}

// label returns a label's value from a series name{a="x",b="y"}.
func label(series, name string) string {
	_, rest, ok := strings.Cut(series, "{"+name+"=\"")
	if !ok {
		_, rest, ok = strings.Cut(series, ","+name+"=\"")
	}
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, "\"")
	return v
}

// since returns the counters' increase from before.
func (c controllerCounters) since(before controllerCounters) controllerCounters {
	out := controllerCounters{Reconciles: map[string]float64{}, APIRequests: c.APIRequests - before.APIRequests}
	for k, v := range c.Reconciles {
		out.Reconciles[k] = v - before.Reconciles[k]
	}
	return out
}
