package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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

// maxConcurrentPlugins bounds the plugins running at once. A plugin that
// hangs holds one slot until its timeout; the loop itself never waits for
// a run, so the other sources keep their schedule.
const maxConcurrentPlugins = 4

// tokenLifetime is the life of a ServiceAccount token handed to a plugin:
// it is used at once and never stored. 10 minutes is the least the API
// server grants; the admission policy on the controller's token requests
// refuses more than an hour.
const tokenLifetime = 10 * time.Minute

// refresher keeps the credential of every provider source fresh. It runs
// each ClusterPullSecret's plugin, as the cluster admin configured it, on
// the schedule of package credprovider and stores a usable answer in a
// Secret of the controller's namespace (ProviderSecretPrefix + name, owned
// by the ClusterPullSecret's UID), the source the copies are made from: a
// new token reaches the copies through the ordinary rotation path. A
// failed, empty or unusable answer never touches that Secret. The schedule
// is kept on the Secret and the failures in the ClusterPullSecret's
// status, so a restart or a failover changes nothing.
type refresher struct {
	runner    *credprovider.Runner
	runnerErr error
	schedule  credprovider.Schedule
	config    *providerConfig
	client    client.Client
	reader    client.Reader // the source cache
	apiReader client.Reader // uncached, when the cache cannot answer
	clientset kubernetes.Interface
	namespace string
	account   string // the controller's ServiceAccount, for tokens
	cps       *cpsCache
	notify    func(cps string)
	metrics   *Metrics
	kick      chan struct{}
	slots     chan struct{}

	mu      sync.Mutex
	rand    *rand.Rand
	running map[string]bool
	state   map[string]refreshState
}

// refreshState is what the refresher knows of one source beyond its
// Secret: failures since the last success.
type refreshState struct {
	failures  int
	lastError string
	next      time.Time
	spec      string
}

func newRefresher(o Options, config *providerConfig, c client.Client, reader, apiReader client.Reader, cs kubernetes.Interface,
	cps *cpsCache, notify func(string), m *Metrics) *refresher {
	r := &refresher{
		schedule: o.ProviderSchedule, config: config, client: c, reader: reader, apiReader: apiReader, clientset: cs,
		namespace: o.KeyNamespace, account: o.ServiceAccountName, cps: cps, notify: notify, metrics: m,
		kick: make(chan struct{}, 1), slots: make(chan struct{}, maxConcurrentPlugins),
		running: map[string]bool{}, state: map[string]refreshState{},
		rand: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x70756c6c)),
	}
	environ := credprovider.Inherit(o.PluginInheritedEnv)
	r.runner, r.runnerErr = credprovider.NewRunner(credprovider.Options{BinDir: o.CredentialProviderBinDir, Timeout: o.PluginTimeout, Environ: environ})
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

// ownedBy reports whether a provider Secret belongs to the
// ClusterPullSecret of that UID: a Secret of the right name left by a
// deleted ClusterPullSecret of the same name, or put there by anyone else,
// is never used.
func ownedBy(s *corev1.Secret, uid types.UID) bool {
	return slices.ContainsFunc(s.OwnerReferences, func(ref metav1.OwnerReference) bool {
		return ref.UID == uid && ref.Kind == cpsGVK.Kind && ref.APIVersion == cpsGVK.GroupVersion().String()
	})
}

