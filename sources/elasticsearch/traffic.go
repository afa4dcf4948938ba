package elasticsearch

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
)

// maxFetch bounds the error documents fetched because their message cannot
// be aggregated (over ignore_above, or a text field). It is also
// Elasticsearch's default index.max_result_window, the most one search may
// return. Errors past it count under otherMessage.
const maxFetch = 10_000

// maxWindowBuckets refuses windows whose series alone would exhaust memory,
// as the file source does.
const maxWindowBuckets = 10_000_000

// entry identifies the documents behind one composite bucket: one raw
// message (or status) of one service in one time bucket.
type entry struct {
	svcKey types.FieldValue // the service's raw key; nil when missing
	lvl    int              // index into mapping.levels; -1: no message, by status
	key    types.FieldValue // the raw message or status key; nil when missing
	bucket int              // -1 without a histogram
}

// cand is a candidate for a message's earliest examples: the earliest
// occurrence t of a raw message, and how many occurrences share its entry.
type cand struct {
	t     time.Time
	raw   string
	count int64
	e     *entry // nil for a fetched document: a single exact occurrence
}

func candLess(a, b cand) bool {
	if !a.t.Equal(b.t) {
		return a.t.Before(b.t)
	}
	return a.raw < b.raw
}

// sigParts remembers which documents make up one masked message, so that
// Scope can select them again: raw keys per level, fetched documents by id,
// and whether the errors past the fetch bound belong to it.
type sigParts struct {
	keys     map[int]map[types.FieldValue]struct{}
	noStatus bool
	docs     map[string][]string // index → _id
	other    bool
}

func newSigParts() *sigParts {
	return &sigParts{keys: map[int]map[types.FieldValue]struct{}{}, docs: map[string][]string{}}
}

func (p *sigParts) addKey(lvl int, key types.FieldValue) {
	if lvl < 0 && key == nil {
		p.noStatus = true
		return
	}
	ks := p.keys[lvl]
	if ks == nil {
		ks = map[types.FieldValue]struct{}{}
		p.keys[lvl] = ks
	}
	ks[key] = struct{}{}
}

type msgAcc struct {
	counts []float64
	// top are the maxExamples earliest candidates; by construction the
	// earliest maxExamples occurrences of the message lie within them.
	top []cand
	sig *sigParts
}

func (a *msgAcc) offer(c cand) {
	i := sort.Search(len(a.top), func(i int) bool { return candLess(c, a.top[i]) })
	if i >= maxExamples {
		return
	}
	if len(a.top) < maxExamples {
		a.top = append(a.top, cand{})
	}
	copy(a.top[i+1:], a.top[i:])
	a.top[i] = c
}

type svcAcc struct {
	requests, errors []float64
	msgs             map[string]*msgAcc
}

// found is what a discovery pass learnt.
type found struct {
	n        int // buckets; 0 without a histogram
	services map[string]*svcAcc
	// otherFrom is set when the fetch bound was hit: the unread documents
	// are those matching longAny from this time on.
	otherFrom time.Time
}

func (f *found) svc(name string) *svcAcc {
	sa := f.services[name]
	if sa == nil {
		sa = &svcAcc{msgs: map[string]*msgAcc{}}
		if f.n > 0 {
			sa.requests, sa.errors = make([]float64, f.n), make([]float64, f.n)
		}
		f.services[name] = sa
	}
	return sa
}

func (f *found) msg(sa *svcAcc, masked string) *msgAcc {
	ma := sa.msgs[masked]
	if ma == nil {
		ma = &msgAcc{sig: newSigParts()}
		if f.n > 0 {
			ma.counts = make([]float64, f.n)
		}
		sa.msgs[masked] = ma
	}
	return ma
}

func (m *mapping) serviceName(v types.FieldValue) string {
	if s, ok := keyText(v, m.service.kind); ok && s != "" {
		return s
	}
	return noService
}

