package planner_test

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/contest"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// The model is a namespace whose objects change at random (spec edits,
// renames, overlapping ClusterPullSecrets, broken sources, ServiceAccounts
// and Pods coming and going, names listed by hand, foreign and forged
// Secrets, tampered records, finalizers, users editing a list while the
// controller writes it, controller restarts), reconciled after every
// change as the controller does: plan, write in order, stop at the first
// failure, learn, plan again.
//
// The world is the model's own: it makes each write the way the API server
// and docs/controller.md say it happens (a ServiceAccount edit with
// applyAsDocumented, never the planner's Edit.Apply; a deleted Pod replaced
// by its owner; a deleted copy held by a finalizer), and every check reads
// the world after the write, through oracles written from
// docs/controller.md and the field notes on Kubernetes (admission fills
// an empty Pod list from the ServiceAccount; a Job fails past its backoff
// limit), not from rules.go:
//
//   - after every write: no selected ServiceAccount stops carrying a
//     ClusterPullSecret's credential; no name the user listed is removed or
//     recorded; only the controller's own copies are updated or deleted,
//     and only copies nothing uses (ServiceAccount, live Pod, template that
//     can still make Pods) are retired, never while usage is unknown;
//     a Pod is restarted only when its replacement gets the credential,
//     never twice for one cause, never past a Job's backoff budget;
//   - at every plan: the plan does not depend on input order; a Ready state
//     is true of the world; a plan that deletes nothing, once made in full,
//     is a fixpoint; After predicts the world the writes leave;
//   - at every fixpoint: status is true (Ready iff every selected
//     ServiceAccount carries a live, current copy), and every rename,
//     retirement, attachment, restart and deletion that is due has happened.

// maxPlans bounds the plans made in full before a fixpoint when nothing
// else changes. Only a plan that deletes can leave work for the next (see
// docs/controller.md, "Fixpoint"); 2.4 million random steps needed at most
// three.
const maxPlans = 4

type secret struct {
	uid          string
	owner        string // label
	ownerUID     string
	hash         string
	typ          string // the Secret type, which never changes
	finalizer    bool   // a foreign finalizer: a delete leaves it terminating
	deleting     bool
	byController bool // made by the controller (so its proof is valid)
	// unverifiable: carries a proof no key of the controller checks (made
	// with a key replaced since); adopted when it is exactly what the
	// controller would write.
	unverifiable bool
	// signedOld: its proof is an older key's of the ring.
	signedOld bool
}

type account struct {
	uid      string
	list     []string
	record   map[string]string
	tampered bool
	// restored: recreated by a restore (a new UID) with its list and
	// annotations, or its proof made with a key replaced since: the record
	// reads, its proof does not check; adopted when every entry is sound.
	restored bool
	// signedOld: its record's proof is an older key's of the ring.
	signedOld bool
	optOut    bool
	// enforcing: annotated kubernetes.io/enforce-mountable-secrets, so the
	// pod-injection policy skips its Pods.
	enforcing bool
	// added are the names the controller appended (and nobody re-added).
	added map[string]bool
	// version counts the writes of the list and record, as resourceVersion.
	version int
}

// alone: the controller cannot trust the record, so it leaves the
// ServiceAccount alone (unless it adopts a restored record).
func (a *account) alone() bool { return a.tampered || a.restored }

type pod struct {
	uid, sa, owner string
	list           []string
	stuck          bool
	finished       bool
	deleting       bool
	// restartedFor: the cause its predecessor was restarted for, which
	// must never restart it again.
	restartedFor string
}

// injection is a published status.injection: the name the policy adds to
// new Pods, since when, and the name it added before (which the API
// server, reading params through a watch, may still use for a moment).
type injection struct {
	name, prev string
	since      time.Time
}

// grace is how long after publication the API server is assumed to inject
// the new name (the controller's injectionGrace): before, it may still
// inject the previous one, or nothing.
const grace = 5 * time.Second

type workload struct {
	kind, group, uid string
	template         []string
	budget           int
	active           bool
}

type world struct {
	t    *testing.T
	seed uint64
	r    *rand.Rand
	seq  int

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

	// now is the clock: the snapshot's Now, injection's grace, fights'
	// backoff.
	now time.Time
	// podsMode: spec.attachTo is Pods.
	podsMode map[string]bool
	// srcType is the type of each ClusterPullSecret's source Secret; its
	// Source.Hash names the credential, whatever the type.
	srcType map[string]string
	// policy: the pod-injection policy is installed and the API server
	// serves MutatingAdmissionPolicy.
	policy bool
	// published is each ClusterPullSecret's status.injection, as the
	// ClusterPullSecret reconciler last wrote it (nil: none).
	published map[string]*injection
	// tracker is the controller's memory of the names it put back after
	// someone else removed them, by ServiceAccount: lost at a restart.
	tracker map[string]map[string][]time.Time
	// gitops: a GitOps writer renders that ServiceAccount's list (and
	// reapplies it as time passes), owning all of it.
	gitops map[string][]string
	seen   map[string]int // how often each kind of write, state and check happened
	log    []string
	// plan is the plan being made, for the failure's report.
	plan planner.Plan
}

func newWorld(t *testing.T, seed uint64, seen map[string]int) *world {
	w := &world{
		t: t, seed: seed, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), labelled: true,
		cps: map[string]*planner.ClusterPullSecret{}, nsOnly: map[string]bool{}, appOnly: map[string]bool{},
		secrets: map[string]*secret{}, sas: map[string]*account{}, pods: map[string]*pod{},
		work: map[string]*workload{}, learned: map[string]string{}, seen: seen,
		now: epoch.Add(time.Hour), podsMode: map[string]bool{}, srcType: map[string]string{}, policy: true, published: map[string]*injection{},
		tracker: map[string]map[string][]time.Time{}, gitops: map[string][]string{},
	}
	w.sas["default"] = &account{uid: w.uid(), added: map[string]bool{}}
	w.work["web"] = &workload{kind: "ReplicaSet", group: "apps", uid: w.uid(), budget: -1, active: true}
	w.work["once"] = &workload{kind: "Job", group: "batch", uid: w.uid(), budget: 2, active: true}
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

// secretTypes are the two types of a pull secret, which hold the same
// credential ({"auths": X} and X).
var secretTypes = []string{"kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"}

// proofOf is the proof annotation the reader sees on a Secret: the signing
// key's ("": the writer's own), an older key's, or one no key checks.
func proofOf(k *secret) string {
	switch {
	case k.unverifiable:
		return "unverifiable"
	case k.byController && k.signedOld:
		return "older key"
	}
	return ""
}

