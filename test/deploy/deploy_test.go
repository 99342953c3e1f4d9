// Package deploy proves the deployment manifests against the real API
// server: the kustomize tree and the Helm chart are accepted, the
// controller's Pods are admitted under the restricted Pod Security
// Standard, and both grant exactly the same RBAC and ship the same
// admission policies.
package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/credprovider"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
	"github.com/pullsecrets/pullsecrets/test/internal/deploytest"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{ControllerManager: true})
}

// controllerPodAdmitted waits until the Deployment's ReplicaSet has created
// a Pod: the namespace enforces the restricted Pod Security Standard, so a
// Pod exists only if its security context passes.
func controllerPodAdmitted(t *testing.T, c client.Client, namespace string) {
	t.Helper()
	NewWithT(t).Eventually(func() []corev1.Pod {
		var pods corev1.PodList
		_ = c.List(context.Background(), &pods, client.InNamespace(namespace), client.MatchingLabels{"app.kubernetes.io/name": "pullsecrets"})
		return pods.Items
	}).WithTimeout(time.Minute).ShouldNot(BeEmpty(), "no controller Pod admitted in %s (restricted Pod Security?)", namespace)
}

func TestKustomizeDefaultInstalls(t *testing.T) {
	c := testcluster.Get(t)
	cl := deploytest.Client(t, c.Config)
	objs := deploytest.Decode(t, deploytest.Kustomize(t, "config/default"))
	deploytest.Apply(t, cl, objs)
	controllerPodAdmitted(t, cl, "pullsecrets-system")
	deploytest.Apply(t, cl, deploytest.Decode(t, deploytest.Kustomize(t, "config/samples")))

	g := NewWithT(t)
	g.Expect(names(objs, "ValidatingAdmissionPolicy")).To(ConsistOf("pullsecrets-controller-writes", "pullsecrets-marks", "pullsecrets-controller-tokens"),
		"the shipped policies are on by default; the optional one is not")
	g.Expect(names(objs, "ValidatingAdmissionPolicyBinding")).To(ConsistOf("pullsecrets-controller-writes", "pullsecrets-marks", "pullsecrets-controller-tokens"))
	g.Expect(names(objs, "ClusterRole")).NotTo(ContainElement("pullsecrets-controller-restart-pods"), "Pod delete is opt-in")
	g.Expect(names(objs, "ServiceMonitor")).To(BeEmpty())
	metricsServed(t, objs)
}

func TestHelmChartInstallsWithTheSameRBAC(t *testing.T) {
	c := testcluster.Get(t)
	cl := deploytest.Client(t, c.Config)
	g := NewWithT(t)
	ns := "pullsecrets-helm"
	extra := c.Namespace(t)
	g.Expect(cl.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}})).To(Succeed())
	rendered := deploytest.Decode(t, deploytest.HelmTemplate(t, ns, "--set", "sourceNamespaces={"+extra+"}"))
	deploytest.Apply(t, cl, rendered)
	controllerPodAdmitted(t, cl, ns)

	// The chart's rules are the generated ones.
	kustomized := deploytest.Decode(t, deploytest.Kustomize(t, "config/rbac"))
	g.Expect(rules(t, rendered, "ClusterRole", "pullsecrets-pullsecrets-controller")).To(Equal(rules(t, kustomized, "ClusterRole", "pullsecrets-controller")))
	g.Expect(rules(t, rendered, "ClusterRole", "pullsecrets-pullsecrets-metrics-reader")).To(Equal(rules(t, kustomized, "ClusterRole", "pullsecrets-metrics-reader")))
	g.Expect(rules(t, rendered, "Role", ns+"/pullsecrets-controller")).To(Equal(rules(t, kustomized, "Role", "pullsecrets-system/pullsecrets-controller")))
	sourceRules := rules(t, rendered, "Role", extra+"/pullsecrets-pullsecrets-controller-source")
	g.Expect(sourceRules).To(HaveLen(1))
	g.Expect(sourceRules[0].Resources).To(Equal([]string{"secrets"}))
	g.Expect(sourceRules[0].Verbs).To(ConsistOf("get", "list", "watch"))

	g.Expect(names(rendered, "ClusterRole")).NotTo(ContainElement(HaveSuffix("restart-pods")), "Pod delete is opt-in")
	g.Expect(names(rendered, "ValidatingAdmissionPolicy")).To(ConsistOf("pullsecrets-pullsecrets-controller-writes", "pullsecrets-pullsecrets-marks", "pullsecrets-pullsecrets-controller-tokens"))
	g.Expect(names(rendered, "ServiceMonitor")).To(BeEmpty())
	metricsServed(t, rendered)
}

