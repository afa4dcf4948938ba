package elasticsearch

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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
// masked message. Errors: a search whose query selects the errors only, so
// that its aggregations see a few thousand documents rather than millions:
// one composite over (service, bucket), one per message field (see the
// package comment) and one over the status for errors without a message,
// all paged together; the documents whose message cannot be aggregated come
// back as hits of its first page. Errors whose message comes from a later
// field are read from doc values instead when there are few (readsLate).
// Requests: then one composite over (service, bucket) on every document of
// the window. A last request, when needed, finds the exact earliest
// examples.
func (s *Source) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	if err := checkWindow(w); err != nil {
		return nil, fmt.Errorf("elasticsearch %s: index %q: %w", s.name, s.index, err)
	}
	n := w.Len()
	if n > maxWindowBuckets {
		return nil, fmt.Errorf("elasticsearch %s: index %q: window has %d buckets, more than %d", s.name, s.index, n, maxWindowBuckets)
	}
	m, err := s.freshMapping(ctx)
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
	sigs := &signatureMap{from: w.From, to: w.To, settled: s.settled(w), m: m, otherFrom: f.otherFrom, services: map[string]map[string]*sigParts{}}
	for name, sa := range f.services {
		st := correlate.ServiceTraffic{Service: name, Requests: sa.requests, Errors: sa.errors}
		sm := map[string]*sigParts{}
		for masked, ma := range sa.msgs {
			st.Messages = append(st.Messages, correlate.MessageCounts{Message: masked, Counts: correlate.NewCounts(ma.counts), Examples: examples(ma)})
			sm[masked] = ma.sig
		}
		sort.Slice(st.Messages, func(i, j int) bool { return st.Messages[i].Message < st.Messages[j].Message })
		tr.Services = append(tr.Services, st)
		sigs.services[name] = sm
	}
	sort.Slice(tr.Services, func(i, j int) bool { return tr.Services[i].Service < tr.Services[j].Service })
	s.mu.Lock()
	s.sigs = append(s.sigs, sigs)
	if len(s.sigs) > maxSigMaps {
		s.sigs = slices.Delete(s.sigs, 0, len(s.sigs)-maxSigMaps)
	}
	s.mu.Unlock()
	return tr, nil
}

// maxSigMaps is how many Traffic calls' signature maps are kept. An
// incremental evaluation reads its new bucket, maybe a bucket again for
// its examples, and then breaks a finding down over buckets the
// evaluation before read: a few maps cover them.
const maxSigMaps = 8

