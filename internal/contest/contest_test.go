package contest_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/contest"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func at(s ...float64) []time.Time {
	var out []time.Time
	for _, x := range s {
		out = append(out, t0.Add(time.Duration(x*float64(time.Second))))
	}
	return out
}

func TestLost(t *testing.T) {
	t.Parallel()
	p := contest.DefaultPolicy()
	for _, tt := range []struct {
		name       string
		reattached []time.Time
		now        float64
		attach     bool
		next       float64
		contested  bool
	}{
		{name: "a first loss is repaired at once", now: 1, attach: true, next: 1},
		{name: "a second too", reattached: at(1), now: 2, attach: true, next: 2},
		{name: "the third waits 5s after the last", reattached: at(1, 2), now: 3, next: 7, contested: true},
		{name: "and is made then", reattached: at(1, 2), now: 7, attach: true, next: 7, contested: true},
		{name: "the fourth waits 10s", reattached: at(1, 2, 7), now: 8, next: 17, contested: true},
		{name: "the fifth 20s", reattached: at(1, 2, 7, 17), now: 18, next: 37, contested: true},
		{name: "at most 5 minutes", reattached: at(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), now: 10, next: 9 + 300, contested: true},
		{name: "forgotten after 15 minutes", reattached: at(0, 1), now: 901, attach: true, next: 901},
		{name: "only the remembered ones count", reattached: at(0, 1, 600), now: 901, attach: true, next: 901},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := p.Lost(tt.reattached, at(tt.now)[0])
			if d.Attach != tt.attach || !d.Next.Equal(at(tt.next)[0]) || d.Contested != tt.contested {
				t.Fatalf("Lost = %+v; want attach %v at %v, contested %v", d, tt.attach, tt.next, tt.contested)
			}
		})
	}
}

func TestHolding(t *testing.T) {
	t.Parallel()
	p := contest.DefaultPolicy()
	if d := p.Holding(at(1, 2, 7), at(30)[0]); !d.Contested || !d.Next.Equal(at(67)[0]) {
		t.Errorf("30 s after the last re-attachment: %+v, want contested until 67", d)
	}
	if d := p.Holding(at(1, 2, 7), at(68)[0]); d.Contested {
		t.Errorf("a minute of quiet: %+v, want over", d)
	}
	if d := p.Holding(at(1), at(2)[0]); d.Contested {
		t.Errorf("one loss is no fight: %+v", d)
	}
}

// A writer that strips the name every period, for a while: the controller's
// writes stay bounded whatever the period, the fight is reported from the
// second loss, and every loss is repaired at last.
func TestFightsAreBounded(t *testing.T) {
	t.Parallel()
	p := contest.DefaultPolicy()
	rng := rand.New(rand.NewPCG(3, 5))
	const step = 200 * time.Millisecond
	for range 200 {
		period := time.Duration(200+rng.IntN(5000)) * time.Millisecond
		fight := time.Duration(10+rng.IntN(900)) * time.Second
		var reattached []time.Time
		present := true
		reportedAt := time.Time{}
		for now := t0; now.Before(t0.Add(fight + 6*time.Minute)); now = now.Add(step) {
			stripping := now.Before(t0.Add(fight))
			if stripping && present && now.Sub(t0)%period < step {
				present = false
			}
			if present {
				continue
			}
			d := p.Lost(reattached, now)
			if d.Contested && reportedAt.IsZero() {
				reportedAt = now
			}
			if d.Attach {
				reattached = append(reattached, now)
				present = true
			}
		}
		if !present {
			t.Fatalf("period %v, fight %v: the name was never put back", period, fight)
		}
		writes := func(d time.Duration) int {
			n := 0
			for _, r := range reattached {
				if r.Before(t0.Add(d)) {
					n++
				}
			}
			return n
		}
		if w := writes(30 * time.Second); w > 6 {
			t.Fatalf("period %v: %d writes in the first 30 s", period, w)
		}
		if fight >= 2*time.Minute {
			if w := writes(fight) - writes(fight-time.Minute); w > 2 {
				t.Fatalf("period %v, fight %v: %d writes in its last minute", period, fight, w)
			}
		}
		if len(reattached) >= 2 && reportedAt.Sub(reattached[1]) > 10*time.Second {
			t.Fatalf("period %v: reported at %v, %v after the second loss", period, reportedAt.Sub(t0), reportedAt.Sub(reattached[1]))
		}
	}
}
