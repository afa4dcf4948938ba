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
// hold fewer than its own earliest few (the earlier buckets took them), a
// busy message keeps those of a budget of buckets only once the examples
// held pass Config.ExampleBytes (Source.budget),
// and when a window comes to start at or before such a "short" bucket and
// needs its examples, that single bucket is read again (a top-up).
// Examples are therefore identical to a from-scratch read.
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
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
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
	// ExampleBuckets is the example budget of a series (Source.budget):
	// a series with at most this many buckets with errors in the cache
	// keeps the examples of all of them, one with more keeps those of its
	// first this many from the newest window's start. Zero means 32; it
	// is at least Examples.
	ExampleBuckets int
	// ExampleBytes is how much memory the examples of all series may
	// take before the budget applies (Source.budget); zero means 64 MiB.
	// Below it every example read is kept, so a deployment of ordinary
	// size reads each bucket once; above it the busiest series keep
	// ExampleBuckets buckets of examples and pay for it in top-up reads.
	ExampleBytes int
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
	// ScopeReuses is how many times a finding's new cached buckets came
	// from the last call's read of them (reuseScopeRest).
	ScopeReuses int64
	// ConjunctionReads is the number of inner CountConjunctions calls, and
	// ConjunctionBuckets the buckets they spanned.
	ConjunctionReads, ConjunctionBuckets int64
	// ConjunctionAsked is the buckets the CountConjunctions calls asked
	// about: what reading each from scratch would have spanned.
	ConjunctionAsked int64
	// ConjunctionReuses is how many times a finding's new cached buckets
	// came from the last call's read of them (reuseRest).
	ConjunctionReuses int64
}

// Source is a caching correlate.Source. It is safe for concurrent use;
// Traffic calls run one at a time.
//
// What it holds is series-major: each (service, masked message) series'
// counts once, indexed by global bucket index (cells), with its kept
// examples; per bucket only whether it is cached complete and its
// services' requests and errors. A bucket-major layout (a list of
// messages per bucket) repeats every message's name and bookkeeping in
// every bucket: about 30 bytes a message and bucket, 2.9 GB for a week of
// 10,000 error classes that err every minute, where this takes about one.
type Source struct {
	inner correlate.Source
	cfg   Config

	mu   sync.Mutex
	step time.Duration
	// epoch is bucket index 0 (index), set by the first window after a
	// reset.
	epoch time.Time
	// complete are the indexes of the complete buckets read.
	complete ranges
	// totals are the complete buckets' requests and errors, by service.
	totals map[string]*svcTotals
	// series are the complete buckets' messages, by service and message.
	series map[seriesKey]*msgSeries
	// services interns service names, so that series keys share them.
	services map[string]string
	// ws is the index of the newest window's start, from which the
	// example budget counts (budget).
	ws int64
	// frontier is the end of the complete region at the last read.
	frontier time.Time
	// counts are the document counts of re-checked buckets at the last
	// count (Counter).
	counts map[time.Time]float64
	// scopes, hostErr and hostReq are the kept breakdowns (scope.go).
	scopes  map[scopeKey]*scopeSum
	hostErr map[string]*hostBuckets
	hostReq map[string]*hostBuckets
	// conjs are the kept conjunction counts (conj.go).
	conjs map[conjKey]*conjSum
	// evaluated is the end of the newest window asked of Traffic: the
	// evaluation a finding's later questions belong to.
	evaluated time.Time
	// unchanged are the buckets this evaluation's Traffic counted with
	// the document count of the evaluation before: nothing was indexed
	// into them in between (skipUnchanged).
	unchanged map[time.Time]bool
	// traffics numbers the Traffic calls: a read kept for reuse at the
	// next evaluation (scope.go, conj.go) must come from the one before,
	// or a count in between would hide what was indexed after the read.
	traffics int64
	stats    Stats
	// reads numbers the calls of split, for msgSeries.read.
	reads int64
}

var _ correlate.Source = (*Source)(nil)

// defaultExampleBuckets is Config.ExampleBuckets's default. It is a
// trade of memory for top-up reads (see budget): 32 kept buckets of
// examples cost a series about 4 KB, 0.4 bytes a bucket over a week of
// minutes, and a series erring every minute needs a top-up once the
// window has slid past them, a read shared with every such series.
const defaultExampleBuckets = 32

