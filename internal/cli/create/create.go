// Package create is `kubectl pullsecrets create`: a docker-registry Secret
// built exactly as `kubectl create secret docker-registry` builds it (or
// from a Docker config.json, keeping only what the kubelet can use),
// labelled as ours, optionally checked against the registry first, and
// attached to ServiceAccounts, idempotently.
package create

import (
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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
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
	write         cmdutil.Write
	out           *cmdutil.Output
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
	return &Options{factory: f, streams: streams, server: credentials.DefaultServer, out: cmdutil.NewOutput(false)}
}

// NewCommand returns the `create` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "create NAME (--docker-username USER --docker-password-stdin [--docker-server SERVER] | --from-docker-config FILE) [--attach SA... | --attach-all] [-o name|json|yaml|jsonpath=...]",
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

Nothing is written unless everything holds first: the registry server parses
as the kubelet parses registry keys (a key it would ignore or never match, a
port outside 1-65535, a host without a dot that only Docker Hub images would
be taken for, is refused), the namespace exists, and every ServiceAccount of
--attach exists.

--from-docker-config builds the Secret from a Docker config.json instead,
keeping only what the kubelet can use, and reports what it leaves out (entries
kept by a credential helper, tokens the kubelet ignores, empty entries).

--verify checks the credentials against the registry (--verify-image) before
anything is written, and refuses to write when the registry rejects them,
unless --force.

The password is read from stdin (one line, at most 1 MiB), and a
--from-docker-config file of at most 1 MiB (a Secret holds no more).

