// Package fleet is the fleet benchmark of the pullsecrets controller: on a
// local control plane with N namespaces that run things (workloads and
// their Pods, some stuck on a pull), it measures the fastest the API
// server can take the writes a ClusterPullSecret needs (the floor), then
// runs the real controller binary, as a separate process under its
// generated least-privilege RBAC, and measures cold convergence, the
// requests it makes (counted by the API server's audit log), steady state,
// new-namespace latency, rotation, rename and the retirement of old copies,
// and memory (RSS and heap profiles), each as a ratio to the floor, to the
// minimal write count, or to a cold start of the same cluster before it
// had Pods. It is a benchmark, not a test: it prints figures and writes
// them as JSON.
package fleet

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Options are the benchmark's flags.
type Options struct {
	// Namespaces is the size of the fleet.
	Namespaces int
	// ServiceAccounts per namespace, `default` included.
	ServiceAccounts int
	// UnrelatedSecrets per namespace, of UnrelatedSecretBytes each: a
	// controller that caches every Secret shows it in its memory.
	UnrelatedSecrets     int
	UnrelatedSecretBytes int
	// Pods per namespace, spread over its workloads; 0 leaves out Pods
	// and workloads altogether (the fleet of earlier runs). Workloads read
	// the Secrets unrelated-0 to unrelated-2, whether they exist or not.
	Pods int
	// StuckPods of each namespace's Pods wait on a failed pull.
	StuckPods int
	// BareCold first measures a floor and a cold start on the fleet
	// without Pods and workloads, then adds them: the comparison of the
	// two cold starts is the cost of Pods and workloads.
	BareCold bool
	// Pprof runs the controller with its pprof endpoint on loopback and
	// takes a heap profile (after a forced collection) at the end of the
	// cold starts and of the rename.
	Pprof bool
	// PeakHeap polls the controller's heap profile every 250 ms of every
	// phase and keeps the one at the highest HeapInuse. Off by
	// default: symbolizing profiles touches the binary's tables, whose
	// file pages then count in the RSS being measured.
	PeakHeap bool
	// CPUProfile, when positive, also records CPU profiles of the
	// controller and of kube-apiserver over the first CPUProfile of each
	// cold start.
	CPUProfile time.Duration
	// ControllerNoCompression sets disable-compression in the
	// controller's kubeconfig, to measure what gzip costs on loopback.
	ControllerNoCompression bool
	// ControllerEnv are extra environment variables of the controller
	// (GOGC=..., GOMEMLIMIT=...).
	ControllerEnv []string
	// NewNamespaces are created one by one after the cold start, to measure
	// how fast a new namespace is served.
	NewNamespaces int
	// Steady is the window in which a converged controller should make no
	// request but its watches.
	Steady time.Duration
	// LeaderElectSteady, when positive, restarts the controller with leader
	// election on and counts its requests over this window, leases apart.
	LeaderElectSteady time.Duration
	// FloorWorkers are the floor client's concurrent requests.
	FloorWorkers int
	// FloorRuns: the floor is the fastest of this many runs.
	FloorRuns int
	// SetupWorkers create the fleet.
	SetupWorkers int
	// Controller is the pullsecrets-controller binary.
	Controller string
	// ControllerArgs are extra controller flags.
	ControllerArgs []string
	// Out is the folder of the JSON result and the run's logs.
	Out string
	// CRDs and RBAC are the generated manifests the run applies.
	CRDs string
	RBAC string
	// Timeout bounds each wait for a goal.
	Timeout time.Duration
	// AttachTo is the ClusterPullSecret's spec.attachTo: ServiceAccounts,
	// or Pods, where the policy of PodInjection is installed, no
	// ServiceAccount is written, and the admission cost of a Pod create is
	// measured.
	AttachTo string
	// PodInjection is the MutatingAdmissionPolicy and its binding that
	// Pods mode installs.
	PodInjection string
	// AdmissionPods is how many Pod creates (server-side dry runs) are
	// timed for each admission configuration, in Pods mode.
	AdmissionPods int
	// AdmissionParams is the larger number of ClusterPullSecrets the
	// policy is evaluated with (the smaller is 1).
	AdmissionParams int
	// Baseline measures the controller's memory on the empty cluster,
	// before the fleet exists: the peak RSS per namespace is counted above
	// it.
	Baseline time.Duration
	// Peer is another controller's binary (tamcore/imagepullsecret-patcher)
	// run on the same fleet after the measured phases, for its memory.
	Peer string
	// Quiet is how long the controller must make no request (but watches
	// and leases) for a phase to count as settled. Longer than client-go's
	// Event retry (a series patch that races the Event's create is retried
	// after up to 10 s), so that a phase's Events count with it.
	Quiet time.Duration
}

// The values of --attach-to.
const (
	attachServiceAccounts = "serviceaccounts"
	attachPods            = "pods"
)

// podsMode reports whether the run is in Pods mode.
func (o *Options) podsMode() bool { return o.AttachTo == attachPods }

