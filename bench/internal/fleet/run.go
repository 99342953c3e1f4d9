package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/testing/controlplane"
)

// bench is one run's state.
type bench struct {
	opts     Options
	progress io.Writer
	logDir   string

	cp       *controlplane.ControlPlane
	admin    kubernetes.Interface
	crd      client.Client // ClusterPullSecrets, as administrator
	floor    kubernetes.Interface
	tracker  *tracker
	audit    *auditLog
	kcm      *controllerProcess
	ctrlConf string // the controller's kubeconfig file
	tmpDir   string // holds ctrlConf; removed at the end

	// key is the ownership key, made before any measured phase as the
	// controller would on its first start; cpsUID is the current
	// ClusterPullSecret's. The floor signs its copies and records with
	// both, so that it writes the controller's bytes.
	key    *ownership.Key
	cpsUID types.UID
	// currentName is the copies' name: secretName, renamedSecret after
	// the rename.
	currentName string
	// binding is the pod-injection policy's binding, in Pods mode.
	binding *admissionv1.MutatingAdmissionPolicyBinding

	// namespaces are the fleet's, new ones included once created.
	namespaces []string
	result     *Result
}

// Run runs the benchmark, prints the table to out, writes the JSON result
// and logs under opts.Out, and reports progress to progress. Whatever
// happens, the control plane and the controller are stopped before it
// returns.
func Run(ctx context.Context, opts Options, out, progress io.Writer) (err error) {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	b := &bench{
		opts:     opts,
		progress: progress,
		logDir:   filepath.Join(opts.Out, stamp+"-logs"),
		result:   &Result{Started: time.Now().UTC(), Options: opts, Machine: readMachine()},

		currentName: secretName,
	}
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		return fmt.Errorf("create log folder: %w", err)
	}
	if err := b.startControlPlane(ctx); err != nil {
		return err
	}
	defer func() {
		b.logf("stopping the control plane")
		if b.tracker != nil {
			b.tracker.Stop()
		}
		if b.kcm != nil {
			err = errors.Join(err, b.kcm.stop(stopGrace))
		}
		if b.audit != nil {
			_ = b.audit.Close()
		}
		if b.tmpDir != "" {
			err = errors.Join(err, os.RemoveAll(b.tmpDir))
		}
		err = errors.Join(err, b.cp.Stop())
	}()

	if err := b.setup(ctx); err != nil {
		return err
	}
	if opts.Pods > 0 && opts.BareCold {
		if err := b.measureBare(ctx); err != nil {
			return err
		}
	}
	if opts.Pods > 0 {
		if err := b.setupPods(ctx); err != nil {
			return err
		}
	}
	if err := b.createCPS(ctx); err != nil {
		return err
	}
	if b.result.Floor, err = b.measureFloor(ctx, "floor"); err != nil {
		return err
	}
	if err := b.measureController(ctx); err != nil {
		return err
	}
	if err := b.runPeer(ctx); err != nil {
		return err
	}

	b.result.Finished = time.Now().UTC()
	b.result.LoadAverageEnd = readMachine().LoadAverage
	b.result.evaluate()
	path := filepath.Join(opts.Out, stamp+".json")
	if err := b.result.writeJSON(path); err != nil {
		return err
	}
	b.result.printTable(out)
	_, _ = fmt.Fprintf(out, "\nresult: %s\nlogs:   %s\n", path, b.logDir)
	return nil
}

