package file

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
)

var (
	_ correlate.Source = (*Index)(nil)
	_ correlate.Source = (*cutView)(nil)
)

// Index is a log file aggregated once, for callers that ask for Traffic
// over many overlapping windows: a backtest slides its window one
// evaluation interval at a time, and re-reading the file for each would
// cost a pass per simulated minute. Logs caches counts too, but only the
// file's earliest examples per message, so a window that starts later
// sends it back to the file; Index keeps the earliest examples of every
// bucket, which is what makes any window on its grid answerable from
// memory.
//
// Scope is asked for every significant finding at every evaluation, so
// for as long as an incident lasts; streaming the file each time was 96%
// of a backtest's time. The first Scope of a service reads the file once
// and keeps that service's lines in a compact form (about 40 bytes a
// line: time, value ids, message); later ones count from memory, with
// Logs.Scope's rules. A service with more than maxScopeLines lines is
// streamed every time instead.
//
// Memory is that of Logs' aggregate plus up to three examples per message
// and bucket in which the message occurred, plus the lines of the
// services Scope was asked about.
type Index struct {
	logs *Logs
	res  int64
	agg  *agg
	ex   map[*msgAgg]map[int64][]example

	mu     sync.Mutex
	lines  map[string]*scopeLines // per service, decoded on its first Scope
	values [len(scopeRoles)]dict
}

// NewIndex reads the whole of l once, bucketing by the step l was opened
// with: that step is the index's resolution, and windows or cutoffs off its
// grid are still answered exactly, by reading the file again. It also
// completes l's own first pass, so l.Range, l.Stats and l.Traffic do not
// read the file again either.
func NewIndex(ctx context.Context, l *Logs) (*Index, error) {
	x := &Index{logs: l, res: l.step, agg: newAgg(0, l.step, math.MinInt64, math.MaxInt64, l.cfg.maxMessages),
		ex: map[*msgAgg]map[int64][]example{}, lines: map[string]*scopeLines{}}
	var st lineStats
	if err := l.scan(ctx, &st, nil, x.add); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.agg == nil {
		// The aggregate is the one load builds: same origin, step, bounds
		// and message cap, fed the same lines.
		l.stats = st
		if x.agg.n == 0 {
			return nil, l.noUsableError()
		}
		l.agg = x.agg
	} else if x.agg.n == 0 {
		return nil, fmt.Errorf("logs %s: no usable line", l.path)
	}
	return x, nil
}

// add counts a line as pass 1 does and remembers the line's message among
// the earliest of its bucket. Masking an error twice is cheaper than a
// second copy of agg.add to keep in step: errors are a small share of lines.
func (x *Index) add(e *extractor, t int64) {
	a := x.agg
	a.add(e, t)
	if !e.isError() {
		return
	}
	raw := e.message()
	s := a.last
	m := s.messages[template.Truncate(template.Mask(raw))]
	if m == nil {
		m = s.messages[otherMessage]
	}
	buckets := x.ex[m]
	if buckets == nil {
		buckets = map[int64][]example{}
		x.ex[m] = buckets
	}
	idx := floorDiv(t, a.step)
	buckets[idx] = addExample(buckets[idx], t, raw)
}

// addExample keeps the earliest examples, ties in file order, as
// msgAgg.example does for the whole file.
func addExample(ex []example, t int64, raw string) []example {
	if len(ex) == maxExamples && t >= ex[maxExamples-1].t {
		return ex
	}
	e := example{t: t, msg: template.Truncate(raw)}
	i := sort.Search(len(ex), func(i int) bool { return ex[i].t > t })
	if len(ex) < maxExamples {
		ex = append(ex, example{})
	}
	copy(ex[i+1:], ex[i:])
	ex[i] = e
	return ex
}

// Logs is the file the index was built from.
func (x *Index) Logs() *Logs { return x.logs }

// Range is the time of the earliest and of the latest usable line, as
// Logs.Range.
func (x *Index) Range(ctx context.Context) (from, to time.Time, err error) {
	return x.logs.Range(ctx)
}

// Traffic is Logs.Traffic over w, from memory when w's start and step lie
// on the index's grid.
func (x *Index) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	return x.traffic(ctx, w, math.MaxInt64)
}

