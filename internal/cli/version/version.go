// Package version is `kubectl pullsecrets version`: the plugin's own build,
// and the version of the controller the cluster runs, read from its
// Deployment (what a user with the built-in view role may read).
package version

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	buildversion "github.com/pullsecrets/pullsecrets/internal/version"
)

// ControllerSelector selects the controller's Deployment, in both the
// kustomize tree and the Helm chart.
const ControllerSelector = "app.kubernetes.io/name=pullsecrets,app.kubernetes.io/component=controller"

// DefaultControllerNamespace is where config/default installs the controller,
// tried when Deployments cannot be listed in every namespace.
const DefaultControllerNamespace = "pullsecrets-system"

const example = `  # The plugin's version and the controller's, for a bug report
  kubectl pullsecrets version

  # The plugin's only, without a cluster
  kubectl pullsecrets version --client -o json`

// Options are the flags of `version`.
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	client bool
	output string
}

// NewCommand returns the `version` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{factory: f, streams: streams}
	cmd := &cobra.Command{
		Use:   "version [--client] [-o json|yaml]",
		Short: "Print the plugin's version and the controller's",
		Long: `Print the version of this plugin (version, git commit, commit date, Go
release, platform) and of the pullsecrets controller in the cluster.

The controller's version is read from its Deployment (labelled
` + ControllerSelector + `), which the
built-in view role may read: its app.kubernetes.io/version label, else the
Helm chart label (helm.sh/chart), else the image tag. Deployments are looked
for in every namespace, or in -n NAMESPACE; when listing every namespace is
forbidden, in ` + DefaultControllerNamespace + `. A cluster that cannot be read is reported,
not an error: the exit status is 0 unless the command line is wrong.`,
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.client, "client", false, "the plugin's version only; do not read the cluster")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json or yaml (default: text)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Validate checks the command line.
func (o *Options) Validate(cmd *cobra.Command) error {
	if !slices.Contains([]string{"", "json", "yaml"}, o.output) {
		return cmdutil.UsageErrorf(cmd, "unknown output format %q: use json or yaml", o.output)
	}
	return nil
}

// Report is what `version` prints; -o json prints it as is.
type Report struct {
	ClientVersion buildversion.Info `json:"clientVersion"`
	// Controllers are the controller Deployments found (usually one);
	// omitted with --client.
	Controllers []Controller `json:"controllers,omitempty"`
	// ControllerError says why the controller's version is unknown.
	ControllerError string `json:"controllerError,omitempty"`
}

// Controller is one controller Deployment and the version it runs.
type Controller struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Version is the controller's version, without a leading v; empty when
	// nothing on the Deployment says it.
	Version string `json:"version,omitempty"`
	// VersionFrom says where Version was read.
	VersionFrom string `json:"versionFrom,omitempty"`
	// Image is the controller container's image reference.
	Image         string `json:"image,omitempty"`
	Replicas      int32  `json:"replicas"`
	ReadyReplicas int32  `json:"readyReplicas"`
}

// Run reads the cluster (unless --client) and prints the report.
func (o *Options) Run(ctx context.Context) error {
	r := Report{ClientVersion: buildversion.Get()}
	if !o.client {
		r.Controllers, r.ControllerError = o.controllers(ctx)
	}
	switch o.output {
	case "json":
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "yaml":
		out, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = o.streams.Out.Write(out)
		return err
	}
	return printText(o.streams.Out, r, o.client)
}

// controllers lists the controller Deployments, or says why it cannot.
func (o *Options) controllers(ctx context.Context) ([]Controller, string) {
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return nil, err.Error()
	}
	ns, explicit, err := o.factory.Namespace()
	if err != nil {
		return nil, err.Error()
	}
	list := func(namespace string) (*appsv1.DeploymentList, error) {
		l, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{LabelSelector: ControllerSelector})
		if err != nil {
			where := "in every namespace"
			if namespace != "" {
				where = "in namespace " + namespace
			}
			return nil, fmt.Errorf("list Deployments %s: %w", where, err)
		}
		return l, nil
	}
	if !explicit {
		ns = ""
	}
	deps, err := list(ns)
	if err != nil && ns == "" && apierrors.IsForbidden(err) {
		deps, err = list(DefaultControllerNamespace)
	}
	if err != nil {
		return nil, err.Error()
	}
	out := []Controller{}
	for i := range deps.Items {
		out = append(out, FromDeployment(&deps.Items[i]))
	}
	slices.SortFunc(out, func(a, b Controller) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if len(out) == 0 {
		where := "in any namespace"
		if ns != "" {
			where = "in namespace " + ns
		}
		return out, "no controller Deployment (" + ControllerSelector + ") " + where
	}
	return out, ""
}

// FromDeployment reads the controller's version from its Deployment: the
// app.kubernetes.io/version label, else the Helm chart label
// (helm.sh/chart: pullsecrets-VERSION), else the controller image's tag.
func FromDeployment(d *appsv1.Deployment) Controller {
	c := Controller{Namespace: d.Namespace, Name: d.Name, ReadyReplicas: d.Status.ReadyReplicas, Replicas: 1}
	if d.Spec.Replicas != nil {
		c.Replicas = *d.Spec.Replicas
	}
	if containers := d.Spec.Template.Spec.Containers; len(containers) > 0 {
		c.Image = containers[0].Image
		for _, ctr := range containers {
			if ctr.Name == "controller" {
				c.Image = ctr.Image
			}
		}
	}
	switch {
	case d.Labels["app.kubernetes.io/version"] != "":
		c.Version, c.VersionFrom = d.Labels["app.kubernetes.io/version"], "label app.kubernetes.io/version"
	case strings.HasPrefix(d.Labels["helm.sh/chart"], "pullsecrets-"):
		c.Version, c.VersionFrom = strings.TrimPrefix(d.Labels["helm.sh/chart"], "pullsecrets-"), "label helm.sh/chart"
	default:
		if tag := imageTag(c.Image); tag != "" && tag != "latest" {
			c.Version, c.VersionFrom = tag, "image tag"
		}
	}
	c.Version = strings.TrimPrefix(c.Version, "v")
	return c
}

// imageTag returns the tag of an image reference (registry:port/repo:tag@digest), or "".
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndexByte(image, '/')
	colon := strings.LastIndexByte(image, ':')
	if colon <= slash {
		return ""
	}
	return image[colon+1:]
}

func printText(w io.Writer, r Report, clientOnly bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Client:     %s\n", r.ClientVersion)
	if !clientOnly {
		for _, c := range r.Controllers {
			v, from := c.Version, "version from "+c.VersionFrom
			if v == "" {
				v, from = "unknown", "no label or image tag says the version"
			}
			fmt.Fprintf(&b, "Controller: %s (Deployment %s/%s, %d/%d ready, image %s, %s)\n",
				v, c.Namespace, c.Name, c.ReadyReplicas, c.Replicas, c.Image, from)
		}
		if r.ControllerError != "" {
			fmt.Fprintf(&b, "Controller: unknown: %s\n", r.ControllerError)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
