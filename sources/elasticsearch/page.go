package elasticsearch

import (
	"context"
	"fmt"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
)

// composite is one paged composite aggregation within a search. Several run
// side by side in one request, each under its own filter aggregation, so
// that a Traffic or Scope call costs one request per page rather than one
// per question.
type composite struct {
	name    string
	filter  *types.Query // nil: directly under the search's query
	sources []map[string]types.CompositeAggregationSource
	sub     map[string]types.Aggregations
	each    func(b types.CompositeBucket) error

	after types.CompositeAggregateKey
	done  bool
}

// maxBucketsPerPage is how many composite buckets one response may carry,
// shared by the composites still paging. Elasticsearch refuses responses
// over search.max_buckets (65,536 by default) with too_many_buckets_exception;
// filter and top_hits sub-aggregations do not count towards it.
const maxBucketsPerPage = 20_000

// pages runs query with the composites, page after page, until every one is
// exhausted. first may add to the first request (hits, top_hits) and
// onFirst reads what it added.
func (s *Source) pages(ctx context.Context, op string, query types.Query, comps []*composite,
	first func(*search.Request), onFirst func(*search.Response) error) error {
	for page := 1; ; page++ {
		var active []*composite
		for _, c := range comps {
			if !c.done {
				active = append(active, c)
			}
		}
		if len(active) == 0 && (page > 1 || first == nil) {
			return nil
		}
		req := newSearch()
		req.Query = &query
		req.Aggregations = map[string]types.Aggregations{}
		size := maxBucketsPerPage / max(len(active), 1)
		for _, c := range active {
			agg := types.Aggregations{
				Composite:    &types.CompositeAggregation{Sources: c.sources, Size: &size, After: c.after},
				Aggregations: c.sub,
			}
			if c.filter != nil {
				agg = types.Aggregations{Filter: c.filter, Aggregations: map[string]types.Aggregations{"c": agg}}
			}
			req.Aggregations[c.name] = agg
		}
		if page == 1 && first != nil {
			first(req)
		}
		name := op
		if page > 1 {
			name = fmt.Sprintf("%s (page %d)", op, page)
		}
		res, err := s.search(ctx, name, req)
		if err != nil {
			return err
		}
		if page == 1 && onFirst != nil {
			if err := onFirst(res); err != nil {
				return err
			}
		}
		for _, c := range active {
			ca, err := compositeOf(res.Aggregations, c.name, c.filter != nil)
			if err != nil {
				return fmt.Errorf("elasticsearch %s: %s on index %q: %w", s.name, op, s.index, err)
			}
			buckets, _ := ca.Buckets.([]types.CompositeBucket)
			for _, b := range buckets {
				if err := c.each(b); err != nil {
					return err
				}
			}
			if len(buckets) < size || len(ca.AfterKey) == 0 {
				c.done = true
			} else {
				c.after = ca.AfterKey
			}
		}
	}
}

func compositeOf(aggs map[string]types.Aggregate, name string, filtered bool) (*types.CompositeAggregate, error) {
	a := aggs[name]
	if filtered {
		f, ok := a.(*types.FilterAggregate)
		if !ok {
			return nil, fmt.Errorf("aggregation %s: unexpected answer %T", name, a)
		}
		a = f.Aggregations["c"]
	}
	ca, ok := a.(*types.CompositeAggregate)
	if !ok {
		return nil, fmt.Errorf("aggregation %s: unexpected answer %T", name, a)
	}
	return ca, nil
}

// subHits are the hits of a top_hits under a filter aggregation.
func subHits(aggs map[string]types.Aggregate, filter, hits string) []types.Hit {
	f, ok := aggs[filter].(*types.FilterAggregate)
	if !ok {
		return nil
	}
	th, ok := f.Aggregations[hits].(*types.TopHitsAggregate)
	if !ok {
		return nil
	}
	return th.Hits.Hits
}

// subMin is the time of a min sub-aggregation formatted with timeFormat.
func subMin(aggs map[string]types.Aggregate, name string) time.Time {
	mn, ok := aggs[name].(*types.MinAggregate)
	if !ok {
		return time.Time{}
	}
	if mn.ValueAsString != nil {
		if t, err := parseTime(*mn.ValueAsString); err == nil {
			return t
		}
	}
	if mn.Value != nil {
		return time.UnixMilli(int64(*mn.Value)).UTC()
	}
	return time.Time{}
}

// termsOn builds one named terms source; missing asks for a bucket (key
// null) for documents without a value.
func termsOn(name, f string, missing bool) map[string]types.CompositeAggregationSource {
	src := &types.CompositeTermsAggregation{Field: &f}
	if missing {
		src.MissingBucket = &missing
	}
	return map[string]types.CompositeAggregationSource{name: {Terms: src}}
}

// histogramOn buckets time exactly as w does: fixed intervals of w.Step
// starting at w.From. Elasticsearch aligns buckets to the Unix epoch, so
// the offset moves them onto w.From whatever the step.
func histogramOn(name, f string, w correlate.Window) map[string]types.CompositeAggregationSource {
	step := w.Step.Milliseconds()
	off := w.From.UnixMilli() % step
	if off < 0 {
		off += step
	}
	interval := ms(w.Step)
	src := &types.CompositeDateHistogramAggregation{Field: &f, FixedInterval: &interval}
	if off != 0 {
		src.Offset = ms(time.Duration(off) * time.Millisecond)
	}
	return map[string]types.CompositeAggregationSource{name: {DateHistogram: src}}
}

// bucketOf is the index in w of a histogram key (epoch milliseconds), or -1.
func bucketOf(v types.FieldValue, w correlate.Window) int {
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	i := w.Index(time.UnixMilli(int64(f)))
	if i >= w.Len() {
		return -1 // in a tail shorter than a step: not a bucket
	}
	return i
}

// checkWindow refuses windows Elasticsearch cannot bucket exactly.
func checkWindow(w correlate.Window) error {
	if w.Len() <= 0 {
		return fmt.Errorf("empty window %s to %s step %s", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339), w.Step)
	}
	if w.Step%time.Millisecond != 0 || w.From.UnixNano()%int64(time.Millisecond) != 0 {
		return fmt.Errorf("window %s step %s: Elasticsearch buckets whole milliseconds", w.From.Format(time.RFC3339Nano), w.Step)
	}
	return nil
}