func TestRestartPodsRoleIsTheGeneratedOne(t *testing.T) {
	g := NewWithT(t)
	kustomized := deploytest.Decode(t, deploytest.Kustomize(t, "config/default", "config/rbac-restart-pods"))
	rendered := deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system", "--set", "rbac.restartPods=true"))
	want := rules(t, kustomized, "ClusterRole", "pullsecrets-controller-restart-pods")
	g.Expect(want).To(Equal([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete"}}}))
	g.Expect(rules(t, rendered, "ClusterRole", "pullsecrets-pullsecrets-controller-restart-pods")).To(Equal(want))
	for _, objs := range [][]*unstructured.Unstructured{kustomized, rendered} {
		b := find(t, objs, "ClusterRoleBinding", "", "restart-pods")
		var crb rbacv1.ClusterRoleBinding
		convert(t, b, &crb)
		g.Expect(crb.RoleRef.Name).To(HaveSuffix("pullsecrets-controller-restart-pods"))
		g.Expect(crb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "pullsecrets-controller", Namespace: "pullsecrets-system"}}))
	}
}

// The chart's policies, rendered into pullsecrets-system with the default
// groups, are the kustomize tree's, CEL for CEL.
func TestHelmPoliciesAreTheKustomizeOnes(t *testing.T) {
	g := NewWithT(t)
	kustomized := deploytest.Decode(t, deploytest.Kustomize(t, "config/default", "config/policy-broad-selection"))
	rendered := deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system", "--set", "admissionPolicy.restrictBroadSelection.enabled=true"))
	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		g.Expect(names(kustomized, kind)).To(HaveLen(4))
		for _, k := range deploytest.Find(kustomized, kind) {
			h := find(t, rendered, kind, "", "pullsecrets-"+k.GetName())
			spec := k.Object["spec"].(map[string]any)
			if kind == "ValidatingAdmissionPolicyBinding" {
				spec["policyName"] = "pullsecrets-" + spec["policyName"].(string)
			}
			g.Expect(h.Object["spec"]).To(Equal(spec), "%s %s", kind, k.GetName())
		}
	}
	// Off, nothing is rendered.
	off := deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system", "--set", "admissionPolicy.enabled=false"))
	g.Expect(names(off, "ValidatingAdmissionPolicy")).To(BeEmpty())
	g.Expect(names(off, "ValidatingAdmissionPolicyBinding")).To(BeEmpty())
	// The identity follows the release namespace.
	other := deploytest.Decode(t, deploytest.HelmTemplate(t, "infra"))
	for _, policy := range []string{"marks", "controller-tokens"} {
		raw, err := json.Marshal(find(t, other, "ValidatingAdmissionPolicy", "", policy).Object)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(raw)).To(ContainSubstring("system:serviceaccount:infra:pullsecrets-controller"), policy)
		g.Expect(string(raw)).NotTo(ContainSubstring("pullsecrets-system"), policy)
	}
	binding, err := json.Marshal(find(t, other, "ValidatingAdmissionPolicyBinding", "", "controller-tokens").Object)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(binding)).To(ContainSubstring(`"namespace":"infra"`), "the token policy's params are in the release namespace")
}

