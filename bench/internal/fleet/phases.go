package fleet

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// stopGrace is how long the controller gets to stop before it is killed.
const stopGrace = 30 * time.Second

// createCPS creates the ClusterPullSecret: one, selecting every fleet
// namespace and all their ServiceAccounts.
func (b *bench) createCPS(ctx context.Context) error {
	cps := &v1alpha1.ClusterPullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: cpsName},
		Spec: v1alpha1.ClusterPullSecretSpec{
			Source:     v1alpha1.SourceReference{Namespace: sourceNamespace, Name: sourceName},
			SecretName: secretName,
			AttachTo:   b.attachTarget(),
			Namespaces: v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{fleetLabel: "true"}}},
		},
	}
	if err := b.crd.Create(ctx, cps); err != nil {
		return fmt.Errorf("create ClusterPullSecret %s: %w", cpsName, err)
	}
	b.cpsUID = cps.UID
	return nil
}

// deleteCPS deletes the ClusterPullSecret while no controller runs: its
// finalizer is dropped first, and what it made is left to strip.
func (b *bench) deleteCPS(ctx context.Context) error {
	cps := &v1alpha1.ClusterPullSecret{ObjectMeta: metav1.ObjectMeta{Name: cpsName}}
	if err := b.crd.Patch(ctx, cps, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))); err != nil {
		return fmt.Errorf("drop the finalizer of ClusterPullSecret %s: %w", cpsName, err)
	}
	if err := b.crd.Delete(ctx, cps); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete ClusterPullSecret %s: %w", cpsName, err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, b.opts.Timeout, true, func(ctx context.Context) (bool, error) {
		err := b.crd.Get(ctx, client.ObjectKeyFromObject(cps), cps)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// measureBare measures a floor and a cold start on the fleet before it has
// Pods and workloads, then undoes the cold start: the controller is
// stopped, the ClusterPullSecret deleted, copies and attachments removed.
func (b *bench) measureBare(ctx context.Context) error {
	if err := b.createCPS(ctx); err != nil {
		return err
	}
	var err error
	if b.result.FloorBare, err = b.measureFloor(ctx, "floor-bare"); err != nil {
		return err
	}
	ctrl, err := b.coldStart(ctx, "cold-bare", "controller-bare.log")
	if ctrl != nil {
		defer func() { _ = ctrl.stop(stopGrace) }()
	}
	if err != nil {
		return err
	}
	if err := b.stopController(ctrl); err != nil {
		return err
	}
	b.logf("undoing the cold start without Pods")
	if err := b.deleteCPS(ctx); err != nil {
		return err
	}
	return b.strip(ctx)
}

// workloads is the i-th fleet namespace's workloads.
func (b *bench) workloads(i int) nsWorkloads {
	return nsWorkloads{
		ns: fleetNamespace(i), holder: holderOf(i), layout: layout(b.opts.Pods, b.opts.StuckPods), serviceAccounts: b.opts.ServiceAccounts,
	}
}

// setupPods creates every fleet namespace's workloads and Pods; not timed
// against anything.
func (b *bench) setupPods(ctx context.Context) error {
	start := time.Now()
	l := layout(b.opts.Pods, b.opts.StuckPods)
	n := b.opts.Namespaces
	b.logf("creating %d Pods (%d Running, %d stuck) and %d workload objects in each of %d namespaces",
		b.opts.Pods, b.opts.Pods-l.stuck, l.stuck, workloadObjects, n)
	// Started an hour ago, as far as their status says.
	started := start.Add(-time.Hour)
	if err := pool(ctx, b.opts.SetupWorkers, n, func(ctx context.Context, i int) error {
		return b.workloads(i).create(ctx, b.admin, started)
	}); err != nil {
		return err
	}
	pods, workloads := l.records()
	f := &b.result.Setup
	f.PodsPerNS, f.StuckPodsPerNS = b.opts.Pods, l.stuck
	f.Pods, f.StuckPods, f.WorkloadObjects = n*b.opts.Pods, n*l.stuck, n*workloadObjects
	f.PodRecords, f.WorkloadRecords = n*pods, n*workloads
	f.PodSetupSeconds = time.Since(start).Seconds()
	b.logf("Pods and workloads ready in %.0f s", f.PodSetupSeconds)
	return nil
}

