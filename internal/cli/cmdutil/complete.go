package cmdutil

import (
	"context"
	"slices"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/metadata"
)

// CompleteServiceAccounts completes ServiceAccount names of the namespace.
func CompleteServiceAccounts(f Factory) cobra.CompletionFunc {
	return completeNames(f, func(ctx context.Context, f Factory, ns string) ([]string, error) {
		client, err := f.KubernetesClient()
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{Limit: PageSize})
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(list.Items))
		for _, sa := range list.Items {
			out = append(out, sa.Name)
		}
		return out, nil
	})
}

// CompletePullSecrets completes the names of the namespace's pull secrets
// (kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg Secrets).
func CompletePullSecrets(f Factory) cobra.CompletionFunc {
	return completeNames(f, func(ctx context.Context, f Factory, ns string) ([]string, error) {
		meta, err := f.MetadataClient()
		if err != nil {
			return nil, err
		}
		return PullSecretNames(ctx, meta, ns)
	})
}

// PullSecretNames lists the names of the namespace's pull secrets (first
// page of each type): one metadata-only LIST per type, so that no Secret
// data is read to learn names.
func PullSecretNames(ctx context.Context, meta metadata.Interface, ns string) ([]string, error) {
	var out []string
	for _, t := range []corev1.SecretType{corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg} {
		list, err := meta.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("type", string(t)).String(), Limit: PageSize,
		})
		if err != nil {
			return nil, err
		}
		for _, s := range list.Items {
			out = append(out, s.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

func completeNames(f Factory, list func(ctx context.Context, f Factory, ns string) ([]string, error)) cobra.CompletionFunc {
	return func(c *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ns, _, err := f.Namespace()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := c.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		names, err := list(ctx, f, ns)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
