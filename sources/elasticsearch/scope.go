package elasticsearch

import (
	"context"
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

// signatureMap is what the last Traffic learnt about raw messages: per
// service and masked message, the documents that make it up. Scope needs it
// because masking happens here, not in Elasticsearch: a signature can only
// be selected by the raw values that masked to it.
type signatureMap struct {
	from, to time.Time
	// settled ends the buckets that had ended by now-Lag at the read: an
	// older map is trusted up to there only, since documents may still
	// have arrived after it.
	settled   time.Time
	m         *mapping
	otherFrom time.Time
	services  map[string]map[string]*sigParts
}

// scopeDim is one ScopeFields dimension and the field that carries it.
type scopeDim struct {
	name string
	f    field
}

func (m *mapping) scopeDims() []scopeDim {
	byName := map[string]field{
		correlate.FieldCustomer: m.customer, correlate.FieldSite: m.site, correlate.FieldHost: m.host,
		correlate.FieldProvider: m.provider, correlate.FieldRegion: m.region,
		correlate.FieldVersion: m.version, correlate.FieldPath: m.path,
	}
	var out []scopeDim
	for _, name := range correlate.ScopeFields {
		if f, ok := byName[name]; ok {
			out = append(out, scopeDim{name, f})
		}
	}
	return out
}

// scopeFields is scopeDims by name, for the conditions of explanations.
func (m *mapping) scopeFields() map[string]field {
	byName := map[string]field{}
	for _, d := range m.scopeDims() {
		byName[d.name] = d.f
	}
	return byName
}

// Scope breaks one signature's errors down, in three searches, each with
// a query that selects only the documents it counts:
//   - the signature's errors, per value of each dimension and a few samples
//     in [From, To), per host and bucket in the window;
//   - the service's requests in [From, To), per value of each dimension;
//   - the service's requests in the window, per host and bucket.
//
// When [From, To) is the window's only bucket, as an incremental
// evaluation asks for its new bucket, the per-host series are the host
// dimension's counts and the third search is not needed.
//
// Counts per value come from terms aggregations, which are several times
// cheaper than composite ones for the few hundred values a dimension
// usually has; a terms answer that reports documents outside its buckets
// (more values than it may return) is redone with a paged composite, so
// every count stays exact. Further requests happen only for that, to page
// through large composites, or, when the last Traffic calls did not cover
// the range, to learn the signature's raw messages first.
func (s *Source) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	sc := &correlate.Scope{
		Errors:       map[string]map[string]float64{},
		Requests:     map[string]map[string]float64{},
		HostErrors:   map[string][]float64{},
		HostRequests: map[string][]float64{},
	}
	for _, f := range correlate.ScopeFields {
		sc.Errors[f] = map[string]float64{}
		sc.Requests[f] = map[string]float64{}
	}
	hasRange := !q.From.IsZero() && !q.To.IsZero() && q.To.After(q.From)
	nw := q.Window.Len()
	if !hasRange && nw <= 0 {
		return sc, nil
	}
	if nw > 0 {
		if err := checkWindow(q.Window); err != nil {
			return nil, fmt.Errorf("elasticsearch %s: index %q: %w", s.name, s.index, err)
		}
	}
	lo, hi := q.Window.From, q.Window.To
	switch {
	case nw <= 0:
		lo, hi = q.From, q.To
	case hasRange:
		lo, hi = minTime(lo, q.From), maxTime(hi, q.To)
	}
	m, sig, err := s.signature(ctx, q, lo, hi)
	if err != nil {
		return nil, err
	}
	var dims []scopeDim
	for _, d := range m.scopeDims() {
		if d.f.kind == kindText {
			return nil, fmt.Errorf("elasticsearch %s: index %q: %s field %q is text without a keyword sub-field and cannot be broken down; map it as keyword", s.name, s.index, d.name, d.f.name)
		}
		if d.f.kind.aggregatable() {
			dims = append(dims, d)
		}
	}

	tf := m.time.agg
	isErr := m.isError()
	svc := m.serviceIs(q.Service)
	var inRange, inWindow *types.Query
	var spans []types.Query
	if hasRange {
		inRange = ptr(timeRange(tf, q.From, q.To))
		spans = append(spans, *inRange)
	}
	if nw > 0 {
		inWindow = ptr(timeRange(tf, q.Window.From, q.Window.To))
		spans = append(spans, *inWindow)
	}
	hosts := nw > 0 && m.host.kind.aggregatable()
	hostSeries := func(name string, filter *types.Query, into map[string][]float64) *composite {
		hk := m.host.kind
		return &composite{
			name:    name,
			filter:  filter,
			sources: []map[string]types.CompositeAggregationSource{termsOn("h", m.host.agg, false), histogramOn("t", tf, q.Window)},
			each: func(b types.CompositeBucket) error {
				h, ok := keyText(b.Key["h"], hk)
				i := bucketOf(b.Key["t"], q.Window)
				if !ok || h == "" || i < 0 {
					return nil
				}
				series := into[h]
				if series == nil {
					series = make([]float64, nw)
					into[h] = series
				}
				series[i] += float64(b.DocCount)
				return nil
			},
		}
	}
	op := "scope " + q.Service
	// A range that is the window's one bucket (an incremental evaluation's
	// new bucket): the per-host series are the host dimension's counts, so
	// neither search needs a composite over (host, bucket) as well.
	hostsByValue := hosts && hasRange && nw == 1 && q.From.Equal(q.Window.From) && q.To.Equal(q.Window.To) &&
		slices.ContainsFunc(dims, func(d scopeDim) bool { return d.name == correlate.FieldHost })

	var comps []*composite
	if hosts && !hostsByValue {
		comps = append(comps, hostSeries("h", inWindow, sc.HostErrors))
	}
	var bdims []scopeDim
	var extra func(*search.Request)
	var onExtra func(map[string]types.Aggregate) error
	if hasRange {
		bdims = dims
		extra = func(req *search.Request) {
			size := maxSamples
			req.Aggregations["smp"] = types.Aggregations{
				Filter: inRange,
				Aggregations: map[string]types.Aggregations{"h": {TopHits: &types.TopHitsAggregation{
					Size: &size, Sort: byTime(tf), Source_: types.SourceFilter{Includes: s.sourceFields()},
				}}},
			}
		}
		onExtra = func(aggs map[string]types.Aggregate) error {
			for _, h := range subHits(aggs, "smp", "h") {
				t, ok := hitTime(h)
				if !ok {
					continue
				}
				d, err := decodeSource(h.Source_)
				if err != nil {
					return fmt.Errorf("elasticsearch %s: index %q: document %s: %w", s.name, s.index, deref(h.Id_), err)
				}
				f := s.fields
				sc.Samples = append(sc.Samples, correlate.Sample{
					Time: t, Host: d.text(f.Host), Customer: d.text(f.Customer), Site: d.text(f.Site),
					Version: d.text(f.Version), Message: template.Truncate(d.message(f.Message, f.Status)),
				})
			}
			sort.SliceStable(sc.Samples, func(i, j int) bool { return sc.Samples[i].Time.Before(sc.Samples[j].Time) })
			return nil
		}
	}
	// The signature's query, thousands of raw messages for a masked one,
	// is sent and evaluated once, as the query; filters split it by time.
	errQ := and(&svc, &isErr, &sig, ptr(or(spans...)))
	if err := s.breakdown(ctx, op+": errors", errQ, inRange, bdims, sc.Errors, comps, extra, onExtra); err != nil {
		return nil, err
	}
	// Requests after errors, as in Traffic: documents arriving in between
	// can only add requests, never errors the requests lack.
	if hasRange && len(dims) > 0 {
		if err := s.breakdown(ctx, op+": requests by value", and(&svc, inRange), nil, dims, sc.Requests, nil, nil, nil); err != nil {
			return nil, err
		}
		s.keepShares(q.Service, sc.Requests)
	}
	switch {
	case hostsByValue:
		for h, n := range sc.Errors[correlate.FieldHost] {
			sc.HostErrors[h] = []float64{n}
		}
		for h, n := range sc.Requests[correlate.FieldHost] {
			sc.HostRequests[h] = []float64{n}
		}
	case hosts:
		hr := hostSeries("h", nil, sc.HostRequests)
		if err := s.pages(ctx, op+": requests by host", and(&svc, inWindow), []*composite{hr}, nil, nil); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// maxTermsBuckets is how many buckets the terms aggregations of one
// breakdown may return together; like maxBucketsPerPage it keeps a
// response under search.max_buckets.
const maxTermsBuckets = maxBucketsPerPage

// breakdown counts the documents of query, narrowed by filter when not nil,
// per value of each dimension into into[d.name]: one terms aggregation per
// dimension in the first request, alongside comps (paged) and whatever
// extra adds (read by onExtra from the first response's aggregations).
//
// A dimension whose terms answer is not exact is counted again with a
// paged composite, and remembered as wide: later calls count it with a
// composite straight away, so that a field with many values (paths with
// ids in them) does not cost a terms aggregation, and the global ordinals
// it builds, at every run only to be redone.
func (s *Source) breakdown(ctx context.Context, op string, query types.Query, filter *types.Query, dims []scopeDim,
	into map[string]map[string]float64, comps []*composite, extra func(*search.Request), onExtra func(map[string]types.Aggregate) error) error {
	byValue := func(name string, d scopeDim) *composite {
		kd, m := d.f.kind, into[d.name]
		return &composite{
			name: name, filter: filter,
			sources: []map[string]types.CompositeAggregationSource{termsOn("v", d.f.agg, false)},
			each: func(b types.CompositeBucket) error {
				if v, ok := keyText(b.Key["v"], kd); ok && v != "" {
					m[v] += float64(b.DocCount)
				}
				return nil
			},
		}
	}
	all := slices.Clone(comps)
	var narrow []scopeDim
	s.mu.Lock()
	for i, d := range dims {
		if s.wide[d.f.agg] {
			all = append(all, byValue("v"+strconv.Itoa(i), d))
		} else {
			narrow = append(narrow, d)
		}
	}
	s.mu.Unlock()
	if len(narrow) == 0 && len(all) == 0 && extra == nil {
		return nil
	}
	size := max(s.termsBuckets/max(len(narrow), 1), 1)
	terms := map[string]types.Aggregations{}
	for i, d := range narrow {
		field := d.f.agg
		terms["d"+strconv.Itoa(i)] = types.Aggregations{Terms: &types.TermsAggregation{Field: &field, Size: &size}}
	}
	var redo []scopeDim
	first := func(req *search.Request) {
		if len(terms) > 0 {
			if filter != nil {
				req.Aggregations["bd"] = types.Aggregations{Filter: filter, Aggregations: terms}
			} else {
				maps.Copy(req.Aggregations, terms)
			}
		}
		if extra != nil {
			extra(req)
		}
	}
	onFirst := func(res *search.Response) error {
		aggs := res.Aggregations
		if filter != nil {
			if f, ok := aggs["bd"].(*types.FilterAggregate); ok {
				aggs = f.Aggregations
			} else {
				aggs = nil
			}
		}
		for i, d := range narrow {
			if !countTerms(aggs["d"+strconv.Itoa(i)], d.f.kind, into[d.name]) {
				redo = append(redo, d)
			}
		}
		if onExtra != nil {
			return onExtra(res.Aggregations)
		}
		return nil
	}
	if err := s.pages(ctx, op, query, all, first, onFirst); err != nil {
		return err
	}
	if len(redo) == 0 {
		return nil
	}
	again := make([]*composite, 0, len(redo))
	s.mu.Lock()
	if s.wide == nil {
		s.wide = map[string]bool{}
	}
	for i, d := range redo {
		s.wide[d.f.agg] = true
		again = append(again, byValue("v"+strconv.Itoa(i), d))
	}
	s.mu.Unlock()
	return s.pages(ctx, op+" (many values)", query, again, nil, nil)
}

// countTerms adds a terms answer's buckets to into, keyed as a composite
// key of the same field would be rendered, and reports whether the answer
// was exact: every document counted in a returned bucket. It is false, and
// into untouched, for an answer it does not know.
func countTerms(a types.Aggregate, k kind, into map[string]float64) bool {
	return eachTerm(a, func(key types.FieldValue, n int64) {
		if v, ok := keyText(key, k); ok && v != "" {
			into[v] += float64(n)
		}
	})
}

// eachTerm calls fn with each bucket of a terms answer and reports whether
// the answer was exact (see countTerms); fn is not called for one that is
// not.
func eachTerm(a types.Aggregate, fn func(key types.FieldValue, n int64)) bool {
	exact := func(other, errBound *int64) bool {
		return other != nil && *other == 0 && (errBound == nil || *errBound == 0)
	}
	switch t := a.(type) {
	case *types.StringTermsAggregate:
		bs, ok := t.Buckets.([]types.StringTermsBucket)
		if !ok || !exact(t.SumOtherDocCount, t.DocCountErrorUpperBound) {
			return false
		}
		for _, b := range bs {
			fn(b.Key, b.DocCount)
		}
	case *types.LongTermsAggregate:
		bs, ok := t.Buckets.([]types.LongTermsBucket)
		if !ok || !exact(t.SumOtherDocCount, t.DocCountErrorUpperBound) {
			return false
		}
		for _, b := range bs {
			fn(float64(b.Key), b.DocCount)
		}
	case *types.DoubleTermsAggregate:
		bs, ok := t.Buckets.([]types.DoubleTermsBucket)
		if !ok || !exact(t.SumOtherDocCount, t.DocCountErrorUpperBound) {
			return false
		}
		for _, b := range bs {
			fn(float64(b.Key), b.DocCount)
		}
	case *types.UnmappedTermsAggregate:
		// No matched index maps the field: no document has a value.
		return exact(t.SumOtherDocCount, t.DocCountErrorUpperBound)
	default:
		return false
	}
	return true
}

// signature is the query selecting q's errors, with the mapping it was
// built for. The Traffic calls' memory is used when it covers [lo, hi):
// the last call's, or several calls' together (remembered); otherwise the
// service's raw messages in that range are discovered anew, a search over
// the range's errors.
func (s *Source) signature(ctx context.Context, q correlate.ScopeQuery, lo, hi time.Time) (*mapping, types.Query, error) {
	var parts []*sigParts
	var otherFrom time.Time
	m, kept := s.remembered(lo, hi)
	if m != nil {
		otherFrom = kept[0].otherFrom
		for _, sm := range kept {
			for _, msg := range q.Messages {
				if p := sm.services[q.Service][msg]; p != nil {
					parts = append(parts, p)
				}
			}
		}
	} else {
		var err error
		if m, err = s.currentMapping(ctx); err != nil {
			return nil, types.Query{}, err
		}
		svc := m.serviceIs(q.Service)
		f, err := s.discover(ctx, m, lo, hi, &svc, nil)
		if err != nil {
			return nil, types.Query{}, err
		}
		otherFrom = f.otherFrom
		if sa := f.services[q.Service]; sa != nil {
			for _, msg := range q.Messages {
				if ma := sa.msgs[msg]; ma != nil {
					parts = append(parts, ma.sig)
				}
			}
		}
		for _, msg := range q.Messages {
			if msg == otherMessage && !otherFrom.IsZero() {
				p := newSigParts()
				p.other = true
				parts = append(parts, p)
			}
		}
	}
	return m, m.sigQuery(parts, otherFrom), nil
}

// remembered is the kept signature maps that cover [lo, hi) together, and
// their mapping; none when they do not. The last Traffic's map covers its
// whole window, as the Scope right after it needs; an older one only its
// settled buckets. Masking is a function of the raw message alone, so
// raw messages learnt over different ranges add up: a raw message seen
// elsewhere that does not occur in [lo, hi) selects no document there.
// Maps are combined only when they share the mapping and none hit the
// fetch bound (otherFrom), whose "<other>" depends on each read's range.
func (s *Source) remembered(lo, hi time.Time) (*mapping, []*signatureMap) {
	s.mu.Lock()
	kept := slices.Clone(s.sigs)
	s.mu.Unlock()
	if len(kept) == 0 {
		return nil, nil
	}
	last := kept[len(kept)-1]
	if !lo.Before(last.from) && !hi.After(last.to) {
		return last.m, []*signatureMap{last}
	}
	if !last.otherFrom.IsZero() {
		return nil, nil
	}
	type span struct {
		from, to time.Time
		sm       *signatureMap
	}
	var spans []span
	for i, sm := range kept {
		to := sm.settled
		if i == len(kept)-1 {
			to = sm.to
		}
		if sm.m != last.m || !sm.otherFrom.IsZero() || !to.After(lo) || !sm.from.Before(hi) || !to.After(sm.from) {
			continue
		}
		spans = append(spans, span{sm.from, to, sm})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	at := lo
	var used []*signatureMap
	for _, sp := range spans {
		if !at.Before(hi) {
			break
		}
		if sp.from.After(at) {
			return nil, nil // a gap no map covers
		}
		if sp.to.After(at) {
			at = sp.to
		}
		used = append(used, sp.sm)
	}
	if at.Before(hi) {
		return nil, nil
	}
	return last.m, used
}

// sigQuery matches the documents of the given parts (error-ness and service
// are for the caller to add).
func (m *mapping) sigQuery(parts []*sigParts, otherFrom time.Time) types.Query {
	keys := map[int]map[types.FieldValue]struct{}{}
	noStatus, other := false, false
	docs := map[string]map[string]struct{}{}
	for _, p := range parts {
		for lvl, ks := range p.keys {
			if keys[lvl] == nil {
				keys[lvl] = map[types.FieldValue]struct{}{}
			}
			for k := range ks {
				keys[lvl][k] = struct{}{}
			}
		}
		noStatus = noStatus || p.noStatus
		other = other || p.other
		for ix, ids := range p.docs {
			if docs[ix] == nil {
				docs[ix] = map[string]struct{}{}
			}
			for _, id := range ids {
				docs[ix][id] = struct{}{}
			}
		}
	}
	var qs []types.Query
	lvls := make([]int, 0, len(keys))
	for lvl := range keys {
		lvls = append(lvls, lvl)
	}
	sort.Ints(lvls)
	for _, lvl := range lvls {
		vs := sortedKeys(keys[lvl])
		if lvl >= 0 {
			l := m.levels[lvl]
			qs = append(qs, and(m.notBefore(lvl), l.has, ptr(termsChunked(l.f.agg, vs))))
			continue
		}
		if m.status.kind.aggregatable() {
			qs = append(qs, and(m.noMessage(), ptr(termsChunked(m.status.agg, vs))))
		}
	}
	if noStatus {
		var st *types.Query
		if m.status.kind.aggregatable() {
			st = ptr(not(exists(m.status.agg)))
		}
		qs = append(qs, and(m.noMessage(), st))
	}
	ixs := make([]string, 0, len(docs))
	for ix := range docs {
		ixs = append(ixs, ix)
	}
	sort.Strings(ixs)
	for _, ix := range ixs {
		idl := make([]string, 0, len(docs[ix]))
		for id := range docs[ix] {
			idl = append(idl, id)
		}
		sort.Strings(idl)
		qs = append(qs, and(ptr(term("_index", ix)), ptr(ids(idl))))
	}
	if other && !otherFrom.IsZero() {
		tq := timeFrom(m.time.agg, otherFrom)
		qs = append(qs, and(m.longAny(), &tq))
	}
	return or(qs...)
}

// sortedKeys orders keys so that identical signatures give identical
// request bodies (easier to read in logs and cached by the cluster).
func sortedKeys(ks map[types.FieldValue]struct{}) []types.FieldValue {
	out := make([]types.FieldValue, 0, len(ks))
	for k := range ks {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
