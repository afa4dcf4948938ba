package elasticsearch

import (
	"context"
	"fmt"
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
	for _, tc := range handLoads {
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
			scope := func(src *Source) int64 { t.Helper(); return scopeRequests(t, src, q, want) }

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

// TestScopeRemembersSignatures: a breakdown over a range that two Traffic
// calls read between them (an incremental evaluation's new bucket, and
// the one the evaluation before read) selects its errors from their raw
// messages together, with no search to learn them again, and answers as
// the file source does. A range they do not both cover still learns them.
func TestScopeRemembersSignatures(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	set := loadExplicit(t, c)
	full := window(t, handFrom, handTo, time.Minute)
	q := correlate.ScopeQuery{Service: "api", Messages: []string{"db timeout after <*>s on <*>"},
		From: ts("2026-11-19T23:58:00Z"), To: ts("2026-11-20T00:01:00Z"), Window: full}
	want, err := fileLogs(t, set.file, time.Minute).Scope(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	scope := func(src *Source) int64 { t.Helper(); return scopeRequests(t, src, q, want) }
	traffic := func(src *Source, from, to string) {
		t.Helper()
		if _, err := src.Traffic(ctx, window(t, from, to, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	one := c.source(t, set.index, farFuture)
	traffic(one, handFrom, handTo)
	whole := scope(one)

	two := c.source(t, set.index, farFuture)
	traffic(two, handFrom, "2026-11-20T00:00:00Z")
	traffic(two, "2026-11-20T00:00:00Z", handTo)
	if got := scope(two); got != whole {
		t.Errorf("after two Traffic calls covering the range: %d requests, want %d, as after one covering it", got, whole)
	}

	part := c.source(t, set.index, farFuture)
	traffic(part, "2026-11-20T00:00:00Z", handTo)
	if got := scope(part); got <= whole {
		t.Errorf("after a Traffic call covering part of the range: %d requests, want more than %d (its raw messages learnt anew)", got, whole)
	}
}

// TestRemembered: which kept signature maps answer a range: the last
// one's whole window, older ones only where settled, never across a gap,
// another mapping or a map that hit the fetch bound.
func TestRemembered(t *testing.T) {
	at := func(min int) time.Time { return ts("2026-11-20T00:00:00Z").Add(time.Duration(min) * time.Minute) }
	m1, m2 := &mapping{}, &mapping{}
	sm := func(from, settled, to int, m *mapping) *signatureMap {
		return &signatureMap{from: at(from), settled: at(settled), to: at(to), m: m}
	}
	for _, tc := range []struct {
		name   string
		kept   []*signatureMap
		lo, hi int
		want   int // maps used, 0 for none
	}{
		{"the last covers it", []*signatureMap{sm(0, 5, 5, m1)}, 1, 5, 1},
		{"two adjoining", []*signatureMap{sm(0, 1, 1, m1), sm(1, 2, 2, m1)}, 0, 2, 2},
		{"older ones out of order", []*signatureMap{sm(2, 3, 3, m1), sm(0, 2, 2, m1), sm(3, 4, 4, m1)}, 0, 4, 3},
		{"a gap", []*signatureMap{sm(0, 1, 1, m1), sm(2, 3, 3, m1)}, 0, 3, 0},
		{"older map unsettled at its end", []*signatureMap{sm(0, 1, 2, m1), sm(2, 3, 3, m1)}, 0, 3, 0},
		{"older map settled up to the last", []*signatureMap{sm(0, 2, 2, m1), sm(2, 2, 3, m1)}, 0, 3, 2},
		{"another mapping", []*signatureMap{sm(0, 1, 1, m2), sm(1, 2, 2, m1)}, 0, 2, 0},
		{"nothing kept", nil, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Source{sigs: tc.kept}
			m, used := s.remembered(at(tc.lo), at(tc.hi))
			if len(used) != tc.want || (tc.want > 0) != (m != nil) {
				t.Errorf("used %d maps (mapping %v), want %d", len(used), m != nil, tc.want)
			}
		})
	}
	s := &Source{sigs: []*signatureMap{sm(0, 1, 1, m1), sm(1, 2, 2, m1)}}
	s.sigs[0].otherFrom = at(0)
	if m, _ := s.remembered(at(0), at(2)); m != nil {
		t.Error("a map that hit the fetch bound was combined")
	}
}

// TestScopeOneBucket: a breakdown whose range is its window's one bucket
// (an incremental evaluation's new bucket) takes the per-host series from
// the host dimension's counts, one search fewer, and answers as the file
// source does, bucket by bucket.
func TestScopeOneBucket(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	set := loadExplicit(t, c)
	w := window(t, handFrom, handTo, time.Minute)
	file := fileLogs(t, set.file, time.Minute)
	src := c.source(t, set.index, farFuture)
	if _, err := src.Traffic(ctx, w); err != nil {
		t.Fatal(err)
	}
	for i := range w.Len() {
		t.Run(fmt.Sprintf("bucket %d", i), func(t *testing.T) {
			one := correlate.Window{From: w.Start(i), To: w.Start(i + 1), Step: w.Step}
			q := correlate.ScopeQuery{Service: "api", Messages: []string{"db timeout after <*>s on <*>"}, From: one.From, To: one.To, Window: one}
			want, err := file.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			// Two searches when the errors and their raw messages are
			// known: the errors, the requests by value.
			if n := scopeRequests(t, src, q, want); n > 2 {
				t.Errorf("%d requests, want 2 (errors, requests by value)", n)
			}
		})
	}
}
