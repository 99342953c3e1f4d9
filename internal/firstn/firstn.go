// Package firstn keeps the first n of a stream of items in an order,
// holding at most 2n of them at any time: a status that names the first
// 20 stuck Pods of 10,000 namespaces should not hold all 10,000 to sort
// them.
package firstn

import "slices"

// List keeps the n smallest items added, by cmp.
type List[T any] struct {
	n     int
	cmp   func(a, b T) int
	items []T
}

// New returns an empty list that keeps the n smallest items by cmp.
func New[T any](n int, cmp func(a, b T) int) *List[T] {
	return &List[T]{n: n, cmp: cmp}
}

// Add offers an item. Once 2n are held they are sorted and cut back to n:
// amortized O(log n) a call, and at most 2n items held.
func (l *List[T]) Add(item T) {
	if l.n <= 0 {
		return
	}
	l.items = append(l.items, item)
	if len(l.items) >= 2*l.n {
		l.cut()
	}
}

func (l *List[T]) cut() {
	// Stable, so that among equal items the first added are kept, as a
	// sort of everything then a cut would keep them.
	slices.SortStableFunc(l.items, l.cmp)
	clear(l.items[min(len(l.items), l.n):])
	l.items = l.items[:min(len(l.items), l.n)]
}

// Sorted returns the n smallest items added, in order, in a slice of
// their own (nil when none was added).
func (l *List[T]) Sorted() []T {
	l.cut()
	if len(l.items) == 0 {
		return nil
	}
	return slices.Clone(l.items)
}
