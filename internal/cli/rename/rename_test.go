package rename_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{})
}

func refs(names ...string) []corev1.LocalObjectReference {
	out := []corev1.LocalObjectReference{}
	for _, n := range names {
		out = append(out, corev1.LocalObjectReference{Name: n})
	}
	return out
}

func saList(t *testing.T, client kubernetes.Interface, ns, name string) []corev1.LocalObjectReference {
	t.Helper()
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sa.ImagePullSecrets == nil {
		return []corev1.LocalObjectReference{}
	}
	return sa.ImagePullSecrets
}

// fixture: Secret regcred; ServiceAccounts default [theirs, regcred] and
// builder [regcred]; Deployment web whose template lists regcred; a live
// bare Pod listing regcred.
func fixture(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred", Labels: map[string]string{"team": "shop"},
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"dTpw"}}}`)}}
	must(t, func() error {
		_, err := client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
		return err
	})
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	must(t, func() error { return err })
	sa.ImagePullSecrets = refs("theirs", "regcred")
	must(t, func() error {
		_, err := client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
		return err
	})
	builder := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder"}, ImagePullSecrets: refs("regcred")}
	must(t, func() error {
		_, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, builder, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				ImagePullSecrets: refs("other", "regcred"), Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web"}}}}},
	}
	must(t, func() error {
		_, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
		return err
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "runner"},
		Spec: corev1.PodSpec{ImagePullSecrets: refs("regcred"), Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/runner"}}}}
	must(t, func() error { _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); return err })
}

func must(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func TestRenameInTheControllersOrder(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	fixture(t, c.Client, ns)

	dry := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns, "--update-workloads", "--dry-run=server")
	g.Expect(dry.Code).To(Equal(0), dry.Stderr)
	g.Expect(saList(t, c.Client, ns, "default")).To(Equal(refs("theirs", "regcred")), "a dry run changes nothing")
	_, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "registry-creds", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

	res := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns, "--update-workloads")
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal(`secret/registry-creds created (copy of regcred)
serviceaccount/builder regcred -> registry-creds
serviceaccount/default regcred -> registry-creds
deployment.apps/web patched (regcred -> registry-creds): this starts a rollout
secret/regcred kept: still used by Pod runner; run this again once nothing uses it
`))
	g.Expect(saList(t, c.Client, ns, "default")).To(Equal(refs("theirs", "registry-creds")), "in place, others kept")
	g.Expect(saList(t, c.Client, ns, "builder")).To(Equal(refs("registry-creds")))
	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dep.Spec.Template.Spec.ImagePullSecrets).To(Equal(refs("other", "registry-creds")))
	cp, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "registry-creds", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cp.Labels).To(HaveKeyWithValue("team", "shop"))
	g.Expect(cp.Annotations).NotTo(HaveKey("kubectl.kubernetes.io/last-applied-configuration"))

	g.Expect(c.Client.CoreV1().Pods(ns).Delete(ctx, "runner", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})).To(Succeed())
	again := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns, "--update-workloads")
	g.Expect(again.Code).To(Equal(0), again.Stderr)
	g.Expect(again.Stdout).To(Equal("secret/registry-creds unchanged\nsecret/regcred deleted\n"))
	_, err = c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

	gone := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns)
	g.Expect(gone.Code).To(Equal(1))
	g.Expect(gone.Stderr).To(ContainSubstring("not found"))
}

func TestRenameRefusals(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)

	managed := c.Namespace(t)
	copyOf := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managed, Name: "regcred",
		Labels: map[string]string{"app.kubernetes.io/managed-by": "pullsecrets", "pullsecrets.dev/cluster-pull-secret": "registry-example-com"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}
	_, err := c.Client.CoreV1().Secrets(managed).Create(ctx, copyOf, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	res := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "-n", managed)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(ContainSubstring("is a copy made by ClusterPullSecret registry-example-com: change its spec.secretName instead"))

	clash := c.Namespace(t)
	fixture(t, c.Client, clash)
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: clash, Name: "new"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"other.example.com":{"auth":"dTpw"}}}`)}}
	_, err = c.Client.CoreV1().Secrets(clash).Create(ctx, other, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	res = clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "-n", clash)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(Equal("error: secret " + clash + "/new exists and holds other credentials than regcred; nothing was written\n"))
	g.Expect(saList(t, c.Client, clash, "default")).To(Equal(refs("theirs", "regcred")))

	keep := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "kept", "-n", clash, "--keep-old")
	g.Expect(keep.Code).To(Equal(0), keep.Stderr)
	g.Expect(keep.Stdout).To(ContainSubstring("secret/regcred kept: --keep-old\n"))

	usage := clitest.Run(t, c.Kubeconfig, "", "rename", "same", "same")
	g.Expect(usage.Code).To(Equal(2))
}

