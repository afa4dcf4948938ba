package cache

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// Scope breakdowns are kept the way traffic is, so that an open finding's
// breakdown costs its new buckets, not its whole span, at every
// evaluation. A breakdown splits into parts that add up:
//
//   - the per-value tallies over [From, To), kept per finding (service,
//     signature and From) as one running sum up to the end of the cached
//     region, and extended by the buckets that have since left the
//     re-checked region;
//   - the per-host series over the window, kept per bucket: errors per
//     finding (service and signature), requests per service, shared by the
//     service's findings;
//   - the samples, the earliest few: the earliest of the running sum's and
//     the rest's, since the two ranges do not overlap.
//
// What is newer than the cached region (the re-checked buckets and the
// incomplete one) is read from the inner source at every call, as Traffic
// reads it, so documents indexed late into it are counted. That read is
// kept until the next call: when its buckets are the ones that join the
// cached region then, and that evaluation's Traffic counted them
// unchanged, they join without a read (reuseScopeRest, as conjunctions
// do), so a steady call reads the new bucket once, not once as the rest
// and again as it joins the cached region.
//
// A query the parts cannot answer exactly goes to the inner source as it
// is: off the bucket grid, before any Traffic (no frontier yet), or for
// the "<other>" signature, whose members depend on what the source
// counted over the whole window. A source that caps the values it tallies
// (the file source, at 100,000 a field) caps each read, not their sum: a
// breakdown over more distinct values than the cap is exact here where a
// read from scratch folds the excess into "<other>".

// otherSignature is the message sources count errors under past their
// message cap (file and Elasticsearch sources alike).
const otherSignature = "<other>"

// scopeIdle is how many buckets a kept breakdown survives without being
// asked for: a finding is judged at every evaluation while its episode
// lasts, so one not asked for this long has ended.
const scopeIdle = 10

type scopeKey struct {
	service, messages string
	from              time.Time
}

// scopeSum is one finding's running breakdown over [from, to).
type scopeSum struct {
	to       time.Time
	errors   map[string]map[string]float64
	requests map[string]map[string]float64
	samples  []correlate.Sample
	used     time.Time
	// rest is the last call's read of [rest.from, rest.to), newer than
	// the cached region then.
	rest *scopeRest
}

type scopeRest struct {
	from, to         time.Time
	errors, requests map[string]map[string]float64
	samples          []correlate.Sample
	traffic          int64 // the Traffic call the read followed
}

// hostBuckets are per-host counts of complete buckets, by bucket start; a
// bucket read with no host is an empty map, unlike one not read (absent).
// pending holds the last call's read of the buckets newer than the
// cached region, for reuseHosts.
type hostBuckets struct {
	at             map[time.Time]map[string]float64
	pending        map[time.Time]map[string]float64
	pendingTraffic int64
	used           time.Time
}

func (h *hostBuckets) has(at time.Time) bool {
	_, ok := h.at[at]
	return ok
}

