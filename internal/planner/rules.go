package planner

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/contest"
)

type role int

const (
	roleActive     role = iota // copy and attachments enforced
	roleUnselected             // namespace not selected: attachments removed, copies retired
	roleFrozen                 // invalid spec or unusable source: nothing touched
	roleDeleting               // everything removed
)

// cps is a ClusterPullSecret as the planner sees it in this namespace.
type cps struct {
	*ClusterPullSecret
	role role
	// claimed: it holds its secret name here.
	claimed  bool
	conflict string
	// ready: its copy exists (or is created by this plan) and is not being
	// deleted, so its name may be attached.
	ready bool
}

type planner struct {
	s       Snapshot
	byName  map[string]*cps
	ordered []*cps
	// proven copies by name, and names held by Secrets that are not.
	copies  map[string]*Copy
	blocked map[string]string
	sas     []*saPlan
	// spent counts the restarts planned per Job, which its budget pays.
	spent map[Owner]int
	out   Plan
}

// saPlan is a ServiceAccount and its list and record once the plan's edit is
// applied.
type saPlan struct {
	*ServiceAccount
	list   []string
	record map[string]string
	// problem is why its record cannot be trusted ("" once adopted).
	problem string
	adopted bool
}

// Compute plans the writes and states for the snapshot's namespace.
func Compute(s Snapshot) Plan {
	p := newPlanner(s)
	if s.Namespace.Terminating {
		// Nothing can be written, and everything goes away with it.
		for _, c := range p.ordered {
			p.out.States[c.Name] = State{Reason: v1alpha1.ReasonNoNamespaces, Message: "the namespace is being deleted"}
		}
		return p.out
	}
	p.claim()
	p.adoptRecords()
	p.writeCopies()
	p.editServiceAccounts()
	p.retire()
	p.resign()
	p.restart()
	p.report()
	return p.out
}

