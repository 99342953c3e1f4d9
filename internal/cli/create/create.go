// Package create is `kubectl pullsecrets create`: a docker-registry Secret
// built exactly as `kubectl create secret docker-registry` builds it (or
// from a Docker config.json, keeping only what the kubelet can use),
// labelled as ours, optionally checked against the registry first, and
// attached to ServiceAccounts, idempotently.
package create

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/registrycheck"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// ManagedByValue is the app.kubernetes.io/managed-by value of the Secrets
// the CLI makes, so that it can tell its own from others'.
const ManagedByValue = "kubectl-pullsecrets"

const example = `  # Create the Secret and attach it to the default ServiceAccount; the password
  # comes from stdin (typed without echo on a terminal), never the command line
  kubectl pullsecrets create regcred -n shop --docker-server=registry.example.com \
    --docker-username=ci-bot --docker-password-stdin --attach default < password.txt

  # Check the credentials against the registry first; nothing is written if they fail
  kubectl pullsecrets create regcred -n shop --docker-server=registry.example.com \
    --docker-username=ci-bot --docker-password-stdin --verify --verify-image registry.example.com/shop/web:1.0

  # From a Docker config.json: entries kept by a credential helper are reported and left out
  kubectl pullsecrets create regcred -n shop --from-docker-config ~/.docker/config.json --attach-all

  # For GitOps: print the manifest, send nothing
  kubectl pullsecrets create regcred -n shop --docker-server=registry.example.com \
    --docker-username=ci-bot --docker-password-stdin --dry-run=client -o yaml < password.txt`

// Options are the flags and arguments of create, completed, validated and
// run in that order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	name          string
	namespace     string
	server        string
	username      string
	password      string
	passwordStdin bool
	email         string
	dockerConfig  string
	attach        []string
	attachAll     bool
	overwrite     bool
	dryRunFlag    string
	dryRun        cmdutil.DryRun
	printFlags    *genericclioptions.PrintFlags
	verify        bool
	verifyImage   string
	force         bool
	vflags        cmdutil.VerifyFlags

	// info is where progress lines go: stdout, or stderr when -o prints
	// an object on stdout.
	info io.Writer
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{
		factory: f, streams: streams, server: credentials.DefaultServer,
		printFlags: genericclioptions.NewPrintFlags("created").WithTypeSetter(scheme.Scheme),
	}
}

// NewCommand returns the `create` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "create NAME (--docker-username USER --docker-password-stdin [--docker-server SERVER] | --from-docker-config FILE) [--attach SA... | --attach-all]",
		Short: "Create a docker-registry pull secret and attach it to ServiceAccounts",
		Long: `Create a kubernetes.io/dockerconfigjson Secret, byte for byte what
'kubectl create secret docker-registry' stores, labelled
app.kubernetes.io/managed-by=kubectl-pullsecrets, and attach it to
ServiceAccounts (--attach, --attach-all) so that every new Pod of theirs gets
it. Other entries of their imagePullSecrets are kept (read, merge, write with
the resourceVersion; retried on conflict).

Run twice, it changes nothing the second time ("unchanged"). A Secret of that
name that kubectl pullsecrets did not create is not touched unless
--overwrite is given.

--from-docker-config builds the Secret from a Docker config.json instead,
keeping only what the kubelet can use, and reports what it leaves out (entries
kept by a credential helper, tokens the kubelet ignores, empty entries).

--verify checks the credentials against the registry (--verify-image) before
anything is written, and refuses to write when the registry rejects them,
unless --force.

The password never appears in the output: -o yaml|json prints the manifest
(data included, as kubectl does) only with --dry-run=client, for GitOps.`,
		Example: example,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
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
	fl.StringVar(&o.server, "docker-server", o.server, "registry server, as in kubectl create secret docker-registry")
	fl.StringVar(&o.username, "docker-username", "", "registry username")
	fl.StringVar(&o.password, "docker-password", "", "registry password (prefer --docker-password-stdin: a flag shows in shell history and the process list)")
	fl.BoolVar(&o.passwordStdin, "docker-password-stdin", false, "read the password from stdin (without echo on a terminal)")
	fl.StringVar(&o.email, "docker-email", "", "email for the registry entry")
	fl.StringVar(&o.dockerConfig, "from-docker-config", "", "build the Secret from a Docker config.json")
	fl.StringArrayVar(&o.attach, "attach", nil, "attach the Secret to this ServiceAccount of the namespace (repeatable)")
	fl.BoolVar(&o.attachAll, "attach-all", false, "attach the Secret to every ServiceAccount of the namespace")
	fl.BoolVar(&o.overwrite, "overwrite", false, "replace the type and data of an existing Secret that kubectl pullsecrets did not create")
	fl.BoolVar(&o.verify, "verify", false, "check the credentials against the registry before writing anything")
	fl.StringVar(&o.verifyImage, "verify-image", "", "with --verify: an image the credentials must be able to pull")
	fl.BoolVar(&o.force, "force", false, "with --verify: write even when the registry check fails")
	cmdutil.AddVerifyFlags(cmd, &o.vflags)
	cmdutil.AddDryRunFlag(cmd, &o.dryRunFlag)
	o.printFlags.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("from-docker-config", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"json"}, cobra.ShellCompDirectiveFilterFileExt
	})
	_ = cmd.RegisterFlagCompletionFunc("attach", cmdutil.CompleteServiceAccounts(f))
	return cmd
}

