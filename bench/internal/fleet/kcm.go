package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pullsecrets/pullsecrets/internal/testing/controlplane"
)

// kcmControllers are the kube-controller-manager loops the benchmark runs:
// `default` ServiceAccounts of new namespaces, namespace deletion and
// garbage collection (which watches every resource, as in a real cluster).
// The workload controllers are off: the benchmark creates the ReplicaSets
// and Pods they would, all at once and with status, instead of waiting for
// them at kube-controller-manager's 20 requests a second, and none of them
// writes during a measured phase.
var kcmControllers = "serviceaccount,namespace,garbagecollector"

// startControllerManager runs kube-controller-manager as a child process
// and waits until it has made the `default` namespace's ServiceAccount.
func (b *bench) startControllerManager(ctx context.Context, logDir string) error {
	dir, err := controlplane.BinDir()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(logDir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kubeconfig, b.cp.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kube-controller-manager kubeconfig: %w", err)
	}
	b.kcm, err = startController(filepath.Join(dir, "kube-controller-manager"), []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + kcmControllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--concurrent-serviceaccount-token-syncs=5",
		"--v=1",
	}, nil, filepath.Join(logDir, "kube-controller-manager.log"))
	if err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	gctx, cancel := b.kcm.guard(ctx)
	defer cancel()
	err = wait.PollUntilContextTimeout(gctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := b.admin.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if cause := context.Cause(gctx); err != nil && cause != nil {
		err = cause
	}
	if err != nil {
		_ = b.kcm.stop(stopGrace)
		b.kcm = nil
		return fmt.Errorf("wait for kube-controller-manager to create the default ServiceAccount: %w", err)
	}
	return nil
}