func newPlanner(s Snapshot) *planner {
	p := &planner{
		s: s, byName: map[string]*cps{}, copies: map[string]*Copy{}, blocked: map[string]string{}, spent: map[Owner]int{},
		out: Plan{States: map[string]State{}},
	}
	for i := range s.ClusterPullSecrets {
		c := &cps{ClusterPullSecret: &s.ClusterPullSecrets[i]}
		p.byName[c.Name] = c
		p.ordered = append(p.ordered, c)
	}
	// Oldest first, so that the oldest wins a name nobody holds yet.
	slices.SortFunc(p.ordered, func(a, b *cps) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for _, c := range p.ordered {
		c.role = p.roleOf(c)
	}
	for name, why := range s.Blocked {
		p.blocked[name] = why
	}
	for i := range s.Copies {
		k := &s.Copies[i]
		switch {
		case k.Proven:
		case p.adoptable(k):
			adopted := *k
			adopted.Proven, adopted.Resign = true, true
			k = &adopted
		default:
			p.blocked[k.Name] = fmt.Sprintf("Secret %s wears pullsecrets' labels but was not made by pullsecrets (no valid ownership proof); it is left alone%s", k.Name, s.UnprovenNote)
			continue
		}
		p.copies[k.Name] = k
	}
	for i := range s.ServiceAccounts {
		sa := &s.ServiceAccounts[i]
		p.sas = append(p.sas, &saPlan{ServiceAccount: sa, list: slices.Clone(sa.PullSecrets), record: maps.Clone(sa.Record), problem: sa.RecordProblem})
	}
	slices.SortFunc(p.sas, func(a, b *saPlan) int { return cmp.Compare(a.Name, b.Name) })
	return p
}

// adoptable reports whether an unproven copy is taken as the controller's
// (docs/controller.md, "The ownership key"): its marks name a live
// ClusterPullSecret by name and UID, it has a proof (made with a key the
// controller no longer holds), and it is at that one's current name in a
// namespace it serves, holding its current credential: the very Secret the
// controller would write there, so adopting it grants nothing its holder
// did not have. AdoptMarked (the operator's recovery) adopts every marked
// copy of a live ClusterPullSecret.
func (p *planner) adoptable(k *Copy) bool {
	c := p.byName[k.Owner]
	switch {
	case c == nil || c.UID != k.OwnerUID || k.Proof == "" || k.Deleting:
		return false
	case p.s.AdoptMarked:
		return true
	}
	return c.role == roleActive && c.SecretName == k.Name && k.Hash == c.Source.HashIn(k.Type)
}

// adoptRecords takes as the controller's the unverified record of a
// ServiceAccount when every entry is a name the controller would attach
// there itself: listed, the current name of the active ClusterPullSecret
// it names, which holds it here with its copy in place and selects the
// ServiceAccount in ServiceAccounts mode (under AdoptMarked: any listed
// name of a live one). A record with any other entry stays unproven.
func (p *planner) adoptRecords() {
	for _, sa := range p.sas {
		if sa.problem == "" || len(sa.Unverified) == 0 || sa.Deleting {
			continue
		}
		if !p.recordAdoptable(sa) {
			continue
		}
		sa.record, sa.problem, sa.adopted = maps.Clone(sa.Unverified), "", true
	}
}

func (p *planner) recordAdoptable(sa *saPlan) bool {
	for name, by := range sa.Unverified {
		c := p.byName[by]
		switch {
		case c == nil || !slices.Contains(sa.list, name):
			return false
		case p.s.AdoptMarked:
		case !p.wants(c, sa, name):
			return false
		}
	}
	return true
}

// resign writes again, with the signing key, the proofs of copies kept as
// they are that an older key made.
func (p *planner) resign() {
	written := map[string]bool{}
	for _, w := range p.out.UpdateCopies {
		written[w.Name] = true
	}
	for _, d := range p.out.DeleteCopies {
		written[d.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(p.copies)) {
		k := p.copies[name]
		if !k.Resign || k.Deleting || written[name] {
			continue
		}
		p.out.ResignCopies = append(p.out.ResignCopies, CopyWrite{Name: name, UID: k.UID, Owner: k.Owner, OwnerUID: k.OwnerUID, Hash: k.Hash, Type: k.Type, Proof: k.Proof})
	}
}

func (p *planner) roleOf(c *cps) role {
	switch {
	case c.Deleting:
		return roleDeleting
	case c.Invalid != "" || c.Selector == nil:
		return roleFrozen
	case !c.Selector.NamespaceMeta(p.s.Namespace.Name, p.s.Namespace.Labels, p.s.Namespace.Annotations):
		return roleUnselected
	case c.Source.Problem != "":
		return roleFrozen
	}
	return roleActive
}

// owner returns the live ClusterPullSecret that made a copy, or nil for a
// copy whose ClusterPullSecret is gone (or was recreated).
func (p *planner) owner(k *Copy) *cps {
	c := p.byName[k.Owner]
	if c == nil || c.UID != k.OwnerUID {
		return nil
	}
	return c
}

func (p *planner) owns(c *cps, k *Copy) bool { return k != nil && p.owner(k) == c }

// claim decides which ClusterPullSecret holds each name: the one whose copy
// is there; when none is, the oldest that wants it. A name held by a Secret
// that is not a proven copy is nobody's.
func (p *planner) claim() {
	claimedBy := map[string]*cps{}
	for _, c := range p.ordered {
		if c.role != roleActive {
			continue
		}
		n := c.SecretName
		k := p.copies[n]
		// A name found taken by a Secret that is c's own copy after all
		// (adopted since) is c's.
		if why, ok := p.blocked[n]; ok && (!p.owns(c, k) || k.Restore) {
			c.conflict = why
			continue
		}
		if k != nil && !p.owns(c, k) {
			c.conflict = p.heldBy(k)
			continue
		}
		if holder := claimedBy[n]; holder != nil {
			c.conflict = fmt.Sprintf("ClusterPullSecret %s, created earlier, also wants Secret %s in this namespace", holder.Name, n)
			continue
		}
		claimedBy[n] = c
		c.claimed = true
		c.ready = k == nil || !k.Deleting
	}
}

// heldBy says why a copy of someone else's keeps a name.
func (p *planner) heldBy(k *Copy) string {
	o := p.owner(k)
	switch {
	case o == nil:
		return fmt.Sprintf("Secret %s is a copy made for a ClusterPullSecret that no longer exists; it is retired once nothing uses it", k.Name)
	case o.role == roleActive && o.SecretName == k.Name:
		return fmt.Sprintf("ClusterPullSecret %s already holds Secret %s in this namespace", o.Name, k.Name)
	case o.role == roleFrozen:
		return fmt.Sprintf("Secret %s belongs to ClusterPullSecret %s, which is frozen (%s)", k.Name, o.Name, cmp.Or(o.Invalid, o.Source.Problem))
	default:
		return fmt.Sprintf("Secret %s is an old copy of ClusterPullSecret %s; it is retired once nothing uses it", k.Name, o.Name)
	}
}

func (p *planner) writeCopies() {
	for _, c := range p.ordered {
		if !c.claimed {
			continue
		}
		w := CopyWrite{Name: c.SecretName, Owner: c.Name, OwnerUID: c.UID, Hash: c.Source.Hash, Type: c.Source.Type}
		k := p.copies[c.SecretName]
		switch {
		case k == nil:
			p.out.CreateCopies = append(p.out.CreateCopies, w)
		case !k.Deleting && (k.Hash != c.Source.HashIn(k.Type) || k.Resign || k.Restore):
			// The copy keeps its type: its credential is written in it.
			w.UID, w.Type, w.Hash, w.Proof, w.Restore = k.UID, k.Type, c.Source.HashIn(k.Type), k.Proof, k.Restore
			p.out.UpdateCopies = append(p.out.UpdateCopies, w)
		}
	}
}

// HashIn is the content a copy of type t must have.
func (s Source) HashIn(t string) string {
	if h, ok := s.HashAs[t]; ok {
		return h
	}
	return s.Hash
}

// wants reports whether c keeps name attached to sa: its current name, on a
// ServiceAccount it selects, with its copy in place; never in Pods mode,
// where admission puts the name on the Pods.
func (p *planner) wants(c *cps, sa *saPlan, name string) bool {
	return c != nil && !c.AttachToPods && c.role == roleActive && c.claimed && c.ready && c.SecretName == name && p.selects(c, sa)
}

// serves reports whether a new Pod of sa gets c's name: from sa's list
// (ServiceAccounts mode), or from the pod-injection policy (Pods mode),
// which sees the Pod's ServiceAccount by name only and skips those that
// opt out or enforce mountable secrets.
func (p *planner) serves(c *cps, sa *saPlan) bool {
	if !c.AttachToPods {
		return p.wants(c, sa, c.SecretName)
	}
	return c.role == roleActive && c.claimed && c.ready && p.injecting(c) && c.Selector != nil &&
		c.Selector.ServiceAccountMeta(sa.Name, nil, sa.Annotations) && !skipsPods(sa)
}

// skipsPods reports whether the pod-injection policy skips the Pods of sa
// for every ClusterPullSecret: it enforces mountable secrets, so the API
// server would refuse a Pod with a name it does not list.
func skipsPods(sa *saPlan) bool { return sa.Annotations[enforceMountableSecrets] == "true" }

// injecting reports whether the pod-injection policy gives c's name to new
// Pods now.
func (p *planner) injecting(c *cps) bool {
	return !c.InjectingFrom.IsZero() && !p.s.Now.Before(c.InjectingFrom)
}

// mayInjectOld reports whether the pod-injection policy may still add
// another name of c's than its current one to new Pods: it injects one,
// and not yet the current one (a rename not republished or still within
// the API server's lag, a switch back not settled).
func (p *planner) mayInjectOld(c *cps) bool {
	return c.Injected != "" && !p.injecting(c)
}

// recheck asks to plan the namespace again after wait.
func (p *planner) recheck(wait time.Duration) {
	if wait > 0 && (p.out.RecheckAfter == 0 || wait < p.out.RecheckAfter) {
		p.out.RecheckAfter = wait
	}
}

// enforceMountableSecrets on a ServiceAccount makes the API server refuse
// a Pod whose pull secrets it does not list; Pods mode skips its Pods.
const enforceMountableSecrets = "kubernetes.io/enforce-mountable-secrets"

func (p *planner) selects(c *cps, sa *saPlan) bool {
	return c.Selector != nil && c.Selector.ServiceAccountMeta(sa.Name, sa.Labels, sa.Annotations)
}

func (p *planner) editServiceAccounts() {
	for _, sa := range p.sas {
		if sa.Deleting || sa.problem != "" {
			continue
		}
		e := Edit{ServiceAccount: sa.Name, UID: sa.UID, ResourceVersion: sa.ResourceVersion, Resign: sa.RecordResign || sa.adopted}
		if sa.adopted {
			e.Adopt = maps.Clone(sa.Unverified)
		}
		for _, c := range p.ordered {
			if !p.wants(c, sa, c.SecretName) {
				continue
			}
			if slices.Contains(sa.list, c.SecretName) {
				p.contest(c, sa, fights.Holding(sa.Reattached[c.SecretName], p.s.Now), false)
				continue
			}
			a := Attachment{Secret: c.SecretName, By: c.Name}
			if sa.record[a.Secret] == c.Name {
				// Attached before, removed by someone else: a fight.
				d := fights.Lost(sa.Reattached[a.Secret], p.s.Now)
				p.contest(c, sa, d, true)
				if !d.Attach {
					continue
				}
				a.Again = true
			}
			e.Attach = append(e.Attach, a)
		}
		for _, name := range slices.Sorted(maps.Keys(sa.record)) {
			c := p.byName[sa.record[name]]
			if !slices.Contains(sa.list, name) {
				if !p.wants(c, sa, name) {
					e.Forget = append(e.Forget, name)
				}
				continue
			}
			if p.keeps(c, sa, name) {
				continue
			}
			// Let go: handed over to the one whose credential the name
			// carries here, so the ServiceAccount never goes without it;
			// else detached.
			if heir := p.heir(sa, name); heir != nil {
				e.Reassign = append(e.Reassign, Attachment{Secret: name, By: heir.Name})
				continue
			}
			e.Detach = append(e.Detach, name)
			if next := p.replacement(sa, name, c); next != "" {
				if e.Replacements == nil {
					e.Replacements = map[string]string{}
				}
				e.Replacements[name] = next
			}
		}
		list, record, changed := e.Apply(sa.list, sa.record)
		if !changed && !e.Resign {
			continue
		}
		sa.list, sa.record = list, record
		p.out.ServiceAccounts = append(p.out.ServiceAccounts, e)
	}
}

// fights is how the controller answers another writer of a list.
var fights = contest.DefaultPolicy()

// contest reports a fight over c's name on sa (missing from its list, or
// there again), and when to look again.
func (p *planner) contest(c *cps, sa *saPlan, d contest.Decision, missing bool) {
	if !d.Contested {
		return
	}
	st := p.out.States[c.Name]
	next := time.Time{}
	if missing && !d.Attach {
		next = d.Next
	}
	st.Contested = append(st.Contested, Contest{ServiceAccount: sa.Name, Secret: c.SecretName, Losses: d.Losses, Next: next})
	p.out.States[c.Name] = st
	p.recheck(d.Next.Sub(p.s.Now))
}

// heir is who takes over a listed name that the ClusterPullSecret it is
// recorded for lets go: the one that wants it on sa (or holds it in Pods
// mode, until the policy gives it to new Pods), else the maker of its
// copy if that one keeps it (an old name not replaced yet, a frozen one's).
func (p *planner) heir(sa *saPlan, name string) *cps {
	for _, c := range p.ordered {
		if p.wants(c, sa, name) || (c.AttachToPods && c.role == roleActive && c.claimed && c.ready && c.SecretName == name && p.keeps(c, sa, name)) {
			return c
		}
	}
	if k := p.copies[name]; k != nil {
		if o := p.owner(k); o != nil && p.keeps(o, sa, name) {
			return o
		}
	}
	return nil
}

// replacement is the name that carries on sa the credential a detached
// name did: the current name of its copy's maker, else of the one it is
// recorded for, when that one wants it there; "" when there is none.
func (p *planner) replacement(sa *saPlan, name string, recorded *cps) string {
	var maker *cps
	if k := p.copies[name]; k != nil {
		maker = p.owner(k)
	}
	for _, c := range []*cps{maker, recorded} {
		if c != nil && c.SecretName != name && p.wants(c, sa, c.SecretName) {
			return c.SecretName
		}
	}
	return ""
}

// keeps reports whether a listed name the controller attached stays
// recorded for c. An old name stays until the ServiceAccount carries the
// new one with its copy in place, so it never loses the credential in
// between.
func (p *planner) keeps(c *cps, sa *saPlan, name string) bool {
	switch {
	case c == nil || c.role == roleDeleting || c.role == roleUnselected:
		return false
	case c.role == roleFrozen:
		return true
	case !p.selects(c, sa):
		return false
	case c.AttachToPods:
		// Switched to Pods mode: the ServiceAccount keeps the name until
		// the policy gives new Pods of its the name of a copy in place,
		// then nothing needs it there (the policy skips some Pods, and
		// injects a name held by someone else's Secret in vain).
		return !p.serves(c, sa)
	case c.SecretName == name:
		return true // still its name; if its copy is missing, it is being recreated or in conflict
	}
	// Renamed or moved. c wants its new name here once it holds it with a
	// live copy, and then the ServiceAccount lists it after this edit
	// (attached now, listed by anyone already, or reassigned to c: a
	// wanted name is never detached), so the old one can go.
	return !p.wants(c, sa, c.SecretName)
}

// retire deletes the controller's copies that nothing wants nor uses.
func (p *planner) retire() {
	for _, name := range slices.Sorted(maps.Keys(p.copies)) {
		k := p.copies[name]
		o := p.owner(k)
		if k.Deleting || (o != nil && o.claimed && o.SecretName == name) {
			continue
		}
		if k.Restore {
			continue // its marks are someone else's doing: put back, never deleted
		}
		if o != nil && o.role == roleFrozen {
			continue // leave everything of a frozen ClusterPullSecret as it is
		}
		if o != nil && o.role == roleDeleting {
			p.out.DeleteCopies = append(p.out.DeleteCopies, CopyDelete{Name: name, UID: k.UID, Owner: k.Owner, Why: "its ClusterPullSecret is being deleted"})
			continue
		}
		if p.s.UsageUnknown {
			continue // who uses it is not known yet: keep it
		}
		held := p.holders(name)
		if o != nil && o.role == roleActive && p.mayInjectOld(o) {
			held = append(held, "the pod-injection policy")
		}
		if len(held) > 0 {
			if o != nil {
				st := p.out.States[o.Name]
				st.Retiring = append(st.Retiring, Retiring{Secret: name, HeldBy: held})
				p.out.States[o.Name] = st
			}
			continue
		}
		why := "no ClusterPullSecret wants it here and nothing uses it"
		p.out.DeleteCopies = append(p.out.DeleteCopies, CopyDelete{Name: name, UID: k.UID, Owner: k.Owner, Why: why})
	}
}

// holders names what still uses a Secret: ServiceAccounts listing it (after
// this plan's edits), live Pods reading it, and templates that can still
// make Pods reading it.
func (p *planner) holders(name string) []string {
	var out []string
	for _, sa := range p.sas {
		if !sa.Deleting && slices.Contains(sa.list, name) {
			out = append(out, "ServiceAccount "+sa.Name)
		}
	}
	for _, pod := range p.s.Pods {
		if !pod.Finished && !pod.Deleting && slices.Contains(pod.SecretRefs, name) {
			out = append(out, "Pod "+pod.Name)
		}
	}
	for _, w := range p.s.Workloads {
		if w.Active && slices.Contains(w.SecretRefs, name) {
			out = append(out, w.Kind+" "+w.Name)
		}
	}
	slices.Sort(out)
	return out
}

// recreators are the owners that replace a deleted Pod from a template.
var recreators = []struct{ group, kind string }{
	{"apps", "ReplicaSet"}, {"apps", "StatefulSet"}, {"apps", "DaemonSet"}, {"batch", "Job"}, {"", "ReplicationController"},
}

func (p *planner) workload(o *Owner) *Workload {
	if o == nil || !slices.ContainsFunc(recreators, func(r struct{ group, kind string }) bool { return r.group == o.Group && r.kind == o.Kind }) {
		return nil
	}
	for i := range p.s.Workloads {
		w := &p.s.Workloads[i]
		if w.Owner == *o {
			return w
		}
	}
	return nil
}

func (p *planner) serviceAccount(name string) *saPlan {
	for _, sa := range p.sas {
		if sa.Name == name {
			return sa
		}
	}
	return nil
}

// restart deletes Pods stuck on a pull for an image a ClusterPullSecret's
// credential is for, when their replacement will get that credential: the
// Pod lacks the name, its owner recreates it from a template, and admission
// will give the replacement the name (the template lists it, or lists
// nothing and the ServiceAccount does). A Pod that already lists the name is
// never restarted for it, so no cause restarts a workload twice.
func (p *planner) restart() {
	if p.s.UsageUnknown {
		return
	}
	pods := slices.Clone(p.s.Pods)
	slices.SortFunc(pods, func(a, b Pod) int { return cmp.Compare(a.Name, b.Name) })
	for _, pod := range pods {
		if pod.Finished || pod.Deleting || len(pod.StuckImages) == 0 {
			continue
		}
		sa := p.serviceAccount(pod.ServiceAccount)
		if sa == nil || sa.Deleting {
			continue
		}
		// Restarted for the first ClusterPullSecret that would; else
		// reported once, by the first that has a reason not to.
		var first *cps
		why := ""
		for _, c := range p.ordered {
			if !p.serves(c, sa) || !slices.ContainsFunc(pod.StuckImages, c.matches) {
				continue
			}
			r, reason := p.restartFor(c, sa, pod)
			if r != nil {
				p.out.DeletePods = append(p.out.DeletePods, *r)
				p.spent[r.Owner]++
				first = nil
				break
			}
			if reason != "" && first == nil {
				first, why = c, reason
			}
		}
		if first != nil {
			st := p.out.States[first.Name]
			st.Stuck = append(st.Stuck, Stuck{Pod: pod.Name, Why: why})
			p.out.States[first.Name] = st
		}
	}
}

// restartFor returns the restart of a stuck Pod for c, or why c does not
// restart it ("" when c's name is not on the ServiceAccount yet).
func (p *planner) restartFor(c *cps, sa *saPlan, pod Pod) (*PodRestart, string) {
	n := c.SecretName
	w := p.workload(pod.Owner)
	switch {
	case slices.Contains(pod.PullSecrets, n):
		return nil, fmt.Sprintf("it lists %s and still fails to pull: check the credential and the image name", n)
	case !c.AttachToPods && !slices.Contains(sa.list, n) && (w == nil || !slices.Contains(w.PullSecrets, n)):
		return nil, "" // nothing would give a replacement the name yet
	case w == nil:
		return nil, "it has no owner that would recreate it: delete it to retry"
	case !c.AttachToPods && len(w.PullSecrets) > 0 && !slices.Contains(w.PullSecrets, n):
		return nil, fmt.Sprintf("%s %s lists its own imagePullSecrets (%s), which hide the ServiceAccount's: add %s to its template",
			w.Kind, w.Name, strings.Join(w.PullSecrets, ", "), n)
	case !c.RestartPods:
		return nil, "restartPods is Never: delete it to retry"
	case w.FailureBudget >= 0 && p.spent[w.Owner] >= w.FailureBudget:
		return nil, fmt.Sprintf("Job %s cannot afford another failed Pod (backoffLimit reached)", w.Name)
	}
	return &PodRestart{Pod: pod.Name, UID: pod.UID, By: c.Name, Secret: n, ServiceAccount: sa.Name, Owner: w.Owner}, ""
}

func (c *cps) matches(image string) bool { return c.Source.Matches != nil && c.Source.Matches(image) }

// report fills each ClusterPullSecret's state.
func (p *planner) report() {
	pending := map[string]bool{}
	for _, w := range append(slices.Clone(p.out.CreateCopies), p.out.UpdateCopies...) {
		pending[w.Owner] = true
	}
	for _, e := range p.out.ServiceAccounts {
		for _, a := range append(slices.Clone(e.Attach), e.Reassign...) {
			pending[a.By] = true
		}
		// A name handed over or detached is still its recorded owner's
		// until the write is made.
		for _, a := range e.Reassign {
			pending[p.recordOwner(e.ServiceAccount, a.Secret)] = true
		}
		for _, name := range e.Detach {
			pending[p.recordOwner(e.ServiceAccount, name)] = true
		}
		// An adopted record is the controller's once written.
		for _, by := range e.Adopt {
			pending[by] = true
		}
	}
	for _, c := range p.ordered {
		st := p.out.States[c.Name]
		switch c.role {
		case roleDeleting:
			st.Reason, st.Leftovers = v1alpha1.ReasonDeleting, p.leftovers(c)
			st.Message = fmt.Sprintf("%d copies and attachments left", st.Leftovers)
		case roleFrozen:
			st.Selected = c.Invalid == "" && c.Selector != nil
			if c.Invalid != "" || c.Selector == nil {
				st.Reason, st.Message = v1alpha1.ReasonInvalidSpec, c.Invalid
			} else {
				st.Reason, st.Message = c.Source.Problem, c.Source.Message
			}
		case roleUnselected:
			st.Reason = v1alpha1.ReasonNoNamespaces
		case roleActive:
			st.Selected = true
			p.reportActive(c, &st, pending[c.Name])
		}
		p.out.States[c.Name] = st
	}
}

func (p *planner) reportActive(c *cps, st *State, pending bool) {
	n := c.SecretName
	if c.AttachToPods {
		p.reportPods(c, st, pending)
		return
	}
	missing, invalid, adopting := 0, []string{}, false
	for _, sa := range p.sas {
		if sa.Deleting || !p.selects(c, sa) {
			continue
		}
		adopting = adopting || sa.adopted
		if sa.problem != "" {
			invalid = append(invalid, sa.Name)
			continue
		}
		if slices.Contains(sa.list, n) {
			st.Attached++
		} else {
			missing++
		}
	}
	switch {
	case c.conflict != "":
		st.Reason, st.Message = v1alpha1.ReasonConflict, c.conflict
	case !c.ready:
		st.Reason, st.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("Secret %s is being deleted; it is made again once it is gone", n)
	case len(invalid) > 0:
		st.Reason = v1alpha1.ReasonRecordInvalid
		st.Message = fmt.Sprintf("ServiceAccounts %s: the annotation %s was changed by someone else, so pullsecrets leaves them alone; remove the annotations %s and %s to let it manage them again",
			strings.Join(invalid, ", "), v1alpha1.AttachedAnnotation, v1alpha1.AttachedAnnotation, v1alpha1.AttachedProofAnnotation)
	case len(st.Contested) > 0:
		st.Reason, st.Message = v1alpha1.ReasonContested, contestMessage(st.Contested)
	case adopting:
		st.Reason, st.Message = v1alpha1.ReasonProgressing, "records of restored ServiceAccounts are being taken over"
	case pending || missing > 0:
		st.Reason, st.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("Secret %s is being copied and attached", n)
	default:
		st.Ready, st.Reason = true, v1alpha1.ReasonReady
	}
}

// contestMessage says where the name is fought over; the controller adds
// who fights (the field manager), which the planner does not know.
func contestMessage(cs []Contest) string {
	var parts []string
	for _, c := range cs {
		part := fmt.Sprintf("ServiceAccount %s lost %s %d times", c.ServiceAccount, c.Secret, c.Losses)
		if !c.Next.IsZero() {
			part += ", put back at " + c.Next.UTC().Format(time.RFC3339)
		}
		parts = append(parts, part)
	}
	return "another writer keeps removing the name: " + strings.Join(parts, "; ")
}

// reportPods is the state of a Pods-mode ClusterPullSecret: Ready once its
// copy is current and the policy gives its name to new Pods, and no
// attachment of its is left on a ServiceAccount whose Pods the policy
// serves.
func (p *planner) reportPods(c *cps, st *State, pending bool) {
	n := c.SecretName
	attached := 0
	for _, sa := range p.sas {
		if sa.Deleting || sa.problem != "" || skipsPods(sa) {
			continue // going, left alone, or kept: the policy skips its Pods
		}
		for name, by := range sa.record {
			if by == c.Name && slices.Contains(sa.list, name) {
				attached++
			}
		}
	}
	switch {
	case c.conflict != "":
		st.Reason, st.Message = v1alpha1.ReasonConflict, c.conflict
	case !c.ready:
		st.Reason, st.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("Secret %s is being deleted; it is made again once it is gone", n)
	case c.InjectionProblem != "":
		st.Reason, st.Message = v1alpha1.ReasonPodInjectionUnavailable, c.InjectionProblem
	case pending:
		st.Reason, st.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("Secret %s is being copied", n)
	case !p.injecting(c):
		if !c.InjectingFrom.IsZero() {
			p.recheck(c.InjectingFrom.Sub(p.s.Now))
		}
		st.Reason, st.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("waiting for the pod-injection policy to give %s to new Pods", n)
	case attached > 0:
		st.Reason, st.Message = v1alpha1.ReasonProgressing, fmt.Sprintf("%d ServiceAccounts still list names attached before the switch to Pods", attached)
	default:
		st.Ready, st.Reason = true, v1alpha1.ReasonReady
	}
}

func (p *planner) recordOwner(sa, name string) string {
	for _, s := range p.s.ServiceAccounts {
		if s.Name == sa {
			return s.Record[name]
		}
	}
	return ""
}

// leftovers counts what a deleted ClusterPullSecret still has here once
// the plan is applied: copies not yet being deleted and recorded
// attachments on live ServiceAccounts.
func (p *planner) leftovers(c *cps) int {
	n := 0
	for _, k := range p.copies {
		if p.owns(c, k) && !k.Deleting && !slices.ContainsFunc(p.out.DeleteCopies, func(d CopyDelete) bool { return d.UID == k.UID }) {
			n++
		}
	}
	for _, sa := range p.sas {
		if sa.Deleting || sa.problem != "" {
			continue
		}
		for name, by := range sa.record {
			if by == c.Name && slices.Contains(sa.list, name) {
				n++
			}
		}
	}
	return n
}
