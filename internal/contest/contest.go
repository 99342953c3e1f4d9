// Package contest decides how the controller answers another writer that
// keeps removing a name it attached to a ServiceAccount. The list is
// listType=atomic: under server-side apply a GitOps tool (Argo CD self-heal,
// a Flux apply) that renders imagePullSecrets owns the whole list and
// reverts every name it does not render. Re-attaching at once, every time,
// is a silent fight of a write a second on both sides. Instead the
// controller re-attaches the first times at once (a one-off edit is
// repaired in milliseconds), then backs off exponentially, and reports the
// fight until it ends. Pure: times in, a decision out.
package contest

import (
	"slices"
	"time"
)

// Policy is how a fight is answered.
type Policy struct {
	// Free re-attachments are made at once; from the next one on the
	// controller backs off.
	Free int
	// Base is the first backoff; each later one doubles, up to Max.
	Base, Max time.Duration
	// Memory is how long a re-attachment counts: a ServiceAccount that
	// kept its name that long starts afresh.
	Memory time.Duration
	// Quiet is how long after the last re-attachment a fight is still
	// reported while the name stays.
	Quiet time.Duration
}

// DefaultPolicy answers a writer that strips the name every second with
// five writes in its first 30 seconds and one every 5 minutes after 12
// minutes, and reports the fight from the second loss on.
func DefaultPolicy() Policy {
	return Policy{Free: 2, Base: 5 * time.Second, Max: 5 * time.Minute, Memory: 15 * time.Minute, Quiet: time.Minute}
}

// Decision is what to do about a name missing from a ServiceAccount that
// the controller had attached.
type Decision struct {
	// Attach now, or wait until Next.
	Attach bool
	Next   time.Time
	// Contested: someone else keeps removing the name; report it.
	Contested bool
	// Losses counts the re-attachments still remembered.
	Losses int
}

// Recent keeps the re-attachment times still remembered at now, oldest
// first.
func (p Policy) Recent(reattached []time.Time, now time.Time) []time.Time {
	out := slices.DeleteFunc(slices.Clone(reattached), func(t time.Time) bool { return now.Sub(t) >= p.Memory || t.After(now) })
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// Lost decides for a name that was removed again (missing now, attached
// by the controller before), given when the controller re-attached it.
func (p Policy) Lost(reattached []time.Time, now time.Time) Decision {
	recent := p.Recent(reattached, now)
	d := Decision{Losses: len(recent), Contested: len(recent) >= p.Free}
	if len(recent) < p.Free {
		d.Attach, d.Next = true, now
		return d
	}
	d.Next = recent[len(recent)-1].Add(p.backoff(len(recent)))
	d.Attach = !now.Before(d.Next)
	return d
}

// Holding decides for a name the ServiceAccount lists: whether the fight
// that re-attached it is still to be reported.
func (p Policy) Holding(reattached []time.Time, now time.Time) Decision {
	recent := p.Recent(reattached, now)
	d := Decision{Losses: len(recent)}
	d.Contested = len(recent) >= p.Free && now.Sub(recent[len(recent)-1]) < p.Quiet
	if d.Contested {
		d.Next = recent[len(recent)-1].Add(p.Quiet)
	}
	return d
}

// backoff is the wait after the n-th remembered re-attachment (n >= Free).
func (p Policy) backoff(n int) time.Duration {
	d := p.Base
	for i := p.Free; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}
