package serviceaccount_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

func names(sa *corev1.ServiceAccount) []string {
	var out []string
	for _, r := range sa.ImagePullSecrets {
		out = append(out, r.Name)
	}
	return out
}

func withSecrets(list ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "default", ResourceVersion: "1"}}
	for _, n := range list {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	return sa
}

func TestAttachDetach(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          []string
		attach      string
		detach      string
		want        []string
		wantChanged bool
	}{
		{name: "attach to empty", attach: "reg", want: []string{"reg"}, wantChanged: true},
		{name: "attach keeps others in order", in: []string{"b", "a"}, attach: "reg", want: []string{"b", "a", "reg"}, wantChanged: true},
		{name: "attach present is a no-op", in: []string{"reg", "a"}, attach: "reg", want: []string{"reg", "a"}},
		{name: "detach keeps others in order", in: []string{"b", "reg", "a"}, detach: "reg", want: []string{"b", "a"}, wantChanged: true},
		{name: "detach removes duplicates of the name", in: []string{"reg", "a", "reg"}, detach: "reg", want: []string{"a"}, wantChanged: true},
		{name: "detach absent is a no-op", in: []string{"a"}, detach: "reg", want: []string{"a"}},
		{name: "detach last leaves no list", in: []string{"reg"}, detach: "reg", want: nil, wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			sa := withSecrets(tt.in...)
			var changed bool
			if tt.attach != "" {
				changed = serviceaccount.Attach(sa, tt.attach)
			} else {
				changed = serviceaccount.Detach(sa, tt.detach)
			}
			g.Expect(changed).To(Equal(tt.wantChanged))
			g.Expect(names(sa)).To(Equal(tt.want))
		})
	}
}

func TestRecord(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	sa := withSecrets()
	r, err := serviceaccount.ReadRecord(sa)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r).To(BeEmpty())

	g.Expect(serviceaccount.WriteRecord(sa, serviceaccount.Record{"reg": "cps-a", "other": "cps-b"})).To(BeTrue())
	g.Expect(sa.Annotations[v1alpha1.AttachedAnnotation]).To(Equal(`{"other":"cps-b","reg":"cps-a"}`))
	g.Expect(serviceaccount.WriteRecord(sa, serviceaccount.Record{"other": "cps-b", "reg": "cps-a"})).To(BeFalse(), "same record, no change")

	r, err = serviceaccount.ReadRecord(sa)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r).To(Equal(serviceaccount.Record{"reg": "cps-a", "other": "cps-b"}))

	g.Expect(serviceaccount.WriteRecord(sa, serviceaccount.Record{})).To(BeTrue())
	g.Expect(sa.Annotations).NotTo(HaveKey(v1alpha1.AttachedAnnotation))

	sa.Annotations[v1alpha1.AttachedAnnotation] = "not json"
	_, err = serviceaccount.ReadRecord(sa)
	g.Expect(err).To(MatchError(ContainSubstring("ns/default")))
}

// conflictingStore fails the first update with a conflict, as the API server
// does when another writer got in between, and serves the other writer's
// version on the next read.
type conflictingStore struct {
	stored    *corev1.ServiceAccount
	conflicts int
	updates   int
	gets      int
}

func (s *conflictingStore) Get(context.Context, string, string) (*corev1.ServiceAccount, error) {
	s.gets++
	return s.stored.DeepCopy(), nil
}

func (s *conflictingStore) Update(_ context.Context, sa *corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
	s.updates++
	if sa.ResourceVersion != s.stored.ResourceVersion {
		s.conflicts++
		return nil, apierrors.NewConflict(schema.GroupResource{Resource: "serviceaccounts"}, sa.Name, nil)
	}
	s.stored = sa.DeepCopy()
	s.stored.ResourceVersion += "+"
	return s.stored.DeepCopy(), nil
}

func TestUpdateRetriesOnConflictAndKeepsTheOtherWritersEntry(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	cached := withSecrets("a")
	// Another writer added "theirs" after our cache saw the object.
	store := &conflictingStore{stored: withSecrets("a", "theirs")}
	store.stored.ResourceVersion = "2"

	got, wrote, err := serviceaccount.Update(context.Background(), store, cached, func(sa *corev1.ServiceAccount) (bool, error) {
		return serviceaccount.Attach(sa, "reg"), nil
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeTrue())
	g.Expect(store.conflicts).To(Equal(1))
	g.Expect(names(got)).To(Equal([]string{"a", "theirs", "reg"}))
	g.Expect(names(store.stored)).To(Equal([]string{"a", "theirs", "reg"}))
	g.Expect(names(cached)).To(Equal([]string{"a"}), "the cached object is never modified")
}

func TestUpdateWritesNothingWhenNothingChanges(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	sa := withSecrets("reg")
	store := &conflictingStore{stored: sa.DeepCopy()}
	_, wrote, err := serviceaccount.Update(context.Background(), store, sa, func(sa *corev1.ServiceAccount) (bool, error) {
		return serviceaccount.Attach(sa, "reg"), nil
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeFalse())
	g.Expect(store.updates + store.gets).To(BeZero())
}
