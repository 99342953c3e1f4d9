package manager

import (
	"errors"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// GOMEMLIMIT follows the container's limit, times the ratio; a ratio of 0,
// a GOMEMLIMIT in the environment, no limit, or a limit that cannot be
// read leave it as it was.
func TestSetMemoryLimitFollowsTheContainer(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	const limit = 256 << 20
	cases := []struct {
		name     string
		ratio    float64
		env      string
		provider memlimit.Provider
		want     int64
	}{
		{"90% of the container's limit", 0.9, "", memlimit.Limit(limit), limit * 9 / 10},
		{"off", 0, "", memlimit.Limit(limit), math.MaxInt64},
		{"GOMEMLIMIT in the environment wins", 0.9, "100MiB", memlimit.Limit(limit), math.MaxInt64},
		{"no limit", 0.9, "", func() (uint64, error) { return 0, memlimit.ErrNoLimit }, math.MaxInt64},
		{"no cgroup", 0.9, "", func() (uint64, error) { return 0, errors.New("no cgroup") }, math.MaxInt64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			t.Setenv("GOMEMLIMIT", c.env)
			t.Setenv("AUTOMEMLIMIT", "") // restored after the test
			_ = os.Unsetenv("AUTOMEMLIMIT")
			setMemoryLimit(c.ratio, c.provider)
			if got := debug.SetMemoryLimit(-1); got != c.want {
				t.Errorf("GOMEMLIMIT %d, want %d", got, c.want)
			}
		})
	}
}

func TestMemoryLimitRatioIsValidated(t *testing.T) {
	for ratio, ok := range map[float64]bool{0: true, 0.9: true, 1: true, -0.1: false, 1.5: false} {
		o := DefaultOptions()
		o.MemoryLimitRatio = ratio
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("--memory-limit-ratio %v: %v", ratio, err)
		}
	}
}

// The collector's GOGC is the flag's when given, else the environment's
// GOGC (which the runtime read at start), else DefaultGCPercent.
func TestSetGCPercentPrefersTheFlagThenTheEnvironment(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	cases := []struct {
		name    string
		flag    int
		env     string
		runtime int // what the runtime had from the environment
		want    int
	}{
		{"the default", 0, "", 100, DefaultGCPercent},
		{"GOGC in the environment", 0, "80", 80, 80},
		{"GOGC=off in the environment", 0, "off", -1, -1},
		{"the flag over the environment", 30, "80", 80, 30},
		{"the flag alone", 200, "", 100, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			debug.SetGCPercent(c.runtime)
			if got := setGCPercent(c.flag, c.env); got != c.want {
				t.Errorf("setGCPercent returned %d, want %d", got, c.want)
			}
			if got := debug.SetGCPercent(100); got != c.want {
				t.Errorf("GOGC in force %d, want %d", got, c.want)
			}
		})
	}
}

func TestGCPercentIsValidated(t *testing.T) {
	for percent, ok := range map[int]bool{0: true, 50: true, 400: true, -1: false} {
		o := DefaultOptions()
		o.GCPercent = percent
		if err := o.Validate(); (err == nil) != ok {
			t.Errorf("--gc-percent %d: %v", percent, err)
		}
	}
}
