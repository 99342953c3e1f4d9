package controller_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
)

// The scenarios of the plugin-configuration issue: plugins are the cluster
// admin's, as the kubelet's are; a ClusterPullSecret author names one and
// an image, and steers nothing else.

// calls counts the runs of a fake plugin given -state path.
func calls(path string) func() int {
	return func() int {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		return len(b)
	}
}

// copyUser is the username of the copy's credential for host.
func (e *env) copyUser(ns, name, host string) func() string {
	return func() string {
		s := e.secret(ns, name)()
		if s == nil {
			return ""
		}
		k := credentials.NewKeyring([]credentials.Secret{{Name: name, Type: string(s.Type), Data: s.Data}})
		m, err := k.Lookup(host + "/x")
		if err != nil || len(m.Credentials) == 0 {
			return ""
		}
		return m.Credentials[0].Username
	}
}

func (e *env) conditionOf(name, typ string) func() string {
	return func() string {
		c := condition(e, name, typ)()
		if c == nil {
			return "none"
		}
		return c.Reason + ": " + c.Message
	}
}

// A ClusterPullSecret cannot set a plugin's env, args, token audience,
// cache duration or protocol version: the API refuses them with a message
// that says where they moved, and one stored before (as an older CRD let
// it in) is refused by the controller, which runs nothing for it.
func TestProviderSourceCannotSteerThePlugin(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	for field, value := range map[string]any{
		"env":                         []any{map[string]any{"name": "AWS_ENDPOINT_URL_STS", "value": "https://attacker.example.com"}},
		"args":                        []any{"--endpoint=https://attacker.example.com"},
		"serviceAccountTokenAudience": "https://kubernetes.default.svc",
		"defaultCacheDuration":        "12h",
		"apiVersion":                  credprovider.APIVersionV1,
	} {
		u := e.providerUnstructured(e.uniqueName("steer"), "fake", map[string]any{field: value})
		err := e.client.Create(e.ctx(), u, client.DryRunAll)
		g.Expect(err).To(HaveOccurred(), field)
		g.Expect(err.Error()).To(ContainSubstring(field+" moved to the cluster admin's CredentialProviderConfig"), field)
	}

	dir := pluginDir(t, "fake")
	state := filepath.Join(t.TempDir(), "calls")
	opt, _ := providerSetup(t, dir, provider("fake", []string{"registry.example.com"}, withArgs("-state", state)))
	name := e.uniqueName("stored")
	e.storeUnderLaxSchema(e.providerUnstructured(name, "fake", map[string]any{
		"env": []any{map[string]any{"name": "AWS_ENDPOINT_URL_STS", "value": "https://attacker.example.com"}},
	}), func() *unstructured.Unstructured {
		return e.providerUnstructured(e.uniqueName("probe"), "fake", map[string]any{"env": []any{map[string]any{"name": "A", "value": "b"}}})
	}, "spec", "source", "provider")
	e.cpsList = append(e.cpsList, name)
	e.startController(opt)
	eventually(g, func() string {
		c := e.readyCondition(name)()
		return c.Reason + ": " + c.Message
	}).Should(And(HavePrefix(v1alpha1.ReasonInvalidSpec+": "), ContainSubstring("spec.source.provider.env moved to the cluster admin's CredentialProviderConfig")))
	// A good one next to it runs, so the plugin could have run.
	good := e.uniqueName("good")
	e.providerCPS(good, "fake", "registry.example.com")
	eventually(g, e.readyCondition(good)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(calls(state)()).To(Equal(1), "the plugin ran only for the good source")
}

func (e *env) providerUnstructured(name, provider string, extra map[string]any) *unstructured.Unstructured {
	p := map[string]any{"name": provider, "image": "registry.example.com"}
	for k, v := range extra {
		p[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "ClusterPullSecret",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"source": map[string]any{"provider": p}, "secretName": "ecr"},
	}}
}

