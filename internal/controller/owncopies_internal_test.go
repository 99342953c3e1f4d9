package controller

import "testing"

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
	o.forget("bank", "acme", "")
	if len(o.byNS) != 0 {
		t.Fatalf("empty namespaces are kept: %v", o.byNS)
	}
}