// specHash identifies what a credential was asked with: the provider as
// the admin configured it, and the source's image and least cache
// duration. A change to either makes the plugin run at once.
func specHash(res resolvedProvider, src *v1alpha1.CredentialProviderSource) string {
	raw, _ := json.Marshal(struct { // plain strings and durations always marshal
		Provider any    `json:"p"`
		Image    string `json:"i"`
		Min      any    `json:"m"`
	}{res.provider, res.image, src.MinCacheDuration})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// runDue starts the runs that are due, deletes the credentials no
// ClusterPullSecret uses any more, and returns how long until the next
// run. It never waits for a run: each one wakes the loop when it ends.
func (r *refresher) runDue(ctx context.Context) time.Duration {
	next := time.Hour
	all, err := r.cps.list(ctx)
	if err != nil {
		log.FromContext(ctx).Error(err, "credential refresh: list ClusterPullSecrets; retrying")
		return time.Second
	}
	cfg, cfgErr := r.config.get()
	// Every provider source keeps its credential, even one whose spec is
	// invalid or unreadable for now: fixing it must not start from nothing.
	keep := map[string]types.UID{}
	for _, d := range all {
		if d.obj == nil || d.obj.Spec.Source.Provider != nil {
			keep[d.plan.Name] = types.UID(d.plan.UID)
		}
	}
	for _, d := range all {
		if d.obj == nil || d.plan.Invalid != "" || d.plan.Deleting || d.obj.Spec.Source.Provider == nil {
			continue
		}
		cps := d.obj
		res, reason, _ := resolveProvider(cfg, cfgErr, r.config.path, cps.Spec.Source.Provider)
		if reason != "" {
			continue // reported by the status; nothing to run
		}
		due, err := r.dueAt(ctx, cps, specHash(res, cps.Spec.Source.Provider))
		if err != nil {
			log.FromContext(ctx).Error(err, "credential refresh: read the schedule; retrying", "clusterPullSecret", cps.Name)
			next = min(next, time.Second)
			continue
		}
		if wait := time.Until(due); wait > 0 {
			next = min(next, wait)
			continue
		}
		r.start(ctx, cps, res)
	}
	r.mu.Lock()
	for name := range r.state {
		if _, ok := keep[name]; !ok {
			delete(r.state, name)
		}
	}
	for name, st := range r.state {
		if !r.running[name] {
			next = min(next, max(time.Until(st.next), 0))
		}
	}
	r.mu.Unlock()
	if err := r.dropUnused(ctx, keep); err != nil {
		log.FromContext(ctx).Error(err, "credential refresh: delete unused provider credentials; retrying")
		next = min(next, 5*time.Second)
	}
	return max(next, 100*time.Millisecond)
}

// start runs one source's plugin in the background, unless it runs already.
func (r *refresher) start(ctx context.Context, cps *v1alpha1.ClusterPullSecret, res resolvedProvider) {
	r.mu.Lock()
	if r.running[cps.Name] {
		r.mu.Unlock()
		return
	}
	r.running[cps.Name] = true
	r.mu.Unlock()
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.running, cps.Name)
			r.mu.Unlock()
			r.wake()
		}()
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.slots }()
		r.refresh(ctx, cps, res)
	}()
}

// dueAt is when a source's plugin runs next: now for a new or changed
// spec, else what this process scheduled, else what the cluster says (the
// Secret's schedule, or the retry time of a failure in the status).
func (r *refresher) dueAt(ctx context.Context, cps *v1alpha1.ClusterPullSecret, spec string) (time.Time, error) {
	r.mu.Lock()
	st, ok := r.state[cps.Name]
	r.mu.Unlock()
	if ok && st.spec == spec {
		return st.next, nil
	}
	// A failover or restart: failures are in the status the previous
	// leader wrote; keep their backoff rather than retry at once.
	if c := cps.Status.Credential; c != nil && c.Failures > 0 && c.NextRefreshAt != nil {
		r.mu.Lock()
		r.state[cps.Name] = refreshState{failures: int(c.Failures), lastError: c.LastError, next: c.NextRefreshAt.Time, spec: spec}
		r.mu.Unlock()
		return c.NextRefreshAt.Time, nil
	}
	s, err := r.current(ctx, cps.Name)
	switch {
	case apierrors.IsNotFound(err):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, err
	}
	if !ownedBy(s, cps.UID) || s.Annotations[v1alpha1.ProviderSpecAnnotation] != spec {
		return time.Time{}, nil
	}
	at, err := time.Parse(time.RFC3339, s.Annotations[v1alpha1.NextRefreshAnnotation])
	if err != nil {
		return time.Time{}, nil
	}
	return at, nil
}

// current reads a source's provider Secret from the cache, or from the API
// server when the cache cannot answer.
func (r *refresher) current(ctx context.Context, cps string) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: r.namespace, Name: providerSecretName(cps)}
	var s corev1.Secret
	err := r.reader.Get(ctx, key, &s)
	if err == nil || apierrors.IsNotFound(err) {
		return &s, err
	}
	if err := r.apiReader.Get(ctx, key, &s); err != nil {
		return nil, fmt.Errorf("read Secret %s: %w", key, err)
	}
	return &s, nil
}

func (r *refresher) jitter() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rand.Float64()
}