// The image must be one the provider's matchImages cover, matched as the
// kubelet matches them; a provider the admin did not configure is refused
// by name. The configuration is read again when it changes, and a broken
// one is reported while the last good one keeps serving.
func TestProviderImageAndNameAreCheckedAgainstTheAdminsConfig(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	dir := pluginDir(t, "fake")
	state := filepath.Join(t.TempDir(), "calls")
	fake := provider("fake", []string{"*.registry.example.com"}, withArgs("-state", state))
	opt, config := providerSetup(t, dir, fake)
	ns := e.namespace()
	e.startController(opt)

	outside := e.uniqueName("outside")
	e.providerCPS(outside, "fake", "evil.example.com/team/app:1")
	unknown := e.uniqueName("unknown")
	e.providerCPS(unknown, "ecr-credential-provider", "a.registry.example.com")
	deeper := e.uniqueName("deeper")
	e.providerCPS(deeper, "fake", "a.b.registry.example.com")
	eventually(g, e.conditionOf(outside, v1alpha1.ConditionReady)).Should(And(HavePrefix(v1alpha1.ReasonImageNotAllowed+": "),
		ContainSubstring(`image "evil.example.com/team/app:1" is not one provider "fake" may be asked for: its matchImages are *.registry.example.com`)))
	eventually(g, e.conditionOf(outside, v1alpha1.ConditionCredentialRefreshed)).Should(HavePrefix(v1alpha1.ReasonImageNotAllowed + ": "))
	eventually(g, e.conditionOf(unknown, v1alpha1.ConditionReady)).Should(And(HavePrefix(v1alpha1.ReasonProviderNotConfigured+": "),
		ContainSubstring(`provider "ecr-credential-provider" is not in the controller's CredentialProviderConfig (configured: fake)`)))
	// A glob matches one label, as the kubelet's.
	eventually(g, e.conditionOf(deeper, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonImageNotAllowed + ": "))
	consistently(g, calls(state)).Should(BeZero(), "the plugin is never asked for an image outside its matchImages")
	g.Expect(e.secret(ns, "ecr")()).To(BeNil())

	// The admin widens matchImages: read again, served.
	fake.MatchImages = append(fake.MatchImages, "evil.example.com")
	writeProviderConfig(t, config, fake)
	eventually(g, e.readyCondition(outside)).Should(HaveField("Status", metav1.ConditionTrue))
	eventually(g, e.copyUser(ns, "ecr", "evil.example.com")).Should(Equal("fake"))

	// A broken file: reported, and the last good configuration kept.
	g.Expect(os.WriteFile(config, []byte("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: [{name: fake}]\n"), 0o600)).To(Succeed())
	eventually(g, e.conditionOf(outside, v1alpha1.ConditionCredentialRefreshed)).Should(ContainSubstring("the controller's CredentialProviderConfig no longer loads"))
	g.Expect(e.readyCondition(outside)()).To(HaveField("Status", metav1.ConditionTrue), "the last good configuration still serves")
	g.Expect(controllerLogs.String()).To(ContainSubstring("the credential provider configuration no longer loads; the last good one is kept"))
}

// A plugin gets the environment of its configuration and the few variables
// of the controller's own that it needs to run, nothing else of it.
func TestPluginSeesOnlyTheAdminsEnvironment(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	t.Setenv("PULLSECRETS_TEST_CONTROLLER_SECRET", "not-for-plugins")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pull")
	dir := pluginDir(t, "fake")
	opt, _ := providerSetup(t, dir, provider("fake", []string{"registry.example.com"}, withArgs("-mode", "env-names"), withEnv("CONFIGURED_BY_ADMIN=yes")))
	ns := e.namespace()
	e.startController(opt)
	name := e.uniqueName("env")
	e.providerCPS(name, "fake", "registry.example.com")
	eventually(g, e.copyUser(ns, "ecr", "registry.example.com")).ShouldNot(BeEmpty())
	names := strings.Split(e.copyUser(ns, "ecr", "registry.example.com")(), ",")
	t.Logf("the plugin's environment: %v", names)
	g.Expect(names).To(ContainElements("CONFIGURED_BY_ADMIN", "AWS_ROLE_ARN", "PATH"))
	g.Expect(names).NotTo(ContainElement("PULLSECRETS_TEST_CONTROLLER_SECRET"))
	for _, n := range names {
		g.Expect(n == "CONFIGURED_BY_ADMIN" || slices.Contains(credprovider.DefaultInheritedEnv, n)).To(BeTrue(), "the plugin got %s", n)
	}
}

