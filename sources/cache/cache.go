// Package cache makes evaluation incremental: a decorator over any
// correlate.Source (Elasticsearch, the file source, the simulator) that
// keeps each complete bucket's aggregates and asks the source only for the
// buckets it has not read yet, plus a short re-checked region behind the
// newest complete bucket.
//
// Why a decorator and not a feature of one source: the daemon and
// `culprit backtest` then share one path whatever the source, so a
// backtest over a file or an index replays exactly what the daemon does,
// and the equivalence of incremental and from-scratch reads can be tested
// on every source the same way.
//
// Why it is exact: every figure of correlate.Traffic is per bucket
// (requests, errors, errors per masked message), so a window's traffic is
// the concatenation of its buckets' traffic, as long as each bucket is
// read once it is complete. The one figure that is not per bucket is a
// message's examples: the earliest few occurrences over the window. They
// are kept per bucket too; a bucket read together with earlier ones may
// hold fewer than its own earliest few (the earlier buckets took them), and
// when a window comes to start at or before such a bucket and needs its
// examples, that single bucket is read again (a top-up). Examples are
// therefore identical to a from-scratch read.
//
// Why in memory and not in the store: the cache is rebuilt on start by the
// first evaluation, which reads its window once, exactly as every
// evaluation did before the cache. That bounded read costs one evaluation
// of the old kind, once per restart; persisting the buckets would add a
// write per evaluation, a schema to migrate and a way to serve counts that
// went stale while the daemon was down (documents indexed late during the
// downtime), for a saving of one evaluation per restart.
//
// What it gives up: a bucket older than the re-checked region is never
// read again, so documents indexed into it later are not seen (a read from
// scratch would see them). Config.Recheck is that trade: set it to the
// ingestion pipeline's worst lag. Late documents within it are picked up,
// and the daemon counts them (culprit_late_requests_total). A source that
// can count its documents cheaply (Counter, Elasticsearch) has the
// re-checked buckets counted instead, and only those whose count changed
// are read again.
//
// Scope breakdowns are kept too (scope.go): per finding, a running sum of
// its counts per value, and per-bucket host series, extended by the
// buckets that leave the re-checked region, with what is newer read at
// every call.
package cache

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// Config tunes a Source.
type Config struct {
	// Recheck is how far behind the end of the complete region buckets
	// are read again at every evaluation, to pick up documents indexed
	// late. Zero reads only buckets not read complete before.
	Recheck time.Duration
	// Keep is how long buckets stay cached behind the newest window's
	// end: at least the longest window an evaluation asks for (the
	// lookback, stretched by open incidents), or an evaluation reaching
	// further back reads that part again. Zero keeps what the newest
	// window covers.
	Keep time.Duration
	// Examples is how many examples per message the inner source keeps
	// (correlate.MessageCounts.Examples); zero means 3, what the
	// Elasticsearch and file sources keep.
	Examples int
	// Samples is how many sample documents the inner source's Scope
	// returns at most (the earliest); zero means 5, what the
	// Elasticsearch and file sources return.
	Samples int
}

// Stats count what a Source asked its inner source, for benchmarks and
// tests.
type Stats struct {
	// Reads is the number of inner Traffic calls, top-ups included.
	Reads int64
	// Buckets is the number of buckets those calls covered.
	Buckets int64
	// TopUps is how many of the calls read one bucket again for its
	// examples.
	TopUps int64
	// Counts is the number of Counter calls.
	Counts int64
	// ScopeReads is the number of inner Scope calls, and ScopeBuckets the
	// buckets their ranges and windows spanned.
	ScopeReads, ScopeBuckets int64
}

// Source is a caching correlate.Source. It is safe for concurrent use;
// Traffic calls run one at a time.
type Source struct {
	inner correlate.Source
	cfg   Config

	mu   sync.Mutex
	step time.Duration
	// buckets are the complete buckets read, by start.
	buckets map[time.Time]*bucket
	// frontier is the end of the complete region at the last read.
	frontier time.Time
	// counts are the document counts of re-checked buckets at the last
	// count (Counter).
	counts map[time.Time]float64
	// names interns the messages of buckets; liveNames is how many were
	// in use at the last sweep.
	names     map[string]string
	liveNames int
	// scopes, hostErr and hostReq are the kept breakdowns (scope.go).
	scopes  map[scopeKey]*scopeSum
	hostErr map[string]*hostBuckets
	hostReq map[string]*hostBuckets
	stats   Stats
}