// namespacesOf is how many namespaces get a new copy in a phase.
func (o *Options) namespacesOf(phase string, f Fleet) int {
	switch phase {
	case "new-namespaces":
		return o.NewNamespaces
	case "rename":
		return f.Namespaces + o.NewNamespaces
	}
	return f.Namespaces
}

// DefaultOptions are the flag defaults.
func DefaultOptions() Options {
	return Options{
		Namespaces:           1000,
		ServiceAccounts:      3,
		UnrelatedSecrets:     5,
		UnrelatedSecretBytes: 10 << 10,
		Pods:                 20,
		StuckPods:            2,
		BareCold:             true,
		Pprof:                true,
		NewNamespaces:        50,
		Steady:               time.Minute,
		LeaderElectSteady:    time.Minute,
		FloorWorkers:         128,
		FloorRuns:            2,
		SetupWorkers:         64,
		Out:                  "bench/results",
		CRDs:                 "config/crd/bases",
		RBAC:                 "config/rbac/role.yaml",
		Timeout:              15 * time.Minute,
		Quiet:                12 * time.Second,
		AttachTo:             attachServiceAccounts,
		PodInjection:         "config/pod-injection/policy.yaml",
		AdmissionPods:        2000,
		AdmissionParams:      20,
		Baseline:             20 * time.Second,
	}
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Namespaces, "namespaces", o.Namespaces, "Namespaces in the fleet.")
	fs.IntVar(&o.ServiceAccounts, "service-accounts", o.ServiceAccounts, "ServiceAccounts per namespace, `default` included.")
	fs.IntVar(&o.UnrelatedSecrets, "unrelated-secrets", o.UnrelatedSecrets, "Unrelated Secrets per namespace (0 for the memory baseline).")
	fs.IntVar(&o.UnrelatedSecretBytes, "unrelated-secret-bytes", o.UnrelatedSecretBytes, "Bytes of data in each unrelated Secret.")
	fs.IntVar(&o.Pods, "pods", o.Pods, "Pods per namespace, with their workloads (0: no Pods and no workloads).")
	fs.IntVar(&o.StuckPods, "stuck-pods", o.StuckPods, "Of each namespace's Pods, how many wait on a failed image pull (ErrImagePull, ImagePullBackOff).")
	fs.BoolVar(&o.BareCold, "bare-cold", o.BareCold, "Before adding Pods and workloads, measure a floor and a cold start without them, on the same cluster.")
	fs.BoolVar(&o.Pprof, "pprof", o.Pprof, "Run the controller with --pprof-bind-address on loopback and save heap profiles at the end of the cold starts and the rename.")
	fs.BoolVar(&o.PeakHeap, "peak-heap", o.PeakHeap,
		"With --pprof, poll the controller's heap profile every 250 ms of every phase and keep the one at the highest HeapInuse (it adds the binary's symbol tables to the RSS measured).")
	fs.DurationVar(&o.CPUProfile, "cpu-profile", o.CPUProfile, "Record CPU profiles of the controller and kube-apiserver over this much of each cold start (0: none).")
	fs.BoolVar(&o.ControllerNoCompression, "controller-disable-compression", o.ControllerNoCompression,
		"Set disable-compression in the controller's kubeconfig: responses and watch streams without gzip.")
	fs.StringArrayVar(&o.ControllerEnv, "controller-env", o.ControllerEnv, "Extra environment variable of the controller, e.g. --controller-env=GOGC=50; repeatable.")
	fs.IntVar(&o.NewNamespaces, "new-namespaces", o.NewNamespaces, "Namespaces created one at a time after convergence, for the new-namespace latency.")
	fs.DurationVar(&o.Steady, "steady", o.Steady, "Steady-state window, leader election off.")
	fs.DurationVar(&o.LeaderElectSteady, "leader-elect-steady", o.LeaderElectSteady,
		"Steady-state window after a restart with leader election on; 0 skips the restart.")
	fs.IntVar(&o.FloorWorkers, "floor-workers", o.FloorWorkers, "Concurrent requests of the floor client.")
	fs.IntVar(&o.FloorRuns, "floor-runs", o.FloorRuns, "Runs of the floor; the fastest counts.")
	fs.IntVar(&o.SetupWorkers, "setup-workers", o.SetupWorkers, "Concurrent requests creating the fleet.")
	fs.StringVar(&o.Controller, "controller", o.Controller, "The pullsecrets-controller binary (make build).")
	fs.StringArrayVar(&o.ControllerArgs, "controller-arg", o.ControllerArgs, "Extra controller flag, e.g. --controller-arg=--workers=64; repeatable.")
	fs.StringVar(&o.Out, "out", o.Out, "Folder of <timestamp>.json and the <timestamp>-logs folder.")
	fs.StringVar(&o.CRDs, "crds", o.CRDs, "CustomResourceDefinitions to install.")
	fs.StringVar(&o.RBAC, "rbac", o.RBAC, "The controller's generated ClusterRole and Role.")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "Longest wait for any one goal.")
	fs.StringVar(&o.AttachTo, "attach-to", o.AttachTo,
		"The ClusterPullSecret's spec.attachTo: serviceaccounts, or pods (installs --pod-injection, writes no ServiceAccount, and measures the admission cost of Pod creates).")
	fs.StringVar(&o.PodInjection, "pod-injection", o.PodInjection, "The MutatingAdmissionPolicy and binding of Pods mode.")
	fs.IntVar(&o.AdmissionPods, "admission-pods", o.AdmissionPods,
		"Pods mode: Pod creates (server-side dry runs) timed without the policy, with 1 ClusterPullSecret and with --admission-params; 0 skips it.")
	fs.IntVar(&o.AdmissionParams, "admission-params", o.AdmissionParams, "Pods mode: ClusterPullSecrets the policy is evaluated with in the larger admission run.")
	fs.DurationVar(&o.Baseline, "baseline", o.Baseline,
		"Run the controller this long on the empty cluster, before the fleet, for its baseline memory (0: skip).")
	fs.StringVar(&o.Peer, "peer", o.Peer,
		"A tamcore/imagepullsecret-patcher binary, built from its repository, to run on the same fleet after the phases, for its peak RSS.")
	fs.DurationVar(&o.Quiet, "quiet", o.Quiet, "Time without controller requests (but watches and leases) after which a phase is settled.")
}

