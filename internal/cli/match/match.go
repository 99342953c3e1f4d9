// Package match is `kubectl pullsecrets match`: which credentials the
// kubelet would send for an image, in which order, from pull secrets in
// files, in a namespace, on a ServiceAccount or on a Pod.
package match

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
)

const example = `  # Which credentials does a Pod of the default ServiceAccount send for these images?
  kubectl pullsecrets match nginx ghcr.io/acme/app:1.4 -n team-a --service-account default

  # Why does this Pod's pull fail? Check the images against its own pull secrets.
  kubectl pullsecrets match registry.example.com/team/app:2 -n team-a --pod app-7d9f-x2x4z

  # Named Secrets, in the order a Pod would list them.
  kubectl pullsecrets match quay.io/acme/etcd -n team-a --secret quay-robot --secret regcred

  # Secret manifests, before they reach a cluster; JSON for scripts.
  kubectl pullsecrets match ghcr.io/acme/app --secret-file deploy/pull-secret.yaml -o json

  # Does the registry accept them? Ask it, with the credentials in the kubelet's order.
  kubectl pullsecrets match registry.example.com/team/app:2 --secret-file deploy/pull-secret.yaml --verify`

// Options are the flags and arguments of match, completed, validated and
// run in that order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	secretFiles    []string
	secretNames    []string
	serviceAccount string
	pod            string
	out            *cmdutil.Output
	verify         bool
	vflags         cmdutil.VerifyFlags

	images []string
	// fileNamespace is the namespace of file Secrets that set none: -n
	// when given, else "default", as kubectl apply places them.
	fileNamespace string
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams, out: cmdutil.NewOutput(false, "text")}
}

// NewCommand returns the `match` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "match IMAGE... (--secret-file FILE... | --secret NAME... | --service-account SA | --pod POD) [--verify] [-o wide|json|yaml|name|jsonpath=...]",
		Short: "Show which pull secret credentials the kubelet would send for images, in order",
		Long: `For each IMAGE, show the credentials the kubelet would try, in its order
(Secret, registry key as written, username; never a password), or why no key
matches; then what is wrong with the pull secrets. The answer is the kubelet's
(Kubernetes 1.37): the same Secret types, keys, normalisation, glob, port and
path rules, order, and Docker Hub fallback. The node's own credentials and
credential provider plugins, which the kubelet tries after these, are not
known here.

The pull secrets come from exactly one of:
  --secret-file FILE   Secret manifests (YAML or JSON, several documents, kind
                       List; stringData included), in the order given. Secrets
                       without a namespace are in -n, else "default". A file
                       over ` + readlimit.MiB(readlimit.MaxFileBytes) + `, or files over ` + readlimit.MiB(readlimit.MaxTotalBytes) + ` together, are
                       not read.
  --secret NAME        Secrets of the namespace, in the order given.
  --service-account SA what the ServiceAccount lists: the pull secrets of a Pod
                       created now with it and no imagePullSecrets of its own.
  --pod POD            what the Pod lists, which is what its kubelet reads.
A Secret the namespace does not hold is skipped, as the kubelet skips it.

With --verify, each registry is asked for each image's manifest (never a
layer) with exactly those credentials, in that order, until one works, or
without credentials when none matches, as the kubelet would pull it; the
answer (ok and the digest with the credential that worked, or unauthorized,
forbidden, not-found, unreachable, tls-error, timeout and why) follows each
image. The check runs from here, not from the node. Passwords are never
shown.

The report goes to stdout and its summary line to stderr; -o json|yaml|
jsonpath prints it as one object (credentials as {secret, registry,
username}, as doctor and status print them), -o name the pull secrets that
give an image a credential.

Exit status: 0 when every image has a credential, no pull secret has an
error and, with --verify, every registry check succeeded; 1 otherwise (or
when the pull secrets cannot be read); 2 for a wrong command line.`,
		Example: example,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.secretFiles, "secret-file", nil, "a file of Secret manifests (repeatable)")
	fl.StringArrayVar(&o.secretNames, "secret", nil, "the name of a Secret in the namespace (repeatable)")
	fl.StringVar(&o.serviceAccount, "service-account", "", "a ServiceAccount whose imagePullSecrets to use")
	fl.StringVar(&o.pod, "pod", "", "a Pod whose imagePullSecrets to use")
	fl.BoolVar(&o.verify, "verify", false, "ask the registries, with the credentials the kubelet would send, in its order")
	cmdutil.AddVerifyFlags(cmd, &o.vflags)
	o.out.AddFlags(cmd)
	registerCompletions(cmd, f)
	return cmd
}

// Complete takes the images from the arguments and the namespace of file
// Secrets from -n. It reads no kubeconfig: the file form needs none.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	o.images = args
	o.fileNamespace = "default"
	if fl := cmd.Flag("namespace"); fl != nil && fl.Changed {
		o.fileNamespace = fl.Value.String()
	}
	return nil
}

