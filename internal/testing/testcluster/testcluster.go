// Package testcluster gives integration tests a real Kubernetes control plane
// (see package controlplane): one per test package, started lazily by the
// first test that asks for it, a fresh namespace per test, and no process
// left behind however the test binary ends.
//
// A package opts in from its TestMain:
//
//	func TestMain(m *testing.M) {
//		testcluster.Main(m, testcluster.Options{ControllerManager: true})
//	}
//
//	func TestSomething(t *testing.T) {
//		c := testcluster.Get(t) // skips under -short
//		ns := c.Namespace(t)
//		...
//	}
//
// The control plane runs in a child process (the test binary re-executed in
// "daemon" mode) that owns etcd, kube-apiserver and kube-controller-manager.
// The daemon stops them as soon as its stdin closes, which the kernel does
// when the test binary exits for any reason: a panic, a -timeout, a signal,
// or even SIGKILL. Deferred cleanup in TestMain would not survive a panic in
// a test, because the testing package exits the process right away.
package testcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// daemonEnv carries the daemon's Options, JSON encoded; its presence is what
// turns the re-executed test binary into the daemon.
const daemonEnv = "PULLSECRETS_TESTCLUSTER_DAEMON"

// readyLine is what the daemon prints once the control plane serves.
const readyLine = "testcluster: ready"

// Options configure the control plane of a test package.
type Options struct {
	// ControllerManager also runs kube-controller-manager: default
	// ServiceAccounts, Deployments becoming Pods, garbage collection.
	ControllerManager bool `json:"controllerManager,omitempty"`
	// CRDPaths are CRD files or folders to install, relative to the test
	// package's folder.
	CRDPaths []string `json:"crdPaths,omitempty"`
	// APIServerFlags are extra kube-apiserver flags.
	APIServerFlags map[string]string `json:"apiServerFlags,omitempty"`
}

// Cluster is the control plane of the running test package.
type Cluster struct {
	// Config connects as a cluster administrator.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for Config.
	Kubeconfig string
	// Client is a typed clientset for Config.
	Client kubernetes.Interface
	// ControllerManager reports whether kube-controller-manager runs.
	ControllerManager bool

	daemon *exec.Cmd
	stdin  io.Closer
	done   chan error
	dir    string
}

var (
	pkgOptions Options
	mainCalled bool

	startOnce  sync.Once
	cluster    *Cluster
	startError error
)

// Main runs the package's tests and exits. Call it from TestMain. When the
// test binary runs as the control plane daemon, Main runs the daemon instead.
func Main(m *testing.M, opts Options) {
	if raw, ok := os.LookupEnv(daemonEnv); ok {
		os.Exit(runDaemon(raw))
	}
	flag.Parse()
	pkgOptions = opts
	mainCalled = true
	code := m.Run()
	if cluster != nil {
		if err := cluster.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Get returns the package's control plane, starting it on first use. It skips
// the test under -short and fails it when the control plane cannot start.
func Get(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local control plane (skipped with -short)")
	}
	if !mainCalled {
		t.Fatal("testcluster.Get needs the package's TestMain to call testcluster.Main")
	}
	startOnce.Do(func() { cluster, startError = start(pkgOptions) })
	if startError != nil {
		t.Fatalf("start the local control plane: %v", startError)
	}
	return cluster
}

func start(opts Options) (*Cluster, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the test binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "pullsecrets-testcluster-")
	if err != nil {
		return nil, fmt.Errorf("create state folder: %w", err)
	}
	// CRD paths are relative to the test package; the daemon runs in the
	// same working directory, but absolute paths make its errors clearer.
	for i, p := range opts.CRDPaths {
		if opts.CRDPaths[i], err = filepath.Abs(p); err != nil {
			return nil, fmt.Errorf("resolve CRD path %s: %w", p, err)
		}
	}
	raw, err := json.Marshal(daemonOptions{Options: opts, Dir: dir})
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, fmt.Errorf("create daemon log: %w", err)
	}
	defer logFile.Close()

	// -test.run=^$ makes sure that a binary whose TestMain forgot to call
	// Main runs no test instead of recursing.
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), daemonEnv+"="+string(raw))
	cmd.Stderr = logFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start control plane daemon: %w", err)
	}
	c := &Cluster{daemon: cmd, stdin: stdin, done: make(chan error, 1), dir: dir, ControllerManager: opts.ControllerManager}

	ready := make(chan error, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if scanner.Text() == readyLine {
				ready <- nil
				break
			}
		}
		// Keep draining so the daemon never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
		ready <- errors.New("daemon exited before the control plane was ready")
	}()
	go func() { c.done <- cmd.Wait() }()

	select {
	case err = <-ready:
	case <-time.After(5 * time.Minute):
		err = errors.New("timed out after 5m waiting for the control plane")
	}
	if err != nil {
		_ = c.stop()
		return nil, fmt.Errorf("%w; daemon log:\n%s", err, tail(filepath.Join(dir, "daemon.log"), 40))
	}

	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		_ = c.stop()
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	// Tests create many objects quickly; client-side throttling would only
	// slow them down and hide real latencies.
	c.Config.QPS, c.Config.Burst = 1000, 2000
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		_ = c.stop()
		return nil, err
	}
	return c, nil
}

// stop closes the daemon's stdin, which makes it stop the control plane, and
// waits for it.
func (c *Cluster) stop() error {
	_ = c.stdin.Close()
	var err error
	select {
	case err = <-c.done:
	case <-time.After(2 * time.Minute):
		_ = c.daemon.Process.Kill()
		err = errors.New("control plane daemon did not stop within 2m; killed it")
	}
	if err != nil {
		return fmt.Errorf("stop control plane: %w (logs kept in %s)", err, c.dir)
	}
	return os.RemoveAll(c.dir)
}

// LogDir is the folder with the control plane's process logs.
func (c *Cluster) LogDir() string { return filepath.Join(c.dir, "logs") }

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Context returns a context for a test's API calls, cancelled when the test
// ends.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
