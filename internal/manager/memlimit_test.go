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
