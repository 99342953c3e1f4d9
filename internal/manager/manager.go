// Package manager builds the pullsecrets controller manager from its flags:
// caches, leader election, probes, metrics, and the controller itself. The
// binary's main only runs the command; tests build the same manager with
// New.
package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/controller"
	"github.com/pullsecrets/pullsecrets/internal/version"
)

// Options are the controller's flags.
type Options struct {
	Controller controller.Options

	Kubeconfig string
	// VerifyCAFile holds PEM certificate authorities trusted, on top of the
	// system's, by spec.verify registry checks.
	VerifyCAFile string
	// MetricsAddr is where /metrics is served; empty means :8443 when
	// MetricsSecure, :8080 otherwise, and "0" turns it off.
	MetricsAddr string
	// MetricsSecure serves /metrics over HTTPS, only to clients whose
	// token the API server authenticates and authorizes for GET /metrics.
	MetricsSecure bool
	// MetricsCertDir holds tls.crt and tls.key for the metrics server;
	// empty means a self-signed certificate made at start.
	MetricsCertDir string
	ProbeAddr      string
	// PprofAddr serves net/http/pprof (heap and CPU profiles); "0" is off.
	PprofAddr string
	// MemoryLimitRatio sets GOMEMLIMIT to this share of the container's
	// memory limit (its cgroup's), so that the collector works harder
	// before the container would be killed; 0 leaves GOMEMLIMIT alone, and
	// so does a GOMEMLIMIT set in the environment.
	MemoryLimitRatio float64
	// GCPercent is the collector's GOGC: how far the heap may grow past
	// what the last collection found live. 0 means GOGC from the
	// environment when set, else DefaultGCPercent.
	GCPercent int

	LeaderElect             bool
	LeaderElectionNamespace string
	LeaderElectionID        string

	// QPS and Burst limit requests on the client side; a negative QPS
	// turns the limit off and leaves fairness to the API server's Priority
	// and Fairness, so that a large rollout is not capped at a few writes
	// per second.
	QPS   float32
	Burst int

	Zap zap.Options

	// AllowSeveralInProcess lets one process build several managers (tests
	// that restart the controller or run two replicas). controller-runtime
	// otherwise refuses a second controller of the same name, because their
	// metrics would collide.
	AllowSeveralInProcess bool
}

