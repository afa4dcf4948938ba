package elasticsearch

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
)

// TestCountConjunctions runs the filters aggregation against the real
// cluster and holds it to the file source's counts of the same documents.
func TestCountConjunctions(t *testing.T) {
	c := testCluster(t)
	docs := []string{
		// Before onset.
		`{"@timestamp":"2026-11-20T14:00:30Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","organization.id":"7","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:01:30Z","service.name":"edge","cloud.provider":"gcp","url.path":"/","http.response.status_code":500,"error.message":"disk full"}`,
		`{"@timestamp":"2026-11-20T14:01:40Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","organization.id":"7","http.response.status_code":502,"error.message":"fn 9 failed"}`,
		// The episode.
		`{"@timestamp":"2026-11-20T14:02:10Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","organization.id":"7","http.response.status_code":502,"error.message":"fn 1 failed"}`,
		`{"@timestamp":"2026-11-20T14:02:20Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/b/run","organization.id":"8","http.response.status_code":502,"error.message":"fn 2 failed"}`,
		`{"@timestamp":"2026-11-20T14:02:30Z","service.name":"edge","cloud.provider":"aws","url.path":"/cart","organization.id":"7","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:02:40Z","service.name":"edge","cloud.provider":"gcp","url.path":"/.fn/a","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:02:50Z","service.name":"edge","url.path":"/.fnord","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:03:00Z","service.name":"web","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":502,"error.message":"fn 3 failed"}`,
		// After To.
		`{"@timestamp":"2026-11-20T14:05:00Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":502,"error.message":"fn 4 failed"}`,
	}
	ix := indexName(t, "")
	c.createIndex(t, ix, parityMapping)
	c.load(t, ix, docs)
	src := c.source(t, ix)

	aws := correlate.Condition{Field: correlate.FieldProvider, Value: "aws"}
	fn := correlate.Condition{Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true}
	org := correlate.Condition{Field: correlate.FieldCustomer, Value: "7"}
	region := correlate.Condition{Field: correlate.FieldRegion, Value: "r1"}
	q := correlate.ConjunctionQuery{
		Service: "edge", Messages: []string{template.Mask("fn 1 failed")},
		Before: ts("2026-11-20T14:00:00Z"), From: ts("2026-11-20T14:02:00Z"), To: ts("2026-11-20T14:05:00Z"),
		Conjunctions: [][]correlate.Condition{nil, {aws}, {fn}, {aws, fn}, {aws, fn, org}, {region}},
	}
	want := []correlate.ConjunctionCount{
		{Errors: 2, Requests: 5, ErrorsBefore: 1, RequestsBefore: 3},
		{Errors: 2, Requests: 3, ErrorsBefore: 1, RequestsBefore: 2},
		{Errors: 2, Requests: 3, ErrorsBefore: 1, RequestsBefore: 2},
		{Errors: 2, Requests: 2, ErrorsBefore: 1, RequestsBefore: 2},
		{Errors: 1, Requests: 1, ErrorsBefore: 1, RequestsBefore: 2},
		{},
	}
	got, err := src.CountConjunctions(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Elasticsearch counts =\n%+v\nwant\n%+v", got, want)
	}
	fileGot, err := fileLogs(t, docs, time.Minute).CountConjunctions(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fileGot, got) {
		t.Errorf("file counts =\n%+v\nElasticsearch\n%+v", fileGot, got)
	}

	// More conjunctions than one search carries: split, counted alike.
	many := q
	many.Conjunctions = nil
	for range maxConjunctionsPerSearch + 3 {
		many.Conjunctions = append(many.Conjunctions, []correlate.Condition{aws, fn})
	}
	got, err = src.CountConjunctions(context.Background(), many)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if g != want[3] {
			t.Fatalf("conjunction %d of %d: %+v; want %+v", i, len(got), g, want[3])
		}
	}
}

