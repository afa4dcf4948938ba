package cache

import "slices"

// ranges is a set of bucket indexes as sorted, disjoint, non-adjacent
// half-open intervals: a series' short buckets (see Source.split) come in
// runs (the rest of a read after its examples ran out, everything outside
// the example budget), so a few intervals mark what would otherwise take
// a flag per bucket.
type ranges []interval

type interval struct{ lo, hi int64 }

// has says whether g is in the set.
func (r ranges) has(g int64) bool {
	k, _ := slices.BinarySearchFunc(r, g, func(iv interval, g int64) int {
		switch {
		case iv.hi <= g:
			return -1
		case iv.lo > g:
			return 1
		}
		return 0
	})
	return k < len(r) && r[k].lo <= g && g < r[k].hi
}

// overlaps says whether any of [lo, hi) is in the set.
func (r ranges) overlaps(lo, hi int64) bool {
	for _, iv := range r {
		if iv.lo < hi && lo < iv.hi {
			return true
		}
	}
	return false
}

// add puts [lo, hi) in the set.
func (r *ranges) add(lo, hi int64) {
	if lo >= hi {
		return
	}
	out := make(ranges, 0, len(*r)+1)
	placed := false
	for _, iv := range *r {
		switch {
		case iv.hi < lo:
			out = append(out, iv)
		case hi < iv.lo:
			if !placed {
				out, placed = append(out, interval{lo, hi}), true
			}
			out = append(out, iv)
		default: // overlapping or adjacent: merge
			lo, hi = min(lo, iv.lo), max(hi, iv.hi)
		}
	}
	if !placed {
		out = append(out, interval{lo, hi})
	}
	*r = slices.Clip(out)
}

// remove takes [lo, hi) out of the set.
func (r *ranges) remove(lo, hi int64) {
	if lo >= hi || !r.overlaps(lo, hi) {
		return
	}
	out := make(ranges, 0, len(*r)+1)
	for _, iv := range *r {
		if iv.hi <= lo || hi <= iv.lo {
			out = append(out, iv)
			continue
		}
		if iv.lo < lo {
			out = append(out, interval{iv.lo, lo})
		}
		if hi < iv.hi {
			out = append(out, interval{hi, iv.hi})
		}
	}
	if len(out) == 0 {
		*r = nil
		return
	}
	*r = slices.Clip(out)
}