// measureController runs the controller binary through every phase:
// cold start, steady state, new namespaces, rotation, rename, the holders
// of old copies going, then a restart with leader election and its steady
// state.
func (b *bench) measureController(ctx context.Context) error {
	ctrl, err := b.coldStart(ctx, "cold", "controller.log")
	if ctrl != nil {
		defer func() { _ = ctrl.stop(stopGrace) }()
	}
	if err != nil {
		return err
	}
	if err := b.runPhases(ctx, ctrl); err != nil {
		return err
	}
	if err := b.stopController(ctrl); err != nil {
		return err
	}
	if b.opts.LeaderElectSteady <= 0 {
		return nil
	}
	return b.restartWithLeaderElection(ctx)
}

func (b *bench) controllerArgs(leaderElect bool, metricsAddr, pprofAddr string) []string {
	kubeconfig, _ := filepath.Abs(b.ctrlConf)
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--source-namespaces=" + sourceNamespace,
		"--ownership-key-namespace=" + sourceNamespace,
		fmt.Sprintf("--leader-elect=%t", leaderElect),
		"--leader-election-namespace=" + sourceNamespace,
		// Scraped for reconcile counts, which the API server cannot see.
		"--metrics-bind-address=" + metricsAddr,
		// Plain HTTP on loopback: the benchmark scrapes without a token.
		"--metrics-secure=false",
		"--health-probe-bind-address=0",
	}
	if pprofAddr != "" {
		args = append(args, "--pprof-bind-address="+pprofAddr)
	}
	return append(args, b.opts.ControllerArgs...)
}

func (b *bench) start(leaderElect bool, log string) (*controllerProcess, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofAddr := ""
	if b.opts.Pprof {
		if pprofAddr, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := b.controllerArgs(leaderElect, addr, pprofAddr)
	b.logf("starting %s %v %v", b.opts.Controller, b.opts.ControllerEnv, args[1:])
	b.result.ControllerArgs = args[1:]
	b.result.ControllerEnv = b.opts.ControllerEnv
	ctrl, err := startController(b.opts.Controller, args, b.opts.ControllerEnv, filepath.Join(b.logDir, log))
	if err != nil {
		return nil, err
	}
	ctrl.metricsAddr, ctrl.pprofAddr = addr, pprofAddr
	return ctrl, nil
}

// heap takes a heap profile of the controller into the logs and records
// its MemStats with the phase; a failure only leaves the figure out.
func (b *bench) heap(ctx context.Context, ctrl *controllerProcess, phase string) {
	if ctrl.pprofAddr == "" {
		return
	}
	h, err := heapSnapshot(ctx, ctrl.pprofAddr, filepath.Join(b.logDir, "heap-"+phase+".pb.gz"))
	if err != nil {
		b.logf("heap profile after %s: %v", phase, err)
		return
	}
	if p := b.result.phase(phase); p != nil {
		p.Heap = &h
	}
	b.logf("heap after %s: %s live, %d objects", phase, mib(h.HeapAlloc), h.HeapObjects)
}

// coldStart starts the controller and measures the time from its start to
// every copy made and every ServiceAccount carrying the secret.
func (b *bench) coldStart(ctx context.Context, name, log string) (*controllerProcess, error) {
	p, err := b.begin(ctx, name, controllerIdentity, nil)
	if err != nil {
		return nil, err
	}
	ctrl, err := b.start(false, log)
	if err != nil {
		return nil, err
	}
	p.ctrl = ctrl
	gctx, cancel := ctrl.guard(ctx)
	defer cancel()
	waitProfiles := cpuProfiles(gctx, b.admin, ctrl.pprofAddr, b.opts.CPUProfile, filepath.Join(b.logDir, "cpu-"+name), b.logf)
	defer waitProfiles()
	b.pollPeakHeap(gctx, p)
	if p.stopPeak != nil {
		defer p.stopPeak()
	}
	done, err := b.tracker.wait(gctx, name+" convergence", b.opts.Timeout, both(
		allCopies(b.namespaces, secretName, func(*corev1.Secret) bool { return true }),
		b.attached(b.namespaces, carries(secretName)),
	))
	if err != nil {
		return ctrl, err
	}
	if b.opts.podsMode() {
		// New Pods get the name once the policy's params say it.
		published, err := b.waitInjection(gctx, cpsName, secretName)
		if err != nil {
			return ctrl, err
		}
		done = latest(done, published)
	}
	p.reached()
	b.logf("converged %.2f s after the controller started", done.Sub(ctrl.started).Seconds())
	settled, err := b.settle(gctx, p, 0)
	if err != nil {
		return ctrl, err
	}
	_, err = b.end(ctx, p, Phase{
		GoalSeconds:   done.Sub(ctrl.started).Seconds(),
		Settled:       settled,
		MinimalWrites: len(b.namespaces) + b.attachWrites(len(b.namespaces)),
	})
	if ph := b.result.phase(name); ph != nil && !p.tally.firstWrite.IsZero() {
		ph.FirstWriteSeconds = p.tally.firstWrite.Sub(ctrl.started).Seconds()
	}
	b.heap(gctx, ctrl, name)
	return ctrl, err
}

// runPhases measures the converged controller: steady state, new
// namespaces, rotation, rename, the holders of old copies going.
func (b *bench) runPhases(ctx context.Context, ctrl *controllerProcess) error {
	gctx, cancel := ctrl.guard(ctx)
	defer cancel()
	if err := b.steady(gctx, ctrl, "steady", b.opts.Steady); err != nil {
		return err
	}
	if err := b.newNamespaces(gctx, ctrl); err != nil {
		return err
	}
	if err := b.rotate(gctx, ctrl); err != nil {
		return err
	}
	if err := b.rename(gctx, ctrl); err != nil {
		return err
	}
	if err := b.holdersGone(gctx, ctrl); err != nil {
		return err
	}
	return b.admission(gctx, ctrl)
}

// steady counts the requests of a converged controller over a window.
func (b *bench) steady(ctx context.Context, ctrl *controllerProcess, name string, window time.Duration) error {
	if window <= 0 {
		return nil
	}
	p, err := b.begin(ctx, name, controllerIdentity, ctrl)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("phase %s: %w", name, context.Cause(ctx))
	case <-time.After(window):
	}
	_, err = b.end(ctx, p, Phase{Settled: true})
	return err
}