// defaultExampleBytes is Config.ExampleBytes's default: examples of a
// few hundred classes over the default lookback take a few MB, so only a
// deployment near the largest setting (a week of thousands of classes
// erring every minute, several GB of examples unbounded) reaches it.
const defaultExampleBytes = 64 << 20

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
	if cfg.ExampleBuckets < 0 {
		return nil, fmt.Errorf("cache: example buckets %d is negative", cfg.ExampleBuckets)
	}
	if cfg.ExampleBytes < 0 {
		return nil, fmt.Errorf("cache: example bytes %d is negative", cfg.ExampleBytes)
	}
	if cfg.ExampleBytes == 0 {
		cfg.ExampleBytes = defaultExampleBytes
	}
	if cfg.Examples == 0 {
		cfg.Examples = 3
	}
	if cfg.Samples == 0 {
		cfg.Samples = 5
	}
	if cfg.ExampleBuckets == 0 {
		cfg.ExampleBuckets = defaultExampleBuckets
	}
	// A window's examples come from at most Examples buckets from its
	// start; a smaller budget would drop some a window needs.
	cfg.ExampleBuckets = max(cfg.ExampleBuckets, cfg.Examples)
	s := &Source{inner: inner, cfg: cfg}
	s.reset(0)
	return s, nil
}

// reset forgets everything read, for a new bucket size.
func (s *Source) reset(step time.Duration) {
	s.step, s.frontier, s.epoch, s.ws = step, time.Time{}, time.Time{}, 0
	s.complete, s.totals, s.counts = nil, map[string]*svcTotals{}, map[time.Time]float64{}
	s.series, s.services = map[seriesKey]*msgSeries{}, map[string]string{}
	s.scopes, s.hostErr, s.hostReq = map[scopeKey]*scopeSum{}, map[string]*hostBuckets{}, map[string]*hostBuckets{}
	s.conjs, s.unchanged = map[conjKey]*conjSum{}, map[time.Time]bool{}
}

// Unwrap is the inner source, for the capabilities the correlator looks
// for behind a wrapper that it does not offer itself.
func (s *Source) Unwrap() correlate.Source { return s.inner }

// Stats returns the cumulative counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// svcTotals is one service's requests and errors per complete bucket,
// dense from base: 16 bytes a bucket and service, which a map of
// per-bucket records (about 100 bytes a bucket) would multiply.
type svcTotals struct {
	base      int64
	req, errs []float64
}

// set stores bucket g's requests and errors.
func (t *svcTotals) set(g int64, req, errs float64) {
	if req == 0 && errs == 0 {
		if k := g - t.base; k >= 0 && k < int64(len(t.req)) {
			t.req[k], t.errs[k] = 0, 0
		}
		return
	}
	switch {
	case len(t.req) == 0:
		t.base, t.req, t.errs = g, []float64{req}, []float64{errs}
		return
	case g < t.base:
		// Older than any bucket read so far: rare, so a copy.
		k := int(t.base - g)
		r, e := make([]float64, k+len(t.req)), make([]float64, k+len(t.errs))
		copy(r[k:], t.req)
		copy(e[k:], t.errs)
		t.base, t.req, t.errs = g, r, e
	case g >= t.base+int64(len(t.req)):
		m := int(g-t.base) + 1
		t.req, t.errs = grow(t.req, m), grow(t.errs, m)
	}
	t.req[g-t.base], t.errs[g-t.base] = req, errs
}

// trim drops the buckets before from, and says whether any bucket is
// left that is not zero.
func (t *svcTotals) trim(from int64) bool {
	k := min(max(from-t.base, 0), int64(len(t.req)))
	t.req, t.errs, t.base = t.req[k:], t.errs[k:], t.base+k
	for len(t.req) > 0 && t.req[0] == 0 && t.errs[0] == 0 {
		t.req, t.errs, t.base = t.req[1:], t.errs[1:], t.base+1
	}
	return len(t.req) > 0
}

type seriesKey struct{ service, message string }

// msgSeries is one message's complete buckets.
type msgSeries struct {
	counts cells
	// ex are the examples kept, by bucket, for buckets with a count.
	ex []exEntry
	// short are the buckets whose examples may be fewer than their own
	// earliest few, as many as a read of the bucket alone would give:
	// those of a read that came after the read's examples ran out (split),
	// and those the budget dropped. A bucket with a count that is neither
	// short nor in ex has none (the source keeps fewer).
	short ranges
	// exBytes is about what ex takes (entryBytes), kept as ex changes so
	// that the budget's check costs a sum over series, not a walk over
	// every example at every evaluation.
	exBytes int
	// read is the last split (Source.reads) that stored a count in the
	// series.
	read int64
}

