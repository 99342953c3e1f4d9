package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
)

// maxConcurrentPlugins bounds the plugins running at once, so that one
// that hangs (until its timeout) delays no other source.
const maxConcurrentPlugins = 4

// tokenLifetime is the life of a ServiceAccount token handed to a plugin:
// it is used at once and never stored.
const tokenLifetime = 10 * time.Minute

// refresher keeps the credential of every provider source fresh. It runs
// each ClusterPullSecret's plugin on the schedule of package credprovider
// and stores a usable answer in a Secret of the controller's namespace
// (ProviderSecretPrefix + name), the source the copies are made from: a
// new token reaches the copies through the ordinary rotation path. A
// failed, empty or unusable answer never touches that Secret. The
// schedule is kept on the Secret, so a restart changes nothing.
type refresher struct {
	runner    *credprovider.Runner
	schedule  credprovider.Schedule
	client    client.Client
	reader    client.Reader // the source cache
	clientset kubernetes.Interface
	namespace string
	account   string // the controller's ServiceAccount, for tokens
	cps       *cpsCache
	notify    func(cps string)
	metrics   *Metrics
	kick      chan struct{}
	runnerErr error
	running   sync.Map // CPS name -> struct{}: one run per source
	mu        sync.Mutex
	rand      *rand.Rand
	state     map[string]refreshState
}

// refreshState is what the refresher knows of one source beyond its
// Secret: failures since the last success.
type refreshState struct {
	failures  int
	lastError string
	next      time.Time
	spec      string
}

func newRefresher(o Options, c client.Client, reader client.Reader, cs kubernetes.Interface, cps *cpsCache, notify func(string), m *Metrics) *refresher {
	r := &refresher{
		schedule: o.ProviderSchedule, client: c, reader: reader, clientset: cs, namespace: o.KeyNamespace,
		account: o.ServiceAccountName, cps: cps, notify: notify, metrics: m, kick: make(chan struct{}, 1),
		state: map[string]refreshState{},
		rand:  rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x70756c6c)),
	}
	r.runner, r.runnerErr = credprovider.NewRunner(credprovider.Options{BinDir: o.CredentialProviderBinDir, Timeout: o.PluginTimeout})
	return r
}

// NeedLeaderElection: only the leader runs plugins and writes.
func (r *refresher) NeedLeaderElection() bool { return true }

func (r *refresher) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start refreshes what is due until ctx ends.
func (r *refresher) Start(ctx context.Context) error { return loopUntilDone(ctx, r.kick, r.runDue) }

// providerSecretName is the Secret holding a ClusterPullSecret's plugin
// credential.
func providerSecretName(cps string) string { return v1alpha1.ProviderSecretPrefix + cps }

// specHash identifies what a credential was asked with.
func specHash(p *v1alpha1.CredentialProviderSource) string {
	raw, _ := json.Marshal(p) // plain strings and durations always marshal
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// runDue starts the runs that are due and returns how long until the next.
func (r *refresher) runDue(ctx context.Context) time.Duration {
	next := time.Hour
	all, err := r.cps.list(ctx)
	if err != nil {
		return time.Second
	}
	sem := make(chan struct{}, maxConcurrentPlugins)
	var wg sync.WaitGroup
	live := map[string]bool{}
	for _, d := range all {
		if d.obj == nil || d.plan.Invalid != "" || d.plan.Deleting || d.obj.Spec.Source.Provider == nil {
			continue
		}
		cps := d.obj
		live[cps.Name] = true
		due := r.dueAt(ctx, cps)
		if wait := time.Until(due); wait > 0 {
			next = min(next, wait)
			continue
		}
		if _, busy := r.running.LoadOrStore(cps.Name, struct{}{}); busy {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem; r.running.Delete(cps.Name) }()
			r.refresh(ctx, cps)
		}()
	}
	wg.Wait()
	r.mu.Lock()
	for name := range r.state {
		if !live[name] {
			delete(r.state, name)
		}
	}
	for _, st := range r.state {
		next = min(next, max(time.Until(st.next), 0))
	}
	r.mu.Unlock()
	return max(next, 100*time.Millisecond)
}