The password never appears in the output: -o yaml|json prints the manifest
(data included, as kubectl does) only with --dry-run=client, for GitOps;
otherwise -o name|json|yaml|jsonpath prints the objects written, the Secret
without its data, and the lines go to stderr.`,
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
	o.write.AddFlags(cmd)
	o.out.AddFlags(cmd)
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
	var err error
	if o.name, err = cmdutil.ParseName(cmd, args[0], "Secret"); err != nil {
		return err
	}
	for i, sa := range o.attach {
		if o.attach[i], err = cmdutil.ParseName(cmd, sa, "ServiceAccount"); err != nil {
			return err
		}
	}
	if err := o.write.Complete(cmd); err != nil {
		return err
	}
	if o.namespace, _, err = o.factory.Namespace(); err != nil {
		return err
	}
	o.info = o.out.Info(o.streams.Out, o.streams.ErrOut)
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
	if o.dockerConfig == "" {
		if err := CheckServer(o.server); err != nil {
			return cmdutil.UsageErrorf(cmd, "--docker-server %q: %v", o.server, err)
		}
	}
	return o.out.Validate(cmd)
}

// gitOps reports whether the command only prints the manifest, data
// included, and touches no cluster: --dry-run=client with -o json|yaml
// (any structured format) and no --attach.
func (o *Options) gitOps() bool {
	return o.write.DryRun == cmdutil.DryRunClient && o.out.Structured() && len(o.attach) == 0 && !o.attachAll
}

// Run builds the Secret, verifies it, checks every precondition, and only
// then writes the Secret and attaches it.
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
	if o.gitOps() {
		// GitOps: print the manifest without touching the cluster.
		return o.out.PrintObject(withKind(secret), o.streams.Out)
	}
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	sas, err := o.preconditions(ctx, client)
	if err != nil {
		return err
	}
	current, err := o.current(ctx, client)
	if err != nil {
		return err
	}
	stored, err := o.writeSecret(ctx, client, current, secret)
	if err != nil {
		return err
	}
	written := []runtime.Object{}
	if stored != nil {
		written = append(written, stored)
	}
	attached, err := o.attachTo(ctx, client, sas)
	written = append(written, attached...)
	if o.write.DryRun == cmdutil.DryRunClient && o.out.Structured() {
		// The manifest, data included, for GitOps; the attachments were
		// said on stderr.
		if perr := o.out.PrintObject(withKind(secret), o.streams.Out); perr != nil {
			return perr
		}
		return err
	}
	if perr := o.out.PrintWritten(written, o.streams.Out); perr != nil {
		return perr
	}
	return err
}

// preconditions checks, before anything is written, that the namespace
// exists and that every ServiceAccount of --attach does, and returns the
// ServiceAccounts to attach to.
func (o *Options) preconditions(ctx context.Context, client kubernetes.Interface) ([]*corev1.ServiceAccount, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, o.namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, cmdutil.Refused("namespace %q does not exist", o.namespace)
	case apierrors.IsForbidden(err):
		// May not read Namespaces: the writes will say.
	case err != nil:
		return nil, fmt.Errorf("get Namespace %s: %w", o.namespace, err)
	case ns.Status.Phase == corev1.NamespaceTerminating:
		return nil, cmdutil.Refused("namespace %q is being deleted", o.namespace)
	}
	var sas []*corev1.ServiceAccount
	if o.attachAll {
		list, err := client.CoreV1().ServiceAccounts(o.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list ServiceAccounts in %s: %w", o.namespace, err)
		}
		if len(list.Items) == 0 {
			return nil, cmdutil.Refused("--attach-all: namespace %q has no ServiceAccount", o.namespace)
		}
		for i := range list.Items {
			sas = append(sas, &list.Items[i])
		}
		return sas, nil
	}
	var missing []string
	for _, name := range o.attach {
		sa, err := client.CoreV1().ServiceAccounts(o.namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, o.namespace+"/"+name)
			continue
		case err != nil:
			return nil, fmt.Errorf("get ServiceAccount %s/%s: %w", o.namespace, name, err)
		}
		sas = append(sas, sa)
	}
	if len(missing) > 0 {
		return nil, cmdutil.Refused("ServiceAccount %s does not exist", strings.Join(missing, ", "))
	}
	return sas, nil
}

// build makes the Secret from the flags or the Docker config.
func (o *Options) build() (*corev1.Secret, error) {
	var data []byte
	if o.dockerConfig != "" {
		raw, err := readlimit.ReadSecretFile(o.dockerConfig)
		if tooLarge, ok := errors.AsType[*readlimit.TooLargeError](err); ok {
			return nil, fmt.Errorf("--from-docker-config %s: %s", o.dockerConfig, tooLarge.Problem())
		}
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

// current reads the Secret of that name, nil when there is none, and
// refuses, before anything is written, one that kubectl pullsecrets did
// not make unless --overwrite.
func (o *Options) current(ctx context.Context, client kubernetes.Interface) (*corev1.Secret, error) {
	ref := o.namespace + "/" + o.name
	current, err := client.CoreV1().Secrets(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get Secret %s: %w", ref, err)
	}
	if current.Labels[v1alpha1.ManagedByLabel] != ManagedByValue && !o.overwrite {
		owner := "someone else"
		if m := current.Labels[v1alpha1.ManagedByLabel]; m != "" {
			owner = m
		}
		return nil, fmt.Errorf("secret %s exists and was made by %s, not kubectl pullsecrets: nothing was written (--overwrite replaces its type and data)", ref, owner)
	}
	return current, nil
}

// writeSecret creates the Secret, or updates ours when it differs. The
// type of a Secret is immutable, so a different type means delete and
// create. It returns what was written, nil when nothing was.
func (o *Options) writeSecret(ctx context.Context, client kubernetes.Interface, current, want *corev1.Secret) (*corev1.Secret, error) {
	secrets := client.CoreV1().Secrets(o.namespace)
	ref := o.namespace + "/" + o.name
	if current == nil {
		return o.create(ctx, client, want, "created")
	}
	ours := current.Labels[v1alpha1.ManagedByLabel] == ManagedByValue
	if ours && current.Type == want.Type && sameData(current.Data, want.Data) {
		o.write.Printf(o.info, "secret/%s unchanged", o.name)
		return nil, nil
	}
	if current.Type != want.Type {
		if o.write.DryRun == cmdutil.DryRunClient {
			o.write.Printf(o.info, "secret/%s replaced (type %s -> %s)", o.name, current.Type, want.Type)
			return want, nil
		}
		err := secrets.Delete(ctx, o.name, o.write.Delete(current.UID))
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete Secret %s to change its type: %w", ref, err)
		}
		if o.write.DryRun == cmdutil.DryRunServer {
			o.write.Printf(o.info, "secret/%s replaced (type %s -> %s)", o.name, current.Type, want.Type)
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
	if o.write.DryRun == cmdutil.DryRunClient {
		o.write.Printf(o.info, "secret/%s configured", o.name)
		return updated, nil
	}
	stored, err := secrets.Update(ctx, updated, o.write.Update())
	if err != nil {
		return nil, fmt.Errorf("update Secret %s: %w", ref, err)
	}
	o.write.Printf(o.info, "secret/%s configured", o.name)
	return stored, nil
}

func (o *Options) create(ctx context.Context, client kubernetes.Interface, want *corev1.Secret, verb string) (*corev1.Secret, error) {
	if o.write.DryRun == cmdutil.DryRunClient {
		o.write.Printf(o.info, "secret/%s %s", o.name, verb)
		return want, nil
	}
	stored, err := client.CoreV1().Secrets(o.namespace).Create(ctx, want, o.write.Create())
	if err != nil {
		return nil, fmt.Errorf("create Secret %s/%s: %w", o.namespace, o.name, err)
	}
	o.write.Printf(o.info, "secret/%s %s", o.name, verb)
	return stored, nil
}

// attachTo attaches the Secret to the ServiceAccounts, which exist (the
// preconditions said so), and returns those it changed.
func (o *Options) attachTo(ctx context.Context, client kubernetes.Interface, sas []*corev1.ServiceAccount) ([]runtime.Object, error) {
	var written []runtime.Object
	failed := false
	store := o.write.Store(client)
	for _, sa := range sas {
		if o.write.DryRun == cmdutil.DryRunClient {
			verb := "unchanged"
			if cp := sa.DeepCopy(); serviceaccount.Attach(cp, o.name) {
				verb = "attached"
				written = append(written, cp)
			}
			o.write.Printf(o.info, "serviceaccount/%s %s", sa.Name, verb)
			continue
		}
		stored, wrote, err := serviceaccount.Update(ctx, store, sa, func(sa *corev1.ServiceAccount) (bool, error) {
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
			written = append(written, stored)
		}
		o.write.Printf(o.info, "serviceaccount/%s %s", sa.Name, verb)
	}
	if failed {
		return written, cmdutil.ErrProblemsFound
	}
	return written, nil
}

// withKind returns the Secret with its apiVersion and kind, for printers.
func withKind(s *corev1.Secret) *corev1.Secret {
	s = s.DeepCopy()
	s.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return s
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
	line, err := readlimit.ReadSecretLine("stdin", in)
	if tooLarge, ok := errors.AsType[*readlimit.TooLargeError](err); ok {
		return "", fmt.Errorf("--docker-password-stdin: %s", strings.Replace(tooLarge.Problem(), "it holds", "its first line holds", 1))
	}
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return line, nil
}
