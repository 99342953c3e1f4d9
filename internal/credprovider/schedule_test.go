package credprovider

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestDefaultScheduleIsValid(t *testing.T) {
	if err := DefaultSchedule().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestScheduleValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Schedule){
		"from zero":            func(s *Schedule) { s.RefreshFrom = 0 },
		"from after to":        func(s *Schedule) { s.RefreshFrom, s.RefreshTo = 0.8, 0.6 },
		"to one":               func(s *Schedule) { s.RefreshTo = 1 },
		"negative margin":      func(s *Schedule) { s.Margin = -time.Second },
		"zero min interval":    func(s *Schedule) { s.MinInterval = 0 },
		"zero retry min":       func(s *Schedule) { s.RetryMin = 0 },
		"retry base below min": func(s *Schedule) { s.RetryBase = time.Second },
		"retry max below base": func(s *Schedule) { s.RetryMax = time.Second },
	} {
		s := DefaultSchedule()
		mutate(&s)
		if s.Validate() == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
}

func TestRefreshAt(t *testing.T) {
	s := DefaultSchedule()
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		jitter   float64
		want     time.Duration // after obtained
	}{
		// ecr-credential-provider reports half of the 12 h token's life.
		{"ecr earliest", 6 * time.Hour, 0, 3 * time.Hour},
		{"ecr middle", 6 * time.Hour, 0.5, 3*time.Hour + 36*time.Minute},
		{"ecr latest", 6 * time.Hour, 1, 4*time.Hour + 12*time.Minute},
		{"google hour", time.Hour, 0.25, 33 * time.Minute},
		{"acr 5 minutes", 5 * time.Minute, 0, 2*time.Minute + 30*time.Second},
		// 70% of 5 min is 3.5 min, but the margin wants 2 min left.
		{"margin caps", 5 * time.Minute, 1, 3 * time.Minute},
		{"margin leaves the window", 10 * time.Minute, 1, 7 * time.Minute},
		// The margin would ask for a refresh 30 s after obtained: MinInterval wins.
		{"min interval beats margin", 150 * time.Second, 0.5, time.Minute},
		{"lifetime below min interval", 30 * time.Second, 0, time.Minute},
		{"cacheDuration 0", 0, 0.9, time.Minute},
		{"expired before obtained", -time.Hour, 0.5, time.Minute},
		{"jitter above 1 clamps", 6 * time.Hour, 7, 4*time.Hour + 12*time.Minute},
		{"negative jitter clamps", 6 * time.Hour, -1, 3 * time.Hour},
		{"NaN jitter clamps", 6 * time.Hour, math.NaN(), 3 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := s.RefreshAt(t0, t0.Add(tc.lifetime), tc.jitter).Sub(t0)
			if got != tc.want {
				t.Errorf("RefreshAt(lifetime %s, jitter %v) = obtained + %s, want + %s", tc.lifetime, tc.jitter, got, tc.want)
			}
		})
	}
}

func TestRefreshAtRandomized(t *testing.T) {
	s := DefaultSchedule()
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		obtained := t0.Add(time.Duration(rnd.Int64N(int64(365 * 24 * time.Hour))))
		lifetime := time.Duration(rnd.Int64N(int64(48*time.Hour))) - time.Hour
		expires := obtained.Add(lifetime)
		jitter := rnd.Float64()
		at := s.RefreshAt(obtained, expires, jitter)

		if at.Before(obtained.Add(s.MinInterval)) {
			t.Fatalf("lifetime %s jitter %v: refresh %s after obtained, sooner than MinInterval", lifetime, jitter, at.Sub(obtained))
		}
		// The margin holds whenever MinInterval leaves room for it.
		if lifetime-s.Margin >= s.MinInterval && at.After(expires.Add(-s.Margin)) {
			t.Fatalf("lifetime %s jitter %v: refresh only %s before expiry, want at least %s", lifetime, jitter, expires.Sub(at), s.Margin)
		}
		// Within the jitter window unless a bound moved it earlier (margin) or later (min interval).
		if lifetime > 0 {
			frac := float64(at.Sub(obtained)) / float64(lifetime)
			clampedByMargin := at.Equal(expires.Add(-s.Margin))
			clampedByMin := at.Equal(obtained.Add(s.MinInterval))
			if !clampedByMargin && !clampedByMin && (frac < s.RefreshFrom-1e-9 || frac > s.RefreshTo+1e-9) {
				t.Fatalf("lifetime %s jitter %v: refresh at %.4f of the lifetime, want within [%v, %v]", lifetime, jitter, frac, s.RefreshFrom, s.RefreshTo)
			}
		}
		// A larger draw never refreshes sooner.
		if later := s.RefreshAt(obtained, expires, math.Min(1, jitter+0.1)); later.Before(at) {
			t.Fatalf("lifetime %s: jitter %v refreshes at %s, jitter %v sooner at %s", lifetime, jitter, at, jitter+0.1, later)
		}
	}
}