// The credential the controller keeps for a provider source is tied to its
// ClusterPullSecret's UID: a Secret of that name put there before, or left
// by another ClusterPullSecret of the same name, is never copied; and no
// Secret-source ClusterPullSecret may name one (nor the ownership key).
func TestSquattedProviderCredentialIsNeverCopied(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	dir := pluginDir(t, "fake")
	opt, _ := providerSetup(t, dir, provider("fake", []string{"registry.example.com"}, withArgs("-username", "from-the-plugin")))
	ns := e.namespace()
	name := e.uniqueName("squatted")
	squat := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.srcNS, Name: v1alpha1.ProviderSecretPrefix + name, Labels: map[string]string{
			"app.kubernetes.io/name": "pullsecrets", "app.kubernetes.io/component": "provider-credential", v1alpha1.ProviderForLabel: name,
		}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(t, "registry.example.com", "squatter", "squatters-password")},
	}
	g.Expect(e.client.Create(e.ctx(), squat)).To(Succeed())
	// A second squat, for the Secret-source path.
	other := squat.DeepCopy()
	other.ResourceVersion = ""
	other.Name, other.Labels[v1alpha1.ProviderForLabel] = v1alpha1.ProviderSecretPrefix+"someone-else", "someone-else"
	g.Expect(e.client.Create(e.ctx(), other)).To(Succeed())

	// The copies are watched while the source comes up: none may ever hold
	// the squatter's credential.
	stop := make(chan struct{})
	sawSquatter := make(chan string, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if u := e.copyUser(ns, "ecr", "registry.example.com")(); u == "squatter" {
				sawSquatter <- u
				return
			}
		}
	}()
	e.startController(opt)
	e.providerCPS(name, "fake", "registry.example.com")
	eventually(g, e.copyUser(ns, "ecr", "registry.example.com")).Should(Equal("from-the-plugin"))
	close(stop)
	g.Expect(sawSquatter).NotTo(Receive(), "a copy held the squatter's credential")
	var taken corev1.Secret
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: e.srcNS, Name: squat.Name}, &taken)).To(Succeed())
	var cps v1alpha1.ClusterPullSecret
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &cps)).To(Succeed())
	g.Expect(taken.OwnerReferences).To(ContainElement(HaveField("UID", cps.UID)), "the refresher took the Secret over for its owner")

	// Secret sources may not name what the controller keeps for itself.
	for i, tt := range []struct{ secret, want string }{
		{other.Name, "named as the credentials the controller keeps for provider sources"},
		{v1alpha1.OwnershipKeySecretName, "the controller's ownership key"},
	} {
		secret, want := tt.secret, tt.want
		if secret == v1alpha1.OwnershipKeySecretName {
			if _, err := ownership.LoadOrCreateKey(e.ctx(), e.client, e.client, e.srcNS); err != nil {
				t.Fatal(err)
			}
		}
		thief := e.uniqueName(fmt.Sprintf("thief%d", i))
		e.cps(thief, secret, func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "stolen" })
		eventually(g, e.conditionOf(thief, v1alpha1.ConditionReady)).Should(And(HavePrefix(v1alpha1.ReasonSourceInvalid+": "), ContainSubstring(want)))
	}
	g.Expect(e.secret(ns, "stolen")()).To(BeNil())
}

// With tokenAttributes in the admin's configuration, the plugin gets a
// token of the controller's own ServiceAccount, for the configured audience
// only, and the annotations the provider asks for, as the kubelet gives a
// Pod's.
func TestProviderTokenHasTheAdminsAudience(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	const audience = "sts.registry.example.com"
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: e.srcNS, Name: "pullsecrets-controller", Annotations: map[string]string{
		"eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/pull", "unrelated.example.com/key": "not passed",
	}}}
	g.Expect(e.client.Create(e.ctx(), sa)).To(Succeed())
	dir := pluginDir(t, "fake-token")
	dump := filepath.Join(t.TempDir(), "request.json")
	opt, _ := providerSetup(t, dir, provider("fake-token", []string{"registry.example.com"}, withArgs("-dump", dump),
		func(p *kubeletconfigv1.CredentialProvider) {
			p.TokenAttributes = &kubeletconfigv1.ServiceAccountTokenAttributes{
				ServiceAccountTokenAudience: audience, CacheType: kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType,
				RequireServiceAccount: ptr.To(true), RequiredServiceAccountAnnotationKeys: []string{"eks.amazonaws.com/ecr-role-arn"},
			}
		}))
	ns := e.namespace()
	e.startController(opt)
	name := e.uniqueName("token")
	e.providerCPS(name, "fake-token", "registry.example.com")
	eventually(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))

	g.Expect(e.copyUser(ns, "ecr", "registry.example.com")()).To(Equal("fake"))
	// What the plugin was asked, as it received it.
	var req struct {
		ServiceAccountToken       string            `json:"serviceAccountToken"`
		ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations"`
	}
	raw, err := os.ReadFile(dump)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Unmarshal(raw, &req)).To(Succeed())
	token := req.ServiceAccountToken
	g.Expect(token).NotTo(BeEmpty())
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}}}
	g.Expect(e.client.Create(e.ctx(), review)).To(Succeed())
	g.Expect(review.Status.Authenticated).To(BeTrue(), review.Status.Error)
	g.Expect(review.Status.User.Username).To(Equal("system:serviceaccount:" + e.srcNS + ":pullsecrets-controller"))
	g.Expect(review.Status.Audiences).To(Equal([]string{audience}))

	g.Expect(req.ServiceAccountAnnotations).To(Equal(map[string]string{"eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/pull"}))
	g.Expect(controllerLogs.String()).NotTo(ContainSubstring(token))
}