// dueAt is when a source's plugin runs next: now for a new or changed
// spec, else what this process scheduled, else what the Secret says.
func (r *refresher) dueAt(ctx context.Context, cps *v1alpha1.ClusterPullSecret) time.Time {
	spec := specHash(cps.Spec.Source.Provider)
	r.mu.Lock()
	st, ok := r.state[cps.Name]
	r.mu.Unlock()
	if ok && st.spec == spec {
		return st.next
	}
	var s corev1.Secret
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: providerSecretName(cps.Name)}, &s); err != nil {
		return time.Time{}
	}
	if s.Annotations[v1alpha1.ProviderSpecAnnotation] != spec {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339, s.Annotations[v1alpha1.NextRefreshAnnotation])
	if err != nil {
		return time.Time{}
	}
	return at
}

func (r *refresher) jitter() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rand.Float64()
}

// refresh runs one source's plugin and stores a usable answer.
func (r *refresher) refresh(ctx context.Context, cps *v1alpha1.ClusterPullSecret) {
	logger := log.FromContext(ctx).WithValues("clusterPullSecret", cps.Name)
	p := cps.Spec.Source.Provider
	spec := specHash(p)
	res, err := r.run(ctx, p)
	var current corev1.Secret
	getErr := r.reader.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: providerSecretName(cps.Name)}, &current)
	expires := time.Time{}
	if getErr == nil {
		expires, _ = time.Parse(time.RFC3339, current.Annotations[v1alpha1.ExpiresAtAnnotation])
	}
	var next time.Time
	if err == nil {
		next = r.schedule.RefreshAt(res.Obtained, res.Expires, r.jitter())
		err = r.store(ctx, cps, spec, res, next, &current, getErr)
	}
	r.mu.Lock()
	st := r.state[cps.Name]
	st.spec = spec
	if err != nil {
		st.failures++
		st.lastError = refreshReason(err) + ": " + err.Error()
		st.next = r.schedule.RetryAt(time.Now(), st.failures, expires, r.rand.Float64())
		r.mu.Unlock()
		r.metrics.credentialRefresh(cps.Name, refreshReason(err))
		logger.Info("credential provider plugin failed; the credential in place is kept", "plugin", p.Name, "failures", st.failures,
			"reason", refreshReason(err), "retryAt", st.next.UTC().Format(time.RFC3339))
	} else {
		st.failures, st.lastError, st.next = 0, "", next
		r.mu.Unlock()
		r.metrics.credentialRefresh(cps.Name, "ok")
		r.metrics.credentialExpiry(cps.Name, res.Expires)
		logger.V(1).Info("credential refreshed", "plugin", p.Name, "expires", res.Expires.UTC().Format(time.RFC3339))
	}
	r.mu.Lock()
	r.state[cps.Name] = st
	r.mu.Unlock()
	r.notify(cps.Name)
}

func refreshReason(err error) string {
	var pe *credprovider.Error
	if errors.As(err, &pe) {
		return string(pe.Reason)
	}
	return "WriteFailed"
}

// run asks the plugin, with a token of the controller's ServiceAccount when
// the source wants one.
func (r *refresher) run(ctx context.Context, p *v1alpha1.CredentialProviderSource) (*credprovider.Result, error) {
	if r.runnerErr != nil {
		return nil, r.runnerErr
	}
	plugin := credprovider.Plugin{Name: p.Name, APIVersion: p.APIVersion, Args: p.Args}
	if plugin.APIVersion == "" {
		plugin.APIVersion = credprovider.APIVersionV1
	}
	for _, e := range p.Env {
		plugin.Env = append(plugin.Env, credprovider.EnvVar{Name: e.Name, Value: e.Value})
	}
	if p.DefaultCacheDuration != nil {
		plugin.DefaultCacheDuration = p.DefaultCacheDuration.Duration
	}
	if p.MinCacheDuration != nil {
		plugin.MinCacheDuration = p.MinCacheDuration.Duration
	}
	req := credprovider.Request{Image: p.Image}
	if p.ServiceAccountTokenAudience != "" {
		tr, err := r.clientset.CoreV1().ServiceAccounts(r.namespace).CreateToken(ctx, r.account, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{p.ServiceAccountTokenAudience}, ExpirationSeconds: ptr.To(int64(tokenLifetime.Seconds()))},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("request a token of ServiceAccount %s/%s for audience %q: %w", r.namespace, r.account, p.ServiceAccountTokenAudience, err)
		}
		req.ServiceAccountToken = tr.Status.Token
	}
	return r.runner.Run(ctx, plugin, req)
}

