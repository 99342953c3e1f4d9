// Package restart is `kubectl pullsecrets restart`: delete the Pods stuck
// on an image pull that a new Pod would not be stuck on, because their
// ServiceAccount now carries a pull secret for the image that they lack
// (admission copies a ServiceAccount's list only into new Pods). The rule
// is the controller's (restartPods in internal/controller).
package restart

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/cli/cmdutil"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// Options are the flags of restart, completed, validated and run in that
// order (as in kubernetes/sample-cli-plugin).
type Options struct {
	factory cmdutil.Factory
	streams genericiooptions.IOStreams

	scope      cmdutil.Scope
	dryRunFlag string
	// write carries the dry run; a delete has no field manager.
	write cmdutil.Write
	out   *cmdutil.Output
}

// NewOptions returns Options with their defaults.
func NewOptions(f cmdutil.Factory, streams genericiooptions.IOStreams) *Options {
	return &Options{factory: f, streams: streams, scope: cmdutil.Scope{Writes: true}, out: cmdutil.NewOutput(false)}
}

// NewCommand returns the `restart` command.
func NewCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(f, streams)
	cmd := &cobra.Command{
		Use:   "restart [-n NAMESPACE | -A | --namespace-selector SELECTOR] [-l SELECTOR] [--dry-run] [-o name|json|yaml|jsonpath=...]",
		Short: "Delete Pods stuck on a pull that their ServiceAccount's pull secrets now fix",
		Long: `A Pod's imagePullSecrets never change after it is created: attaching a pull
secret to its ServiceAccount helps only new Pods. restart deletes each Pod
that waits on ErrImagePull or ImagePullBackOff when

  - its ServiceAccount now lists a pull secret that the Pod lacks and that has
    a credential for one of the failing images, and
  - its owner recreates it (ReplicaSet, StatefulSet, DaemonSet, Job,
    ReplicationController): the new Pod gets the ServiceAccount's list.

Other stuck Pods are listed with the reason they are left alone: a bare Pod
(nothing would recreate it), or a Pod that lists a pull secret its
ServiceAccount lacks (its list comes from its template, so its replacement
would not get the ServiceAccount's either: restarting won't help; 'kubectl
pullsecrets doctor' says what to change). Each delete carries the Pod's UID
as a precondition, so a Pod already replaced is never hit.

-l selects the Pods by their labels, as kubectl's -l does. -A and
--namespace-selector leave out kube-system, kube-public and kube-node-lease
(name one with -n). With -o name|json|yaml the Pods deleted go to stdout and
the lines to stderr.

Exit status: 0 unless a delete fails, the namespace does not exist or -l
matches no Pod (1); 2 for a wrong command line.`,
		Example: `  # See what would be deleted
  kubectl pullsecrets restart -A --dry-run

  # After 'kubectl pullsecrets attach regcred -n shop'
  kubectl pullsecrets restart -n shop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(cmd); err != nil {
				return err
			}
			if err := o.out.Validate(cmd); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmdutil.AddScopeFlags(cmd, &o.scope, "Pods")
	cmdutil.AddDryRunFlag(cmd, &o.dryRunFlag)
	o.out.AddFlags(cmd)
	return cmd
}

// Complete resolves the scope and the dry-run strategy.
func (o *Options) Complete(cmd *cobra.Command) error {
	var err error
	if o.write.DryRun, err = cmdutil.ParseDryRun(cmd, o.dryRunFlag); err != nil {
		return err
	}
	return o.scope.Complete(cmd, o.factory)
}

// Decision is what restart does with one stuck Pod.
type Decision struct {
	Pod *corev1.Pod
	// Delete is true when deleting the Pod brings one that gets Secrets.
	Delete  bool
	Secrets []string
	// Why explains the decision in a sentence fragment.
	Why string
}

// Decide applies the controller's rule to a stuck Pod, its ServiceAccount
// (nil when missing) and the namespace's Secrets.
func Decide(pod *corev1.Pod, sa *corev1.ServiceAccount, secrets map[string]*corev1.Secret) Decision {
	d := Decision{Pod: pod}
	if sa == nil {
		d.Why = fmt.Sprintf("its ServiceAccount %s does not exist", pullfailure.ServiceAccountName(pod))
		return d
	}
	var lacking []string
	for _, r := range sa.ImagePullSecrets {
		if r.Name != "" && !pullfailure.Lists(pod, r.Name) && !slices.Contains(lacking, r.Name) {
			lacking = append(lacking, r.Name)
		}
	}
	// Admission copies the ServiceAccount's list only into Pods that have
	// none. A Pod listing a name its ServiceAccount lacks got its list from
	// its template, so its replacement would not get the secret either.
	for _, r := range pod.Spec.ImagePullSecrets {
		if !serviceaccount.Has(sa, r.Name) {
			d.Why = fmt.Sprintf("it lists %s, which ServiceAccount %s does not: its list comes from its template, so restarting won't help (see kubectl pullsecrets doctor %s -n %s)",
				r.Name, sa.Name, pod.Name, pod.Namespace)
			return d
		}
	}
	d.Secrets = helping(pod, lacking, secrets)
	if len(d.Secrets) == 0 {
		d.Why = fmt.Sprintf("ServiceAccount %s has no pull secret it lacks with a credential for its failing images, so restarting won't help (see kubectl pullsecrets doctor %s -n %s)",
			sa.Name, pod.Name, pod.Namespace)
		return d
	}
	owner := pullfailure.Recreator(pod)
	if owner == nil {
		d.Why = fmt.Sprintf("a bare Pod: nothing would recreate it; delete it and create it again to get %s", strings.Join(d.Secrets, ", "))
		return d
	}
	d.Delete = true
	d.Why = fmt.Sprintf("%s %s recreates it with %s", owner.Kind, owner.Name, strings.Join(d.Secrets, ", "))
	return d
}

// helping returns the names among lacking whose Secret has a credential
// for one of the Pod's failing images.
func helping(pod *corev1.Pod, lacking []string, secrets map[string]*corev1.Secret) []string {
	var out []string
	for _, name := range lacking {
		s := secrets[name]
		if s == nil {
			continue
		}
		kr := credentials.NewKeyring([]credentials.Secret{{Namespace: s.Namespace, Name: s.Name, Type: string(s.Type), Data: s.Data}})
		if kr.Err() != nil {
			continue
		}
		for _, c := range pullfailure.StuckContainers(pod) {
			if m, err := kr.Lookup(c.Image); err == nil && len(m.Credentials) > 0 {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// Run reads the scope and deletes the Pods that the rule allows.
func (o *Options) Run(ctx context.Context) error {
	client, err := o.factory.KubernetesClient()
	if err != nil {
		return err
	}
	meta, err := o.factory.MetadataClient()
	if err != nil {
		return err
	}
	snap, err := cmdutil.ReadSnapshot(ctx, client, meta, &o.scope, cmdutil.SnapshotOptions{})
	if err != nil {
		return err
	}
	o.scope.NoteSkipped(o.streams.ErrOut)
	info := o.out.Info(o.streams.Out, o.streams.ErrOut)
	failed, stuck := false, 0
	var deleted []runtime.Object
	for _, pod := range snap.Pods {
		if !pullfailure.IsStuck(pod) {
			continue
		}
		stuck++
		d := Decide(pod, snap.ServiceAccount(pod.Namespace, pullfailure.ServiceAccountName(pod)), snap.Secrets[pod.Namespace])
		where := ""
		if !o.scope.Single() {
			where = " in namespace " + pod.Namespace
		}
		if !d.Delete {
			fmt.Fprintf(info, "pod/%s%s left alone: %s\n", pod.Name, where, d.Why)
			continue
		}
		if err := o.delete(ctx, client, pod); err != nil {
			fmt.Fprintf(o.streams.ErrOut, "error: %v\n", err)
			failed = true
			continue
		}
		o.write.Printf(info, "pod/%s%s deleted: %s", pod.Name, where, d.Why)
		deleted = append(deleted, pod)
	}
	if err := o.out.PrintWritten(deleted, o.streams.Out); err != nil {
		return err
	}
	if stuck == 0 {
		fmt.Fprintf(o.streams.ErrOut, "No Pod is stuck on an image pull in %s.\n", o.scope.Describe())
	}
	switch {
	case len(snap.Pods) == 0 && o.scope.Selector != "":
		return cmdutil.NoMatch("no Pod matches -l %s in %s", o.scope.Selector, o.scope.DescribeList(""))
	case failed:
		return cmdutil.ErrProblemsFound
	}
	return nil
}

func (o *Options) delete(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	if o.write.DryRun == cmdutil.DryRunClient {
		return nil
	}
	err := client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, o.write.Delete(pod.UID))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // already gone or replaced
	}
	if err != nil {
		return fmt.Errorf("delete Pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