// A plugin that hangs holds one run slot until its timeout; every other
// source keeps its schedule meanwhile.
func TestHungPluginDelaysNoOtherSource(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	dir := pluginDir(t, "fake-hang", "fake-quick")
	state := filepath.Join(t.TempDir(), "quick-calls")
	opt, _ := providerSetup(t, dir,
		provider("fake-hang", []string{"hang.example.com"}, withArgs("-mode", "hang")),
		provider("fake-quick", []string{"quick.example.com"}, withArgs("-state", state, "-cache-duration", "3s")))
	ns := e.namespace()
	e.startController(opt, func(o *manager.Options) { o.Controller.PluginTimeout = 30 * time.Second })
	hang := e.uniqueName("hang")
	e.cps(hang, "", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.Source = v1alpha1.SourceReference{Provider: &v1alpha1.CredentialProviderSource{Name: "fake-hang", Image: "hang.example.com"}}
		c.Spec.SecretName = "hang"
	})
	quick := e.uniqueName("quick")
	e.providerCPS(quick, "fake-quick", "quick.example.com")
	eventually(g, e.copyUser(ns, "ecr", "quick.example.com")).Should(Equal("fake"))
	start := calls(state)()
	time.Sleep(10 * time.Second)
	// A 3-second credential is refreshed at 50-70% of its life: 3 or more
	// runs in 10 s, all while the other plugin hangs (its timeout is 30 s).
	g.Expect(calls(state)()-start).To(BeNumerically(">=", 3), "the quick source kept its schedule while the other plugin hung")
	g.Expect(e.secret(ns, "hang")()).To(BeNil())
}

// The refresher's failures, backoff and last error are kept in the
// cluster: after a restart (a failover is the same) the status keeps them
// and the plugin is not retried at once.
func TestRefreshFailuresSurviveARestart(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	dir := pluginDir(t, "fake-exit")
	state := filepath.Join(t.TempDir(), "calls")
	opt, _ := providerSetup(t, dir, provider("fake-exit", []string{"registry.example.com"}, withArgs("-mode", "exit", "-state", state)))
	slow := func(o *manager.Options) {
		o.Controller.ProviderSchedule.RetryBase, o.Controller.ProviderSchedule.RetryMax = 4*time.Second, 8*time.Second
	}
	first := e.startController(opt, slow)
	name := e.uniqueName("failing")
	e.providerCPS(name, "fake-exit", "registry.example.com")
	failures := func() int32 {
		if c := e.credential(name); c != nil {
			return c.Failures
		}
		return 0
	}
	eventually(g, failures).Should(BeNumerically(">=", 2))
	first.stop()
	before := e.credential(name)
	runs := calls(state)()
	g.Expect(before.LastError).NotTo(BeEmpty())
	e.startController(opt, slow)
	// Sampled right after the restart: never blanked, never reset.
	consistently(g, func() *v1alpha1.CredentialStatus { return e.credential(name) }).Should(And(
		HaveField("Failures", BeNumerically(">=", before.Failures)), HaveField("LastError", Not(BeEmpty()))))
	if time.Now().Before(before.NextRefreshAt.Add(-time.Second)) {
		g.Expect(calls(state)()).To(Equal(runs), "the plugin was retried at once after the restart")
	}
	eventually(g, failures).Should(BeNumerically(">", before.Failures), "and retried at its time")
}