type exEntry struct {
	at int64
	ex []string
}

// examplesAt are the examples kept for bucket g.
func (se *msgSeries) examplesAt(g int64) []string {
	k, ok := slices.BinarySearchFunc(se.ex, g, cmpEntry)
	if !ok {
		return nil
	}
	return se.ex[k].ex
}

func cmpEntry(e exEntry, g int64) int { return cmp.Compare(e.at, g) }

// entryBytes is about what an entry takes: its index and slice, and each
// string's header and bytes.
func entryBytes(e exEntry) int {
	n := 8 + 24
	for _, x := range e.ex {
		n += 16 + len(x)
	}
	return n
}

// cut drops the kept examples ex[a:b], clearing them so they are freed.
func (se *msgSeries) cut(a, b int) {
	if a >= b {
		return
	}
	for _, e := range se.ex[a:b] {
		se.exBytes -= entryBytes(e)
	}
	se.ex = slices.Delete(se.ex, a, b)
}

// forget drops buckets [lo, hi): counts and examples. Their short marks
// stay: a mark on a bucket with no count means nothing, and split sets or
// clears it when it stores a count there. Clearing them here would split
// a series' runs of marks at every bucket another series has read again.
func (se *msgSeries) forget(lo, hi int64) {
	se.counts.clear(lo, hi)
	se.forgetExamples(lo, hi)
}

// forgetExamples drops the examples of buckets [lo, hi).
func (se *msgSeries) forgetExamples(lo, hi int64) {
	a, _ := slices.BinarySearchFunc(se.ex, lo, cmpEntry)
	b, _ := slices.BinarySearchFunc(se.ex, hi, cmpEntry)
	se.cut(a, b)
}

// compact frees the room of examples dropped: a series' kept examples
// shrink when the budget drops them, and the slice would keep its
// largest size.
func (se *msgSeries) compact() {
	if cap(se.ex) > 2*len(se.ex)+4 {
		se.ex = slices.Clip(slices.Clone(se.ex))
	}
}

// keepExamples stores bucket g's examples.
func (se *msgSeries) keepExamples(g int64, ex []string) {
	k, ok := slices.BinarySearchFunc(se.ex, g, cmpEntry)
	e := exEntry{at: g, ex: slices.Clone(ex)}
	se.exBytes += entryBytes(e)
	if ok {
		se.exBytes -= entryBytes(se.ex[k])
		se.ex[k] = e
		return
	}
	if k == len(se.ex) {
		se.ex = grow(se.ex, k+1)
		se.ex[k] = e
		return
	}
	se.ex = slices.Insert(se.ex, k, e)
}

// bucket is an incomplete ("fresh") bucket of one read: kept per bucket,
// for this call only, since there are one or two.
type bucket struct {
	services map[string]*svcBucket
}

type svcBucket struct {
	requests, errors float64
	msgs             map[string]freshMsg
}

type freshMsg struct {
	count    uint32
	examples []string
}

func (b *bucket) service(name string) *svcBucket {
	sb := b.services[name]
	if sb == nil {
		sb = &svcBucket{msgs: map[string]freshMsg{}}
		b.services[name] = sb
	}
	return sb
}

// maxSpan is how far from the epoch a window may start before the cache
// starts afresh (Traffic).
const maxSpan = 100 * 365 * 24 * time.Hour

// index is the global index of the bucket starting at t, on the grid.
func (s *Source) index(t time.Time) int64 {
	return int64(t.Sub(s.epoch) / s.step)
}

func (s *Source) cached(g int64) bool { return s.complete.has(g) }

