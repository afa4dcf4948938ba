package elasticsearch

import (
	"context"
	"fmt"
	"github.com/culprithq/culprit/correlate/template"
	"sort"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
)

// signatureMap is what the last Traffic learnt about raw messages: per
// service and masked message, the documents that make it up. Scope needs it
// because masking happens here, not in Elasticsearch: a signature can only
// be selected by the raw values that masked to it.
type signatureMap struct {
	from, to  time.Time
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

// Scope breaks one signature's errors down. One search answers it: per
// dimension, a composite over the values of all the service's requests and
// one over the signature's errors, both in [From, To); a composite over
// (host, bucket) in the window with the signature's errors inside; and a
// top_hits for the samples. Further requests happen only to page through
// large composites, or, when the last Traffic did not cover the range, to
// learn the signature's raw messages first.
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
	dims := m.scopeDims()
	for _, d := range dims {
		if d.f.kind == kindText {
			return nil, fmt.Errorf("elasticsearch %s: index %q: %s field %q is text without a keyword sub-field and cannot be broken down; map it as keyword", s.name, s.index, d.name, d.f.name)
		}
	}

	tf := m.time.agg
	isErr := m.isError()
	match := and(&isErr, &sig)
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
	query := and(&svc, ptr(or(spans...)))

	var comps []*composite
	if hasRange {
		for i, d := range dims {
			if !d.f.kind.aggregatable() {
				continue
			}
			name, kd := d.name, d.f.kind
			count := func(into map[string]float64) func(types.CompositeBucket) error {
				return func(b types.CompositeBucket) error {
					if v, ok := keyText(b.Key["v"], kd); ok && v != "" {
						into[v] += float64(b.DocCount)
					}
					return nil
				}
			}
			comps = append(comps,
				&composite{name: "r" + strconv.Itoa(i), filter: inRange, sources: []map[string]types.CompositeAggregationSource{termsOn("v", d.f.agg, false)}, each: count(sc.Requests[name])},
				&composite{name: "e" + strconv.Itoa(i), filter: ptr(and(inRange, &match)), sources: []map[string]types.CompositeAggregationSource{termsOn("v", d.f.agg, false)}, each: count(sc.Errors[name])},
			)
		}
	}
	if nw > 0 && m.host.kind.aggregatable() {
		hk := m.host.kind
		comps = append(comps, &composite{
			name:    "h",
			filter:  inWindow,
			sources: []map[string]types.CompositeAggregationSource{termsOn("h", m.host.agg, false), histogramOn("t", tf, q.Window)},
			sub:     map[string]types.Aggregations{"e": {Filter: &match}},
			each: func(b types.CompositeBucket) error {
				h, ok := keyText(b.Key["h"], hk)
				i := bucketOf(b.Key["t"], q.Window)
				if !ok || h == "" || i < 0 {
					return nil
				}
				hr := sc.HostRequests[h]
				if hr == nil {
					hr = make([]float64, nw)
					sc.HostRequests[h] = hr
				}
				hr[i] += float64(b.DocCount)
				if e := subCount(b.Aggregations, "e"); e > 0 {
					he := sc.HostErrors[h]
					if he == nil {
						he = make([]float64, nw)
						sc.HostErrors[h] = he
					}
					he[i] += float64(e)
				}
				return nil
			},
		})
	}
	var first func(*search.Request)
	var onFirst func(*search.Response) error
	if hasRange {
		first = func(req *search.Request) {
			size := maxSamples
			req.Aggregations["smp"] = types.Aggregations{
				Filter: ptr(and(inRange, &match)),
				Aggregations: map[string]types.Aggregations{"h": {TopHits: &types.TopHitsAggregation{
					Size: &size, Sort: byTime(tf), Source_: types.SourceFilter{Includes: s.sourceFields()},
				}}},
			}
		}
		onFirst = func(res *search.Response) error {
			for _, h := range subHits(res.Aggregations, "smp", "h") {
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
	if err := s.pages(ctx, "scope "+q.Service, query, comps, first, onFirst); err != nil {
		return nil, err
	}
	return sc, nil
}

// signature is the query selecting q's errors, with the mapping it was
// built for. The last Traffic's memory is used when it covers [lo, hi);
// otherwise the service's raw messages in that range are discovered anew.
func (s *Source) signature(ctx context.Context, q correlate.ScopeQuery, lo, hi time.Time) (*mapping, types.Query, error) {
	s.mu.Lock()
	sm := s.sigs
	s.mu.Unlock()
	var parts []*sigParts
	var otherFrom time.Time
	var m *mapping
	if sm != nil && !lo.Before(sm.from) && !hi.After(sm.to) {
		m, otherFrom = sm.m, sm.otherFrom
		for _, msg := range q.Messages {
			if p := sm.services[q.Service][msg]; p != nil {
				parts = append(parts, p)
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
