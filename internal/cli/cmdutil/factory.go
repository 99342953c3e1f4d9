package cmdutil

import (
	"fmt"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// Factory gives subcommands their clients, built from the standard kubectl
// flags (--kubeconfig, --context, -n, ...), and nothing else: no global state.
type Factory interface {
	genericclioptions.RESTClientGetter
	// KubernetesClient returns a typed clientset.
	KubernetesClient() (kubernetes.Interface, error)
	// MetadataClient returns a client that reads objects' metadata only
	// (PartialObjectMetadata), for when presence is all that matters.
	MetadataClient() (metadata.Interface, error)
	// Namespace returns the namespace from -n or the kubeconfig context,
	// and whether it was set explicitly.
	Namespace() (string, bool, error)
}

// NewFactory returns a Factory over a RESTClientGetter, usually
// *genericclioptions.ConfigFlags.
func NewFactory(getter genericclioptions.RESTClientGetter) Factory {
	return &factory{RESTClientGetter: getter}
}

type factory struct {
	genericclioptions.RESTClientGetter
}

func (f *factory) KubernetesClient() (kubernetes.Interface, error) {
	cfg, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func (f *factory) MetadataClient() (metadata.Interface, error) {
	cfg, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	return metadata.NewForConfig(cfg)
}

func (f *factory) restConfig() (*rest.Config, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	// Commands that work across hundreds of namespaces should be limited by
	// the API server's priority and fairness, not by client-go's default of
	// 5 requests per second.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

func (f *factory) Namespace() (string, bool, error) {
	ns, explicit, err := f.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", false, fmt.Errorf("resolve namespace: %w", err)
	}
	return ns, explicit, nil
}