// Traffic counts requests and errors per service and bucket, and errors per
// masked message. Requests: one composite over (service, bucket) with an
// error filter inside. Errors: one composite per message field (see the
// package comment), plus one over the status for errors without a message,
// all in the same request and paged together; the documents whose message
// cannot be aggregated come back as hits of that first request. A last
// request, when needed, finds the exact earliest examples.
func (s *Source) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	if err := checkWindow(w); err != nil {
		return nil, fmt.Errorf("elasticsearch %s: index %q: %w", s.name, s.index, err)
	}
	n := w.Len()
	if n > maxWindowBuckets {
		return nil, fmt.Errorf("elasticsearch %s: index %q: window has %d buckets, more than %d", s.name, s.index, n, maxWindowBuckets)
	}
	m, err := s.loadMapping(ctx)
	if err != nil {
		return nil, err
	}
	// A hand-built window may end inside a step; that tail is no bucket.
	f, err := s.discover(ctx, m, w.From, w.Start(n), nil, &w)
	if err != nil {
		return nil, err
	}
	if err := s.resolveExamples(ctx, m, f, w); err != nil {
		return nil, err
	}

	tr := &correlate.Traffic{Window: w, Complete: s.complete(w)}
	sigs := &signatureMap{from: w.From, to: w.To, m: m, otherFrom: f.otherFrom, services: map[string]map[string]*sigParts{}}
	for name, sa := range f.services {
		st := correlate.ServiceTraffic{Service: name, Requests: sa.requests, Errors: sa.errors}
		sm := map[string]*sigParts{}
		for masked, ma := range sa.msgs {
			st.Messages = append(st.Messages, correlate.MessageCounts{Message: masked, Counts: ma.counts, Examples: examples(ma)})
			sm[masked] = ma.sig
		}
		sort.Slice(st.Messages, func(i, j int) bool { return st.Messages[i].Message < st.Messages[j].Message })
		tr.Services = append(tr.Services, st)
		sigs.services[name] = sm
	}
	sort.Slice(tr.Services, func(i, j int) bool { return tr.Services[i].Service < tr.Services[j].Service })
	s.mu.Lock()
	s.sigs = sigs
	s.mu.Unlock()
	return tr, nil
}

