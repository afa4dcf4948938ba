package elasticsearch

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
)

var _ correlate.ConjunctionCounter = (*Source)(nil)

// maxConjunctionsPerSearch bounds the filters of one search: each
// conjunction costs two buckets in each of the two spans, well under
// search.max_buckets, and a query the cluster parses in milliseconds.
const maxConjunctionsPerSearch = 256

// CountConjunctions counts, per conjunction, the signature's errors and
// the service's requests before and during the episode with a filters
// aggregation: one bucket per conjunction (a bool of term queries, and a
// prefix query for a templated path) under a filter per span, each with a
// filter sub-aggregation for the errors. The cost is bounded by the
// number of conjunctions the correlator asks for, not by the cardinality
// of the fields: paths with ids in them cost no more than a provider. A
// condition on a field the index does not map matches nothing.
func (s *Source) CountConjunctions(ctx context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	out := make([]correlate.ConjunctionCount, len(q.Conjunctions))
	before := q.Before
	if before.IsZero() || before.After(q.From) {
		before = q.From
	}
	if len(q.Conjunctions) == 0 || !q.To.After(before) {
		return out, nil
	}
	m, sig, err := s.signature(ctx, correlate.ScopeQuery{Service: q.Service, Messages: q.Messages}, before, q.To)
	if err != nil {
		return nil, err
	}
	byName := map[string]field{}
	for _, d := range m.scopeDims() {
		byName[d.name] = d.f
	}
	tf := m.time.agg
	isErr, svc := m.isError(), m.serviceIs(q.Service)
	errQ := and(&isErr, &sig)
	spans := map[string]types.Query{"in": timeRange(tf, q.From, q.To)}
	if before.Before(q.From) {
		spans["pre"] = timeRange(tf, before, q.From)
	}
	op := "scope explanation " + q.Service
	for lo := 0; lo < len(q.Conjunctions); lo += maxConjunctionsPerSearch {
		hi := min(lo+maxConjunctionsPerSearch, len(q.Conjunctions))
		filters := map[string]types.Query{}
		for i := lo; i < hi; i++ {
			filters[strconv.Itoa(i)] = conjunctionQuery(byName, q.Conjunctions[i])
		}
		req := newSearch()
		req.Query = ptr(and(&svc, ptr(timeRange(tf, before, q.To))))
		req.Aggregations = map[string]types.Aggregations{}
		for name, span := range spans {
			req.Aggregations[name] = types.Aggregations{
				Filter: ptr(span),
				Aggregations: map[string]types.Aggregations{"c": {
					Filters:      &types.FiltersAggregation{Filters: filters},
					Aggregations: map[string]types.Aggregations{"e": {Filter: &errQ}},
				}},
			}
		}
		res, err := s.search(ctx, op, req)
		if err != nil {
			return nil, err
		}
		for name := range spans {
			buckets, err := filterBuckets(res.Aggregations, name)
			if err != nil {
				return nil, fmt.Errorf("elasticsearch %s: %s on index %q: %w", s.name, op, s.index, err)
			}
			for key, b := range buckets {
				i, err := strconv.Atoi(key)
				if err != nil || i < lo || i >= hi {
					return nil, fmt.Errorf("elasticsearch %s: %s on index %q: unexpected bucket %q", s.name, op, s.index, key)
				}
				var errs int64
				if e, ok := b.Aggregations["e"].(*types.FilterAggregate); ok {
					errs = e.DocCount
				}
				if name == "pre" {
					out[i].RequestsBefore, out[i].ErrorsBefore = float64(b.DocCount), float64(errs)
				} else {
					out[i].Requests, out[i].Errors = float64(b.DocCount), float64(errs)
				}
			}
		}
	}
	return out, nil
}

// conjunctionQuery matches the documents meeting every condition.
func conjunctionQuery(byName map[string]field, conj []correlate.Condition) types.Query {
	qs := make([]*types.Query, 0, len(conj))
	for _, c := range conj {
		f, ok := byName[c.Field]
		switch {
		case !ok || !f.kind.aggregatable():
			qs = append(qs, ptr(matchNone()))
		case c.Prefix && f.kind == kindString:
			qs = append(qs, &types.Query{Prefix: map[string]types.PrefixQuery{f.agg: {Value: strings.TrimSuffix(c.Value, "*")}}})
		case c.Prefix:
			qs = append(qs, ptr(matchNone()))
		default:
			qs = append(qs, ptr(term(f.agg, c.Value)))
		}
	}
	return and(qs...)
}

// filterBuckets reads the keyed filters aggregation "c" under the filter
// aggregation name.
func filterBuckets(aggs map[string]types.Aggregate, name string) (map[string]types.FiltersBucket, error) {
	f, ok := aggs[name].(*types.FilterAggregate)
	if !ok {
		return nil, fmt.Errorf("response lacks aggregation %q", name)
	}
	fs, ok := f.Aggregations["c"].(*types.FiltersAggregate)
	if !ok {
		return nil, fmt.Errorf("response lacks aggregation %q", name+">c")
	}
	bs, ok := fs.Buckets.(map[string]types.FiltersBucket)
	if !ok {
		return nil, fmt.Errorf("aggregation %q has buckets of type %T, want keyed", name+">c", fs.Buckets)
	}
	return bs, nil
}
