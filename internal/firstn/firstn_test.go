package firstn

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct {
	key   int
	order int // position in the stream, to check stability
}

func byKey(a, b item) int { return cmp.Compare(a.key, b.key) }

// everything is the model: sort the whole stream (stably), then cut.
func everything(n int, stream []item) []item {
	all := slices.Clone(stream)
	slices.SortStableFunc(all, byKey)
	if n < 0 {
		n = 0
	}
	all = all[:min(len(all), n)]
	if len(all) == 0 {
		return nil
	}
	return all
}

func TestList(t *testing.T) {
	cases := []struct {
		name   string
		n      int
		stream []int
		want   []int
	}{
		{"nothing added", 3, nil, nil},
		{"fewer than n", 3, []int{5, 1}, []int{1, 5}},
		{"exactly n", 3, []int{3, 1, 2}, []int{1, 2, 3}},
		{"more than 2n, smallest last", 2, []int{9, 8, 7, 6, 5, 1}, []int{1, 5}},
		{"duplicates", 2, []int{4, 4, 4, 4, 4}, []int{4, 4}},
		{"n of zero keeps nothing", 0, []int{1, 2}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := New(c.n, cmp.Compare[int])
			for _, v := range c.stream {
				l.Add(v)
			}
			if got := l.Sorted(); !slices.Equal(got, c.want) {
				t.Fatalf("Sorted() = %v, want %v", got, c.want)
			}
		})
	}
}

// TestListIsSortingEverythingThenCutting checks random streams against
// the model, ties included: the same items, in the same order, as sorting
// the whole stream and keeping the first n.
func TestListIsSortingEverythingThenCutting(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 2000 {
		n := r.IntN(6)
		stream := make([]item, r.IntN(40))
		for i := range stream {
			stream[i] = item{key: r.IntN(8), order: i}
		}
		l := New(n, byKey)
		held := 0
		for _, it := range stream {
			l.Add(it)
			held = max(held, len(l.items))
		}
		if held > 2*n {
			t.Fatalf("n=%d: held %d items, more than 2n", n, held)
		}
		if got, want := l.Sorted(), everything(n, stream); !slices.Equal(got, want) {
			t.Fatalf("n=%d stream=%v:\n got %v\nwant %v", n, stream, got, want)
		}
	}
}

// Sorted can be called again, and the list goes on after it.
func TestSortedTwice(t *testing.T) {
	l := New(2, cmp.Compare[int])
	l.Add(3)
	l.Add(2)
	first := l.Sorted()
	first[0] = 100 // the caller's slice
	l.Add(1)
	if got := l.Sorted(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Sorted() = %v, want [1 2]", got)
	}
}
