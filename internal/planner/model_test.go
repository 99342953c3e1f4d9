package planner_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// The model is a namespace whose objects change at random (spec edits,
// renames, overlapping ClusterPullSecrets, broken sources, ServiceAccounts
// and Pods coming and going, foreign and forged Secrets, tampered records,
// finalizers, controller restarts), reconciled after every change as the
// controller does: plan, write in order, stop at the first failure, learn,
// plan again. After every reconcile it checks the invariants of
// docs/controller.md.

type secret struct {
	uid          string
	owner        string // label
	ownerUID     string
	hash         string
	proven       bool // made by the controller
	finalizer    bool // a foreign finalizer: a delete leaves it terminating
	deleting     bool
	byController bool
}

type account struct {
	uid      string
	list     []string
	record   map[string]string
	tampered bool
	optOut   bool
	// added are the names the controller appended (and nobody re-added).
	added map[string]bool
}

type pod struct {
	uid, sa, owner string
	list           []string
	stuck          bool
	finished       bool
	// restartedFor: causes for which this Pod's predecessors were
	// restarted; the same cause must never restart it again.
	restartedFor map[string]bool
}

type workload struct {
	kind, uid string
	template  []string
	budget    int
}

type world struct {
	t   *testing.T
	r   *rand.Rand
	seq int

	labelled bool // the namespace carries team=shop
	cps      map[string]*planner.ClusterPullSecret
	nsOnly   map[string]bool // selects only team=shop namespaces
	appOnly  map[string]bool // selects only ServiceAccounts named app
	secrets  map[string]*secret
	sas      map[string]*account
	pods     map[string]*pod
	work     map[string]*workload
	learned  map[string]string // the reconciler's memory: names a create found taken
	// listing: Pods and templates are not listed yet (a fresh start).
	listing bool
	seen    map[string]int // how often each kind of write or state happened
	log     []string
}

func newWorld(t *testing.T, seed uint64, seen map[string]int) *world {
	w := &world{
		t: t, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), labelled: true,
		cps: map[string]*planner.ClusterPullSecret{}, nsOnly: map[string]bool{}, appOnly: map[string]bool{},
		secrets: map[string]*secret{}, sas: map[string]*account{}, pods: map[string]*pod{},
		work: map[string]*workload{}, learned: map[string]string{}, seen: seen,
	}
	w.sas["default"] = &account{uid: w.uid(), added: map[string]bool{}}
	w.work["web"] = &workload{kind: "ReplicaSet", uid: w.uid(), budget: -1}
	w.work["once"] = &workload{kind: "Job", uid: w.uid(), budget: 2}
	return w
}

func (w *world) uid() string { w.seq++; return fmt.Sprintf("u%d", w.seq) }

func (w *world) pick(options ...string) string { return options[w.r.IntN(len(options))] }

func pickKey[V any](w *world, m map[string]V) (string, bool) {
	if len(m) == 0 {
		return "", false
	}
	keys := slices.Sorted(maps.Keys(m))
	return keys[w.r.IntN(len(keys))], true
}

func (w *world) logf(format string, args ...any) { w.log = append(w.log, fmt.Sprintf(format, args...)) }

var secretNames = []string{"r1", "r2", "r3"}

func (w *world) selectorFor(name string) {
	c := w.cps[name]
	spec := v1alpha1.ClusterPullSecretSpec{}
	if w.nsOnly[name] {
		spec.Namespaces.Selector = labelSelector("team", "shop")
	}
	if w.appOnly[name] {
		spec.ServiceAccounts.Names = []string{"app"}
	}
	c.Selector = selector(w.t, spec)
}