// DefaultOptions are the flag defaults. The source namespace defaults to the
// controller's own, from POD_NAMESPACE (set by the Deployment through the
// downward API).
func DefaultOptions() Options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "pullsecrets-system"
	}
	o := Options{
		Controller:              controller.DefaultOptions(),
		MetricsSecure:           true,
		ProbeAddr:               ":8081",
		PprofAddr:               "0",
		MemoryLimitRatio:        0.9,
		LeaderElect:             true,
		LeaderElectionNamespace: ns,
		LeaderElectionID:        "pullsecrets-controller",
		QPS:                     -1,
		Burst:                   1000,
	}
	o.Controller.SourceNamespaces = []string{ns}
	o.Controller.KeyNamespace = ns
	return o
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig; empty means in-cluster configuration (or $KUBECONFIG).")
	fs.StringSliceVar(&o.Controller.SourceNamespaces, "source-namespaces", o.Controller.SourceNamespaces,
		"Namespaces source Secrets may be taken from (bind the controller's Role in each). Its cluster-wide Secret list/watch is used for the metadata of its copies only, but grants reading every Secret: see docs/rbac.md.")
	fs.StringVar(&o.Controller.KeyNamespace, "ownership-key-namespace", o.Controller.KeyNamespace,
		"Namespace of the Secret "+v1alpha1.OwnershipKeySecretName+", the key that proves which copies and attachments the controller made (made on first start), and of the Secrets holding provider sources' credentials.")
	fs.StringVar(&o.Controller.CredentialProviderConfig, "credential-provider-config", o.Controller.CredentialProviderConfig,
		"The cluster admin's CredentialProviderConfig (kubelet.config.k8s.io/v1, as the kubelet's --image-credential-provider-config): a file, or a folder of *.yaml/*.yml/*.json files. It alone says which plugins provider sources may name, the images each may be asked for, and their args, env and token audience. Read again when it changes; empty means no plugins.")
	fs.StringVar(&o.Controller.CredentialProviderBinDir, "credential-provider-bin-dir", o.Controller.CredentialProviderBinDir,
		"Folder of the credential provider plugins, as the kubelet's --image-credential-provider-bin-dir (the image carries ecr-credential-provider).")
	fs.StringSliceVar(&o.Controller.PluginInheritedEnv, "credential-provider-inherit-env", o.Controller.PluginInheritedEnv,
		"Variables of the controller's environment that plugins get, besides the env of their configuration: nothing else of it reaches them.")
	fs.DurationVar(&o.Controller.PluginTimeout, "credential-provider-timeout", o.Controller.PluginTimeout, "Time limit of one plugin run.")
	fs.StringVar(&o.Controller.ServiceAccountName, "service-account-name", o.Controller.ServiceAccountName,
		"The controller's own ServiceAccount, in --ownership-key-namespace: plugins whose configuration has tokenAttributes get its tokens and annotations.")
	fs.StringVar(&o.Controller.PodInjectionPolicy, "pod-injection-policy", o.Controller.PodInjectionPolicy,
		"Name of the MutatingAdmissionPolicy, and of its binding, that adds names to Pods for ClusterPullSecrets with attachTo: Pods (config/pod-injection; the Helm chart prefixes it with the release name).")
	fs.IntVar(&o.Controller.Workers, "workers", o.Controller.Workers, "Namespaces reconciled in parallel.")
	fs.DurationVar(&o.Controller.StatusInterval, "status-interval", o.Controller.StatusInterval,
		"Least time between two status computations and writes of one ClusterPullSecret.")
	fs.Float64Var(&o.Controller.PodRestartsPerSecond, "pod-restarts-per-second", o.Controller.PodRestartsPerSecond,
		"Most Pods deleted per second for restartPods: OnPullFailure.")
	fs.StringVar(&o.VerifyCAFile, "verify-ca-file", o.VerifyCAFile,
		"PEM file of certificate authorities to trust, besides the system's, when checking spec.verify images against registries.")
	fs.DurationVar(&o.Controller.VerifyTimeout, "verify-timeout", o.Controller.VerifyTimeout, "Time limit of one spec.verify registry check.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr,
		"Address of the Prometheus /metrics endpoint; empty means :8443 with --metrics-secure, :8080 without; 0 turns it off.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure,
		"Serve /metrics over HTTPS to clients the API server authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview).")
	fs.StringVar(&o.MetricsCertDir, "metrics-cert-dir", o.MetricsCertDir,
		"Folder with tls.crt and tls.key for the metrics server (reloaded when they change); empty means a self-signed certificate.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address of the /healthz and /readyz endpoints; 0 turns them off.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", o.PprofAddr, "Address of the /debug/pprof endpoints (heap and CPU profiles); 0 turns them off. Unauthenticated: bind it to loopback.")
	fs.Float64Var(&o.MemoryLimitRatio, "memory-limit-ratio", o.MemoryLimitRatio,
		"Set GOMEMLIMIT to this share of the container's memory limit (read from its cgroup); 0 turns it off, and a GOMEMLIMIT environment variable wins.")
	fs.IntVar(&o.GCPercent, "gc-percent", o.GCPercent,
		fmt.Sprintf("The collector's GOGC: how far (in %%) the heap may grow past what the last collection found live; 0 means the GOGC environment variable when set, else %d.", DefaultGCPercent))
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader among replicas; only the leader writes.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader election Lease.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the leader election Lease.")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Client-side request rate limit; negative turns it off (the API server's Priority and Fairness still applies).")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Client-side burst, when --kube-api-qps is positive.")
	gofs := flag.NewFlagSet("zap", flag.ContinueOnError)
	o.Zap.BindFlags(gofs)
	fs.AddGoFlagSet(gofs)
}