func (b *bench) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(b.progress, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// startControlPlane starts etcd, kube-apiserver with the audit log of the
// benchmark's identities, and kube-controller-manager (for `default`
// ServiceAccounts and garbage collection), and builds the clients.
func (b *bench) startControlPlane(ctx context.Context) error {
	abs, err := filepath.Abs(b.logDir)
	if err != nil {
		return fmt.Errorf("resolve log folder: %w", err)
	}
	policy := filepath.Join(abs, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy(controllerIdentity.user(), floorIdentity.user())), 0o600); err != nil {
		return fmt.Errorf("write audit policy: %w", err)
	}
	auditPath := filepath.Join(abs, "audit.log")
	b.logf("starting etcd, kube-apiserver and kube-controller-manager (logs in %s)", b.logDir)
	b.cp, err = controlplane.Start(ctx, controlplane.Options{
		CRDPaths: []string{b.opts.CRDs},
		LogDir:   abs,
		APIServerFlags: map[string]string{
			"audit-policy-file": policy,
			"audit-log-path":    auditPath,
			"audit-log-format":  "json",
			// Written before the response, so a phase boundary is exact.
			"audit-log-mode": "blocking",
			// 0: a plain file that is never rotated under our reader.
			"audit-log-maxsize": "0",
		},
	})
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	if b.audit, err = openAuditLog(auditPath); err != nil {
		return errors.Join(err, b.cp.Stop())
	}

	admin := fast(b.cp.Config)
	if b.admin, err = kubernetes.NewForConfig(admin); err != nil {
		return errors.Join(fmt.Errorf("build admin client: %w", err), b.cp.Stop())
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	if b.crd, err = client.New(rest.CopyConfig(b.cp.Config), client.Options{Scheme: scheme}); err != nil {
		return errors.Join(fmt.Errorf("build admin client for ClusterPullSecrets: %w", err), b.cp.Stop())
	}
	if err := b.startControllerManager(ctx, abs); err != nil {
		return errors.Join(err, b.cp.Stop())
	}
	return nil
}

// fast tunes a client configuration for throughput: no client-side rate
// limit and protobuf, the cheapest encoding for the API server.
func fast(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return cfg
}

// setup creates the source, the RBAC and the identities, the fleet, and
// waits for every `default` ServiceAccount.
func (b *bench) setup(ctx context.Context) error {
	start := time.Now()
	info, err := b.admin.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("read the API server's version: %w", err)
	}
	b.result.Machine.Kubernetes = info.GitVersion

	data, err := dockerConfig("first-password")
	if err != nil {
		return err
	}
	if err := createSource(ctx, b.admin, data); err != nil {
		return err
	}
	// The controller makes this Secret on its first start; made here, with
	// the same code, the cold start's writes are only the rollout's.
	if b.key, err = ownership.LoadOrCreateKey(ctx, b.crd, b.crd, sourceNamespace); err != nil {
		return fmt.Errorf("create the ownership key: %w", err)
	}
	if err := grantRBAC(ctx, b.admin, b.opts.RBAC, controllerIdentity, floorIdentity); err != nil {
		return err
	}
	ctrlConf, err := b.cp.UserKubeconfig(controllerIdentity.user(), controllerIdentity.groups()...)
	if err != nil {
		return err
	}
	if b.opts.ControllerNoCompression {
		if ctrlConf, err = disableCompression(ctrlConf); err != nil {
			return err
		}
	}
	// Not with the logs, which are kept: it holds a client key.
	dir, err := os.MkdirTemp("", "pullsecrets-fleet-")
	if err != nil {
		return fmt.Errorf("create kubeconfig folder: %w", err)
	}
	b.tmpDir = dir
	b.ctrlConf = filepath.Join(dir, "controller.kubeconfig")
	if err := os.WriteFile(b.ctrlConf, ctrlConf, 0o600); err != nil {
		return fmt.Errorf("write controller kubeconfig: %w", err)
	}
	floorConf, err := b.cp.UserKubeconfig(floorIdentity.user(), floorIdentity.groups()...)
	if err != nil {
		return err
	}
	floorCfg, err := clientcmd.RESTConfigFromKubeConfig(floorConf)
	if err != nil {
		return fmt.Errorf("read floor kubeconfig: %w", err)
	}
	if b.floor, err = kubernetes.NewForConfig(fast(floorCfg)); err != nil {
		return fmt.Errorf("build floor client: %w", err)
	}
	if b.tracker, err = startTracker(ctx, b.admin); err != nil {
		return err
	}

	if err := b.measureBaseline(ctx); err != nil {
		return err
	}
	if b.opts.podsMode() {
		if err := b.installPolicy(ctx); err != nil {
			return err
		}
	}

	n := b.opts.Namespaces
	b.logf("creating %d namespaces with %d ServiceAccounts and %d unrelated Secrets of %d bytes each",
		n, b.opts.ServiceAccounts, b.opts.UnrelatedSecrets, b.opts.UnrelatedSecretBytes)
	payloads := unrelatedPayloads(b.opts.UnrelatedSecrets, b.opts.UnrelatedSecretBytes)
	b.namespaces = make([]string, n)
	for i := range b.namespaces {
		b.namespaces[i] = fleetNamespace(i)
	}
	err = pool(ctx, b.opts.SetupWorkers, n, func(ctx context.Context, i int) error {
		return createNamespace(ctx, b.admin, b.namespaces[i], b.opts.ServiceAccounts, payloads, true)
	})
	if err != nil {
		return err
	}
	if _, err := b.tracker.wait(ctx, "every ServiceAccount of the fleet", b.opts.Timeout,
		allServiceAccounts(b.namespaces, b.opts.ServiceAccounts, carriesNone)); err != nil {
		return err
	}
	b.result.Setup = Fleet{
		Namespaces:             n,
		ServiceAccounts:        n * b.opts.ServiceAccounts,
		UnrelatedSecrets:       n * b.opts.UnrelatedSecrets,
		UnrelatedSecretBytes:   int64(n) * int64(b.opts.UnrelatedSecrets) * int64(b.opts.UnrelatedSecretBytes),
		SetupSeconds:           time.Since(start).Seconds(),
		ServiceAccountsPerNS:   b.opts.ServiceAccounts,
		UnrelatedSecretsPerNS:  b.opts.UnrelatedSecrets,
		NewNamespacesMeasured:  b.opts.NewNamespaces,
		SourceNamespace:        sourceNamespace,
		ControllerUser:         controllerIdentity.user(),
		FloorUser:              floorIdentity.user(),
		ClusterPullSecretScope: fleetLabel + "=true",
	}
	b.logf("fleet ready in %.0f s", time.Since(start).Seconds())
	return nil
}

