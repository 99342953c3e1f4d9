package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// Result is everything one run measured; it is written as JSON.
type Result struct {
	Started        time.Time `json:"started"`
	Finished       time.Time `json:"finished"`
	Options        Options   `json:"options"`
	Machine        Machine   `json:"machine"`
	ControllerArgs []string  `json:"controllerArgs"`
	ControllerEnv  []string  `json:"controllerEnv,omitempty"`
	Setup          Fleet     `json:"fleet"`
	// Floor is the fastest floor run on the fleet as the controller's
	// measured start found it (with Pods and workloads, when any).
	Floor *Phase `json:"floor"`
	// FloorBare is the fastest floor run on the same fleet before it had
	// Pods and workloads (--bare-cold).
	FloorBare           *Phase      `json:"floorBare,omitempty"`
	Phases              []Phase     `json:"phases"`
	NewNamespaceLatency Latency     `json:"newNamespaceLatency"`
	Retirement          *Retirement `json:"retirement,omitempty"`
	// RestartStatuses are the ClusterPullSecret's status, as it changed
	// during the warm restart (polled every 100 ms).
	RestartStatuses []string `json:"restartStatuses,omitempty"`
	// Baseline is the controller on the empty cluster, before the fleet
	// (--baseline): what memory per namespace is counted above.
	Baseline *Phase `json:"baseline,omitempty"`
	// Admission is the latency of Pod creates under each admission
	// configuration, in Pods mode.
	Admission []AdmissionCost `json:"admission,omitempty"`
	// Peer is the peer controller's run on the same fleet (--peer).
	Peer *Peer `json:"peer,omitempty"`
	// LoadAverageEnd is /proc/loadavg when the run finished.
	LoadAverageEnd string   `json:"loadAverageEnd,omitempty"`
	Figures        []Figure `json:"figures"`
}

// Retirement is what became of the old copies in the rename, and after
// their holders went.
type Retirement struct {
	// OldCopies is how many copies had the first name when the rename
	// began (one per namespace).
	OldCopies int `json:"oldCopies"`
	// Retired and Held count old copies gone and still there when the
	// rename settled; HeldBy splits Held by what lists the name.
	Retired int            `json:"retired"`
	Held    int            `json:"held"`
	HeldBy  map[string]int `json:"heldBy"`
	// RetiredWhileHeld (deleted while something lists it) and KeptFree
	// (kept though nothing lists it) must be 0.
	RetiredWhileHeld int `json:"retiredWhileHeld"`
	KeptFree         int `json:"keptFree"`
	// StatusPendingRetirement and StatusRetiring are what the
	// ClusterPullSecret's status said once the rename settled.
	StatusPendingRetirement int                     `json:"statusPendingRetirement"`
	StatusRetiring          []v1alpha1.RetiringCopy `json:"statusRetiringSample,omitempty"`
	// HolderWrites are the benchmark's writes that removed the holders
	// (templates patched, ReplicaSets scaled to 0, Pods deleted), over
	// HoldersGoneSeconds; RetiredAfterHolders copies were then retired,
	// the last LastRetiredAfterSeconds after the last holder went.
	HolderWrites            int     `json:"holderWrites,omitempty"`
	HoldersGoneSeconds      float64 `json:"holdersGoneSeconds,omitempty"`
	RetiredAfterHolders     int     `json:"retiredAfterHolders,omitempty"`
	LastRetiredAfterSeconds float64 `json:"lastRetiredAfterSeconds,omitempty"`
}

