package credprovider

import (
	"errors"
	"time"
)

// Schedule decides when to run a plugin again: a refresh well before the
// credentials expire, and a backoff after failures that still tries again
// before the copy in place expires. Its methods are pure: the jitter is a
// uniform draw in [0, 1) from the caller's random source.
type Schedule struct {
	// RefreshFrom and RefreshTo bound the refresh point, as fractions of
	// the lifetime (Expires - Obtained).
	RefreshFrom, RefreshTo float64
	// Margin is the least time left before expiry at a refresh.
	Margin time.Duration
	// MinInterval is the least time between two refreshes; it wins over
	// Margin for very short lifetimes, to keep the plugin out of a hot loop.
	MinInterval time.Duration
	// RetryBase is the delay after the first failure; it doubles per
	// failure up to RetryMax.
	RetryBase, RetryMax time.Duration
	// RetryMin is the least delay of any retry.
	RetryMin time.Duration
}

// DefaultSchedule is the controller's schedule: refresh between 50% and 70% of the lifetime, at least
// 2 minutes before expiry (a run that times out, and one retry) and at
// most once a minute; retry after 10 s, doubling up to 5 minutes, never
// sooner than 5 s.
func DefaultSchedule() Schedule {
	return Schedule{
		RefreshFrom: 0.5,
		RefreshTo:   0.7,
		Margin:      2 * DefaultTimeout,
		MinInterval: time.Minute,
		RetryBase:   10 * time.Second,
		RetryMax:    5 * time.Minute,
		RetryMin:    5 * time.Second,
	}
}

// Validate reports a schedule whose rules contradict each other.
func (s Schedule) Validate() error {
	switch {
	case s.RefreshFrom <= 0 || s.RefreshFrom > s.RefreshTo || s.RefreshTo >= 1:
		return errors.New("refresh schedule: want 0 < refreshFrom <= refreshTo < 1")
	case s.Margin < 0 || s.MinInterval <= 0:
		return errors.New("refresh schedule: want margin >= 0 and minInterval > 0")
	case s.RetryMin <= 0 || s.RetryMin > s.RetryBase || s.RetryBase > s.RetryMax:
		return errors.New("refresh schedule: want 0 < retryMin <= retryBase <= retryMax")
	}
	return nil
}

// RefreshAt is when to run the plugin again after a success: at the
// jittered fraction of the lifetime, no later than Margin before expiry,
// and no sooner than MinInterval after obtained. A zero or negative
// lifetime (cacheDuration 0) refreshes after MinInterval.
func (s Schedule) RefreshAt(obtained, expires time.Time, jitter float64) time.Time {
	earliest := obtained.Add(s.MinInterval)
	lifetime := expires.Sub(obtained)
	if lifetime <= 0 {
		return earliest
	}
	frac := s.RefreshFrom + (s.RefreshTo-s.RefreshFrom)*clampUnit(jitter)
	at := obtained.Add(time.Duration(float64(lifetime) * frac))
	if latest := expires.Add(-s.Margin); at.After(latest) {
		at = latest
	}
	if at.Before(earliest) {
		at = earliest
	}
	return at
}

// RetryAt is when to run the plugin again after the failures-th failure
// in a row (1 for the first): RetryBase doubled per failure, capped at
// RetryMax, with "equal jitter" (between half and all of it). While the
// copy in place is still valid (now < expires; zero expires means none)
// the retry comes no later than halfway to its expiry, so that several
// tries happen before it expires. Never sooner than RetryMin.
func (s Schedule) RetryAt(now time.Time, failures int, expires time.Time, jitter float64) time.Time {
	d := s.backoff(failures)
	d = d/2 + time.Duration(float64(d/2)*clampUnit(jitter))
	if !expires.IsZero() && now.Before(expires) {
		d = min(d, expires.Sub(now)/2)
	}
	return now.Add(max(d, s.RetryMin))
}

// backoff is RetryBase * 2^(failures-1), capped at RetryMax, without overflow.
func (s Schedule) backoff(failures int) time.Duration {
	d := s.RetryBase
	for i := 1; i < failures; i++ {
		if d >= s.RetryMax/2 {
			return s.RetryMax
		}
		d *= 2
	}
	return min(d, s.RetryMax)
}

// clampUnit keeps a jitter draw within [0, 1].
func clampUnit(u float64) float64 {
	switch {
	case u > 1:
		return 1
	case u >= 0:
		return u
	default: // negative or NaN
		return 0
	}
}
