// Package metrics proves that the controller serves /metrics only over
// HTTPS and only to callers the API server authenticates and authorizes:
// the real manager runs with a token of its ServiceAccount, bound to the
// generated RBAC, and scrapers present ServiceAccount tokens from the
// TokenRequest API.
package metrics

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/pullsecrets/pullsecrets/internal/controller"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
	"github.com/pullsecrets/pullsecrets/test/internal/deploytest"
)

const namespace = "pullsecrets-system"

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{CRDPaths: []string{"../../config/crd/bases"}})
}

// token asks the TokenRequest API for a short-lived token of a
// ServiceAccount, creating the ServiceAccount if needed.
func token(t *testing.T, c *testcluster.Cluster, name string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := c.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	tr, err := c.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s: %v", name, err)
	}
	return tr.Status.Token
}

func ptr[T any](v T) *T { return &v }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startController runs the real manager as the controller's ServiceAccount
// (a token, no impersonation: the reviews are made with its own RBAC).
func startController(t *testing.T, c *testcluster.Cluster, addr string, edit func(*manager.Options)) {
	t.Helper()
	o := manager.DefaultOptions()
	o.Controller.SourceNamespaces = []string{namespace}
	o.LeaderElect = false
	o.ProbeAddr = "0"
	o.MetricsAddr = addr
	o.AllowSeveralInProcess = true
	if edit != nil {
		edit(&o)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{
		Host:            c.Config.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.Config.CAData},
		BearerToken:     token(t, c, "pullsecrets-controller"),
	}
	mgr, err := manager.New(cfg, o, controller.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	// Up when it answers anything over TLS.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only probing that it listens
		if err != nil {
			return false, nil
		}
		return true, conn.Close()
	})
	if err != nil {
		t.Fatalf("metrics server on %s never came up", addr)
	}
}

// install applies the generated RBAC and binds the metrics reader role to
// the ServiceAccount "scraper".
func install(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	admin := deploytest.Client(t, c.Config)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := admin.Create(context.Background(), ns); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	deploytest.Apply(t, admin, deploytest.Decode(t, deploytest.Kustomize(t, "config/rbac")))
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "pullsecrets-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: namespace}},
	}
	if err := admin.Create(context.Background(), crb); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

// get fetches /metrics with an optional bearer token.
func get(t *testing.T, url, bearer string, roots *x509.CertPool) (int, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, InsecureSkipVerify: roots == nil}} //nolint:gosec // self-signed by design
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMetricsNeedAuthenticationAndAuthorization(t *testing.T) {
	c := testcluster.Get(t)
	install(t, c)
	addr := freeAddr(t)
	startController(t, c, addr, nil)
	reader, other := token(t, c, "scraper"), token(t, c, "not-a-scraper")

	tests := []struct {
		name   string
		scheme string
		bearer string
		want   int
	}{
		{name: "no token", scheme: "https", want: http.StatusUnauthorized},
		// The TokenReview answers with an error, which controller-runtime's
		// filter turns into a 500, not a 401; either way nothing is served.
		{name: "a token the API server did not issue", scheme: "https", bearer: "not-a-token", want: http.StatusInternalServerError},
		{name: "a ServiceAccount without the reader role", scheme: "https", bearer: other, want: http.StatusForbidden},
		{name: "a ServiceAccount bound to pullsecrets-metrics-reader", scheme: "https", bearer: reader, want: http.StatusOK},
		{name: "plain HTTP, even with a good token", scheme: "http", bearer: reader, want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, tt.scheme+"://"+addr+"/metrics", tt.bearer, nil)
			if code != tt.want {
				t.Fatalf("status %d, want %d; body: %.200s", code, tt.want, body)
			}
			hasMetrics := strings.Contains(body, "controller_runtime_")
			if hasMetrics != (tt.want == http.StatusOK) {
				t.Fatalf("metrics in the body: %v, want %v; body: %.200s", hasMetrics, tt.want == http.StatusOK, body)
			}
		})
	}
}

// With --metrics-cert-dir the server presents that certificate.
func TestMetricsCertDir(t *testing.T) {
	c := testcluster.Get(t)
	install(t, c)
	dir := t.TempDir()
	roots := writeCert(t, dir)
	addr := freeAddr(t)
	startController(t, c, addr, func(o *manager.Options) { o.MetricsCertDir = dir })
	// Verified against our CA only: a self-signed fallback would fail here.
	code, body := get(t, "https://"+addr+"/metrics", token(t, c, "scraper"), roots)
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200; body: %.200s", code, body)
	}
}

func TestMetricsOptionsValidate(t *testing.T) {
	certs := t.TempDir()
	writeCert(t, certs)
	tests := []struct {
		name    string
		edit    func(*manager.Options)
		wantErr string
	}{
		{name: "defaults are secure", edit: func(*manager.Options) {}},
		{name: "a cert dir with tls.crt and tls.key", edit: func(o *manager.Options) { o.MetricsCertDir = certs }},
		{name: "a cert dir without them", edit: func(o *manager.Options) { o.MetricsCertDir = t.TempDir() }, wantErr: "--metrics-cert-dir"},
		{name: "a cert dir without HTTPS", edit: func(o *manager.Options) { o.MetricsCertDir, o.MetricsSecure = certs, false }, wantErr: "needs --metrics-secure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := manager.DefaultOptions()
			if !o.MetricsSecure {
				t.Fatal("--metrics-secure must default to true")
			}
			tt.edit(&o)
			err := o.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want no error, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want an error about %q, got %v", tt.wantErr, err)
			}
		})
	}
}

// writeCert writes a CA-signed serving certificate for 127.0.0.1 as
// tls.crt and tls.key, and returns the CA.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test metrics CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pullsecrets-controller-metrics"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var crt, k bytes.Buffer
	err = errors.Join(
		pem.Encode(&crt, &pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.Encode(&k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		os.WriteFile(filepath.Join(dir, "tls.crt"), crt.Bytes(), 0o600),
	)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "tls.key"), k.Bytes(), 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}