// The ServiceMonitors decode strictly into prometheus-operator's types, and
// scrape the metrics Service's HTTPS port with a bearer token.
func TestServiceMonitors(t *testing.T) {
	g := NewWithT(t)
	for name, objs := range map[string][]*unstructured.Unstructured{
		"kustomize": deploytest.Decode(t, deploytest.Kustomize(t, "config/default", "config/prometheus")),
		"helm": deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system", "--set", "metrics.serviceMonitor.enabled=true",
			"--set", "metrics.serviceMonitor.tlsConfig.serverName=pullsecrets-controller-metrics.pullsecrets-system.svc",
			"--set", "metrics.serviceMonitor.tlsConfig.ca.secret.name=metrics-ca", "--set", "metrics.serviceMonitor.tlsConfig.ca.secret.key=ca.crt")),
	} {
		sms := deploytest.Find(objs, "ServiceMonitor")
		g.Expect(sms).To(HaveLen(1), name)
		raw, err := yaml.Marshal(sms[0].Object)
		g.Expect(err).NotTo(HaveOccurred())
		var sm monitoringv1.ServiceMonitor
		g.Expect(yaml.UnmarshalStrict(raw, &sm)).To(Succeed(), name)
		g.Expect(sm.Spec.Endpoints).To(HaveLen(1), name)
		ep := sm.Spec.Endpoints[0]
		g.Expect(ep.Scheme).To(HaveValue(BeEquivalentTo("https")), name)
		//nolint:staticcheck // SA1019: authorization takes a Secret only; Prometheus's own projected token needs bearerTokenFile.
		g.Expect(ep.BearerTokenFile).To(Equal("/var/run/secrets/kubernetes.io/serviceaccount/token"), name)
		g.Expect(ep.Port).To(HaveValue(Equal("https-metrics")), name)
		// Prometheus's token goes only to a certificate it verifies.
		g.Expect(ep.TLSConfig).NotTo(BeNil(), name)
		g.Expect(ep.TLSConfig.InsecureSkipVerify).To(Or(BeNil(), HaveValue(BeFalse())), name)
		g.Expect(ep.TLSConfig.CA.Secret != nil || ep.TLSConfig.CA.ConfigMap != nil).To(BeTrue(), "%s: no CA to verify the certificate with", name)
		svc := deploytest.Find(objs, "Service")[0]
		g.Expect(svc.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/component", "controller"))
		for k, v := range sm.Spec.Selector.MatchLabels {
			g.Expect(svc.GetLabels()).To(HaveKeyWithValue(k, v), name)
		}
	}
}

// A ServiceMonitor that would send Prometheus's token to an unverified
// certificate is rendered only when asked for in so many words.
func TestServiceMonitorRefusesToSkipVerificationByDefault(t *testing.T) {
	g := NewWithT(t)
	out, err := deploytest.TryHelmTemplate(t, "pullsecrets-system", "--set", "metrics.serviceMonitor.enabled=true")
	g.Expect(err).To(HaveOccurred())
	g.Expect(string(out)).To(ContainSubstring("must verify the certificate: set tlsConfig.ca"))
	objs := deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system", "--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.serviceMonitor.tlsConfig.insecureSkipVerify=true"))
	g.Expect(deploytest.Find(objs, "ServiceMonitor")).To(HaveLen(1), "an explicit choice is honoured")
}

// metricsServed checks that the metrics Service reaches the Deployment's
// HTTPS metrics port and that the controller serves it securely.
func metricsServed(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	g := NewWithT(t)
	var dep appsv1.Deployment
	convert(t, deploytest.Find(objs, "Deployment")[0], &dep)
	ctr := dep.Spec.Template.Spec.Containers[0]
	g.Expect(ctr.Args).To(ContainElements("--metrics-bind-address=:8443", HavePrefix("--metrics-secure")))
	g.Expect(ctr.Args).NotTo(ContainElement("--metrics-secure=false"))
	g.Expect(ctr.Ports).To(ContainElement(corev1.ContainerPort{Name: "https-metrics", ContainerPort: 8443}))
	var svc corev1.Service
	convert(t, deploytest.Find(objs, "Service")[0], &svc)
	g.Expect(svc.Spec.Ports).To(HaveLen(1))
	g.Expect(svc.Spec.Ports[0].TargetPort.StrVal).To(Equal("https-metrics"))
	for k, v := range svc.Spec.Selector {
		g.Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue(k, v))
	}
}