// Validate checks the options once, before any work.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Controller.SourceNamespaces) == 0 {
		errs = append(errs, errors.New("--source-namespaces: at least one namespace"))
	}
	for _, ns := range o.Controller.SourceNamespaces {
		if strings.TrimSpace(ns) == "" {
			errs = append(errs, errors.New("--source-namespaces: empty namespace name"))
		}
	}
	if o.Controller.Workers < 1 {
		errs = append(errs, errors.New("--workers: at least 1"))
	}
	if o.Controller.StatusInterval <= 0 {
		errs = append(errs, errors.New("--status-interval: must be positive"))
	}
	if o.Controller.VerifyTimeout <= 0 {
		errs = append(errs, errors.New("--verify-timeout: must be positive"))
	}
	if o.Controller.PluginTimeout <= 0 {
		errs = append(errs, errors.New("--credential-provider-timeout: must be positive"))
	}
	if o.Controller.PodRestartsPerSecond <= 0 {
		errs = append(errs, errors.New("--pod-restarts-per-second: must be positive"))
	}
	if o.GCPercent < 0 {
		errs = append(errs, errors.New("--gc-percent: 0 (GOGC, else the default) or a positive percentage"))
	}
	if o.MemoryLimitRatio < 0 || o.MemoryLimitRatio > 1 {
		errs = append(errs, errors.New("--memory-limit-ratio: between 0 (off) and 1"))
	}
	if o.MetricsCertDir != "" {
		if !o.MetricsSecure {
			errs = append(errs, errors.New("--metrics-cert-dir: needs --metrics-secure"))
		}
		for _, f := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(o.MetricsCertDir, f)); err != nil {
				// controller-runtime would fall back to a self-signed certificate without a word.
				errs = append(errs, fmt.Errorf("--metrics-cert-dir: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Scheme is the scheme the manager works with.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// New builds the manager and adds the controller to it. metrics may be nil
// for controller-runtime's registry (what the binary serves).
func New(cfg *rest.Config, opts Options, metrics *controller.Metrics) (ctrl.Manager, error) {
	if metrics == nil {
		metrics = controller.NewMetrics(ctrlmetrics.Registry)
	}
	cfg = metrics.Instrument(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	cfg.UserAgent = "pullsecrets-controller"

	mgr, err := ctrl.NewManager(cfg, ctrlmanager.Options{
		Scheme: Scheme(),
		Cache:  controller.CacheOptions(),
		// ClusterPullSecrets are cached unstructured (see package
		// controller): reads of them must come from the cache too. Secrets
		// and ServiceAccounts never are (controller.Uncached).
		Client:                        client.Options{Cache: &client.CacheOptions{Unstructured: true, DisableFor: controller.Uncached()}},
		Metrics:                       metricsOptions(opts),
		HealthProbeBindAddress:        opts.ProbeAddr,
		PprofBindAddress:              opts.PprofAddr,
		LeaderElection:                opts.LeaderElect,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionID:              opts.LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptrDuration(30 * time.Second),
		Controller:                    config.Controller{SkipNameValidation: &opts.AllowSeveralInProcess},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	opts.Controller.Metrics = metrics
	if err := controller.Setup(mgr, opts.Controller); err != nil {
		return nil, err
	}
	if opts.ProbeAddr != "0" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, err
		}
		// Ready once the caches are synced: before that a replica would
		// answer nothing useful.
		if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
			if !mgr.GetCache().WaitForCacheSync(req.Context()) {
				return errors.New("caches not synced")
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

func ptrDuration(d time.Duration) *time.Duration { return &d }

// metricsOptions serves /metrics as current kubebuilder projects do: HTTPS,
// and only to callers the API server authenticates and authorizes.
func metricsOptions(opts Options) metricsserver.Options {
	o := metricsserver.Options{BindAddress: opts.MetricsAddr, SecureServing: opts.MetricsSecure}
	if !opts.MetricsSecure {
		if o.BindAddress == "" {
			o.BindAddress = ":8080"
		}
		return o
	}
	if o.BindAddress == "" {
		o.BindAddress = ":8443"
	}
	o.CertDir = opts.MetricsCertDir
	o.FilterProvider = metricsAuthFilter
	// HTTP/2 off: its stream reset flood (CVE-2023-44487, CVE-2023-39325) needs no authentication.
	o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	return o
}

// NewCommand returns the pullsecrets-controller command.
func NewCommand() *cobra.Command {
	opts := DefaultOptions()
	var printVersion bool
	cmd := &cobra.Command{
		Use:   "pullsecrets-controller",
		Short: "Keep ClusterPullSecrets in every selected namespace and on every selected ServiceAccount",
		Args:  cobra.NoArgs,
		// Flags are the only input; a mistake is shown with the usage.
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printVersion {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "pullsecrets-controller", version.Get())
				return err
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return Run(cmd.Context(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&printVersion, "version", false, "Print the version, git commit and commit date, then exit.")
	return cmd
}

// Run runs the controller until ctx ends.
func Run(ctx context.Context, opts Options) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.Zap)))
	setGCPercent(opts.GCPercent, os.Getenv("GOGC"))
	setMemoryLimit(opts.MemoryLimitRatio, memlimit.FromCgroup)
	cfg, err := restConfig(opts.Kubeconfig)
	if err != nil {
		return err
	}
	if opts.VerifyCAFile != "" {
		if opts.Controller.VerifyRootCAs, err = loadCAs(opts.VerifyCAFile); err != nil {
			return err
		}
	}
	mgr, err := New(cfg, opts, nil)
	if err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("starting", "version", version.Get().Version, "commit", version.Get().Commit, "sourceNamespaces", opts.Controller.SourceNamespaces,
		"workers", opts.Controller.Workers, "leaderElect", opts.LeaderElect)
	return mgr.Start(ctx)
}

// DefaultGCPercent is the controller's GOGC unless told otherwise. Go's
// default, 100, lets the heap reach twice what the last collection found
// live, and nearly all of the controller's live heap is its records, which
// live as long as the objects they stand for: the headroom, not the
// records, made most of the peak (docs/benchmarks.md, "The collector's
// headroom"). Prometheus made the same trade in 2.53 (GOGC 75 by default,
// prometheus/prometheus#14285).
const DefaultGCPercent = 50

// setGCPercent sets the collector's GOGC to percent; 0 leaves a GOGC set in
// the environment (env) in force, and sets DefaultGCPercent otherwise. It
// returns the percentage in force.
func setGCPercent(percent int, env string) int {
	if percent == 0 && env != "" {
		current := debug.SetGCPercent(100)
		debug.SetGCPercent(current)
		return current
	}
	if percent == 0 {
		percent = DefaultGCPercent
	}
	debug.SetGCPercent(percent)
	ctrl.Log.WithName("setup").Info("collector", "GOGC", percent)
	return percent
}

// setMemoryLimit sets GOMEMLIMIT to ratio of the limit the provider reads
// (the container's), unless ratio is 0 or GOMEMLIMIT is set in the
// environment, and logs the limit in force. Without a limit, or where none
// can be read, the runtime's default (no limit) stays.
func setMemoryLimit(ratio float64, provider memlimit.Provider) int64 {
	log := ctrl.Log.WithName("setup")
	if ratio <= 0 {
		return debug.SetMemoryLimit(-1)
	}
	limit, err := memlimit.Set(memlimit.WithRatio(ratio), memlimit.WithProvider(provider))
	if err != nil {
		log.Info("GOMEMLIMIT not set from the container's memory limit", "reason", err.Error())
		return limit
	}
	if limit < math.MaxInt64 {
		log.Info("memory limit", "GOMEMLIMIT", limit, "ratio", ratio)
	}
	return limit
}

// loadCAs returns the system's certificate pool plus the CAs in file.
func loadCAs(file string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--verify-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("--verify-ca-file %s: no PEM certificate found", file)
	}
	return pool, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := ctrl.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("load Kubernetes client configuration: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}