// Scope answers from the kept breakdowns plus one read of the buckets that
// are new since the last call and, when the re-checked region or an
// incomplete bucket is in the query, one read of those. See above.
func (s *Source) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.scopeCacheable(q) {
		s.stats.ScopeReads++
		return s.inner.Scope(ctx, q)
	}
	step := s.step
	w0, w1 := q.Window.From, q.Window.To
	hasRange := !q.From.IsZero() && !q.To.IsZero() && q.To.After(q.From)
	// c ends the cached region: complete buckets out of the re-checked
	// region, as of the last Traffic.
	c := s.frontier.Add(-s.cfg.Recheck).Truncate(step)

	msgs := strings.Join(q.Messages, "\x00")
	he := s.hosts(s.hostErr, q.Service+"\x00"+msgs)
	hr := s.hosts(s.hostReq, q.Service)
	he.used, hr.used = w1, w1
	hc := clampTime(c, w0, w1) // host buckets before hc come from the cache
	s.reuseHosts(he, hc)
	s.reuseHosts(hr, hc)
	var mlo, mhi time.Time // the run of them not cached yet
	for at := w0; at.Before(hc); at = at.Add(step) {
		if !he.has(at) || !hr.has(at) {
			if mlo.IsZero() {
				mlo = at
			}
			mhi = at.Add(step)
		}
	}

	var sum *scopeSum
	tc := q.From // tallies before tc come from the running sum
	if hasRange {
		key := scopeKey{q.Service, msgs, q.From}
		sum = s.scopes[key]
		if sum == nil || sum.to.After(q.To) {
			sum = &scopeSum{to: q.From, errors: tallies(), requests: tallies()}
			s.scopes[key] = sum
		}
		sum.used = w1
		tc = clampTime(c, q.From, q.To)
		if s.reuseScopeRest(sum, tc) {
			s.stats.ScopeReuses++
		}
	}

	// The buckets that joined the cached region since the last call.
	q1 := correlate.ScopeQuery{Service: q.Service, Messages: q.Messages}
	if sum != nil && sum.to.Before(tc) {
		q1.From, q1.To = sum.to, tc
	}
	if !mlo.IsZero() {
		q1.Window = correlate.Window{From: mlo, To: mhi, Step: step}
	}
	if !q1.From.IsZero() || q1.Window.Len() > 0 {
		sc, err := s.readScope(ctx, q1)
		if err != nil {
			return nil, err
		}
		if !q1.From.IsZero() {
			add(sum.errors, sc.Errors)
			add(sum.requests, sc.Requests)
			sum.samples = s.earliest(sum.samples, sc.Samples)
			sum.to = tc
		}
		keepHosts(he.at, q1.Window, sc.HostErrors)
		keepHosts(hr.at, q1.Window, sc.HostRequests)
	}

	// The rest, newer than the cached region: read every time.
	var rest *correlate.Scope
	q2 := correlate.ScopeQuery{Service: q.Service, Messages: q.Messages}
	if hasRange && tc.Before(q.To) {
		q2.From, q2.To = tc, q.To
	}
	if hc.Before(w1) {
		q2.Window = correlate.Window{From: hc, To: w1, Step: step}
	}
	if !q2.From.IsZero() || q2.Window.Len() > 0 {
		var err error
		if rest, err = s.readScope(ctx, q2); err != nil {
			return nil, err
		}
	}
	if sum != nil {
		sum.rest = nil
		if rest != nil && !q2.From.IsZero() {
			sum.rest = &scopeRest{from: q2.From, to: q2.To, errors: tallies(), requests: tallies(), samples: slices.Clone(rest.Samples), traffic: s.traffics}
			add(sum.rest.errors, rest.Errors)
			add(sum.rest.requests, rest.Requests)
		}
	}
	// reuseHosts left both pending maps empty.
	if rest != nil && q2.Window.Len() > 0 {
		keepHosts(he.pending, q2.Window, rest.HostErrors)
		keepHosts(hr.pending, q2.Window, rest.HostRequests)
		he.pendingTraffic, hr.pendingTraffic = s.traffics, s.traffics
	}

	out := &correlate.Scope{Errors: tallies(), Requests: tallies(),
		HostErrors: map[string][]float64{}, HostRequests: map[string][]float64{}}
	if sum != nil {
		add(out.Errors, sum.errors)
		add(out.Requests, sum.requests)
		out.Samples = slices.Clone(sum.samples)
	}
	if rest != nil {
		add(out.Errors, rest.Errors)
		add(out.Requests, rest.Requests)
		out.Samples = s.earliest(out.Samples, rest.Samples)
	}
	n := q.Window.Len()
	cached := int(hc.Sub(w0) / step) // buckets [0, cached) come from the cache
	series(out.HostErrors, he, q.Window, cached)
	series(out.HostRequests, hr, q.Window, cached)
	if rest != nil {
		place(out.HostErrors, rest.HostErrors, n, cached)
		place(out.HostRequests, rest.HostRequests, n, cached)
	}
	return out, nil
}

// scopeCacheable: the query fits the grid of the cache's traffic, and a
// Traffic call has set the frontier.
func (s *Source) scopeCacheable(q correlate.ScopeQuery) bool {
	w := q.Window
	if s.step <= 0 || s.frontier.IsZero() || w.Len() <= 0 || w.Step != s.step || !onGrid(w.From, s.step) || !onGrid(w.To, s.step) {
		return false
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.After(q.From) && (!onGrid(q.From, s.step) || !onGrid(q.To, s.step)) {
		return false
	}
	return !slices.Contains(q.Messages, otherSignature)
}

func (s *Source) readScope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	s.stats.ScopeReads++
	s.stats.ScopeBuckets += int64(querySpan(q) / s.step)
	sc, err := s.inner.Scope(ctx, q)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		sc = &correlate.Scope{}
	}
	return sc, nil
}