// credIn is what a Secret of type t holds when it carries c's credential.
func (w *world) credIn(c, t string) string { return w.cps[c].Source.Hash + "@" + t }

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
	switch w.r.IntN(55) {
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
		w.podsMode[name], w.published[name] = w.r.IntN(3) == 0, nil
		w.srcType[name] = w.pick(secretTypes...)
		w.selectorFor(name)
		w.logf("create ClusterPullSecret %s -> %s, Pods mode %v", name, w.cps[name].SecretName, w.podsMode[name])
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
	case 6, 49, 50: // source breaks, recovers, rotates, changes type
		if name, ok := pickKey(w, w.cps); ok {
			c := w.cps[name]
			switch w.r.IntN(4) {
			case 0:
				c.Source.Problem = v1alpha1.ReasonSourceNotFound
			case 1:
				c.Source.Problem = ""
			case 2:
				c.Source.Hash = w.uid()
			default:
				// Replaced by a Secret of the other type, with the same
				// credential or a new one.
				w.srcType[name] = w.pick(secretTypes...)
				if w.r.IntN(2) == 0 {
					c.Source.Hash = w.uid()
				}
			}
			w.logf("source of %s: problem %q credential %s type %s", name, c.Source.Problem, c.Source.Hash, w.srcType[name])
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
			w.userEdit(name)
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
			w.secrets[name] = &secret{uid: w.uid(), typ: w.pick(secretTypes...)}
			w.logf("user creates Secret %s", name)
		}
	case 11: // a tenant forges the controller's labels
		name := w.pick(secretNames...)
		if _, ok := w.secrets[name]; !ok {
			owner, _ := pickKey(w, w.cps)
			w.secrets[name] = &secret{uid: w.uid(), owner: owner, ownerUID: "forged", typ: w.pick(secretTypes...)}
			if c, ok := w.cps[owner]; ok && w.r.IntN(2) == 0 {
				w.secrets[name].ownerUID = c.UID // labels copied exactly, still no proof
				if w.r.IntN(2) == 0 {
					// A proof copied too, over the credential the tenant
					// reads from the copy in its namespace: adoptable, and
					// adopting it grants nothing.
					w.secrets[name].unverifiable = true
					w.secrets[name].hash = w.credIn(owner, w.secrets[name].typ)
				}
			}
			w.logf("tenant forges Secret %s for %q", name, owner)
		}
	case 12: // a tenant tampers with a record, or the admin resets it
		if name, ok := pickKey(w, w.sas); ok {
			a := w.sas[name]
			if a.tampered {
				a.tampered, a.record = false, nil
				a.version++
				w.logf("admin clears the record of %s", name)
			} else if len(a.record) > 0 {
				// An entry for a name no ClusterPullSecret attaches.
				a.tampered, a.restored = true, false
				a.record = maps.Clone(a.record)
				a.record["legacy"] = "ghost"
				a.version++
				w.logf("tenant tampers with the record of %s", name)
			}
		}
	case 13: // opt-out toggled
		if name, ok := pickKey(w, w.sas); ok {
			w.sas[name].optOut = !w.sas[name].optOut
			w.sas[name].version++
			w.logf("opt-out of %s: %v", name, w.sas[name].optOut)
		}
	case 14, 15: // a workload makes a Pod, as admission would fill it
		w.makePod(w.r.IntN(2) == 0)
	case 16: // a Pod gets stuck, finishes, terminates or goes
		if id, ok := pickKey(w, w.pods); ok {
			switch w.r.IntN(4) {
			case 0:
				w.pods[id].stuck = true
			case 1:
				w.pods[id].finished = true
			case 2:
				w.pods[id].deleting = true
			default:
				delete(w.pods, id)
			}
			w.logf("Pod %s: %+v", id, w.pods[id])
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
	case 19: // finalizers go, terminating Pods go
		for name, s := range w.secrets {
			if s.deleting && w.r.IntN(2) == 0 {
				delete(w.secrets, name)
				w.logf("finalizer removed, %s gone", name)
			}
		}
		for id, p := range w.pods {
			if p.deleting {
				delete(w.pods, id)
				w.logf("Pod %s gone", id)
			}
		}
	case 20: // the controller restarts: its memory is lost, and it plans
		// once before its index of Pods and templates is listed
		w.learned = map[string]string{}
		w.tracker = map[string]map[string][]time.Time{}
		w.listing = true
		w.logf("controller restart")
	case 21: // a Job's budget changes, or it finishes, or runs again
		wl := w.work["once"]
		switch w.r.IntN(3) {
		case 0:
			wl.budget = w.r.IntN(3)
		case 1:
			wl.active = false
			for _, p := range w.pods {
				if p.owner == "once" {
					p.finished = true
				}
			}
		default:
			wl.active, wl.budget = true, 1+w.r.IntN(2)
		}
		w.logf("Job active %v budget %d", wl.active, wl.budget)
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
	case 23: // the backoff of a name found taken runs out
		if name, ok := pickKey(w, w.learned); ok {
			delete(w.learned, name)
			w.logf("backoff of %s over", name)
		}
	case 24, 25: // drift: a user deletes one of the controller's copies, or
		// removes a name it attached
		if name, ok := pickKey(w, w.secrets); ok && w.secrets[name].byController && w.r.IntN(2) == 0 {
			if w.secrets[name].finalizer {
				w.secrets[name].deleting = true
			} else {
				delete(w.secrets, name)
			}
			w.logf("user deletes copy %s", name)
		} else if sa, ok := pickKey(w, w.sas); ok && len(w.sas[sa].record) > 0 {
			a := w.sas[sa]
			gone, _ := pickKey(w, a.record)
			a.list = slices.DeleteFunc(a.list, func(s string) bool { return s == gone })
			delete(a.added, gone)
			a.version++
			w.logf("user removes %s, recorded, from %s", gone, sa)
		}
	case 26, 27, 28: // an older ClusterPullSecret takes over a name a newer one attached
		w.takeOver()
	case 29, 30: // attachTo switched between ServiceAccounts and Pods
		if name, ok := pickKey(w, w.cps); ok && !w.cps[name].Deleting {
			w.podsMode[name] = !w.podsMode[name]
			w.logf("%s switched to Pods mode %v", name, w.podsMode[name])

		}
	case 31, 32: // the ClusterPullSecret reconciler writes status.injection
		for _, name := range slices.Sorted(maps.Keys(w.cps)) {
			if w.r.IntN(4) != 0 {
				w.publish(name)
			}
		}
	case 33: // the pod-injection policy is installed or removed
		if w.r.IntN(2) == 0 {
			w.policy = !w.policy
			w.logf("pod-injection policy available %v", w.policy)
		}
	case 34, 35, 36, 40, 41: // time passes; GitOps writers apply their lists again
		w.now = w.now.Add([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 6 * time.Second, 30 * time.Second, 2 * time.Minute, 20 * time.Minute}[w.r.IntN(7)])
		w.logf("now %s", w.now.Sub(epoch))
		for _, sa := range slices.Sorted(maps.Keys(w.gitops)) {
			w.gitopsApply(sa)
		}
	case 37, 38: // a GitOps writer starts or stops rendering a list
		name := w.pick("default", "app")
		if _, ok := w.gitops[name]; ok && w.r.IntN(3) == 0 {
			delete(w.gitops, name)
			w.logf("GitOps writer leaves %s", name)
		} else if ok {
			w.gitopsApply(name)
		} else if _, ok := w.sas[name]; ok {
			w.gitops[name] = [][]string{nil, {"legacy"}}[w.r.IntN(2)]
			w.logf("GitOps writer renders %s: %v", name, w.gitops[name])
			w.gitopsApply(name)
		}
	case 42, 43: // a workload makes a Pod that fails to pull
		w.makePod(true)
	case 44, 45, 47, 48: // again, as in 26-28
		w.takeOver()
	case 46: // a Pod fails to pull; a ClusterPullSecret, fixed and set to
		// restart Pods, switches to Pods mode, the switch is published and
		// the API server reads it
		if name, ok := pickKey(w, w.cps); ok && !w.cps[name].Deleting && !w.podsMode[name] {
			if w.r.IntN(2) == 0 {
				// Its own list hides the ServiceAccount's; the policy appends.
				w.work["web"].template, w.work["once"].template = []string{"legacy"}, []string{"legacy"}
				w.logf("templates of web and once list [legacy]")
			}
			w.makePod(true)
			c := w.cps[name]
			w.podsMode[name], c.RestartPods, c.Invalid, c.Source.Problem, w.nsOnly[name] = true, true, "", "", false
			w.selectorFor(name)
			w.logf("%s fixed, selecting namespaces by name only, switched to Pods mode, restarting Pods", name)
			w.publish(name)
			w.now = w.now.Add(grace)
			w.logf("now %s", w.now.Sub(epoch))
		}
	case 51, 52: // a restore recreates a ServiceAccount with its list and
		// annotations: a new UID, which its record's proof binds
		if name, ok := pickKey(w, w.sas); ok && len(w.sas[name].record) > 0 && !w.sas[name].tampered {
			a := w.sas[name]
			a.uid, a.restored, a.signedOld = w.uid(), true, false
			a.version++
			w.logf("restore recreates ServiceAccount %s with its record %v", name, a.record)
		}
	case 53: // the key Secret replaced while the controller is down: no
		// proof checks any more; the controller starts again
		for name, k := range w.secrets {
			if k.byController {
				k.byController, k.unverifiable, k.signedOld = false, true, false
				w.logf("copy %s: its proof no longer checks", name)
			}
		}
		for _, a := range w.sas {
			if len(a.record) > 0 && !a.tampered {
				a.restored, a.signedOld = true, false
			}
		}
		w.learned = map[string]string{}
		w.tracker = map[string]map[string][]time.Time{}
		w.listing = true
		w.logf("key replaced, controller restart")
	case 54: // a rotation: every proof is an older key's
		for _, k := range w.secrets {
			if k.byController {
				k.signedOld = true
			}
		}
		for _, a := range w.sas {
			if len(a.record) > 0 && !a.alone() {
				a.signedOld = true
			}
		}
		w.logf("key rotated")
	case 39: // enforce-mountable-secrets toggled
		if name, ok := pickKey(w, w.sas); ok {
			w.sas[name].enforcing = !w.sas[name].enforcing
			w.sas[name].version++
			w.logf("%s enforces mountable secrets: %v", name, w.sas[name].enforcing)
		}
	}
}