// event changes the world as users, tenants and the cluster would.
func (w *world) event() {
	switch w.r.IntN(23) {
	case 0, 1: // a ClusterPullSecret is created
		name := w.pick("a", "b", "c")
		if _, ok := w.cps[name]; ok {
			return
		}
		w.cps[name] = &planner.ClusterPullSecret{
			Name: name, UID: w.uid(), Created: epoch.Add(secondsOf(w.seq)), SecretName: w.pick(secretNames...),
			RestartPods: w.r.IntN(2) == 0, Source: planner.Source{Hash: "h0", Matches: forRegistry},
		}
		w.nsOnly[name], w.appOnly[name] = w.r.IntN(3) == 0, w.r.IntN(4) == 0
		w.selectorFor(name)
		w.logf("create ClusterPullSecret %s -> %s", name, w.cps[name].SecretName)
	case 2, 3: // renamed
		if name, ok := pickKey(w, w.cps); ok && !w.cps[name].Deleting {
			w.cps[name].SecretName = w.pick(secretNames...)
			w.logf("rename %s -> %s", name, w.cps[name].SecretName)
		}
	case 4: // selectors edited
		if name, ok := pickKey(w, w.cps); ok && !w.cps[name].Deleting {
			w.nsOnly[name], w.appOnly[name] = w.r.IntN(3) == 0, w.r.IntN(4) == 0
			w.selectorFor(name)
			w.logf("selectors of %s: namespaces labelled only %v, app only %v", name, w.nsOnly[name], w.appOnly[name])
		}
	case 5: // deleted (the finalizer holds it until it is cleaned up)
		if name, ok := pickKey(w, w.cps); ok {
			w.cps[name].Deleting = true
			w.logf("delete ClusterPullSecret %s", name)
		}
	case 6: // source breaks, recovers, rotates
		if name, ok := pickKey(w, w.cps); ok {
			c := w.cps[name]
			switch w.r.IntN(3) {
			case 0:
				c.Source.Problem = v1alpha1.ReasonSourceNotFound
			case 1:
				c.Source.Problem = ""
			default:
				c.Source.Hash = w.uid()
			}
			w.logf("source of %s: problem %q hash %s", name, c.Source.Problem, c.Source.Hash)
		}
	case 7: // namespace relabelled
		w.labelled = !w.labelled
		w.logf("namespace labelled %v", w.labelled)
	case 8: // ServiceAccounts come and go
		name := w.pick("app", "builder")
		if _, ok := w.sas[name]; ok {
			delete(w.sas, name)
			w.logf("delete ServiceAccount %s", name)
		} else {
			w.sas[name] = &account{uid: w.uid(), added: map[string]bool{}}
			w.logf("create ServiceAccount %s", name)
		}
	case 9: // a user edits a list by hand
		if name, ok := pickKey(w, w.sas); ok {
			a := w.sas[name]
			if len(a.list) > 0 && w.r.IntN(2) == 0 {
				gone := a.list[w.r.IntN(len(a.list))]
				a.list = slices.DeleteFunc(a.list, func(s string) bool { return s == gone })
				delete(a.added, gone)
				w.logf("user removes %s from %s", gone, name)
			} else if add := w.pick("r1", "r2", "legacy", "theirs"); !slices.Contains(a.list, add) {
				a.list = append(a.list, add)
				w.logf("user adds %s to %s", add, name)
			}
		}
	case 10: // a user's own Secret, or one deleted
		name := w.pick("r1", "r2", "r3", "theirs", "legacy")
		if s, ok := w.secrets[name]; ok {
			if s.finalizer {
				s.deleting = true
			} else {
				delete(w.secrets, name)
			}
			w.logf("user deletes Secret %s", name)
		} else {
			w.secrets[name] = &secret{uid: w.uid()}
			w.logf("user creates Secret %s", name)
		}
	case 11: // a tenant forges the controller's labels
		name := w.pick(secretNames...)
		if _, ok := w.secrets[name]; !ok {
			owner, _ := pickKey(w, w.cps)
			w.secrets[name] = &secret{uid: w.uid(), owner: owner, ownerUID: "forged"}
			if c, ok := w.cps[owner]; ok && w.r.IntN(2) == 0 {
				w.secrets[name].ownerUID = c.UID // labels copied exactly, still no proof
			}
			w.logf("tenant forges Secret %s for %q", name, owner)
		}
	case 12: // a tenant tampers with a record, or the admin resets it
		if name, ok := pickKey(w, w.sas); ok {
			a := w.sas[name]
			if a.tampered {
				a.tampered, a.record = false, nil
				w.logf("admin clears the record of %s", name)
			} else if len(a.record) > 0 {
				a.tampered = true
				w.logf("tenant tampers with the record of %s", name)
			}
		}
	case 13: // opt-out toggled
		if name, ok := pickKey(w, w.sas); ok {
			w.sas[name].optOut = !w.sas[name].optOut
			w.logf("opt-out of %s: %v", name, w.sas[name].optOut)
		}
	case 14, 15: // a workload makes a Pod, as admission would fill it
		name := w.pick("web", "once")
		wl := w.work[name]
		sa := w.pick("default", "app")
		a, ok := w.sas[sa]
		if !ok {
			return
		}
		list := slices.Clone(wl.template)
		if len(list) == 0 {
			list = slices.Clone(a.list)
		}
		id := w.uid()
		w.pods[id] = &pod{uid: id, sa: sa, owner: name, list: list, stuck: w.r.IntN(2) == 0}
		w.logf("%s makes Pod %s with %v", name, id, list)
	case 16: // a Pod gets stuck, finishes, or goes
		if id, ok := pickKey(w, w.pods); ok {
			switch w.r.IntN(3) {
			case 0:
				w.pods[id].stuck = true
			case 1:
				w.pods[id].finished = true
			default:
				delete(w.pods, id)
			}
			w.logf("Pod %s: stuck %v finished %v", id, w.pods[id] != nil && w.pods[id].stuck, w.pods[id] != nil && w.pods[id].finished)
		}
	case 17: // templates edited
		name := w.pick("web", "once")
		w.work[name].template = [][]string{nil, {"legacy"}, {"r1"}, {"legacy", "r2"}}[w.r.IntN(4)]
		w.logf("template of %s lists %v", name, w.work[name].template)
	case 18: // a finalizer on one of our copies
		if name, ok := pickKey(w, w.secrets); ok && w.secrets[name].byController {
			w.secrets[name].finalizer = true
			w.logf("foreign finalizer on %s", name)
		}
	case 19: // the finalizer goes
		for name, s := range w.secrets {
			if s.deleting && w.r.IntN(2) == 0 {
				delete(w.secrets, name)
				w.logf("finalizer removed, %s gone", name)
			}
		}
	case 20: // the controller restarts: its memory is lost, and it plans
		// once before its index of Pods and templates is listed
		w.learned = map[string]string{}
		w.listing = true
		w.logf("controller restart")
	case 21: // a Job's budget changes
		w.work["once"].budget = w.r.IntN(3)
		w.logf("Job budget %d", w.work["once"].budget)
	case 22: // a spec the controller cannot use, or fixed
		if name, ok := pickKey(w, w.cps); ok {
			c := w.cps[name]
			if c.Invalid == "" {
				c.Invalid = "spec.namespaces.include: bad glob"
			} else {
				c.Invalid = ""
			}
			w.logf("spec of %s invalid: %v", name, c.Invalid != "")
		}
	}
}

