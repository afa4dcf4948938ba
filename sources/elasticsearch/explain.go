package elasticsearch

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
)

var _ correlate.ConjunctionCounter = (*Source)(nil)

// maxConjunctionsPerSearch bounds the filters of one search: each
// conjunction costs two buckets in each of the two spans, well under
// search.max_buckets, and a query the cluster parses in milliseconds.
const maxConjunctionsPerSearch = 256

// CountConjunctions counts, per conjunction, the signature's errors and
// the service's requests before and during the episode. Requests are
// counted once each by the conditions they meet (countByMask): the cost
// follows the distinct conditions, a dozen or so, not the conjunctions
// made of them, which run to hundreds. A query whose conditions would
// make too many combinations to return is split into several masks
// (splitMask); only one with a conjunction too wide alone is counted
// conjunction by conjunction (countByFilters). Either way the cost is bounded by
// what the correlator asks for, not by the cardinality of the fields:
// paths with ids in them cost no more than a provider. A condition on a
// field the index does not map matches nothing.
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
	byName := m.scopeFields()
	cq := conjSearchOf(m, sig, q.Service, before, q.From, q.To)
	if b, ok := s.supportBound(q.Service, q.Conjunctions); ok && b <= restrictShare {
		any := make([]types.Query, len(q.Conjunctions))
		for i, c := range q.Conjunctions {
			any[i] = conjunctionQuery(byName, c)
		}
		cq.query = and(&cq.query, ptr(or(any...)))
	}
	if p, ok := planMask(byName, q.Conjunctions); ok {
		return s.countByMask(ctx, cq, p, out)
	}
	groups, ok := splitMask(byName, q.Conjunctions)
	if !ok {
		return s.countByFilters(ctx, cq, byName, q.Conjunctions, out)
	}
	for _, g := range groups {
		sub := make([][]correlate.Condition, len(g))
		for i, k := range g {
			sub[i] = q.Conjunctions[k]
		}
		p, _ := planMask(byName, sub)
		got, err := s.countByMask(ctx, cq, p, make([]correlate.ConjunctionCount, len(sub)))
		if err != nil {
			return nil, err
		}
		for i, k := range g {
			out[k] = got[i]
		}
	}
	return out, nil
}