// newNamespaces creates namespaces one at a time, each with its
// ServiceAccounts and unrelated Secrets, and measures from the namespace's
// creation to all its ServiceAccounts carrying the secret.
func (b *bench) newNamespaces(ctx context.Context, ctrl *controllerProcess) error {
	if b.opts.NewNamespaces == 0 {
		return nil
	}
	p, err := b.begin(ctx, "new-namespaces", controllerIdentity, ctrl)
	if err != nil {
		return err
	}
	payloads := unrelatedPayloads(b.opts.UnrelatedSecrets, b.opts.UnrelatedSecretBytes)
	samples := make([]time.Duration, 0, b.opts.NewNamespaces)
	for i := range b.opts.NewNamespaces {
		name := fleetNamespace(b.opts.Namespaces + i)
		start := time.Now()
		// kube-controller-manager makes the `default` ServiceAccount, as in
		// a real cluster: the latency includes it.
		if err := createNamespace(ctx, b.admin, name, b.opts.ServiceAccounts, payloads, false); err != nil {
			return err
		}
		done, err := b.tracker.wait(ctx, "new namespace "+name, b.opts.Timeout, both(
			allCopies([]string{name}, secretName, func(*corev1.Secret) bool { return true }),
			b.attached([]string{name}, carries(secretName))))
		if err != nil {
			return err
		}
		samples = append(samples, done.Sub(start))
		b.namespaces = append(b.namespaces, name)
	}
	settled, err := b.settle(ctx, p, 0)
	if err != nil {
		return err
	}
	b.result.NewNamespaceLatency = newLatency(samples)
	_, err = b.end(ctx, p, Phase{
		GoalSeconds:   percentile(samples, 99).Seconds(),
		Settled:       settled,
		MinimalWrites: b.opts.NewNamespaces + b.attachWrites(b.opts.NewNamespaces),
	})
	return err
}

// rotate changes the source's data and measures until every copy has it.
func (b *bench) rotate(ctx context.Context, ctrl *controllerProcess) error {
	data, err := dockerConfig("second-password")
	if err != nil {
		return err
	}
	p, err := b.begin(ctx, "rotation", controllerIdentity, ctrl)
	if err != nil {
		return err
	}
	start := time.Now()
	src, err := b.admin.CoreV1().Secrets(sourceNamespace).Get(ctx, sourceName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read source Secret %s/%s: %w", sourceNamespace, sourceName, err)
	}
	src.Data = data
	if _, err := b.admin.CoreV1().Secrets(sourceNamespace).Update(ctx, src, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("rotate source Secret %s/%s: %w", sourceNamespace, sourceName, err)
	}
	done, err := b.tracker.wait(ctx, "rotation", b.opts.Timeout, allCopies(b.namespaces, secretName, func(s *corev1.Secret) bool {
		return bytes.Equal(s.Data[corev1.DockerConfigJsonKey], data[corev1.DockerConfigJsonKey])
	}))
	if err != nil {
		return err
	}
	p.reached()
	settled, err := b.settle(ctx, p, 0)
	if err != nil {
		return err
	}
	_, err = b.end(ctx, p, Phase{GoalSeconds: done.Sub(start).Seconds(), Settled: settled, MinimalWrites: len(b.namespaces)})
	return err
}

