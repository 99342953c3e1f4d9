package controller

import (
	"fmt"
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestOwnCopiesForgetOnlyTheObjectNamed(t *testing.T) {
	o := newOwnCopies()
	a := ownCopy{uid: "uid-a", owner: "acme", ownerUID: "cps-acme"}
	o.remember("shop", "acme", a)
	o.remember("shop", "beta", ownCopy{uid: "uid-b", owner: "beta", ownerUID: "cps-beta"})
	o.remember("bank", "acme", ownCopy{uid: "uid-c", owner: "acme", ownerUID: "cps-acme"})

	if got, ok := o.lookup("shop", "acme"); !ok || got != a {
		t.Fatalf("lookup: %+v %v", got, ok)
	}
	o.forget("shop", "acme", "uid-other") // another object of the name: kept
	if _, ok := o.lookup("shop", "acme"); !ok {
		t.Fatal("forgot a copy for another object's UID")
	}
	o.forget("shop", "acme", "uid-a")
	if _, ok := o.lookup("shop", "acme"); ok {
		t.Fatal("a deleted copy is still known")
	}
	o.forgetNamespace("shop")
	if _, ok := o.lookup("shop", "beta"); ok {
		t.Fatal("a namespace gone is still known")
	}
	if _, ok := o.lookup("bank", "acme"); !ok {
		t.Fatal("another namespace was forgotten")
	}
	o.forget("bank", "acme", "uid-c")
	if len(o.byNS) != 0 {
		t.Fatalf("empty namespaces are kept: %v", o.byNS)
	}
}

func TestOwnCopiesPruneKeepsOnlyWhatIsAsked(t *testing.T) {
	o := newOwnCopies()
	for _, name := range []string{"listed", "wanted", "gone"} {
		o.remember("shop", name, ownCopy{uid: types.UID("uid-" + name)})
	}
	o.prune("shop", func(name string) bool { return name != "gone" })
	for name, want := range map[string]bool{"listed": true, "wanted": true, "gone": false} {
		if _, ok := o.lookup("shop", name); ok != want {
			t.Errorf("%s remembered: %v, want %v", name, ok, want)
		}
	}
	o.prune("shop", func(string) bool { return false })
	if len(o.byNS) != 0 {
		t.Fatalf("an emptied namespace is kept: %v", o.byNS)
	}
}

// BenchmarkOwnCopiesBytes reports what remembering one copy in each of
// 10,000 namespaces costs.
func BenchmarkOwnCopiesBytes(b *testing.B) {
	const n = 10000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("fleet-%05d", i)
	}
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		o := newOwnCopies()
		for i, ns := range names {
			o.remember(ns, "regcred", ownCopy{uid: types.UID(fmt.Sprintf("uid-%d", i)), owner: "fleet", ownerUID: "owner-uid"})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(o)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/namespace")
	}
}
