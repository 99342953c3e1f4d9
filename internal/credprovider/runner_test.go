package credprovider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
	"github.com/pullsecrets/pullsecrets/internal/testing/credplugintest"
)

var fake struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fake.dir != "" {
		_ = os.RemoveAll(fake.dir)
	}
	os.Exit(code)
}

// fakeBinDir builds the fake plugin once per test binary.
func fakeBinDir(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake plugin and process groups are unix only")
	}
	fake.once.Do(func() {
		fake.dir, fake.err = os.MkdirTemp("", "credprovider-fake-")
		if fake.err == nil {
			fake.err = credplugintest.BuildFake(fake.dir)
		}
	})
	if fake.err != nil {
		t.Fatal(fake.err)
	}
	return fake.dir
}

// newRunner runs the fake plugin with a clean environment.
func newRunner(t *testing.T, o credprovider.Options) *credprovider.Runner {
	t.Helper()
	o.BinDir = fakeBinDir(t)
	if o.Environ == nil {
		o.Environ = func() []string { return nil }
	}
	r, err := credprovider.NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fakePlugin(args ...string) credprovider.Plugin {
	return credprovider.Plugin{Name: credplugintest.FakeName, APIVersion: credprovider.APIVersionV1, Args: args}
}

const image = "registry.example.com/team/app:1.0"

func TestRunGood(t *testing.T) {
	r := newRunner(t, credprovider.Options{})
	state := filepath.Join(t.TempDir(), "calls")
	p := fakePlugin("-cache-duration=1h", "-username=robot", "-state="+state)

	before := time.Now()
	first, err := r.Run(context.Background(), p, credprovider.Request{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if first.CacheDuration != time.Hour || first.CacheDurationSource != credprovider.CacheDurationPlugin {
		t.Errorf("cacheDuration %s (%s), want 1h0m0s (Plugin)", first.CacheDuration, first.CacheDurationSource)
	}
	if first.Obtained.Before(before) || first.Obtained.After(time.Now()) || !first.Expires.Equal(first.Obtained.Add(time.Hour)) {
		t.Errorf("obtained %s, expires %s: want obtained during the run and expiry an hour later", first.Obtained, first.Expires)
	}
	if first.CacheKeyType != credprovider.CacheKeyRegistry || first.Plugin != credplugintest.FakeName || first.Image != image {
		t.Errorf("result %v: want plugin, image and cacheKeyType Registry", first)
	}
	if first.StderrBytes == 0 {
		t.Error("StderrBytes = 0, want the plugin's log line counted")
	}
	a := first.Auth["registry.example.com"]
	if a.Username != "robot" || !strings.HasPrefix(a.Password, "pw-1-") {
		t.Errorf("auth %v (password prefix %q), want robot and pw-1-...", first.Auth, prefix(a.Password))
	}

	// The kubelet, reading the built Secret, sends exactly these credentials.
	k := credentials.NewKeyring([]credentials.Secret{{Namespace: "ns", Name: "copy", Type: credentials.TypeDockerConfigJSON,
		Data: map[string][]byte{credentials.KeyDockerConfigJSON: first.DockerConfigJSON}}})
	m, err := k.Lookup(image)
	if err != nil || k.Err() != nil || len(m.Credentials) != 1 {
		t.Fatalf("lookup in the built Secret: %v %v %v", err, k.Err(), m.Miss)
	}
	if c := m.Credentials[0]; c.Username != "robot" || c.Password != a.Password {
		t.Errorf("the kubelet would send %v, want the plugin's credentials", c)
	}

	second, err := r.Run(context.Background(), p, credprovider.Request{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Auth["registry.example.com"].Password; !strings.HasPrefix(got, "pw-2-") || got == a.Password {
		t.Errorf("second call: password prefix %q, want a new pw-2-... password", prefix(got))
	}
}

func TestRunCacheDuration(t *testing.T) {
	r := newRunner(t, credprovider.Options{})
	for _, tc := range []struct {
		name            string
		answered        string // empty: no cacheDuration in the response
		def, minimum    time.Duration
		want            time.Duration
		wantSource      credprovider.CacheDurationSource
		wantExpiresSame bool
	}{
		{"plugin's", "6h", 10 * time.Minute, 0, 6 * time.Hour, credprovider.CacheDurationPlugin, false},
		{"default when absent", "", 10 * time.Minute, 0, 10 * time.Minute, credprovider.CacheDurationDefault, false},
		{"explicit 0 is not replaced by the default", "0s", 10 * time.Minute, 0, 0, credprovider.CacheDurationPlugin, true},
		{"absent and no default", "", 0, 0, 0, credprovider.CacheDurationDefault, true},
		{"negative counts as 0", "-5m", time.Hour, 0, 0, credprovider.CacheDurationPlugin, true},
		{"minimum raises", "5m", 0, 2 * time.Hour, 2 * time.Hour, credprovider.CacheDurationMinimum, false},
		{"minimum below leaves it", "6h", 0, time.Hour, 6 * time.Hour, credprovider.CacheDurationPlugin, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fakePlugin("-cache-duration=" + tc.answered)
			p.DefaultCacheDuration, p.MinCacheDuration = tc.def, tc.minimum
			res, err := r.Run(context.Background(), p, credprovider.Request{Image: image})
			if err != nil {
				t.Fatal(err)
			}
			if res.CacheDuration != tc.want || res.CacheDurationSource != tc.wantSource {
				t.Errorf("cacheDuration %s (%s), want %s (%s)", res.CacheDuration, res.CacheDurationSource, tc.want, tc.wantSource)
			}
			if res.Expires.Equal(res.Obtained) != tc.wantExpiresSame {
				t.Errorf("expires %s after obtained", res.Expires.Sub(res.Obtained))
			}
		})
	}
}

func TestRunRequestEncoding(t *testing.T) {
	r := newRunner(t, credprovider.Options{})
	for _, tc := range []struct {
		apiVersion string
		req        credprovider.Request
		want       string
	}{
		{credprovider.APIVersionV1, credprovider.Request{Image: image},
			`{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"registry.example.com/team/app:1.0"}`},
		{credprovider.APIVersionV1, credprovider.Request{Image: image, ServiceAccountToken: "sa-token", ServiceAccountAnnotations: map[string]string{"eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::1:role/r"}},
			`{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"registry.example.com/team/app:1.0","serviceAccountToken":"sa-token","serviceAccountAnnotations":{"eks.amazonaws.com/ecr-role-arn":"arn:aws:iam::1:role/r"}}`},
		{"credentialprovider.kubelet.k8s.io/v1beta1", credprovider.Request{Image: image},
			`{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"registry.example.com/team/app:1.0"}`},
	} {
		t.Run(tc.apiVersion, func(t *testing.T) {
			dump := filepath.Join(t.TempDir(), "request.json")
			p := fakePlugin("-dump=" + dump)
			p.APIVersion = tc.apiVersion
			if _, err := r.Run(context.Background(), p, tc.req); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dump)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(got)) != tc.want {
				t.Errorf("request\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestRunEnvironment(t *testing.T) {
	r := newRunner(t, credprovider.Options{Environ: func() []string {
		return []string{"FROM_RUNNER=runner-value", "OVERRIDDEN=runner"}
	}})
	for _, tc := range []struct{ variable, want string }{
		{"FROM_RUNNER", "runner-value"}, // the runner's own environment is passed on
		{"OVERRIDDEN", "config"},        // the configured env wins
		{"ONLY_CONFIG", "only"},
	} {
		p := fakePlugin("-username-from-env=" + tc.variable)
		p.Env = []credprovider.EnvVar{{Name: "OVERRIDDEN", Value: "config"}, {Name: "ONLY_CONFIG", Value: "only"}}
		res, err := r.Run(context.Background(), p, credprovider.Request{Image: image})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Auth["registry.example.com"].Username; got != tc.want {
			t.Errorf("%s = %q in the plugin, want %q", tc.variable, got, tc.want)
		}
	}
}

// By default a plugin gets only the inherited variables the runner names
// and its configured env: nothing else of the controller's environment.
func TestRunInheritsOnlyTheNamedVariables(t *testing.T) {
	t.Setenv("PULLSECRETS_TEST_CONTROLLER_ONLY", "not-for-plugins")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pull")
	r := newRunner(t, credprovider.Options{Environ: credprovider.Inherit(credprovider.DefaultInheritedEnv)})
	p := fakePlugin("-mode=env-names")
	p.Env = []credprovider.EnvVar{{Name: "CONFIGURED", Value: "by-the-admin"}}
	res, err := r.Run(context.Background(), p, credprovider.Request{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(res.Auth["registry.example.com"].Username, ",")
	for _, want := range []string{"CONFIGURED", "AWS_ROLE_ARN", "PATH"} {
		if !slices.Contains(names, want) {
			t.Errorf("the plugin lacks %s; it got %v", want, names)
		}
	}
	for _, name := range names {
		if name != "CONFIGURED" && !slices.Contains(credprovider.DefaultInheritedEnv, name) {
			t.Errorf("the plugin got %s, neither configured nor inherited by name", name)
		}
	}
}

func TestRunFailures(t *testing.T) {
	const secret = "hunter2-SECRET-bytes"
	const token = "eyJhbGciOiJSUzI1NiJ9.sa-token-SECRET"
	for _, tc := range []struct {
		name       string
		args       []string
		apiVersion string
		opts       credprovider.Options
		reason     credprovider.Reason
		detail     string
		exitCode   int
	}{
		{"non-zero exit", []string{"-mode=exit", "-exit-code=3"}, "", credprovider.Options{}, credprovider.ReasonExited, "exited with status 3", 3},
		{"killed by a signal", []string{"-mode=signal"}, "", credprovider.Options{}, credprovider.ReasonSignaled, "was killed by signal SIGKILL", -1},
		{"hang", []string{"-mode=hang"}, "", credprovider.Options{Timeout: 300 * time.Millisecond}, credprovider.ReasonTimeout, "ran past the 300ms timeout", -1},
		{"password in an error", []string{"-mode=fail-with-password"}, "", credprovider.Options{}, credprovider.ReasonExited, "exited with status 1", 1},
		{"garbage", []string{"-mode=garbage"}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "not JSON to stdout (syntax error at byte 1)", -1},
		{"wrong kind", []string{"-mode=wrong-kind"}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "a kind other than CredentialProviderResponse", -1},
		{"unknown field", []string{"-mode=unknown-field"}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "unknown or duplicate fields", -1},
		{"wrong field type", []string{"-mode=wrong-type"}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "does not decode", -1},
		{"apiVersion of its own", []string{"-mode=secret-api-version"}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "no credential provider version", -1},
		{"apiVersion other than configured", []string{"-api-version=credentialprovider.kubelet.k8s.io/v1beta1"}, "", credprovider.Options{}, credprovider.ReasonBadResponse,
			"answered in credentialprovider.kubelet.k8s.io/v1beta1, want credentialprovider.kubelet.k8s.io/v1", -1},
		{"no cacheKeyType", []string{"-mode=no-cache-key-type"}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "without a cacheKeyType", -1},
		{"bad cacheKeyType", []string{"-cache-key-type=" + secret}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "other than Image, Registry or Global", -1},
		{"oversized stdout", []string{"-mode=oversized-stdout"}, "", credprovider.Options{}, credprovider.ReasonOutputTooLarge, "more than 1048576 bytes to stdout", -1},
		{"oversized stderr", []string{"-mode=oversized-stderr"}, "", credprovider.Options{}, credprovider.ReasonOutputTooLarge, "more than 65536 bytes to stderr", -1},
		{"empty auth", []string{"-mode=empty"}, "", credprovider.Options{}, credprovider.ReasonNoCredentials, "plugin returned no credentials", -1},
		{"anonymous only", []string{"-mode=anonymous"}, "", credprovider.Options{}, credprovider.ReasonNoCredentials, "no credentials the kubelet could use from a pull secret (EmptyEntry)", -1},
		{"token echoed as password", []string{"-mode=echo-token"}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "returned the service account token as a password", -1},
		{"username with a colon", []string{"-username=a:" + secret}, "", credprovider.Options{}, credprovider.ReasonBadResponse, "username containing ':'", -1},
		{"v1beta1 gets no token", []string{}, "credentialprovider.kubelet.k8s.io/v1beta1", credprovider.Options{}, credprovider.ReasonInvalidPlugin, "need apiVersion credentialprovider.kubelet.k8s.io/v1", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRunner(t, tc.opts)
			p := fakePlugin(append([]string{"-secret=" + secret, "-password-prefix=" + secret}, tc.args...)...)
			if tc.apiVersion != "" {
				p.APIVersion = tc.apiVersion
			}
			start := time.Now()
			res, err := r.Run(context.Background(), p, credprovider.Request{Image: image, ServiceAccountToken: token})
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("Run = %v, want an error", res)
			}
			if elapsed > 10*time.Second {
				t.Errorf("Run took %s, want it bounded", elapsed)
			}
			var e *credprovider.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *credprovider.Error", err, err)
			}
			if e.Reason != tc.reason || e.ExitCode != tc.exitCode {
				t.Errorf("reason %s exit %d, want %s exit %d: %v", e.Reason, e.ExitCode, tc.reason, tc.exitCode, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.detail) || !strings.Contains(msg, `credential provider plugin "fake-credential-provider" (image "`+image+`")`) {
				t.Errorf("error %q, want it to name the plugin and image and say %q", msg, tc.detail)
			}
			for _, form := range []string{msg, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				for _, leak := range []string{secret, "SECRET", token, "hunter2", "pw-"} {
					if strings.Contains(form, leak) {
						t.Errorf("the error leaks %q: %s", leak, form)
					}
				}
			}
		})
	}
}

func TestRunTimeoutKillsTheProcessGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	r := newRunner(t, credprovider.Options{Timeout: 500 * time.Millisecond})
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	start := time.Now()
	_, err := r.Run(context.Background(), fakePlugin("-mode=hang-with-child", "-child-pid-file="+pidFile), credprovider.Request{Image: image})
	var e *credprovider.Error
	if !errors.As(err, &e) || e.Reason != credprovider.ReasonTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v, want a timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Run took %s after a 500ms timeout", elapsed)
	}
	waitGone(t, readPID(t, pidFile))
}

func TestRunKillsChildrenLeftBehind(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	r := newRunner(t, credprovider.Options{})
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	start := time.Now()
	res, err := r.Run(context.Background(), fakePlugin("-mode=orphan", "-child-pid-file="+pidFile), credprovider.Request{Image: image})
	if err != nil {
		t.Fatalf("Run: %v, want the answer of a plugin that exited 0", err)
	}
	if len(res.Auth) != 1 {
		t.Errorf("auth %v, want one registry", res.Auth)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Run took %s with a child holding stdout", elapsed)
	}
	waitGone(t, readPID(t, pidFile))
}

func TestRunCanceled(t *testing.T) {
	r := newRunner(t, credprovider.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := r.Run(ctx, fakePlugin("-mode=hang"), credprovider.Request{Image: image})
	var e *credprovider.Error
	if !errors.As(err, &e) || e.Reason != credprovider.ReasonCanceled || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v, want Canceled by the caller's deadline", err)
	}
}

func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "not-executable"), []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "a-directory"), 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := credprovider.NewRunner(credprovider.Options{BinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	v1 := credprovider.APIVersionV1
	for _, tc := range []struct {
		name   string
		plugin credprovider.Plugin
		req    credprovider.Request
		reason credprovider.Reason
		detail string
	}{
		{"empty name", credprovider.Plugin{APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "the name is empty"},
		{"parent", credprovider.Plugin{Name: "..", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "'..'"},
		{"dot", credprovider.Plugin{Name: ".", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "'.'"},
		{"traversal", credprovider.Plugin{Name: "../bin/sh", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "'..'"},
		{"absolute", credprovider.Plugin{Name: "/bin/sh", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "path separator"},
		{"backslash", credprovider.Plugin{Name: `a\b`, APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "path separator"},
		{"space", credprovider.Plugin{Name: "a b", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "spaces"},
		{"no apiVersion", credprovider.Plugin{Name: "x"}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "apiVersion is required"},
		{"unknown apiVersion", credprovider.Plugin{Name: "x", APIVersion: "v1"}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, `apiVersion "v1" is not one of`},
		{"negative default", credprovider.Plugin{Name: "x", APIVersion: v1, DefaultCacheDuration: -1}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "defaultCacheDuration"},
		{"bad env name", credprovider.Plugin{Name: "x", APIVersion: v1, Env: []credprovider.EnvVar{{Name: "A=B", Value: "secret-value"}}}, credprovider.Request{Image: image}, credprovider.ReasonInvalidPlugin, "env[0]"},
		{"no image", credprovider.Plugin{Name: "x", APIVersion: v1}, credprovider.Request{}, credprovider.ReasonInvalidPlugin, "names no image"},
		{"missing", credprovider.Plugin{Name: "missing", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonPluginNotFound, "missing does not exist"},
		{"not executable", credprovider.Plugin{Name: "not-executable", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonPluginNotFound, "is not executable"},
		{"directory", credprovider.Plugin{Name: "a-directory", APIVersion: v1}, credprovider.Request{Image: image}, credprovider.ReasonPluginNotFound, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Run(context.Background(), tc.plugin, tc.req)
			var e *credprovider.Error
			if !errors.As(err, &e) || e.Reason != tc.reason || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("Run: %v, want %s saying %q", err, tc.reason, tc.detail)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Errorf("the error leaks an env value: %v", err)
			}
		})
	}
	if _, err := credprovider.NewRunner(credprovider.Options{}); err == nil {
		t.Error("NewRunner without a bin directory: no error")
	}
}

func TestRunGlobKeyMatchesECRImages(t *testing.T) {
	r := newRunner(t, credprovider.Options{})
	res, err := r.Run(context.Background(), fakePlugin("-registry=*.dkr.ecr.*.amazonaws.com", "-username=AWS", "-cache-duration=6h"),
		credprovider.Request{Image: "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app"})
	if err != nil {
		t.Fatal(err)
	}
	k := credentials.NewKeyring([]credentials.Secret{{Name: "ecr", Type: credentials.TypeDockerConfigJSON,
		Data: map[string][]byte{credentials.KeyDockerConfigJSON: res.DockerConfigJSON}}})
	for image, want := range map[string]bool{
		"123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app:1":                             true,
		"210987654321.dkr.ecr.eu-central-1.amazonaws.com/x@sha256:" + strings.Repeat("a", 64): true,
		"123456789012.dkr.ecr.us-west-2.amazonaws.com.cn/app":                                 false, // one label more
		"public.ecr.aws/team/app": false,
	} {
		m, err := k.Lookup(image)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(m.Credentials) == 1 && m.Credentials[0].Username == "AWS"; got != want {
			t.Errorf("%s: matched %v, want %v (miss: %v)", image, got, want, m.Miss)
		}
	}
}

func TestNothingLeaks(t *testing.T) {
	r := newRunner(t, credprovider.Options{})
	const token = "sa-token-SECRET"
	req := credprovider.Request{Image: image, ServiceAccountToken: token}
	res, err := r.Run(context.Background(), fakePlugin("-cache-duration=1h", "-password-prefix=SECRETPW"), req)
	if err != nil {
		t.Fatal(err)
	}
	password := res.Auth["registry.example.com"].Password
	var forms []string
	for _, v := range []any{res, *res, res.Auth, res.Auth["registry.example.com"], req} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			forms = append(forms, fmt.Sprintf(verb, v))
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		forms = append(forms, string(j))
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("x", "v", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("x", "v", v)
		forms = append(forms, text.String(), js.String())
	}
	for _, f := range forms {
		for _, leak := range []string{password, "SECRETPW", token, "SECRET", string(res.DockerConfigJSON)} {
			if strings.Contains(f, leak) {
				t.Errorf("%q leaks %q", f, leak)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(res), "registry.example.com") {
		t.Errorf("%v: want the registries described", res)
	}
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits until pid is gone or a zombie (an orphan's new parent
// may be slow to reap it).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(data, ')'); i > 0 && i+2 < len(data) && (data[i+2] == 'Z' || data[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's child %d is still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func prefix(s string) string {
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		return s[:i] + "-..."
	}
	return "..."
}