// held returns the fleet namespaces where something lists the copy's first
// name, by namespace, with their index.
func (b *bench) held() map[string]int {
	out := map[string]int{}
	if b.opts.Pods == 0 {
		return out
	}
	for i := range b.opts.Namespaces {
		if holderOf(i) != heldByNothing {
			out[fleetNamespace(i)] = i
		}
	}
	return out
}

// rename changes spec.secretName and measures until every ServiceAccount
// carries only the new name and every old copy that nothing holds is gone;
// then it counts the old copies retired and held.
func (b *bench) rename(ctx context.Context, ctrl *controllerProcess) error {
	held := b.held()
	var free []string
	for _, ns := range b.namespaces {
		if _, ok := held[ns]; !ok {
			free = append(free, ns)
		}
	}
	p, err := b.begin(ctx, "rename", controllerIdentity, ctrl)
	if err != nil {
		return err
	}
	start := time.Now()
	patch := []byte(fmt.Sprintf(`{"spec":{"secretName":%q}}`, renamedSecret))
	cps := &v1alpha1.ClusterPullSecret{ObjectMeta: metav1.ObjectMeta{Name: cpsName}}
	if err := b.crd.Patch(ctx, cps, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("rename ClusterPullSecret %s's secret: %w", cpsName, err)
	}
	done, err := b.tracker.wait(ctx, "rename", b.opts.Timeout, both(
		allCopies(b.namespaces, renamedSecret, func(*corev1.Secret) bool { return true }),
		noCopies(free, secretName),
		b.attached(b.namespaces, carriesOnly(renamedSecret)),
	))
	if err == nil && b.opts.podsMode() {
		var published time.Time
		if published, err = b.waitInjection(ctx, cpsName, renamedSecret); err == nil {
			done = latest(done, published)
		}
	}
	if err != nil {
		return err
	}
	p.reached()
	settled, err := b.settle(ctx, p, 0)
	if err != nil {
		return err
	}
	n := len(b.namespaces)
	// New copies, one update per ServiceAccount, the old copies nothing holds deleted.
	if _, err = b.end(ctx, p, Phase{
		GoalSeconds:   done.Sub(start).Seconds(),
		Settled:       settled,
		MinimalWrites: n + b.attachWrites(n) + len(free),
	}); err != nil {
		return err
	}
	b.currentName = renamedSecret
	r := &Retirement{OldCopies: n, HeldBy: map[string]int{}}
	for _, ns := range b.namespaces {
		i, isHeld := held[ns]
		there := b.tracker.hasCopy(ns, secretName)
		switch {
		case there && isHeld:
			r.Held++
			r.HeldBy[holderOf(i).String()]++
		case there:
			r.KeptFree++
		case isHeld:
			r.RetiredWhileHeld++
		default:
			r.Retired++
		}
	}
	b.readRetirementStatus(ctx, r)
	b.result.Retirement = r
	b.heap(ctx, ctrl, "rename")
	return nil
}

// readRetirementStatus records what the ClusterPullSecret's status says of
// the copies it keeps; the status is paced, so it is read once it shows
// the rename's generation and as many as were counted, or after 10 s.
func (b *bench) readRetirementStatus(ctx context.Context, r *Retirement) {
	var cps v1alpha1.ClusterPullSecret
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := b.crd.Get(ctx, client.ObjectKey{Name: cpsName}, &cps); err != nil {
			return false, nil //nolint:nilerr // retried until the timeout
		}
		return cps.Status.ObservedGeneration == cps.Generation && int(cps.Status.PendingRetirement) == r.Held, nil
	})
	r.StatusPendingRetirement = int(cps.Status.PendingRetirement)
	r.StatusRetiring = cps.Status.Retiring[:min(3, len(cps.Status.Retiring))]
}

