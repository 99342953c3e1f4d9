package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
	"github.com/pullsecrets/pullsecrets/internal/testing/credplugintest"
	"github.com/pullsecrets/pullsecrets/internal/testing/fakeecr"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
)

// fastSchedule is the refresh schedule scaled down to seconds, so that a
// test sees several token lifetimes.
var fastSchedule = credprovider.Schedule{
	RefreshFrom: 0.5, RefreshTo: 0.7, Margin: time.Second, MinInterval: time.Second,
	RetryBase: 500 * time.Millisecond, RetryMax: 2 * time.Second, RetryMin: 200 * time.Millisecond,
}

// pluginDir makes a bin directory holding the real ecr-credential-provider
// (built from the module proxy), the tests' fake plugin, and the fake under
// each of aliases: the kubelet's configuration names a plugin by its file
// name, so one fake configured several ways needs several names.
func pluginDir(t *testing.T, aliases ...string) string {
	t.Helper()
	dir := t.TempDir()
	real := filepath.Join(credplugintest.RealBinDir(t), credplugintest.ECRName)
	if err := os.Symlink(real, filepath.Join(dir, credplugintest.ECRName)); err != nil {
		t.Fatal(err)
	}
	if err := credplugintest.BuildFake(dir); err != nil {
		t.Fatal(err)
	}
	for _, alias := range aliases {
		if err := os.Symlink(credplugintest.FakeName, filepath.Join(dir, alias)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// provider is one provider of the admin's CredentialProviderConfig, with
// the defaults the tests share.
func provider(name string, matchImages []string, mutate ...func(*kubeletconfigv1.CredentialProvider)) kubeletconfigv1.CredentialProvider {
	p := kubeletconfigv1.CredentialProvider{
		Name: name, MatchImages: matchImages, APIVersion: credprovider.APIVersionV1,
		DefaultCacheDuration: &metav1.Duration{Duration: time.Hour},
	}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func withEnv(env ...string) func(*kubeletconfigv1.CredentialProvider) {
	return func(p *kubeletconfigv1.CredentialProvider) {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			p.Env = append(p.Env, kubeletconfigv1.ExecEnvVar{Name: k, Value: v})
		}
	}
}

func withArgs(args ...string) func(*kubeletconfigv1.CredentialProvider) {
	return func(p *kubeletconfigv1.CredentialProvider) { p.Args = append(p.Args, args...) }
}

// writeProviderConfig writes the admin's CredentialProviderConfig to path.
func writeProviderConfig(t *testing.T, path string, providers ...kubeletconfigv1.CredentialProvider) {
	t.Helper()
	cfg := kubeletconfigv1.CredentialProviderConfig{Providers: providers}
	cfg.APIVersion, cfg.Kind = kubeletconfigv1.SchemeGroupVersion.String(), "CredentialProviderConfig"
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Written aside and renamed, as the kubelet updates a mounted ConfigMap.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// withPlugins runs the controller with the plugins of dir, configured by
// the CredentialProviderConfig at config.
func withPlugins(dir, config string) controllerOption {
	return func(o *manager.Options) {
		o.Controller.CredentialProviderBinDir = dir
		o.Controller.CredentialProviderConfig = config
		o.Controller.ProviderSchedule = fastSchedule
		o.Controller.PluginTimeout = 5 * time.Second
	}
}

// providerSetup writes a configuration of providers and returns the
// controller option that uses it, and the file's path.
func providerSetup(t *testing.T, dir string, providers ...kubeletconfigv1.CredentialProvider) (controllerOption, string) {
	t.Helper()
	config := filepath.Join(t.TempDir(), "credential-providers.yaml")
	writeProviderConfig(t, config, providers...)
	return withPlugins(dir, config), config
}

// ecrRegistry is the in-process distribution registry behind a gate that
// accepts only a current ECR token (as ECR does), reachable under the ECR
// host name through Transport.
type ecrRegistry struct {
	host      string
	image     string
	transport http.RoundTripper
}

func startECRRegistry(t *testing.T, ecr *fakeecr.Server, host string) *ecrRegistry {
	t.Helper()
	reg := registrytest.Start(t, registrytest.Options{})
	reg.Push(t, "team/app", "1.0")
	upstream, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "AWS" || !ecr.Valid(pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="ecr"`)
			http.Error(w, "not a current token", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gate, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &ecrRegistry{host: host, image: host + "/team/app:1.0", transport: tr}
}

// pulls reports whether a pull secret's data lets the kubelet's choice of
// credentials pull the image from the registry.
func (r *ecrRegistry) pulls(ctx context.Context, data []byte) (bool, string) {
	k := credentials.NewKeyring([]credentials.Secret{{Name: "copy", Type: credentials.TypeDockerConfigJSON,
		Data: map[string][]byte{credentials.KeyDockerConfigJSON: data}}})
	m, err := k.Lookup(r.image)
	if err != nil || len(m.Credentials) == 0 {
		return false, "no credential for the image"
	}
	var creds []registrycheck.Credential
	for _, c := range m.Credentials {
		creds = append(creds, registrycheck.Credential{Label: c.Registry, Username: c.Username, Password: c.Password})
	}
	res := registrycheck.Check(ctx, r.image, creds, registrycheck.Options{
		Timeout: 5 * time.Second, InsecureRegistries: []string{r.host}, Transport: r.transport,
	})
	return res.OK(), string(res.Status)
}

// providerCPS makes a ClusterPullSecret asking provider for image; its
// copies are named "ecr".
func (e *env) providerCPS(name, provider, image string, mutate ...func(*v1alpha1.CredentialProviderSource)) {
	e.t.Helper()
	p := &v1alpha1.CredentialProviderSource{Name: provider, Image: image}
	for _, m := range mutate {
		m(p)
	}
	e.cps(name, "", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.Source = v1alpha1.SourceReference{Provider: p}
		c.Spec.SecretName = "ecr"
	})
}

func (e *env) credential(name string) *v1alpha1.CredentialStatus {
	return e.status(name).Credential
}

func condition(e *env, name, typ string) func() *metav1.Condition {
	return func() *metav1.Condition {
		var obj v1alpha1.ClusterPullSecret
		if err := e.client.Get(context.Background(), types.NamespacedName{Name: name}, &obj); err != nil {
			return &metav1.Condition{Reason: "error: " + err.Error()}
		}
		return meta.FindStatusCondition(obj.Status.Conditions, typ)
	}
}

// Issue 14's acceptance test: the real ecr-credential-provider, a fake ECR
// endpoint minting 8-second tokens, and a registry accepting only current
// tokens. Over several token lifetimes every copy keeps pulling, a Pod made
// at any moment pulls, a plugin failure keeps the last good copy, and no
// password is ever logged.
func TestProviderSourceKeepsEveryNamespacePulling(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	dir := pluginDir(t)
	const lifetime = 8 * time.Second
	ecr := fakeecr.Start(t, fakeecr.Options{Lifetime: lifetime})
	host := ecr.Host("us-west-2")
	reg := startECRRegistry(t, ecr, host)
	namespaces := []string{e.namespace(), e.namespace()}
	// The admin's configuration, as for the kubelet: the plugin, the
	// images it serves, and the environment that points it at the ECR
	// stand-in.
	opt, _ := providerSetup(t, dir, provider(credplugintest.ECRName, []string{"*.dkr.ecr.*.amazonaws.com"}, withEnv(ecr.Env(t)...)))
	e.startController(opt)
	name := e.uniqueName("ecr")
	e.providerCPS(name, credplugintest.ECRName, host)

	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	eventually(g, condition(e, name, v1alpha1.ConditionCredentialRefreshed)).Should(HaveField("Reason", v1alpha1.ReasonRefreshed))
	cs := e.credential(name)
	g.Expect(cs.ExpiresAt).NotTo(BeNil())
	g.Expect(cs.NextRefreshAt.Time).To(BeTemporally("<", cs.ExpiresAt.Time), "refreshed before it expires")
	t.Logf("first credential: obtained %s, expires %s, next refresh %s", cs.ObtainedAt.Format(time.TimeOnly),
		cs.ExpiresAt.Format(time.TimeOnly), cs.NextRefreshAt.Format(time.TimeOnly))

	// Three token lifetimes: at random moments, every copy pulls, and so
	// does a Pod created then (admission gives it the copy's name).
	ctx := e.ctx()
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(3 * lifetime)
	checks := 0
	for time.Now().Before(deadline) {
		for _, ns := range namespaces {
			copy := e.secret(ns, "ecr")()
			g.Expect(copy).NotTo(BeNil())
			ok, why := reg.pulls(ctx, copy.Data[corev1.DockerConfigJsonKey])
			g.Expect(ok).To(BeTrue(), "copy in %s at %s: %s", ns, time.Now().Format(time.TimeOnly), why)
			checks++
		}
		pod := e.pod(namespaces[rng.IntN(len(namespaces))], fmt.Sprintf("pod-%d", checks), host+"/team/app:1.0")
		g.Expect(e.client.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, pod)).To(Succeed())
		g.Expect(pod.Spec.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "ecr"}}))
		ok, why := reg.pulls(ctx, e.secret(pod.Namespace, "ecr")().Data[corev1.DockerConfigJsonKey])
		g.Expect(ok).To(BeTrue(), "Pod %s: %s", pod.Name, why)
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
	}
	refreshes := len(ecr.Calls())
	t.Logf("%d checks over %s; the plugin ran %d times", checks, 3*lifetime, refreshes)
	g.Expect(refreshes).To(BeNumerically(">=", 4), "refreshed before every expiry")

	// The endpoint fails: the copies keep the last good token, the status
	// says so, and the plugin is retried with backoff until it recovers.
	ecr.FailNext(1000, http.StatusInternalServerError, "ServerException", "ecr is down")
	eventually(g, condition(e, name, v1alpha1.ConditionCredentialRefreshed)).Should(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonRefreshFailed)))
	// A run that began before the outage may have ended after it began:
	// the copy is taken once a failure is reported, and kept through the
	// next ones.
	before := e.secret(namespaces[0], "ecr")()
	failures := e.credential(name).Failures
	eventually(g, func() int32 { return e.credential(name).Failures }).Should(BeNumerically(">", failures))
	g.Expect(e.secret(namespaces[0], "ecr")().ResourceVersion).To(Equal(before.ResourceVersion), "a failure never replaces a working copy")
	eventually(g, e.readyCondition(name)).Should(HaveField("Reason", v1alpha1.ReasonCredentialExpired))
	g.Expect(e.secret(namespaces[0], "ecr")()).NotTo(BeNil(), "an expired copy is kept: it may still work, and removing it helps no one")
	eventually(g, func() int32 { return e.credential(name).Failures }).Should(BeNumerically(">=", 2), "retried with backoff")
	g.Expect(e.credential(name).LastError).NotTo(BeEmpty())
	ecr.Recover()
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	for _, ns := range namespaces {
		ok, why := reg.pulls(ctx, e.secret(ns, "ecr")().Data[corev1.DockerConfigJsonKey])
		g.Expect(ok).To(BeTrue(), "after recovery, %s: %s", ns, why)
	}

	logs := controllerLogs.String()
	for _, tok := range ecr.Tokens() {
		g.Expect(strings.Contains(logs, tok.Password)).To(BeFalse(), "a token is in the logs")
	}
	statusJSON, _ := json.Marshal(e.status(name))
	for _, tok := range ecr.Tokens() {
		g.Expect(strings.Contains(string(statusJSON), tok.Password)).To(BeFalse(), "a token is in the status")
	}
}

// A plugin that hangs, crashes, prints garbage or prints a password with
// its failure is reported by reason, keeps what is in place, and is never
// logged.
func TestProviderFailuresAreContained(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	modes := []string{"hang", "exit", "garbage", "fail-with-password", "empty"}
	var aliases []string
	for _, mode := range modes {
		aliases = append(aliases, "fake-"+mode)
	}
	dir := pluginDir(t, aliases...)
	ns := e.namespace()
	const secret = "Pa55-leaked-by-the-plugin"
	// The secret reaches the plugin through the admin's configuration, a
	// file: it is in no object the tests or the controller log.
	var providers []kubeletconfigv1.CredentialProvider
	for _, mode := range modes {
		providers = append(providers, provider("fake-"+mode, []string{"registry.example.com"},
			withArgs("-mode", mode, "-secret-env", "FAKE_PLUGIN_SECRET"), withEnv("FAKE_PLUGIN_SECRET="+secret)))
	}
	opt, _ := providerSetup(t, dir, providers...)
	e.startController(opt)
	for _, tt := range []struct {
		mode   string
		reason string
	}{
		{"hang", string(credprovider.ReasonTimeout)},
		{"exit", string(credprovider.ReasonExited)},
		{"garbage", string(credprovider.ReasonBadResponse)},
		{"fail-with-password", string(credprovider.ReasonExited)},
		{"empty", string(credprovider.ReasonNoCredentials)},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			g := NewWithT(t)
			name := e.uniqueName(tt.mode)
			e.cps(name, "", func(c *v1alpha1.ClusterPullSecret) {
				c.Spec.Source = v1alpha1.SourceReference{Provider: &v1alpha1.CredentialProviderSource{Name: "fake-" + tt.mode, Image: "registry.example.com"}}
			})
			eventually(g, condition(e, name, v1alpha1.ConditionCredentialRefreshed)).Should(And(
				HaveField("Status", metav1.ConditionFalse), HaveField("Message", ContainSubstring(tt.reason))))
			g.Expect(e.readyCondition(name)()).To(HaveField("Reason", v1alpha1.ReasonSourceNotFound))
			g.Expect(e.secret(ns, name)()).To(BeNil(), "nothing is copied from a failed answer")
			g.Expect(controllerLogs.String()).NotTo(ContainSubstring(secret))
			statusJSON, _ := json.Marshal(e.status(name))
			g.Expect(string(statusJSON)).NotTo(ContainSubstring(secret))
		})
	}
	_ = g
}
