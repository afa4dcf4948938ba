package elasticsearch

import (
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/sortorder"
)

// Query constructors. The typed client's query types are faithful to the
// JSON but verbose; these keep the queries in this package readable as the
// DSL they are.

// timeFormat is used for every date sent or read: nanosecond RFC 3339, so
// that date_nanos fields keep their precision and date fields lose nothing.
const timeFormat = "strict_date_optional_time_nanos"

func matchAll() types.Query  { return types.Query{MatchAll: &types.MatchAllQuery{}} }
func matchNone() types.Query { return types.Query{MatchNone: &types.MatchNoneQuery{}} }

func term(field string, v types.FieldValue) types.Query {
	return types.Query{Term: map[string]types.TermQuery{field: {Value: v}}}
}

func termFold(field, v string) types.Query {
	yes := true
	return types.Query{Term: map[string]types.TermQuery{field: {Value: v, CaseInsensitive: &yes}}}
}

func terms(field string, vs []types.FieldValue) types.Query {
	return types.Query{Terms: &types.TermsQuery{TermsQuery: map[string]types.TermsQueryField{field: vs}}}
}

func exists(field string) types.Query { return types.Query{Exists: &types.ExistsQuery{Field: field}} }

func regexpQ(field, re string) types.Query {
	return types.Query{Regexp: map[string]types.RegexpQuery{field: {Value: re}}}
}

func ids(vs []string) types.Query { return types.Query{Ids: &types.IdsQuery{Values: vs}} }

// timeRange is [from, to) on field.
func timeRange(field string, from, to time.Time) types.Query {
	f, t, format := fmtTime(from), fmtTime(to), timeFormat
	return types.Query{Range: map[string]types.RangeQuery{field: types.DateRangeQuery{Gte: &f, Lt: &t, Format: &format}}}
}

func numRange(field string, gte, lte float64) types.Query {
	lo, hi := types.Float64(gte), types.Float64(lte)
	return types.Query{Range: map[string]types.RangeQuery{field: types.NumberRangeQuery{Gte: &lo, Lte: &hi}}}
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// and is a conjunction; nil entries are skipped. Filter context: no scoring.
func and(qs ...*types.Query) types.Query {
	var f []types.Query
	for _, q := range qs {
		if q != nil {
			f = append(f, *q)
		}
	}
	if len(f) == 0 {
		return matchAll()
	}
	if len(f) == 1 {
		return f[0]
	}
	return types.Query{Bool: &types.BoolQuery{Filter: f}}
}

// or is a disjunction; an empty one matches nothing.
func or(qs ...types.Query) types.Query {
	switch len(qs) {
	case 0:
		return matchNone()
	case 1:
		return qs[0]
	}
	return types.Query{Bool: &types.BoolQuery{Should: qs, MinimumShouldMatch: 1}}
}

func not(qs ...types.Query) types.Query {
	if len(qs) == 0 {
		return matchAll()
	}
	return types.Query{Bool: &types.BoolQuery{MustNot: qs}}
}

func ptr(q types.Query) *types.Query { return &q }

// byTime sorts ascending on the time field and returns the sort value as a
// nanosecond timestamp string, exact for date and date_nanos alike.
func byTime(field string) []types.SortCombinations {
	format, asc := timeFormat, sortorder.Asc
	return []types.SortCombinations{types.SortOptions{SortOptions: map[string]types.FieldSort{field: {Order: &asc, Format: &format}}}}
}

// hitTime reads the time of a hit sorted by byTime.
func hitTime(h types.Hit) (time.Time, bool) {
	if len(h.Sort) == 0 {
		return time.Time{}, false
	}
	switch v := h.Sort[0].(type) {
	case string:
		t, err := parseTime(v)
		return t, err == nil
	case float64:
		return time.UnixMilli(int64(v)).UTC(), true
	}
	return time.Time{}, false
}

// maxTermsPerQuery splits long value lists so that no terms query exceeds the cluster's
// index.max_terms_count (65,536 by default).
const maxTermsPerQuery = 10_000

func termsChunked(field string, vs []types.FieldValue) types.Query {
	var qs []types.Query
	for len(vs) > 0 {
		n := min(len(vs), maxTermsPerQuery)
		qs = append(qs, terms(field, vs[:n]))
		vs = vs[n:]
	}
	return or(qs...)
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
