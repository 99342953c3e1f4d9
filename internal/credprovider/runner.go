package credprovider

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/kubelet/pkg/apis/credentialprovider/install"
)

// Defaults of a Runner.
const (
	// DefaultTimeout is the kubelet's catch-all timeout for one plugin run
	// (plugin.go: ExecPlugin).
	DefaultTimeout = time.Minute
	// DefaultMaxStdout bounds a response: real ones are a few hundred bytes.
	DefaultMaxStdout = 1 << 20
	// DefaultMaxStderr bounds a plugin's logs, which are counted, never kept.
	DefaultMaxStderr = 64 << 10
	// waitDelay bounds the wait for output pipes that a plugin's children
	// hold open after it exited or was killed.
	waitDelay = 2 * time.Second
)

// Options configure a Runner.
type Options struct {
	// BinDir holds the plugin executables, as the kubelet's
	// --image-credential-provider-bin-dir.
	BinDir string
	// Timeout bounds one run; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxStdout and MaxStderr bound what a plugin may write; more is an
	// error. 0 means DefaultMaxStdout and DefaultMaxStderr.
	MaxStdout, MaxStderr int64
	// Environ gives the environment a plugin inherits before its own Env;
	// nil means Inherit(DefaultInheritedEnv). The kubelet passes its whole
	// environment; the controller's holds its own API credentials' paths
	// and whatever its Deployment sets, none of which a plugin needs.
	Environ func() []string
	// Now is the clock of Result.Obtained; nil means time.Now.
	Now func() time.Time
}

// Runner runs the plugins of one bin directory. It is safe for
// concurrent use.
type Runner struct {
	binDir               string
	timeout              time.Duration
	maxStdout, maxStderr int64
	environ              func() []string
	now                  func() time.Time
	codecs               serializer.CodecFactory
}

// NewRunner returns a Runner, with defaults for what o leaves zero.
func NewRunner(o Options) (*Runner, error) {
	if o.BinDir == "" {
		return nil, errors.New("credential provider runner: the bin directory is empty")
	}
	dir, err := filepath.Abs(o.BinDir)
	if err != nil {
		return nil, fmt.Errorf("credential provider runner: bin directory %s: %w", o.BinDir, err)
	}
	if o.Timeout < 0 || o.MaxStdout < 0 || o.MaxStderr < 0 {
		return nil, errors.New("credential provider runner: the timeout and output limits must not be negative")
	}
	r := &Runner{
		binDir:    dir,
		timeout:   cmp.Or(o.Timeout, DefaultTimeout),
		maxStdout: cmp.Or(o.MaxStdout, DefaultMaxStdout),
		maxStderr: cmp.Or(o.MaxStderr, DefaultMaxStderr),
		environ:   o.Environ,
		now:       o.Now,
	}
	if r.environ == nil {
		r.environ = Inherit(DefaultInheritedEnv)
	}
	if r.now == nil {
		r.now = time.Now
	}
	// The kubelet's codecs: every protocol version, strict decoding (plugin.go).
	scheme := runtime.NewScheme()
	install.Install(scheme)
	r.codecs = serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	return r, nil
}

// DefaultInheritedEnv are the variables of the controller's environment a
// plugin gets besides the env of its configuration: what a process needs
// to run (PATH, HOME, TMPDIR, TZ, proxies and CA bundles) and what cloud
// workload identities put into the controller's Pod for the plugins to use
// (EKS IRSA and Pod Identity, AKS Workload Identity; GKE's metadata server
// needs none). docs/short-lived-tokens.md lists them.
var DefaultInheritedEnv = []string{
	"PATH", "HOME", "TMPDIR", "TZ",
	"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_STS_REGIONAL_ENDPOINTS",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST",
}

// Inherit returns an Environ that passes on only the named variables of
// the process's environment.
func Inherit(names []string) func() []string {
	return func() []string {
		var env []string
		for _, name := range names {
			if v, ok := os.LookupEnv(name); ok {
				env = append(env, name+"="+v)
			}
		}
		return env
	}
}