func TestRefreshAtSpreadsAFleet(t *testing.T) {
	// 1,000 ClusterPullSecrets obtained at the same instant must not
	// refresh at the same instant.
	s := DefaultSchedule()
	rnd := rand.New(rand.NewPCG(3, 4))
	seen := map[time.Time]bool{}
	lo, hi := t0.Add(24*time.Hour), t0
	for range 1000 {
		at := s.RefreshAt(t0, t0.Add(6*time.Hour), rnd.Float64())
		seen[at] = true
		lo, hi = minTime(lo, at), maxTime(hi, at)
	}
	if len(seen) < 990 {
		t.Errorf("%d distinct refresh times of 1000, want them spread", len(seen))
	}
	if spread := hi.Sub(lo); spread < time.Hour {
		t.Errorf("refreshes spread over %s, want over an hour of the 72-minute window", spread)
	}
}

func TestScheduleDeterministic(t *testing.T) {
	s := DefaultSchedule()
	run := func() []time.Time {
		rnd := rand.New(rand.NewPCG(42, 42))
		var out []time.Time
		for i := range 50 {
			out = append(out, s.RefreshAt(t0, t0.Add(time.Duration(i+1)*time.Hour), rnd.Float64()),
				s.RetryAt(t0, i%8+1, t0.Add(time.Hour), rnd.Float64()))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if !a[i].Equal(b[i]) {
			t.Fatalf("draw %d: %s then %s from the same seed", i, a[i], b[i])
		}
	}
}

func TestRetryAt(t *testing.T) {
	s := DefaultSchedule()
	never := time.Time{}
	for _, tc := range []struct {
		name     string
		failures int
		expires  time.Time
		jitter   float64
		want     time.Duration // after now
	}{
		{"first, no jitter", 1, never, 1, 10 * time.Second},
		{"first, least jitter", 1, never, 0, 5 * time.Second},
		{"second", 2, never, 1, 20 * time.Second},
		{"third", 3, never, 1, 40 * time.Second},
		{"fifth", 5, never, 1, 160 * time.Second},
		{"sixth capped", 6, never, 1, 5 * time.Minute},
		{"hundredth capped", 100, never, 1, 5 * time.Minute},
		{"huge count capped", math.MaxInt, never, 0.5, 3*time.Minute + 45*time.Second},
		{"zero failures count as one", 0, never, 1, 10 * time.Second},
		{"least jitter of the cap", 9, never, 0, 150 * time.Second},
		// The copy in place expires in 4 min: retry by halfway, not after 5 min.
		{"halfway to expiry", 9, t0.Add(4 * time.Minute), 1, 2 * time.Minute},
		{"expiry far away", 9, t0.Add(time.Hour), 1, 5 * time.Minute},
		{"expiry close: RetryMin floor", 3, t0.Add(4 * time.Second), 1, 5 * time.Second},
		{"already expired: plain backoff", 6, t0.Add(-time.Minute), 1, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := s.RetryAt(t0, tc.failures, tc.expires, tc.jitter).Sub(t0)
			if got != tc.want {
				t.Errorf("RetryAt(failures %d, jitter %v) = now + %s, want + %s", tc.failures, tc.jitter, got, tc.want)
			}
		})
	}
}

func TestRetryAtRandomized(t *testing.T) {
	s := DefaultSchedule()
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		now := t0.Add(time.Duration(rnd.Int64N(int64(30 * 24 * time.Hour))))
		failures := 1 + rnd.IntN(40)
		var expires time.Time
		if rnd.IntN(4) > 0 {
			expires = now.Add(time.Duration(rnd.Int64N(int64(13*time.Hour))) - time.Hour)
		}
		jitter := rnd.Float64()
		d := s.RetryAt(now, failures, expires, jitter).Sub(now)

		if d < s.RetryMin || d > s.RetryMax {
			t.Fatalf("failures %d: retry after %s, want within [%s, %s]", failures, d, s.RetryMin, s.RetryMax)
		}
		if remaining := expires.Sub(now); !expires.IsZero() && remaining > 2*s.RetryMin && d >= remaining {
			t.Fatalf("failures %d: retry after %s, but the copy in place expires in %s", failures, d, remaining)
		}
		// One more failure never retries sooner, for the same draw and expiry.
		if next := s.RetryAt(now, failures+1, expires, jitter).Sub(now); next < d {
			t.Fatalf("failures %d: retry after %s, failures %d after only %s", failures, d, failures+1, next)
		}
	}
}

func TestRetriesBeforeExpiry(t *testing.T) {
	// A plugin that keeps failing from the moment a refresh was due: count
	// the tries made while the copy in place is still valid.
	s := DefaultSchedule()
	rnd := rand.New(rand.NewPCG(7, 8))
	for _, lifetime := range []time.Duration{6 * time.Hour, time.Hour, 5 * time.Minute} {
		obtained := t0
		expires := obtained.Add(lifetime)
		now := s.RefreshAt(obtained, expires, rnd.Float64())
		tries, last := 0, now
		for failures := 1; now.Before(expires); failures++ {
			tries++
			last = now
			now = s.RetryAt(now, failures, expires, rnd.Float64())
		}
		if tries < 5 {
			t.Errorf("lifetime %s: %d tries before expiry, want at least 5", lifetime, tries)
		}
		if gap := expires.Sub(last); gap > 2*s.RetryMin {
			t.Errorf("lifetime %s: the last try before expiry came %s before it, want within %s", lifetime, gap, 2*s.RetryMin)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
