package planner

import (
	"maps"
	"slices"
	"time"
)

// After returns the snapshot as it is once every write of the plan is
// made. A created copy gets the UID its CopyWrite carries (the writer sets
// it from the API server's answer). s is not modified; the result may share
// the lists and maps of what the plan does not change.
func After(s Snapshot, p Plan) Snapshot {
	out := s
	out.Copies = slices.Clone(s.Copies)
	for _, w := range append(slices.Clone(p.UpdateCopies), p.ResignCopies...) {
		i := slices.IndexFunc(out.Copies, func(k Copy) bool { return k.Name == w.Name })
		if i < 0 {
			// Restored when its create found the copy the controller made,
			// without the label the copies are listed by.
			i = len(out.Copies)
			out.Copies = append(out.Copies, Copy{Name: w.Name, UID: w.UID, Type: w.Type})
		}
		k := &out.Copies[i]
		// Written with the signing key: proven, its proof the writer's own.
		k.Hash, k.Proven, k.Resign, k.Proof = w.Hash, true, false, ""
		if w.Restore {
			// Its marks put back: the owner's again.
			k.Owner, k.OwnerUID, k.Restore = w.Owner, w.OwnerUID, false
		}
	}
	for _, w := range p.CreateCopies {
		out.Copies = append(out.Copies, Copy{Name: w.Name, UID: w.UID, Owner: w.Owner, OwnerUID: w.OwnerUID, Hash: w.Hash, Type: w.Type, Proven: true})
	}
	for _, d := range p.DeleteCopies {
		out.Copies = slices.DeleteFunc(out.Copies, func(k Copy) bool { return k.Name == d.Name })
	}
	out.ServiceAccounts = slices.Clone(s.ServiceAccounts)
	for _, e := range p.ServiceAccounts {
		for i := range out.ServiceAccounts {
			sa := &out.ServiceAccounts[i]
			if sa.Name != e.ServiceAccount {
				continue
			}
			record := sa.Record
			if e.Adopt != nil {
				record = e.Adopt
			}
			sa.PullSecrets, sa.Record, _ = e.Apply(sa.PullSecrets, record)
			if e.Resign {
				// Written with the signing key (and adopted).
				sa.RecordProblem, sa.Unverified, sa.RecordResign = "", nil, false
			}
			for _, a := range e.Attach {
				if a.Again {
					// Remembered as the controller's tracker does once the
					// write is made.
					reattached := maps.Clone(sa.Reattached)
					if reattached == nil {
						reattached = map[string][]time.Time{}
					}
					reattached[a.Secret] = append(slices.Clone(reattached[a.Secret]), s.Now)
					sa.Reattached = reattached
				}
			}
		}
	}
	if len(p.DeletePods) > 0 {
		out.Pods = slices.DeleteFunc(slices.Clone(s.Pods), func(pod Pod) bool {
			return slices.ContainsFunc(p.DeletePods, func(r PodRestart) bool { return r.UID == pod.UID })
		})
	}
	out.Blocked = maps.Clone(s.Blocked)
	return out
}
