package nsindex

import "slices"

// Pairs are labels or annotations kept as key, value, key, value... sorted
// by key: a slice costs a few words where a map keeps room for eight
// entries.
type Pairs []string

// NewPairs flattens m (only the keys in keep, when keep is not nil),
// interning all but the value of unique (a proof, which differs on every
// object); nil when nothing is kept.
func NewPairs(m map[string]string, keep []string, intern func(string) string, unique string) Pairs {
	keys := make([]string, 0, len(m))
	for k := range m {
		if keep == nil || slices.Contains(keep, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	out := make(Pairs, 0, 2*len(keys))
	for _, k := range keys {
		v := m[k]
		if k != unique {
			v = intern(v)
		}
		out = append(out, intern(k), v)
	}
	return out
}

// Get returns the value of k.
func (p Pairs) Get(k string) (string, bool) {
	for i := 0; i+1 < len(p); i += 2 {
		if p[i] == k {
			return p[i+1], true
		}
	}
	return "", false
}

// Map returns a new map of the pairs; nil when there are none.
func (p Pairs) Map() map[string]string {
	if len(p) == 0 {
		return nil
	}
	m := make(map[string]string, len(p)/2)
	for i := 0; i+1 < len(p); i += 2 {
		m[p[i]] = p[i+1]
	}
	return m
}
