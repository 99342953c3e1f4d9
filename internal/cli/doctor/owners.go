package doctor

import (
	"context"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/diagnose"
)

// clusterPullSecrets reads the ClusterPullSecrets whose status dates the
// tokens of refused copies, once each. One it may not read leaves their
// expiry unknown, never an error.
type clusterPullSecrets struct {
	factory cmdutil.Factory
	errOut  io.Writer
	client  dynamic.Interface
	read    map[string]diagnose.Owner
}

var clusterPullSecretsResource = v1alpha1.GroupVersion.WithResource("clusterpullsecrets")

// get reads the names not read yet.
func (c *clusterPullSecrets) get(ctx context.Context, names []string) {
	for _, name := range names {
		if _, done := c.read[name]; done {
			continue
		}
		cps, err := c.getOne(ctx, name)
		switch {
		case apierrors.IsNotFound(err): // or no such resource: the CRD is not installed
			c.read[name] = diagnose.Owner{Gone: true}
			continue
		case apierrors.IsForbidden(err):
		case err != nil:
			fmt.Fprintf(c.errOut, "warning: ClusterPullSecret %s not read (%v): the expiry of its copies is unknown\n", name, err)
		}
		c.read[name] = diagnose.Owner{Object: cps}
	}
}

func (c *clusterPullSecrets) getOne(ctx context.Context, name string) (*v1alpha1.ClusterPullSecret, error) {
	if c.client == nil {
		cfg, err := c.factory.ToRESTConfig()
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig: %w", err)
		}
		if c.client, err = dynamic.NewForConfig(cfg); err != nil {
			return nil, err
		}
	}
	u, err := c.client.Resource(clusterPullSecretsResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cps := &v1alpha1.ClusterPullSecret{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, cps); err != nil {
		return nil, fmt.Errorf("decode ClusterPullSecret %s: %w", name, err)
	}
	return cps, nil
}
