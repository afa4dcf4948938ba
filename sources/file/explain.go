package file

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/culprithq/culprit/correlate"
)

var (
	_ correlate.ConjunctionCounter = (*Logs)(nil)
	_ correlate.ConjunctionCounter = (*Index)(nil)
	_ correlate.ConjunctionCounter = (*cutView)(nil)
)

// maxConditions bounds the distinct conditions of one ConjunctionQuery: a
// line's conditions are a bit mask.
const maxConditions = 64

// conjCounter counts lines by the set of the query's conditions they meet.
// Lines meeting the same set tally together, so a pass costs one mask per
// line and the conjunctions are summed from the few distinct masks at the
// end.
type conjCounter struct {
	conds []correlate.Condition
	slots []int    // per condition, its index in scopeRoles; -1 when unmapped
	conjs []uint64 // per conjunction, the mask of its conditions
	// per mask: errors and requests in the episode, and before it
	errIn, reqIn, errBefore, reqBefore map[uint64]float64
}

func newConjCounter(path string, spec *fieldSpec, q correlate.ConjunctionQuery) (*conjCounter, error) {
	c := &conjCounter{errIn: map[uint64]float64{}, reqIn: map[uint64]float64{}, errBefore: map[uint64]float64{}, reqBefore: map[uint64]float64{}}
	for _, conj := range q.Conjunctions {
		var mask uint64
		for _, cond := range conj {
			i := slices.Index(c.conds, cond)
			if i < 0 {
				if len(c.conds) == maxConditions {
					return nil, fmt.Errorf("logs %s: scope explanation of %s asks for more than %d distinct conditions", path, q.Service, maxConditions)
				}
				slot := -1
				if r, ok := scopeRole(cond.Field); ok && spec.roleSlot[r] >= 0 {
					slot = slices.Index(scopeRoles[:], r)
				}
				c.conds, c.slots = append(c.conds, cond), append(c.slots, slot)
				i = len(c.conds) - 1
			}
			mask |= 1 << i
		}
		c.conjs = append(c.conjs, mask)
	}
	return c, nil
}

// add tallies one line; before says it precedes the episode.
func (c *conjCounter) add(mask uint64, isErr, before bool) {
	if before {
		c.reqBefore[mask]++
		if isErr {
			c.errBefore[mask]++
		}
		return
	}
	c.reqIn[mask]++
	if isErr {
		c.errIn[mask]++
	}
}

func (c *conjCounter) result() []correlate.ConjunctionCount {
	out := make([]correlate.ConjunctionCount, len(c.conjs))
	sum := func(m map[uint64]float64, want uint64) float64 {
		var s float64
		for mask, n := range m {
			if mask&want == want {
				s += n
			}
		}
		return s
	}
	for i, want := range c.conjs {
		out[i] = correlate.ConjunctionCount{
			Errors: sum(c.errIn, want), Requests: sum(c.reqIn, want),
			ErrorsBefore: sum(c.errBefore, want), RequestsBefore: sum(c.reqBefore, want),
		}
	}
	return out
}

// matches is the condition's test on a raw value.
func matches(cond correlate.Condition, v []byte) bool {
	if cond.Prefix {
		return strings.HasPrefix(string(v), strings.TrimSuffix(cond.Value, "*"))
	}
	return string(v) == cond.Value
}

// CountConjunctions reads the file once more and counts, per conjunction,
// the signature's errors and the service's requests in [Before, From) and
// [From, To). A condition on a field the mapping lacks meets no line.
func (l *Logs) CountConjunctions(ctx context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	cc, err := newConjCounter(l.path, l.spec, q)
	if err != nil {
		return nil, err
	}
	m, err := l.matcher(ctx, q.Service, q.Messages)
	if err != nil {
		return nil, err
	}
	before, from, to := q.Before.UnixNano(), q.From.UnixNano(), q.To.UnixNano()
	if q.Before.IsZero() {
		before = from
	}
	var st lineStats
	err = l.scan(ctx, &st, m.prefilter(), func(x *extractor, t int64) {
		if t < before || t >= to || !m.serviceOK(x) {
			return
		}
		var mask uint64
		for i, cond := range cc.conds {
			if s := cc.slots[i]; s >= 0 && matches(cond, x.text(scopeRoles[s])) {
				mask |= 1 << i
			}
		}
		match, _ := m.match(x)
		cc.add(mask, match, t < from)
	})
	if err != nil {
		return nil, err
	}
	return cc.result(), nil
}

// CountConjunctions is Logs.CountConjunctions from the service's lines in
// memory (see Index).
func (x *Index) CountConjunctions(ctx context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	sl, err := x.serviceLines(ctx, q.Service)
	if err != nil {
		return nil, err
	}
	if sl == nil {
		return x.logs.CountConjunctions(ctx, q)
	}
	cc, err := newConjCounter(x.logs.path, x.logs.spec, q)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	matchErr := x.errMatches(sl, q.Service, q.Messages)
	// Each condition is tested once per distinct value id, not per line:
	// memo[i][id] is 0 untested, 1 no, 2 yes.
	memo := make([][]uint8, len(cc.conds))
	for i, s := range cc.slots {
		if s >= 0 {
			memo[i] = make([]uint8, len(x.values[s].vals)+1)
		}
	}
	before, from, to := q.Before.UnixNano(), q.From.UnixNano(), q.To.UnixNano()
	if q.Before.IsZero() {
		before = from
	}
	for _, r := range sl.span(before, to) {
		if r.t < before || r.t >= to {
			continue
		}
		var mask uint64
		for i, cond := range cc.conds {
			s := cc.slots[i]
			if s < 0 {
				continue
			}
			id := r.vals[s]
			m := memo[i][id]
			if m == 0 {
				m = 1
				if matches(cond, []byte(x.values[s].value(id))) {
					m = 2
				}
				memo[i][id] = m
			}
			if m == 2 {
				mask |= 1 << i
			}
		}
		cc.add(mask, r.err >= 0 && matchErr[r.err], r.t < from)
	}
	return cc.result(), nil
}

// CountConjunctions counts only lines before the cutoff, as Scope does.
func (v *cutView) CountConjunctions(ctx context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	if !q.To.IsZero() && q.To.After(v.cut) {
		q.To = v.cut
	}
	return v.x.CountConjunctions(ctx, q)
}