// Scope answers what Logs.Scope answers, from the service's lines in
// memory (see Index).
func (x *Index) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	sl, err := x.serviceLines(ctx, q.Service)
	if err != nil {
		return nil, err
	}
	if sl == nil {
		return x.logs.Scope(ctx, q)
	}
	return x.scope(sl, q), nil
}

// Until is the file as a source that had received only the lines stamped
// before cutoff: a backtest's view at one tick, with ingestion lag. Its
// Traffic counts no line at or after cutoff and marks the buckets that end
// after cutoff incomplete (Traffic.Complete), as the Elasticsearch source
// does with its lag. Its Scope breaks down only lines before cutoff; the
// per-host series leave out the bucket the cutoff falls in, which the
// correlator does not read anyway.
func (x *Index) Until(cutoff time.Time) correlate.Source {
	return &cutView{x: x, cut: cutoff}
}

type cutView struct {
	x   *Index
	cut time.Time
}

func (v *cutView) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	tr, err := v.x.traffic(ctx, w, v.cut.UnixNano())
	if err != nil {
		return nil, err
	}
	tr.Complete = complete(w, v.cut)
	return tr, nil
}

// complete is Traffic.Complete for a window read at cutoff: 0 when every
// bucket ended by then, else the whole buckets before it, at least 1 (0
// would claim all were complete). It is the Elasticsearch source's rule.
func complete(w correlate.Window, cutoff time.Time) int {
	n := w.Len()
	if !cutoff.Before(w.To) {
		return 0
	}
	k := 0
	if cutoff.After(w.From) {
		k = int(cutoff.Sub(w.From) / w.Step)
	}
	return max(min(k, n), 1)
}

func (v *cutView) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	if !q.To.IsZero() && q.To.After(v.cut) {
		q.To = v.cut
	}
	full := q.Window
	if n := full.Len(); n > 0 && v.cut.Before(full.To) {
		k := 0
		if v.cut.After(full.From) {
			k = int(v.cut.Sub(full.From) / full.Step)
		}
		q.Window.To = full.Start(k)
	}
	sc, err := v.x.Scope(ctx, q)
	if err != nil {
		return nil, err
	}
	n := full.Len()
	for _, m := range []map[string][]float64{sc.HostErrors, sc.HostRequests} {
		for h, s := range m {
			if len(s) < n {
				m[h] = append(s, make([]float64, n-len(s))...)
			}
		}
	}
	return sc, nil
}

// traffic reads w, counting only lines before cut (UnixNano).
func (x *Index) traffic(ctx context.Context, w correlate.Window, cut int64) (*correlate.Traffic, error) {
	l := x.logs
	n := w.Len()
	if n <= 0 {
		return nil, fmt.Errorf("logs %s: empty window %s to %s step %s", l.path, w.From.Format(time.RFC3339), w.To.Format(time.RFC3339), w.Step)
	}
	if n > maxWindowBuckets {
		return nil, fmt.Errorf("logs %s: window has %d buckets, more than %d", l.path, n, maxWindowBuckets)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("logs %s: %w", l.path, err)
	}
	from, step := w.From.UnixNano(), int64(w.Step)
	end := min(w.Start(n).UnixNano(), cut)
	if step%x.res == 0 && from%x.res == 0 && (end <= from || end%x.res == 0) {
		return x.slice(w, floorDiv(from, x.res), step/x.res, floorDiv(end, x.res)), nil
	}
	// Off the grid: count the window's lines exactly, as Logs does.
	b := newAgg(from, step, from, end, l.cfg.maxMessages)
	var st lineStats
	if err := l.scan(ctx, &st, nil, b.add); err != nil {
		return nil, err
	}
	tr, _ := b.traffic(w, 0, 1)
	return tr, nil
}