// refresh runs one source's plugin and stores a usable answer.
func (r *refresher) refresh(ctx context.Context, cps *v1alpha1.ClusterPullSecret, res resolvedProvider) {
	logger := log.FromContext(ctx).WithValues("clusterPullSecret", cps.Name, "plugin", res.provider.Name)
	spec := specHash(res, cps.Spec.Source.Provider)
	result, err := r.run(ctx, res, cps.Spec.Source.Provider)
	expires := time.Time{}
	var next time.Time
	if err == nil {
		next = r.schedule.RefreshAt(result.Obtained, result.Expires, r.jitter())
		err = r.store(ctx, cps, spec, result, next)
	}
	if err != nil {
		if s, getErr := r.current(ctx, cps.Name); getErr == nil && ownedBy(s, cps.UID) {
			expires, _ = time.Parse(time.RFC3339, s.Annotations[v1alpha1.ExpiresAtAnnotation])
		}
	}
	r.mu.Lock()
	st := r.state[cps.Name]
	st.spec = spec
	if err != nil {
		st.failures++
		st.lastError = refreshReason(err) + ": " + err.Error()
		st.next = r.schedule.RetryAt(time.Now(), st.failures, expires, r.rand.Float64())
		r.state[cps.Name] = st
		r.mu.Unlock()
		r.metrics.credentialRefresh(cps.Name, refreshReason(err))
		logger.Info("credential provider plugin failed; the credential in place is kept", "failures", st.failures,
			"reason", refreshReason(err), "retryAt", st.next.UTC().Format(time.RFC3339))
	} else {
		st.failures, st.lastError, st.next = 0, "", next
		r.state[cps.Name] = st
		r.mu.Unlock()
		r.metrics.credentialRefresh(cps.Name, "ok")
		r.metrics.credentialExpiry(cps.Name, result.Expires)
		logger.V(1).Info("credential refreshed", "expires", result.Expires.UTC().Format(time.RFC3339))
	}
	r.notify(cps.Name)
}

func refreshReason(err error) string {
	var pe *credprovider.Error
	if errors.As(err, &pe) {
		return string(pe.Reason)
	}
	var te *tokenError
	if errors.As(err, &te) {
		return "TokenRequestFailed"
	}
	return "WriteFailed"
}

// tokenError is a failure to get the token a provider's tokenAttributes ask
// for.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// run asks the plugin, as configured by the admin, for the source's image;
// with a token of the controller's own ServiceAccount and its annotations
// when the provider's tokenAttributes ask for them (KEP-4412).
func (r *refresher) run(ctx context.Context, res resolvedProvider, src *v1alpha1.CredentialProviderSource) (*credprovider.Result, error) {
	if r.runnerErr != nil {
		return nil, r.runnerErr
	}
	var minCache time.Duration
	if src.MinCacheDuration != nil {
		minCache = src.MinCacheDuration.Duration
	}
	plugin := credprovider.FromConfig(res.provider, minCache)
	req := credprovider.Request{Image: res.image}
	if ta := res.provider.TokenAttributes; ta != nil {
		annotations, err := r.accountAnnotations(ctx, ta.RequiredServiceAccountAnnotationKeys, ta.OptionalServiceAccountAnnotationKeys)
		if err != nil {
			return nil, &tokenError{err}
		}
		tr, err := r.clientset.CoreV1().ServiceAccounts(r.namespace).CreateToken(ctx, r.account, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{ta.ServiceAccountTokenAudience}, ExpirationSeconds: ptr.To(int64(tokenLifetime.Seconds()))},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, &tokenError{fmt.Errorf("request a token of ServiceAccount %s/%s for audience %q: %w", r.namespace, r.account, ta.ServiceAccountTokenAudience, err)}
		}
		req.ServiceAccountToken, req.ServiceAccountAnnotations = tr.Status.Token, annotations
	}
	return r.runner.Run(ctx, plugin, req)
}