// TestCountConjunctionsByMask holds the count by mask to the count
// conjunction by conjunction, and both to the file source's, over random
// documents and random conjunctions: nested path prefixes and a path
// within them, values that exclude each other in one conjunction,
// conditions on fields the index lacks, and a query with too many
// combinations for one search, which falls back.
func TestCountConjunctionsByMask(t *testing.T) {
	c := testCluster(t)
	rng := rand.New(rand.NewPCG(7, 9))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	base := ts("2026-11-20T14:00:00Z")
	var docs []string
	for i := range 600 {
		at := base.Add(time.Duration(i) * 500 * time.Millisecond)
		fields := []string{
			fmt.Sprintf(`"@timestamp":%q`, at.Format(time.RFC3339Nano)),
			`"service.name":"edge"`,
		}
		if p := pick("aws", "gcp", "azure", ""); p != "" {
			fields = append(fields, fmt.Sprintf(`"cloud.provider":%q`, p))
		}
		fields = append(fields,
			fmt.Sprintf(`"cloud.region":%q`, pick("r1", "r2")),
			fmt.Sprintf(`"url.path":%q`, pick("/.fn/a/run", "/.fn/a/stop", "/.fn/b/run", "/.fn", "/.fnord", "/cart", "/cart/x/y")),
			fmt.Sprintf(`"organization.id":%q`, pick("1", "2", "3", "4", "5")),
			fmt.Sprintf(`"service.version":%q`, pick("v1", "v2")))
		if rng.IntN(4) == 0 {
			fields = append(fields, `"http.response.status_code":502`, fmt.Sprintf(`"error.message":"fn %d failed"`, rng.IntN(9)))
		} else {
			fields = append(fields, `"http.response.status_code":200`)
		}
		docs = append(docs, "{"+strings.Join(fields, ",")+"}")
	}
	ix := indexName(t, "")
	c.createIndex(t, ix, parityMapping)
	c.load(t, ix, docs)
	src := c.source(t, ix)
	logs := fileLogs(t, docs, time.Minute)

	pool := []correlate.Condition{
		{Field: correlate.FieldProvider, Value: "aws"},
		{Field: correlate.FieldProvider, Value: "gcp"},
		{Field: correlate.FieldRegion, Value: "r2"},
		{Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true},
		{Field: correlate.FieldPath, Value: "/.fn/a/*", Prefix: true},
		{Field: correlate.FieldPath, Value: "/.fn/a/run"},
		{Field: correlate.FieldPath, Value: "/cart/*", Prefix: true},
		{Field: correlate.FieldPath, Value: "/.fn"},
		{Field: correlate.FieldCustomer, Value: "3"},
		{Field: correlate.FieldCustomer, Value: "4"},
		{Field: correlate.FieldVersion, Value: "v2"},
		{Field: correlate.FieldSite, Value: "unmapped"},
		{Field: correlate.FieldHost, Value: "h1"},
	}
	conjs := [][]correlate.Condition{nil}
	for range 300 {
		var conj []correlate.Condition
		for range 1 + rng.IntN(4) {
			conj = append(conj, pool[rng.IntN(len(pool))])
		}
		conjs = append(conjs, conj)
	}
	q := correlate.ConjunctionQuery{
		Service: "edge", Messages: []string{template.Mask("fn 1 failed")},
		Before: base.Add(time.Minute), From: base.Add(3 * time.Minute), To: base.Add(5 * time.Minute),
		Conjunctions: conjs,
	}
	check := func(name string, q correlate.ConjunctionQuery, wantMask bool) {
		t.Helper()
		ctx := context.Background()
		m, err := src.currentMapping(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byName := m.scopeFields()
		if _, ok := planMask(byName, q.Conjunctions); ok != wantMask {
			t.Fatalf("%s: planMask ok = %v, want %v", name, ok, wantMask)
		}
		got, err := src.CountConjunctions(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := logs.CountConjunctions(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		nonzero := 0
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: conjunction %d %v: Elasticsearch %+v, file %+v", name, i, q.Conjunctions[i], got[i], want[i])
			}
			if want[i].Errors > 0 && (want[i].ErrorsBefore > 0 || !q.Before.Before(q.From)) {
				nonzero++
			}
		}
		if nonzero < len(want)/10 {
			t.Fatalf("%s: only %d of %d conjunctions have errors in both spans: the comparison proves little", name, nonzero, len(want))
		}
	}
	check("by mask", q, true)
	one := q
	one.Before = one.From // one span: the query is the span
	check("by mask, one span", one, true)

	// Too many combinations for one search: 16 customers, paths and
	// regions make 17³ (the file source takes at most 64 conditions).
	wide := q
	wide.Conjunctions = [][]correlate.Condition{nil}
	for i := range 16 {
		wide.Conjunctions = append(wide.Conjunctions,
			[]correlate.Condition{{Field: correlate.FieldCustomer, Value: strconv.Itoa(i + 1)}},
			[]correlate.Condition{{Field: correlate.FieldPath, Value: fmt.Sprintf("/p%d/*", i), Prefix: true}},
			[]correlate.Condition{{Field: correlate.FieldProvider, Value: "aws"}, {Field: correlate.FieldRegion, Value: fmt.Sprintf("r%d", i+1)}})
	}
	wide.Conjunctions = append(wide.Conjunctions, conjs...)
	m, err := src.currentMapping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if groups, ok := splitMask(m.scopeFields(), wide.Conjunctions); !ok || len(groups) < 2 {
		t.Fatalf("the wide query split into %d masks (%v), want several", len(groups), ok)
	}
	check("by several masks", wide, false)
	// Conjunction by conjunction, what a conjunction too wide for a mask
	// alone is counted by.
	byFilters := func(name string, q correlate.ConjunctionQuery) {
		t.Helper()
		ctx := context.Background()
		_, sig, err := src.signature(ctx, correlate.ScopeQuery{Service: q.Service, Messages: q.Messages}, q.Before, q.To)
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.countByFilters(ctx, conjSearchOf(m, sig, q.Service, q.Before, q.From, q.To), m.scopeFields(), q.Conjunctions, make([]correlate.ConjunctionCount, len(q.Conjunctions)))
		if err != nil {
			t.Fatal(err)
		}
		want, err := logs.CountConjunctions(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: conjunction by conjunction differs from the file source", name)
		}
	}
	byFilters("conjunction by conjunction", wide)

	// Restricted to the documents that meet some conjunction, by mask and
	// conjunction by conjunction: a breakdown whose shares put every
	// conjunction's bound near zero, and none without a condition.
	counted := map[string]map[string]float64{correlate.FieldHost: {"h0": 1e9}}
	for _, f := range correlate.ScopeFields {
		if counted[f] == nil {
			counted[f] = map[string]float64{}
		}
	}
	src.keepShares("edge", counted)
	restricted := func(q correlate.ConjunctionQuery) correlate.ConjunctionQuery {
		q.Conjunctions = slices.DeleteFunc(slices.Clone(q.Conjunctions), func(c []correlate.Condition) bool { return len(c) == 0 })
		if b, ok := src.supportBound(q.Service, q.Conjunctions); !ok || b > restrictShare {
			t.Fatalf("the conjunctions' bound is %v (%v): the counts would not be restricted", b, ok)
		}
		return q
	}
	check("by mask, restricted", restricted(q), true)
	check("by several masks, restricted", restricted(wide), false)
}

// TestSupportBound: the bound on the share of requests some conjunction
// meets, from the last breakdown's requests per value: the least share of
// each conjunction's conditions (a prefix sums the values under it), summed;
// none without a breakdown or with a conjunction of no condition.
func TestSupportBound(t *testing.T) {
	s := &Source{}
	aws := correlate.Condition{Field: correlate.FieldProvider, Value: "aws"}
	h1 := correlate.Condition{Field: correlate.FieldHost, Value: "h1"}
	fn := correlate.Condition{Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true}
	if _, ok := s.supportBound("edge", [][]correlate.Condition{{aws}}); ok {
		t.Error("a bound with no breakdown")
	}
	s.keepShares("edge", map[string]map[string]float64{
		correlate.FieldProvider: {"aws": 40, "gcp": 60},
		correlate.FieldHost:     {"h1": 5, "h2": 95},
		correlate.FieldPath:     {"/.fn/a": 10, "/.fn/b": 20, "/cart": 70},
	})
	for _, tc := range []struct {
		conjs [][]correlate.Condition
		want  float64
	}{
		{[][]correlate.Condition{{aws}}, 0.4},
		{[][]correlate.Condition{{aws, h1}}, 0.05},
		{[][]correlate.Condition{{fn}}, 0.3},
		{[][]correlate.Condition{{aws, fn}, {h1}}, 0.35},
		{[][]correlate.Condition{{{Field: correlate.FieldHost, Value: "h9"}}}, 0},
		{[][]correlate.Condition{{{Field: correlate.FieldRegion, Value: "r1"}}}, 1},
	} {
		got, ok := s.supportBound("edge", tc.conjs)
		if !ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%v: bound %v (%v), want %v", tc.conjs, got, ok, tc.want)
		}
	}
	if _, ok := s.supportBound("edge", [][]correlate.Condition{{aws}, nil}); ok {
		t.Error("a bound for a conjunction of no condition, which meets every request")
	}
	if _, ok := s.supportBound("api", [][]correlate.Condition{{aws}}); ok {
		t.Error("a bound for a service with no breakdown")
	}
}