func (s *Source) service(name string) string {
	if v, ok := s.services[name]; ok {
		return v
	}
	s.services[name] = name
	return name
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
	if d := w.From.Sub(s.epoch); !s.epoch.IsZero() && (d > maxSpan || d < -maxSpan) {
		// Indexes are durations from the epoch, which saturate at 292
		// years: a window that far from the last starts afresh.
		s.reset(w.Step)
	}
	if s.epoch.IsZero() {
		s.epoch = w.From
	}
	s.evaluated = w.To
	clear(s.unchanged)
	s.traffics++
	g0 := s.index(w.From)
	recheck := s.frontier.Add(-s.cfg.Recheck)
	need := make([]bool, n)
	r0 := n // the first re-checked or new bucket
	for i := range need {
		at := w.Start(i)
		need[i] = !s.cached(g0+int64(i)) || !at.Before(recheck)
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
		if !sure && a > 0 && s.cached(g0+int64(a-1)) {
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
	s.ws = g0
	s.budget()
	s.evictScopes(w.To)
	s.evictConjs(w.To)
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
	known := s.cached(s.index(sub.From))
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
	s.split(tr, s.index(sub.From), a, m, done, fresh, alone, true)
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

// toCount is a count of correlate.Counts as stored: a whole number, zero
// for anything not positive.
func toCount(v float64) uint32 {
	switch {
	case !(v > 0):
		return 0
	case v >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(math.Round(v))
}

// split stores a read of buckets [a, a+m) of the window (check has
// checked its lengths), starting at
// bucket index g0: the first done complete, into the series, replacing
// what they held for those buckets (messages that vanished included), the
// others in fresh. A message's examples are its earliest occurrences over
// the read, so they belong, in order, to its first buckets with errors:
// each takes as many as it counts. The buckets after the examples ran out
// keep fewer than their own, and are marked short.
//
// A read of one complete bucket (each new bucket, every top-up) stores,
// inPlace (as read always asks), only the counts that changed, not
// clearing every series' bucket first and setting it again: at the
// largest setting a top-up of an unchanged bucket rewrote a cell of each
// of 10,000 series at every evaluation, and cells that are not written
// can be shared (cells.view). What it leaves is what clearing first (the
// path of a read of several buckets) would: the series' counts, examples
// and marks, and a series whose only count was the bucket starts afresh
// (its marks dropped) as it would after a clear.
func (s *Source) split(tr *correlate.Traffic, g0 int64, a, m, done int, fresh map[int]*bucket, alone, inPlace bool) {
	hi := g0 + int64(done)
	s.reads++
	one := inPlace && done == 1
	if done > 0 {
		for k, se := range s.series {
			if one {
				se.forgetExamples(g0, hi)
				continue
			}
			se.forget(g0, hi)
			if se.counts.nz == 0 {
				delete(s.series, k)
			}
		}
		for j := range done {
			delete(fresh, a+j) // an earlier, ambiguous read's copy
		}
		for _, t := range s.totals {
			for g := g0; g < hi; g++ {
				t.set(g, 0, 0)
			}
		}
		s.complete.add(g0, hi)
	}
	for j := done; j < m; j++ {
		fresh[a+j] = &bucket{services: map[string]*svcBucket{}}
	}
	scratch := make([]float64, m)
	active := make([]bool, m)
	E := s.cfg.Examples
	for _, st := range tr.Services {
		name := s.service(st.Service)
		if done > 0 && s.totals[name] == nil {
			s.totals[name] = &svcTotals{}
		}
		for j := range m {
			active[j] = st.Requests[j] != 0 || st.Errors[j] != 0
			if j < done {
				s.totals[name].set(g0+int64(j), st.Requests[j], st.Errors[j])
			}
		}
		for _, mc := range st.Messages {
			clear(scratch)
			mc.Counts.AddTo(scratch, 0)
			ex := mc.Examples
			var se *msgSeries
			for j, v := range scratch {
				c := toCount(v)
				if c == 0 {
					continue
				}
				active[j] = true
				take := min(len(ex), E, int(min(c, uint32(E))))
				if j >= done {
					fresh[a+j].service(name).msgs[mc.Message] = freshMsg{count: c, examples: slices.Clone(ex[:take])}
					ex = ex[take:]
					continue
				}
				// A source that gave fewer examples than it may keep gave
				// all it has: reading the bucket alone would give no more.
				whole := alone || take >= min(E, int(min(c, uint32(E)))) || len(mc.Examples) < E
				g := g0 + int64(j)
				if se == nil {
					key := seriesKey{name, mc.Message}
					se = s.series[key]
					if first, last, _ := se.onlyAt(); se == nil || one && se.read != s.reads && first == g && last == g {
						// New, or, for one bucket, a series whose only
						// count was this bucket: clearing it first would
						// have dropped the series.
						se = &msgSeries{}
						s.series[key] = se
					}
				}
				se.read = s.reads
				se.counts.set(g, c)
				if take > 0 {
					se.keepExamples(g, ex[:take])
				}
				if whole {
					se.short.remove(g, g+1)
				} else {
					se.short.add(g, g+1)
				}
				ex = ex[take:]
			}
		}
		for j := done; j < m; j++ {
			if active[j] {
				sb := fresh[a+j].service(name)
				sb.requests, sb.errors = st.Requests[j], st.Errors[j]
			}
		}
	}
	if one {
		// The series the read did not give a count for the bucket.
		for k, se := range s.series {
			if se.read == s.reads {
				continue
			}
			se.counts.clear(g0, hi)
			if se.counts.nz == 0 {
				delete(s.series, k)
			}
		}
	}
}

// onlyAt is the series' counts' bounds, none for a nil series.
func (se *msgSeries) onlyAt() (first, last int64, ok bool) {
	if se == nil {
		return 0, 0, false
	}
	return se.counts.bounds()
}

// topUp reads again, alone, every cached bucket whose examples a window
// over w needs and that does not hold its own (a short one, see split
// and budget), until none is left. A read of one bucket serves every
// series with errors in it, which is what keeps top-ups about one a
// evaluation however many series need it (budget).
func (s *Source) topUp(ctx context.Context, w correlate.Window, fresh map[int]*bucket) error {
	n := w.Len()
	g0 := s.index(w.From)
	freshAt := slices.Sorted(maps.Keys(fresh))
	E := s.cfg.Examples
	for {
		short := map[int]bool{}
		for key, se := range s.series {
			if !se.short.overlaps(g0, g0+int64(n)) {
				continue
			}
			got, f := 0, 0
			// freshUpTo counts the examples of the fresh buckets before
			// bucket i (they are never short: read with all after them).
			freshUpTo := func(i int) {
				for ; f < len(freshAt) && freshAt[f] < i; f++ {
					if sb := fresh[freshAt[f]].services[key.service]; sb != nil {
						got += len(sb.msgs[key.message].examples)
					}
				}
			}
			se.counts.each(g0, g0+int64(n), func(g int64, c uint32) bool {
				i := int(g - g0)
				freshUpTo(i)
				if got >= E {
					return false
				}
				if fresh[i] != nil {
					return true // the fresh copy counts, from freshUpTo
				}
				if se.short.has(g) {
					// Read alone, it gives its own earliest few: count
					// them, so that only the buckets needed are read.
					short[i] = true
					got += min(int(c), E)
					return true
				}
				got += len(se.examplesAt(g))
				return true
			})
		}
		if len(short) == 0 {
			return nil
		}
		for _, i := range slices.Sorted(maps.Keys(short)) {
			s.stats.TopUps++
			if _, _, err := s.read(ctx, w, i, i+1, fresh, true); err != nil {
				return fmt.Errorf("cache: reading bucket %s again for its examples: %w", w.Start(i).UTC().Format(time.RFC3339), err)
			}
		}
		freshAt = slices.Sorted(maps.Keys(fresh))
	}
}

// budget bounds the examples each series keeps, so that a week of
// buckets read one at a time (the daemon's steady state, each bucket read
// alone and so holding its own examples) does not keep an example per
// series and bucket: 70 bytes and more each, against about one byte for
// the count.
//
// A series with at most ExampleBuckets buckets with errors in the cache
// keeps the examples of all of them: it is quiet, its few buckets cost
// little, and a window starting anywhere finds their examples without a
// read. A series with more keeps those of its first ExampleBuckets buckets
// with errors from the newest window's start (ws) only, and the others are
// marked short, to be read again (topUp) when a window needs them: a
// window's examples are the earliest few from its start, so they lie in
// its first Examples buckets with errors, which are kept.
//
// The cost, in reads: as the window slides a bucket per evaluation, a
// series erring every minute runs out of kept buckets after
// ExampleBuckets evaluations, and from then on needs the bucket Examples
// ahead of the window's start at every evaluation. That is the same
// bucket for every such series, and one read of a bucket alone gives the
// examples of every series in it, all kept (they are within the budget
// from ws), so it costs one single-bucket read per evaluation whatever
// the number of series. Series erring less often need a bucket further
// ahead; one read serves every series whose budget reaches it, so a
// bucket is read again only for series ExampleBuckets/Examples times
// denser than those it was first read for: a couple of reads per
// evaluation on average, for a mix from once an hour to every minute
// (BenchmarkCacheSteadyState: one). A single evaluation may take up to
// Examples of them, when a message whose first bucket held all its
// examples comes to need the next ones too. A window whose start moves
// back (an open incident anchoring it) needs reads of the buckets its
// start gained, once; so does the first window after a cold read, for the
// buckets the read's examples did not reach (as before the budget).
//
// Why count buckets rather than bytes or time: a window needs a number of
// buckets with errors, Examples at most, whatever their spacing; counting
// them keeps every series' next few needs covered, dense or quiet.
//
// All of this only once the examples held exceed Config.ExampleBytes:
// below it every bucket keeps its examples, and a steady evaluation is the
// one read of its new bucket. The top-up read per evaluation is the price
// of bounded memory, paid only where memory needs bounding.
func (s *Source) budget() {
	if s.exampleBytes() <= s.cfg.ExampleBytes {
		return
	}
	B := s.cfg.ExampleBuckets
	for _, se := range s.series {
		if se.counts.nz <= B {
			continue
		}
		if first, _, _ := se.counts.bounds(); first < s.ws {
			k, _ := slices.BinarySearchFunc(se.ex, s.ws, cmpEntry)
			se.cut(0, k)
			se.short.add(first, s.ws)
		}
		k, last := 0, int64(-1)
		found := false
		se.counts.each(s.ws, math.MaxInt64, func(g int64, _ uint32) bool {
			k++
			if k == B {
				last, found = g, true
				return false
			}
			return true
		})
		if !found {
			continue
		}
		j, ok := slices.BinarySearchFunc(se.ex, last, cmpEntry)
		se.cut(j+btoi(ok), len(se.ex))
		if _, l, _ := se.counts.bounds(); l > last {
			se.short.add(last+1, math.MaxInt64)
		}
		se.compact()
	}
}

// exampleBytes is about what the kept examples take (entryBytes).
func (s *Source) exampleBytes() int {
	n := 0
	for _, se := range s.series {
		n += se.exBytes
	}
	return n
}

// windowBuilder builds a message's counts over one window (assemble) the
// cheapest way its cells allow, with scratch reused from message to
// message: a dense series of one byte a bucket (a class erring every
// minute) is handed over as its cells themselves (cells.view) when no
// fresh bucket replaces any of them, else copied as bytes, a sparse one
// (a quiet class) from its entries in the window, anything else through
// float64. At the largest setting that is 100 M cells at every
// evaluation; through float64 and correlate.NewCounts alone they cost
// about a second, and copied, 96 MB of garbage an evaluation that the
// collector, under the daemon's memory limit, paid for in marking the
// cache's examples again and again.
type windowBuilder struct {
	g0      int64
	n       int
	fresh   map[int]*bucket
	freshAt []int
	scratch []float64
	pairs   []struct{ i, v uint32 }
	idx     []uint32
	val     []uint32
}

func (b *windowBuilder) counts(se *msgSeries, freshMsgAt func(int) (freshMsg, bool)) correlate.Counts {
	if se != nil {
		switch c := &se.counts; c.width {
		case 1:
			if len(b.freshAt) == 0 {
				// The cells themselves, shared: no fresh bucket
				// replaces any of them.
				if v, ok := c.view(b.g0, b.n); ok {
					return correlate.NewCountsBytes(v)
				}
			}
			out := make([]uint8, b.n)
			if lo, hi := max(b.g0, c.base), min(b.g0+int64(b.n), c.base+int64(len(c.dense))); lo < hi {
				copy(out[lo-b.g0:], c.dense[lo-c.base:hi-c.base])
			}
			ok := true
			for _, i := range b.freshAt {
				out[i] = 0
				if fm, has := freshMsgAt(i); has {
					ok = ok && fm.count <= 255
					out[i] = uint8(min(fm.count, 255))
				}
			}
			if ok {
				return correlate.NewCountsBytes(out)
			}
		case 0:
			b.pairs = b.pairs[:0]
			hi := b.g0 + int64(b.n)
			p, _ := slices.BinarySearch(c.idx, uint32(max(b.g0-c.base, 0)))
			for ; p < len(c.idx); p++ {
				g := c.base + int64(c.idx[p])
				if g >= hi {
					break
				}
				if g >= b.g0 && b.fresh[int(g-b.g0)] == nil {
					b.pairs = append(b.pairs, struct{ i, v uint32 }{uint32(g - b.g0), c.val[p]})
				}
			}
			sorted := true
			for _, i := range b.freshAt {
				if fm, has := freshMsgAt(i); has && fm.count > 0 {
					sorted = sorted && (len(b.pairs) == 0 || b.pairs[len(b.pairs)-1].i < uint32(i))
					b.pairs = append(b.pairs, struct{ i, v uint32 }{uint32(i), fm.count})
				}
			}
			if !sorted {
				slices.SortFunc(b.pairs, func(x, y struct{ i, v uint32 }) int { return cmp.Compare(x.i, y.i) })
			}
			b.idx, b.val = b.idx[:0], b.val[:0]
			for _, e := range b.pairs {
				b.idx, b.val = append(b.idx, e.i), append(b.val, e.v)
			}
			return correlate.NewCountsSparse(b.n, b.idx, b.val)
		}
	}
	clear(b.scratch)
	if se != nil {
		se.counts.fill(b.scratch, b.g0)
	}
	for _, i := range b.freshAt {
		b.scratch[i] = 0
		if fm, ok := freshMsgAt(i); ok {
			b.scratch[i] = float64(fm.count)
		}
	}
	return correlate.NewCounts(b.scratch)
}

// windowExamples are a message's earliest examples over the window
// starting at bucket index g0, n buckets long: those kept by se for the
// cached buckets and those of the fresh buckets, which replace the cache's
// copy, merged in bucket order until there are Examples of them. It walks
// the kept examples, not the window's cells.
func (s *Source) windowExamples(se *msgSeries, g0 int64, n int, fresh map[int]*bucket, freshAt []int, freshMsgAt func(int) (freshMsg, bool)) []string {
	var out []string
	take := func(ex []string) {
		if room := s.cfg.Examples - len(out); room > 0 && len(ex) > 0 {
			out = append(out, ex[:min(room, len(ex))]...)
		}
	}
	p := 0
	if se != nil {
		p, _ = slices.BinarySearchFunc(se.ex, g0, cmpEntry)
	}
	f := 0
	for len(out) < s.cfg.Examples {
		// The next cached bucket with examples that no fresh copy
		// replaces, and the next fresh bucket.
		for se != nil && p < len(se.ex) && se.ex[p].at < g0+int64(n) && fresh[int(se.ex[p].at-g0)] != nil {
			p++
		}
		ci := n
		if se != nil && p < len(se.ex) && se.ex[p].at < g0+int64(n) {
			ci = int(se.ex[p].at - g0)
		}
		fi := n
		if f < len(freshAt) {
			fi = freshAt[f]
		}
		switch {
		case ci == n && fi == n:
			return out
		case ci < fi:
			take(se.ex[p].ex)
			p++
		default:
			if fm, ok := freshMsgAt(fi); ok {
				take(fm.examples)
			}
			f++
		}
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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

// skipUnchanged counts buckets [r0, n) of w, when the inner source can,
// and drops from need the cached ones whose count is the one they had at
// the last count. Counting comes before reading, so a document arriving
// in between makes the next count differ, never the other way round.
func (s *Source) skipUnchanged(ctx context.Context, w correlate.Window, r0 int, need []bool) error {
	// Looked for at each call: wrappers switch sources (backtest's tick
	// view).
	c, _ := correlate.Behind[Counter](s.inner)
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
		same := false
		if before, ok := s.counts[at]; ok && before == v {
			same = true
			if s.cached(s.index(at)) {
				need[r0+j] = false
			}
		}
		s.unchanged[at] = same
		s.counts[at] = v
	}
	return nil
}

// allUnchanged: every bucket of [from, to) was counted unchanged by this
// evaluation's Traffic (skipUnchanged).
func (s *Source) allUnchanged(from, to time.Time) bool {
	for at := from; at.Before(to); at = at.Add(s.step) {
		if !s.unchanged[at] {
			return false
		}
	}
	return true
}

// evict drops the buckets before from: their totals, the series' counts,
// examples and short marks, and the series left with no count.
func (s *Source) evict(from time.Time) {
	gf := s.index(from)
	s.complete.remove(math.MinInt64, gf)
	for name, t := range s.totals {
		if !t.trim(gf) {
			delete(s.totals, name)
		}
	}
	for at := range s.counts {
		if at.Before(from) {
			delete(s.counts, at)
		}
	}
	for k, se := range s.series {
		if first, _, ok := se.counts.bounds(); ok && first >= gf {
			continue
		}
		se.counts.trim(gf)
		if se.counts.nz == 0 {
			delete(s.series, k)
			continue
		}
		if j, _ := slices.BinarySearchFunc(se.ex, gf, cmpEntry); j > 0 {
			se.cut(0, j)
			se.compact()
		}
		se.short.remove(math.MinInt64, gf)
	}
	// Services come and go too, far more slowly than messages: rebuild
	// the table once it is mostly names no bucket holds.
	if len(s.services) > 1024 {
		live := map[string]string{}
		for name := range s.totals {
			live[name] = name
		}
		for k := range s.series {
			live[k.service] = k.service
		}
		if 2*len(live) < len(s.services) {
			s.services = live
		}
	}
}

// assemble is w's traffic from the cached and fresh buckets, in the
// inner source's order: services and messages sorted by name.
//
// Each message's counts are gathered into one scratch slice, reused from
// message to message, and stored compactly by correlate.NewCounts: the
// transient memory of a call is one window of float64, not one per
// message (0.8 GB at a week of minutes and 10,000 messages).
func (s *Source) assemble(w correlate.Window, fresh map[int]*bucket, complete int) *correlate.Traffic {
	n := w.Len()
	g0 := s.index(w.From)
	freshAt := slices.Sorted(maps.Keys(fresh))
	svcs := map[string]*correlate.ServiceTraffic{}
	get := func(name string) *correlate.ServiceTraffic {
		st := svcs[name]
		if st == nil {
			st = &correlate.ServiceTraffic{Service: name, Requests: make([]float64, n), Errors: make([]float64, n)}
			svcs[name] = st
		}
		return st
	}
	for _, i := range freshAt {
		for name, sb := range fresh[i].services {
			st := get(name)
			st.Requests[i], st.Errors[i] = sb.requests, sb.errors
		}
	}
	// The services' totals over the cached buckets of w, walked run by
	// run of complete buckets rather than asking s.cached, fresh and
	// svcs about every bucket: that is a week of buckets for each of 100
	// services at the largest setting, and the per-bucket lookups were a
	// tenth of the cache's CPU.
	for name, t := range s.totals {
		lo, hi := max(g0, t.base), min(g0+int64(n), t.base+int64(len(t.req)))
		var st *correlate.ServiceTraffic
		for _, iv := range s.complete {
			a, b := max(lo, iv.lo), min(hi, iv.hi)
			for g := a; g < b; g++ {
				i := int(g - g0)
				r, e := t.req[g-t.base], t.errs[g-t.base]
				if (r != 0 || e != 0) && (len(fresh) == 0 || fresh[i] == nil) {
					if st == nil {
						st = get(name)
					}
					st.Requests[i], st.Errors[i] = r, e
				}
			}
		}
	}
	// The messages of each service: those with a count in a cached bucket
	// of w not overridden by a fresh copy, and those of the fresh buckets.
	type msgRef struct {
		se    *msgSeries
		fresh bool
	}
	msgs := map[string]map[string]*msgRef{}
	ref := func(svc, msg string) *msgRef {
		m := msgs[svc]
		if m == nil {
			m = map[string]*msgRef{}
			msgs[svc] = m
		}
		r := m[msg]
		if r == nil {
			r = &msgRef{}
			m[msg] = r
		}
		return r
	}
	for k, se := range s.series {
		has := false
		se.counts.each(g0, g0+int64(n), func(g int64, _ uint32) bool {
			has = fresh[int(g-g0)] == nil
			return !has
		})
		if has {
			ref(k.service, k.message).se = se
			get(k.service) // a service with messages is listed, errors or not
		}
	}
	for _, i := range freshAt {
		for name, sb := range fresh[i].services {
			for msg := range sb.msgs {
				ref(name, msg).fresh = true
			}
		}
	}
	win := &windowBuilder{g0: g0, n: n, fresh: fresh, freshAt: freshAt, scratch: make([]float64, n)}
	tr := &correlate.Traffic{Window: w, Complete: complete}
	for _, name := range slices.Sorted(maps.Keys(svcs)) {
		st := svcs[name]
		for _, msg := range slices.Sorted(maps.Keys(msgs[name])) {
			r := msgs[name][msg]
			// A fresh bucket replaces the cache's copy of it.
			freshMsgAt := func(i int) (freshMsg, bool) {
				if !r.fresh {
					return freshMsg{}, false
				}
				sb := fresh[i].services[name]
				if sb == nil {
					return freshMsg{}, false
				}
				fm, ok := sb.msgs[msg]
				return fm, ok
			}
			counts := win.counts(r.se, freshMsgAt)
			examples := s.windowExamples(r.se, g0, n, fresh, freshAt, freshMsgAt)
			st.Messages = append(st.Messages, correlate.MessageCounts{Message: msg, Counts: counts, Examples: examples})
		}
		tr.Services = append(tr.Services, *st)
	}
	return tr
}
