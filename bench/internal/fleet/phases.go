package fleet

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// stopGrace is how long the controller gets to stop before it is killed.
const stopGrace = 30 * time.Second

// measureController runs the controller binary through every phase:
// cold start, steady state, new namespaces, rotation, rename, then a
// restart with leader election and its steady state.
func (b *bench) measureController(ctx context.Context) error {
	// The ClusterPullSecret exists before the controller starts: cold
	// convergence is the controller's start-up plus the rollout.
	cps := &v1alpha1.ClusterPullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: cpsName},
		Spec: v1alpha1.ClusterPullSecretSpec{
			Source:     v1alpha1.SourceReference{Namespace: sourceNamespace, Name: sourceName},
			SecretName: secretName,
			Namespaces: v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{fleetLabel: "true"}}},
		},
	}
	if err := b.crd.Create(ctx, cps); err != nil {
		return fmt.Errorf("create ClusterPullSecret %s: %w", cpsName, err)
	}

	ctrl, err := b.coldStart(ctx)
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

func (b *bench) controllerArgs(leaderElect bool, metricsAddr string) []string {
	kubeconfig, _ := filepath.Abs(b.ctrlConf)
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--source-namespaces=" + sourceNamespace,
		fmt.Sprintf("--leader-elect=%t", leaderElect),
		"--leader-election-namespace=" + sourceNamespace,
		// Scraped for reconcile counts, which the API server cannot see.
		"--metrics-bind-address=" + metricsAddr,
		// Plain HTTP on loopback: the benchmark scrapes without a token.
		"--metrics-secure=false",
		"--health-probe-bind-address=0",
	}
	return append(args, b.opts.ControllerArgs...)
}

func (b *bench) start(leaderElect bool, log string) (*controllerProcess, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := b.controllerArgs(leaderElect, addr)
	b.logf("starting %s %v", b.opts.Controller, args[1:])
	b.result.ControllerArgs = args[1:]
	ctrl, err := startController(b.opts.Controller, args, filepath.Join(b.logDir, log))
	if err != nil {
		return nil, err
	}
	ctrl.metricsAddr = addr
	return ctrl, nil
}

// coldStart starts the controller and measures the time from its start to
// every ServiceAccount carrying the secret.
func (b *bench) coldStart(ctx context.Context) (*controllerProcess, error) {
	p, err := b.begin(ctx, "cold", controllerIdentity, nil)
	if err != nil {
		return nil, err
	}
	ctrl, err := b.start(false, "controller.log")
	if err != nil {
		return nil, err
	}
	p.ctrl = ctrl
	gctx, cancel := ctrl.guard(ctx)
	defer cancel()
	done, err := b.tracker.wait(gctx, "cold convergence", b.opts.Timeout, both(
		allCopies(b.namespaces, secretName, func(*corev1.Secret) bool { return true }),
		allServiceAccounts(b.namespaces, b.opts.ServiceAccounts, carries(secretName)),
	))
	if err != nil {
		return ctrl, err
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
		MinimalWrites: len(b.namespaces) + b.serviceAccountCount(),
	})
	return ctrl, err
}

// runPhases measures the converged controller: steady state, new
// namespaces, rotation, rename.
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
	return b.rename(gctx, ctrl)
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
		done, err := b.tracker.wait(ctx, "new namespace "+name, b.opts.Timeout,
			allServiceAccounts([]string{name}, b.opts.ServiceAccounts, carries(secretName)))
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
		MinimalWrites: b.opts.NewNamespaces * (1 + b.opts.ServiceAccounts),
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

// rename changes spec.secretName and measures until every ServiceAccount
// carries only the new name and every old copy is gone.
func (b *bench) rename(ctx context.Context, ctrl *controllerProcess) error {
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
		allCopies(b.namespaces, renamedSecret, func(*corev1.Secret) bool { return true }, secretName),
		allServiceAccounts(b.namespaces, b.opts.ServiceAccounts, carriesOnly(renamedSecret)),
	))
	if err != nil {
		return err
	}
	p.reached()
	settled, err := b.settle(ctx, p, 0)
	if err != nil {
		return err
	}
	n := len(b.namespaces)
	_, err = b.end(ctx, p, Phase{
		GoalSeconds:   done.Sub(start).Seconds(),
		Settled:       settled,
		MinimalWrites: n + b.serviceAccountCount() + n, // new copies, one update per ServiceAccount, old copies deleted
	})
	return err
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
	// A warm start reads and then writes nothing: give it time to start
	// before taking silence for settled.
	settled, err := b.settle(gctx, p, 15*time.Second)
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