var _ correlate.Source = (*Source)(nil)

// New wraps inner.
func New(inner correlate.Source, cfg Config) (*Source, error) {
	if inner == nil {
		return nil, fmt.Errorf("cache: no inner source")
	}
	if cfg.Recheck < 0 {
		return nil, fmt.Errorf("cache: recheck %s is negative", cfg.Recheck)
	}
	if cfg.Keep < 0 {
		return nil, fmt.Errorf("cache: keep %s is negative", cfg.Keep)
	}
	if cfg.Examples < 0 {
		return nil, fmt.Errorf("cache: examples %d is negative", cfg.Examples)
	}
	if cfg.Samples < 0 {
		return nil, fmt.Errorf("cache: samples %d is negative", cfg.Samples)
	}
	if cfg.Examples == 0 {
		cfg.Examples = 3
	}
	if cfg.Samples == 0 {
		cfg.Samples = 5
	}
	s := &Source{inner: inner, cfg: cfg}
	s.reset(0)
	return s, nil
}

// reset forgets everything read, for a new bucket size.
func (s *Source) reset(step time.Duration) {
	s.step, s.frontier = step, time.Time{}
	s.buckets, s.counts = map[time.Time]*bucket{}, map[time.Time]float64{}
	s.names, s.liveNames = map[string]string{}, 0
	s.scopes, s.hostErr, s.hostReq = map[scopeKey]*scopeSum{}, map[string]*hostBuckets{}, map[string]*hostBuckets{}
}

// Unwrap is the inner source, for the capabilities the correlator looks
// for behind a wrapper (scope explanations).
func (s *Source) Unwrap() correlate.Source { return s.inner }

// Stats returns the cumulative counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// bucket is one bucket's traffic.
type bucket struct {
	services map[string]*svcBucket
}

type svcBucket struct {
	requests, errors float64
	// msgs are the bucket's messages with errors: a slice of small values,
	// not a map of pointers, because a week of minutes for thousands of
	// classes is held this way (BenchmarkCacheMemory: 24 bytes a message
	// and bucket, against 87 as a map).
	msgs []msgBucket
	// examples are the examples of msgs[k], for the few that have any
	// (a message's examples are its earliest occurrences, so mostly in
	// its first bucket with errors).
	examples map[int32][]string
}

type msgBucket struct {
	msg   string // interned: one copy per message, whatever the buckets
	count uint32 // a count of correlate.Counts, so a whole number
	// whole: examples are this bucket's own earliest occurrences, as
	// many as a read of the bucket alone would give.
	whole bool
}

// intern returns the one copy of msg the cache keeps.
func (s *Source) intern(msg string) string {
	if m, ok := s.names[msg]; ok {
		return m
	}
	s.names[msg] = msg
	return msg
}

// sweepNames forgets the interned messages no cached bucket holds, once
// they are at least as many as those in use: a daemon that runs for
// months sees messages come and go.
func (s *Source) sweepNames() {
	if len(s.names) < 2*s.liveNames+1024 {
		return
	}
	live := map[string]string{}
	for _, bk := range s.buckets {
		for _, sb := range bk.services {
			for _, mb := range sb.msgs {
				live[mb.msg] = mb.msg
			}
		}
	}
	s.names, s.liveNames = live, len(live)
}