func (w *world) snapshot() planner.Snapshot {
	s := planner.Snapshot{Namespace: planner.Namespace{Name: "shop"}, Blocked: maps.Clone(w.learned), UsageUnknown: w.listing}
	if w.labelled {
		s.Namespace.Labels = map[string]string{"team": "shop"}
	}
	for _, c := range w.cps {
		cc := *c
		if cc.Invalid != "" {
			cc.Selector = nil
		}
		s.ClusterPullSecrets = append(s.ClusterPullSecrets, cc)
	}
	for name, k := range w.secrets {
		if k.owner == "" && !k.byController {
			continue // not labelled: invisible to the metadata cache
		}
		s.Copies = append(s.Copies, planner.Copy{
			Name: name, UID: k.uid, Owner: k.owner, OwnerUID: k.ownerUID, Hash: k.hash, Proven: k.proven, Deleting: k.deleting,
		})
	}
	for name, a := range w.sas {
		sa := planner.ServiceAccount{Name: name, UID: a.uid, PullSecrets: slices.Clone(a.list), Record: maps.Clone(a.record)}
		if a.tampered {
			sa.RecordProblem = "unproven"
		}
		if a.optOut {
			sa.Annotations = map[string]string{v1alpha1.OptOutAnnotation: "true"}
		}
		s.ServiceAccounts = append(s.ServiceAccounts, sa)
	}
	for id, p := range w.pods {
		pp := planner.Pod{Name: id, UID: id, ServiceAccount: p.sa, PullSecrets: slices.Clone(p.list), SecretRefs: slices.Clone(p.list), Finished: p.finished}
		wl := w.work[p.owner]
		pp.Owner = &planner.Owner{Group: map[string]string{"ReplicaSet": "apps", "Job": "batch"}[wl.kind], Kind: wl.kind, Name: p.owner, UID: wl.uid}
		if p.stuck {
			pp.StuckImages = []string{registry + "shop/web:1"}
		}
		s.Pods = append(s.Pods, pp)
	}
	for name, wl := range w.work {
		s.Workloads = append(s.Workloads, planner.Workload{
			Owner:       planner.Owner{Group: map[string]string{"ReplicaSet": "apps", "Job": "batch"}[wl.kind], Kind: wl.kind, Name: name, UID: wl.uid},
			PullSecrets: slices.Clone(wl.template), SecretRefs: slices.Clone(wl.template), Active: true, FailureBudget: wl.budget,
		})
	}
	return s
}