// complete is the number of leading buckets that ended by now-Lag, as
// Traffic.Complete reads: 0 when all did. When none did it is 1, because 0
// would claim the opposite; the engine then has a single bucket to judge,
// which is the honest amount of settled data.
func (s *Source) complete(w correlate.Window) int {
	cutoff := s.now().Add(-s.lag)
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

// discover runs the message composites over [from, to), restricted by svcQ
// when not nil. With a window it also counts requests and buckets
// everything (Traffic); without, it only learns which raw messages mask to
// what (Scope, when Traffic's memory does not cover its range).
func (s *Source) discover(ctx context.Context, m *mapping, from, to time.Time, svcQ *types.Query, w *correlate.Window) (*found, error) {
	f := &found{services: map[string]*svcAcc{}}
	if w != nil {
		f.n = w.Len()
	}
	tf := m.time.agg
	base := and(ptr(timeRange(tf, from, to)), svcQ)
	isErr := m.isError()
	withSvc := m.service.kind.aggregatable()

	sources := func(mid ...map[string]types.CompositeAggregationSource) []map[string]types.CompositeAggregationSource {
		var out []map[string]types.CompositeAggregationSource
		if withSvc {
			out = append(out, termsOn("s", m.service.agg, true))
		}
		out = append(out, mid...)
		if w != nil {
			out = append(out, histogramOn("t", tf, *w))
		}
		return out
	}
	bucket := func(b types.CompositeBucket) int {
		if w == nil {
			return -1
		}
		return bucketOf(b.Key["t"], *w)
	}
	format := timeFormat
	firstSub := map[string]types.Aggregations{"first": {Min: &types.MinAggregation{Field: &tf, Format: &format}}}

	var comps []*composite
	if w != nil {
		comps = append(comps, &composite{
			name:    "req",
			sources: sources(),
			sub:     map[string]types.Aggregations{"e": {Filter: &isErr}},
			each: func(b types.CompositeBucket) error {
				i := bucket(b)
				if i < 0 {
					return nil
				}
				sa := f.svc(m.serviceName(b.Key["s"]))
				sa.requests[i] += float64(b.DocCount)
				sa.errors[i] += float64(subCount(b.Aggregations, "e"))
				return nil
			},
		})
	}
	addEntry := func(e entry, raw string, b types.CompositeBucket) {
		sa := f.svc(m.serviceName(e.svcKey))
		ma := f.msg(sa, template.Truncate(template.Mask(raw)))
		if ma.counts != nil && e.bucket >= 0 {
			ma.counts[e.bucket] += float64(b.DocCount)
		}
		ma.sig.addKey(e.lvl, e.key)
		if w != nil {
			ma.offer(cand{t: subMin(b.Aggregations, "first"), raw: raw, count: b.DocCount, e: &e})
		}
	}
	for i, l := range m.levels {
		if l.has == nil {
			continue
		}
		lvl, lk := i, l.f.kind
		comps = append(comps, &composite{
			name:    "m" + strconv.Itoa(i),
			filter:  ptr(and(&isErr, m.notBefore(i), l.has)),
			sources: sources(termsOn("v", l.f.agg, false)),
			sub:     firstSub,
			each: func(b types.CompositeBucket) error {
				raw, ok := keyText(b.Key["v"], lk)
				if !ok {
					return nil
				}
				addEntry(entry{svcKey: b.Key["s"], lvl: lvl, key: b.Key["v"], bucket: bucket(b)}, raw, b)
				return nil
			},
		})
	}
	var stSrc []map[string]types.CompositeAggregationSource
	if m.status.kind.aggregatable() {
		stSrc = append(stSrc, termsOn("st", m.status.agg, true))
	}
	comps = append(comps, &composite{
		name:    "fb",
		filter:  ptr(and(&isErr, m.noMessage())),
		sources: sources(stSrc...),
		sub:     firstSub,
		each: func(b types.CompositeBucket) error {
			key := b.Key["st"]
			addEntry(entry{svcKey: b.Key["s"], lvl: -1, key: key, bucket: bucket(b)}, fallbackMessage(statusOfKey(key)), b)
			return nil
		},
	})

	// Documents whose message cannot be aggregated ride along as hits of
	// the first page: post_filter narrows the hits, not the aggregations.
	long := m.longAny()
	var first func(*search.Request)
	var onFirst func(*search.Response) error
	if long != nil {
		first = func(req *search.Request) {
			size := maxFetch
			req.PostFilter = ptr(and(&isErr, long))
			req.Size = &size
			req.Sort = byTime(tf)
			req.TrackTotalHits = true
			req.Source_ = types.SourceFilter{Includes: s.sourceFields()}
		}
		onFirst = func(res *search.Response) error {
			return s.readFetched(m, f, res, w)
		}
	}
	if err := s.pages(ctx, "count errors", base, comps, first, onFirst); err != nil {
		return nil, err
	}
	if !f.otherFrom.IsZero() && w != nil {
		// Past the fetch bound: count the rest per service and bucket.
		tq := timeFrom(tf, f.otherFrom)
		other := &composite{
			name:    "o",
			filter:  ptr(and(&isErr, long, &tq)),
			sources: sources(),
			each: func(b types.CompositeBucket) error {
				sa := f.svc(m.serviceName(b.Key["s"]))
				ma := f.msg(sa, otherMessage)
				ma.sig.other = true
				if i := bucket(b); i >= 0 {
					ma.counts[i] += float64(b.DocCount)
				}
				return nil
			},
		}
		if err := s.pages(ctx, "count unreadable errors", base, []*composite{other}, nil, nil); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// sourceFields are the _source fields read from fetched documents.
func (s *Source) sourceFields() []string {
	f := s.fields
	out := []string{f.Time, f.Service, f.Status, f.Host, f.Customer, f.Site, f.Version}
	out = append(out, f.Message...)
	var keep []string
	for _, x := range out {
		if x != "" {
			keep = append(keep, x)
		}
	}
	return keep
}

// readFetched masks the messages of the fetched documents. When more exist
// than were fetched, the last fetched instant is where "<other>" begins:
// every document before it was fetched (they come sorted by time), and the
// fetched ones at that very instant are left to "<other>" so that no
// document counts twice or not at all.
func (s *Source) readFetched(m *mapping, f *found, res *search.Response, w *correlate.Window) error {
	hits := res.Hits.Hits
	var total int64
	if res.Hits.Total != nil {
		total = res.Hits.Total.Value
	}
	if total > int64(len(hits)) && len(hits) > 0 {
		t, ok := hitTime(hits[len(hits)-1])
		if !ok {
			return fmt.Errorf("elasticsearch %s: index %q: a fetched document has no %s", s.name, s.index, s.fields.Time)
		}
		f.otherFrom = t
		s.log.Warn("elasticsearch: too many error messages that cannot be aggregated; the rest count as "+otherMessage,
			"index", s.index, "fetched", len(hits), "total", total, "from", t)
	}
	for _, h := range hits {
		t, ok := hitTime(h)
		if !ok {
			continue
		}
		if !f.otherFrom.IsZero() && !t.Before(f.otherFrom) {
			continue
		}
		d, err := decodeSource(h.Source_)
		if err != nil {
			return fmt.Errorf("elasticsearch %s: index %q: document %s: %w", s.name, s.index, deref(h.Id_), err)
		}
		svc := d.text(s.fields.Service)
		if svc == "" {
			svc = noService
		}
		raw := d.message(s.fields.Message, s.fields.Status)
		sa := f.svc(svc)
		ma := f.msg(sa, template.Truncate(template.Mask(raw)))
		ma.sig.docs[h.Index_] = append(ma.sig.docs[h.Index_], deref(h.Id_))
		if w != nil {
			if i := w.Index(t); i >= 0 && i < len(ma.counts) {
				ma.counts[i]++
			}
			ma.offer(cand{t: t, raw: raw, count: 1})
		}
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func timeFrom(field string, from time.Time) types.Query {
	f, format := fmtTime(from), timeFormat
	return types.Query{Range: map[string]types.RangeQuery{field: types.DateRangeQuery{Gte: &f, Format: &format}}}
}

// maxLookups bounds the filter aggregations of one examples request.
const maxLookups = 500

// resolveExamples makes examples exact. The earliest maxExamples
// occurrences of a message lie within its maxExamples earliest candidates
// (each candidate's first occurrence is known from its min), but a
// candidate counting several documents hides the times of its later ones;
// those are asked for with a top_hits per candidate, all in one request.
func (s *Source) resolveExamples(ctx context.Context, m *mapping, f *found, w correlate.Window) error {
	type job struct {
		c     *cand
		times []time.Time
	}
	var jobs []*job
	for _, sa := range f.services {
		for _, ma := range sa.msgs {
			for i := range ma.top {
				if c := &ma.top[i]; c.e != nil && c.count > 1 {
					jobs = append(jobs, &job{c: c})
				}
			}
		}
	}
	tf := m.time.agg
	isErr := m.isError()
	for start := 0; start < len(jobs); start += maxLookups {
		batch := jobs[start:min(start+maxLookups, len(jobs))]
		req := newSearch()
		req.Query = ptr(timeRange(tf, w.From, w.Start(w.Len())))
		req.Aggregations = map[string]types.Aggregations{}
		for k, j := range batch {
			e := j.c.e
			size := int(min(j.c.count, maxExamples))
			bs := w.Start(e.bucket)
			q := and(&isErr, m.serviceKey(e.svcKey), m.entryQuery(e), ptr(timeRange(tf, bs, bs.Add(w.Step))))
			req.Aggregations["x"+strconv.Itoa(k)] = types.Aggregations{
				Filter: &q,
				Aggregations: map[string]types.Aggregations{"h": {TopHits: &types.TopHitsAggregation{
					Size: &size, Sort: byTime(tf), Source_: false,
				}}},
			}
		}
		res, err := s.search(ctx, "find earliest examples", req)
		if err != nil {
			return err
		}
		for k, j := range batch {
			for _, h := range subHits(res.Aggregations, "x"+strconv.Itoa(k), "h") {
				if t, ok := hitTime(h); ok {
					j.times = append(j.times, t)
				}
			}
		}
	}
	resolved := make(map[*cand][]time.Time, len(jobs))
	for _, j := range jobs {
		resolved[j.c] = j.times
	}
	for _, sa := range f.services {
		for _, ma := range sa.msgs {
			var occ []cand
			for i := range ma.top {
				c := &ma.top[i]
				if ts, ok := resolved[c]; ok && len(ts) > 0 {
					for _, t := range ts {
						occ = append(occ, cand{t: t, raw: c.raw})
					}
					continue
				}
				occ = append(occ, cand{t: c.t, raw: c.raw})
			}
			sort.SliceStable(occ, func(a, b int) bool { return candLess(occ[a], occ[b]) })
			ma.top = occ[:min(len(occ), maxExamples)]
		}
	}
	return nil
}

func examples(ma *msgAcc) []string {
	if len(ma.top) == 0 {
		return nil
	}
	out := make([]string, len(ma.top))
	for i, c := range ma.top {
		out[i] = template.Truncate(c.raw)
	}
	return out
}

// serviceKey matches one raw service key: nil is a missing service.
func (m *mapping) serviceKey(v types.FieldValue) *types.Query {
	if !m.service.kind.aggregatable() {
		return nil
	}
	if v == nil {
		return ptr(not(exists(m.service.agg)))
	}
	return ptr(term(m.service.agg, v))
}

// entryQuery matches the errors of one raw key at its level.
func (m *mapping) entryQuery(e *entry) *types.Query {
	if e.lvl >= 0 {
		l := m.levels[e.lvl]
		return ptr(and(m.notBefore(e.lvl), l.has, ptr(term(l.f.agg, e.key))))
	}
	var st *types.Query
	if m.status.kind.aggregatable() {
		if e.key == nil {
			st = ptr(not(exists(m.status.agg)))
		} else {
			st = ptr(term(m.status.agg, e.key))
		}
	}
	return ptr(and(m.noMessage(), st))
}
