package elasticsearch

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
)

// Counting conjunctions by mask. The correlator asks for every
// conjunction of up to three of a dozen conditions: a hundred or more
// conjunctions made of a dozen conditions. Testing each request against
// each conjunction costs the service's requests times the conjunctions,
// and with an incident open at 40,000 requests a second that was most of
// an evaluation's Elasticsearch time. Instead each request is counted
// once, by which of the conditions it meets, and each conjunction's count
// is the sum of the combinations that meet all of its conditions.
//
// The combinations are nested filters aggregations, one level per field:
// a bucket per condition on the field, and an "other" bucket for the
// requests that meet none. The conditions on one field are values and
// path prefixes, which nest or exclude each other ("/.fn/x/run" lies
// within "/.fn/x/*", which lies within "/.fn/*"; "/.fn/*" and "/cart"
// exclude each other), so a request lands in exactly one of the field's
// outermost buckets (its roots) or in "other". A conjunction that says
// nothing of a field sums those; one that names a condition takes its
// bucket. The cost per request is one test per condition, whatever the
// number of conjunctions.
//
// That partition assumes one value per document in each scope field, as
// ECS has it (one provider, one path per request). A document holding two
// values is counted in each, as the one-dimension breakdown counts it.
// Conditions on fields that are not strings (a numeric status) get a level
// each, match or not, and so need no such assumption.

// maxMaskLeaves bounds the combinations one search returns (the product
// of each level's buckets): with two spans and an errors count under
// each, under a third of search.max_buckets' default of 65,536. A query
// with more is counted conjunction by conjunction.
const maxMaskLeaves = 4096

// Bucket positions besides a condition's index within its level.
const (
	otherBucket = -1 // the requests that meet none of the level's conditions
	anyBucket   = -2 // a conjunction says nothing of the level
)

// maskAtom is one distinct condition: a field's value, or a prefix (its
// trailing "*" removed).
type maskAtom struct {
	field, value string
	prefix       bool
}

func atomOf(c correlate.Condition) maskAtom {
	if c.Prefix {
		return maskAtom{field: c.Field, value: strings.TrimSuffix(c.Value, "*"), prefix: true}
	}
	return maskAtom{field: c.Field, value: c.Value}
}

// within reports whether every string a meets also meets b.
func (a maskAtom) within(b maskAtom) bool {
	if !b.prefix {
		return !a.prefix && a.value == b.value
	}
	return strings.HasPrefix(a.value, b.value)
}

// maskLevel is one filters aggregation of the nest.
type maskLevel struct {
	atoms   []maskAtom
	queries []types.Query
	// root[i] is whether atom i lies within no other atom of the level:
	// the roots and "other" part the requests.
	root []bool
	// nested is whether some atom lies within another, so a request can
	// land in more than one bucket. Such levels go last, where that
	// multiplies nothing below them but the errors count.
	nested bool
}

// maskPlan is how one query's conjunctions are counted by mask.
type maskPlan struct {
	levels []maskLevel
	// need[i][l] is the bucket of level l that conjunction i's requests
	// lie in, or anyBucket; nil when conjunction i can match nothing (a
	// condition on an unmapped field, or two that exclude each other).
	need [][]int
}

// planMask lays out the levels for conjs, or reports false when their
// combinations exceed maxMaskLeaves.
func planMask(byName map[string]field, conjs [][]correlate.Condition) (*maskPlan, bool) {
	type ref struct{ level, atom int }
	var levels []maskLevel
	levelOf := map[string]int{}
	refs := map[maskAtom]ref{}
	none := map[maskAtom]bool{}
	for _, conj := range conjs {
		for _, c := range conj {
			a := atomOf(c)
			if _, ok := refs[a]; ok || none[a] {
				continue
			}
			f, ok := byName[c.Field]
			if !ok || !f.kind.aggregatable() || (c.Prefix && f.kind != kindString) {
				none[a] = true
				continue
			}
			q := term(f.agg, c.Value)
			if a.prefix {
				q = types.Query{Prefix: map[string]types.PrefixQuery{f.agg: {Value: a.value}}}
			}
			l, shared := levelOf[c.Field]
			if !shared || f.kind != kindString {
				l = len(levels)
				levels = append(levels, maskLevel{})
				if f.kind == kindString {
					levelOf[c.Field] = l
				}
			}
			refs[a] = ref{l, len(levels[l].atoms)}
			levels[l].atoms = append(levels[l].atoms, a)
			levels[l].queries = append(levels[l].queries, q)
		}
	}
	leaves := 1
	for l := range levels {
		lv := &levels[l]
		lv.root = make([]bool, len(lv.atoms))
		for i, a := range lv.atoms {
			lv.root[i] = true
			for j, b := range lv.atoms {
				if i != j && a.within(b) {
					lv.root[i], lv.nested = false, true
					break
				}
			}
		}
		if leaves *= len(lv.atoms) + 1; leaves > maxMaskLeaves {
			return nil, false
		}
	}
	// Levels a request lands in once go first, keeping the order they
	// were met in otherwise.
	order := make([]int, len(levels))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return boolInt(levels[a].nested) - boolInt(levels[b].nested)
	})
	at := make([]int, len(levels))
	p := &maskPlan{levels: make([]maskLevel, len(levels)), need: make([][]int, len(conjs))}
	for pos, l := range order {
		p.levels[pos], at[l] = levels[l], pos
	}
	for i, conj := range conjs {
		need := make([]int, len(p.levels))
		for l := range need {
			need[l] = anyBucket
		}
		for _, c := range conj {
			a := atomOf(c)
			r, ok := refs[a]
			if !ok {
				need = nil // a condition that matches nothing
				break
			}
			l := at[r.level]
			switch cur := need[l]; {
			case cur == anyBucket || p.levels[l].atoms[r.atom].within(p.levels[l].atoms[cur]):
				need[l] = r.atom
			case p.levels[l].atoms[cur].within(p.levels[l].atoms[r.atom]):
			default:
				need = nil // two conditions that exclude each other
			}
			if need == nil {
				break
			}
		}
		p.need[i] = need
	}
	return p, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// aggs is the nest from level l down.