// Fleet describes what the run created.
type Fleet struct {
	Namespaces           int `json:"namespaces"`
	ServiceAccounts      int `json:"serviceAccounts"`
	ServiceAccountsPerNS int `json:"serviceAccountsPerNamespace"`
	// Pods and workloads (package doc of workloads.go): Pods in all, of
	// which StuckPods wait on a failed pull; workload objects
	// (Deployments, ReplicaSets, StatefulSets, CronJobs); and the records
	// the controller should keep of them: Pods that read a Secret or are
	// stuck, templates that read a Secret or may make Pods.
	PodsPerNS              int     `json:"podsPerNamespace,omitempty"`
	StuckPodsPerNS         int     `json:"stuckPodsPerNamespace,omitempty"`
	Pods                   int     `json:"pods,omitempty"`
	StuckPods              int     `json:"stuckPods,omitempty"`
	WorkloadObjects        int     `json:"workloadObjects,omitempty"`
	PodRecords             int     `json:"podRecords,omitempty"`
	WorkloadRecords        int     `json:"workloadRecords,omitempty"`
	PodSetupSeconds        float64 `json:"podSetupSeconds,omitempty"`
	UnrelatedSecrets       int     `json:"unrelatedSecrets"`
	UnrelatedSecretsPerNS  int     `json:"unrelatedSecretsPerNamespace"`
	UnrelatedSecretBytes   int64   `json:"unrelatedSecretBytes"`
	NewNamespacesMeasured  int     `json:"newNamespacesMeasured"`
	SetupSeconds           float64 `json:"setupSeconds"`
	SourceNamespace        string  `json:"sourceNamespace"`
	ControllerUser         string  `json:"controllerUser"`
	FloorUser              string  `json:"floorUser"`
	ClusterPullSecretScope string  `json:"clusterPullSecretNamespaceSelector"`
}

// Phase is one measured phase: its goal's time, and one identity's
// requests, counted by the API server, from its start until it settled.
type Phase struct {
	Name string `json:"name"`
	// GoalSeconds is the time to the phase's goal (for the floor and cold
	// start: every ServiceAccount carrying the secret); for new namespaces,
	// the p99 latency.
	GoalSeconds float64 `json:"goalSeconds,omitempty"`
	// ClientSeconds, for the floor, is when its last write was answered.
	ClientSeconds float64 `json:"clientSeconds,omitempty"`
	// FirstWriteSeconds, for a cold start, is when the first copy or
	// ServiceAccount write completed, from the controller's start: before
	// it the controller starts, lists and waits.
	FirstWriteSeconds float64 `json:"firstWriteSeconds,omitempty"`
	// WindowSeconds is the phase's length, until it settled.
	WindowSeconds float64 `json:"windowSeconds"`
	Settled       bool    `json:"settled"`
	// MinimalWrites is the least number of writes the phase needs.
	MinimalWrites int `json:"minimalWrites"`
	// Writes counts successful writes of any resource.
	Writes int `json:"writes"`
	// CopyAndSAWrites counts successful writes of Secrets and
	// ServiceAccounts, the ones MinimalWrites counts.
	CopyAndSAWrites int `json:"copyAndServiceAccountWrites"`
	// SecretCreates and ServiceAccountWrites split them: in Pods mode a
	// cold start is one Secret create per namespace and no ServiceAccount
	// write.
	SecretCreates        int `json:"secretCreates"`
	ServiceAccountWrites int `json:"serviceAccountWrites"`
	FailedRequests       int `json:"failedRequests"`
	NonWatchRequests     int `json:"nonWatchRequests"` // leases aside
	LeaseRequests        int `json:"leaseRequests"`
	Watches              int `json:"watches"`
	// Requests by verb, resource and, for failures, code.
	Requests []RequestCount `json:"requests"`
	// ControllerCountedRequests are the API requests the controller
	// counted itself (pullsecrets_api_requests_total), to cross-check the
	// audit log.
	ControllerCountedRequests int `json:"controllerCountedRequests,omitempty"`
	// WatchEventsSent and WatchBytesSent are what the API server sent to
	// every watcher (the controller, kube-controller-manager and the
	// benchmark's own watch) during the phase.
	WatchEventsSent int   `json:"watchEventsSent"`
	WatchBytesSent  int64 `json:"watchBytesSent"`
	// Reconciles by controller, from controller_runtime_reconcile_total.
	Reconciles map[string]int `json:"reconciles,omitempty"`
	// CPU is the CPU time of every process, from the phase's start to its
	// goal, or over the whole window for phases without a goal.
	CPU          CPUUse `json:"cpu"`
	PeakRSSBytes int64  `json:"peakRSSBytes,omitempty"`
	HWMBytes     int64  `json:"hwmBytes,omitempty"`
	// PeakAnonBytes and PeakFileBytes split the process's peak RSS, as
	// sampled every 100 ms since it started: anonymous memory (heap,
	// stacks, runtime) and the binary's file pages.
	PeakAnonBytes int64 `json:"peakAnonBytes,omitempty"`
	PeakFileBytes int64 `json:"peakFileBytes,omitempty"`
	// BinaryPages splits the binary's resident pages by section at the
	// end of the phase.
	BinaryPages []SectionPages `json:"binaryPages,omitempty"`
	// Heap is the controller's heap after a forced collection at the end
	// of the phase (--pprof).
	Heap *HeapStats `json:"heap,omitempty"`
	// PeakHeap is the MemStats at the highest HeapInuse seen in the
	// phase, polled every 250 ms (--peak-heap).
	PeakHeap *HeapStats `json:"peakHeap,omitempty"`
}