// makePod: a workload makes a Pod, as admission fills it.
func (w *world) makePod(stuck bool) {
	name := w.pick("web", "once")
	wl := w.work[name]
	sa := w.pick("default", "app")
	if _, ok := w.sas[sa]; !ok || !wl.active {
		return
	}
	list := w.admit(wl.template, sa)
	id := w.uid()
	w.pods[id] = &pod{uid: id, sa: sa, owner: name, list: list, stuck: stuck}
	w.logf("%s makes Pod %s with %v, stuck %v", name, id, list, stuck)
}

// takeOver: an older ClusterPullSecret, fixed and edited to select
// every ServiceAccount, is renamed onto the name a newer one holds and has
// attached here; a user deletes that copy, so the older one, first
// in line, makes it again while the records still name the newer
// one; and the newer one may then let go.
func (w *world) takeOver() {
	for _, sa := range slices.Sorted(maps.Keys(w.sas)) {
		a := w.sas[sa]
		for _, n := range slices.Sorted(maps.Keys(a.record)) {
			holder := a.record[n]
			if a.alone() || w.maker(n) != holder || w.secrets[n].finalizer {
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(w.cps)) {
				c := w.cps[name]
				if name == holder || c.Deleting || !c.Created.Before(w.cps[holder].Created) {
					continue
				}
				c.SecretName, w.nsOnly[name], w.appOnly[name], c.Invalid, c.Source.Problem = n, false, false, "", ""
				w.selectorFor(name)
				delete(w.secrets, n)
				w.logf("rename %s -> %s, selecting all, held by the newer %s; user deletes copy %s", name, n, holder, n)
				switch w.r.IntN(3) {
				case 0:
					w.cps[holder].Deleting = true
					w.logf("delete ClusterPullSecret %s", holder)
				case 1:
					w.cps[holder].SecretName = w.pick(secretNames...)
					w.logf("rename %s -> %s", holder, w.cps[holder].SecretName)
				}
				return
			}
		}
	}
}

// gitopsApply: a GitOps writer applies its list with server-side apply,
// owning the atomic list whole: every other name goes.
func (w *world) gitopsApply(name string) {
	a := w.sas[name]
	if a == nil || slices.Equal(a.list, w.gitops[name]) {
		return
	}
	for _, n := range a.list {
		if !slices.Contains(w.gitops[name], n) {
			delete(a.added, n)
		}
	}
	a.list = slices.Clone(w.gitops[name])
	a.version++
	w.seen["GitOps apply"]++
	w.logf("GitOps writer sets %s to %v", name, a.list)
}

// publish is the ClusterPullSecret reconciler writing status.injection as
// the API reference of status.injection says: published for Pods mode while the policy works (the name, since when it is this name);
// kept through a broken source, and through a switch back to
// ServiceAccounts until the namespaces are Ready; dropped when the policy
// is gone. An invalid spec or a deletion leaves status as it is.
func (w *world) publish(name string) {
	c, old := w.cps[name], w.published[name]
	var next *injection
	switch {
	case c.Invalid != "" || c.Deleting:
		return
	case !w.podsMode[name]:
		if old != nil && w.nsSelected(name) && !w.ready(name) {
			return
		}
	case !w.policy:
	case c.Source.Problem != "":
		return
	case old != nil && old.name == c.SecretName:
		return
	default:
		next = &injection{name: c.SecretName, since: w.now}
		if old != nil {
			next.prev = old.name
		}
	}
	w.published[name] = next
	w.logf("status.injection of %s: %+v", name, next)
}

// injected lists the names the API server may add to a new Pod for c now
// (nil: none): the published one, and during the grace after a change the
// one before ("" when there was none).
func (w *world) injected(c string) []string {
	inj := w.published[c]
	if !w.policy || inj == nil {
		return nil
	}
	if w.now.Before(inj.since.Add(grace)) {
		return []string{inj.name, inj.prev}
	}
	return []string{inj.name}
}

// skipped: the policy does not inject Pods of this ServiceAccount for c:
// c does not select it (by name and annotations: the policy never sees
// its labels), or it enforces mountable secrets.
func (w *world) skipped(c, sa string) bool {
	a := w.sas[sa]
	return a == nil || a.enforcing || !w.saSelected(c, sa) || !w.nsSelected(c) || w.cps[c].Invalid != ""
}

// servedByPolicy: every name the API server may inject into a new Pod of
// sa for c is a live copy of c's.
func (w *world) servedByPolicy(c, sa string) bool {
	names := w.injected(c)
	if len(names) == 0 || w.skipped(c, sa) {
		return false
	}
	for _, n := range names {
		if n == "" || !w.liveCopy(c, n) {
			return false
		}
	}
	return true
}

// injecting: the policy gives c's current name to new Pods, and has for
// longer than the API server's lag.
func (w *world) injecting(c string) bool {
	inj := w.published[c]
	return w.policy && inj != nil && inj.name == w.cps[c].SecretName && !w.now.Before(inj.since.Add(grace))
}

// served: a new Pod of sa that lists no pull secret of its own gets c's
// credential, from the ServiceAccount's list or from the policy.
func (w *world) served(c, sa string) bool { return w.carries(c, sa) || w.servedByPolicy(c, sa) }