func (p *maskPlan) aggs(l int) map[string]types.Aggregations {
	if l == len(p.levels) {
		return nil
	}
	lv := p.levels[l]
	filters := make(map[string]types.Query, len(lv.queries))
	for i, q := range lv.queries {
		filters[strconv.Itoa(i)] = q
	}
	other, otherKey := true, "o"
	return map[string]types.Aggregations{"m": {
		Filters:      &types.FiltersAggregation{Filters: filters, OtherBucket: &other, OtherBucketKey: &otherKey},
		Aggregations: p.aggs(l + 1),
	}}
}

// matches reports whether the requests of the combination path (a bucket
// per level) meet conjunction i.
func (p *maskPlan) matches(i int, path []int) bool {
	need := p.need[i]
	if need == nil {
		return false
	}
	for l, b := range need {
		switch {
		case b == anyBucket:
			if path[l] != otherBucket && !p.levels[l].root[path[l]] {
				return false
			}
		case path[l] != b:
			return false
		}
	}
	return true
}

// countByMask runs the plan's searches and adds up each conjunction's
// combinations. Requests and errors are two searches with the same nest:
// errors are a small share of the requests, and a search of their own
// reads only their documents, where an errors filter under every
// combination would test each request once more for every bucket it lands
// in. A single span needs no filter of its own: the query is the span.
func (s *Source) countByMask(ctx context.Context, cq conjSearch, p *maskPlan, out []correlate.ConjunctionCount) ([]correlate.ConjunctionCount, error) {
	spans := cq.spans
	if len(spans) == 1 {
		spans = map[string]types.Query{}
		for name := range cq.spans {
			spans[name] = types.Query{MatchAll: &types.MatchAllQuery{}}
		}
	}
	path := make([]int, len(p.levels))
	for _, errs := range []bool{false, true} {
		req := newSearch()
		req.Query = ptr(cq.query)
		if errs {
			req.Query = ptr(and(&cq.query, &cq.errQ))
		}
		req.Aggregations = map[string]types.Aggregations{}
		for name, span := range spans {
			req.Aggregations[name] = types.Aggregations{Filter: ptr(span), Aggregations: p.aggs(0)}
		}
		res, err := s.search(ctx, cq.op, req)
		if err != nil {
			return nil, err
		}
		for name := range spans {
			f, ok := res.Aggregations[name].(*types.FilterAggregate)
			if !ok {
				return nil, fmt.Errorf("elasticsearch %s: %s on index %q: response lacks aggregation %q", s.name, cq.op, s.index, name)
			}
			add := func(n int64) {
				for i := range out {
					if !p.matches(i, path) {
						continue
					}
					if errs {
						addSpan(&out[i], name, 0, n)
					} else {
						addSpan(&out[i], name, n, 0)
					}
				}
			}
			if err := walkMask(p, f.Aggregations, 0, f.DocCount, path, add); err != nil {
				return nil, fmt.Errorf("elasticsearch %s: %s on index %q: %w", s.name, cq.op, s.index, err)
			}
		}
	}
	return out, nil
}

// walkMask calls add with the count of each non-empty combination, path
// holding its bucket at each level.
func walkMask(p *maskPlan, aggs map[string]types.Aggregate, l int, n int64, path []int, add func(int64)) error {
	if n == 0 {
		return nil
	}
	if l == len(p.levels) {
		add(n)
		return nil
	}
	fs, ok := aggs["m"].(*types.FiltersAggregate)
	if !ok {
		return fmt.Errorf("response lacks the filters aggregation of level %d", l)
	}
	buckets, ok := fs.Buckets.(map[string]types.FiltersBucket)
	if !ok {
		return fmt.Errorf("filters aggregation of level %d has buckets of type %T, want keyed", l, fs.Buckets)
	}
	for key, b := range buckets {
		i := otherBucket
		if key != "o" {
			var err error
			if i, err = strconv.Atoi(key); err != nil || i < 0 || i >= len(p.levels[l].atoms) {
				return fmt.Errorf("unexpected bucket %q at level %d", key, l)
			}
		}
		path[l] = i
		if err := walkMask(p, b.Aggregations, l+1, b.DocCount, path, add); err != nil {
			return err
		}
	}
	return nil
}