// splitMask parts conjunctions too many combinations for one mask into
// groups that each fit one (planMask), conjunctions on the same fields
// together: the conditions an open incident keeps asking about (hosts,
// customers, paths and domains joining as it grows) multiply past
// maxMaskLeaves, while each conjunction names at most three fields. A few
// masks cost a few reads of the documents, each testing a group's
// conditions; conjunction by conjunction costs a test per conjunction, in
// the hundreds. It reports false when some conjunction alone does not fit.
func splitMask(byName map[string]field, conjs [][]correlate.Condition) ([][]int, bool) {
	order := make([]int, len(conjs))
	keys := make([]string, len(conjs))
	for i, c := range conjs {
		order[i] = i
		fields := make([]string, len(c))
		for j, cond := range c {
			fields[j] = cond.Field
		}
		slices.Sort(fields)
		keys[i] = strings.Join(slices.Compact(fields), "\x00")
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	var groups [][]int
	var members [][][]correlate.Condition
	for _, k := range order {
		placed := false
		for g := range groups {
			if _, ok := planMask(byName, append(members[g], conjs[k])); ok {
				groups[g], members[g] = append(groups[g], k), append(members[g], conjs[k])
				placed = true
				break
			}
		}
		if placed {
			continue
		}
		if _, ok := planMask(byName, [][]correlate.Condition{conjs[k]}); !ok {
			return nil, false
		}
		groups, members = append(groups, []int{k}), append(members, [][]correlate.Condition{conjs[k]})
	}
	return groups, true
}

// restrictShare is the share of a service's requests under which the
// conjunctions' counts read only the documents that meet one of them. A
// request that meets none counts towards no conjunction, so leaving it out
// changes no count; what it changes is the cost. Reading through the
// disjunction of the conjunctions costs more per document than the mask
// does (about four times, for the hundred and more conjunctions of an
// open incident, measured on 128,000 requests a minute), and saves the
// documents it skips: below a quarter it costs no more, and for the few
// conjunctions first asked for mid-incident, a new host or customer
// whose counts must be read over the finding's whole span, it reads a
// few percent of the documents.
const restrictShare = 0.25

// valueShares are one service's requests per value of each scope field.
type valueShares struct {
	byField map[string]map[string]float64
	total   float64
}

// keepShares remembers a breakdown's requests per value for service.
func (s *Source) keepShares(service string, requests map[string]map[string]float64) {
	vs := valueShares{byField: make(map[string]map[string]float64, len(requests))}
	for f, vals := range requests {
		vs.byField[f] = maps.Clone(vals)
		var n float64
		for _, v := range vals {
			n += v
		}
		vs.total = max(vs.total, n)
	}
	s.mu.Lock()
	if s.shares == nil {
		s.shares = map[string]valueShares{}
	}
	s.shares[service] = vs
	s.mu.Unlock()
}

// supportBound bounds the share of service's requests that meet some
// conjunction, from its last breakdown: the sum over the conjunctions of
// the smallest share among each one's conditions, a value's or, for a
// prefix, every value under it. It reports false with no breakdown to go
// by, or for a conjunction with no condition (it meets every request).
// It only judges cost: the counts are exact either way.
func (s *Source) supportBound(service string, conjs [][]correlate.Condition) (float64, bool) {
	s.mu.Lock()
	vs, ok := s.shares[service]
	s.mu.Unlock()
	if !ok || vs.total <= 0 {
		return 0, false
	}
	// A prefix sums every value under it, paths with ids in them included:
	// once per distinct condition, not once per conjunction naming it.
	share := map[correlate.Condition]float64{}
	var sum float64
	for _, conj := range conjs {
		if len(conj) == 0 {
			return 0, false
		}
		least := 1.0
		for _, c := range conj {
			n, ok := share[c]
			if !ok {
				n = 1 // a field the breakdown did not count: no bound from it
				if vals, counted := vs.byField[c.Field]; counted {
					n = vals[c.Value] / vs.total
					if c.Prefix {
						p, k := strings.TrimSuffix(c.Value, "*"), 0.0
						for v, r := range vals {
							if strings.HasPrefix(v, p) {
								k += r
							}
						}
						n = k / vs.total
					}
				}
				share[c] = n
			}
			least = min(least, n)
		}
		sum += least
	}
	return sum, true
}

// conjSearch is what both ways of counting conjunctions share: the
// service's documents over both spans, and what makes one an error of the
// signature.
type conjSearch struct {
	op          string
	query, errQ types.Query
	// spans are "pre", [Before, From), when there is one, and "in",
	// [From, To).
	spans map[string]types.Query
}

// conjSearchOf is the search over the service's documents in [before, to),
// split at from.
func conjSearchOf(m *mapping, sig types.Query, service string, before, from, to time.Time) conjSearch {
	tf := m.time.agg
	isErr, svc := m.isError(), m.serviceIs(service)
	cq := conjSearch{
		op:    "scope explanation " + service,
		query: and(&svc, ptr(timeRange(tf, before, to))),
		errQ:  and(&isErr, &sig),
		spans: map[string]types.Query{"in": timeRange(tf, from, to)},
	}
	if before.Before(from) {
		cq.spans["pre"] = timeRange(tf, before, from)
	}
	return cq
}

// addSpan records a span's count into c.
func addSpan(c *correlate.ConjunctionCount, span string, reqs, errs int64) {
	if span == "pre" {
		c.RequestsBefore += float64(reqs)
		c.ErrorsBefore += float64(errs)
	} else {
		c.Requests += float64(reqs)
		c.Errors += float64(errs)
	}
}

// countByFilters counts with a filters aggregation: one bucket per
// conjunction (a bool of term queries, and a prefix query for a templated
// path) under a filter per span, each with a filter sub-aggregation for
// the errors. Every request is tested against every conjunction.
func (s *Source) countByFilters(ctx context.Context, cq conjSearch, byName map[string]field, conjs [][]correlate.Condition, out []correlate.ConjunctionCount) ([]correlate.ConjunctionCount, error) {
	for lo := 0; lo < len(conjs); lo += maxConjunctionsPerSearch {
		hi := min(lo+maxConjunctionsPerSearch, len(conjs))
		filters := map[string]types.Query{}
		for i := lo; i < hi; i++ {
			filters[strconv.Itoa(i)] = conjunctionQuery(byName, conjs[i])
		}
		req := newSearch()
		req.Query = ptr(cq.query)
		req.Aggregations = map[string]types.Aggregations{}
		for name, span := range cq.spans {
			req.Aggregations[name] = types.Aggregations{
				Filter: ptr(span),
				Aggregations: map[string]types.Aggregations{"c": {
					Filters:      &types.FiltersAggregation{Filters: filters},
					Aggregations: map[string]types.Aggregations{"e": {Filter: ptr(cq.errQ)}},
				}},
			}
		}
		res, err := s.search(ctx, cq.op, req)
		if err != nil {
			return nil, err
		}
		for name := range cq.spans {
			buckets, err := filterBuckets(res.Aggregations, name)
			if err != nil {
				return nil, fmt.Errorf("elasticsearch %s: %s on index %q: %w", s.name, cq.op, s.index, err)
			}
			for key, b := range buckets {
				i, err := strconv.Atoi(key)
				if err != nil || i < lo || i >= hi {
					return nil, fmt.Errorf("elasticsearch %s: %s on index %q: unexpected bucket %q", s.name, cq.op, s.index, key)
				}
				addSpan(&out[i], name, b.DocCount, filterCount(b.Aggregations, "e"))
			}
		}
	}
	return out, nil
}

// filterCount is the document count of the filter aggregation name in
// aggs, zero when absent.
func filterCount(aggs map[string]types.Aggregate, name string) int64 {
	if e, ok := aggs[name].(*types.FilterAggregate); ok {
		return e.DocCount
	}
	return 0
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
