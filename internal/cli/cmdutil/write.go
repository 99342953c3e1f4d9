package cmdutil

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// DefaultFieldManager is the field manager of every write, unless
// --field-manager says otherwise: managedFields then tell who wrote what.
const DefaultFieldManager = "kubectl-pullsecrets"

// Write holds --dry-run and --field-manager, the flags of every verb that
// writes, and turns them into the options of each request.
type Write struct {
	dryRunFlag   string
	DryRun       DryRun
	FieldManager string
}

// AddFlags adds --dry-run and --field-manager to cmd.
func (w *Write) AddFlags(cmd *cobra.Command) {
	AddDryRunFlag(cmd, &w.dryRunFlag)
	cmd.Flags().StringVar(&w.FieldManager, "field-manager", DefaultFieldManager, "the name of the manager of the fields this command writes (metadata.managedFields)")
}

// Complete parses --dry-run and checks --field-manager.
func (w *Write) Complete(cmd *cobra.Command) error {
	var err error
	if w.DryRun, err = ParseDryRun(cmd, w.dryRunFlag); err != nil {
		return err
	}
	if w.FieldManager == "" {
		return UsageErrorf(cmd, "--field-manager must not be empty")
	}
	if len(w.FieldManager) > 128 || strings.IndexFunc(w.FieldManager, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return UsageErrorf(cmd, "invalid --field-manager %q: at most 128 printable ASCII characters", w.FieldManager)
	}
	return nil
}

// Create returns the options of a create.
func (w *Write) Create() metav1.CreateOptions {
	return metav1.CreateOptions{DryRun: w.DryRun.ServerDryRun(), FieldManager: w.FieldManager}
}

// Update returns the options of an update.
func (w *Write) Update() metav1.UpdateOptions {
	return metav1.UpdateOptions{DryRun: w.DryRun.ServerDryRun(), FieldManager: w.FieldManager}
}

// Patch returns the options of a patch.
func (w *Write) Patch() metav1.PatchOptions {
	return metav1.PatchOptions{DryRun: w.DryRun.ServerDryRun(), FieldManager: w.FieldManager}
}

// Delete returns the options of a delete of the object with uid (a
// precondition, so that an object replaced meanwhile is never hit).
func (w *Write) Delete(uid types.UID) metav1.DeleteOptions {
	return metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, DryRun: w.DryRun.ServerDryRun()}
}

// Printf writes one result line with the dry-run suffix.
func (w *Write) Printf(out io.Writer, format string, args ...any) {
	w.DryRun.Printf(out, format, args...)
}

// Store returns a serviceaccount.Store whose updates carry the dry run and
// the field manager.
func (w *Write) Store(client kubernetes.Interface) serviceaccount.Store {
	return saStore{client: client, opts: w.Update()}
}

type saStore struct {
	client kubernetes.Interface
	opts   metav1.UpdateOptions
}

func (s saStore) Get(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	return s.client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (s saStore) Update(ctx context.Context, sa *corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
	updated, err := s.client.CoreV1().ServiceAccounts(sa.Namespace).Update(ctx, sa, s.opts)
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// Refused ends a writing command that wrote nothing because a
// precondition failed (status 1): the message says what and that nothing
// was written.
func Refused(format string, args ...any) error {
	return &ExitError{Code: ExitProblems, Err: fmt.Errorf(format+"; nothing was written", args...)}
}