// measureBaseline runs the controller on the empty cluster (no fleet, no
// ClusterPullSecret) for opts.Baseline and records its memory: the peak
// RSS per namespace is counted above it.
func (b *bench) measureBaseline(ctx context.Context) error {
	if b.opts.Baseline <= 0 {
		return nil
	}
	p, err := b.begin(ctx, "baseline", controllerIdentity, nil)
	if err != nil {
		return err
	}
	ctrl, err := b.start(false, "controller-baseline.log")
	if err != nil {
		return err
	}
	defer func() { _ = ctrl.stop(stopGrace) }()
	p.ctrl = ctrl
	gctx, cancel := ctrl.guard(ctx)
	defer cancel()
	select {
	case <-gctx.Done():
		return fmt.Errorf("phase baseline: %w", context.Cause(gctx))
	case <-time.After(b.opts.Baseline):
	}
	ph, err := b.end(gctx, p, Phase{Settled: true})
	if err != nil {
		return err
	}
	if ctrl.pprofAddr != "" {
		if h, err := heapSnapshot(gctx, ctrl.pprofAddr, filepath.Join(b.logDir, "heap-baseline.pb.gz")); err == nil {
			ph.Heap = &h
		}
	}
	// Not a phase of the fleet: kept apart.
	b.result.Phases = b.result.Phases[:len(b.result.Phases)-1]
	b.result.Baseline = &ph
	b.logf("baseline: controller peak RSS %s on the empty cluster", mib(ph.HWMBytes))
	return b.stopController(ctrl)
}

// phaseRun is a phase being measured: the requests of one identity, read
// from the audit log, between its start and its end.
type phaseRun struct {
	name  string
	start time.Time
	tally *Tally
	ctrl  *controllerProcess // nil for the floor
	cpu   cpuSample
	// counters are the controller's at the start (zero for a controller
	// started within the phase).
	counters controllerCounters
	// watch is the API server's watch traffic at the start.
	watch watchTraffic
	// goalCPU is the CPU sample taken when the phase's goal was reached.
	goalCPU *cpuSample
	// stopPeak ends the heap polling of --peak-heap and returns the
	// highest HeapInuse seen (nil: not polled).
	stopPeak func() *HeapStats
}

// pollPeakHeap polls the controller's heap through the phase (--peak-heap)
// and keeps the profile at the highest HeapInuse in heap-<phase>-peak.pb.gz.
func (b *bench) pollPeakHeap(ctx context.Context, p *phaseRun) {
	if p.ctrl == nil || p.ctrl.pprofAddr == "" || !b.opts.PeakHeap || p.stopPeak != nil {
		return
	}
	var peak HeapStats
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		peak = peakHeap(ctx, p.ctrl.pprofAddr, filepath.Join(b.logDir, "heap-"+p.name+"-peak.pb.gz"), 250*time.Millisecond, stop)
	}()
	var once sync.Once
	p.stopPeak = func() *HeapStats {
		once.Do(func() { close(stop) })
		<-done
		if peak.HeapInuse == 0 {
			return nil
		}
		return &peak
	}
}

// reached marks the phase's goal as reached: CPU time is counted until
// now, not over the settling that follows.
func (p *phaseRun) reached() {
	s := sampleCPU()
	p.goalCPU = &s
}