// slice reads the aggregate over w: base is the absolute bucket of w.From,
// ratio the aggregate buckets per bucket of w, and end the first absolute
// bucket not read. Services and messages without a count in range are
// left out, as Logs leaves them out.
func (x *Index) slice(w correlate.Window, base, ratio, end int64) *correlate.Traffic {
	n := w.Len()
	tr := &correlate.Traffic{Window: w}
	for _, s := range x.agg.services {
		req := make([]float64, n)
		if !sumInto(&s.requests, req, base, ratio, end) {
			continue
		}
		st := correlate.ServiceTraffic{Service: s.name, Requests: req, Errors: make([]float64, n)}
		sumInto(&s.errors, st.Errors, base, ratio, end)
		for key, m := range s.messages {
			counts := make([]float64, n)
			if !sumInto(&m.counts, counts, base, ratio, end) {
				continue
			}
			st.Messages = append(st.Messages, correlate.MessageCounts{Message: key, Counts: correlate.NewCounts(counts), Examples: x.examples(m, base, end)})
		}
		sort.Slice(st.Messages, func(i, j int) bool { return st.Messages[i].Message < st.Messages[j].Message })
		tr.Services = append(tr.Services, st)
	}
	sort.Slice(tr.Services, func(i, j int) bool { return tr.Services[i].Service < tr.Services[j].Service })
	return tr
}

// sumInto is series.into bounded by end: it adds the counts of absolute
// buckets [base, min(base+len(out)*ratio, end)).
func sumInto(s *series, out []float64, base, ratio, end int64) bool {
	if lim := base + int64(len(out))*ratio; lim > end {
		if end <= base {
			return false
		}
		out = out[:(end-base+ratio-1)/ratio]
		if lim = base + int64(len(out))*ratio; lim > end {
			// The last output bucket is partly after end: count it
			// bucket by bucket.
			hit := s.into(out[:len(out)-1], base, ratio)
			last := base + int64(len(out)-1)*ratio
			for idx := last; idx < end; idx++ {
				if v := s.at(idx); v > 0 {
					out[len(out)-1] += float64(v)
					hit = true
				}
			}
			return hit
		}
	}
	return s.into(out, base, ratio)
}

// examples are a message's earliest examples in absolute buckets
// [base, end), earliest first.
func (x *Index) examples(m *msgAgg, base, end int64) []string {
	buckets := x.ex[m]
	var idx []int64
	for b := range buckets {
		if b >= base && b < end {
			idx = append(idx, b)
		}
	}
	slices.Sort(idx)
	var out []string
	for _, b := range idx {
		for _, e := range buckets[b] {
			if len(out) == maxExamples {
				return out
			}
			out = append(out, e.msg)
		}
	}
	return out
}

// at is the count of absolute bucket idx.
func (s *series) at(idx int64) uint32 {
	c := s.chunks[idx>>chunkBits]
	if c == nil {
		return 0
	}
	return c[idx&(chunkLen-1)]
}

// scopeRoles are the roles of correlate.ScopeFields, in its order; a
// scopeRec holds one value id per role.
var scopeRoles = [...]role{roleCustomer, roleSite, roleHost, roleProvider, roleRegion, roleVersion, rolePath}

// maxScopeLines bounds the lines of one service kept for Scope: 8M lines
// are about 320 MB.
const maxScopeLines = 8 << 20

// scopeLines are one service's lines in file order.
type scopeLines struct {
	recs []scopeRec
	errs []scopeErr
	// ordered says recs' times never decrease, as in a log written as it
	// happens. Then a query reads only its time range, found by binary
	// search: a backtest asks for a few hours of a day-long file at every
	// tick, and scanning every line each time made scope most of its cost.
	ordered bool
}

// span is the lines that can fall in [lo, hi): exactly those when the
// lines are in time order, else all of them (the caller still checks
// each line's time). File order is kept either way: tallies that cap the
// values they keep depend on it.
func (sl *scopeLines) span(lo, hi int64) []scopeRec {
	if !sl.ordered || lo >= hi {
		if lo >= hi {
			return nil
		}
		return sl.recs
	}
	i := sort.Search(len(sl.recs), func(i int) bool { return sl.recs[i].t >= lo })
	j := i + sort.Search(len(sl.recs)-i, func(k int) bool { return sl.recs[i+k].t >= hi })
	return sl.recs[i:j]
}

type scopeRec struct {
	t    int64
	vals [len(scopeRoles)]uint32 // dict ids, 0 when absent
	err  int32                   // index in errs, -1 when not an error
}

type scopeErr struct {
	key string // template.Truncate(template.Mask(raw)), as Traffic names it
	msg string // template.Truncate(raw), as samples show it
}

