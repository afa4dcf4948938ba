package cache

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// Conjunction counts (a finding's scope explanations) are kept per finding
// the way breakdowns are (scope.go), so that an open finding costs its new
// buckets at every evaluation, not a count over its whole window. A count
// splits into parts that add up, over the spans before the onset
// [Before, From) and from it [From, To):
//
//   - a running sum over [before, to), where to is the end of the cached
//     region (complete buckets out of the re-checked region, as of the
//     last Traffic), kept per finding (service, signature and From) and per
//     conjunction;
//   - at each call, Before moving: the buckets it left are read and taken
//     off the sum (or, when it moved back, the buckets it gained are read
//     and added);
//   - the buckets that joined the cached region since the last call, read
//     and added;
//   - what is newer than the cached region, read at every call and not
//     kept, so documents indexed late into it are counted.
//
// The correlator ties Before to the onset (a lookback before it, on an
// hourly grid), so in the steady state that is one read of a bucket or two
// (the new ones, with the re-checked region when its count changed),
// whatever the window's length; a caller whose Before follows the window
// costs one more, the bucket that left it. A finding whose onset moved
// keeps its counts (see adoptConj): the buckets between the two onsets are
// read and moved from one span to the other. A conjunction first asked for
// is read over the kept span once. A kept conjunction not asked for at a
// call is still counted with the rest for conjRetain, then dropped.
//
// Taking a bucket off reads it again, hours after it was counted: a
// document indexed into it in between (later than the re-checked region
// looks, which Traffic does not count either) would be taken off without
// having been added. Each count is floored at zero, so such a straggler
// can only make the before-span a few documents short, never negative.

// conjRetain is how long a finding's conjunction stays counted after an
// evaluation last asked for it. Counting it costs a few buckets of the
// service's documents at each evaluation, little more by mask while its
// conditions stay among those asked for; asking for it again after it
// was dropped costs a read of the finding's whole span.
const conjRetain = 30 * time.Minute

type conjKey struct {
	service, messages string
	from              time.Time
}

// conjSum is one finding's kept counts over [before, to), split at from.
type conjSum struct {
	before, to, from time.Time
	counts           map[string]correlate.ConjunctionCount
	// conds and asked are each kept conjunction's conditions and the last
	// evaluation that asked for it (see conjRetain).
	conds map[string][]correlate.Condition
	asked map[string]time.Time
	used  time.Time
	// rest is the last call's read of what was newer than the cached
	// region (see reuseRest).
	rest *conjRest
}

// conjRest is a read of [from, to), split at onset, by conjunction.
type conjRest struct {
	from, to, onset time.Time
	counts          map[string]correlate.ConjunctionCount
	// traffic is the Traffic call the read followed (Source.traffics).
	traffic int64
}