// Latency summarises new-namespace latencies.
type Latency struct {
	SamplesMillis []float64 `json:"samplesMillis"`
	P50Millis     float64   `json:"p50Millis"`
	P99Millis     float64   `json:"p99Millis"`
	MaxMillis     float64   `json:"maxMillis"`
}

func newLatency(samples []time.Duration) Latency {
	l := Latency{
		P50Millis: ms(percentile(samples, 50)),
		P99Millis: ms(percentile(samples, 99)),
		MaxMillis: ms(percentile(samples, 100)),
	}
	for _, s := range samples {
		l.SamplesMillis = append(l.SamplesMillis, ms(s))
	}
	return l
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Figure is one headline figure and its target.
type Figure struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Target string `json:"target,omitempty"`
	// Met is unset when the run alone cannot tell.
	Met *bool `json:"met,omitempty"`
}

func (r *Result) phase(name string) *Phase {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			return &r.Phases[i]
		}
	}
	return nil
}

func met(ok bool) *bool { return &ok }

// floorRuns lists the goal times of the floor runs named prefix-1,
// prefix-2...
func (r *Result) floorRuns(prefix string) string {
	var runs []string
	for _, p := range r.Phases {
		if rest, ok := strings.CutPrefix(p.Name, prefix+"-"); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			runs = append(runs, fmt.Sprintf("%.2f", p.GoalSeconds))
		}
	}
	return strings.Join(runs, ", ")
}

