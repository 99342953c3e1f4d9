package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pullsecrets/pullsecrets/internal/testing/controlplane"
)

// TestLabel is set on every namespace made by Namespace, with the test's
// name as its value, so that cluster-wide tests can select their own.
const TestLabel = "pullsecrets.dev/test"

var invalidNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a fresh namespace for the test, with a `default`
// ServiceAccount ready (made by kube-controller-manager when it runs, by us
// otherwise), and deletes it when the test passes. Extra labels are added to
// the namespace.
func (c *Cluster) Namespace(t testing.TB, labels ...map[string]string) string {
	t.Helper()
	ctx := context.Background()
	name := namespaceName(t.Name())
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{TestLabel: labelValue(t.Name())},
	}}
	for _, l := range labels {
		for k, v := range l {
			ns.Labels[k] = v
		}
	}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept namespace %s of the failed test", name)
			return
		}
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	if !c.ControllerManager {
		if err := controlplane.EnsureDefaultServiceAccount(ctx, c.Client, name); err != nil {
			t.Fatal(err)
		}
		return name
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("wait for ServiceAccount %s/default: %v", name, err)
	}
	return name
}

// namespaceName turns a test name into a unique, valid namespace name.
func namespaceName(testName string) string {
	base := invalidNameChars.ReplaceAllString(strings.ToLower(testName), "-")
	base = strings.Trim(base, "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	suffix := make([]byte, 6) // 1,000 namespaces in a test: 3 bytes collided 3% of the time
	_, _ = rand.Read(suffix)
	return "t-" + base + "-" + hex.EncodeToString(suffix)
}

func labelValue(testName string) string {
	v := invalidNameChars.ReplaceAllString(strings.ToLower(testName), "-")
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.Trim(v, "-")
}