// TestRenameKeepsASecretTemplatesStillUse: a Deployment at zero replicas,
// a StatefulSet, a DaemonSet, a running Job, a CronJob, a
// ReplicationController whose templates list OLD, or a Pod that mounts it,
// hold OLD: rename keeps it, says what holds it and how to finish, and
// deletes it once nothing does.
func TestRenameKeepsASecretTemplatesStillUse(t *testing.T) {
	c := testcluster.Get(t)
	ctx := testcluster.Context(t)
	labels := map[string]string{"app": "web"}
	spec := func() corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyAlways, ImagePullSecrets: refs("regcred"), Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/c"}}}}
	}
	jobSpec := func() corev1.PodTemplateSpec {
		t := spec()
		t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		return t
	}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	tests := []struct {
		name, holder string
		make         func(ns string) error
	}{
		{"deployment at zero replicas", "Deployment web", func(ns string) error {
			_, err := c.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0)), Selector: sel, Template: spec()}}, metav1.CreateOptions{})
			return err
		}},
		{"statefulset", "StatefulSet db", func(ns string) error {
			_, err := c.Client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
				Spec: appsv1.StatefulSetSpec{Selector: sel, Template: spec()}}, metav1.CreateOptions{})
			return err
		}},
		{"daemonset", "DaemonSet agent", func(ns string) error {
			tpl := spec()
			_, err := c.Client.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
				Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tpl}}, metav1.CreateOptions{})
			return err
		}},
		{"running job", "Job migrate", func(ns string) error {
			_, err := c.Client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
				Spec: batchv1.JobSpec{Template: jobSpec()}}, metav1.CreateOptions{})
			return err
		}},
		{"cronjob", "CronJob nightly", func(ns string) error {
			_, err := c.Client.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
				Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobSpec()}}}}, metav1.CreateOptions{})
			return err
		}},
		{"replicationcontroller", "ReplicationController legacy", func(ns string) error {
			tpl := spec()
			_, err := c.Client.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
				Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To(int32(0)), Selector: labels, Template: &tpl}}, metav1.CreateOptions{})
			return err
		}},
		{"pod mounting it", "Pod mounter", func(ns string) error {
			_, err := c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "mounter"}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "c", Image: "nginx"}},
				Volumes:    []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "regcred"}}}}}}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := c.Namespace(t)
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
				Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"dTpw"}}}`)}}
			_, err := c.Client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(tt.make(ns)).To(Succeed())

			res := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns)
			g.Expect(res.Code).To(Equal(0), res.Stderr)
			g.Expect(res.Stdout).To(ContainSubstring("secret/regcred kept: still used by " + tt.holder))
			g.Expect(res.Stdout).To(ContainSubstring("run this again once nothing uses it\n"))
			g.Expect(res.Stdout).NotTo(ContainSubstring("deleted"))
			_, err = c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred(), "the Secret a template or Pod still uses is kept")
		})
	}
}

// TestRenameZeroReplicasThenUpdateWorkloads: the story. A
// Deployment at zero replicas lists OLD: rename keeps OLD and says how to
// finish; with --update-workloads the template is repointed and OLD, used
// by nothing any more, is deleted.
func TestRenameZeroReplicasThenUpdateWorkloads(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"dTpw"}}}`)}}
	_, err := c.Client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				ImagePullSecrets: refs("regcred"), Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web"}}}}}}
	_, err = c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	res := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal(`secret/registry-creds created (copy of regcred)
secret/regcred kept: still used by Deployment web (Deployment web lists it inline: --update-workloads repoints it); run this again once nothing uses it
`))
	_, err = c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	done := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns, "--update-workloads", "-o", "name")
	g.Expect(done.Code).To(Equal(0), done.Stderr)
	g.Expect(done.Stderr).To(Equal(`secret/registry-creds unchanged
deployment.apps/web patched (regcred -> registry-creds): this starts a rollout
secret/regcred deleted
`))
	g.Expect(done.Stdout).To(Equal("deployment.apps/web\nsecret/regcred\n"))
	got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Spec.Template.Spec.ImagePullSecrets).To(Equal(refs("registry-creds")))
	_, err = c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

// TestRenameIsAllOrNothingAcrossNamespaces: when one namespace cannot be
// renamed (NEW holds other credentials there), no namespace is changed.
// -l selects the Secrets OLD by label.
func TestRenameIsAllOrNothingAcrossNamespaces(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	team := "rename-" + rand.String(6)
	good := c.Namespace(t, map[string]string{"team": team})
	bad := c.Namespace(t, map[string]string{"team": team})
	fixture(t, c.Client, good)
	fixture(t, c.Client, bad)
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: bad, Name: "new"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"other.example.com":{"auth":"dTpw"}}}`)}}
	_, err := c.Client.CoreV1().Secrets(bad).Create(ctx, other, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	res := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "--namespace-selector", "team="+team)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stdout).To(BeEmpty())
	g.Expect(res.Stderr).To(Equal("error: secret " + bad + "/new exists and holds other credentials than regcred; nothing was written\n"))
	for _, ns := range []string{good, bad} {
		g.Expect(saList(t, c.Client, ns, "default")).To(Equal(refs("theirs", "regcred")), ns)
	}
	_, err = c.Client.CoreV1().Secrets(good).Get(ctx, "new", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no copy made in the namespace that could have been renamed")

	// -l selects the Secrets OLD: only good's carries team=shop.
	labelled, err := c.Client.CoreV1().Secrets(bad).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	labelled.Labels = map[string]string{"team": "other"}
	_, err = c.Client.CoreV1().Secrets(bad).Update(ctx, labelled, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	sel := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "--namespace-selector", "team="+team, "-l", "team=shop", "--keep-old")
	g.Expect(sel.Code).To(Equal(0), sel.Stderr)
	g.Expect(sel.Stdout).To(ContainSubstring("secret/new created (copy of regcred) in namespace " + good))
	g.Expect(sel.Stdout).NotTo(ContainSubstring(bad))

	none := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "-n", good, "-l", "team=nobody")
	g.Expect(none.Code).To(Equal(1))
	g.Expect(none.Stderr).To(Equal("error: Secret regcred matching -l team=nobody not found in namespace \"" + good + "\"\n"))
	nope := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "-n", "no-such-namespace-x")
	g.Expect(nope.Code).To(Equal(1))
	g.Expect(nope.Stderr).To(Equal("error: namespace \"no-such-namespace-x\" does not exist\n"))
}