// settled is the end of w's buckets that ended by now-Lag: what later
// documents should not change (complete, as an instant).
func (s *Source) settled(w correlate.Window) time.Time {
	k := s.complete(w)
	switch {
	case k == 0:
		return w.Start(w.Len())
	case k == 1 && s.now().Add(-s.lag).Before(w.Start(1)):
		return w.From // none ended: complete says 1 all the same
	}
	return w.Start(k)
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
//
// The error-ness test is the errors search's query, not a filter
// aggregation inside a search over all documents: a filter aggregation is
// tested document by document against everything the query matched, which
// over millions of requests cost more than the counting itself.
func (s *Source) discover(ctx context.Context, m *mapping, from, to time.Time, svcQ *types.Query, w *correlate.Window) (*found, error) {
	f := &found{services: map[string]*svcAcc{}}
	if w != nil {
		f.n = w.Len()
	}
	tf := m.time.agg
	base := and(ptr(timeRange(tf, from, to)), svcQ)
	isErr := m.isError()
	errs := and(&base, &isErr)
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
		// Errors per service and bucket are counted on their own rather
		// than summed from the messages below, so that they stay the
		// number of error documents whatever the messages look like (a
		// document with an array of messages counts once here).
		comps = append(comps, &composite{
			name:    "err",
			sources: sources(),
			each: func(b types.CompositeBucket) error {
				if i := bucket(b); i >= 0 {
					f.svc(m.serviceName(b.Key["s"])).errors[i] += float64(b.DocCount)
				}
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
	level := func(i int) *composite {
		lk := m.levels[i].f.kind
		return &composite{
			name:    "m" + strconv.Itoa(i),
			filter:  m.levelQuery(i),
			sources: sources(termsOn("v", m.levels[i].f.agg, false)),
			sub:     firstSub,
			each: func(b types.CompositeBucket) error {
				raw, ok := keyText(b.Key["v"], lk)
				if !ok {
					return nil
				}
				addEntry(entry{svcKey: b.Key["s"], lvl: i, key: b.Key["v"], bucket: bucket(b)}, raw, b)
				return nil
			},
		}
	}
	// Message fields after the first are counted first and read later
	// (see readLevel); late[i] is how many errors take their message
	// from level i.
	late := map[int]int64{}
	for i, l := range m.levels {
		switch {
		case l.has == nil:
		case m.readsLate(i):
			late[i] = 0
		default:
			comps = append(comps, level(i))
		}
	}
	var stSrc []map[string]types.CompositeAggregationSource
	if m.status.kind.aggregatable() {
		stSrc = append(stSrc, termsOn("st", m.status.agg, true))
	}
	comps = append(comps, &composite{
		name:    "fb",
		filter:  m.noMessage(),
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
	first := func(req *search.Request) {
		for i := range late {
			req.Aggregations["n"+strconv.Itoa(i)] = types.Aggregations{Filter: m.levelQuery(i)}
		}
		if long != nil {
			size := maxFetch
			req.PostFilter = long
			req.Size = &size
			req.Sort = byTime(tf)
			req.TrackTotalHits = true
			req.Source_ = types.SourceFilter{Includes: s.sourceFields()}
		}
	}
	onFirst := func(res *search.Response) error {
		for i := range late {
			if n, ok := res.Aggregations["n"+strconv.Itoa(i)].(*types.FilterAggregate); ok {
				late[i] = n.DocCount
			}
		}
		if long != nil {
			return s.readFetched(m, f, res, w)
		}
		return nil
	}
	if err := s.pages(ctx, "count errors", errs, comps, first, onFirst); err != nil {
		return nil, err
	}
	for _, i := range slices.Sorted(maps.Keys(late)) {
		if late[i] == 0 {
			continue
		}
		done, err := s.readLevel(ctx, m, f, w, errs, i)
		if err != nil {
			return nil, err
		}
		if !done {
			if err := s.pages(ctx, "count errors by "+m.levels[i].f.name, errs, []*composite{level(i)}, nil, nil); err != nil {
				return nil, err
			}
		}
	}
	if !f.otherFrom.IsZero() && w != nil {
		// Past the fetch bound: count the rest per service and bucket.
		tq := timeFrom(tf, f.otherFrom)
		other := &composite{
			name:    "o",
			filter:  ptr(and(long, &tq)),
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
		if err := s.pages(ctx, "count unreadable errors", errs, []*composite{other}, nil, nil); err != nil {
			return nil, err
		}
	}
	if w != nil {
		// Every request, errors included: the number the error rate is
		// taken of. Counted after the errors, so that documents arriving
		// in between can only add requests: a bucket never shows more
		// errors than requests.
		if done, err := s.requestsOfOne(ctx, m, base, w, f); err != nil || done {
			return f, err
		}
		req := &composite{
			name:    "req",
			sources: sources(),
			each: func(b types.CompositeBucket) error {
				if i := bucket(b); i >= 0 {
					f.svc(m.serviceName(b.Key["s"])).requests[i] += float64(b.DocCount)
				}
				return nil
			},
		}
		if err := s.pages(ctx, "count requests", base, []*composite{req}, nil, nil); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// requestsOfOne counts the requests of a one-bucket window (an
// incremental evaluation's new bucket, a top-up) per service with a terms
// aggregation and the documents without a service with a missing one:
// about a third of the composite's took over a bucket of 128,000
// documents, since there is no bucket key to build per document. It
// reports false, having counted nothing, when the window has more buckets,
// the service cannot be aggregated, or the terms answer is not exact (more
// services than it may return); the composite then counts them.
func (s *Source) requestsOfOne(ctx context.Context, m *mapping, base types.Query, w *correlate.Window, f *found) (bool, error) {
	if w.Len() != 1 || !m.service.kind.aggregatable() {
		return false, nil
	}
	field := m.service.agg
	size := s.termsBuckets
	counts := map[string]float64{}
	exact := false
	first := func(req *search.Request) {
		req.Aggregations["rs"] = types.Aggregations{Terms: &types.TermsAggregation{Field: &field, Size: &size}}
		req.Aggregations["rm"] = types.Aggregations{Missing: &types.MissingAggregation{Field: &field}}
	}
	onFirst := func(res *search.Response) error {
		exact = eachTerm(res.Aggregations["rs"], func(key types.FieldValue, n int64) {
			counts[m.serviceName(key)] += float64(n)
		})
		if mi, ok := res.Aggregations["rm"].(*types.MissingAggregate); ok {
			counts[noService] += float64(mi.DocCount)
		} else {
			exact = false
		}
		return nil
	}
	if err := s.pages(ctx, "count requests", base, nil, first, onFirst); err != nil || !exact {
		return false, err
	}
	for name, n := range counts {
		if n > 0 {
			f.svc(name).requests[0] += n
		}
	}
	return true, nil
}

// levelQuery matches the errors whose message comes from level i.
func (m *mapping) levelQuery(i int) *types.Query {
	return ptr(and(m.notBefore(i), m.levels[i].has))
}

// readsLate reports whether level i's messages are read by readLevel
// rather than by a composite in the first errors search.
//
// A composite over a keyword field loads the field's global ordinals: a
// table of every value of the field in the shard, rebuilt after each
// refresh. The first message field (error.message) is normally set on
// errors only, which keeps that table small; the later ones are normally
// the access-log line, which every request carries and which is nearly
// unique per request: for five million requests, a second of Elasticsearch
// time after every refresh, to read the few errors that lack the first
// field, and none at all when (as usual) no error lacks it. So they are
// counted in the first search and their documents read with doc values
// (readLevel), which costs in proportion to those errors only. Only string
// keys qualify: doc values of other kinds are formatted otherwise than
// composite keys, and they have no global ordinals to avoid.
func (m *mapping) readsLate(i int) bool {
	l := m.levels[i]
	return i > 0 && l.has != nil && l.f.kind == kindString &&
		(m.service.kind == kindString || !m.service.kind.aggregatable())
}

// readLevel reads the errors whose message comes from level i (see
// readsLate) from their doc values, at most s.levelFetch of them. It
// reports false, having counted nothing, when there are more: the caller
// then counts them with a composite.
func (s *Source) readLevel(ctx context.Context, m *mapping, f *found, w *correlate.Window, errs types.Query, i int) (bool, error) {
	l := m.levels[i]
	withSvc := m.service.kind.aggregatable()
	req := newSearch()
	size := s.levelFetch
	req.Query = ptr(and(&errs, m.levelQuery(i)))
	req.Size = &size
	req.Sort = byTime(m.time.agg)
	req.TrackTotalHits = true
	req.Source_ = false
	// No stored fields, not even _id: the fetch then reads doc values
	// only, several times faster.
	req.StoredFields = []string{"_none_"}
	req.DocvalueFields = []types.FieldAndFormat{{Field: l.f.agg}}
	if withSvc {
		req.DocvalueFields = append(req.DocvalueFields, types.FieldAndFormat{Field: m.service.agg})
	}
	res, err := s.search(ctx, "read errors by "+l.f.name, req)
	if err != nil {
		return false, err
	}
	hits := res.Hits.Hits
	if res.Hits.Total == nil || res.Hits.Total.Value > int64(len(hits)) {
		return false, nil
	}
	for _, h := range hits {
		t, ok := hitTime(h)
		if !ok {
			continue
		}
		bucket := -1
		if w != nil {
			if bucket = w.Index(t); bucket < 0 || bucket >= w.Len() {
				continue
			}
		}
		// Like a composite, a document counts once per combination of
		// its values (arrays), and once under no service without one.
		svcs := []types.FieldValue{nil}
		if vs := docValues(h, m.service.agg); withSvc && len(vs) > 0 {
			svcs = vs
		}
		for _, v := range docValues(h, l.f.agg) {
			raw, ok := keyText(v, l.f.kind)
			if !ok {
				continue
			}
			for _, sv := range svcs {
				ma := f.msg(f.svc(m.serviceName(sv)), template.Truncate(template.Mask(raw)))
				if ma.counts != nil {
					ma.counts[bucket]++
				}
				ma.sig.addKey(i, v)
				if w != nil {
					ma.offer(cand{t: t, raw: raw, count: 1})
				}
			}
		}
	}
	return true, nil
}

// docValues are a hit's doc values of one field, as JSON decodes them.
func docValues(h types.Hit, field string) []types.FieldValue {
	raw, ok := h.Fields[field]
	if !ok {
		return nil
	}
	var vs []types.FieldValue
	if err := json.Unmarshal(raw, &vs); err != nil {
		return nil
	}
	return vs
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
		// The query selects the errors once; each filter below then only
		// sees those, not every request of the window.
		req.Query = ptr(and(ptr(timeRange(tf, w.From, w.Start(w.Len()))), &isErr))
		req.Aggregations = map[string]types.Aggregations{}
		for k, j := range batch {
			e := j.c.e
			size := int(min(j.c.count, maxExamples))
			bs := w.Start(e.bucket)
			q := and(m.serviceKey(e.svcKey), m.entryQuery(e), ptr(timeRange(tf, bs, bs.Add(w.Step))))
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

// Counts is the number of documents in each bucket of w. It is what
// sources/cache asks before reading a re-checked bucket's traffic again:
// one search whose filters count documents by time alone, which
// Elasticsearch answers from the time field's index without reading any
// document's values, where Traffic's composites read the service of every
// document. A bucket whose count has not changed since it was read needs
// no second read.
func (s *Source) Counts(ctx context.Context, w correlate.Window) ([]float64, error) {
	if err := checkWindow(w); err != nil {
		return nil, fmt.Errorf("elasticsearch %s: index %q: %w", s.name, s.index, err)
	}
	n := w.Len()
	if n > maxLookups {
		return nil, fmt.Errorf("elasticsearch %s: index %q: counting %d buckets at once, more than %d", s.name, s.index, n, maxLookups)
	}
	m, err := s.currentMapping(ctx)
	if err != nil {
		return nil, err
	}
	tf := m.time.agg
	req := newSearch()
	req.Query = ptr(timeRange(tf, w.From, w.Start(n)))
	filters := make([]types.Query, n)
	for i := range n {
		filters[i] = timeRange(tf, w.Start(i), w.Start(i+1))
	}
	req.Aggregations = map[string]types.Aggregations{"c": {Filters: &types.FiltersAggregation{Filters: filters}}}
	res, err := s.search(ctx, "count documents", req)
	if err != nil {
		return nil, err
	}
	var bs []types.FiltersBucket
	if agg, ok := res.Aggregations["c"].(*types.FiltersAggregate); ok {
		bs, _ = agg.Buckets.([]types.FiltersBucket)
	}
	if len(bs) != n {
		return nil, fmt.Errorf("elasticsearch %s: index %q: count documents: unexpected answer", s.name, s.index)
	}
	out := make([]float64, n)
	for i, b := range bs {
		out[i] = float64(b.DocCount)
	}
	return out, nil
}
