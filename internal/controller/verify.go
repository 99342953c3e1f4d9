package controller

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

// defaultVerifyInterval is spec.verify.interval's default.
const defaultVerifyInterval = time.Hour

// verifier checks ClusterPullSecrets' source credentials against their
// spec.verify.image, off the reconcile path: it runs on its own, one check
// at a time, when the source, the image or the options change and every
// interval (at least minVerifyInterval). It only informs: propagation
// never waits for it. Its results are a cache: after a restart the stored
// condition stands until the next check.
type verifier struct {
	rootCAs *x509.CertPool
	timeout time.Duration
	metrics *Metrics
	read    *reader
	notify  func(cps string)
	kick    chan struct{}

	mu   sync.Mutex
	last map[string]verification
}

// verification is the outcome of one check, and what it was made for.
type verification struct {
	key       string
	at        time.Time
	condition metav1.Condition
}

func newVerifier(rootCAs *x509.CertPool, timeout time.Duration, m *Metrics, read *reader, notify func(string)) *verifier {
	return &verifier{rootCAs: rootCAs, timeout: timeout, metrics: m, read: read, notify: notify,
		kick: make(chan struct{}, 1), last: map[string]verification{}}
}

// NeedLeaderElection: only the leader checks (and writes the results).
func (v *verifier) NeedLeaderElection() bool { return true }

// wake asks for a look at every ClusterPullSecret now.
func (v *verifier) wake() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// Start checks what is due until ctx ends.
func (v *verifier) Start(ctx context.Context) error { return loopUntilDone(ctx, v.kick, v.runDue) }

// loopUntilDone runs work, then waits for the delay it returns or a kick,
// until ctx ends: the loop of the verifier and the refresher.
func loopUntilDone(ctx context.Context, kick <-chan struct{}, work func(context.Context) time.Duration) error {
	for {
		timer := time.NewTimer(work(ctx))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-kick:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// runDue checks every ClusterPullSecret whose check is due and returns how
// long until the next one is.
func (v *verifier) runDue(ctx context.Context) time.Duration {
	next := defaultVerifyInterval
	all, err := v.read.cps.list(ctx)
	if err != nil {
		return minVerifyInterval
	}
	for _, d := range all {
		if d.obj == nil || d.plan.Invalid != "" || d.plan.Deleting || d.obj.Spec.Verify == nil {
			continue
		}
		key, interval := v.keyOf(ctx, d.obj)
		v.mu.Lock()
		last, ok := v.last[d.obj.Name]
		v.mu.Unlock()
		if ok && last.key == key {
			if wait := interval - time.Since(last.at); wait > 0 {
				next = min(next, wait)
				continue
			}
		}
		cond := v.check(ctx, d.obj)
		v.mu.Lock()
		v.last[d.obj.Name] = verification{key: key, at: time.Now(), condition: cond}
		v.mu.Unlock()
		v.metrics.verified(d.obj.Name, cond.Status == metav1.ConditionTrue)
		v.notify(d.obj.Name)
		next = min(next, interval)
	}
	return next
}

// keyOf says what a check is for: the source's content, the image and the
// options. A check of another key is stale.
func (v *verifier) keyOf(ctx context.Context, cps *v1alpha1.ClusterPullSecret) (string, time.Duration) {
	spec := cps.Spec.Verify
	interval := defaultVerifyInterval
	if spec.Interval != nil {
		interval = max(spec.Interval.Duration, minVerifyInterval)
	}
	src := v.read.sources.get(ctx, cps)
	return fmt.Sprintf("%s|%s|%s|%s|%t", src.Problem, src.Hash, spec.Image, interval, spec.Insecure), interval
}

// observeVerification puts the latest result into status; with no result
// for the current source and spec yet, what status says stays.
func (r *cpsReconciler) observeVerification(cps *v1alpha1.ClusterPullSecret, status *v1alpha1.ClusterPullSecretStatus) {
	if cps.Spec.Verify == nil {
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionCredentialsVerified)
		status.LastVerification = nil
		return
	}
	v := r.verifier
	key, _ := v.keyOf(context.Background(), cps)
	v.mu.Lock()
	last, ok := v.last[cps.Name]
	v.mu.Unlock()
	if !ok || last.key != key {
		v.wake()
		return
	}
	cond := last.condition
	cond.ObservedGeneration = cps.Generation
	meta.SetStatusCondition(&status.Conditions, cond)
	at := metav1.NewTime(last.at.Truncate(time.Second))
	status.LastVerification = &at
}

func (v *verifier) check(ctx context.Context, cps *v1alpha1.ClusterPullSecret) metav1.Condition {
	spec := cps.Spec.Verify
	cond := metav1.Condition{Type: v1alpha1.ConditionCredentialsVerified, ObservedGeneration: cps.Generation}
	fail := func(format string, args ...any) metav1.Condition {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonVerificationFailed, fmt.Sprintf(format, args...)
		return cond
	}
	src := v.read.sources.get(ctx, cps)
	if !src.ok() {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, src.Problem, "no usable source to verify"
		return cond
	}
	// Exactly the credentials the kubelet would try for the image, in its
	// order.
	keyring := credentials.NewKeyring([]credentials.Secret{{
		Namespace: src.Secret.Namespace, Name: src.Secret.Name, Type: string(src.Secret.Type), Data: src.Secret.Data,
	}})
	match, err := keyring.Lookup(spec.Image)
	if err != nil {
		return fail("spec.verify.image %q is not a valid image reference", spec.Image)
	}
	if len(match.Credentials) == 0 {
		msg := fmt.Sprintf("no registry key of the source matches %s, so the kubelet would pull it without credentials", spec.Image)
		if match.Miss != nil {
			msg += ": " + match.Miss.Message
		}
		v.metrics.verification(cps.Name, "no-match")
		return fail("%s", msg)
	}
	creds := make([]registrycheck.Credential, 0, len(match.Credentials))
	for _, c := range match.Credentials {
		creds = append(creds, registrycheck.Credential{Label: fmt.Sprintf("%s (%s)", c.Secret, c.Registry), Username: c.Username, Password: c.Password})
	}
	opts := registrycheck.Options{Timeout: v.timeout, RootCAs: v.rootCAs}
	if spec.Insecure {
		if named, err := reference.ParseNormalizedNamed(spec.Image); err == nil {
			opts.InsecureRegistries = []string{reference.Domain(named)}
		}
	}
	res := registrycheck.Check(ctx, spec.Image, creds, opts)
	v.metrics.verification(cps.Name, string(res.Status))
	if !res.OK() {
		log.FromContext(ctx).V(1).Info("registry check failed", "clusterPullSecret", cps.Name, "status", res.Status)
		return fail("%s", credentials.Scrub(res.Message, src.Secret.Data))
	}
	cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonVerified
	cond.Message = fmt.Sprintf("%s resolves to %s with the credentials of %s", res.Reference, res.Digest, res.Credential)
	return cond
}

func (v *verifier) forget(cps string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.last, cps)
}

// verificationMetrics are created with the others in NewMetrics.
type verificationMetrics struct {
	verifiedGauge *prometheus.GaugeVec
	checks        *prometheus.CounterVec
}
