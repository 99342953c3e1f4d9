package controller

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// refBoard is the board's meaning, written plainly with maps.
type refBoard map[string]map[string]planner.State

// The board answers as the plain map model does, through random sequences
// of reports, computed states and drops; set says exactly which
// ClusterPullSecrets' states changed.
func TestBoardRandomized(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 7))
		b, ref := newBoard(), refBoard{}
		names := []string{"acme", "beta", "gamma"}
		namespaces := []string{"shop", "bank", "lab"}
		state := func() planner.State {
			st := planner.State{Selected: r.IntN(4) > 0, Ready: r.IntN(2) == 0, Attached: r.IntN(3)}
			if r.IntN(5) == 0 {
				st.Retiring = []planner.Retiring{{Secret: "old", HeldBy: []string{"Pod web"}}}
			}
			return st
		}
		for step := range 60 {
			ns, cps := namespaces[r.IntN(len(namespaces))], names[r.IntN(len(names))]
			where := fmt.Sprintf("seed %d step %d", seed, step)
			switch r.IntN(5) {
			case 0, 1:
				states := map[string]planner.State{}
				for _, c := range names {
					if r.IntN(2) == 0 {
						states[c] = state()
					}
				}
				got := b.set(ns, states)
				var want []string
				next := map[string]planner.State{}
				for c, st := range states {
					if worthKeeping(st) {
						next[c] = st
					}
				}
				for _, c := range names {
					prev, had := ref[ns][c]
					now, has := next[c]
					if had != has || (has && fmt.Sprint(prev) != fmt.Sprint(now)) {
						want = append(want, c)
					}
				}
				if len(next) == 0 {
					delete(ref, ns)
				} else {
					ref[ns] = next
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: set changed %v, want %v", where, got, want)
				}
			case 2:
				st := state()
				b.put(ns, cps, st)
				if _, ok := ref[ns][cps]; !ok && worthKeeping(st) {
					if ref[ns] == nil {
						ref[ns] = map[string]planner.State{}
					}
					ref[ns][cps] = st
				}
			case 3:
				got := b.dropNamespace(ns)
				var want []string
				for c := range ref[ns] {
					want = append(want, c)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: dropNamespace %v, want %v", where, got, want)
				}
				delete(ref, ns)
			case 4:
				b.dropCPS(cps)
				for n, m := range ref {
					delete(m, cps)
					if len(m) == 0 {
						delete(ref, n)
					}
				}
			}
			for _, n := range namespaces {
				for _, c := range names {
					got, known := b.get(n, c)
					want, ok := ref[n][c]
					_, wantKnown := ref[n]
					if known != wantKnown || fmt.Sprint(got) != fmt.Sprint(want) || (ok && !known) {
						t.Fatalf("%s: get(%s, %s) = %v %v, want %v %v", where, n, c, got, known, want, wantKnown)
					}
				}
			}
			for _, c := range names {
				seen := map[string]bool{}
				b.each(c, func(n string, _ planner.State) { seen[n] = true })
				for _, n := range namespaces {
					if _, ok := ref[n][c]; ok != seen[n] {
						t.Fatalf("%s: each(%s) sees %s: %v", where, c, n, seen[n])
					}
				}
			}
		}
	}
}

// BenchmarkBoardBytes is what the board keeps of a namespace that matters
// to one ClusterPullSecret, Ready (the state of most namespaces).
func BenchmarkBoardBytes(b *testing.B) {
	const namespaces = 10000
	names := make([]string, namespaces)
	for i := range names {
		names[i] = fmt.Sprintf("team-%05d", i)
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		board := newBoard()
		for _, ns := range names {
			board.set(ns, map[string]planner.State{"acme": {Selected: true, Ready: true, Reason: "Ready", Attached: 3}})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/namespaces, "bytes/namespace")
		runtime.KeepAlive(board)
	}
}