// Complete takes the name, the namespace, the dry-run strategy and the
// password.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return cmdutil.UsageErrorf(cmd, "create needs exactly one NAME")
	}
	o.name = args[0]
	var err error
	if o.dryRun, err = cmdutil.ParseDryRun(cmd, o.dryRunFlag); err != nil {
		return err
	}
	if o.namespace, _, err = o.factory.Namespace(); err != nil {
		return err
	}
	o.info = o.streams.Out
	if o.printing() {
		o.info = o.streams.ErrOut
	}
	if o.dockerConfig != "" {
		return nil
	}
	switch {
	case cmd.Flags().Changed("docker-password") && o.passwordStdin:
		return cmdutil.UsageErrorf(cmd, "give the password with --docker-password or --docker-password-stdin, not both")
	case cmd.Flags().Changed("docker-password"):
		fmt.Fprintln(o.streams.ErrOut, "warning: --docker-password shows in shell history and the process list; prefer --docker-password-stdin")
	case o.passwordStdin || isTerminal(o.streams.In):
		p, err := readPassword(o.streams.In, o.streams.ErrOut)
		if err != nil {
			return err
		}
		o.password = p
	}
	return nil
}

// Validate checks the command line before any request.
func (o *Options) Validate(cmd *cobra.Command) error {
	if errs := validation.IsDNS1123Subdomain(o.name); len(errs) > 0 {
		return cmdutil.UsageErrorf(cmd, "invalid Secret name %q: %s", o.name, errs[0])
	}
	fromFlags := cmd.Flags().Changed("docker-username") || cmd.Flags().Changed("docker-password") || o.passwordStdin || cmd.Flags().Changed("docker-server") || o.email != ""
	switch {
	case o.dockerConfig != "" && fromFlags:
		return cmdutil.UsageErrorf(cmd, "give --from-docker-config or the --docker-* flags, not both")
	case o.dockerConfig == "" && o.username == "":
		return cmdutil.UsageErrorf(cmd, "give --docker-username (and the password on stdin with --docker-password-stdin), or --from-docker-config")
	case o.dockerConfig == "" && o.password == "":
		return cmdutil.UsageErrorf(cmd, "the password is empty: give it on stdin with --docker-password-stdin")
	case len(o.attach) > 0 && o.attachAll:
		return cmdutil.UsageErrorf(cmd, "give --attach or --attach-all, not both")
	case o.verify && o.verifyImage == "":
		return cmdutil.UsageErrorf(cmd, "--verify needs --verify-image IMAGE: an image the credentials must be able to pull")
	case !o.verify && (o.verifyImage != "" || o.force):
		return cmdutil.UsageErrorf(cmd, "--verify-image and --force go with --verify")
	}
	for _, sa := range o.attach {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			return cmdutil.UsageErrorf(cmd, "invalid ServiceAccount name %q: %s", sa, errs[0])
		}
	}
	if o.printing() {
		format := *o.printFlags.OutputFormat
		if format != "name" && o.dryRun != cmdutil.DryRunClient {
			return cmdutil.UsageErrorf(cmd, "-o %s would print the password; it is only for --dry-run=client (GitOps); use -o name", format)
		}
		if _, err := o.printFlags.ToPrinter(); err != nil {
			return cmdutil.UsageErrorf(cmd, "%v", err)
		}
	}
	return nil
}

func (o *Options) printing() bool {
	return o.printFlags.OutputFormat != nil && *o.printFlags.OutputFormat != ""
}