// reuseScopeRest adds to sum, without a read, the buckets [sum.to, tc)
// that joined the cached region when the last call read exactly them as
// its rest and this evaluation's Traffic counted them unchanged since:
// that count came before the read and the new one after it, so nothing
// was indexed into them in between (conj.go's reuseRest argues the same,
// and why the read must follow the Traffic call before this one).
func (s *Source) reuseScopeRest(sum *scopeSum, tc time.Time) bool {
	r := sum.rest
	if r == nil || r.traffic != s.traffics-1 || !r.from.Equal(sum.to) || !r.to.Equal(tc) || !tc.After(sum.to) || !s.allUnchanged(r.from, r.to) {
		return false
	}
	add(sum.errors, r.errors)
	add(sum.requests, r.requests)
	sum.samples = s.earliest(sum.samples, r.samples)
	sum.to, sum.rest = tc, nil
	return true
}

// reuseHosts keeps, without a read, the host series of the buckets before
// hc that the last call read as its rest, when this evaluation's Traffic
// counted them unchanged since.
func (s *Source) reuseHosts(h *hostBuckets, hc time.Time) {
	for at, b := range h.pending {
		if h.pendingTraffic == s.traffics-1 && at.Before(hc) && !h.has(at) && s.unchanged[at] {
			h.at[at] = b
		}
	}
	clear(h.pending)
}

// querySpan is how much time a breakdown covers: its range and its window
// together.
func querySpan(q correlate.ScopeQuery) time.Duration {
	lo, hi := q.Window.From, q.Window.To
	if !q.From.IsZero() {
		if lo.IsZero() || q.From.Before(lo) {
			lo = q.From
		}
		if hi.IsZero() || q.To.After(hi) {
			hi = q.To
		}
	}
	return hi.Sub(lo)
}

func (s *Source) hosts(m map[string]*hostBuckets, key string) *hostBuckets {
	h := m[key]
	if h == nil {
		h = &hostBuckets{at: map[time.Time]map[string]float64{}, pending: map[time.Time]map[string]float64{}}
		m[key] = h
	}
	return h
}

// earliest is the source's few earliest samples of a then b, a's all
// before b's.
func (s *Source) earliest(a, b []correlate.Sample) []correlate.Sample {
	out := append(slices.Clone(a), b...)
	return out[:min(len(out), s.cfg.Samples)]
}

// evictScopes forgets the breakdowns not asked for in scopeIdle buckets
// and the host buckets older than what Keep holds. Traffic calls it, once
// an evaluation, rather than every Scope call: the sweep visits every kept
// breakdown and host bucket, and an evaluation asks for one breakdown per
// finding.
func (s *Source) evictScopes(end time.Time) {
	idle := end.Add(-scopeIdle * s.step)
	for k, sum := range s.scopes {
		if sum.used.Before(idle) {
			delete(s.scopes, k)
		}
	}
	keep := end.Add(-s.cfg.Keep)
	for _, m := range []map[string]*hostBuckets{s.hostErr, s.hostReq} {
		for k, h := range m {
			if h.used.Before(idle) {
				delete(m, k)
				continue
			}
			if s.cfg.Keep > 0 {
				for at := range h.at {
					if at.Before(keep) {
						delete(h.at, at)
					}
				}
			}
		}
	}
}

func tallies() map[string]map[string]float64 {
	out := make(map[string]map[string]float64, len(correlate.ScopeFields))
	for _, f := range correlate.ScopeFields {
		out[f] = map[string]float64{}
	}
	return out
}

func add(into, from map[string]map[string]float64) {
	for f, vals := range from {
		m := into[f]
		if m == nil {
			m = map[string]float64{}
			into[f] = m
		}
		for v, n := range vals {
			m[v] += n
		}
	}
}

// keepHosts stores a read's host series into per-bucket maps, one bucket
// at a time.
func keepHosts(into map[time.Time]map[string]float64, w correlate.Window, series map[string][]float64) {
	for i := range w.Len() {
		b := map[string]float64{}
		for host, xs := range series {
			if i < len(xs) && xs[i] != 0 {
				b[host] = xs[i]
			}
		}
		into[w.Start(i)] = b
	}
}

// series fills buckets [0, upto) of w from the cache.
func series(into map[string][]float64, h *hostBuckets, w correlate.Window, upto int) {
	n := w.Len()
	for i := range upto {
		for host, v := range h.at[w.Start(i)] {
			xs := into[host]
			if xs == nil {
				xs = make([]float64, n)
				into[host] = xs
			}
			xs[i] = v
		}
	}
}

// place copies a read of w's buckets [off, n) into them.
func place(into, from map[string][]float64, n, off int) {
	for host, src := range from {
		xs := into[host]
		for j, v := range src {
			if v == 0 || off+j >= n {
				continue
			}
			if xs == nil {
				xs = make([]float64, n)
				into[host] = xs
			}
			xs[off+j] = v
		}
	}
}

func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		return lo
	}
	if t.After(hi) {
		return hi
	}
	return t
}