// holdersGone does what teams do after a rename, in every namespace where
// something holds the old copy: the templates list the new name, the Pods
// listing the old one are replaced. It measures until every old copy is
// retired.
func (b *bench) holdersGone(ctx context.Context, ctrl *controllerProcess) error {
	held := b.held()
	if len(held) == 0 {
		return nil
	}
	list := slices.Sorted(maps.Keys(held))
	p, err := b.begin(ctx, "holders-gone", controllerIdentity, ctrl)
	if err != nil {
		return err
	}
	start := time.Now()
	var writes atomic.Int64
	if err := pool(ctx, b.opts.SetupWorkers, len(list), func(ctx context.Context, i int) error {
		n, err := b.workloads(held[list[i]]).releaseHolders(ctx, b.admin)
		writes.Add(int64(n))
		return err
	}); err != nil {
		return err
	}
	released := time.Now()
	done, err := b.tracker.wait(ctx, "old copies retired", b.opts.Timeout, noCopies(list, secretName))
	if err != nil {
		return err
	}
	p.reached()
	settled, err := b.settle(ctx, p, 0)
	if err != nil {
		return err
	}
	if _, err = b.end(ctx, p, Phase{
		GoalSeconds:   done.Sub(start).Seconds(),
		ClientSeconds: released.Sub(start).Seconds(),
		Settled:       settled,
		MinimalWrites: len(list),
	}); err != nil {
		return err
	}
	if r := b.result.Retirement; r != nil {
		r.HolderWrites = int(writes.Load())
		r.HoldersGoneSeconds = released.Sub(start).Seconds()
		r.RetiredAfterHolders = len(list)
		r.LastRetiredAfterSeconds = done.Sub(released).Seconds()
	}
	return nil
}

// stopController stops the controller; what it does while stopping is not
// counted.
func (b *bench) stopController(ctrl *controllerProcess) error {
	if err := ctrl.stop(stopGrace); err != nil {
		return err
	}
	return b.audit.readInto(newTally(""))
}

// restartWithLeaderElection restarts the controller, now electing a
// leader, on the converged fleet: the restart should write nothing, and the
// steady state should make no request but watches and the Lease renewals.
func (b *bench) restartWithLeaderElection(ctx context.Context) error {
	p, err := b.begin(ctx, "restart-leader-elect", controllerIdentity, nil)
	if err != nil {
		return err
	}
	ctrl, err := b.start(true, "controller-leader-elect.log")
	if err != nil {
		return err
	}
	defer func() { _ = ctrl.stop(stopGrace) }()
	p.ctrl = ctrl
	gctx, cancel := ctrl.guard(ctx)
	defer cancel()
	b.pollPeakHeap(gctx, p)
	// A warm start reads and then writes nothing: wait until it has
	// reconciled every namespace before taking silence for settled.
	statuses := b.watchStatus(gctx)
	b.waitReconciled(gctx, ctrl, len(b.namespaces))
	settled, err := b.settle(gctx, p, 15*time.Second)
	b.result.RestartStatuses = statuses()
	if err != nil {
		return err
	}
	if _, err := b.end(ctx, p, Phase{Settled: settled}); err != nil {
		return err
	}
	if err := b.steady(gctx, ctrl, "steady-leader-elect", b.opts.LeaderElectSteady); err != nil {
		return err
	}
	return b.stopController(ctrl)
}

// waitReconciled waits, at most the timeout, until the controller has
// reconciled n namespaces.
func (b *bench) waitReconciled(ctx context.Context, ctrl *controllerProcess, n int) {
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, b.opts.Timeout, true, func(ctx context.Context) (bool, error) {
		return scrapeMetrics(ctx, ctrl.metricsAddr).Reconciles["namespace"] >= float64(n), nil
	})
}

// watchStatus polls the ClusterPullSecret's status every 100 ms, as
// administrator (not audited), and records each change of what it says;
// the returned function stops it and returns the changes, the first being
// the status found.
func (b *bench) watchStatus(ctx context.Context) func() []string {
	ctx, cancel := context.WithCancel(ctx)
	var out []string
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		last := ""
		for ctx.Err() == nil {
			var cps v1alpha1.ClusterPullSecret
			if err := b.crd.Get(ctx, client.ObjectKey{Name: cpsName}, &cps); err == nil {
				st := cps.Status
				reason := ""
				if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil {
					reason = string(c.Status) + "/" + c.Reason
				}
				now := fmt.Sprintf("Ready %s, namespaces %s, pendingRetirement %d, retiring listed %d, stuckPods listed %d, failing listed %d",
					reason, st.Namespaces.Summary, st.PendingRetirement, len(st.Retiring), len(st.StuckPods), len(st.FailingNamespaces))
				if now != last {
					out = append(out, fmt.Sprintf("%+.1f s: %s", time.Since(start).Seconds(), now))
					last = now
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		cancel()
		<-done
		return out
	}
}
