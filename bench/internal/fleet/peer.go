package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// A peer is another controller that keeps a pull secret in every
// namespace and on its ServiceAccounts, run on the same fleet after the
// measured phases, for its memory: tamcore/imagepullsecret-patcher, the
// lightest we know, built from its own repository (--peer); its code is
// not part of this one. It runs as administrator with its own secret name
// and label, so that it shares nothing with pullsecrets' copies.

// Peer is what the peer's run measured.
type Peer struct {
	Binary string   `json:"binary"`
	Args   []string `json:"args"`
	// ConvergedSeconds is from its start to every fleet namespace holding
	// its Secret and every ServiceAccount listing it.
	ConvergedSeconds float64 `json:"convergedSeconds"`
	// HWMBytes is its VmHWM once converged and settled; PeakAnonBytes and
	// PeakFileBytes split it as the controller's.
	HWMBytes      int64          `json:"hwmBytes"`
	PeakAnonBytes int64          `json:"peakAnonBytes"`
	PeakFileBytes int64          `json:"peakFileBytes"`
	BinaryPages   []SectionPages `json:"binaryPages,omitempty"`
}

// peerSecret and peerLabel are imagepullsecret-patcher's defaults.
const (
	peerSecret = "global-imagepullsecret"
	peerLabel  = "app.kubernetes.io/managed-by=imagepullsecret-patcher"
)

// runPeer starts the peer, waits until it has served the fleet, lets it
// settle for the quiet period and records its memory.
func (b *bench) runPeer(ctx context.Context) error {
	if b.opts.Peer == "" {
		return nil
	}
	kubeconfig := filepath.Join(b.tmpDir, "admin.kubeconfig")
	if err := os.WriteFile(kubeconfig, b.cp.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write peer kubeconfig: %w", err)
	}
	data, err := dockerConfigFor(registry, "peer-password")
	if err != nil {
		return err
	}
	args := []string{
		"-leader-elect=false", "-metrics-bind-address=0", "-health-probe-bind-address=0",
		"-secretnamespace=" + sourceNamespace, "-serviceaccounts=*",
		fmt.Sprintf("-max-concurrent-reconciles=%d", 32),
	}
	env := []string{"KUBECONFIG=" + kubeconfig, "CONFIG_DOCKERCONFIGJSON=" + string(data[corev1.DockerConfigJsonKey])}
	b.logf("starting the peer %s %v", b.opts.Peer, args)
	p, err := startController(b.opts.Peer, args, env, filepath.Join(b.logDir, "peer.log"))
	if err != nil {
		return err
	}
	defer func() { _ = p.stop(stopGrace) }()
	gctx, cancel := p.guard(ctx)
	defer cancel()
	if _, err := b.tracker.wait(gctx, "the peer's ServiceAccounts", b.opts.Timeout,
		allServiceAccounts(b.namespaces, b.opts.ServiceAccounts, carries(peerSecret))); err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(gctx, time.Second, b.opts.Timeout, true, func(ctx context.Context) (bool, error) {
		list, err := b.admin.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: peerLabel})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the timeout
		}
		have := map[string]bool{}
		for _, s := range list.Items {
			have[s.Namespace] = true
		}
		for _, ns := range b.namespaces {
			if !have[ns] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for the peer's Secrets: %w", err)
	}
	converged := time.Since(p.started)
	b.logf("the peer converged after %.1f s; settling", converged.Seconds())
	select {
	case <-gctx.Done():
		return context.Cause(gctx)
	case <-time.After(b.opts.Quiet):
	}
	u, _ := p.usage()
	anon, file := p.peaks()
	b.result.Peer = &Peer{
		Binary: b.opts.Peer, Args: args, ConvergedSeconds: converged.Seconds(),
		HWMBytes: u.HWM, PeakAnonBytes: anon, PeakFileBytes: file,
		BinaryPages: p.binaryPages(b.logf),
	}
	b.logf("the peer's peak RSS: %s", mib(u.HWM))
	return nil
}
