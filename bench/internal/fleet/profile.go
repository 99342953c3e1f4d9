package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// HeapStats is the controller's Go heap right after a forced collection,
// from runtime.MemStats as /debug/pprof/heap?debug=1 prints them.
type HeapStats struct {
	// HeapAlloc is the live heap: what the caches and everything else hold.
	HeapAlloc int64 `json:"heapAllocBytes"`
	// HeapInuse counts the spans holding it (fragmentation included).
	HeapInuse int64 `json:"heapInuseBytes"`
	// HeapSys is what the heap got from the OS, HeapReleased what it gave
	// back; Sys is every byte the runtime holds.
	HeapSys      int64 `json:"heapSysBytes"`
	HeapReleased int64 `json:"heapReleasedBytes"`
	Sys          int64 `json:"sysBytes"`
	HeapObjects  int64 `json:"heapObjects"`
	NumGC        int64 `json:"numGC"`
	// Profile is the heap profile file taken with it (pprof format).
	Profile string `json:"profile,omitempty"`
}

// parseMemStats reads the runtime.MemStats lines of a debug=1 heap profile.
func parseMemStats(r io.Reader) (HeapStats, error) {
	var h HeapStats
	fields := map[string]*int64{
		"HeapAlloc": &h.HeapAlloc, "HeapInuse": &h.HeapInuse, "HeapSys": &h.HeapSys, "HeapReleased": &h.HeapReleased,
		"Sys": &h.Sys, "HeapObjects": &h.HeapObjects, "NumGC": &h.NumGC,
	}
	found := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if p := fields[name]; ok && p != nil {
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return h, fmt.Errorf("MemStats %s: %w", name, err)
			}
			*p = n
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return h, err
	}
	if found < len(fields) {
		return h, fmt.Errorf("heap profile: %d of %d MemStats fields", found, len(fields))
	}
	return h, nil
}

func httpGet(ctx context.Context, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// heapSnapshot forces a collection in the controller, saves its heap
// profile to path and returns its MemStats.
func heapSnapshot(ctx context.Context, pprofAddr, path string) (HeapStats, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	f, err := os.Create(path)
	if err != nil {
		return HeapStats{}, fmt.Errorf("create heap profile: %w", err)
	}
	err = httpGet(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return HeapStats{}, fmt.Errorf("heap profile: %w", err)
	}
	var text strings.Builder
	if err := httpGet(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1&debug=1", &text); err != nil {
		return HeapStats{}, fmt.Errorf("heap MemStats: %w", err)
	}
	h, err := parseMemStats(strings.NewReader(text.String()))
	h.Profile = path
	return h, err
}

// cpuProfiles records, in the background, a CPU profile of the controller
// (through its pprof endpoint, as soon as it answers) and one of
// kube-apiserver (through the API, as administrator) over the same d, into
// the files prefix-controller.pb.gz and prefix-apiserver.pb.gz. Failures
// only leave a file out; the returned function waits for both.
func cpuProfiles(ctx context.Context, admin kubernetes.Interface, pprofAddr string, d time.Duration, prefix string, logf func(string, ...any)) func() {
	if d <= 0 {
		return func() {}
	}
	secs := strconv.Itoa(int(d.Seconds()))
	done := make(chan struct{}, 2)
	save := func(name string, get func(ctx context.Context, w io.Writer) error) {
		defer func() { done <- struct{}{} }()
		ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
		defer cancel()
		f, err := os.Create(prefix + "-" + name + ".pb.gz")
		if err != nil {
			logf("CPU profile of %s: %v", name, err)
			return
		}
		defer f.Close()
		if err := get(ctx, f); err != nil {
			logf("CPU profile of %s: %v", name, err)
		}
	}
	go save("controller", func(ctx context.Context, w io.Writer) error {
		for {
			err := httpGet(ctx, "http://"+pprofAddr+"/debug/pprof/profile?seconds="+secs, w)
			if err == nil || ctx.Err() != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond) // not listening yet
		}
	})
	go save("apiserver", func(ctx context.Context, w io.Writer) error {
		raw, err := admin.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", secs).Timeout(d + time.Minute).DoRaw(ctx)
		if err != nil {
			return err
		}
		_, err = w.Write(raw)
		return err
	})
	return func() { <-done; <-done }
}

// peakHeap polls the controller's MemStats (no forced collection) every
// interval until stop is closed, and saves a heap profile whenever
// HeapInuse reaches a new high: the profile then shows what the last
// collection before the peak found live, and MemStats how far the heap
// grew. It returns the MemStats at the highest HeapInuse seen.
func peakHeap(ctx context.Context, pprofAddr, path string, interval time.Duration, stop <-chan struct{}) HeapStats {
	var peak HeapStats
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return peak
		case <-ctx.Done():
			return peak
		case <-tick.C:
		}
		var text strings.Builder
		if err := httpGet(ctx, "http://"+pprofAddr+"/debug/pprof/heap?debug=1", &text); err != nil {
			continue // not listening yet, or stopping
		}
		h, err := parseMemStats(strings.NewReader(text.String()))
		if err != nil || h.HeapInuse <= peak.HeapInuse {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			continue
		}
		err = httpGet(ctx, "http://"+pprofAddr+"/debug/pprof/heap", f)
		if cerr := f.Close(); err == nil && cerr == nil {
			h.Profile = path
		}
		peak = h
	}
}