// Traffic returns what the inner source would for w, reading only what
// the cache lacks. A window off the bucket grid (a hand-built one) is
// passed through uncached.
func (s *Source) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	n := w.Len()
	if n <= 0 || !onGrid(w.From, w.Step) || !onGrid(w.To, w.Step) {
		return s.inner.Traffic(ctx, w)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.Step != s.step {
		s.reset(w.Step)
	}
	recheck := s.frontier.Add(-s.cfg.Recheck)
	need := make([]bool, n)
	r0 := n // the first re-checked or new bucket
	for i := range need {
		at := w.Start(i)
		need[i] = s.buckets[at] == nil || !at.Before(recheck)
		if r0 == n && !at.Before(recheck) {
			r0 = i
		}
	}
	if err := s.skipUnchanged(ctx, w, r0, need); err != nil {
		return nil, err
	}
	fresh := map[int]*bucket{} // incomplete buckets of this read
	complete := 0
	for a := 0; a < n; {
		if !need[a] {
			a++
			continue
		}
		b := a
		for b < n && need[b] {
			b++
		}
		k, sure, err := s.read(ctx, w, a, b, fresh, false)
		if err != nil {
			return nil, err
		}
		if !sure && a > 0 && s.buckets[w.Start(a-1)] != nil {
			// Read again from a bucket known complete, which makes the
			// source's Complete unambiguous (see read). Only a run of
			// several buckets, none complete but maybe the first, gets
			// here: not the daemon's schedule, which reads after the lag.
			if k, _, err = s.read(ctx, w, a-1, b, fresh, false); err != nil {
				return nil, err
			}
		}
		if b == n {
			complete = k
		}
		a = b
	}
	if err := s.topUp(ctx, w, fresh); err != nil {
		return nil, err
	}
	if s.cfg.Keep > 0 {
		s.evict(w.To.Add(-s.cfg.Keep))
	} else {
		s.evict(w.From)
	}
	s.evictScopes(w.To)
	return s.assemble(w, fresh, complete), nil
}

func onGrid(t time.Time, step time.Duration) bool {
	return step > 0 && t.Equal(t.Truncate(step))
}

// read asks the inner source for buckets [a, b) of w, caches the complete
// ones and puts the others in fresh. It returns w's Complete as this read
// tells it (0: all complete), which is w's when b is its end.
//
// A source says 1, not 0, when none of a window's buckets is complete
// (correlate.Traffic.Complete), so its 1 is ambiguous on a read of several
// buckets whose first was not known complete before: sure is then false,
// and nothing of the read is cached as complete.
func (s *Source) read(ctx context.Context, w correlate.Window, a, b int, fresh map[int]*bucket, alone bool) (complete int, sure bool, err error) {
	sub := correlate.Window{From: w.Start(a), To: w.Start(b), Step: w.Step}
	known := s.buckets[sub.From] != nil
	tr, err := s.inner.Traffic(ctx, sub)
	if err != nil {
		return 0, false, err
	}
	s.stats.Reads++
	s.stats.Buckets += int64(b - a)
	m := b - a
	if err := check(tr, sub); err != nil {
		return 0, false, err
	}
	done, sure := m, true
	switch {
	case tr.Complete <= 0:
	case tr.Complete == 1 && !known:
		// One bucket: it is incomplete (a complete one would be 0).
		// Several: none complete, or only the first; the same answer.
		done, sure = 0, m == 1
	default:
		done = min(tr.Complete, m)
	}
	for j, bk := range s.split(tr, m, alone) {
		if j < done {
			s.buckets[sub.Start(j)] = bk
			delete(fresh, a+j) // an earlier, ambiguous read's copy
		} else {
			fresh[a+j] = bk
		}
	}
	if end := sub.Start(done); end.After(s.frontier) {
		s.frontier = end
	}
	switch {
	case tr.Complete <= 0:
		return 0, sure, nil
	case a+done == 0:
		return 1, sure, nil
	}
	return a + done, sure, nil
}

// check refuses an inner answer whose series do not fit the window asked.
func check(tr *correlate.Traffic, w correlate.Window) error {
	if tr == nil {
		return fmt.Errorf("cache: the source returned no traffic for %s", span(w))
	}
	m := w.Len()
	for _, st := range tr.Services {
		if len(st.Requests) != m || len(st.Errors) != m {
			return fmt.Errorf("cache: service %q: the source returned %d buckets of requests and %d of errors for %s, want %d",
				st.Service, len(st.Requests), len(st.Errors), span(w), m)
		}
		for _, mc := range st.Messages {
			if mc.Counts.Len() != m {
				return fmt.Errorf("cache: service %q message %q: the source returned %d buckets for %s, want %d",
					st.Service, mc.Message, mc.Counts.Len(), span(w), m)
			}
		}
	}
	return nil
}

