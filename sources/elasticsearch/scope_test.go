package elasticsearch

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
)

func i64(n int64) *int64 { return &n }

func TestCountTerms(t *testing.T) {
	for _, tc := range []struct {
		name  string
		agg   types.Aggregate
		kind  kind
		exact bool
		want  map[string]float64
	}{
		{
			name: "strings, all values returned",
			agg: &types.StringTermsAggregate{SumOtherDocCount: i64(0), DocCountErrorUpperBound: i64(0),
				Buckets: []types.StringTermsBucket{{Key: "aws", DocCount: 3}, {Key: "gcp", DocCount: 1}}},
			kind: kindString, exact: true, want: map[string]float64{"aws": 3, "gcp": 1},
		},
		{
			name: "an empty string is no value, as in a composite",
			agg: &types.StringTermsAggregate{SumOtherDocCount: i64(0),
				Buckets: []types.StringTermsBucket{{Key: "", DocCount: 5}, {Key: "h1", DocCount: 2}}},
			kind: kindString, exact: true, want: map[string]float64{"h1": 2},
		},
		{
			name: "documents outside the returned buckets",
			agg: &types.StringTermsAggregate{SumOtherDocCount: i64(4), DocCountErrorUpperBound: i64(0),
				Buckets: []types.StringTermsBucket{{Key: "aws", DocCount: 3}}},
			kind: kindString, exact: false, want: map[string]float64{},
		},
		{
			name: "a shard left terms out",
			agg: &types.StringTermsAggregate{SumOtherDocCount: i64(0), DocCountErrorUpperBound: i64(2),
				Buckets: []types.StringTermsBucket{{Key: "aws", DocCount: 3}}},
			kind: kindString, exact: false, want: map[string]float64{},
		},
		{
			name: "no sum_other_doc_count: exactness unknown",
			agg:  &types.StringTermsAggregate{Buckets: []types.StringTermsBucket{{Key: "aws", DocCount: 3}}},
			kind: kindString, exact: false, want: map[string]float64{},
		},
		{
			name: "keyed buckets are not what was asked for",
			agg: &types.StringTermsAggregate{SumOtherDocCount: i64(0),
				Buckets: map[string]types.StringTermsBucket{"aws": {Key: "aws", DocCount: 3}}},
			kind: kindString, exact: false, want: map[string]float64{},
		},
		{
			name: "numeric customer ids read as the file source writes them",
			agg: &types.LongTermsAggregate{SumOtherDocCount: i64(0),
				Buckets: []types.LongTermsBucket{{Key: 42, DocCount: 2}, {Key: 7, DocCount: 1}}},
			kind: kindNumber, exact: true, want: map[string]float64{"42": 2, "7": 1},
		},
		{
			name: "booleans come back as 0 and 1",
			agg: &types.LongTermsAggregate{SumOtherDocCount: i64(0),
				Buckets: []types.LongTermsBucket{{Key: 1, DocCount: 2}, {Key: 0, DocCount: 1}}},
			kind: kindBool, exact: true, want: map[string]float64{"true": 2, "false": 1},
		},
		{
			name: "doubles",
			agg: &types.DoubleTermsAggregate{SumOtherDocCount: i64(0),
				Buckets: []types.DoubleTermsBucket{{Key: 1.5, DocCount: 2}, {Key: 3, DocCount: 1}}},
			kind: kindNumber, exact: true, want: map[string]float64{"1.5": 2, "3": 1},
		},
		{
			name: "unmapped in every index: nothing, exactly",
			agg:  &types.UnmappedTermsAggregate{SumOtherDocCount: i64(0), DocCountErrorUpperBound: i64(0)},
			kind: kindString, exact: true, want: map[string]float64{},
		},
		{
			name: "missing answer",
			agg:  nil,
			kind: kindString, exact: false, want: map[string]float64{},
		},
		{
			name: "some other aggregate",
			agg:  &types.CompositeAggregate{},
			kind: kindString, exact: false, want: map[string]float64{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]float64{}
			if exact := countTerms(tc.agg, tc.kind, got); exact != tc.exact {
				t.Errorf("exact: got %v, want %v", exact, tc.exact)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("counts: got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestScopeManyValues forces every dimension past what its terms
// aggregation may return: the paged composite that takes over must give
// the file source's answer, first with extra requests and afterwards
// without them, since the Source remembers which fields are wide.
func TestScopeManyValues(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	w := window(t, handFrom, handTo, time.Minute)
	q := correlate.ScopeQuery{Service: "api", Messages: []string{"db timeout after <*>s on <*>"},
		From: ts("2026-11-19T23:58:00Z"), To: ts("2026-11-20T00:01:00Z"), Window: w}
	for _, tc := range []struct {
		name string
		load func(*testing.T, cluster) handSet
	}{
		{"explicit keyword mapping", loadExplicit},
		{"text fields with keyword sub-fields", loadDynamic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.load(t, c)
			want, err := fileLogs(t, set.file, time.Minute).Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			source := func(mod func(*Source)) *Source {
				t.Helper()
				src := c.source(t, set.index, farFuture)
				mod(src)
				// Traffic first, as in a correlate run: Scope then reuses
				// its mapping and raw messages, and what it sends is its own.
				if _, err := src.Traffic(ctx, w); err != nil {
					t.Fatal(err)
				}
				return src
			}
			scope := func(src *Source) int64 {
				t.Helper()
				before := src.Stats().Requests
				got, err := src.Scope(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				report(t, "scope", diffScope(want, got))
				return src.Stats().Requests - before
			}

			narrow := scope(source(func(*Source) {}))

			// One value per dimension: the hosts h1 and h2 are one too many.
			wide := source(func(s *Source) { s.termsBuckets = 1 })
			// The first call redoes what its terms could not hold (the
			// errors' hosts, the requests' customers) in further requests.
			first := scope(wide)
			if first <= narrow {
				t.Errorf("first call with too many values: %d requests, want more than the %d of the terms path", first, narrow)
			}
			if !wide.wide[wide.mapping.host.agg] {
				t.Errorf("the host field %q is not remembered as wide: %v", wide.mapping.host.agg, wide.wide)
			}
			if again := scope(wide); again != narrow {
				t.Errorf("second call: %d requests, want %d: the wide fields should go to composites at once", again, narrow)
			}
		})
	}
}