// carries reports, for each ClusterPullSecret and ServiceAccount it
// selects, whether the ServiceAccount lists a name whose Secret is a copy
// the controller made for that ClusterPullSecret.
func (w *world) carries() map[[2]string]bool {
	out := map[[2]string]bool{}
	for name, a := range w.sas {
		for _, n := range a.list {
			if k, ok := w.secrets[n]; ok && k.byController {
				if c, ok := w.cps[k.owner]; ok && c.UID == k.ownerUID {
					out[[2]string{k.owner, name}] = true
				}
			}
		}
	}
	return out
}

// bound reports whether a ClusterPullSecret must keep the credential on a
// ServiceAccount: it is live, its source usable, and it selects both the
// namespace and the ServiceAccount, whose record is intact.
func (w *world) bound(cpsName, saName string) bool {
	c, a := w.cps[cpsName], w.sas[saName]
	if c == nil || a == nil || c.Deleting || c.Source.Problem != "" || a.tampered || a.optOut {
		return false
	}
	if w.nsOnly[cpsName] && !w.labelled {
		return false
	}
	return !w.appOnly[cpsName] || saName == "app"
}

// frozen lists, for each ClusterPullSecret whose spec or source is
// unusable, its copies and the names recorded for it on intact
// ServiceAccounts: nothing of them may change.
func (w *world) frozen() map[string][]string {
	out := map[string][]string{}
	for name, c := range w.cps {
		if c.Deleting || (c.Invalid == "" && c.Source.Problem == "") {
			continue
		}
		if c.Invalid == "" && w.nsOnly[name] && !w.labelled {
			continue // not selected here: it cleans up
		}
		var held []string
		for sn, k := range w.secrets {
			if k.byController && k.owner == name && k.ownerUID == c.UID {
				held = append(held, "copy "+sn+" "+k.uid+" "+k.hash)
			}
		}
		for an, a := range w.sas {
			for n, by := range a.record {
				if by == name && !a.tampered && slices.Contains(a.list, n) {
					held = append(held, "attached "+n+" to "+an)
				}
			}
		}
		slices.Sort(held)
		out[name] = held
	}
	return out
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("%s\nhistory:\n  %s", fmt.Sprintf(format, args...), strings.Join(w.log, "\n  "))
}

// reconcile plans and writes until a plan writes nothing, checking every
// write.
func (w *world) reconcile() planner.Plan {
	before := w.carries()
	frozen := w.frozen()
	var p planner.Plan
	for attempt := 0; ; attempt++ {
		if attempt == 8 {
			w.fail("no fixpoint after 8 plans: %+v", p)
		}
		s := w.snapshot()
		p = planner.Compute(s)
		w.checkDeterministic(s, p)
		if p.Empty() {
			break
		}
		w.seen["create"] += len(p.CreateCopies)
		w.seen["update"] += len(p.UpdateCopies)
		w.seen["retire"] += len(p.DeleteCopies)
		w.seen["restart"] += len(p.DeletePods)
		for _, e := range p.ServiceAccounts {
			w.seen["attach"] += len(e.Attach)
			w.seen["detach"] += len(e.Detach)
		}
		w.apply(p)
	}
	for _, st := range p.States {
		w.seen["state "+st.Reason]++
		if len(st.Retiring) > 0 {
			w.seen["held"]++
		}
		if len(st.Stuck) > 0 {
			w.seen["stuck reported"]++
		}
	}
	after := w.carries()
	for key := range before {
		if w.bound(key[0], key[1]) && !after[key] {
			w.fail("ServiceAccount %s lost the credential of ClusterPullSecret %s", key[1], key[0])
		}
	}
	if w.listing {
		// The index is listed now: plan again with it, as the controller
		// does for every namespace once it has synced.
		w.listing = false
		w.reconcile()
	}
	if d := cmp.Diff(frozen, w.frozen()); d != "" {
		w.fail("a frozen ClusterPullSecret's copies or attachments changed (-before +after):\n%s", d)
	}
	// A deleted ClusterPullSecret goes once nothing of it is left.
	for name, c := range w.cps {
		if st := p.States[name]; c.Deleting && st.Leftovers == 0 {
			delete(w.cps, name)
		}
	}
	return p
}