// accountAnnotations returns the annotations of the controller's
// ServiceAccount that a provider asks for, as the kubelet passes those of
// a Pod's: every required key must be there.
func (r *refresher) accountAnnotations(ctx context.Context, required, optional []string) (map[string]string, error) {
	if len(required)+len(optional) == 0 {
		return nil, nil
	}
	var sa corev1.ServiceAccount
	// Read live: the controller keeps no ServiceAccount's annotations but
	// its own marks (package accounts), and this runs once a refresh.
	if err := r.apiReader.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: r.account}, &sa); err != nil {
		return nil, fmt.Errorf("read ServiceAccount %s/%s: %w", r.namespace, r.account, err)
	}
	out := map[string]string{}
	for _, k := range required {
		v, ok := sa.Annotations[k]
		if !ok {
			return nil, fmt.Errorf("ServiceAccount %s/%s lacks the annotation %s that the provider requires", r.namespace, r.account, k)
		}
		out[k] = v
	}
	for _, k := range optional {
		if v, ok := sa.Annotations[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// store writes the plugin's answer into the provider Secret, owned by the
// ClusterPullSecret: it creates it, or updates it with optimistic
// concurrency, read from the API server when the cache cannot say, so that
// a fresh token is never thrown away for a cache miss.
func (r *refresher) store(ctx context.Context, cps *v1alpha1.ClusterPullSecret, spec string, res *credprovider.Result, next time.Time) error {
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
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: cpsGVK.GroupVersion().String(), Kind: cpsGVK.Kind, Name: cps.Name, UID: cps.UID, Controller: ptr.To(true),
			}},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: res.DockerConfigJSON},
	}
	current, err := r.current(ctx, cps.Name)
	if apierrors.IsNotFound(err) {
		err = r.client.Create(ctx, want)
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s/%s: %w", want.Namespace, want.Name, err)
		}
		// Made since the cache looked: read it where it is.
		current = &corev1.Secret{}
		err = r.apiReader.Get(ctx, client.ObjectKeyFromObject(want), current)
	}
	if err != nil {
		return fmt.Errorf("read Secret %s/%s: %w", want.Namespace, want.Name, err)
	}
	updated := current.DeepCopy()
	// A Secret of that name that some other owner left is taken over
	// whole: its data was never used (ownedBy).
	updated.Labels, updated.Annotations, updated.OwnerReferences = want.Labels, want.Annotations, want.OwnerReferences
	updated.Type, updated.Data = want.Type, want.Data
	if err := r.client.Patch(ctx, updated, client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// status returns what status.credential says of a provider source.
func (r *refresher) status(ctx context.Context, cps *v1alpha1.ClusterPullSecret) *v1alpha1.CredentialStatus {
	out := &v1alpha1.CredentialStatus{}
	if s, err := r.current(ctx, cps.Name); err == nil && ownedBy(s, cps.UID) {
		out.ObtainedAt = timeAnnotation(s.Annotations[v1alpha1.ObtainedAtAnnotation])
		out.ExpiresAt = timeAnnotation(s.Annotations[v1alpha1.ExpiresAtAnnotation])
		out.NextRefreshAt = timeAnnotation(s.Annotations[v1alpha1.NextRefreshAnnotation])
	}
	r.mu.Lock()
	st, ok := r.state[cps.Name]
	r.mu.Unlock()
	switch {
	case ok && st.failures > 0:
		out.Failures, out.LastError = int32(st.failures), st.lastError
		t := metav1.NewTime(st.next.Truncate(time.Second))
		out.NextRefreshAt = &t
	case !ok && cps.Status.Credential != nil && cps.Status.Credential.Failures > 0:
		// Not this replica's to know (a standby, or a leader yet to run
		// it): keep what the leader reported.
		prev := cps.Status.Credential
		out.Failures, out.LastError, out.NextRefreshAt = prev.Failures, prev.LastError, prev.NextRefreshAt
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

// forget drops a source and deletes its Secret: its ClusterPullSecret is
// being deleted.
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

// dropUnused deletes the provider Secrets the refresher made (its labels)
// for a ClusterPullSecret that is gone or no longer asks a plugin. One that
// a ClusterPullSecret of that name still asks for is kept, whoever owns it:
// that source takes it over when it runs.
func (r *refresher) dropUnused(ctx context.Context, keep map[string]types.UID) error {
	var list corev1.SecretList
	if err := r.reader.List(ctx, &list, client.InNamespace(r.namespace), client.HasLabels{v1alpha1.ProviderForLabel}); err != nil {
		return fmt.Errorf("list provider Secrets in %s: %w", r.namespace, err)
	}
	var errs []error
	for i := range list.Items {
		s := &list.Items[i]
		owner := s.Labels[v1alpha1.ProviderForLabel]
		if s.Name != providerSecretName(owner) || s.DeletionTimestamp != nil {
			continue
		}
		if _, ok := keep[owner]; ok || s.Labels["app.kubernetes.io/component"] != "provider-credential" {
			continue
		}
		if err := r.client.Delete(ctx, s, client.Preconditions{UID: &s.UID, ResourceVersion: &s.ResourceVersion}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete Secret %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// pendingNote says why a provider source has no credential: its last
// failure, if any.
func (r *refresher) pendingNote(cps string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state[cps].lastError
}