func names(objs []*unstructured.Unstructured, kind string) []string {
	var out []string
	for _, o := range deploytest.Find(objs, kind) {
		out = append(out, o.GetName())
	}
	return out
}

// find returns the one object of kind in namespace whose name ends with suffix.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, namespace, suffix string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range deploytest.Find(objs, kind) {
		if o.GetNamespace() == namespace && strings.HasSuffix(o.GetName(), suffix) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s named *%s in namespace %q, want 1", len(found), kind, suffix, namespace)
	}
	return found[0]
}

func convert(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}

// rules returns the rules of the role of that kind and "namespace/name" (or
// name, for a ClusterRole).
func rules(t *testing.T, objs []*unstructured.Unstructured, kind, key string) []rbacv1.PolicyRule {
	t.Helper()
	namespace, name, ok := strings.Cut(key, "/")
	if !ok {
		namespace, name = "", key
	}
	for _, o := range deploytest.Find(objs, kind) {
		if o.GetNamespace() != namespace || o.GetName() != name {
			continue
		}
		var r struct {
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		convert(t, o, &r)
		return r.Rules
	}
	t.Fatalf("no %s %s", kind, key)
	return nil
}

// The admin's credential provider configuration reaches the controller as
// a folder it reads with the kubelet's rules: kustomize ships it empty (no
// plugins), Helm renders its providers value into config.yaml, and the
// audiences of their tokenAttributes into token-audiences.
func TestCredentialProviderConfigIsTheAdmins(t *testing.T) {
	g := NewWithT(t)
	values := filepath.Join(t.TempDir(), "values.yaml")
	g.Expect(os.WriteFile(values, []byte(`credentialProviders:
  providers:
    - name: ecr-credential-provider
      matchImages: ["*.dkr.ecr.*.amazonaws.com"]
      defaultCacheDuration: 12h
      apiVersion: credentialprovider.kubelet.k8s.io/v1
      tokenAttributes:
        serviceAccountTokenAudience: sts.amazonaws.com
        cacheType: ServiceAccount
        requireServiceAccount: true
        requiredServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"]
    - name: acr-credential-provider
      matchImages: ["*.azurecr.io"]
      defaultCacheDuration: 10m
      apiVersion: credentialprovider.kubelet.k8s.io/v1
      args: ["/etc/kubernetes/azure.json"]
`), 0o600)).To(Succeed())
	for name, objs := range map[string][]*unstructured.Unstructured{
		"kustomize": deploytest.Decode(t, deploytest.Kustomize(t, "config/default")),
		"helm":      deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-system", "-f", values)),
	} {
		var dep appsv1.Deployment
		convert(t, deploytest.Find(objs, "Deployment")[0], &dep)
		ctr := dep.Spec.Template.Spec.Containers[0]
		g.Expect(ctr.Args).To(ContainElement("--credential-provider-config=/etc/pullsecrets/credential-providers"), name)
		g.Expect(ctr.VolumeMounts).To(ContainElement(HaveField("MountPath", "/etc/pullsecrets/credential-providers")), name)
		g.Expect(dep.Spec.Template.Spec.Volumes).To(ContainElement(HaveField("ConfigMap.Name", "pullsecrets-credential-providers")), name)

		var cm corev1.ConfigMap
		convert(t, find(t, objs, "ConfigMap", "pullsecrets-system", "pullsecrets-credential-providers"), &cm)
		dir := t.TempDir()
		for k, v := range cm.Data {
			g.Expect(os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600)).To(Succeed())
		}
		cfg, err := credprovider.LoadConfig(dir)
		if name == "kustomize" {
			g.Expect(err).To(MatchError(credprovider.ErrNoConfigFiles), "kustomize ships no plugins")
			g.Expect(cm.Data["token-audiences"]).To(BeEmpty())
			continue
		}
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(cfg.Names()).To(Equal([]string{"acr-credential-provider", "ecr-credential-provider"}))
		g.Expect(strings.TrimSpace(cm.Data["token-audiences"])).To(Equal(strings.Join(cfg.Audiences(), "\n")))
	}
}