// apply makes the plan's writes in order, as the API server would answer
// them, and stops at the first failure (after learning from it).
func (w *world) apply(p planner.Plan) {
	for _, c := range p.CreateCopies {
		if _, taken := w.secrets[c.Name]; taken {
			w.seen["create failed"]++
			w.learned[c.Name] = "Secret " + c.Name + " exists"
			return
		}
		w.secrets[c.Name] = &secret{uid: w.uid(), owner: c.Owner, ownerUID: c.OwnerUID, hash: c.Hash, proven: true, byController: true}
	}
	for _, u := range p.UpdateCopies {
		k := w.secrets[u.Name]
		if k == nil || k.uid != u.UID || !k.byController {
			w.fail("update of Secret %s (%s), which the controller did not make", u.Name, u.UID)
		}
		k.hash = u.Hash
	}
	for _, e := range p.ServiceAccounts {
		a := w.sas[e.ServiceAccount]
		if a.tampered {
			w.fail("edited ServiceAccount %s, whose record was tampered with", e.ServiceAccount)
		}
		for _, name := range e.Detach {
			if !a.added[name] && slices.Contains(a.list, name) {
				w.fail("detached %s from %s, which the controller did not attach", name, e.ServiceAccount)
			}
		}
		list, record, _ := e.Apply(a.list, a.record)
		for _, n := range list {
			if !slices.Contains(a.list, n) {
				a.added[n] = true
			}
		}
		for _, n := range a.list {
			if !slices.Contains(list, n) {
				delete(a.added, n)
			}
		}
		a.list, a.record = list, record
	}
	for _, d := range p.DeleteCopies {
		k := w.secrets[d.Name]
		if k == nil || k.uid != d.UID || !k.byController {
			w.fail("delete of Secret %s (%s), which the controller did not make", d.Name, d.UID)
		}
		if k.finalizer {
			k.deleting = true
		} else {
			delete(w.secrets, d.Name)
		}
	}
	for _, r := range p.DeletePods {
		old := w.pods[r.UID]
		wl := w.work[old.owner]
		cause := r.By + "/" + r.Secret
		if old.restartedFor[cause] {
			w.fail("restarted a replacement of %s again for %s", old.owner, cause)
		}
		delete(w.pods, r.UID)
		// The owner replaces it; admission fills an empty template's list
		// from the ServiceAccount.
		list := slices.Clone(wl.template)
		if len(list) == 0 {
			list = slices.Clone(w.sas[old.sa].list)
		}
		if !slices.Contains(list, r.Secret) {
			w.fail("restarted Pod %s, whose replacement does not get %s: %v", r.UID, r.Secret, list)
		}
		id := w.uid()
		lineage := maps.Clone(old.restartedFor)
		if lineage == nil {
			lineage = map[string]bool{}
		}
		lineage[cause] = true
		w.pods[id] = &pod{uid: id, sa: old.sa, owner: old.owner, list: list, stuck: w.r.IntN(2) == 0, restartedFor: lineage}
		if wl.kind == "Job" && wl.budget > 0 {
			wl.budget--
		}
	}
}

func (w *world) checkDeterministic(s planner.Snapshot, p planner.Plan) {
	shuffled := s
	shuffled.ClusterPullSecrets = shuffle(w.r, s.ClusterPullSecrets)
	shuffled.Copies = shuffle(w.r, s.Copies)
	shuffled.ServiceAccounts = shuffle(w.r, s.ServiceAccounts)
	shuffled.Pods = shuffle(w.r, s.Pods)
	shuffled.Workloads = shuffle(w.r, s.Workloads)
	if d := cmp.Diff(p, planner.Compute(shuffled), cmpopts.EquateEmpty()); d != "" {
		w.fail("the plan depends on input order (-sorted +shuffled):\n%s", d)
	}
}

func shuffle[T any](r *rand.Rand, in []T) []T {
	out := slices.Clone(in)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestInvariantsRandomized(t *testing.T) {
	t.Parallel()
	sequences, steps := 3000, 40
	if testing.Short() {
		sequences = 1500
	}
	seen := map[string]int{}
	for seed := range uint64(sequences) {
		w := newWorld(t, seed, seen)
		for range steps {
			w.event()
			w.reconcile()
		}
		// Idempotence: with nothing changing, another pass writes nothing.
		if p := planner.Compute(w.snapshot()); !p.Empty() {
			w.fail("seed %d: a converged namespace plans writes: %+v", seed, p)
		}
	}
	t.Logf("%d sequences of %d steps: %v", sequences, steps, seen)
	// The run proves something only if every kind of write and state
	// happened often.
	for _, kind := range []string{"create", "update", "retire", "restart", "attach", "detach", "create failed", "held", "stuck reported",
		"state " + v1alpha1.ReasonConflict, "state " + v1alpha1.ReasonRecordInvalid, "state " + v1alpha1.ReasonDeleting,
		"state " + v1alpha1.ReasonSourceNotFound, "state " + v1alpha1.ReasonInvalidSpec, "state " + v1alpha1.ReasonReady} {
		if seen[kind] < 100 {
			t.Errorf("only %d %q in the whole run", seen[kind], kind)
		}
	}
}