// begin starts a phase. Whatever the audit log holds up to now belongs to
// the phase before.
func (b *bench) begin(ctx context.Context, name string, id identity, ctrl *controllerProcess) (*phaseRun, error) {
	if err := b.audit.readInto(newTally("")); err != nil {
		return nil, err
	}
	p := &phaseRun{name: name, tally: newTally(id.user()), ctrl: ctrl, counters: controllerCounters{Reconciles: map[string]float64{}}}
	if ctrl != nil {
		ctrl.resetPeak()
		p.counters = scrapeMetrics(ctx, ctrl.metricsAddr)
		b.pollPeakHeap(ctx, p)
	}
	p.watch = b.watchTraffic(ctx)
	p.start, p.cpu = time.Now(), sampleCPU()
	b.logf("phase %s", name)
	return p, nil
}

// settle waits until the phase's identity has made no request, watches and
// leases aside, for the quiet period, and for at least min since the phase
// began. It reports false when that does not happen within the timeout.
func (b *bench) settle(ctx context.Context, p *phaseRun, minimum time.Duration) (bool, error) {
	deadline := time.Now().Add(b.opts.Timeout)
	for {
		if err := b.audit.readInto(p.tally); err != nil {
			return false, err
		}
		last := latest(p.start, p.tally.lastNonWatch)
		if time.Since(last) >= b.opts.Quiet && time.Since(p.start) >= minimum {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("phase %s: %w", p.name, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// end closes the phase and records it.
func (b *bench) end(ctx context.Context, p *phaseRun, ph Phase) (Phase, error) {
	if err := b.audit.readInto(p.tally); err != nil {
		return ph, err
	}
	ph.Name = p.name
	ph.WindowSeconds = time.Since(p.start).Seconds()
	ph.Requests = p.tally.list()
	ph.Writes = p.tally.sum(func(r Request) bool { return r.IsWrite() && r.Code == 0 })
	ph.FailedRequests = p.tally.sum(func(r Request) bool { return r.Code != 0 })
	ph.NonWatchRequests = p.tally.sum(func(r Request) bool { return !r.IsWatch() && !r.IsLease() })
	ph.LeaseRequests = p.tally.sum(Request.IsLease)
	ph.Watches = p.tally.sum(Request.IsWatch)
	ph.CopyAndSAWrites = p.tally.sum(func(r Request) bool {
		return r.IsWrite() && r.Code == 0 && (r.Resource == "secrets" || r.Resource == "serviceaccounts")
	})
	ph.SecretCreates = p.tally.sum(func(r Request) bool { return r.Verb == "create" && r.Code == 0 && r.Resource == "secrets" })
	ph.ServiceAccountWrites = p.tally.sum(func(r Request) bool { return r.IsWrite() && r.Code == 0 && r.Resource == "serviceaccounts" })
	w := b.watchTraffic(ctx)
	ph.WatchEventsSent, ph.WatchBytesSent = int(w.Events-p.watch.Events), int64(w.Bytes-p.watch.Bytes)
	until := sampleCPU()
	if p.goalCPU != nil {
		until = *p.goalCPU
	}
	ph.CPU = p.cpu.until(until)
	if p.ctrl != nil {
		c := scrapeMetrics(ctx, p.ctrl.metricsAddr).since(p.counters)
		ph.Reconciles = map[string]int{}
		for k, v := range c.Reconciles {
			ph.Reconciles[k] = int(v)
		}
		ph.ControllerCountedRequests = int(c.APIRequests)
		u, peak := p.ctrl.usage()
		ph.PeakRSSBytes = peak
		ph.HWMBytes = u.HWM
		ph.PeakAnonBytes, ph.PeakFileBytes = p.ctrl.peaks()
		ph.BinaryPages = p.ctrl.binaryPages(b.logf)
	}
	if p.stopPeak != nil {
		ph.PeakHeap = p.stopPeak()
	}
	b.result.Phases = append(b.result.Phases, ph)
	return ph, nil
}

// watchTraffic reads what the API server has sent to watchers so far, from
// its metrics, as administrator (not audited). Zero when unreadable: the
// figure is then missing, not wrong.
func (b *bench) watchTraffic(ctx context.Context) watchTraffic {
	raw, err := b.admin.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return watchTraffic{}
	}
	return parseWatchTraffic(bytes.NewReader(raw))
}

// disableCompression sets disable-compression on every cluster of a
// kubeconfig: the client then asks for responses (watch streams included)
// without gzip.
func disableCompression(kubeconfig []byte) ([]byte, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read controller kubeconfig: %w", err)
	}
	for _, c := range cfg.Clusters {
		c.DisableCompression = true
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("write controller kubeconfig: %w", err)
	}
	return out, nil
}
