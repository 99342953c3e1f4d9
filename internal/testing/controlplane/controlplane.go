// Package controlplane starts a real, local Kubernetes control plane: etcd,
// kube-apiserver and, on request, kube-controller-manager, all built from the
// Go module proxy by hack/build-controlplane.sh. It backs the integration
// tests (through package testcluster), the developer cluster and the demo.
//
// etcd and kube-apiserver are started by controller-runtime's envtest, which
// already knows how to pick free ports, generate certificates and users, and
// wait for readiness. We change two of its defaults to behave like a real
// cluster: the ServiceAccount admission plugin stays on (it is what copies a
// ServiceAccount's imagePullSecrets into Pods) and the endpoint reconciler is
// off (it cannot publish a loopback address).
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AssetsEnv names the environment variable that points at the folder holding
// the control plane binaries. It is the variable envtest itself reads.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// controllers are the kube-controller-manager loops our scenarios need:
// default ServiceAccounts, workloads down to Pods, and garbage collection.
// Node, cloud and IPAM controllers stay off: there are no nodes.
var controllers = []string{
	"serviceaccount",
	"namespace",
	"garbagecollector",
	"deployment",
	"replicaset",
	"statefulset",
	"daemonset",
	"job",
	"cronjob",
	"replicationcontroller",
}

// Options configure a control plane.
type Options struct {
	// BinDir holds etcd, kube-apiserver and kube-controller-manager.
	// Empty means the folder named by $KUBEBUILDER_ASSETS.
	BinDir string
	// ControllerManager also starts kube-controller-manager, for default
	// ServiceAccounts, Deployments turning into Pods, and garbage collection.
	ControllerManager bool
	// CRDPaths are files or folders of CustomResourceDefinitions installed
	// before Start returns.
	CRDPaths []string
	// LogDir receives one log file per process. Empty means a new temporary
	// folder, removed by Stop.
	LogDir string
	// APIServerFlags are extra kube-apiserver flags (name without dashes).
	// They override our defaults.
	APIServerFlags map[string]string
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Config connects as a cluster administrator (group system:masters).
	Config *rest.Config
	// Kubeconfig is Config as a kubeconfig file's content.
	Kubeconfig []byte
	// LogDir holds the processes' logs.
	LogDir string

	env        *envtest.Environment
	kcm        *exec.Cmd
	kcmDone    chan struct{}
	logs       []*os.File
	removeLogs bool
}

// BinDir returns the folder holding the control plane binaries, from
// $KUBEBUILDER_ASSETS, or an error that says how to get them.
func BinDir() (string, error) {
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		return "", fmt.Errorf("$%s is not set: build the control plane with `hack/build-controlplane.sh` "+
			"and export %s=<the folder it prints> (`make test` does both)", AssetsEnv, AssetsEnv)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("$%s=%s has no %s: rebuild it with `hack/build-controlplane.sh`", AssetsEnv, dir, b)
		}
	}
	return dir, nil
}