// Run builds the Secret, verifies it, writes it and attaches it.
func (o *Options) Run(ctx context.Context) error {
	secret, err := o.build()
	if err != nil {
		return err
	}
	if o.verify {
		if err := o.check(ctx, secret); err != nil {
			return err
		}
	}
	if o.dryRun == cmdutil.DryRunClient && o.printing() && len(o.attach) == 0 && !o.attachAll {
		// GitOps: print the manifest without touching the cluster.
		return o.print(secret)
	}
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	stored, err := o.write(ctx, client, secret)
	if err != nil {
		return err
	}
	if o.printing() {
		if err := o.print(stored); err != nil {
			return err
		}
	}
	return o.attachAllOf(ctx, client)
}

// build makes the Secret from the flags or the Docker config.
func (o *Options) build() (*corev1.Secret, error) {
	var data []byte
	if o.dockerConfig != "" {
		raw, err := os.ReadFile(o.dockerConfig)
		if err != nil {
			return nil, fmt.Errorf("read docker config: %w", err)
		}
		var findings []credentials.Finding
		data, findings, err = credentials.BuildFromDockerConfig(raw)
		for _, f := range findings {
			where := ""
			if f.Registry != "" {
				where = " " + f.Registry
			}
			fmt.Fprintf(o.streams.ErrOut, "%s: %s%s (%s): %s\n", f.Severity, o.dockerConfig, where, f.Code, f.Message)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.dockerConfig, err)
		}
	} else {
		var err error
		if data, err = credentials.Build(o.server, o.username, o.password, o.email); err != nil {
			return nil, err
		}
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: o.name, Namespace: o.namespace,
			Labels: map[string]string{v1alpha1.ManagedByLabel: ManagedByValue},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: data},
	}, nil
}

// check asks the registry with the credentials the kubelet would take from
// this Secret for the image; a failure stops the command unless --force.
func (o *Options) check(ctx context.Context, secret *corev1.Secret) error {
	keyring := credentials.NewKeyring([]credentials.Secret{{Namespace: secret.Namespace, Name: secret.Name, Type: string(secret.Type), Data: secret.Data}})
	m, err := keyring.Lookup(o.verifyImage)
	if err != nil {
		return fmt.Errorf("verify Secret %s/%s: %w", o.namespace, o.name, err)
	}
	if m.Miss != nil {
		return o.refuse(fmt.Sprintf("no key of Secret %s/%s matches %s (%s), so the kubelet would send no credentials for it", o.namespace, o.name, o.verifyImage, m.Miss.Message))
	}
	opts, err := o.vflags.Options()
	if err != nil {
		return err
	}
	res := registrycheck.Check(ctx, o.verifyImage, registrycheck.Candidates(m.Credentials), opts)
	if !res.OK() {
		return o.refuse(fmt.Sprintf("registry check of Secret %s/%s failed (%s): %s", o.namespace, o.name, res.Status, res.Message))
	}
	fmt.Fprintf(o.info, "registry check: %s\n", res.Message)
	return nil
}

// refuse stops the command on a failed check, or warns with --force.
func (o *Options) refuse(msg string) error {
	if o.force {
		fmt.Fprintf(o.streams.ErrOut, "warning: %s; writing anyway (--force)\n", msg)
		return nil
	}
	return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Err: errors.New(msg + "; nothing was written (--force writes anyway)")}
}