func span(w correlate.Window) string {
	return w.From.UTC().Format(time.RFC3339) + "/" + w.To.UTC().Format(time.RFC3339)
}

// split cuts a read of m buckets into buckets. A message's examples are
// its earliest occurrences over the read, so they belong, in order, to its
// first buckets with errors: each takes as many as it counts. The buckets
// after the examples ran out keep fewer than their own, and say so (whole
// is false).
func (s *Source) split(tr *correlate.Traffic, m int, alone bool) []*bucket {
	out := make([]*bucket, m)
	for j := range out {
		out[j] = &bucket{services: map[string]*svcBucket{}}
	}
	get := func(j int, svc string) *svcBucket {
		sb := out[j].services[svc]
		if sb == nil {
			sb = &svcBucket{}
			out[j].services[svc] = sb
		}
		return sb
	}
	for _, st := range tr.Services {
		for j := range m {
			if st.Requests[j] != 0 || st.Errors[j] != 0 {
				sb := get(j, st.Service)
				sb.requests, sb.errors = st.Requests[j], st.Errors[j]
			}
		}
		// Each bucket's messages are allocated at their exact number:
		// growing by appends would leave up to half of them unused.
		need := make([]int, m)
		for _, mc := range st.Messages {
			for j := range m {
				if mc.Counts.At(j) != 0 {
					need[j]++
				}
			}
		}
		for j, k := range need {
			if k > 0 {
				sb := get(j, st.Service)
				sb.msgs = make([]msgBucket, 0, k)
			}
		}
		for _, mc := range st.Messages {
			ex := mc.Examples
			for j := range m {
				c := mc.Counts.At(j)
				if c == 0 {
					continue
				}
				take := min(len(ex), s.cfg.Examples, int(max(1, c)))
				// A source that gave fewer examples than it may keep gave
				// all it has: reading the bucket alone would give no more.
				mb := msgBucket{msg: s.intern(mc.Message), count: uint32(c),
					whole: alone || take >= min(s.cfg.Examples, int(max(1, c))) || len(mc.Examples) < s.cfg.Examples}
				sb := get(j, st.Service)
				if take > 0 {
					if sb.examples == nil {
						sb.examples = map[int32][]string{}
					}
					sb.examples[int32(len(sb.msgs))] = slices.Clone(ex[:take])
				}
				ex = ex[take:]
				sb.msgs = append(sb.msgs, mb)
			}
		}
	}
	return out
}

// topUp reads again, alone, every cached bucket whose examples a window
// over w needs and that does not hold its own (see split), until none is
// left.
func (s *Source) topUp(ctx context.Context, w correlate.Window, fresh map[int]*bucket) error {
	n := w.Len()
	for {
		short := map[int]bool{}
		type key struct{ svc, msg string }
		got := map[key]int{}
		for i := range n {
			bk := s.at(w, i, fresh)
			if bk == nil {
				continue
			}
			for svc, sb := range bk.services {
				for j, mb := range sb.msgs {
					k := key{svc, mb.msg}
					if got[k] >= s.cfg.Examples {
						continue
					}
					if !mb.whole && fresh[i] == nil {
						short[i] = true
					}
					got[k] += len(sb.examples[int32(j)])
				}
			}
		}
		if len(short) == 0 {
			return nil
		}
		for _, i := range slices.Sorted(maps.Keys(short)) {
			s.stats.TopUps++
			if _, _, err := s.read(ctx, w, i, i+1, fresh, true); err != nil {
				return err
			}
		}
	}
}

// Counter is an inner source that counts its documents per bucket far
// more cheaply than it reads their traffic (Elasticsearch counts by time
// alone, reading no document's values). With one, a re-checked bucket is
// read again only when its count changed since the last evaluation, so a
// steady evaluation reads the traffic of its new bucket only. Logs are
// appended, not edited: a bucket that gained no document is unchanged.
type Counter interface {
	Counts(ctx context.Context, w correlate.Window) ([]float64, error)
}

// maxCounted bounds the buckets counted in one call.
const maxCounted = 60