// Start starts etcd and kube-apiserver (and kube-controller-manager when
// asked) and waits until they serve. On error nothing is left running.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	if opts.BinDir == "" {
		if opts.BinDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	cp = &ControlPlane{LogDir: opts.LogDir}
	if cp.LogDir == "" {
		if cp.LogDir, err = os.MkdirTemp("", "pullsecrets-controlplane-"); err != nil {
			return nil, fmt.Errorf("create log folder: %w", err)
		}
		cp.removeLogs = true
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
			cp = nil
		}
	}()

	etcdLog, err := cp.openLog("etcd.log")
	if err != nil {
		return cp, err
	}
	apiLog, err := cp.openLog("kube-apiserver.log")
	if err != nil {
		return cp, err
	}

	apiServer := &envtest.APIServer{Out: apiLog, Err: apiLog}
	args := apiServer.Configure()
	// envtest turns ServiceAccount admission off; our whole subject is what
	// that plugin does, so let the API server run its default plugin set.
	args.Disable("disable-admission-plugins")
	// The endpoint reconciler publishes the advertise address in the
	// kubernetes Service; on loopback it would fail forever.
	args.Set("endpoint-reconciler-type", "none")
	for name, value := range opts.APIServerFlags {
		args.Set(name, value)
	}

	cp.env = &envtest.Environment{
		BinaryAssetsDirectory: opts.BinDir,
		CRDDirectoryPaths:     opts.CRDPaths,
		ErrorIfCRDPathMissing: true,
		ControlPlane: envtest.ControlPlane{
			APIServer: apiServer,
			Etcd:      &envtest.Etcd{Out: etcdLog, Err: etcdLog},
		},
		// A cold start on a busy 2-core machine can take longer than
		// envtest's 20 s default.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	if _, err := cp.env.Start(); err != nil {
		return cp, fmt.Errorf("start etcd and kube-apiserver (logs in %s): %w", cp.LogDir, err)
	}

	admin, err := cp.env.AddUser(envtest.User{Name: "pullsecrets-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return cp, fmt.Errorf("create admin user: %w", err)
	}
	cp.Config = admin.Config()
	if cp.Kubeconfig, err = admin.KubeConfig(); err != nil {
		return cp, fmt.Errorf("render admin kubeconfig: %w", err)
	}

	if opts.ControllerManager {
		if err := cp.startControllerManager(ctx, filepath.Join(opts.BinDir, "kube-controller-manager")); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

func (cp *ControlPlane) openLog(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(cp.LogDir, name))
	if err != nil {
		return nil, fmt.Errorf("create log file: %w", err)
	}
	cp.logs = append(cp.logs, f)
	return f, nil
}

func (cp *ControlPlane) startControllerManager(ctx context.Context, bin string) error {
	kubeconfig := filepath.Join(cp.LogDir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kubeconfig, cp.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kube-controller-manager kubeconfig: %w", err)
	}
	out, err := cp.openLog("kube-controller-manager.log")
	if err != nil {
		return err
	}
	cmd := exec.Command(bin,
		"--kubeconfig="+kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		// No HTTPS endpoint: nothing scrapes it, and it would need its own
		// authentication setup.
		"--secure-port=0",
		"--use-service-account-credentials=false",
		// React fast: tests measure our controller, not this one.
		"--concurrent-serviceaccount-token-syncs=5",
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = out, out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	cp.kcm = cmd
	cp.kcmDone = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(cp.kcmDone)
	}()

	// The first `default` ServiceAccount is the proof that the controller
	// manager is up and reconciling.
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return fmt.Errorf("build client: %w", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-cp.kcmDone:
			return false, fmt.Errorf("kube-controller-manager exited (log: %s)", out.Name())
		default:
		}
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("wait for kube-controller-manager to create the default ServiceAccount: %w", err)
	}
	return nil
}

// Stop stops every process, controller manager first, and waits for them.
// It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.kcm != nil {
		errs = append(errs, stopProcess(cp.kcm, cp.kcmDone, 30*time.Second))
		cp.kcm = nil
	}
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop etcd and kube-apiserver: %w", err))
		}
		cp.env = nil
	}
	for _, f := range cp.logs {
		_ = f.Close()
	}
	cp.logs = nil
	if cp.removeLogs {
		errs = append(errs, os.RemoveAll(cp.LogDir))
		cp.removeLogs = false
	}
	return errors.Join(errs...)
}

// stopProcess asks a process to stop, and kills it when it does not within
// the grace period.
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) error {
	if err := terminate(cmd); err != nil {
		return fmt.Errorf("stop %s: %w", filepath.Base(cmd.Path), err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", filepath.Base(cmd.Path), err)
	}
	<-done
	return nil
}

// WriteKubeconfig writes the admin kubeconfig to path with owner-only
// permissions (it holds a client key).
func (cp *ControlPlane) WriteKubeconfig(path string) error {
	if err := os.WriteFile(path, cp.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// UserKubeconfig returns a kubeconfig for a new client-certificate user with
// the given name and groups, to run something under its own identity (and
// RBAC) rather than as the administrator.
func (cp *ControlPlane) UserKubeconfig(name string, groups ...string) ([]byte, error) {
	user, err := cp.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("render kubeconfig of user %s: %w", name, err)
	}
	return kubeconfig, nil
}

// EnsureDefaultServiceAccount creates the `default` ServiceAccount of a
// namespace, as kube-controller-manager would, when it does not run.
func EnsureDefaultServiceAccount(ctx context.Context, client kubernetes.Interface, namespace string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace}}
	_, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/default: %w", namespace, err)
	}
	return nil
}