// write creates the Secret, or updates ours when it differs; a Secret that
// is not ours is replaced only with --overwrite. The type of a Secret is
// immutable, so a different type means delete and create.
func (o *Options) write(ctx context.Context, client kubernetes.Interface, want *corev1.Secret) (*corev1.Secret, error) {
	secrets := client.CoreV1().Secrets(o.namespace)
	ref := o.namespace + "/" + o.name
	current, err := secrets.Get(ctx, o.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return o.create(ctx, client, want, "created")
	case err != nil:
		return nil, fmt.Errorf("get Secret %s: %w", ref, err)
	}
	ours := current.Labels[v1alpha1.ManagedByLabel] == ManagedByValue
	if !ours && !o.overwrite {
		owner := "someone else"
		if m := current.Labels[v1alpha1.ManagedByLabel]; m != "" {
			owner = m
		}
		return nil, fmt.Errorf("secret %s exists and was made by %s, not kubectl pullsecrets: nothing was written (--overwrite replaces its type and data)", ref, owner)
	}
	if ours && current.Type == want.Type && sameData(current.Data, want.Data) {
		o.dryRun.Printf(o.info, "secret/%s unchanged", o.name)
		return current, nil
	}
	if current.Type != want.Type {
		if o.dryRun == cmdutil.DryRunClient {
			o.dryRun.Printf(o.info, "secret/%s replaced (type %s -> %s)", o.name, current.Type, want.Type)
			return want, nil
		}
		uid := current.UID
		err := secrets.Delete(ctx, o.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, DryRun: o.dryRun.ServerDryRun()})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete Secret %s to change its type: %w", ref, err)
		}
		if o.dryRun == cmdutil.DryRunServer {
			o.dryRun.Printf(o.info, "secret/%s replaced (type %s -> %s)", o.name, current.Type, want.Type)
			return want, nil
		}
		return o.create(ctx, client, want, fmt.Sprintf("replaced (type %s -> %s)", current.Type, want.Type))
	}
	updated := current.DeepCopy()
	updated.Data = want.Data
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	updated.Labels[v1alpha1.ManagedByLabel] = ManagedByValue
	if o.dryRun == cmdutil.DryRunClient {
		o.dryRun.Printf(o.info, "secret/%s configured", o.name)
		return updated, nil
	}
	stored, err := secrets.Update(ctx, updated, metav1.UpdateOptions{DryRun: o.dryRun.ServerDryRun()})
	if err != nil {
		return nil, fmt.Errorf("update Secret %s: %w", ref, err)
	}
	o.dryRun.Printf(o.info, "secret/%s configured", o.name)
	return stored, nil
}

func (o *Options) create(ctx context.Context, client kubernetes.Interface, want *corev1.Secret, verb string) (*corev1.Secret, error) {
	if o.dryRun == cmdutil.DryRunClient {
		o.dryRun.Printf(o.info, "secret/%s %s", o.name, verb)
		return want, nil
	}
	stored, err := client.CoreV1().Secrets(o.namespace).Create(ctx, want, metav1.CreateOptions{DryRun: o.dryRun.ServerDryRun()})
	if err != nil {
		return nil, fmt.Errorf("create Secret %s/%s: %w", o.namespace, o.name, err)
	}
	o.dryRun.Printf(o.info, "secret/%s %s", o.name, verb)
	return stored, nil
}

// attachAllOf attaches the Secret to the ServiceAccounts asked for.
func (o *Options) attachAllOf(ctx context.Context, client kubernetes.Interface) error {
	var sas []*corev1.ServiceAccount
	var failed bool
	switch {
	case o.attachAll:
		list, err := client.CoreV1().ServiceAccounts(o.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list ServiceAccounts in %s: %w", o.namespace, err)
		}
		for i := range list.Items {
			sas = append(sas, &list.Items[i])
		}
	default:
		for _, name := range o.attach {
			sa, err := client.CoreV1().ServiceAccounts(o.namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				fmt.Fprintf(o.streams.ErrOut, "error: get ServiceAccount %s/%s: %v\n", o.namespace, name, err)
				failed = true
				continue
			}
			sas = append(sas, sa)
		}
	}
	store := serviceaccount.ClientsetStore{Client: client, DryRun: o.dryRun.ServerDryRun()}
	for _, sa := range sas {
		if o.dryRun == cmdutil.DryRunClient {
			verb := "attached"
			if serviceaccount.Has(sa, o.name) {
				verb = "unchanged"
			}
			o.dryRun.Printf(o.info, "serviceaccount/%s %s", sa.Name, verb)
			continue
		}
		_, wrote, err := serviceaccount.Update(ctx, store, sa, func(sa *corev1.ServiceAccount) (bool, error) {
			return serviceaccount.Attach(sa, o.name), nil
		})
		if err != nil {
			fmt.Fprintf(o.streams.ErrOut, "error: %v\n", err)
			failed = true
			continue
		}
		verb := "unchanged"
		if wrote {
			verb = "attached"
		}
		o.dryRun.Printf(o.info, "serviceaccount/%s %s", sa.Name, verb)
	}
	if failed {
		return cmdutil.ErrProblemsFound
	}
	return nil
}

func (o *Options) print(secret *corev1.Secret) error {
	printer, err := o.printFlags.ToPrinter()
	if err != nil {
		return err
	}
	secret = secret.DeepCopy()
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return printer.PrintObj(secret, o.streams.Out)
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// readPassword reads the password: without echo, after a prompt on
// stderr, from a terminal; else the first line of stdin (a trailing newline
// is not part of it).
func readPassword(in io.Reader, errOut io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(errOut, "Password: ")
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(errOut)
		if err != nil {
			return "", fmt.Errorf("read password from the terminal: %w", err)
		}
		return string(p), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
