package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// floorCopy is the copy the floor writes: the same labels, annotations and
// data as the controller's, so that both write the same bytes.
func floorCopy(namespace string, data map[string][]byte) *corev1.Secret {
	h := sha256.New()
	h.Write(data[corev1.DockerConfigJsonKey])
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      secretName,
			Labels:    map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: cpsName},
			Annotations: map[string]string{
				v1alpha1.SourceAnnotation:   sourceNamespace + "/" + sourceName,
				v1alpha1.DataHashAnnotation: "sha256-" + hex.EncodeToString(h.Sum(nil)),
			},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: data,
	}
}

// measureFloor times the minimal writes of a cold rollout, one Secret
// create per namespace and one ServiceAccount update per ServiceAccount,
// issued by a tuned client under the controller's RBAC, then undoes them.
// The fastest of the runs is the floor.
func (b *bench) measureFloor(ctx context.Context) error {
	data, err := dockerConfig("first-password")
	if err != nil {
		return err
	}
	for run := 1; run <= b.opts.FloorRuns; run++ {
		ph, err := b.floorRun(ctx, run, data)
		if err != nil {
			return err
		}
		b.logf("floor run %d: %.2f s (last write answered after %.2f s)", run, ph.GoalSeconds, ph.ClientSeconds)
		if b.result.Floor == nil || ph.GoalSeconds < b.result.Floor.GoalSeconds {
			best := ph
			b.result.Floor = &best
		}
	}
	return nil
}

func (b *bench) floorRun(ctx context.Context, run int, data map[string][]byte) (Phase, error) {
	// Not timed: the floor is given what the controller reads from its
	// caches.
	sas := b.tracker.serviceAccounts(b.namespaces)
	n := len(b.namespaces)
	updated := make([]*corev1.ServiceAccount, len(sas))

	p, err := b.begin(ctx, fmt.Sprintf("floor-%d", run), floorIdentity, nil)
	if err != nil {
		return Phase{}, err
	}
	start := time.Now()
	err = pool(ctx, b.opts.FloorWorkers, n+len(sas), func(ctx context.Context, i int) error {
		if i < n {
			s := floorCopy(b.namespaces[i], data)
			if _, err := b.floor.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("floor: create Secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			return nil
		}
		sa := sas[i-n].DeepCopy()
		rec, err := serviceaccount.ReadRecord(sa)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		serviceaccount.Attach(sa, secretName)
		rec[secretName] = cpsName
		serviceaccount.WriteRecord(sa, rec)
		// sa carries the resourceVersion it was read at: a conflict
		// would fail the run rather than be retried.
		out, err := b.floor.CoreV1().ServiceAccounts(sa.Namespace).Update(ctx, sa, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("floor: update ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
		}
		updated[i-n] = out
		return nil
	})
	if err != nil {
		return Phase{}, err
	}
	client := time.Since(start)
	done, err := b.tracker.wait(ctx, "the floor's writes", b.opts.Timeout, both(
		allCopies(b.namespaces, secretName, func(*corev1.Secret) bool { return true }),
		allServiceAccounts(b.namespaces, b.opts.ServiceAccounts, carries(secretName)),
	))
	if err != nil {
		return Phase{}, err
	}
	p.reached()
	settled, err := b.settle(ctx, p, 0)
	if err != nil {
		return Phase{}, err
	}
	ph, err := b.end(ctx, p, Phase{
		GoalSeconds:   done.Sub(start).Seconds(),
		ClientSeconds: client.Seconds(),
		Settled:       settled,
		MinimalWrites: n + len(sas),
	})
	if err != nil {
		return Phase{}, err
	}
	return ph, b.resetFloor(ctx, sas, updated)
}

// resetFloor deletes the floor's copies and gives every ServiceAccount back
// its list and annotations, as administrator; not timed.
func (b *bench) resetFloor(ctx context.Context, original, updated []*corev1.ServiceAccount) error {
	n := len(b.namespaces)
	err := pool(ctx, b.opts.FloorWorkers, n+len(updated), func(ctx context.Context, i int) error {
		if i < n {
			ns := b.namespaces[i]
			err := b.admin.CoreV1().Secrets(ns).Delete(ctx, secretName, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("reset floor: delete Secret %s/%s: %w", ns, secretName, err)
			}
			return nil
		}
		sa := updated[i-n].DeepCopy()
		sa.ImagePullSecrets = original[i-n].ImagePullSecrets
		sa.Annotations = original[i-n].Annotations
		if _, err := b.admin.CoreV1().ServiceAccounts(sa.Namespace).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("reset floor: update ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = b.tracker.wait(ctx, "the floor's reset", b.opts.Timeout, both(
		noCopies(b.namespaces, secretName),
		allServiceAccounts(b.namespaces, b.opts.ServiceAccounts, carriesNone),
	))
	return err
}