// BinDir is the absolute bin directory.
func (r *Runner) BinDir() string { return r.binDir }

// Request is what a plugin is asked: one image, and for KEP-4412 plugins
// a service account token and annotations.
type Request struct {
	Image                     string
	ServiceAccountToken       string `json:"-"`
	ServiceAccountAnnotations map[string]string
}

// String describes the request without its token.
func (q Request) String() string {
	token := "<none>"
	if q.ServiceAccountToken != "" {
		token = "<redacted>"
	}
	return fmt.Sprintf("image=%q serviceAccountToken=%s serviceAccountAnnotations=%d", q.Image, token, len(q.ServiceAccountAnnotations))
}

// GoString is String, so that %#v redacts the token too.
func (q Request) GoString() string { return "credprovider.Request{" + q.String() + "}" }

// Format prints String for every verb, so that no verb prints the token.
func (q Request) Format(f fmt.State, verb rune) { formatRedacted(f, verb, q.String(), q.GoString()) }

// LogValue keeps the token out of structured logs.
func (q Request) LogValue() slog.Value {
	return slog.GroupValue(slog.String("image", q.Image), slog.Bool("serviceAccountToken", q.ServiceAccountToken != ""))
}

// Run runs plugin p for req, as the kubelet's execPlugin.ExecPlugin and
// pluginProvider.provide do, and returns its credentials. The error, an
// *Error, never holds the plugin's output or the token.
func (r *Runner) Run(ctx context.Context, p Plugin, req Request) (*Result, error) {
	fail := func(reason Reason, format string, args ...any) *Error {
		return &Error{Plugin: p.Name, Image: req.Image, Reason: reason, Detail: fmt.Sprintf(format, args...), ExitCode: -1}
	}
	if err := p.Validate(); err != nil {
		return nil, fail(ReasonInvalidPlugin, "invalid plugin configuration: %s", err.Error())
	}
	if req.Image == "" {
		return nil, fail(ReasonInvalidPlugin, "the request names no image")
	}
	if (req.ServiceAccountToken != "" || len(req.ServiceAccountAnnotations) > 0) && p.APIVersion != APIVersionV1 {
		return nil, fail(ReasonInvalidPlugin, "a service account token or annotations need apiVersion %s", APIVersionV1)
	}
	path := filepath.Join(r.binDir, p.Name)
	if problem := checkExecutable(path); problem != "" {
		return nil, fail(ReasonPluginNotFound, "%s %s", path, problem)
	}
	stdin, err := r.encodeRequest(p.APIVersion, req)
	if err != nil {
		// The encoder's error could echo the request; say only where it failed.
		return nil, fail(ReasonInvalidPlugin, "could not encode the request as %s", p.APIVersion)
	}

	obtained := r.now()
	out, e := r.exec(ctx, path, p, stdin)
	if e != nil {
		e.Plugin, e.Image = p.Name, req.Image
		return nil, e
	}
	res, e := r.result(p, req, out.data, obtained)
	if e != nil {
		e.Plugin, e.Image, e.ExitCode, e.Elapsed = p.Name, req.Image, -1, out.elapsed
		e.StdoutBytes, e.StderrBytes = out.stdoutBytes, out.stderrBytes
		return nil, e
	}
	res.StderrBytes = out.stderrBytes
	return res, nil
}

// checkExecutable says what is wrong with the plugin's file, or "".
// The kubelet's exec.LookPath does the same checks.
func checkExecutable(path string) string {
	fi, err := os.Stat(path)
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.As(err, &pathErr):
		return "cannot be read: " + pathErr.Err.Error()
	case err != nil:
		return "cannot be read: " + err.Error()
	case fi.IsDir():
		return "is a directory"
	case fi.Mode()&0o111 == 0:
		return "is not executable"
	}
	return ""
}