// Validate checks the options once, before any work.
func (o *Options) Validate() error {
	var errs []error
	positive := map[string]int{
		"--namespaces": o.Namespaces, "--service-accounts": o.ServiceAccounts, "--floor-workers": o.FloorWorkers,
		"--floor-runs": o.FloorRuns, "--setup-workers": o.SetupWorkers,
	}
	for flag, v := range positive {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s: at least 1", flag))
		}
	}
	if o.UnrelatedSecrets < 0 || o.UnrelatedSecretBytes < 0 || o.NewNamespaces < 0 || o.Pods < 0 || o.StuckPods < 0 {
		errs = append(errs, errors.New("--unrelated-secrets, --unrelated-secret-bytes, --new-namespaces, --pods and --stuck-pods: not negative"))
	}
	if o.PeakHeap && !o.Pprof {
		errs = append(errs, errors.New("--peak-heap: needs --pprof"))
	}
	if o.CPUProfile > 0 && (!o.Pprof || o.CPUProfile < time.Second) {
		errs = append(errs, errors.New("--cpu-profile: needs --pprof, and at least 1s"))
	}
	for _, kv := range o.ControllerEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("--controller-env %q: not NAME=VALUE", kv))
		}
	}
	switch o.AttachTo {
	case attachServiceAccounts:
	case attachPods:
		if _, err := os.Stat(o.PodInjection); err != nil {
			errs = append(errs, fmt.Errorf("--pod-injection: %w (run from the repository root)", err))
		}
		if o.AdmissionPods < 0 || o.AdmissionParams < 1 {
			errs = append(errs, errors.New("--admission-pods: not negative; --admission-params: at least 1"))
		}
	default:
		errs = append(errs, fmt.Errorf("--attach-to %q: serviceaccounts or pods", o.AttachTo))
	}
	if o.Peer != "" {
		if fi, err := os.Stat(o.Peer); err != nil || fi.IsDir() {
			errs = append(errs, fmt.Errorf("--peer %s: not a file", o.Peer))
		}
	}
	if o.Baseline < 0 {
		errs = append(errs, errors.New("--baseline: not negative"))
	}
	if o.Namespaces > 99999 {
		errs = append(errs, errors.New("--namespaces: at most 99999"))
	}
	if o.Steady < 0 || o.LeaderElectSteady < 0 || o.Timeout <= 0 || o.Quiet <= 0 {
		errs = append(errs, errors.New("--steady, --leader-elect-steady: not negative; --timeout, --quiet: positive"))
	}
	if o.Controller == "" {
		errs = append(errs, errors.New("--controller: the pullsecrets-controller binary is required (make build)"))
	} else if fi, err := os.Stat(o.Controller); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("--controller %s: not an executable file (make build)", o.Controller))
	}
	for flag, path := range map[string]string{"--crds": o.CRDs, "--rbac": o.RBAC} {
		if _, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (run from the repository root)", flag, err))
		}
	}
	if err := supported(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// NewCommand returns the fleet benchmark command. The table goes to out,
// progress to errOut.
func NewCommand(out, errOut io.Writer) *cobra.Command {
	opts := DefaultOptions()
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Benchmark the pullsecrets controller over a fleet of namespaces, against the floor of the same machine",
		Args:  cobra.NoArgs,
		// Flags are the only input; a mistake is shown with the usage.
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return Run(cmd.Context(), opts, out, errOut)
		},
	}
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	opts.AddFlags(cmd.Flags())
	return cmd
}
