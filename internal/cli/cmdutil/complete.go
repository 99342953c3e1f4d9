package cmdutil

import (
	"context"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		client, err := f.KubernetesClient()
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{Limit: PageSize})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range list.Items {
			if s.Type == "kubernetes.io/dockerconfigjson" || s.Type == "kubernetes.io/dockercfg" {
				out = append(out, s.Name)
			}
		}
		return out, nil
	})
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