// store writes the plugin's answer into the provider Secret, creating it
// or updating it with optimistic concurrency; an unchanged credential only
// moves the schedule.
func (r *refresher) store(ctx context.Context, cps *v1alpha1.ClusterPullSecret, spec string, res *credprovider.Result, next time.Time,
	current *corev1.Secret, getErr error) error {
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.namespace, Name: providerSecretName(cps.Name),
			Labels: map[string]string{
				"app.kubernetes.io/name": "pullsecrets", "app.kubernetes.io/component": "provider-credential", v1alpha1.ProviderForLabel: cps.Name,
			},
			Annotations: map[string]string{
				v1alpha1.ObtainedAtAnnotation:   res.Obtained.UTC().Format(time.RFC3339),
				v1alpha1.ExpiresAtAnnotation:    res.Expires.UTC().Format(time.RFC3339),
				v1alpha1.NextRefreshAnnotation:  next.UTC().Format(time.RFC3339),
				v1alpha1.ProviderSpecAnnotation: spec,
			},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: res.DockerConfigJSON},
	}
	switch {
	case apierrors.IsNotFound(getErr):
		if err := r.client.Create(ctx, want); err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	case getErr != nil:
		return fmt.Errorf("read Secret %s/%s: %w", want.Namespace, want.Name, getErr)
	}
	updated := current.DeepCopy()
	updated.Labels, updated.Annotations, updated.Type, updated.Data = want.Labels, want.Annotations, want.Type, want.Data
	if err := r.client.Patch(ctx, updated, client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// status returns what status.credential says of a provider source.
func (r *refresher) status(ctx context.Context, cps *v1alpha1.ClusterPullSecret) *v1alpha1.CredentialStatus {
	out := &v1alpha1.CredentialStatus{}
	var s corev1.Secret
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: providerSecretName(cps.Name)}, &s); err == nil {
		out.ObtainedAt = timeAnnotation(s.Annotations[v1alpha1.ObtainedAtAnnotation])
		out.ExpiresAt = timeAnnotation(s.Annotations[v1alpha1.ExpiresAtAnnotation])
		out.NextRefreshAt = timeAnnotation(s.Annotations[v1alpha1.NextRefreshAnnotation])
	}
	r.mu.Lock()
	st, ok := r.state[cps.Name]
	r.mu.Unlock()
	if ok && st.failures > 0 {
		out.Failures, out.LastError = int32(st.failures), st.lastError
		t := metav1.NewTime(st.next.Truncate(time.Second))
		out.NextRefreshAt = &t
	}
	return out
}

func timeAnnotation(v string) *metav1.Time {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// forget drops a source and deletes its Secret (its ClusterPullSecret is
// gone or no longer uses a plugin).
func (r *refresher) forget(ctx context.Context, cps string) error {
	r.mu.Lock()
	delete(r.state, cps)
	r.mu.Unlock()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.namespace, Name: providerSecretName(cps)}}
	if err := r.client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// pendingNote says why a provider source has no credential: its last
// failure, if any.
func (r *refresher) pendingNote(cps string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state[cps].lastError
}

// dropIfUnused deletes the Secret of a ClusterPullSecret that no longer
// uses a plugin.
func (r *refresher) dropIfUnused(ctx context.Context, cps string) {
	var s corev1.Secret
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: providerSecretName(cps)}, &s); err != nil {
		return
	}
	if err := r.forget(ctx, cps); err != nil {
		log.FromContext(ctx).Error(err, "delete the credential of a former provider source", "clusterPullSecret", cps)
	}
}
