package controller

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

// defaultVerifyInterval is spec.verify.interval's default.
const defaultVerifyInterval = time.Hour

// verifier checks a ClusterPullSecret's source credentials against its
// spec.verify.image, when they change and on an interval. It only informs:
// propagation never waits for it nor stops because of it.
type verifier struct {
	rootCAs *x509.CertPool
	timeout time.Duration
	metrics *Metrics

	mu   sync.Mutex
	last map[string]verification
}

// verification is the outcome of one check, and what it was made for.
type verification struct {
	key       string
	at        time.Time
	condition metav1.Condition
}

func newVerifier(rootCAs *x509.CertPool, timeout time.Duration, m *Metrics) *verifier {
	return &verifier{rootCAs: rootCAs, timeout: timeout, metrics: m, last: map[string]verification{}}
}

// observe returns the CredentialsVerified condition, the time of the check
// it reports, and when the next check is due. It checks the registry only
// when the source, the image or the options changed, or the interval passed.
func (v *verifier) observe(ctx context.Context, cps *v1alpha1.ClusterPullSecret, src sourceState, now time.Time) (metav1.Condition, time.Time, time.Duration) {
	spec := cps.Spec.Verify
	if !src.ok() {
		return metav1.Condition{
			Type: v1alpha1.ConditionCredentialsVerified, Status: metav1.ConditionUnknown, ObservedGeneration: cps.Generation,
			Reason: src.Reason, Message: "no usable source to verify",
		}, time.Time{}, 0
	}
	interval := defaultVerifyInterval
	if spec.Interval != nil && spec.Interval.Duration > 0 {
		interval = spec.Interval.Duration
	}
	key := fmt.Sprintf("%s|%s|%s|%t", src.Secret.UID, src.ResourceVersion, spec.Image, spec.Insecure)

	v.mu.Lock()
	last, ok := v.last[cps.Name]
	v.mu.Unlock()
	if ok && last.key == key && now.Sub(last.at) < interval {
		last.condition.ObservedGeneration = cps.Generation
		return last.condition, last.at, interval - now.Sub(last.at)
	}

	cond := v.check(ctx, cps, src)
	v.mu.Lock()
	v.last[cps.Name] = verification{key: key, at: now, condition: cond}
	v.mu.Unlock()
	v.metrics.verified(cps.Name, cond.Status == metav1.ConditionTrue)
	return cond, now, interval
}

func (v *verifier) check(ctx context.Context, cps *v1alpha1.ClusterPullSecret, src sourceState) metav1.Condition {
	spec := cps.Spec.Verify
	cond := metav1.Condition{Type: v1alpha1.ConditionCredentialsVerified, ObservedGeneration: cps.Generation}
	fail := func(format string, args ...any) metav1.Condition {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonVerificationFailed, fmt.Sprintf(format, args...)
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
		return fail("%s", res.Message)
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
