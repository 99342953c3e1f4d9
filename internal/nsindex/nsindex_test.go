package nsindex

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// testRecord keeps a ConfigMap's namespace, name and resourceVersion.
type testRecord struct{ ns, name, rv string }

func (r *testRecord) Key() (string, string)          { return r.ns, r.name }
func (r *testRecord) SameVersion(o *testRecord) bool { return r.rv == o.rv }
func (r *testRecord) ShareNamespace(ns string)       { r.ns = ns }
func convert(obj any) (*testRecord, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", obj)
	}
	return &testRecord{cm.Namespace, cm.Name, cm.ResourceVersion}, nil
}

var _ cache.TransformingStore = &store[*testRecord]{}

func cm(ns, name, rv string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv}}
}

type change struct{ ns, old, new string }

func names(t *testing.T, ix *Index[*testRecord], ns string) []string {
	t.Helper()
	var out []string
	if err := ix.InNamespace(ns, func(r *testRecord) { out = append(out, r.name+"@"+r.rv) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// The index answers nothing before its first list, then follows the
// reflector's adds, updates and deletes, and reports each object that
// changed (not one that came back at the same version), and after a
// relist each namespace that changed.
func TestTheIndexFollowsItsReflector(t *testing.T) {
	t.Parallel()
	var changed []change
	v := func(r *testRecord) string {
		if r == nil {
			return ""
		}
		return r.name + "@" + r.rv
	}
	ix := New(convert, func(ns string, old, new *testRecord) { changed = append(changed, change{ns, v(old), v(new)}) })
	s := &store[*testRecord]{ix: ix}
	if err := ix.InNamespace("shop", func(*testRecord) {}); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before the list: %v", err)
	}
	if _, _, err := ix.Get("shop", "web"); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before the list: %v", err)
	}
	if err := ix.Each(func(*testRecord) bool { return true }); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before the list: %v", err)
	}
	// The reflector lists through Transformer, then replaces.
	var list []any
	for _, o := range []*corev1.ConfigMap{cm("shop", "web", "1"), cm("shop", "default", "1"), cm("bank", "default", "2")} {
		r, err := s.Transformer()(o)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, r)
	}
	if _, err := s.Transformer()(&corev1.Secret{}); err == nil {
		t.Fatal("a Secret was taken for a ConfigMap")
	}
	if err := s.Replace(list, "2"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ix.syncedCh:
	default:
		t.Fatal("not synced after the list")
	}
	if got := names(t, ix, "shop"); !slices.Equal(got, []string{"default@1", "web@1"}) {
		t.Fatalf("shop: %v", got)
	}
	if len(changed) != 0 {
		t.Fatalf("the first list reported %v", changed)
	}
	steps := []struct {
		do   func() error
		want []string // shop's records after
		note []change
	}{
		{func() error { return s.Add(cm("shop", "api", "3")) }, []string{"api@3", "default@1", "web@1"}, []change{{"shop", "", "api@3"}}},
		{func() error { return s.Update(cm("shop", "api", "3")) }, []string{"api@3", "default@1", "web@1"}, nil},
		{func() error { return s.Update(cm("shop", "web", "4")) }, []string{"api@3", "default@1", "web@4"}, []change{{"shop", "web@1", "web@4"}}},
		{func() error { return s.Delete(cm("shop", "default", "5")) }, []string{"api@3", "web@4"}, []change{{"shop", "default@1", ""}}},
		{func() error {
			return s.Delete(cache.DeletedFinalStateUnknown{Key: "shop/api", Obj: cm("shop", "api", "3")})
		}, []string{"web@4"}, []change{{"shop", "api@3", ""}}},
		{func() error { return s.Delete(cm("shop", "gone", "6")) }, []string{"web@4"}, nil},
		// A relist after a watch expired: shop unchanged, bank emptied,
		// tea new.
		{func() error { return s.Replace([]any{cm("shop", "web", "4"), cm("tea", "default", "7")}, "7") }, []string{"web@4"}, []change{{"bank", "", ""}, {"tea", "", ""}}},
	}
	for i, st := range steps {
		changed = nil
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := names(t, ix, "shop"); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: shop %v, want %v", i, got, st.want)
		}
		if !slices.Equal(changed, st.note) {
			t.Fatalf("step %d: reported %v, want %v", i, changed, st.note)
		}
	}
	if _, ok, err := ix.Get("bank", "default"); ok || err != nil {
		t.Fatalf("bank/default after the relist: %v, %v", ok, err)
	}
	if got, ok, err := ix.Get("tea", "default"); !ok || err != nil || got.rv != "7" {
		t.Fatalf("tea/default: %v, %v, %v", got, ok, err)
	}
	if n := count(ix); n != 2 {
		t.Fatalf("%d records held, want 2", n)
	}
}

// Random adds, updates and deletes leave the index holding exactly what a
// map by namespace and name would, each namespace sorted by name and
// sharing one namespace string.
func TestTheIndexMatchesAMapModelRandomized(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(22, 11))
	ix := New(convert, nil)
	s := &store[*testRecord]{ix: ix}
	if err := s.Replace(nil, "0"); err != nil {
		t.Fatal(err)
	}
	model := map[[2]string]string{}
	for step := range 20000 {
		ns, n := fmt.Sprint("ns-", rng.IntN(5)), fmt.Sprint("o-", rng.IntN(40))
		var err error
		switch rng.IntN(3) {
		case 0:
			err = s.Delete(cm(ns, n, "x"))
			delete(model, [2]string{ns, n})
		default:
			rv := fmt.Sprint(step)
			err = s.Update(cm(ns, n, rv))
			model[[2]string{ns, n}] = rv
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[[2]string]string{}
	_ = ix.Each(func(r *testRecord) bool {
		got[[2]string{r.ns, r.name}] = r.rv
		return true
	})
	if len(got) != len(model) || count(ix) != len(model) {
		t.Fatalf("%d records, the model %d", len(got), len(model))
	}
	for k, rv := range model {
		if got[k] != rv {
			t.Fatalf("%v: %q, want %q", k, got[k], rv)
		}
	}
	for ns, records := range ix.byNamespace {
		if !slices.IsSortedFunc(records, func(a, b *testRecord) int { return cmpString(a.name, b.name) }) {
			t.Fatalf("%s not sorted", ns)
		}
		for _, r := range records {
			if unsafe.StringData(r.ns) != unsafe.StringData(records[0].ns) {
				t.Fatalf("%s: namespace strings not shared", ns)
			}
		}
	}
}

// count is how many records the index holds.
func count(ix *Index[*testRecord]) int {
	n := 0
	_ = ix.Each(func(*testRecord) bool { n++; return true })
	return n
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
