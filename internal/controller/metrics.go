package controller

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/pullsecrets/pullsecrets/internal/version"
)

// Metrics are the controller's own Prometheus series, next to
// controller-runtime's (reconcile counts and latencies, workqueue depth).
type Metrics struct {
	namespacesMatched *prometheus.GaugeVec
	namespacesReady   *prometheus.GaugeVec
	namespacesFailing *prometheus.GaugeVec
	sourceValidity    *prometheus.GaugeVec
	requests          *prometheus.CounterVec
	credentialExpires *prometheus.GaugeVec
	refreshes         *prometheus.CounterVec
	verificationMetrics
	key keyMetrics
}

// NewMetrics creates the series and registers them, usually with
// controller-runtime's metrics.Registry, which the manager serves.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		namespacesMatched: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pullsecrets_namespaces_matched", Help: "Namespaces selected by a ClusterPullSecret.",
		}, []string{"cluster_pull_secret"}),
		namespacesReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pullsecrets_namespaces_ready", Help: "Selected namespaces with an up-to-date copy attached to every selected ServiceAccount.",
		}, []string{"cluster_pull_secret"}),
		namespacesFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pullsecrets_namespaces_failing", Help: "Selected namespaces that are not ready (conflict, failed write, rollout in progress).",
		}, []string{"cluster_pull_secret"}),
		sourceValidity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pullsecrets_source_valid", Help: "1 when the ClusterPullSecret's source Secret exists and is a usable pull secret, else 0.",
		}, []string{"cluster_pull_secret"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullsecrets_api_requests_total", Help: "Requests to the Kubernetes API by verb and resource.",
		}, []string{"verb", "resource"}),
	}
	m.credentialExpires = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pullsecrets_credential_expiry_timestamp_seconds",
		Help: "When the credential a provider source's plugin last answered expires (Unix time); alert when it nears.",
	}, []string{"cluster_pull_secret"})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pullsecrets_credential_refreshes_total", Help: "Runs of provider sources' plugins by outcome (ok, or the failure reason).",
	}, []string{"cluster_pull_secret", "result"})
	m.verifiedGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pullsecrets_credentials_verified", Help: "1 when the last registry check of spec.verify.image succeeded, else 0.",
	}, []string{"cluster_pull_secret"})
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pullsecrets_verifications_total", Help: "Registry checks of spec.verify.image by outcome.",
	}, []string{"cluster_pull_secret", "status"})
	m.key = newKeyMetrics(reg)
	reg.MustRegister(m.namespacesMatched, m.namespacesReady, m.namespacesFailing, m.sourceValidity, m.requests, m.verifiedGauge, m.checks,
		m.credentialExpires, m.refreshes, buildInfo(version.Get()))
	return m
}

// buildInfo is pullsecrets_build_info: 1, labelled with the running build,
// as Kubernetes components' *_build_info series.
func buildInfo(i version.Info) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pullsecrets_build_info", Help: "1, labelled with the controller's version, git commit, commit date, dirty flag and Go release.",
	}, []string{"version", "commit", "date", "dirty", "goversion"})
	g.WithLabelValues(i.Version, i.Commit, i.Date, strconv.FormatBool(i.Dirty), i.GoVersion).Set(1)
	return g
}

// Instrument returns a copy of cfg whose requests are counted by verb and
// resource in pullsecrets_api_requests_total.
func (m *Metrics) Instrument(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, metrics: m} })
	return cfg
}

func (m *Metrics) namespaces(cps string, matched, ready, failing int) {
	m.namespacesMatched.WithLabelValues(cps).Set(float64(matched))
	m.namespacesReady.WithLabelValues(cps).Set(float64(ready))
	m.namespacesFailing.WithLabelValues(cps).Set(float64(failing))
}

func (m *Metrics) sourceValid(cps string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.sourceValidity.WithLabelValues(cps).Set(v)
}

func (m *Metrics) forget(cps string) {
	for _, g := range []*prometheus.GaugeVec{m.namespacesMatched, m.namespacesReady, m.namespacesFailing, m.sourceValidity, m.verifiedGauge, m.credentialExpires} {
		g.DeleteLabelValues(cps)
	}
	m.checks.DeletePartialMatch(prometheus.Labels{"cluster_pull_secret": cps})
	m.refreshes.DeletePartialMatch(prometheus.Labels{"cluster_pull_secret": cps})
}

func (m *Metrics) verified(cps string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.verifiedGauge.WithLabelValues(cps).Set(v)
}

func (m *Metrics) verification(cps, status string) {
	m.checks.WithLabelValues(cps, status).Inc()
}

// countingTransport counts API requests by verb and resource, for the
// pullsecrets_api_requests_total series.
type countingTransport struct {
	next    http.RoundTripper
	metrics *Metrics
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	verb, resource := RequestVerbResource(req)
	t.metrics.requests.WithLabelValues(verb, resource).Inc()
	return t.next.RoundTrip(req)
}

// RequestVerbResource maps an API request to the Kubernetes verb (get,
// list, watch, create, update, patch, delete) and resource it asks for.
func RequestVerbResource(req *http.Request) (verb, resource string) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// /api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]] or /apis/GROUP/VERSION/...
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return strings.ToLower(req.Method), "other"
	}
	named := false
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) != 2 {
		parts = parts[2:]
	}
	if len(parts) > 0 {
		resource = parts[0]
		named = len(parts) > 1
		if len(parts) > 2 {
			resource += "/" + parts[2]
		}
	}
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb, resource
}

func (m *Metrics) credentialExpiry(cps string, at time.Time) {
	m.credentialExpires.WithLabelValues(cps).Set(float64(at.Unix()))
}

func (m *Metrics) credentialRefresh(cps, result string) {
	m.refreshes.WithLabelValues(cps, result).Inc()
}
