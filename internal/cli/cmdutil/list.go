package cmdutil

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PageSize is the Limit of each page of a paged LIST, kubectl's
// --chunk-size default.
const PageSize = 500

// ListPods lists the Pods of namespace ("" for all) whose labels match
// selector ("" for all), page by page (Limit and Continue), so that a
// cluster with many Pods is never read in one answer, and calls keep for
// each.
func ListPods(ctx context.Context, client kubernetes.Interface, namespace, selector string, keep func(*corev1.Pod)) error {
	opts := metav1.ListOptions{Limit: PageSize, LabelSelector: selector}
	for {
		page, err := client.CoreV1().Pods(namespace).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list Pods%s: %w", inNamespace(namespace), err)
		}
		for i := range page.Items {
			keep(&page.Items[i])
		}
		if page.Continue == "" {
			return nil
		}
		opts.Continue = page.Continue
	}
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in " + ns
}
