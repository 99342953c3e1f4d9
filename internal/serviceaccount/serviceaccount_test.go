package serviceaccount_test

import (
	"context"
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
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

// A merge patch of a trimmed ServiceAccount (only the list and the record)
// applied to the stored object writes the list and the record as in the
// trimmed one, removes them when it has none, carries the resourceVersion
// read, and leaves every other field as stored.
func TestMergePatchWritesOnlyTheListAndTheRecord(t *testing.T) {
	g := NewWithT(t)
	stored := &corev1.ServiceAccount{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "gitops", ResourceVersion: "7", UID: "u",
			Labels: map[string]string{"team": "shop"},
			Annotations: map[string]string{
				"argocd.argoproj.io/tracking-id": "shop:/ServiceAccount:ns/gitops",
				v1alpha1.AttachedAnnotation:      `{"old":"fleet"}`, v1alpha1.AttachedProofAnnotation: "p-old",
			},
		},
		Secrets:                      []corev1.ObjectReference{{Name: "token"}},
		ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "theirs"}, {Name: "old"}},
		AutomountServiceAccountToken: new(false),
	}
	raw, err := json.Marshal(stored)
	g.Expect(err).NotTo(HaveOccurred())
	apply := func(trimmed *corev1.ServiceAccount) (*corev1.ServiceAccount, map[string]any) {
		patch, err := serviceaccount.MergePatch(trimmed)
		g.Expect(err).NotTo(HaveOccurred())
		var sent map[string]any
		g.Expect(json.Unmarshal(patch, &sent)).To(Succeed())
		out, err := jsonpatch.MergePatch(raw, patch)
		g.Expect(err).NotTo(HaveOccurred())
		var got corev1.ServiceAccount
		g.Expect(json.Unmarshal(out, &got)).To(Succeed())
		return &got, sent
	}

	trimmed := withSecrets("theirs", "new")
	trimmed.Name, trimmed.ResourceVersion = "gitops", "7"
	trimmed.Annotations = map[string]string{v1alpha1.AttachedAnnotation: `{"new":"fleet"}`, v1alpha1.AttachedProofAnnotation: "p-new"}
	got, sent := apply(trimmed)
	g.Expect(sent).To(HaveLen(2), "only metadata and the list are sent")
	g.Expect(sent["metadata"]).To(HaveKeyWithValue("resourceVersion", "7"))
	g.Expect(names(got)).To(Equal([]string{"theirs", "new"}))
	g.Expect(got.Annotations).To(Equal(map[string]string{
		"argocd.argoproj.io/tracking-id": "shop:/ServiceAccount:ns/gitops",
		v1alpha1.AttachedAnnotation:      `{"new":"fleet"}`, v1alpha1.AttachedProofAnnotation: "p-new",
	}))
	g.Expect(got.Labels).To(Equal(stored.Labels))
	g.Expect(got.Secrets).To(Equal(stored.Secrets))
	g.Expect(got.AutomountServiceAccountToken).To(Equal(stored.AutomountServiceAccountToken))
	g.Expect(got.UID).To(Equal(stored.UID))

	// Nothing left: the list and both marks go.
	bare := withSecrets()
	bare.Name, bare.ResourceVersion = "gitops", "7"
	got, _ = apply(bare)
	g.Expect(got.ImagePullSecrets).To(BeNil())
	g.Expect(got.Annotations).To(Equal(map[string]string{"argocd.argoproj.io/tracking-id": "shop:/ServiceAccount:ns/gitops"}))

	bare.ResourceVersion = ""
	_, err = serviceaccount.MergePatch(bare)
	g.Expect(err).To(MatchError(ContainSubstring("resourceVersion")))
}