// counter is the inner source's Counter, looked for behind wrappers that
// switch sources (backtest's tick view), at each call.
func (s *Source) counter() Counter {
	src := s.inner
	for range 8 {
		if c, ok := src.(Counter); ok {
			return c
		}
		u, ok := src.(interface{ Unwrap() correlate.Source })
		if !ok {
			return nil
		}
		src = u.Unwrap()
	}
	return nil
}

// skipUnchanged counts buckets [r0, n) of w, when the inner source can,
// and drops from need the cached ones whose count is the one they had at
// the last count. Counting comes before reading, so a document arriving
// in between makes the next count differ, never the other way round.
func (s *Source) skipUnchanged(ctx context.Context, w correlate.Window, r0 int, need []bool) error {
	c := s.counter()
	n := w.Len()
	// Nothing to compare on a first read, and counting more than an
	// hour's buckets would cost what reading them does.
	if c == nil || r0 >= n || s.frontier.IsZero() || n-r0 > maxCounted {
		return nil
	}
	sub := correlate.Window{From: w.Start(r0), To: w.Start(n), Step: w.Step}
	counts, err := c.Counts(ctx, sub)
	if err != nil {
		return err
	}
	if len(counts) != n-r0 {
		return fmt.Errorf("cache: the source counted %d buckets for %s, want %d", len(counts), span(sub), n-r0)
	}
	s.stats.Counts++
	for j, v := range counts {
		at := sub.Start(j)
		if before, ok := s.counts[at]; ok && before == v && s.buckets[at] != nil {
			need[r0+j] = false
		}
		s.counts[at] = v
	}
	return nil
}

// at is bucket i of w: this read's when it has it, else the cache's.
func (s *Source) at(w correlate.Window, i int, fresh map[int]*bucket) *bucket {
	if bk := fresh[i]; bk != nil {
		return bk
	}
	return s.buckets[w.Start(i)]
}

// evict drops the buckets before from.
func (s *Source) evict(from time.Time) {
	for at := range s.buckets {
		if at.Before(from) {
			delete(s.buckets, at)
		}
	}
	for at := range s.counts {
		if at.Before(from) {
			delete(s.counts, at)
		}
	}
	s.sweepNames()
}

// assemble is w's traffic from the cached and fresh buckets, in the
// inner source's order: services and messages sorted by name.
func (s *Source) assemble(w correlate.Window, fresh map[int]*bucket, complete int) *correlate.Traffic {
	n := w.Len()
	type msgAcc struct {
		counts   []float64
		examples []string
	}
	type svcAcc struct {
		st   correlate.ServiceTraffic
		msgs map[string]*msgAcc
	}
	svcs := map[string]*svcAcc{}
	for i := range n {
		bk := s.at(w, i, fresh)
		if bk == nil {
			continue
		}
		for name, sb := range bk.services {
			sa := svcs[name]
			if sa == nil {
				sa = &svcAcc{st: correlate.ServiceTraffic{Service: name, Requests: make([]float64, n), Errors: make([]float64, n)},
					msgs: map[string]*msgAcc{}}
				svcs[name] = sa
			}
			sa.st.Requests[i], sa.st.Errors[i] = sb.requests, sb.errors
			for j, mb := range sb.msgs {
				ma := sa.msgs[mb.msg]
				if ma == nil {
					ma = &msgAcc{counts: make([]float64, n)}
					sa.msgs[mb.msg] = ma
				}
				ma.counts[i] = float64(mb.count)
				if room := s.cfg.Examples - len(ma.examples); room > 0 {
					ex := sb.examples[int32(j)]
					ma.examples = append(ma.examples, ex[:min(room, len(ex))]...)
				}
			}
		}
	}
	tr := &correlate.Traffic{Window: w, Complete: complete}
	for _, name := range slices.Sorted(maps.Keys(svcs)) {
		sa := svcs[name]
		for _, msg := range slices.Sorted(maps.Keys(sa.msgs)) {
			ma := sa.msgs[msg]
			sa.st.Messages = append(sa.st.Messages, correlate.MessageCounts{Message: msg, Counts: correlate.NewCounts(ma.counts), Examples: ma.examples})
		}
		tr.Services = append(tr.Services, sa.st)
	}
	return tr
}