// admit fills a new Pod's list as admission does: the ServiceAccount's list
// when it has none, then the policy's names (one of them, during a
// change's grace).
func (w *world) admit(own []string, sa string) []string {
	list := slices.Clone(own)
	if len(list) == 0 {
		list = slices.Clone(w.sas[sa].list)
	}
	for _, c := range slices.Sorted(maps.Keys(w.cps)) {
		names := w.injected(c)
		if len(names) == 0 || w.skipped(c, sa) {
			continue
		}
		if n := names[w.r.IntN(len(names))]; n != "" && !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list
}

// userEdit removes a name from a list, or lists one by hand (never a name
// the record holds while it is not listed: the controller could not tell
// it from its own).
func (w *world) userEdit(name string) {
	a := w.sas[name]
	if len(a.list) > 0 && w.r.IntN(2) == 0 {
		gone := a.list[w.r.IntN(len(a.list))]
		a.list = slices.DeleteFunc(a.list, func(s string) bool { return s == gone })
		delete(a.added, gone)
		a.version++
		w.logf("user removes %s from %s", gone, name)
		return
	}
	add := w.pick("r1", "r2", "r3", "legacy", "theirs")
	if _, recorded := a.record[add]; !slices.Contains(a.list, add) && !recorded {
		a.list = append(a.list, add)
		a.version++
		w.logf("user adds %s to %s", add, name)
	}
}

// race: a user edits the list between the plan and the write, so the
// writer applies the edit to the newer list. The user removes a name, or
// lists by hand one the edit attaches, or one of their own.
func (w *world) race(a *account, e planner.Edit) {
	w.seen["raced edit"]++
	if len(a.list) > 0 && w.r.IntN(2) == 0 {
		gone := a.list[w.r.IntN(len(a.list))]
		a.list = slices.DeleteFunc(a.list, func(s string) bool { return s == gone })
		delete(a.added, gone)
		a.version++
		w.logf("race: user removes %s from %s", gone, e.ServiceAccount)
		return
	}
	add := w.pick("legacy", "theirs")
	if len(e.Attach) > 0 && w.r.IntN(2) == 0 {
		add = e.Attach[w.r.IntN(len(e.Attach))].Secret
	}
	if _, recorded := a.record[add]; !slices.Contains(a.list, add) && !recorded {
		a.list = append(a.list, add)
		a.version++
		w.logf("race: user adds %s to %s", add, e.ServiceAccount)
	}
}

func (w *world) snapshot() planner.Snapshot {
	s := planner.Snapshot{Namespace: planner.Namespace{Name: "shop"}, Blocked: maps.Clone(w.learned), UsageUnknown: w.listing, Now: w.now}
	if w.labelled {
		s.Namespace.Labels = map[string]string{"team": "shop"}
	}
	for _, c := range w.cps {
		cc := *c
		if cc.Invalid != "" {
			cc.Selector = nil
		}
		// The source's content, and the credential in each type.
		cc.Source.Hash, cc.Source.Type = w.credIn(c.Name, w.srcType[c.Name]), w.srcType[c.Name]
		cc.Source.HashAs = map[string]string{}
		for _, t := range secretTypes {
			cc.Source.HashAs[t] = w.credIn(c.Name, t)
		}
		// As the reader derives them from the policy's presence and
		// status.injection.
		cc.AttachToPods = w.podsMode[c.Name]
		if cc.AttachToPods && !w.policy {
			cc.InjectionProblem = "the MutatingAdmissionPolicy pullsecrets-pod-injection is not installed"
		}
		if inj := w.published[c.Name]; w.policy && inj != nil {
			cc.Injected = inj.name
			if inj.name == c.SecretName {
				cc.InjectingFrom = inj.since.Add(grace)
			}
		}
		s.ClusterPullSecrets = append(s.ClusterPullSecrets, cc)
	}
	for name, k := range w.secrets {
		if k.owner == "" && !k.byController {
			continue // not labelled: invisible to the metadata cache
		}
		s.Copies = append(s.Copies, planner.Copy{
			Name: name, UID: k.uid, Owner: k.owner, OwnerUID: k.ownerUID, Hash: k.hash, Type: k.typ, Proven: k.byController, Deleting: k.deleting,
			Proof: proofOf(k), Resign: k.byController && k.signedOld,
		})
	}
	for name, a := range w.sas {
		sa := planner.ServiceAccount{
			Name: name, UID: a.uid, ResourceVersion: strconv.Itoa(a.version), PullSecrets: slices.Clone(a.list), Record: maps.Clone(a.record),
		}
		if a.alone() {
			// As the reader does: an unproven record is not trusted, only
			// offered for adoption.
			sa.RecordProblem, sa.Record, sa.Unverified = "unproven", nil, maps.Clone(a.record)
		}
		sa.RecordResign = a.signedOld && !a.alone()
		if a.optOut || a.enforcing {
			sa.Annotations = map[string]string{}
		}
		if a.optOut {
			sa.Annotations[v1alpha1.OptOutAnnotation] = "true"
		}
		if a.enforcing {
			sa.Annotations["kubernetes.io/enforce-mountable-secrets"] = "true"
		}
		if m := w.tracker[name]; len(m) > 0 {
			sa.Reattached = map[string][]time.Time{}
			for n, times := range m {
				sa.Reattached[n] = slices.Clone(times)
			}
		}
		s.ServiceAccounts = append(s.ServiceAccounts, sa)
	}
	for id, p := range w.pods {
		wl := w.work[p.owner]
		pp := planner.Pod{
			Name: id, UID: id, ServiceAccount: p.sa, PullSecrets: slices.Clone(p.list), SecretRefs: slices.Clone(p.list),
			Finished: p.finished, Deleting: p.deleting, Owner: &planner.Owner{Group: wl.group, Kind: wl.kind, Name: p.owner, UID: wl.uid},
		}
		if p.stuck {
			pp.StuckImages = []string{registry + "shop/web:1"}
		}
		s.Pods = append(s.Pods, pp)
	}
	for name, wl := range w.work {
		s.Workloads = append(s.Workloads, planner.Workload{
			Owner:       planner.Owner{Group: wl.group, Kind: wl.kind, Name: name, UID: wl.uid},
			PullSecrets: slices.Clone(wl.template), SecretRefs: slices.Clone(wl.template), Active: wl.active, FailureBudget: wl.budget,
		})
	}
	return s
}

// The oracles: what docs/controller.md promises, read off the world.

func (w *world) nsSelected(c string) bool { return !w.nsOnly[c] || w.labelled }

func (w *world) saSelected(c, sa string) bool {
	return !w.sas[sa].optOut && (!w.appOnly[c] || sa == "app")
}

// active: the ClusterPullSecret is enforced here (live, valid spec, usable
// source, the namespace selected).
func (w *world) active(c string) bool {
	k := w.cps[c]
	return k != nil && !k.Deleting && k.Invalid == "" && k.Source.Problem == "" && w.nsSelected(c)
}

// frozen: "a broken source or spec freezes everything of that
// ClusterPullSecret as it is" (in a namespace it still selects; an invalid
// spec's selection is unknown).
func (w *world) frozen(c string) bool {
	k := w.cps[c]
	return k != nil && !k.Deleting && (k.Invalid != "" || (k.Source.Problem != "" && w.nsSelected(c)))
}

// maker is the live ClusterPullSecret a Secret is a copy of, or "".
func (w *world) maker(name string) string {
	k := w.secrets[name]
	if k == nil || !k.byController {
		return ""
	}
	if c := w.cps[k.owner]; c != nil && c.UID == k.ownerUID {
		return k.owner
	}
	return ""
}

// adoptableCopy: the Secret carries a proof no key checks, and is exactly
// what the controller would write there: marked for a live, active
// ClusterPullSecret by name and UID, at its current name, holding its
// current credential.
func (w *world) adoptableCopy(name string) bool {
	k := w.secrets[name]
	if k == nil || !k.unverifiable || k.deleting {
		return false
	}
	c := w.cps[k.owner]
	return c != nil && c.UID == k.ownerUID && w.active(k.owner) && c.SecretName == name && w.current(k.owner, name)
}

// soundRecord: every entry of a ServiceAccount's record is a name the
// controller would attach there itself: listed, the current name of the
// active ServiceAccounts-mode ClusterPullSecret it names, which selects
// the ServiceAccount and holds the name with a live copy.
func (w *world) soundRecord(sa string) bool {
	a := w.sas[sa]
	if len(a.record) == 0 {
		return false
	}
	for n, by := range a.record {
		c := w.cps[by]
		if c == nil || !slices.Contains(a.list, n) || !w.active(by) || w.podsMode[by] || c.SecretName != n || !w.saSelected(by, sa) || !w.liveCopy(by, n) {
			return false
		}
		if _, taken := w.learned[n]; taken {
			return false
		}
	}
	return true
}

// current: the Secret name holds c's credential, in its own type.
func (w *world) current(c, name string) bool {
	k := w.secrets[name]
	return k != nil && k.hash == w.credIn(c, k.typ)
}

// liveCopy: name is a copy of c's that is not being deleted.
func (w *world) liveCopy(c, name string) bool {
	return w.maker(name) == c && !w.secrets[name].deleting
}

// carries: the ServiceAccount lists a name whose Secret is a live copy of c.
func (w *world) carries(c, sa string) bool {
	return slices.ContainsFunc(w.sas[sa].list, func(n string) bool { return w.liveCopy(c, n) })
}

// bound: the ServiceAccount must keep c's credential: c is live and
// selects it (or is frozen with a spec whose selection is unknown), and its
// record is intact.
func (w *world) bound(c, sa string) bool {
	k, a := w.cps[c], w.sas[sa]
	if k == nil || a == nil || k.Deleting || a.alone() {
		return false
	}
	return k.Invalid != "" || (w.nsSelected(c) && w.saSelected(c, sa))
}

// holders lists what uses a Secret: ServiceAccounts listing it, live Pods
// reading it, templates that can still make Pods reading it, the
// pod-injection policy adding it to new Pods here for the
// ClusterPullSecret it is a copy of.
func (w *world) holders(name string) []string {
	var out []string
	for n, a := range w.sas {
		if slices.Contains(a.list, name) {
			out = append(out, "ServiceAccount "+n)
		}
	}
	for id, p := range w.pods {
		if !p.finished && !p.deleting && slices.Contains(p.list, name) {
			out = append(out, "Pod "+id)
		}
	}
	for n, wl := range w.work {
		if wl.active && slices.Contains(wl.template, name) {
			out = append(out, wl.kind+" "+n)
		}
	}
	for c := range w.cps {
		if w.nsSelected(c) && w.maker(name) == c && slices.Contains(w.injected(c), name) {
			out = append(out, "the pod-injection policy for "+c)
		}
	}
	return out
}

// ready: every selected ServiceAccount carries a live, current copy of c,
// which exists, and none of them is left alone for a tampered record.
func (w *world) ready(c string) bool {
	if !w.active(c) {
		return false
	}
	k := w.cps[c]
	if !w.liveCopy(c, k.SecretName) || !w.current(c, k.SecretName) {
		return false
	}
	if w.podsMode[c] {
		// Pods mode: the policy gives the name to new Pods, and no name
		// attached for it before the switch is left on a ServiceAccount.
		return w.injecting(c) && len(w.attachedFor(c)) == 0
	}
	for name, a := range w.sas {
		if w.saSelected(c, name) && (a.alone() || !slices.Contains(a.list, k.SecretName)) {
			return false
		}
	}
	return len(w.contested(c)) == 0
}

// attachedFor lists the intact ServiceAccounts that list a name recorded
// for c, but those whose Pods the policy skips (enforcing mountable
// secrets), for which the list is the only way.
func (w *world) attachedFor(c string) []string {
	var out []string
	for name, a := range w.sas {
		for n, by := range a.record {
			if by == c && !a.alone() && !a.enforcing && slices.Contains(a.list, n) {
				out = append(out, name)
			}
		}
	}
	return out
}

// fightPolicy is how the docs say a fight is answered: the first Free
// re-attachments at once, then each after a wait that starts at Base and
// doubles up to Max, counting those of the last Memory.
var fightPolicy = contest.DefaultPolicy()

// remembered lists the re-attachments of n to sa the controller still
// counts, oldest first.
func (w *world) remembered(sa, n string) []time.Time {
	var out []time.Time
	for _, t := range w.tracker[sa][n] {
		if w.now.Sub(t) < fightPolicy.Memory && !t.After(w.now) {
			out = append(out, t)
		}
	}
	return out
}

// due is when a name the controller attached and someone else removed may
// be put back: at once for the first Free times, then Base after the last
// re-attachment, doubling with each one remembered, at most Max.
func (w *world) due(sa, n string) time.Time {
	r := w.remembered(sa, n)
	if len(r) < fightPolicy.Free {
		return time.Time{}
	}
	wait := fightPolicy.Base
	for range len(r) - fightPolicy.Free {
		wait = min(2*wait, fightPolicy.Max)
	}
	return r[len(r)-1].Add(wait)
}

// wantsOn: c, in ServiceAccounts mode, holds its name here with a live copy
// and selects the intact ServiceAccount sa, so the name belongs on it.
func (w *world) wantsOn(c, sa string) bool {
	k, a := w.cps[c], w.sas[sa]
	if !w.active(c) || w.podsMode[c] || a == nil || a.alone() || !w.saSelected(c, sa) {
		return false
	}
	_, taken := w.learned[k.SecretName]
	return !taken && w.liveCopy(c, k.SecretName)
}

// fight is what a state says of a fight on one ServiceAccount.
type fight struct {
	losses int
	next   time.Time
}

// contested: the ServiceAccounts where, by the contest policy, a fight
// over c's name is to be reported: it was put back at least Free times
// lately and is missing again, or was put back less than Quiet ago.
func (w *world) contested(c string) map[string]fight {
	out := map[string]fight{}
	n := w.cps[c].SecretName
	for sa, a := range w.sas {
		if !w.wantsOn(c, sa) {
			continue
		}
		times := w.tracker[sa][n]
		var d contest.Decision
		f := fight{losses: len(w.remembered(sa, n))}
		switch {
		case slices.Contains(a.list, n):
			d = fightPolicy.Holding(times, w.now)
		case a.record[n] == c:
			d = fightPolicy.Lost(times, w.now)
			f.next = w.due(sa, n) // when it is put back (zero: it is there)
		}
		if d.Contested {
			out[sa] = f
		}
	}
	return out
}

// restartable: a stuck Pod c would restart, by the docs: c restarts Pods,
// holds its name with a live copy, the Pod lacks the name, its owner
// recreates it from a template that lists the name or nothing (so that
// admission fills it from the ServiceAccount, which lists it), or in Pods
// mode the policy injects the name into its ServiceAccount's Pods, and a
// Job can afford a failure.
func (w *world) restartable(c string, p *pod) bool {
	k := w.cps[c]
	a := w.sas[p.sa]
	wl := w.work[p.owner]
	if !w.active(c) || !k.RestartPods || a == nil || !w.saSelected(c, p.sa) || !p.stuck || p.finished || p.deleting {
		return false
	}
	n := k.SecretName
	switch {
	case !w.liveCopy(c, n) || slices.Contains(p.list, n):
		return false
	case w.podsMode[c]:
		// The policy adds the name to the replacement, whatever its
		// template lists.
		return w.injecting(c) && w.servedByPolicy(c, p.sa) && (wl.kind != "Job" || wl.budget != 0)
	case len(wl.template) > 0 && !slices.Contains(wl.template, n):
		return false
	case len(wl.template) == 0 && !slices.Contains(a.list, n):
		return false
	}
	return wl.kind != "Job" || wl.budget != 0
}

// frozenThings lists each copy of frozen ClusterPullSecrets, and each
// name listed on an intact ServiceAccount that is such a copy or recorded
// for one of them: none may change.
func (w *world) frozenThings() map[string][]string {
	out := map[string][]string{}
	for name, c := range w.cps {
		if !w.frozen(name) {
			continue
		}
		var held []string
		for sn, k := range w.secrets {
			if k.byController && k.owner == name && k.ownerUID == c.UID {
				held = append(held, "copy "+sn+" "+k.uid+" "+k.hash)
			}
		}
		for an, a := range w.sas {
			for _, n := range a.list {
				if (!a.alone() && a.record[n] == name) || w.maker(n) == name {
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
	w.t.Fatalf("seed %d: %s\nhistory:\n  %s\nthe plan: %+v", w.seed, fmt.Sprintf(format, args...), strings.Join(w.log, "\n  "), w.plan)
}

// reconcile plans and writes until a plan writes nothing, as the namespace
// reconciler and the watch events its writes cause do, checking every
// write and every plan.
func (w *world) reconcile() {
	final := false // the last plan deleted nothing and was made in full
	made := 0      // plans made in full: the others were cut short from outside
	for {
		if made > maxPlans {
			w.fail("no fixpoint after %d plans made in full", made)
		}
		s := w.snapshot()
		p := planner.Compute(s)
		w.plan = p
		w.checkDeterministic(s, p)
		w.checkStates(p)
		if final && !p.Empty() {
			w.fail("a plan that deleted nothing, made in full, was not a fixpoint; the next plan: %+v", p)
		}
		if p.Empty() {
			w.checkFixpoint(p)
			break
		}
		w.count(p)
		done, complete := w.apply(p)
		if complete {
			w.checkAfter(s, done)
			final = len(p.DeleteCopies)+len(p.DeletePods) == 0
			w.seen["plans made in full"]++
			made++
		}
	}
	if w.listing {
		// The index is listed now: plan again with it, as the controller
		// does for every namespace once it has synced.
		w.listing = false
		w.reconcile()
	}
}

func (w *world) count(p planner.Plan) {
	w.seen["create"] += len(p.CreateCopies)
	w.seen["update"] += len(p.UpdateCopies)
	w.seen["retire"] += len(p.DeleteCopies)
	w.seen["restart"] += len(p.DeletePods)
	for _, e := range p.ServiceAccounts {
		w.seen["attach"] += len(e.Attach)
		for _, a := range e.Attach {
			if a.Again {
				w.seen["attach again"]++
			}
		}
		w.seen["hand over"] += len(e.Reassign)
		w.seen["detach"] += len(e.Detach)
		w.seen["forget"] += len(e.Forget)
	}
}

// apply makes the plan's writes in order, as the API server would answer
// them, checking the world after each, and stops at the first failure
// (after learning from it). It returns the writes made (created copies
// with their UIDs) and whether the plan was made in full with nothing but
// the writes changing the world.
func (w *world) apply(p planner.Plan) (planner.Plan, bool) {
	done := planner.Plan{}
	complete := true
	for _, c := range p.CreateCopies {
		if _, taken := w.secrets[c.Name]; taken {
			w.seen["create failed"]++
			w.learned[c.Name] = "Secret " + c.Name + " exists"
			return done, false
		}
		k := w.cps[c.Owner]
		if !w.active(c.Owner) || k.UID != c.OwnerUID || k.SecretName != c.Name || w.credIn(c.Owner, w.srcType[c.Owner]) != c.Hash || c.Type != w.srcType[c.Owner] {
			w.fail("created Secret %s for %s, which does not want it here: %+v", c.Name, c.Owner, c)
		}
		w.write(func() {
			w.secrets[c.Name] = &secret{uid: w.uid(), owner: c.Owner, ownerUID: c.OwnerUID, hash: c.Hash, typ: w.srcType[c.Owner], byController: true}
		})
		c.UID = w.secrets[c.Name].uid
		done.CreateCopies = append(done.CreateCopies, c)
	}
	for _, u := range p.UpdateCopies {
		k := w.secrets[u.Name]
		adopted := k != nil && !k.byController && w.adoptableCopy(u.Name)
		if k == nil || k.uid != u.UID || (!k.byController && !adopted) || k.deleting {
			w.fail("update of Secret %s (%s), which is not a live copy the controller made, nor one it may adopt", u.Name, u.UID)
		}
		if u.Proof != proofOf(k) {
			w.fail("update of Secret %s tests the proof %q, it has %q", u.Name, u.Proof, proofOf(k))
		}
		if adopted {
			w.seen["copy adopted"]++
		}
		if c := w.cps[u.Owner]; !w.active(u.Owner) || (w.maker(u.Name) != u.Owner && !adopted) || c.SecretName != u.Name || (w.current(u.Owner, u.Name) && !k.signedOld && !adopted) {
			w.fail("update of Secret %s to %s for %s, which does not want that", u.Name, u.Hash, u.Owner)
		}
		// A Secret's type cannot change: the credential is written in the
		// copy's.
		if u.Type != k.typ || u.Hash != w.credIn(u.Owner, k.typ) {
			w.fail("update of Secret %s of type %s writes %s as %s", u.Name, k.typ, u.Hash, u.Type)
		}
		if k.typ != w.srcType[u.Owner] {
			w.seen["update in the copy's type"]++
		}
		w.write(func() { k.hash, k.byController, k.unverifiable, k.signedOld = u.Hash, true, false, false })
		done.UpdateCopies = append(done.UpdateCopies, u)
	}
	for _, e := range p.ServiceAccounts {
		a := w.sas[e.ServiceAccount]
		if a == nil || a.uid != e.UID || a.tampered || (a.restored && e.Adopt == nil) {
			w.fail("edited ServiceAccount %s, which is gone or whose record was tampered with", e.ServiceAccount)
		}
		if e.Adopt != nil {
			if !a.restored || !maps.Equal(e.Adopt, a.record) || !w.soundRecord(e.ServiceAccount) {
				w.fail("adopted the record %v of %s, which is not one the controller would write there (restored %v, record %v)", e.Adopt, e.ServiceAccount, a.restored, a.record)
			}
			w.seen["record adopted"]++
		}
		if e.Resign && !a.signedOld && e.Adopt == nil {
			w.fail("signed again the record of %s, which the signing key signed", e.ServiceAccount)
		}
		// What the plan saw: a name the controller attached (recorded for
		// the one attaching it again) that someone else removed is put back
		// in a fight, within the contest policy's bounds.
		planned, recorded := slices.Clone(a.list), maps.Clone(a.record)
		if w.r.IntN(8) == 0 {
			w.race(a, e)
		}
		var again []string
		for _, at := range e.Attach {
			if !w.active(at.By) || !w.saSelected(at.By, e.ServiceAccount) || w.cps[at.By].SecretName != at.Secret || !w.liveCopy(at.By, at.Secret) {
				w.fail("attached %s to %s for %s, which does not hold it here with a live copy", at.Secret, e.ServiceAccount, at.By)
			}
			if w.podsMode[at.By] {
				w.fail("attached %s to %s for %s, whose name goes on Pods", at.Secret, e.ServiceAccount, at.By)
			}
			lost := recorded[at.Secret] == at.By && !slices.Contains(planned, at.Secret)
			if at.Again != lost {
				w.fail("attachment of %s to %s marked as a re-attachment %v, but it is one %v", at.Secret, e.ServiceAccount, at.Again, lost)
			}
			if lost {
				if due := w.due(e.ServiceAccount, at.Secret); w.now.Before(due) {
					w.fail("put %s back on %s at %s, before the backoff after %d re-attachments ends at %s",
						at.Secret, e.ServiceAccount, w.now.Sub(epoch), len(w.remembered(e.ServiceAccount, at.Secret)), due.Sub(epoch))
				}
				again = append(again, at.Secret)
			}
		}
		for _, at := range e.Reassign {
			if w.maker(at.Secret) != at.By || w.cps[at.By].Deleting {
				w.fail("reassigned %s on %s to %s, whose copy it is not", at.Secret, e.ServiceAccount, at.By)
			}
			// A Pods-mode ClusterPullSecret may take over a name carrying
			// its credential only until the policy gives it to new Pods.
			if w.podsMode[at.By] && w.injecting(at.By) && w.servedByPolicy(at.By, e.ServiceAccount) {
				w.fail("reassigned %s on %s to %s, whose name the policy injects", at.Secret, e.ServiceAccount, at.By)
			}
		}
		for _, n := range e.Detach {
			// Pods mode edits no ServiceAccount but to detach its own names
			// once the policy gives its name to new Pods.
			if o := recorded[n]; o != "" && w.podsMode[o] && w.active(o) && w.saSelected(o, e.ServiceAccount) {
				if !w.injecting(o) || !w.servedByPolicy(o, e.ServiceAccount) {
					w.fail("detached %s from %s for Pods-mode %s before the policy injects its name", n, e.ServiceAccount, o)
				}
				w.seen["detach after a switch to Pods"]++
			}
		}
		newer := strconv.Itoa(a.version) != e.ResourceVersion
		w.write(func() { w.editServiceAccount(a, e) })
		for _, n := range again {
			if slices.Contains(a.list, n) {
				// The controller remembers it, as its tracker does.
				if w.tracker[e.ServiceAccount] == nil {
					w.tracker[e.ServiceAccount] = map[string][]time.Time{}
				}
				w.tracker[e.ServiceAccount][n] = append(w.tracker[e.ServiceAccount][n], w.now)
				w.seen["reattach"]++
			}
		}
		done.ServiceAccounts = append(done.ServiceAccounts, e)
		if newer {
			// Applied to another version than planned on: the rest of the
			// plan assumed the list the plan saw; plan again.
			w.seen["edit of a newer version"]++
			return done, false
		}
	}
	for _, d := range p.DeleteCopies {
		k := w.secrets[d.Name]
		if k == nil || k.uid != d.UID || !k.byController {
			w.fail("delete of Secret %s (%s), which the controller did not make", d.Name, d.UID)
		}
		if o := w.maker(d.Name); o == "" || !w.cps[o].Deleting {
			switch {
			case w.listing:
				w.fail("retired Secret %s while Pods and templates are not listed", d.Name)
			case o != "" && w.frozen(o):
				w.fail("retired Secret %s of frozen ClusterPullSecret %s", d.Name, o)
			case o != "" && w.active(o) && w.cps[o].SecretName == d.Name:
				w.fail("retired Secret %s, the current copy of %s", d.Name, o)
			}
			if held := w.holders(d.Name); len(held) > 0 {
				w.fail("retired Secret %s, which %v still use", d.Name, held)
			}
		}
		w.write(func() {
			if k.finalizer {
				k.deleting = true
			} else {
				delete(w.secrets, d.Name)
			}
		})
		if k.finalizer {
			complete = false
		}
		done.DeleteCopies = append(done.DeleteCopies, d)
	}
	for _, r := range p.DeletePods {
		old := w.pods[r.UID]
		if w.listing {
			w.fail("restarted Pod %s while Pods and templates are not listed", r.UID)
		}
		if old == nil || !w.restartable(r.By, old) || w.cps[r.By].SecretName != r.Secret || old.sa != r.ServiceAccount {
			w.fail("restarted Pod %s for %s/%s, which the docs do not allow: %+v", r.UID, r.By, r.Secret, old)
		}
		wl := w.work[old.owner]
		if w.podsMode[r.By] {
			w.seen["restart for the policy"]++
		}
		cause := r.By + "/" + r.Secret
		if old.restartedFor == cause {
			w.fail("restarted a replacement of %s again for %s", old.owner, cause)
		}
		w.write(func() {
			delete(w.pods, r.UID)
			// The owner replaces it; admission fills an empty template's
			// list from the ServiceAccount, and the policy adds its names.
			list := w.admit(wl.template, old.sa)
			if !slices.Contains(list, r.Secret) || !w.liveCopy(r.By, r.Secret) {
				w.fail("restarted Pod %s, whose replacement does not get the credential of %s: %v", r.UID, r.By, list)
			}
			id := w.uid()
			w.pods[id] = &pod{uid: id, sa: old.sa, owner: old.owner, list: list, stuck: w.r.IntN(2) == 0, restartedFor: cause}
			if wl.kind == "Job" && wl.budget > 0 {
				wl.budget--
			}
		})
		done.DeletePods = append(done.DeletePods, r)
	}
	for _, c := range p.ResignCopies {
		k := w.secrets[c.Name]
		if k == nil || k.uid != c.UID || !k.byController || !k.signedOld || k.deleting || c.Proof != proofOf(k) {
			w.fail("signed again Secret %s, which is not a copy of ours an older key signed: %+v", c.Name, k)
		}
		w.write(func() { k.signedOld = false })
		w.seen["signed again"]++
		done.ResignCopies = append(done.ResignCopies, c)
	}
	return done, complete
}

// write makes one write and checks that no ServiceAccount that must keep a
// ClusterPullSecret's credential lost it, and that nothing of a frozen
// ClusterPullSecret changed.
func (w *world) write(f func()) {
	type pair struct{ cps, sa string }
	var before []pair
	for c := range w.cps {
		for sa := range w.sas {
			if w.bound(c, sa) && w.served(c, sa) {
				before = append(before, pair{c, sa})
			}
		}
	}
	frozen := w.frozenThings()
	f()
	for _, b := range before {
		if !w.served(b.cps, b.sa) {
			w.fail("new Pods of ServiceAccount %s would no longer get the credential of ClusterPullSecret %s", b.sa, b.cps)
		}
	}
	if d := cmp.Diff(frozen, w.frozenThings()); d != "" {
		w.fail("a frozen ClusterPullSecret's copies or attachments changed (-before +after):\n%s", d)
	}
}

// editServiceAccount makes an edit on the ServiceAccount as it is now and
// checks the resulting list and record: no name the user listed is removed
// or recorded.
func (w *world) editServiceAccount(a *account, e planner.Edit) {
	list, record := applyAsDocumented(a.list, a.record, e)
	for _, n := range a.list {
		if !slices.Contains(list, n) && !a.added[n] {
			w.fail("removed %s from %s, which the controller did not attach: %v -> %v", n, e.ServiceAccount, a.list, list)
		}
	}
	for n := range record {
		if _, before := a.record[n]; !before && slices.Contains(a.list, n) {
			w.fail("recorded %s on %s, which the user listed: %v", n, e.ServiceAccount, a.list)
		}
	}
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
	// Written with the signing key, and so adopted.
	a.restored, a.signedOld = false, false
	a.version++
}

// checkAfter: After predicts the world a plan made in full leaves (but for
// the Pods that replace restarted ones, the versions the API server gives
// and the Job budgets the Job controller counts).
func (w *world) checkAfter(s planner.Snapshot, done planner.Plan) {
	predicted, actual := planner.After(s, done), w.snapshot()
	known := map[string]bool{}
	for _, p := range s.Pods {
		known[p.UID] = true
	}
	actual.Pods = slices.DeleteFunc(actual.Pods, func(p planner.Pod) bool { return !known[p.UID] })
	if a, p := render(actual), render(predicted); a != p {
		w.fail("After does not predict the world the plan left:\nworld: %s\nAfter: %s", a, p)
	}
	w.seen["After checked"]++
}

// render prints what a plan changes of a snapshot, in a canonical order
// (cmp.Diff is too slow to run after every plan).
func render(s planner.Snapshot) string {
	var b strings.Builder
	copies := slices.SortedFunc(slices.Values(s.Copies), func(a, b planner.Copy) int { return strings.Compare(a.Name, b.Name) })
	fmt.Fprintf(&b, "copies %+v\n", copies)
	sas := slices.SortedFunc(slices.Values(s.ServiceAccounts), func(a, b planner.ServiceAccount) int { return strings.Compare(a.Name, b.Name) })
	for _, sa := range sas {
		fmt.Fprintf(&b, "sa %s %s %v %v %q %v\n", sa.Name, sa.UID, sa.PullSecrets, sa.Record, sa.RecordProblem, reattached(sa.Reattached))
	}
	pods := slices.SortedFunc(slices.Values(s.Pods), func(a, b planner.Pod) int { return strings.Compare(a.UID, b.UID) })
	for _, p := range pods {
		fmt.Fprintf(&b, "pod %s %v %v %v %v\n", p.UID, p.SecretRefs, p.Finished, p.Deleting, p.StuckImages)
	}
	fmt.Fprintf(&b, "blocked %v\n", s.Blocked)
	return b.String()
}

// checkStates: a state says Ready only when it is true of the world, and a
// plan made before Pods and templates are listed claims nothing about them.
func (w *world) checkStates(p planner.Plan) {
	for name, st := range p.States {
		if st.Ready && !w.ready(name) {
			w.fail("%s is Ready, but not every selected ServiceAccount carries a live, current copy: %+v", name, st)
		}
		if w.listing && (len(st.Retiring) > 0 || len(st.Stuck) > 0) {
			w.fail("%s reports retiring copies or stuck Pods while Pods and templates are not listed: %+v", name, st)
		}
	}
}

// checkFixpoint: nothing is left to do, so everything due has happened and
// status is the truth.
func (w *world) checkFixpoint(p planner.Plan) {
	if w.listing {
		return // not reported; every namespace is planned again once listed
	}
	w.seen["fixpoints"]++
	stuckReported := map[string]bool{}
	for name, st := range p.States {
		for _, s := range st.Stuck {
			stuckReported[s.Pod] = true
		}
		if len(st.Retiring) > 0 {
			w.seen["held"]++
		}
		for _, r := range st.Retiring {
			if slices.Contains(r.HeldBy, "the pod-injection policy") {
				w.seen["held for the policy"]++
			}
		}
		if len(st.Stuck) > 0 {
			w.seen["stuck reported"]++
		}
		w.seen["state "+st.Reason]++
		if st.Ready != (st.Reason == v1alpha1.ReasonReady) {
			w.fail("%s: Ready %v with reason %s", name, st.Ready, st.Reason)
		}
	}
	for name, c := range w.cps {
		st, ok := p.States[name]
		if !ok {
			w.fail("no state for %s", name)
		}
		want := ""
		switch {
		case c.Deleting:
			want = v1alpha1.ReasonDeleting
		case c.Invalid != "":
			want = v1alpha1.ReasonInvalidSpec
		case !w.nsSelected(name):
			want = v1alpha1.ReasonNoNamespaces
		case c.Source.Problem != "":
			want = c.Source.Problem
		}
		if want != "" && st.Reason != want {
			w.fail("%s: reason %s, want %s", name, st.Reason, want)
		}
		if st.Ready != w.ready(name) {
			w.fail("%s: Ready %v, but every selected ServiceAccount carrying a live, current copy is %v: %+v", name, st.Ready, w.ready(name), st)
		}
		if w.active(name) {
			attached := 0
			for sa, a := range w.sas {
				// In Pods mode the name goes on Pods: nothing counts as attached.
				if w.saSelected(name, sa) && !a.alone() && slices.Contains(a.list, c.SecretName) && !w.podsMode[name] {
					attached++
				}
			}
			if st.Attached != attached {
				w.fail("%s: %d ServiceAccounts attached, but %d selected ones list %s", name, st.Attached, attached, c.SecretName)
			}
			if st.Ready && w.podsMode[name] {
				w.seen["Pods mode ready"]++
			}
		}
		w.checkContested(name, st)
		if c.Deleting {
			if st.Leftovers != 0 || w.leftovers(name) != "" {
				w.fail("deleted %s is done here, but %d leftovers are reported and the world holds %s", name, st.Leftovers, w.leftovers(name))
			}
			delete(w.cps, name) // the finalizer goes
			delete(w.podsMode, name)
			delete(w.published, name)
			continue
		}
		w.checkCopyAndAttachments(name, p)
	}
	w.checkRetired()
	w.checkRecords()
	for id, pd := range w.pods {
		for c := range w.cps {
			if w.restartable(c, pd) {
				w.fail("Pod %s is stuck and %s would restart it, but it was not", id, c)
			}
		}
		if !pd.stuck || pd.finished || pd.deleting || stuckReported[id] || w.sas[pd.sa] == nil {
			continue
		}
		for c, k := range w.cps {
			if !w.active(c) || !w.saSelected(c, pd.sa) || !w.liveCopy(c, k.SecretName) {
				continue
			}
			// Its replacement would get the name: from the ServiceAccount's
			// list, or from the policy.
			if (!w.podsMode[c] && slices.Contains(w.sas[pd.sa].list, k.SecretName)) || (w.podsMode[c] && w.injecting(c) && w.servedByPolicy(c, pd.sa)) {
				w.fail("Pod %s is stuck on %s's registry and not restarted, but no state reports it", id, c)
			}
		}
	}
}

// leftovers names what a deleted ClusterPullSecret still has here: copies
// not being deleted, names recorded for it on intact ServiceAccounts.
func (w *world) leftovers(c string) string {
	var out []string
	for n, k := range w.secrets {
		if w.maker(n) == c && !k.deleting {
			out = append(out, "copy "+n)
		}
	}
	for sa, a := range w.sas {
		for n, by := range a.record {
			if by == c && !a.alone() && slices.Contains(a.list, n) {
				out = append(out, n+" on "+sa)
			}
		}
	}
	return strings.Join(out, ", ")
}

// checkCopyAndAttachments: an active ClusterPullSecret whose name is free
// or its own has a live, current copy, in ServiceAccounts mode attached to
// every selected intact ServiceAccount, but where another writer removed
// it and the contest policy's backoff has not ended: there the namespace
// is planned again by the time it does.
func (w *world) checkCopyAndAttachments(c string, p planner.Plan) {
	if !w.active(c) {
		return
	}
	n := w.cps[c].SecretName
	switch {
	case w.secrets[n] == nil:
		if _, blocked := w.learned[n]; !blocked {
			w.fail("%s: no copy %s, and nothing holds the name", c, n)
		}
		return
	case w.adoptableCopy(n) && w.secrets[n].owner == c:
		w.fail("%s: copy %s is exactly what it would write there, but was not adopted", c, n)
	case w.maker(n) != c || w.secrets[n].deleting:
		return // someone else's, or ours being deleted: a conflict or a wait
	case !w.current(c, n):
		w.fail("%s: copy %s is not current", c, n)
	case w.secrets[n].typ != w.srcType[c]:
		w.seen["copy of another type kept"]++
	}
	if w.podsMode[c] {
		// Planned again once the API server has read the publication.
		if inj := w.published[c]; w.policy && inj != nil && inj.name == n && w.now.Before(inj.since.Add(grace)) {
			if p.RecheckAfter <= 0 || w.now.Add(p.RecheckAfter).After(inj.since.Add(grace)) {
				w.fail("%s: the policy injects %s from %s, but the namespace is planned again only after %s", c, n, inj.since.Add(grace).Sub(epoch), p.RecheckAfter)
			}
			w.seen["waits for injection"]++
		}
		return
	}
	for sa, a := range w.sas {
		if !w.saSelected(c, sa) || a.alone() || slices.Contains(a.list, n) {
			continue
		}
		if a.record[n] != c {
			w.fail("%s: selected ServiceAccount %s does not list %s", c, sa, n)
		}
		due := w.due(sa, n)
		if !w.now.Before(due) {
			w.fail("%s: %s, removed from %s by someone else, is not put back although its backoff ended at %s (now %s)", c, n, sa, due.Sub(epoch), w.now.Sub(epoch))
		}
		if p.RecheckAfter <= 0 || w.now.Add(p.RecheckAfter).After(due) {
			w.fail("%s: %s is put back on %s at %s, but the namespace is planned again only after %s", c, n, sa, due.Sub(epoch), p.RecheckAfter)
		}
		w.seen["backed off"]++
	}
}

// checkContested: the fights a state reports are those the contest policy
// says to report, with the re-attachments the controller remembers.
func (w *world) checkContested(c string, st planner.State) {
	want := map[string]fight{}
	if w.cps[c] != nil && !w.cps[c].Deleting {
		want = w.contested(c)
	}
	got := map[string]fight{}
	for _, f := range st.Contested {
		if f.Secret != w.cps[c].SecretName {
			w.fail("%s: a fight reported over %s, not its name", c, f.Secret)
		}
		got[f.ServiceAccount] = fight{losses: f.Losses, next: f.Next}
	}
	if !maps.Equal(want, got) {
		w.fail("%s: fights reported %v, the contest policy says %v (remembered %v)", c, got, want, w.tracker)
	}
	if len(want) > 0 {
		w.seen["contested"]++
		if st.Reason != v1alpha1.ReasonContested && st.Reason != v1alpha1.ReasonRecordInvalid {
			w.fail("%s: fights %v, but reason %s", c, want, st.Reason)
		}
	}
}

// checkRetired: every copy of the controller's that no live
// ClusterPullSecret wants and that is not frozen is gone once nothing uses
// it.
func (w *world) checkRetired() {
	for n, k := range w.secrets {
		if !k.byController || k.deleting {
			continue
		}
		if o := w.maker(n); o != "" && (w.frozen(o) || (w.active(o) && w.cps[o].SecretName == n)) {
			continue
		}
		if o := w.maker(n); o != "" && w.active(o) && w.policy && w.published[o] != nil && !w.injecting(o) {
			// The planner cannot tell which old name the policy may still
			// inject until it injects the current one: every copy of o's
			// is kept till then.
			continue
		}
		if len(w.holders(n)) == 0 {
			w.fail("copy %s is neither wanted nor used, and not retired", n)
		}
		w.seen["held copy checked"]++
	}
}

// checkRecords: a name recorded on an intact ServiceAccount is still
// wanted there by whoever it is recorded for: its current name, or an old
// name kept until the ServiceAccount carries the new one.
func (w *world) checkRecords() {
	for name, k := range w.secrets {
		if k.byController && k.signedOld && !k.deleting {
			w.fail("copy %s is still signed by an older key", name)
		}
	}
	for sa, a := range w.sas {
		if a.restored && w.soundRecord(sa) {
			w.fail("%s: its restored record %v is one the controller would write, but was not adopted", sa, a.record)
		}
		if a.signedOld && !a.alone() {
			w.fail("%s: its record is still signed by an older key", sa)
		}
		if a.alone() {
			continue
		}
		for n, by := range a.record {
			c := w.cps[by]
			if !slices.Contains(a.list, n) {
				if w.wantsOn(by, sa) && c.SecretName == n && w.now.Before(w.due(sa, n)) {
					continue // removed by someone else; put back when the backoff ends
				}
				w.fail("%s: record holds %s, which is not listed", sa, n)
			}
			switch {
			case w.frozen(by):
			case c == nil || c.Deleting || !w.nsSelected(by) || !w.saSelected(by, sa):
				w.fail("%s lists %s for %s, which does not want it there", sa, n, by)
			case w.podsMode[by] && w.injecting(by) && w.servedByPolicy(by, sa):
				w.fail("%s lists %s for %s, whose name the pod-injection policy gives to new Pods", sa, n, by)
			case w.podsMode[by]:
				// Everything attached before the switch stays until then.
			case n != c.SecretName && slices.Contains(a.list, c.SecretName) && w.liveCopy(by, c.SecretName):
				w.fail("%s: the rename of %s to %s did not complete: %s is still attached", sa, by, c.SecretName, n)
			}
		}
	}
}

// reattached prints a fight's history in a canonical order.
func reattached(m map[string][]time.Time) string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(m)) {
		if len(m[n]) > 0 {
			fmt.Fprintf(&b, "%s:%v ", n, m[n])
		}
	}
	return b.String()
}

func (w *world) checkDeterministic(s planner.Snapshot, p planner.Plan) {
	shuffled := s
	shuffled.ClusterPullSecrets = shuffle(w.r, s.ClusterPullSecrets)
	shuffled.Copies = shuffle(w.r, s.Copies)
	shuffled.ServiceAccounts = shuffle(w.r, s.ServiceAccounts)
	shuffled.Pods = shuffle(w.r, s.Pods)
	shuffled.Workloads = shuffle(w.r, s.Workloads)
	if q := planner.Compute(shuffled); fmt.Sprintf("%+v", p) != fmt.Sprintf("%+v", q) {
		w.fail("the plan depends on input order (-sorted +shuffled):\n%s", cmp.Diff(p, q, cmpopts.EquateEmpty()))
	}
}

func shuffle[T any](r *rand.Rand, in []T) []T {
	out := slices.Clone(in)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// modelSequences runs the model longer, to search deeper:
// go test ./internal/planner -run TestInvariantsRandomized -model.sequences=100000
var modelSequences = flag.Int("model.sequences", 0, "sequences of the randomized model (0: the default)")

// modelSeed runs one sequence of the model, to debug a failure.
var modelSeed = flag.Int("model.seed", -1, "run only this sequence of the randomized model")

func TestInvariantsRandomized(t *testing.T) {
	t.Parallel()
	sequences, steps := 3000, 70
	if testing.Short() {
		sequences = 1500
	}
	if *modelSequences > 0 {
		sequences = *modelSequences
	}
	seen := map[string]int{}
	if *modelSeed >= 0 {
		w := newWorld(t, uint64(*modelSeed), seen)
		for range steps {
			w.event()
			w.reconcile()
		}
		return
	}
	for seed := range uint64(sequences) {
		w := newWorld(t, seed, seen)
		for range steps {
			w.event()
			w.reconcile()
		}
	}
	t.Logf("%d sequences of %d steps: %v", sequences, steps, seen)
	// The run proves something only if every kind of write, state and
	// check happened often.
	for _, kind := range []string{"create", "update", "retire", "restart", "attach", "hand over", "detach", "forget",
		"create failed", "raced edit", "edit of a newer version", "held", "stuck reported", "held copy checked", "After checked", "fixpoints",
		"state " + v1alpha1.ReasonConflict, "state " + v1alpha1.ReasonRecordInvalid, "state " + v1alpha1.ReasonDeleting,
		"state " + v1alpha1.ReasonSourceNotFound, "state " + v1alpha1.ReasonInvalidSpec, "state " + v1alpha1.ReasonReady,
		"state " + v1alpha1.ReasonNoNamespaces, "state " + v1alpha1.ReasonProgressing,
		"state " + v1alpha1.ReasonContested, "state " + v1alpha1.ReasonPodInjectionUnavailable, "Pods mode ready",
		"GitOps apply", "reattach", "attach again", "backed off", "contested", "waits for injection",
		"detach after a switch to Pods", "restart for the policy", "held for the policy", "update in the copy's type", "copy of another type kept",
		"copy adopted", "record adopted", "signed again"} {
		if seen[kind] < 100 {
			t.Errorf("only %d %q in the whole run", seen[kind], kind)
		}
	}
}