// otherWrites lists the successful writes of a phase that are neither
// Secrets nor ServiceAccounts.
func otherWrites(p *Phase) string {
	var out []string
	for _, rc := range p.Requests {
		if rc.IsWrite() && rc.Code == 0 && rc.Resource != "secrets" && rc.Resource != "serviceaccounts" {
			out = append(out, fmt.Sprintf("%s %s %d", rc.Verb, rc.Resource, rc.Count))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// failedOn counts a phase's failed requests on the resources.
func failedOn(p *Phase, resources ...string) int {
	n := 0
	for _, rc := range p.Requests {
		if rc.Code != 0 && slices.Contains(resources, rc.Resource) {
			n += rc.Count
		}
	}
	return n
}

// failures lists a phase's failed requests.
func failures(p *Phase) string {
	var out []string
	for _, rc := range p.Requests {
		if rc.Code != 0 {
			out = append(out, fmt.Sprintf("%s %d", rc.Request, rc.Count))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// evaluate computes the headline figures against the targets.
func (r *Result) evaluate() {
	add := func(name, value, target string, ok *bool) {
		r.Figures = append(r.Figures, Figure{Name: name, Value: value, Target: target, Met: ok})
	}
	f := r.Setup
	if f.Pods > 0 {
		add("fleet: Pods and workloads",
			fmt.Sprintf("%d Pods (%d a namespace, %d of them stuck on a pull), %d workload objects; records the controller should keep: %d Pods, %d workloads",
				f.Pods, f.PodsPerNS, f.StuckPodsPerNS, f.WorkloadObjects, f.PodRecords, f.WorkloadRecords), "", nil)
	}
	cold, bare := r.phase("cold"), r.phase("cold-bare")
	with := ""
	if f.Pods > 0 {
		with = " (with Pods)"
	}
	if r.FloorBare != nil {
		add("floor without Pods (fastest run)", fmt.Sprintf("%.2f s (runs: %s s; %d writes, %d workers)",
			r.FloorBare.GoalSeconds, r.floorRuns("floor-bare"), r.FloorBare.CopyAndSAWrites, r.Options.FloorWorkers), "", nil)
	}
	if bare != nil && r.FloorBare != nil {
		x := ratio(bare.GoalSeconds, r.FloorBare.GoalSeconds)
		add("cold convergence without Pods", fmt.Sprintf("%.2f s = %.2fx the floor without Pods; writes %d / %d minimal",
			bare.GoalSeconds, x, bare.CopyAndSAWrites, bare.MinimalWrites), "<= 1.3x", met(x <= 1.3))
	}
	if r.Floor != nil {
		add("floor"+with+" (fastest run)", fmt.Sprintf("%.2f s (runs: %s s; %d writes, %d workers)",
			r.Floor.GoalSeconds, r.floorRuns("floor"), r.Floor.CopyAndSAWrites, r.Options.FloorWorkers), "", nil)
	}
	if cold != nil && r.Floor != nil {
		x := ratio(cold.GoalSeconds, r.Floor.GoalSeconds)
		v := fmt.Sprintf("%.2f s = %.2fx the floor", cold.GoalSeconds, x)
		if bare != nil {
			v += fmt.Sprintf(" = %.2fx the cold start without Pods; first copy or ServiceAccount written after %.2f s vs %.2f s without Pods",
				ratio(cold.GoalSeconds, bare.GoalSeconds), cold.FirstWriteSeconds, bare.FirstWriteSeconds)
		}
		add("cold convergence"+with, v, "<= 1.3x", met(x <= 1.3))
	}
	if cold != nil {
		failed := failedOn(cold, "secrets", "serviceaccounts")
		add("cold writes"+with+" (Secrets + ServiceAccounts)",
			fmt.Sprintf("%d / %d minimal = %.2f; %d failed; other writes: %s; %d other failed requests (%s)",
				cold.CopyAndSAWrites, cold.MinimalWrites, ratio(float64(cold.CopyAndSAWrites), float64(cold.MinimalWrites)), failed,
				otherWrites(cold), cold.FailedRequests-failed, failures(cold)),
			"1.00, none failed", met(cold.CopyAndSAWrites == cold.MinimalWrites && failed == 0))
		if r.Floor != nil && cold.CopyAndSAWrites > 0 && r.Floor.CopyAndSAWrites > 0 {
			add("CPU to the goal: cold start vs floor",
				fmt.Sprintf("controller %.2f ms/write, API server %.2f vs %.2f ms/write; machine %.0f%% vs %.0f%% busy",
					1000*cold.CPU.Seconds["controller"]/float64(cold.CopyAndSAWrites),
					1000*cold.CPU.Seconds["apiserver"]/float64(cold.CopyAndSAWrites),
					1000*r.Floor.CPU.Seconds["apiserver"]/float64(r.Floor.CopyAndSAWrites),
					100*cold.CPU.MachineBusy, 100*r.Floor.CPU.MachineBusy), "", nil)
		}
		add("cold requests, all (writes, reads, watches)",
			fmt.Sprintf("%d (%d non-watch, %d watches)", cold.NonWatchRequests+cold.Watches+cold.LeaseRequests, cold.NonWatchRequests, cold.Watches), "", nil)
	}
	if cold != nil && bare != nil && bare.HWMBytes > 0 {
		x := ratio(float64(cold.HWMBytes), float64(bare.HWMBytes))
		v := fmt.Sprintf("%s vs %s = %.2fx", mib(cold.HWMBytes), mib(bare.HWMBytes), x)
		if cold.PeakHeap != nil && bare.PeakHeap != nil {
			v += fmt.Sprintf("; Go heap in use at its highest (HeapInuse, polled every 250 ms) %s vs %s",
				mib(cold.PeakHeap.HeapInuse), mib(bare.PeakHeap.HeapInuse))
		}
		if cold.Heap != nil && bare.Heap != nil {
			v += fmt.Sprintf("; heap got from the OS (HeapSys) %s vs %s", mib(cold.Heap.HeapSys), mib(bare.Heap.HeapSys))
		}
		add("controller peak RSS (VmHWM) of the cold start, with Pods vs without", v, "<= 1.25x", met(x <= 1.25))
	}
	if cold != nil && bare != nil && cold.Heap != nil && bare.Heap != nil {
		grew := cold.Heap.HeapAlloc - bare.Heap.HeapAlloc
		v := fmt.Sprintf("%s vs %s", mib(cold.Heap.HeapAlloc), mib(bare.Heap.HeapAlloc))
		if n := f.PodRecords + f.WorkloadRecords; n > 0 {
			v += fmt.Sprintf(": %+d bytes for %d Pod and workload records, %d bytes a record (everything else that grew included)",
				grew, n, grew/int64(n))
		}
		add("controller live heap after the cold start (forced GC), with Pods vs without", v, "", nil)
	}
	r.evaluateMemory(add)
	r.evaluatePodsMode(add)
	if s := r.phase("steady"); s != nil {
		add(fmt.Sprintf("steady state, %.0f s, no leader election", s.WindowSeconds),
			fmt.Sprintf("%d non-watch requests, %d watches started", s.NonWatchRequests, s.Watches), "0 non-watch", met(s.NonWatchRequests == 0))
	}
	if p := r.phase("new-namespaces"); p != nil {
		l := r.NewNamespaceLatency
		add(fmt.Sprintf("new namespace to ServiceAccounts carrying it (%d)", len(l.SamplesMillis)),
			fmt.Sprintf("p50 %.0f ms, p99 %.0f ms; writes %d / %d minimal", l.P50Millis, l.P99Millis, p.CopyAndSAWrites, p.MinimalWrites),
			"p99 < 1 s", met(l.P99Millis < 1000))
	}
	if p := r.phase("rotation"); p != nil {
		add("rotation: source changed to every copy updated",
			fmt.Sprintf("%.2f s; writes %d / %d minimal", p.GoalSeconds, p.CopyAndSAWrites, p.MinimalWrites), "", nil)
	}
	if p := r.phase("rename"); p != nil {
		v := fmt.Sprintf("%.2f s; writes %d / %d minimal; other writes: %s", p.GoalSeconds, p.CopyAndSAWrites, p.MinimalWrites, otherWrites(p))
		var ok *bool
		if rt := r.Retirement; rt != nil {
			var by []string
			for _, h := range []holder{heldByPods, heldByScaledToZero, heldByCronJob} {
				if n := rt.HeldBy[h.String()]; n > 0 {
					by = append(by, fmt.Sprintf("%d by a %s", n, h))
				}
			}
			v += fmt.Sprintf("; old copies: %d retired, %d held", rt.Retired, rt.Held)
			if len(by) > 0 {
				v += " (" + strings.Join(by, ", ") + ")"
			}
			v += fmt.Sprintf(", %d retired while held, %d kept though free; status.pendingRetirement %d",
				rt.RetiredWhileHeld, rt.KeptFree, rt.StatusPendingRetirement)
			ok = met(rt.RetiredWhileHeld == 0 && rt.KeptFree == 0 && p.CopyAndSAWrites == p.MinimalWrites)
		}
		add("rename: to only the new name, old copies retired unless something uses them", v, "held kept, free retired, writes minimal", ok)
	}
	if p := r.phase("holders-gone"); p != nil && r.Retirement != nil {
		rt := r.Retirement
		add("holders gone: templates list the new name, old Pods replaced",
			fmt.Sprintf("%d copies retired, the last %.2f s after the last holder went (the benchmark's %d writes took %.2f s); writes %d / %d minimal",
				rt.RetiredAfterHolders, rt.LastRetiredAfterSeconds, rt.HolderWrites, rt.HoldersGoneSeconds, p.CopyAndSAWrites, p.MinimalWrites),
			"writes minimal", met(p.CopyAndSAWrites == p.MinimalWrites))
	}
	if p := r.phase("restart-leader-elect"); p != nil {
		own := p.Writes - leaderElectionWrites(p)
		v := fmt.Sprintf("%d writes besides the Lease and its leader Event (all writes: %s), %d non-watch requests", own, otherWrites(p), p.NonWatchRequests)
		if len(r.RestartStatuses) > 1 {
			v += "; status went: " + strings.Join(r.RestartStatuses, " -> ")
		}
		add("warm restart (leader election on)", v, "0 writes", met(own == 0))
	}
	if p := r.phase("steady-leader-elect"); p != nil {
		add(fmt.Sprintf("steady state, %.0f s, leader election on", p.WindowSeconds),
			fmt.Sprintf("%d non-watch requests besides %d Lease requests", p.NonWatchRequests, p.LeaseRequests), "0 non-watch", met(p.NonWatchRequests == 0))
	}
	var hwm int64
	for _, p := range r.Phases {
		if p.Name != "cold-bare" && p.Name != "restart-leader-elect" && p.Name != "steady-leader-elect" {
			hwm = max(hwm, p.HWMBytes)
		}
	}
	if hwm > 0 {
		v := fmt.Sprintf("%s over every phase, with %s of unrelated Secret data in the cluster", mib(hwm), mib(r.Setup.UnrelatedSecretBytes))
		if bare != nil && bare.HWMBytes > 0 {
			v += fmt.Sprintf("; %.2fx the cold start without Pods", ratio(float64(hwm), float64(bare.HWMBytes)))
		}
		add("controller peak RSS (VmHWM)", v, "flat in unrelated Secrets (compare --unrelated-secrets 0)", nil)
	}
	add("machine load (1, 5, 15 min)", fmt.Sprintf("%s at the start, %s at the end", r.Machine.LoadAverage, r.LoadAverageEnd), "", nil)
}

// kibPerNamespace is how far hwm is above the baseline, per namespace.
func kibPerNamespace(hwm, baseline int64, namespaces int) float64 {
	return float64(hwm-baseline) / 1024 / float64(max(namespaces, 1))
}

// evaluateMemory adds the peak RSS per namespace above the empty
// cluster's, start-up included, and the projection it gives.
func (r *Result) evaluateMemory(add func(name, value, target string, ok *bool)) {
	bl := r.Baseline
	if bl == nil || bl.HWMBytes == 0 {
		return
	}
	n := r.Setup.Namespaces
	v := fmt.Sprintf("%s after %.0f s with no fleet and no ClusterPullSecret", mib(bl.HWMBytes), bl.WindowSeconds)
	if bl.Heap != nil {
		v += fmt.Sprintf("; live heap %s", mib(bl.Heap.HeapAlloc))
	}
	add("controller baseline: peak RSS on the empty cluster", v, "", nil)
	if bare := r.phase("cold-bare"); bare != nil && bare.HWMBytes > 0 {
		add("start-up peak without Pods (VmHWM of the cold start, from the process's start)",
			fmt.Sprintf("%s = %.1f KiB a namespace above the baseline", mib(bare.HWMBytes), kibPerNamespace(bare.HWMBytes, bl.HWMBytes, n)), "", nil)
	}
	cold := r.phase("cold")
	if cold == nil || cold.HWMBytes == 0 {
		return
	}
	var hwm int64
	for _, p := range r.Phases {
		if p.Name != "cold-bare" {
			hwm = max(hwm, p.HWMBytes)
		}
	}
	with := ""
	if r.Setup.Pods > 0 {
		with = fmt.Sprintf(" with %d Pods", r.Setup.Pods)
	}
	x := kibPerNamespace(hwm, bl.HWMBytes, n)
	add("start-up peak"+with+" (VmHWM of the cold start, from the process's start)",
		fmt.Sprintf("%s = %.1f KiB a namespace above the baseline", mib(cold.HWMBytes), kibPerNamespace(cold.HWMBytes, bl.HWMBytes, n)), "", nil)
	var anon, file int64
	for _, p := range r.Phases {
		anon, file = max(anon, p.PeakAnonBytes), max(file, p.PeakFileBytes)
	}
	if pr := r.Peer; pr != nil {
		add("peer's peak RSS on the same fleet, after the phases ("+filepath.Base(pr.Binary)+")",
			fmt.Sprintf("%s (anonymous %s, file pages %s), converged in %.1f s; pullsecrets' peak over every phase: %s (anonymous %s, file pages %s)",
				mib(pr.HWMBytes), mib(pr.PeakAnonBytes), mib(pr.PeakFileBytes), pr.ConvergedSeconds,
				mib(hwm), mib(anon), mib(file)),
			"pullsecrets no higher", met(hwm <= pr.HWMBytes))
	}
	if pages := r.binaryPages(); pages != "" {
		add("the binary's resident pages by section", pages, "", nil)
	}
	add("peak RSS per namespace"+with+", every phase and the start-up included",
		fmt.Sprintf("%s = %.1f KiB a namespace above the baseline (peak anonymous %s vs %s on the empty cluster, binary's file pages %s vs %s); at that rate 100,000 namespaces take %s",
			mib(hwm), x, mib(anon), mib(bl.PeakAnonBytes), mib(file), mib(bl.PeakFileBytes), mib(bl.HWMBytes+int64(x*1024*100000))),
		"<= 10 KiB a namespace", met(x <= 10))
}

// binaryPages names the largest sections of the binaries' resident pages:
// the controller's on the empty cluster and after its last phase, and the
// peer's. A Go binary's file pages are mostly a function of its size, so
// they show how much of a difference between two programs is their code.
func (r *Result) binaryPages() string {
	var parts []string
	if bl := r.Baseline; bl != nil && len(bl.BinaryPages) > 0 {
		parts = append(parts, "pullsecrets on the empty cluster: "+sectionSummary(bl.BinaryPages, 3))
	}
	if n := len(r.Phases); n > 0 && len(r.Phases[n-1].BinaryPages) > 0 {
		parts = append(parts, "after "+r.Phases[n-1].Name+": "+sectionSummary(r.Phases[n-1].BinaryPages, 3))
	}
	if r.Peer != nil && len(r.Peer.BinaryPages) > 0 {
		parts = append(parts, filepath.Base(r.Peer.Binary)+": "+sectionSummary(r.Peer.BinaryPages, 3))
	}
	return strings.Join(parts, "; ")
}

// evaluatePodsMode adds Pods mode's writes and the admission cost of a
// Pod create.
func (r *Result) evaluatePodsMode(add func(name, value, target string, ok *bool)) {
	if r.Options.AttachTo != attachPods {
		return
	}
	for _, name := range []string{"cold-bare", "cold", "new-namespaces", "rename"} {
		p := r.phase(name)
		if p == nil {
			continue
		}
		creates := r.Options.namespacesOf(name, r.Setup)
		add("Pods mode, "+name+": Secret creates, ServiceAccount writes",
			fmt.Sprintf("%d Secret creates for %d namespaces, %d ServiceAccount writes", p.SecretCreates, creates, p.ServiceAccountWrites),
			"1 a namespace, 0", met(p.SecretCreates == creates && p.ServiceAccountWrites == 0))
	}
	if len(r.Admission) == 0 {
		return
	}
	base := r.Admission[0]
	for _, c := range r.Admission {
		v := fmt.Sprintf("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms, mean %.2f ms over %d dry-run creates; %d injected; load %s",
			c.P50Millis, c.P90Millis, c.P99Millis, c.MaxMillis, c.MeanMillis, c.Samples, c.Injected, c.LoadAverage)
		if c.Params > 0 {
			v += fmt.Sprintf("; added: p50 %+.2f ms, p99 %+.2f ms", c.P50Millis-base.P50Millis, c.P99Millis-base.P99Millis)
		}
		ok := c.Injected == 0
		if c.Params > 0 {
			ok = c.Injected == c.Samples
		}
		add("Pod create, "+c.Name, v, "all injected with the policy, none without", met(ok))
	}
}

// leaderElectionWrites counts the writes of leader election itself: the
// Lease, and the "became leader" Event that client-go's resource lock
// records as a core/v1 Event (the controller records its own Events
// through events.k8s.io/v1 only).
func leaderElectionWrites(p *Phase) int {
	n := 0
	for _, rc := range p.Requests {
		leaderEvent := rc.Resource == "events" && rc.Verb == "create"
		if (rc.IsLease() || leaderEvent) && rc.IsWrite() && rc.Code == 0 {
			n += rc.Count
		}
	}
	return n
}

func (r *Result) writeJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create result folder: %w", err)
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// printTable prints the headline figures, the phases and the requests by
// phase.
func (r *Result) printTable(out io.Writer) {
	f := r.Setup
	fmt.Fprintf(out, "pullsecrets fleet benchmark: %d namespaces x %d ServiceAccounts, %d unrelated Secrets (%s), %d Pods, %d workload objects\n",
		f.Namespaces, f.ServiceAccountsPerNS, f.UnrelatedSecrets, mib(f.UnrelatedSecretBytes), f.Pods, f.WorkloadObjects)
	fmt.Fprintf(out, "machine: %s\n\n", r.Machine)

	w := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tVALUE\tTARGET\tMET")
	for _, fig := range r.Figures {
		m := "-"
		if fig.Met != nil {
			m = map[bool]string{true: "yes", false: "NO"}[*fig.Met]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", fig.Name, fig.Value, fig.Target, m)
	}
	_ = w.Flush()

	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "PHASE\tGOAL\tWINDOW\tWRITES\tMINIMAL\tSECRET+SA\tNON-WATCH\tLEASE\tWATCHES\tFAILED\tCPU s CTRL/API/ETCD/KCM/BENCH/OTHER\tBUSY\tPEAK RSS\tLIVE HEAP\tRECONCILES NS/CPS\tREQUESTS AUDIT/CTRL\tWATCH EVENTS SENT\t")
	for _, p := range r.Phases {
		rss, heap := "-", "-"
		if p.PeakRSSBytes > 0 {
			rss = mib(p.PeakRSSBytes)
		}
		if p.Heap != nil {
			heap = mib(p.Heap.HeapAlloc)
		}
		goal := "-"
		if p.GoalSeconds > 0 {
			goal = fmt.Sprintf("%.2f s", p.GoalSeconds)
		}
		c := p.CPU.Seconds
		reconciles, requests := "-", "-"
		if p.Reconciles != nil {
			reconciles = fmt.Sprintf("%d/%d", p.Reconciles["namespace"], p.Reconciles["clusterpullsecret"])
			requests = fmt.Sprintf("%d/%d", p.NonWatchRequests+p.LeaseRequests+p.Watches, p.ControllerCountedRequests)
		}
		fmt.Fprintf(w, "%s\t%s\t%.1f s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f/%.1f/%.1f/%.1f/%.1f/%.1f\t%.0f%%\t%s\t%s\t%s\t%s\t%d\t\n", p.Name, goal, p.WindowSeconds,
			p.Writes, p.MinimalWrites, p.CopyAndSAWrites, p.NonWatchRequests, p.LeaseRequests, p.Watches, p.FailedRequests,
			c["controller"], c["apiserver"], c["etcd"], c["kcm"], c[benchProcess], c[otherProcesses], 100*p.CPU.MachineBusy, rss, heap, reconciles, requests, p.WatchEventsSent)
	}
	_ = w.Flush()

	fmt.Fprintln(out, "\nrequests by phase, counted by the API server's audit log (floor*: the floor client; others: the controller)")
	r.printRequests(out)
}

// printRequests prints a matrix: one row per verb, resource and failure
// code, one column per phase.
func (r *Result) printRequests(out io.Writer) {
	counts := map[Request]map[string]int{}
	var rows []Request
	for _, p := range r.Phases {
		for _, rc := range p.Requests {
			if counts[rc.Request] == nil {
				counts[rc.Request] = map[string]int{}
				rows = append(rows, rc.Request)
			}
			counts[rc.Request][p.Name] += rc.Count
		}
	}
	sortRequests(rows)
	w := tabwriter.NewWriter(out, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "REQUEST\t")
	for _, p := range r.Phases {
		fmt.Fprintf(w, "%s\t", p.Name)
	}
	fmt.Fprintln(w)
	for _, req := range rows {
		fmt.Fprintf(w, "%s\t", req)
		for _, p := range r.Phases {
			if c := counts[req][p.Name]; c > 0 {
				fmt.Fprintf(w, "%d\t", c)
			} else {
				fmt.Fprint(w, ".\t")
			}
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
}