// adoptConj hands a finding whose onset moved (the onset of an episode is
// re-estimated at each evaluation, and may move by a bucket or two) the
// kept counts of the same service and signature under its former onset,
// the nearest one not yet asked for at this evaluation (at): moving the
// onset costs a read of the buckets between the two, where starting over
// costs the window. Nil when there is none.
func (s *Source) adoptConj(key conjKey, at time.Time) *conjSum {
	var best conjKey
	var found *conjSum
	for k, sum := range s.conjs {
		if k.service != key.service || k.messages != key.messages || sum.used.Equal(at) {
			continue
		}
		if found == nil || absDur(k.from.Sub(key.from)) < absDur(best.from.Sub(key.from)) {
			best, found = k, sum
		}
	}
	if found != nil {
		delete(s.conjs, best)
	}
	return found
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// CountConjunctions answers from the kept counts plus reads of what
// changed since the last call (see above). A query the parts cannot answer
// exactly goes to the inner counter as it is: off the bucket grid, before
// any Traffic, or for the "<other>" signature. When nothing inside can
// count conjunctions it returns correlate.ErrNoConjunctions.
func (s *Source) CountConjunctions(ctx context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	cc, ok := correlate.Behind[correlate.ConjunctionCounter](s.inner)
	if !ok {
		return nil, correlate.ErrNoConjunctions
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, f, t := q.Before, q.From, q.To
	if b.IsZero() || b.After(f) {
		b = f
	}
	if !s.conjCacheable(q, b) {
		s.stats.ConjunctionReads++
		return cc.CountConjunctions(ctx, q)
	}
	step := s.step
	s.stats.ConjunctionAsked += int64(t.Sub(b) / step)
	c := clampTime(s.frontier.Add(-s.cfg.Recheck).Truncate(step), b, t)
	msgs := strings.Join(q.Messages, "\x00")
	key := conjKey{q.Service, msgs, f}
	// A finding is asked about once an evaluation, after its Traffic; an
	// episode that ended asks with its own end for To, so To does not tell
	// an idle finding from one asked about now.
	now := s.evaluated
	sum := s.conjs[key]
	if sum == nil {
		sum = s.adoptConj(key, now)
	}
	if sum == nil || sum.to.After(c) || b.After(sum.to) {
		sum = &conjSum{before: b, to: b, from: f, counts: map[string]correlate.ConjunctionCount{},
			conds: map[string][]correlate.Condition{}, asked: map[string]time.Time{}}
	}
	s.conjs[key] = sum
	sum.used = now

	// Each distinct conjunction once, split into those kept and those
	// first asked for.
	keys := make([]string, len(q.Conjunctions))
	asked := make(map[string]bool, len(q.Conjunctions))
	var kept, fresh [][]correlate.Condition
	var keptKeys, freshKeys []string
	for i, conj := range q.Conjunctions {
		k := conjunctionKey(conj)
		keys[i] = k
		if asked[k] {
			continue
		}
		asked[k] = true
		if _, ok := sum.counts[k]; ok {
			kept, keptKeys = append(kept, conj), append(keptKeys, k)
		} else {
			fresh, freshKeys = append(fresh, conj), append(freshKeys, k)
		}
	}
	// A conjunction not asked for this time is still counted for a while:
	// its condition may be back at the next evaluation (a value near the
	// support floor joins and leaves the candidates), and counting it
	// again from scratch would read the finding's whole span.
	for k, conj := range sum.conds {
		switch {
		case asked[k]:
			sum.asked[k] = now
		case now.Sub(sum.asked[k]) <= conjRetain:
			kept, keptKeys = append(kept, conj), append(keptKeys, k)
		default:
			delete(sum.counts, k)
			delete(sum.conds, k)
			delete(sum.asked, k)
		}
	}
	for i, k := range freshKeys {
		sum.conds[k], sum.asked[k] = fresh[i], now
	}
	if len(kept) == 0 {
		sum.before, sum.to = b, b
	}
	read := func(conjs [][]correlate.Condition, x, z time.Time) ([]correlate.ConjunctionCount, error) {
		return s.readConj(ctx, cc, q, conjs, x, clampTime(f, x, z), z)
	}

	// The onset moved: the kept buckets between the two move between the
	// spans.
	if sum.from != f {
		lo, hi := sum.from, f
		if f.Before(lo) {
			lo, hi = f, sum.from
		}
		lo, hi = clampTime(lo, sum.before, sum.to), clampTime(hi, sum.before, sum.to)
		if hi.After(lo) && len(kept) > 0 {
			got, err := s.readConj(ctx, cc, q, kept, lo, hi, hi)
			if err != nil {
				return nil, err
			}
			// A later onset moves them out of the episode into the
			// before-span; an earlier one, back.
			sign := 1.0
			if f.Before(sum.from) {
				sign = -1
			}
			for i, k := range keptKeys {
				n, m := sum.counts[k], got[i]
				sum.counts[k] = correlate.ConjunctionCount{
					Errors:         max(0, n.Errors-sign*m.ErrorsBefore),
					Requests:       max(0, n.Requests-sign*m.RequestsBefore),
					ErrorsBefore:   max(0, n.ErrorsBefore+sign*m.ErrorsBefore),
					RequestsBefore: max(0, n.RequestsBefore+sign*m.RequestsBefore),
				}
			}
		}
		sum.from = f
	}
	// The window's start moved: take off what left it, or add what it
	// gained.
	if sum.before != b {
		lo, hi, sign := sum.before, b, -1.0
		if b.Before(sum.before) {
			lo, hi, sign = b, sum.before, 1
		}
		got, err := read(kept, lo, hi)
		if err != nil {
			return nil, err
		}
		for i, k := range keptKeys {
			sum.counts[k] = addCount(sum.counts[k], got[i], sign)
		}
		sum.before = b
	}
	// Conjunctions first asked for: their counts over the kept span.
	if len(fresh) > 0 {
		var got []correlate.ConjunctionCount
		if sum.to.After(sum.before) {
			var err error
			if got, err = read(fresh, sum.before, sum.to); err != nil {
				return nil, err
			}
		}
		for i, k := range freshKeys {
			var n correlate.ConjunctionCount
			if got != nil {
				n = got[i]
			}
			sum.counts[k] = n
		}
	}

	// The buckets that joined the cached region, kept, and the rest, newer
	// than it, read every time. When the onset lies before both, one read
	// returns them apart: the new cached buckets in its before-span, the
	// rest in its episode.
	all := slices.Concat(kept, fresh)
	allKeys := slices.Concat(keptKeys, freshKeys)
	if s.reuseRest(sum, allKeys, c, f) {
		s.stats.ConjunctionReuses++
	}
	rest := make([]correlate.ConjunctionCount, len(all))
	switch {
	case c.After(sum.to) && t.After(c) && !f.After(sum.to):
		got, err := s.readConj(ctx, cc, q, all, sum.to, c, t)
		if err != nil {
			return nil, err
		}
		for i, k := range allKeys {
			sum.counts[k] = addCount(sum.counts[k], correlate.ConjunctionCount{Errors: got[i].ErrorsBefore, Requests: got[i].RequestsBefore}, 1)
			rest[i] = correlate.ConjunctionCount{Errors: got[i].Errors, Requests: got[i].Requests}
		}
		sum.to = c
	default:
		if c.After(sum.to) {
			got, err := read(all, sum.to, c)
			if err != nil {
				return nil, err
			}
			for i, k := range allKeys {
				sum.counts[k] = addCount(sum.counts[k], got[i], 1)
			}
			sum.to = c
		}
		if t.After(c) {
			got, err := read(all, c, t)
			if err != nil {
				return nil, err
			}
			copy(rest, got)
		}
	}

	sum.rest = nil
	if t.After(c) {
		sum.rest = &conjRest{from: c, to: t, onset: f, counts: make(map[string]correlate.ConjunctionCount, len(allKeys)), traffic: s.traffics}
		for i, k := range allKeys {
			sum.rest.counts[k] = rest[i]
		}
	}
	at := make(map[string]int, len(allKeys))
	for i, k := range allKeys {
		at[k] = i
	}
	out := make([]correlate.ConjunctionCount, len(q.Conjunctions))
	for i, k := range keys {
		out[i] = addCount(sum.counts[k], rest[at[k]], 1)
	}
	return out, nil
}

// reuseRest adds to the kept sum, without a read, the buckets that joined
// the cached region when the last call read exactly them as its rest and
// this evaluation's Traffic counted them unchanged since: that count came
// before the read, and the new one after it, so nothing was indexed into
// them in between. Only a read at the evaluation before qualifies: after
// a skipped one, the count compared with is not the one before the read.
// With the default re-check of one bucket that is every steady call's new
// cached bucket, a third of what it would read. Only the conjunctions of
// that read (keys) can be added, and only when the onset splits it as it
// did.
func (s *Source) reuseRest(sum *conjSum, keys []string, c, onset time.Time) bool {
	r := sum.rest
	// The onset matters only where it splits the read: one that moved
	// elsewhere (before it, as an open episode's does) splits it alike.
	if r == nil || r.traffic != s.traffics-1 || !r.from.Equal(sum.to) || !r.to.Equal(c) || !c.After(sum.to) ||
		!clampTime(r.onset, r.from, r.to).Equal(clampTime(onset, r.from, r.to)) || !s.allUnchanged(r.from, r.to) {
		return false
	}
	for _, k := range keys {
		if _, ok := r.counts[k]; !ok {
			return false
		}
	}
	for _, k := range keys {
		sum.counts[k] = addCount(sum.counts[k], r.counts[k], 1)
	}
	sum.to = c
	return true
}

// conjCacheable: the query's instants fit the grid of the cache's traffic,
// a Traffic call has set the frontier, and the signature is not "<other>"
// (whose members depend on the whole window).
func (s *Source) conjCacheable(q correlate.ConjunctionQuery, before time.Time) bool {
	if s.step <= 0 || s.frontier.IsZero() || !q.To.After(before) {
		return false
	}
	for _, t := range []time.Time{before, q.From, q.To} {
		if !onGrid(t, s.step) {
			return false
		}
	}
	return !slices.Contains(q.Messages, otherSignature)
}

// readConj counts conjs over [x, z), split at y: the inner counter's
// before-span is [x, y) and its episode [y, z).
func (s *Source) readConj(ctx context.Context, cc correlate.ConjunctionCounter, q correlate.ConjunctionQuery, conjs [][]correlate.Condition, x, y, z time.Time) ([]correlate.ConjunctionCount, error) {
	s.stats.ConjunctionReads++
	s.stats.ConjunctionBuckets += int64(z.Sub(x) / s.step)
	got, err := cc.CountConjunctions(ctx, correlate.ConjunctionQuery{Service: q.Service, Messages: q.Messages, Before: x, From: y, To: z, Conjunctions: conjs})
	if err != nil {
		return nil, err
	}
	if len(got) != len(conjs) {
		return nil, fmt.Errorf("cache: scope explanation of %s: source returned %d counts for %d conjunctions", q.Service, len(got), len(conjs))
	}
	return got, nil
}

// addCount is a + sign×b, each figure floored at zero (see above).
func addCount(a, b correlate.ConjunctionCount, sign float64) correlate.ConjunctionCount {
	return correlate.ConjunctionCount{
		Errors:         max(0, a.Errors+sign*b.Errors),
		Requests:       max(0, a.Requests+sign*b.Requests),
		ErrorsBefore:   max(0, a.ErrorsBefore+sign*b.ErrorsBefore),
		RequestsBefore: max(0, a.RequestsBefore+sign*b.RequestsBefore),
	}
}

// conjunctionKey names a conjunction by its conditions, in order.
func conjunctionKey(conj []correlate.Condition) string {
	var b strings.Builder
	for _, c := range conj {
		b.WriteString(c.Field)
		b.WriteByte(0)
		b.WriteString(c.Value)
		if c.Prefix {
			b.WriteString("\x00*")
		}
		b.WriteByte(1)
	}
	return b.String()
}

// evictConjs forgets the counts of findings not asked about in scopeIdle
// buckets.
func (s *Source) evictConjs(end time.Time) {
	idle := end.Add(-scopeIdle * s.step)
	for k, sum := range s.conjs {
		if sum.used.Before(idle) {
			delete(s.conjs, k)
		}
	}
}