// TestPlanMask pins the layout: one level per string field, nested
// conditions' level last, roots, and what each conjunction needs.
func TestPlanMask(t *testing.T) {
	byName := map[string]field{
		correlate.FieldPath:     {agg: "url.path", kind: kindString},
		correlate.FieldProvider: {agg: "cloud.provider", kind: kindString},
		"status":                {agg: "http.response.status_code", kind: kindNumber},
	}
	fn := correlate.Condition{Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true}
	run := correlate.Condition{Field: correlate.FieldPath, Value: "/.fn/a/run"}
	cart := correlate.Condition{Field: correlate.FieldPath, Value: "/cart"}
	aws := correlate.Condition{Field: correlate.FieldProvider, Value: "aws"}
	gcp := correlate.Condition{Field: correlate.FieldProvider, Value: "gcp"}
	s500 := correlate.Condition{Field: "status", Value: "500"}
	s502 := correlate.Condition{Field: "status", Value: "502"}
	region := correlate.Condition{Field: correlate.FieldRegion, Value: "r1"}
	conjs := [][]correlate.Condition{nil, {fn, aws}, {run}, {cart}, {aws, gcp}, {fn, run}, {run, fn}, {fn, cart}, {s500}, {s500, s502}, {region}, {aws, region}}
	p, ok := planMask(byName, conjs)
	if !ok {
		t.Fatal("planMask refused a small query")
	}
	var got []string
	for _, lv := range p.levels {
		var names []string
		for i, a := range lv.atoms {
			n := a.value
			if a.prefix {
				n += "*"
			}
			if !lv.root[i] {
				n += "(in)"
			}
			names = append(names, n)
		}
		got = append(got, strings.Join(names, ","))
	}
	// Provider and the two status levels land once per request; the path
	// level, where /.fn/a/run lies within /.fn/*, goes last.
	if want := []string{"aws,gcp", "500", "502", "/.fn/*,/.fn/a/run(in),/cart"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("levels = %q, want %q", got, want)
	}
	a := anyBucket
	wantNeed := [][]int{
		{a, a, a, a}, {0, a, a, 0}, {a, a, a, 1}, {a, a, a, 2}, nil, {a, a, a, 1}, {a, a, a, 1}, nil, {a, 0, a, a}, {a, 0, 0, a}, nil, nil,
	}
	if !reflect.DeepEqual(p.need, wantNeed) {
		t.Errorf("need = %v, want %v", p.need, wantNeed)
	}
	// The empty conjunction sums the roots and other, never a bucket
	// within a root; a conjunction naming the inner bucket takes it alone.
	if !p.matches(0, []int{otherBucket, otherBucket, otherBucket, 0}) || p.matches(0, []int{otherBucket, otherBucket, otherBucket, 1}) {
		t.Error("the empty conjunction must sum roots and other, and only them")
	}
	if !p.matches(2, []int{0, otherBucket, 0, 1}) || p.matches(2, []int{0, otherBucket, 0, 0}) {
		t.Error("a conjunction on /.fn/a/run must take that bucket and no other")
	}

	// Too many combinations: refused.
	var many [][]correlate.Condition
	for i := range 70 {
		many = append(many, []correlate.Condition{{Field: correlate.FieldProvider, Value: strconv.Itoa(i)}}, []correlate.Condition{{Field: correlate.FieldPath, Value: "/" + strconv.Itoa(i)}})
	}
	if _, ok := planMask(byName, many); ok {
		t.Error("planMask accepted 71 × 71 combinations")
	}
}