// output is what a plugin that exited 0 wrote: stdout, and sizes.
type output struct {
	data                     []byte
	stdoutBytes, stderrBytes int64
	elapsed                  time.Duration
}

var (
	errTimeout        = errors.New("plugin timeout")
	errOutputTooLarge = errors.New("plugin output too large")
)

// exec runs the plugin with stdin, killing its process group on timeout,
// cancellation or too much output.
func (r *Runner) exec(ctx context.Context, path string, p Plugin, stdin []byte) (output, *Error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runCtx, stop := context.WithTimeoutCause(runCtx, r.timeout, errTimeout)
	defer stop()

	stdout := &boundedWriter{limit: r.maxStdout, keep: true, overflow: func() { cancel(errOutputTooLarge) }}
	stderr := &boundedWriter{limit: r.maxStderr, overflow: func() { cancel(errOutputTooLarge) }}
	cmd := exec.CommandContext(runCtx, path, p.Args...)
	// The inherited environment (Environ), then the configured env, which
	// wins because exec keeps the last value of a repeated name.
	cmd.Env = slices.Clone(r.environ())
	for _, e := range p.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	isolate(cmd)

	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)
	_ = killGroup(cmd) // children a plugin left behind

	outBytes, errBytes := stdout.total(), stderr.total()
	fail := func(reason Reason, cause error, format string, args ...any) *Error {
		return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...), ExitCode: -1, Elapsed: elapsed,
			StdoutBytes: outBytes, StderrBytes: errBytes, cause: cause}
	}
	var exitErr *exec.ExitError
	switch {
	case stdout.overflowed():
		return output{}, fail(ReasonOutputTooLarge, nil, "wrote more than %d bytes to stdout; its process group was killed", r.maxStdout)
	case stderr.overflowed():
		return output{}, fail(ReasonOutputTooLarge, nil, "wrote more than %d bytes to stderr; its process group was killed", r.maxStderr)
	case runErr == nil, errors.Is(runErr, exec.ErrWaitDelay):
		// ErrWaitDelay: it exited 0 but a child held its output open; the child is killed.
	case errors.Is(context.Cause(runCtx), errTimeout):
		return output{}, fail(ReasonTimeout, context.DeadlineExceeded, "ran past the %s timeout; its process group was killed", r.timeout)
	case ctx.Err() != nil:
		return output{}, fail(ReasonCanceled, ctx.Err(), "canceled (%v); its process group was killed", ctx.Err())
	case errors.As(runErr, &exitErr):
		if sig := signalOf(exitErr.ProcessState); sig != "" {
			return output{}, fail(ReasonSignaled, nil, "was killed by signal %s", sig)
		}
		e := fail(ReasonExited, nil, "exited with status %d", exitErr.ExitCode())
		e.ExitCode = exitErr.ExitCode()
		return output{}, e
	default:
		// Start errors name the path and the errno, nothing the plugin wrote.
		return output{}, fail(ReasonStartFailed, runErr, "could not be started: %v", runErr)
	}
	return output{data: stdout.bytes(), stdoutBytes: outBytes, stderrBytes: errBytes, elapsed: elapsed}, nil
}

// boundedWriter keeps (or only counts) up to limit bytes and calls
// overflow once when more arrive. It never fails a write, so that the
// plugin is killed rather than blocked.
type boundedWriter struct {
	mu       sync.Mutex
	limit    int64
	keep     bool
	buf      bytes.Buffer
	n        int64
	fired    bool
	overflow func()
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.limit - w.n; w.keep && room > 0 {
		w.buf.Write(p[:min(room, int64(len(p)))])
	}
	w.n += int64(len(p))
	if w.n > w.limit && !w.fired {
		w.fired = true
		w.overflow()
	}
	return len(p), nil
}

func (w *boundedWriter) total() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *boundedWriter) overflowed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

func (w *boundedWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}
