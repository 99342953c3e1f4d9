package fleet

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the nearest-rank percentile p (0-100] of samples: the
// smallest sample at least p% of the samples do not exceed. Over 50
// samples, p99 is the largest one.
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Machine describes where the figures come from.
type Machine struct {
	CPUModel   string `json:"cpuModel"`
	CPUs       int    `json:"cpus"`
	MemoryGiB  string `json:"memoryGiB"`
	GoVersion  string `json:"goVersion"`
	Kubernetes string `json:"kubernetes"`
	Kernel     string `json:"kernel,omitempty"`
	// LoadAverage, from /proc/loadavg when the run started, tells whether
	// the machine was shared.
	LoadAverage string `json:"loadAverage,omitempty"`
}

func (m Machine) String() string {
	return fmt.Sprintf("%d x %s, %s GiB RAM, %s, Kubernetes %s, Linux %s; load average at start %s",
		m.CPUs, m.CPUModel, m.MemoryGiB, m.GoVersion, m.Kubernetes, m.Kernel, m.LoadAverage)
}

// readMachine reads the CPU model and memory from /proc; fields it cannot
// read stay empty.
func readMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(raw, "model name", ":")
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := strconv.ParseInt(strings.TrimSuffix(procField(raw, "MemTotal", ":"), " kB"), 10, 64); err == nil {
			m.MemoryGiB = fmt.Sprintf("%.1f", float64(kb)/(1<<20))
		}
	}
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(raw)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	return m
}

// procField returns the value of the first "name<sep> value" line of a
// /proc file.
func procField(raw []byte, name, sep string) string {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procUsage is a process's memory and CPU time from /proc.
type procUsage struct {
	RSS, HWM int64 // bytes
	// Anon and File split RSS: anonymous memory (the Go heap, stacks,
	// the runtime) and file pages (the binary's text and tables, touched
	// by running, unwinding and symbolizing profiles).
	Anon, File int64
	CPU        time.Duration
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (reading it needs sysconf,
// that is cgo).
const clockTicks = 100

func readProcUsage(pid int) (procUsage, error) {
	var u procUsage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	if u.RSS, err = kib(procField(status, "VmRSS", ":")); err != nil {
		return u, fmt.Errorf("process %d VmRSS: %w", pid, err)
	}
	if u.HWM, err = kib(procField(status, "VmHWM", ":")); err != nil {
		return u, fmt.Errorf("process %d VmHWM: %w", pid, err)
	}
	// Absent before Linux 4.5: left at 0.
	u.Anon, _ = kib(procField(status, "RssAnon", ":"))
	u.File, _ = kib(procField(status, "RssFile", ":"))
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	if u.CPU, err = parseStatCPU(string(stat)); err != nil {
		return u, fmt.Errorf("process %d stat: %w", pid, err)
	}
	return u, nil
}

func kib(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	return n << 10, err
}

// parseStatCPU returns utime+stime from a /proc/<pid>/stat line. The
// command name, in parentheses, may hold spaces: fields are counted after
// its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %.40q", stat)
	}
	fields := strings.Fields(stat[i+1:])
	// After the name: state is field 3, utime 14 and stime 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("short stat line %.40q", stat)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// cpuSample is the CPU time used so far by the benchmark, each of its
// child processes (etcd, kube-apiserver, kube-controller-manager, the
// controller) by command name, and the whole machine.
type cpuSample struct {
	procs       map[string]time.Duration
	busy, total int64 // machine-wide, in clock ticks
	at          time.Time
}

// benchProcess names the benchmark's own process in CPU figures, and
// otherProcesses everything else the machine ran meanwhile.
const (
	benchProcess   = "bench"
	otherProcesses = "other"
)

func sampleCPU() cpuSample {
	s := cpuSample{procs: map[string]time.Duration{}, at: time.Now()}
	self := os.Getpid()
	if raw, err := os.ReadFile("/proc/self/stat"); err == nil {
		if cpu, err := parseStatCPU(string(raw)); err == nil {
			s.procs[benchProcess] = cpu
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		comm, ppid, cpu, err := parseStat(string(raw))
		if err != nil || ppid != self {
			continue
		}
		s.procs[processName(comm)] += cpu
	}
	if raw, err := os.ReadFile("/proc/stat"); err == nil {
		s.busy, s.total = parseMachineCPU(string(raw))
	}
	return s
}

// processName shortens the kernel's command names (at most 15 bytes) to
// the names the figures use.
func processName(comm string) string {
	switch comm {
	case "pullsecrets-con":
		return "controller"
	case "kube-apiserver":
		return "apiserver"
	case "kube-controller":
		return "kcm"
	}
	return comm
}

// parseStat returns a /proc/<pid>/stat line's command name, parent and
// CPU time.
func parseStat(stat string) (comm string, ppid int, cpu time.Duration, err error) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, 0, fmt.Errorf("no command name in %.40q", stat)
	}
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 2 {
		return "", 0, 0, fmt.Errorf("short stat line %.40q", stat)
	}
	if ppid, err = strconv.Atoi(fields[1]); err != nil {
		return "", 0, 0, fmt.Errorf("parent %q: %w", fields[1], err)
	}
	cpu, err = parseStatCPU(stat)
	return stat[open+1 : end], ppid, cpu, err
}

// parseMachineCPU returns busy and total ticks from /proc/stat's first
// line; idle and iowait are not busy.
func parseMachineCPU(stat string) (busy, total int64) {
	first, _, _ := strings.Cut(stat, "\n")
	fields := strings.Fields(first)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0
		}
		// guest and guest_nice (9th and 10th) are already in user and nice.
		if i >= 8 {
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// CPUUse is the CPU time spent between two samples.
type CPUUse struct {
	// Seconds of CPU time by process.
	Seconds map[string]float64 `json:"seconds"`
	// MachineBusy is the share of the machine's CPU time that was busy,
	// every process included (1 = every core saturated).
	MachineBusy float64 `json:"machineBusy"`
	// WallSeconds is the time between the samples.
	WallSeconds float64 `json:"wallSeconds"`
}

func (a cpuSample) until(b cpuSample) CPUUse {
	u := CPUUse{Seconds: map[string]float64{}, WallSeconds: b.at.Sub(a.at).Seconds()}
	for name, cpu := range b.procs {
		u.Seconds[name] = (cpu - a.procs[name]).Seconds()
	}
	if d := b.total - a.total; d > 0 {
		u.MachineBusy = float64(b.busy-a.busy) / float64(d)
		// What the machine spent outside the benchmark's processes: other
		// work on a shared machine, which the figures then include.
		ours := 0.0
		for _, s := range u.Seconds {
			ours += s
		}
		u.Seconds[otherProcesses] = max(0, float64(b.busy-a.busy)/clockTicks-ours)
	}
	return u
}