// dict numbers the values of one role; id 0 is the absent value.
type dict struct {
	ids  map[string]uint32
	vals []string
}

// value is the value of id, "" for the absent value.
func (d *dict) value(id uint32) string {
	if int(id) >= len(d.vals) {
		return ""
	}
	return d.vals[id]
}

func (d *dict) id(v []byte) uint32 {
	if id, ok := d.ids[string(v)]; ok {
		return id
	}
	if d.ids == nil {
		d.ids, d.vals = map[string]uint32{}, []string{""}
	}
	id := uint32(len(d.vals))
	d.vals = append(d.vals, string(v))
	d.ids[string(v)] = id
	return id
}

// serviceLines reads a service's lines the first time it is asked for,
// or returns nil when it has too many to keep.
func (x *Index) serviceLines(ctx context.Context, service string) (*scopeLines, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if sl, ok := x.lines[service]; ok {
		return sl, nil
	}
	if s := x.agg.services[service]; s != nil {
		var n int64
		for _, c := range s.requests.chunks {
			for _, v := range c {
				n += int64(v)
			}
		}
		if n > maxScopeLines {
			x.lines[service] = nil
			return nil, nil
		}
	}
	m := &scopeMatcher{service: []byte(service), none: service == noService}
	sl := &scopeLines{ordered: true}
	keys := map[string]string{}
	var st lineStats
	err := x.logs.scan(ctx, &st, m.prefilter(), func(e *extractor, t int64) {
		if !m.serviceOK(e) {
			return
		}
		r := scopeRec{t: t, err: -1}
		for j, ro := range scopeRoles {
			if v := e.text(ro); len(v) > 0 {
				r.vals[j] = x.values[j].id(v)
			}
		}
		if e.isError() {
			raw := e.message()
			key := template.Truncate(template.Mask(raw))
			if k, ok := keys[key]; ok {
				key = k
			} else {
				keys[key] = key
			}
			sl.errs = append(sl.errs, scopeErr{key: key, msg: template.Truncate(raw)})
			r.err = int32(len(sl.errs) - 1)
		}
		if n := len(sl.recs); n > 0 && sl.recs[n-1].t > t {
			sl.ordered = false
		}
		sl.recs = append(sl.recs, r)
	})
	if err != nil {
		return nil, err
	}
	x.lines[service] = sl
	return sl, nil
}

// idTally is tally over value ids: the same cap, the same overflow into
// otherMessage, in the same (file) order.
type idTally struct {
	m          map[uint32]float64
	other      float64
	hasOther   bool
	limit      int
	overflowed bool
}

func (t *idTally) add(id uint32) {
	if _, ok := t.m[id]; ok || len(t.m)+boolInt(t.hasOther) < t.limit {
		t.m[id]++
		return
	}
	t.overflowed = true
	t.hasOther = true
	t.other++
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *idTally) result(d *dict) map[string]float64 {
	out := make(map[string]float64, len(t.m)+1)
	for id, n := range t.m {
		out[d.vals[id]] += n
	}
	if t.hasOther {
		out[otherMessage] += t.other
	}
	return out
}

// unionRange is the smallest range holding both [a0, a1) and [b0, b1),
// either of which may be empty.
func unionRange(a0, a1, b0, b1 int64) (int64, int64) {
	switch {
	case a0 >= a1:
		return b0, b1
	case b0 >= b1:
		return a0, a1
	}
	return min(a0, b0), max(a1, b1)
}

// errMatches says, per error of sl, whether it is one of the signature's
// (made of messages), with Logs' rule for "<other>". x.mu must be held.
func (x *Index) errMatches(sl *scopeLines, service string, messages []string) []bool {
	want := map[string]bool{}
	other := false
	for _, msg := range messages {
		want[msg] = true
		if msg == otherMessage {
			other = true
		}
	}
	var known map[string]*msgAgg
	if s := x.agg.services[service]; other && s != nil {
		known = s.messages
	}
	out := make([]bool, len(sl.errs))
	for i, e := range sl.errs {
		out[i] = want[e.key] || (other && known != nil && known[e.key] == nil)
	}
	return out
}

