package credprovider_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
	"github.com/pullsecrets/pullsecrets/internal/testing/credplugintest"
	"github.com/pullsecrets/pullsecrets/internal/testing/fakeecr"
)

// ecrSetup builds the real ecr-credential-provider and points it at a
// fake ECR endpoint through AWS_ENDPOINT_URL_ECR.
func ecrSetup(t *testing.T, o fakeecr.Options) (*credprovider.Runner, credprovider.Plugin, *fakeecr.Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: builds and runs the real ecr-credential-provider")
	}
	dir := credplugintest.RealBinDir(t)
	ecr := fakeecr.Start(t, o)
	r, err := credprovider.NewRunner(credprovider.Options{BinDir: dir, Environ: func() []string {
		// Nothing of the developer's AWS setup: only what Env gives.
		return []string{"PATH=" + os.Getenv("PATH")}
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := credprovider.Plugin{Name: credplugintest.ECRName, APIVersion: credprovider.APIVersionV1, DefaultCacheDuration: 12 * time.Hour}
	for _, kv := range ecr.Env(t) {
		name, value, _ := strings.Cut(kv, "=")
		p.Env = append(p.Env, credprovider.EnvVar{Name: name, Value: value})
	}
	return r, p, ecr
}

func TestRealECRPlugin(t *testing.T) {
	r, p, ecr := ecrSetup(t, fakeecr.Options{})
	host := ecr.Host("us-west-2")
	image := host + "/team/app:1.0"

	res, err := r.Run(context.Background(), p, credprovider.Request{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	current := ecr.Current()
	a, ok := res.Auth[host]
	if !ok || len(res.Auth) != 1 || a.Username != "AWS" || a.Password != current.Password || !ecr.Valid(a.Password) {
		t.Fatalf("auth %v for registries %q, want AWS and the endpoint's current password under %s", a, res.Registries(), host)
	}
	// The plugin reports half of the token's remaining 12 hours.
	if res.CacheDurationSource != credprovider.CacheDurationPlugin || res.CacheDuration < 6*time.Hour-5*time.Second || res.CacheDuration > 6*time.Hour {
		t.Errorf("cacheDuration %s (%s), want about 6h from the plugin", res.CacheDuration, res.CacheDurationSource)
	}
	if res.CacheKeyType != credprovider.CacheKeyRegistry {
		t.Errorf("cacheKeyType %s, want Registry", res.CacheKeyType)
	}
	calls := ecr.Calls()
	if len(calls) != 1 || calls[0].Region != "us-west-2" || calls[0].Service != "ecr" || calls[0].AccessKeyID != fakeecr.AccessKeyID {
		t.Errorf("calls %+v, want one signed for ecr in us-west-2 (the image's region) with the fake key", calls)
	}

	k := credentials.NewKeyring([]credentials.Secret{{Name: "ecr", Type: credentials.TypeDockerConfigJSON,
		Data: map[string][]byte{credentials.KeyDockerConfigJSON: res.DockerConfigJSON}}})
	m, err := k.Lookup(image)
	if err != nil || len(m.Credentials) != 1 || m.Credentials[0].Password != current.Password {
		t.Fatalf("the built Secret gives the kubelet %v (%v, %v), want the current token", m.Credentials, err, m.Miss)
	}

	// Each run mints a new token, as ECR does; older ones stay valid until they expire.
	again, err := r.Run(context.Background(), p, credprovider.Request{Image: ecr.Host("eu-central-1") + "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Auth[ecr.Host("eu-central-1")].Password; got == a.Password || got != ecr.Current().Password || len(ecr.ValidPasswords()) != 2 {
		t.Errorf("second run: a new current password expected, %d valid", len(ecr.ValidPasswords()))
	}
	if last := ecr.Calls()[1]; last.Region != "eu-central-1" {
		t.Errorf("second call signed for %q, want eu-central-1", last.Region)
	}
}

func TestRealECRPluginShortLivedToken(t *testing.T) {
	r, p, ecr := ecrSetup(t, fakeecr.Options{Lifetime: 10 * time.Minute})
	res, err := r.Run(context.Background(), p, credprovider.Request{Image: ecr.Host("us-east-1") + "/app"})
	if err != nil {
		t.Fatal(err)
	}
	if res.CacheDuration < 5*time.Minute-5*time.Second || res.CacheDuration > 5*time.Minute {
		t.Errorf("cacheDuration %s, want about 5m, half of the token's 10m", res.CacheDuration)
	}
	at := credprovider.DefaultSchedule().RefreshAt(res.Obtained, res.Expires, 0.5)
	if got := at.Sub(res.Obtained); got < 2*time.Minute || got > 3*time.Minute {
		t.Errorf("refresh %s after obtaining, want within 2m30s..3m", got)
	}
}

func TestRealECRPluginRetriesAServerError(t *testing.T) {
	r, p, ecr := ecrSetup(t, fakeecr.Options{})
	ecr.FailNext(1, 500, "ServerException", "try again")
	res, err := r.Run(context.Background(), p, credprovider.Request{Image: ecr.Host("us-west-2") + "/app"})
	if err != nil {
		t.Fatalf("Run: %v, want the SDK's retry to succeed", err)
	}
	if calls := ecr.Calls(); len(calls) != 2 || calls[0].Status != 500 || calls[1].Status != 200 {
		t.Errorf("calls %+v, want a 500 then a 200", calls)
	}
	if !ecr.Valid(res.Auth[ecr.Host("us-west-2")].Password) {
		t.Error("the password is not one the endpoint minted")
	}
}

func TestRealECRPluginFailureLeaksNothing(t *testing.T) {
	r, p, ecr := ecrSetup(t, fakeecr.Options{})
	const marker = "leaked-SECRET-from-aws-error"
	ecr.FailNext(1, 400, "AccessDeniedException", "User is not authorized: "+marker)
	_, err := r.Run(context.Background(), p, credprovider.Request{Image: ecr.Host("us-west-2") + "/app"})
	var e *credprovider.Error
	if !errors.As(err, &e) || e.Reason != credprovider.ReasonExited || e.ExitCode != 1 {
		t.Fatalf("Run: %v, want the plugin's exit status 1", err)
	}
	if e.StderrBytes == 0 {
		t.Error("StderrBytes = 0, want the plugin's error log counted")
	}
	if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("the error quotes the plugin's output: %v", err)
	}
}

func TestRealECRPluginNotAnECRImage(t *testing.T) {
	// No region in the host: the plugin's SDK client has none, sends an
	// unsigned request that the endpoint refuses, and the plugin fails.
	r, p, ecr := ecrSetup(t, fakeecr.Options{})
	_, err := r.Run(context.Background(), p, credprovider.Request{Image: "registry.example.com/app"})
	var e *credprovider.Error
	if !errors.As(err, &e) || e.Reason != credprovider.ReasonExited {
		t.Fatalf("Run: %v, want the plugin to fail", err)
	}
	for _, c := range ecr.Calls() {
		if c.Region != "" || c.Status != 403 {
			t.Errorf("call %+v, want only unsigned ones, refused", c)
		}
	}
	if valid := ecr.ValidPasswords(); len(valid) != 0 {
		t.Errorf("%d tokens minted, want none", len(valid))
	}
}

func TestRealECRPluginVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: builds the real ecr-credential-provider")
	}
	dir := credplugintest.RealBinDir(t)
	out, err := exec.Command(filepath.Join(dir, credplugintest.ECRName), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "ecr-credential-provider version v1.37.1" {
		t.Errorf("--version = %q, want the pinned v1.37.1", got)
	}
	help, err := exec.Command(filepath.Join(dir, credplugintest.ECRName), "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "ECR credential provider for kubelet") {
		t.Errorf("--help: %v\n%s", err, help)
	}
}