// Validate checks the command line before any work: exactly one source of
// pull secrets, valid names, at least one valid image.
func (o *Options) Validate(cmd *cobra.Command) error {
	var forms []string
	if len(o.secretFiles) > 0 {
		forms = append(forms, "--secret-file")
	}
	if len(o.secretNames) > 0 {
		forms = append(forms, "--secret")
	}
	if cmd.Flag("service-account").Changed {
		forms = append(forms, "--service-account")
	}
	if cmd.Flag("pod").Changed {
		forms = append(forms, "--pod")
	}
	switch len(forms) {
	case 0:
		return cmdutil.UsageErrorf(cmd, "give the pull secrets with one of --secret-file, --secret, --service-account or --pod")
	case 1:
	default:
		return cmdutil.UsageErrorf(cmd, "give the pull secrets with only one of %s", strings.Join(forms, ", "))
	}
	if len(o.images) == 0 {
		return cmdutil.UsageErrorf(cmd, "match needs at least one IMAGE")
	}
	for _, image := range o.images {
		if _, err := reference.ParseNormalizedNamed(image); err != nil {
			return cmdutil.UsageErrorf(cmd, "invalid image reference %q: %v", image, err)
		}
	}
	if err := o.out.Validate(cmd); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Label(o.fileNamespace); len(errs) > 0 {
		return cmdutil.UsageErrorf(cmd, "invalid namespace %q: %s", o.fileNamespace, errs[0])
	}
	for i, n := range o.secretNames {
		var err error
		if o.secretNames[i], err = cmdutil.ParseName(cmd, n, "Secret"); err != nil {
			return err
		}
	}
	var err error
	if cmd.Flag("service-account").Changed {
		if o.serviceAccount, err = cmdutil.ParseName(cmd, o.serviceAccount, "ServiceAccount"); err != nil {
			return err
		}
	}
	if cmd.Flag("pod").Changed {
		if o.pod, err = cmdutil.ParseName(cmd, o.pod, "Pod"); err != nil {
			return err
		}
	}
	return nil
}

// Run reads the pull secrets, evaluates each image, asks the registries
// with --verify, and prints the report.
func (o *Options) Run(ctx context.Context) error {
	var vopts registrycheck.Options
	if o.verify {
		var err error
		if vopts, err = o.vflags.Options(); err != nil {
			return err
		}
	}
	source, secrets, err := o.pullSecrets(ctx)
	if err != nil {
		return err
	}
	r, err := evaluate(source, secrets, o.images)
	if err != nil {
		return err
	}
	if o.verify {
		r.verify(ctx, vopts)
	}
	switch {
	case o.out.Structured():
		err = o.out.PrintObject(toReport(r), o.streams.Out)
	case o.out.Name():
		err = cmdutil.PrintNames(names(r), o.streams.Out)
	default:
		err = printText(o.streams.Out, o.streams.ErrOut, r)
	}
	if err != nil {
		return err
	}
	if !r.ok() {
		return cmdutil.ErrProblemsFound
	}
	return nil
}

// pullSecrets reads the pull secrets from the one source given, and
// describes it.
func (o *Options) pullSecrets(ctx context.Context) (string, []pullSecret, error) {
	if len(o.secretFiles) > 0 {
		secrets, err := readSecretFiles(o.secretFiles, o.fileNamespace)
		return "from --secret-file", secrets, err
	}
	ns, _, err := o.factory.Namespace()
	if err != nil {
		return "", nil, err
	}
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return "", nil, err
	}
	names, source := o.secretNames, "named with --secret in namespace "+ns
	switch {
	case o.serviceAccount != "":
		source = fmt.Sprintf("of ServiceAccount %s/%s", ns, o.serviceAccount)
		names, err = serviceAccountPullSecrets(ctx, client, ns, o.serviceAccount)
	case o.pod != "":
		source = fmt.Sprintf("of Pod %s/%s", ns, o.pod)
		names, err = podPullSecrets(ctx, client, ns, o.pod)
	}
	if err != nil {
		return "", nil, err
	}
	secrets, err := readSecrets(ctx, client, ns, names)
	return source, secrets, err
}

// registerCompletions completes flag values: files by extension, names
// from the namespace.
func registerCompletions(cmd *cobra.Command, f cmdutil.Factory) {
	_ = cmd.RegisterFlagCompletionFunc("secret-file", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml", "json"}, cobra.ShellCompDirectiveFilterFileExt
	})
	complete := func(list func(ctx context.Context, ns string) ([]string, error)) cobra.CompletionFunc {
		return func(c *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			ns, _, err := f.Namespace()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			names, err := list(ctx, ns)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, n := range names {
				if strings.HasPrefix(n, toComplete) {
					out = append(out, n)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = cmd.RegisterFlagCompletionFunc("secret", complete(func(ctx context.Context, ns string) ([]string, error) {
		meta, err := f.MetadataClient()
		if err != nil {
			return nil, err
		}
		return cmdutil.PullSecretNames(ctx, meta, ns)
	}))
	_ = cmd.RegisterFlagCompletionFunc("service-account", complete(func(ctx context.Context, ns string) ([]string, error) {
		client, err := f.KubernetesClient()
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(list.Items))
		for _, sa := range list.Items {
			names = append(names, sa.Name)
		}
		return names, nil
	}))
	_ = cmd.RegisterFlagCompletionFunc("pod", complete(func(ctx context.Context, ns string) ([]string, error) {
		client, err := f.KubernetesClient()
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(list.Items))
		for _, p := range list.Items {
			names = append(names, p.Name)
		}
		return names, nil
	}))
}