// scope is Logs.Scope over a service's lines in memory.
func (x *Index) scope(sl *scopeLines, q correlate.ScopeQuery) *correlate.Scope {
	x.mu.Lock()
	defer x.mu.Unlock()
	matches := x.errMatches(sl, q.Service, q.Messages)
	type field struct {
		name string
		slot int
	}
	var fields []field
	for _, f := range correlate.ScopeFields {
		if r, ok := scopeRole(f); ok && x.logs.spec.roleSlot[r] >= 0 {
			fields = append(fields, field{f, slices.Index(scopeRoles[:], r)})
		}
	}
	const customer, site, host, version = 0, 1, 2, 5

	from, to := q.From.UnixNano(), q.To.UnixNano()
	if q.From.IsZero() || q.To.IsZero() {
		from, to = 0, 0
	}
	nw := q.Window.Len()
	wFrom, wTo, wStep := q.Window.From.UnixNano(), q.Window.To.UnixNano(), int64(q.Window.Step)
	if nw <= 0 {
		wFrom, wTo = 0, 0
	}
	limit := x.logs.cfg.maxScopeVals
	errs := make([]*idTally, len(fields))
	reqs := make([]*idTally, len(fields))
	for i := range fields {
		errs[i] = &idTally{m: map[uint32]float64{}, limit: limit}
		reqs[i] = &idTally{m: map[uint32]float64{}, limit: limit}
	}
	hostErr := map[string][]float64{}
	hostReq := map[string][]float64{}
	var samples []correlate.Sample
	hosts := &x.values[host]
	for _, r := range sl.span(unionRange(from, to, wFrom, wTo)) {
		t := r.t
		inRange := t >= from && t < to
		inWindow := t >= wFrom && t < wTo
		if !inRange && !inWindow {
			continue
		}
		match := r.err >= 0 && matches[r.err]
		if inRange {
			for i, f := range fields {
				v := r.vals[f.slot]
				if v == 0 {
					continue
				}
				reqs[i].add(v)
				if match {
					errs[i].add(v)
				}
			}
			if match && (len(samples) < maxSamples || t < samples[len(samples)-1].Time.UnixNano()) {
				smp := correlate.Sample{Time: time.Unix(0, t).UTC(), Host: x.values[host].vals[r.vals[host]],
					Customer: x.values[customer].vals[r.vals[customer]], Site: x.values[site].vals[r.vals[site]],
					Version: x.values[version].vals[r.vals[version]], Message: sl.errs[r.err].msg}
				i := sort.Search(len(samples), func(i int) bool { return samples[i].Time.UnixNano() > t })
				if len(samples) < maxSamples {
					samples = append(samples, correlate.Sample{})
				}
				copy(samples[i+1:], samples[i:])
				samples[i] = smp
			}
		}
		if inWindow && r.vals[host] != 0 {
			h := hosts.vals[r.vals[host]]
			b := (t - wFrom) / wStep
			hs := hostReq[h]
			if hs == nil {
				hs = make([]float64, nw)
				hostReq[h] = hs
			}
			hs[b]++
			if match {
				he := hostErr[h]
				if he == nil {
					he = make([]float64, nw)
					hostErr[h] = he
				}
				he[b]++
			}
		}
	}
	// A capped request tally is recounted, limited to the values that
	// carry errors, as Logs.Scope does.
	for i, f := range fields {
		if !reqs[i].overflowed && !errs[i].overflowed {
			continue
		}
		allowed := map[uint32]bool{}
		for id := range errs[i].m {
			allowed[id] = true
		}
		rc := &idTally{m: map[uint32]float64{}, limit: int(^uint(0) >> 1)}
		for _, r := range sl.span(from, to) {
			if r.t < from || r.t >= to || r.vals[f.slot] == 0 {
				continue
			}
			if v := r.vals[f.slot]; allowed[v] {
				rc.add(v)
			} else {
				rc.hasOther = true
				rc.other++
			}
		}
		reqs[i] = rc
	}
	sc := newScope(hostErr, hostReq, samples)
	for i, f := range fields {
		sc.Errors[f.name] = errs[i].result(&x.values[f.slot])
		sc.Requests[f.name] = reqs[i].result(&x.values[f.slot])
	}
	return sc
}
