package correlate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// doc is one constructed request: its dimension values, whether it is one
// of the signature's errors, and whether it came before onset.
type doc struct {
	vals   map[string]string
	err    bool
	before bool
}

// docCounter counts conjunctions over constructed documents, as a source
// counts them over its logs.
type docCounter struct {
	docs  []doc
	calls int
}

func (d *docCounter) CountConjunctions(_ context.Context, q ConjunctionQuery) ([]ConjunctionCount, error) {
	d.calls++
	out := make([]ConjunctionCount, len(q.Conjunctions))
	for i, conj := range q.Conjunctions {
		for _, x := range d.docs {
			if !slices.ContainsFunc(conj, func(c Condition) bool { return !c.Matches(x.vals[c.Field]) }) {
				switch {
				case x.before && x.err:
					out[i].ErrorsBefore++
					out[i].RequestsBefore++
				case x.before:
					out[i].RequestsBefore++
				case x.err:
					out[i].Errors++
					out[i].Requests++
				default:
					out[i].Requests++
				}
			}
		}
	}
	return out, nil
}

// scopeOf is the one-dimension breakdown of the documents after onset.
func scopeOf(docs []doc) *Scope {
	sc := &Scope{Errors: map[string]map[string]float64{}, Requests: map[string]map[string]float64{}}
	for _, f := range ScopeFields {
		sc.Errors[f], sc.Requests[f] = map[string]float64{}, map[string]float64{}
	}
	for _, x := range docs {
		if x.before {
			continue
		}
		for f, v := range x.vals {
			sc.Requests[f][v]++
			if x.err {
				sc.Errors[f][v]++
			}
		}
	}
	return sc
}

// requestsOf builds requests over providers, regions, hosts and paths; fail
// says which fail (i counts requests so that rates are exact, not drawn).
func requestsOf(n int, before bool, version func(i int) string, fail func(i int, v map[string]string) bool) []doc {
	providers := []string{"aws", "aws", "gcp", "azure"}
	regions := []string{"us-east-1", "us-east-1", "us-east-1", "eu-west-1", "eu-west-1"}
	paths := []string{"/", "/assets/app.js", "/.fn/checkout", "/.fn/login", "/.fn/search", "/api/v1/sites", "/blog/", "/cart", "/.fn/cart", "/products/"}
	var out []doc
	for i := range n {
		v := map[string]string{
			FieldProvider: providers[i%len(providers)],
			FieldRegion:   regions[(i/7)%len(regions)],
			FieldHost:     fmt.Sprintf("edge-%d", (i/3)%8),
			FieldPath:     paths[(i/11)%len(paths)],
			FieldCustomer: fmt.Sprintf("org-%d", (i/13)%40),
			FieldVersion:  version(i),
		}
		out = append(out, doc{vals: v, before: before, err: fail(i, v)})
	}
	return out
}

func TestExplainFindsConjunctionOverDecoys(t *testing.T) {
	same := func(int) string { return "2.4.1" }
	// Errors on aws ∧ /.fn/*, every third one (rates, not all); the
	// region us-east-1 carries 60% of errors and 60% of requests, a decoy
	// without lift, and single values of provider and path each hold
	// every error with a far lower rate than their conjunction.
	fails := func(i int, v map[string]string) bool {
		return v[FieldProvider] == "aws" && len(v[FieldPath]) > 4 && v[FieldPath][:5] == "/.fn/" && i%3 == 0
	}
	docs := append(requestsOf(4000, true, same, func(int, map[string]string) bool { return false }),
		requestsOf(4000, false, same, fails)...)
	dc := &docCounter{docs: docs}
	ex, err := explainScope(context.Background(), dc, scopeOf(docs), ConjunctionQuery{Service: "edge"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) == 0 {
		t.Fatal("no explanation")
	}
	want := []Condition{{Field: FieldProvider, Value: "aws"}, {Field: FieldPath, Value: "/.fn/*", Prefix: true}}
	if !slices.Equal(ex[0].Conditions, want) {
		t.Fatalf("top explanation %s; want %v (all: %+v)", ex[0].Label(), want, ex)
	}
	if ex[0].ShareOfErrors != 1 || ex[0].Versus != "rest" || ex[0].RiskRatio < 100 {
		t.Errorf("top explanation %+v: want all errors, against the rest, a risk ratio over 100", ex[0])
	}
	if got := ex[0].Phrase(); got != "customers calling /.fn/* on cloud.provider=aws" {
		t.Errorf("phrase %q", got)
	}
	for _, e := range ex {
		for _, c := range e.Conditions {
			if c.Field == FieldRegion {
				t.Errorf("decoy region listed: %s", e.Label())
			}
		}
	}
}

func TestExplainComparesRolledOutVersionWithPredecessor(t *testing.T) {
	// The old version fails 1 request in 500 before onset; the new one
	// serves every request after it and fails 1 in 50. Within the episode
	// there is nothing to compare it with.
	docs := append(requestsOf(5000, true, func(int) string { return "1.41.33" }, func(i int, _ map[string]string) bool { return i%500 == 0 }),
		requestsOf(5000, false, func(int) string { return "1.42.0" }, func(i int, _ map[string]string) bool { return i%50 == 0 })...)
	ex, err := explainScope(context.Background(), &docCounter{docs: docs}, scopeOf(docs), ConjunctionQuery{Service: "api"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ex, func(e Explanation) bool {
		return slices.Equal(e.Conditions, []Condition{{Field: FieldVersion, Value: "1.42.0"}})
	})
	if i < 0 {
		t.Fatalf("version 1.42.0 not among %+v", ex)
	}
	if e := ex[i]; e.Versus != "before" || e.RiskRatio < 5 || e.RiskRatio > 20 {
		t.Errorf("version explanation %+v: want compared with before onset, risk ratio near 10", e)
	}
}

func TestExplainDropsSupersetThatExplainsNoBetter(t *testing.T) {
	// A canary host runs the new version alone and fails there: host and
	// version select the same requests, so their conjunction adds nothing.
	version := func(i int) string {
		if (i/3)%8 == 5 {
			return "3.0.0-canary"
		}
		return "2.9.9"
	}
	fails := func(i int, v map[string]string) bool { return v[FieldHost] == "edge-5" && i%2 == 0 }
	docs := requestsOf(6000, false, version, fails)
	ex := explanations([][]Condition{nil,
		{{Field: FieldHost, Value: "edge-5"}},
		{{Field: FieldVersion, Value: "3.0.0-canary"}},
		{{Field: FieldHost, Value: "edge-5"}, {Field: FieldVersion, Value: "3.0.0-canary"}},
	}, mustCount(t, docs, [][]Condition{nil,
		{{Field: FieldHost, Value: "edge-5"}},
		{{Field: FieldVersion, Value: "3.0.0-canary"}},
		{{Field: FieldHost, Value: "edge-5"}, {Field: FieldVersion, Value: "3.0.0-canary"}},
	}), nil, reach{})
	if len(ex) != 2 {
		t.Fatalf("explanations %+v; want host and version alone", ex)
	}
	if ex[0].Label() != "host.name=edge-5" || ex[1].Label() != "service.version=3.0.0-canary" {
		t.Errorf("order %s, %s; want host first (same counts, field order)", ex[0].Label(), ex[1].Label())
	}
}

func TestExplainNothingWithoutLift(t *testing.T) {
	// Errors spread evenly: every value carries its share, nothing explains.
	docs := requestsOf(6000, false, func(int) string { return "1.0.0" }, func(i int, _ map[string]string) bool { return i%37 == 0 })
	ex, err := explainScope(context.Background(), &docCounter{docs: docs}, scopeOf(docs), ConjunctionQuery{}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 0 {
		t.Errorf("explanations %+v; want none", ex)
	}
}

func TestExplainRejectsShortCount(t *testing.T) {
	docs := requestsOf(100, false, func(int) string { return "1" }, func(i int, _ map[string]string) bool { return i%2 == 0 })
	_, err := explainScope(context.Background(), shortCounter{}, scopeOf(docs), ConjunctionQuery{Service: "edge"}, nil, "")
	if err == nil {
		t.Fatal("want an error for a source answering fewer counts than asked")
	}
}

type shortCounter struct{}

func (shortCounter) CountConjunctions(context.Context, ConjunctionQuery) ([]ConjunctionCount, error) {
	return []ConjunctionCount{{Errors: 1, Requests: 1}}, nil
}

func mustCount(t *testing.T, docs []doc, conjs [][]Condition) []ConjunctionCount {
	t.Helper()
	out, err := (&docCounter{docs: docs}).CountConjunctions(context.Background(), ConjunctionQuery{Conjunctions: conjs})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPathPrefixes(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"/.fn/checkout", []string{"/.fn/*"}},
		{"/api/v1/sites/123/deploys", []string{"/api/*", "/api/v1/*", "/api/v1/sites/*"}},
		{"/", nil},
		{"/cart", nil},
		{"/blog/", []string{"/blog/*"}},
		{"relative/path", nil},
		{"//double", nil},
	}
	for _, c := range cases {
		if got := PathPrefixes(c.in); !slices.Equal(got, c.want) {
			t.Errorf("PathPrefixes(%q) = %v; want %v", c.in, got, c.want)
		}
	}
}

// TestHeadlineOneNumberPerThing: the headline names its denominators and
// agrees with the severity line on who carries the errors.
func TestHeadlineOneNumberPerThing(t *testing.T) {
	cfg := rules.Default().Correlate
	onset := time.Date(2026, 11, 20, 13, 31, 0, 0, time.UTC)
	one := Finding{Kind: KindErrorIncrease, Service: "api", Signature: "invalid API key for site <*>", Onset: onset,
		Frequency: Frequency{ShareBefore: 0.0017, ShareAfter: 0.031},
		Scope: ScopeSummary{Affected: map[string]int{FieldCustomer: 7, FieldHost: 6},
			Concentration: []Concentration{{Field: FieldCustomer, Value: "31233", ShareOfErrors: 0.92, ShareOfRequests: 0.18}}}}
	h := Headline(one)
	_, reasons := grade(one, 1, 60, elevated, cfg)
	for _, want := range []string{"affecting 7 customers (92% of the errors from organization.id=31233)", "16% of requests on organization.id=31233 failed (3.1% of all api requests)"} {
		if !strings.Contains(h, want) {
			t.Errorf("headline %q lacks %q", h, want)
		}
	}
	if !strings.Contains(reasons[0], "carries 92% of the errors of the 7 customers affected") {
		t.Errorf("severity reason %q does not repeat the headline's numbers", reasons[0])
	}

	fn := Finding{Kind: KindNewError, Service: "edge", Signature: "boom", Onset: onset, Frequency: Frequency{ShareAfter: 0.0045},
		Scope: ScopeSummary{Affected: map[string]int{FieldCustomer: 59},
			Concentration: []Concentration{{Field: FieldProvider, Value: "aws", ShareOfErrors: 1, ShareOfRequests: 0.44}},
			Explanations: []Explanation{{Conditions: []Condition{{Field: FieldProvider, Value: "aws"}, {Field: FieldPath, Value: "/.fn/*", Prefix: true}},
				ShareOfErrors: 1, ShareOfRequests: 0.088, ErrorRate: 0.051}}}}
	h = Headline(fn)
	want := "affecting 59 customers, 100% of the errors for customers calling /.fn/* on cloud.provider=aws, where 5.1% of requests failed (0.45% of all edge requests)"
	if !strings.Contains(h, want) {
		t.Errorf("headline %q lacks %q", h, want)
	}
}

// wrapped narrows a source the way the daemon and the backtest do.
type wrapped struct{ Source }

func (w wrapped) Unwrap() Source { return w.Source }

type countingSource struct {
	Source
	docCounter
}

func TestCounterOfLooksThroughWrappers(t *testing.T) {
	inner := &countingSource{}
	if _, ok := counterOf(wrapped{wrapped{inner}}); !ok {
		t.Error("counter behind two wrappers not found")
	}
	if _, ok := counterOf(wrapped{&countingSource{}}); !ok {
		t.Error("counter behind one wrapper not found")
	}
	type plain struct{ Source }
	if _, ok := counterOf(plain{inner}); ok {
		t.Error("a wrapper without Unwrap hides the counter, and must not be looked through")
	}
}

func TestExplainRanksContemporariesBeforeThePast(t *testing.T) {
	// A harmless version finished rolling out just before a region's
	// outage: it serves every request after onset, and no request failed
	// before. Only the region is compared with requests of the same time.
	docs := append(requestsOf(20000, true, func(int) string { return "7.0.0" }, func(int, map[string]string) bool { return false }),
		requestsOf(2000, false, func(int) string { return "7.0.1" }, func(i int, v map[string]string) bool {
			return v[FieldRegion] == "eu-west-1" && i%5 == 0
		})...)
	ex, err := explainScope(context.Background(), &docCounter{docs: docs}, scopeOf(docs), ConjunctionQuery{Service: "edge"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) == 0 || ex[0].Label() != "cloud.region=eu-west-1" {
		t.Fatalf("explanations %+v; want the region first", ex)
	}
}

func TestExplainCandidatesKeepFootprintAlone(t *testing.T) {
	items := []Condition{{Field: FieldProvider, Value: "aws"}, {Field: FieldVersion, Value: "2.43.0"}, {Field: FieldPath, Value: "/fn/*", Prefix: true},
		{Field: FieldHost, Value: "edge-1"}}
	got := explainCandidates(items)
	var labels []string
	for _, c := range got {
		labels = append(labels, Explanation{Conditions: c}.Label())
	}
	want := []string{"", "cloud.provider=aws", "cloud.provider=aws ∧ url.path=/fn/*", "service.version=2.43.0", "url.path=/fn/*", "host.name=edge-1"}
	if !slices.Equal(labels, want) {
		t.Errorf("candidates %q; want %q", labels, want)
	}
}

func TestExplainRanksVersionAfterWhereItRuns(t *testing.T) {
	// A canary host served the old version for the first minute of the
	// episode: the version selects fewer requests and has the higher rate,
	// but the host says where, and the suspect already names the version.
	host := []Condition{{Field: FieldHost, Value: "api-3"}}
	version := []Condition{{Field: FieldVersion, Value: "5.13.0-canary.1"}}
	ex := explanations([][]Condition{nil, host, version}, []ConjunctionCount{
		{Errors: 120, Requests: 60000, RequestsBefore: 200000},
		{Errors: 120, Requests: 6000, RequestsBefore: 20000},
		{Errors: 120, Requests: 5500},
	}, nil, reach{})
	if len(ex) != 2 || ex[0].Label() != "host.name=api-3" || ex[1].Label() != "service.version=5.13.0-canary.1" {
		t.Fatalf("explanations %+v; want the host, then the version", ex)
	}
}

func TestExplainRanksCoverageFirst(t *testing.T) {
	// Early in an incident six of ten errors fell on one small site: its
	// rate is far higher, but aws ∧ /fn/* holds every error.
	site := []Condition{{Field: FieldSite, Value: "app-1.example.com"}}
	fn := []Condition{{Field: FieldProvider, Value: "aws"}, {Field: FieldPath, Value: "/fn/*", Prefix: true}}
	ex := explanations([][]Condition{nil, site, fn}, []ConjunctionCount{
		{Errors: 10, Requests: 40000},
		{Errors: 6, Requests: 60},
		{Errors: 10, Requests: 3500},
	}, nil, reach{})
	if len(ex) != 2 || ex[0].Label() != "cloud.provider=aws ∧ url.path=/fn/*" {
		t.Fatalf("explanations %+v; want aws ∧ /fn/* first", ex)
	}
}

func TestExplainDropsValueNestedInABroaderOne(t *testing.T) {
	// Six errors, all in us-east-1, a region of aws: too few to tell the
	// region from the provider, whose other region has a third of its
	// function calls (all six land in us-east-1 by chance (2/3)^6, 9% of
	// the time). The data nest the region in the provider (their
	// conjunction matches what the region matches).
	aws := Condition{Field: FieldProvider, Value: "aws"}
	use1 := Condition{Field: FieldRegion, Value: "us-east-1"}
	fn := Condition{Field: FieldPath, Value: "/fn/*", Prefix: true}
	conjs := [][]Condition{nil, {aws}, {use1}, {fn}, {aws, use1}, {aws, fn}, {use1, fn}, {aws, use1, fn}}
	counts := []ConjunctionCount{
		{Errors: 6, Requests: 40000},
		{Errors: 6, Requests: 18000}, {Errors: 6, Requests: 12000}, {Errors: 6, Requests: 9000},
		{Errors: 6, Requests: 12000}, {Errors: 6, Requests: 3000}, {Errors: 6, Requests: 2000},
		{Errors: 6, Requests: 2000},
	}
	ex := explanations(conjs, counts, nil, reach{})
	if len(ex) == 0 || ex[0].Label() != "cloud.provider=aws ∧ url.path=/fn/*" {
		t.Fatalf("explanations %+v; want aws ∧ /fn/* first", ex)
	}
	for _, e := range ex {
		if slices.Contains(e.Conditions, use1) {
			t.Errorf("the region, nested in aws and not surer than it, is listed: %s", e.Label())
		}
	}
}

// Early in a rollout of several hosts the errors fall on the one host it
// has reached: the host selects fewer requests, so a higher rate, than
// aws ∧ /fn/*, which covers the same errors and stays true as the rollout
// spreads. The host is then the rollout's footprint and ranks after it;
// a canary's host (not transient) keeps the lead.
func TestExplainRanksARollingHostAfterWhoIsHurt(t *testing.T) {
	host := []Condition{{Field: FieldHost, Value: "edge-aws-use1-01"}}
	fn := []Condition{{Field: FieldProvider, Value: "aws"}, {Field: FieldPath, Value: "/fn/*", Prefix: true}}
	conjs := [][]Condition{nil, host, fn}
	counts := []ConjunctionCount{
		{Errors: 14, Requests: 60000, RequestsBefore: 240000},
		{Errors: 14, Requests: 2500, RequestsBefore: 10000},
		{Errors: 14, Requests: 4000, RequestsBefore: 16000},
	}
	rolling := func(c Condition) bool { return c.Field == FieldHost && c.Value == "edge-aws-use1-01" }
	ex := explanations(conjs, counts, rolling, reach{})
	if len(ex) != 2 || ex[0].Label() != "cloud.provider=aws ∧ url.path=/fn/*" {
		t.Fatalf("explanations %+v; want aws ∧ /fn/* before the host the rollout is passing through", ex)
	}
	if ex := explanations(conjs, counts, nil, reach{}); len(ex) != 2 || ex[0].Label() != "host.name=edge-aws-use1-01" {
		t.Fatalf("explanations %+v; want a host that is not a rollout's footprint first (higher rate, same coverage)", ex)
	}
}

func TestRolloutFootprint(t *testing.T) {
	w, _ := NewWindow(t0, t0.Add(60*time.Minute), time.Minute)
	d := &Deploy{ID: "d", FinishedAt: w.Start(30), Hosts: []HostRollout{{Name: "a", At: w.Start(10)}, {Name: "b", At: w.Start(20)}, {Name: "c", At: w.Start(30)}}}
	// What a deploy feed says mid-rollout: the hosts so far, no finish.
	sofar := &Deploy{ID: "d", Hosts: d.Hosts[:1]}
	errsOn := func(hosts ...string) *Scope {
		sc := &Scope{HostErrors: map[string][]float64{}}
		for _, h := range hosts {
			sc.HostErrors[h] = make([]float64, 60)
			sc.HostErrors[h][40] = 3
		}
		return sc
	}
	cases := []struct {
		name string
		d    *Deploy
		sc   *Scope
		to   time.Time
		want bool
	}{
		{"rollout under way", d, errsOn("a"), w.Start(25), true},
		{"finished, errors on one host", d, errsOn("a"), w.Start(45), false},
		{"finished, errors on two hosts", d, errsOn("a", "b"), w.Start(45), true},
		{"a canary", &Deploy{FinishedAt: w.Start(11), Hosts: d.Hosts[:1]}, errsOn("a"), w.Start(45), false},
		{"under way, one host so far in the feed", sofar, errsOn("a"), w.Start(12), true},
		{"no suspect", nil, errsOn("a"), w.Start(25), false},
	}
	for _, c := range cases {
		f := rolloutFootprint(c.d, c.sc, w, c.to)
		got := f != nil && f(Condition{Field: FieldHost, Value: "a"})
		if got != c.want {
			t.Errorf("%s: host a transient = %t, want %t", c.name, got, c.want)
		}
	}
}

// TestExplainDemotesWhereTheVersionRuns: a rollout has reached one host,
// aws in us-east-1, and its /fn/* calls fail there. aws and us-east-1
// select every request of the new version, so their sharper rates say
// only where it runs: the explanation is /fn/*, with the provider and the
// region ranked after it, alone. Once the version also runs on a gcp
// host whose /fn/* calls succeed, the data tell aws apart, and aws ∧
// /fn/* leads.
func TestExplainDemotesWhereTheVersionRuns(t *testing.T) {
	type host struct{ name, provider, region, version string }
	build := func(hosts []host) []doc {
		var docs []doc
		for _, h := range hosts {
			for i := range 1200 {
				path := []string{"/", "/cart", "/fn/checkout", "/fn/search"}[i%4]
				v := map[string]string{FieldHost: h.name, FieldProvider: h.provider, FieldRegion: h.region, FieldVersion: h.version,
					FieldPath: path, FieldCustomer: fmt.Sprintf("org-%d", i%30)}
				fail := h.version == "2.0" && h.provider == "aws" && strings.HasPrefix(path, "/fn/") && (i/4)%3 == 0
				docs = append(docs, doc{vals: v, err: fail})
			}
		}
		return docs
	}
	rolling := func(names ...string) func(Condition) bool {
		return func(c Condition) bool { return c.Field == FieldHost && slices.Contains(names, c.Value) }
	}
	labels := func(ex []Explanation) []string {
		var out []string
		for _, e := range ex {
			out = append(out, e.Label())
		}
		return out
	}
	early := build([]host{
		{"edge-aws-use1-01", "aws", "us-east-1", "2.0"},
		{"edge-aws-use1-02", "aws", "us-east-1", "1.9"},
		{"edge-aws-euw1-01", "aws", "eu-west-1", "1.9"},
		{"edge-gcp-usc1-01", "gcp", "us-central1", "1.9"},
	})
	ex, err := explainScope(context.Background(), &docCounter{docs: early}, scopeOf(early), ConjunctionQuery{Service: "edge"}, rolling("edge-aws-use1-01"), "2.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) == 0 || ex[0].Label() != "url.path=/fn/*" {
		t.Fatalf("explanations %q; want /fn/* first: aws and us-east-1 are only where 2.0 runs", labels(ex))
	}
	for _, e := range ex {
		if len(e.Conditions) > 1 && slices.ContainsFunc(e.Conditions, func(c Condition) bool { return c.Field == FieldProvider || c.Field == FieldRegion }) {
			t.Errorf("%s: a provider or region confounded with the version joins a conjunction", e.Label())
		}
	}
	// The same data without a suspect: nothing says where a version runs,
	// and the sharper conjunction leads, as before.
	if ex, _ := explainScope(context.Background(), &docCounter{docs: early}, scopeOf(early), ConjunctionQuery{Service: "edge"}, nil, ""); len(ex) == 0 || ex[0].Label() == "url.path=/fn/*" {
		t.Fatalf("without a suspect, explanations %q; want a sharper one than /fn/* first", labels(ex))
	}

	// 2.0 on a gcp host too, but on aws still only in us-east-1: aws is
	// evidence again, and us-east-1 ∧ /fn/*, sharper only because the
	// aws hosts of eu-west-1 run 1.9, is not minimal against it.
	middle := build([]host{
		{"edge-aws-use1-01", "aws", "us-east-1", "2.0"},
		{"edge-aws-euw1-01", "aws", "eu-west-1", "1.9"},
		{"edge-gcp-usc1-01", "gcp", "us-central1", "2.0"},
		{"edge-gcp-usc1-02", "gcp", "us-central1", "1.9"},
	})
	ex, err = explainScope(context.Background(), &docCounter{docs: middle}, scopeOf(middle), ConjunctionQuery{Service: "edge"}, rolling("edge-aws-use1-01", "edge-gcp-usc1-01"), "2.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) == 0 || ex[0].Label() != "cloud.provider=aws ∧ url.path=/fn/*" {
		t.Fatalf("explanations %q; want aws ∧ /fn/* first while 2.0 runs on aws only in us-east-1", labels(ex))
	}
	for _, e := range ex {
		if slices.Contains(e.Conditions, Condition{Field: FieldRegion, Value: "us-east-1"}) {
			t.Errorf("%s: us-east-1 is only where 2.0 runs on aws", e.Label())
		}
	}
	// Without the version's counts the region's sharper rate wins: the
	// check above is not vacuous.
	if ex, _ := explainScope(context.Background(), &docCounter{docs: middle}, scopeOf(middle), ConjunctionQuery{Service: "edge"}, nil, ""); len(ex) == 0 || !slices.Contains(ex[0].Conditions, Condition{Field: FieldRegion, Value: "us-east-1"}) {
		t.Fatalf("without a suspect, explanations %q; want us-east-1 in the first", labels(ex))
	}

	later := build([]host{
		{"edge-aws-use1-01", "aws", "us-east-1", "2.0"},
		{"edge-aws-euw1-01", "aws", "eu-west-1", "2.0"},
		{"edge-gcp-usc1-01", "gcp", "us-central1", "2.0"},
		{"edge-gcp-usc1-02", "gcp", "us-central1", "1.9"},
	})
	ex, err = explainScope(context.Background(), &docCounter{docs: later}, scopeOf(later), ConjunctionQuery{Service: "edge"}, rolling("edge-aws-use1-01", "edge-aws-euw1-01", "edge-gcp-usc1-01"), "2.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) == 0 || ex[0].Label() != "cloud.provider=aws ∧ url.path=/fn/*" {
		t.Fatalf("explanations %q; want aws ∧ /fn/* first once 2.0 runs on a gcp host that does not fail", labels(ex))
	}
}

// TestExplainRanksTheVersionLastAmongFootprints: a canary whose feed has
// not yet said it finished (so its host is transient), on a gcp host
// (gcp confounded: every request of the canary is gcp's). All three only
// say where the canary runs; the host says it most precisely, and the
// version, which the suspect line names, comes last.
func TestExplainRanksTheVersionLastAmongFootprints(t *testing.T) {
	version := Condition{Field: FieldVersion, Value: "5.15.0-canary.1"}
	host := Condition{Field: FieldHost, Value: "api-gcp-usc1-01"}
	gcp := Condition{Field: FieldProvider, Value: "gcp"}
	conjs := [][]Condition{nil, {version}, {host}, {gcp}}
	counts := []ConjunctionCount{{Errors: 7, Requests: 1300}, {Errors: 7, Requests: 94}, {Errors: 7, Requests: 120}, {Errors: 7, Requests: 292}}
	ex := explanations(conjs, counts, func(c Condition) bool { return c == host }, reach{confounded: func(c Condition) bool { return c == gcp }})
	var got []string
	for _, e := range ex {
		got = append(got, e.Label())
	}
	want := []string{"host.name=api-gcp-usc1-01", "cloud.provider=gcp", "service.version=5.15.0-canary.1"}
	if !slices.Equal(got, want) {
		t.Fatalf("explanations %q; want %q", got, want)
	}
}

// The corpus's new_error_provider-s2 at its page: five errors, all on
// aws ∧ /fn/*, which holds 294 of the 760 /fn/* requests. All five land
// there by chance (294/760)^5, under 1% of the time, so the conjunction
// is sharper than /fn/* alone; the log-scale interval with its corrected
// empty cell said otherwise (lower bound 0.97) and named /fn/* alone.
func TestExplainConjunctionFromAHandfulOfErrors(t *testing.T) {
	aws := Condition{Field: FieldProvider, Value: "aws"}
	fn := Condition{Field: FieldPath, Value: "/fn/*", Prefix: true}
	conjs := [][]Condition{nil, {aws}, {fn}, {aws, fn}}
	counts := []ConjunctionCount{
		{Errors: 5, Requests: 3457},
		{Errors: 5, Requests: 1232}, {Errors: 5, Requests: 760}, {Errors: 5, Requests: 294},
	}
	ex := explanations(conjs, counts, nil, reach{})
	if len(ex) == 0 || ex[0].Label() != "cloud.provider=aws ∧ url.path=/fn/*" {
		t.Fatalf("explanations %+v; want aws ∧ /fn/* first", ex)
	}
	// The bound is the exact one: all a+b = 5 errors in the conjunction
	// puts the binomial share's 97.5% lower bound at 0.025^(1/5).
	pi := math.Pow(0.025, 1.0/5)
	want := pi / (1 - pi) * (760 - 294) / 294
	if _, lo := riskRatio(5, 294, 0, 760-294); math.Abs(lo-want) > 1e-9*want {
		t.Errorf("riskRatio lower bound %v, want %v", lo, want)
	}
	// Two of three errors where half the requests are: no evidence at
	// all, whatever the correction does to the point estimate.
	if rr, lo := riskRatio(2, 100, 1, 100); lo >= 1 || rr <= 1 {
		t.Errorf("riskRatio(2/100 vs 1/100) = %v, lower %v; want a ratio above 1 with a bound below it", rr, lo)
	}
}

// refusingCounter is a source whose conjunction counter fails with err.
type refusingCounter struct {
	staticSource
	err error
}

func (r refusingCounter) CountConjunctions(context.Context, ConjunctionQuery) ([]ConjunctionCount, error) {
	return nil, r.err
}

// TestRunWithoutConjunctions: a wrapper that finds nothing inside able to
// count conjunctions (ErrNoConjunctions) leaves the finding its
// one-dimension table; any other counting error fails the run, as a
// failed read does.
func TestRunWithoutConjunctions(t *testing.T) {
	cfg := rules.Default().Correlate
	tr, sc, dep := rolloutRunUntil(3, 328, 20, 312)
	in := Input{Window: tr.Window, Deploys: []Deploy{dep}}
	res, err := Run(context.Background(), refusingCounter{staticSource{tr: tr, scope: sc}, ErrNoConjunctions}, in, cfg)
	if err != nil {
		t.Fatalf("Run over a source without conjunctions: %v", err)
	}
	if len(res.Findings) == 0 {
		t.Fatal("no finding: the run proves nothing")
	}
	for _, f := range res.Findings {
		if len(f.Scope.Explanations) != 0 || len(f.Scope.Affected) == 0 {
			t.Errorf("finding %q: explanations %v, %d affected fields; want none, and the scope still counted", f.Headline, f.Scope.Explanations, len(f.Scope.Affected))
		}
	}
	boom := errors.New("search failed")
	if _, err := Run(context.Background(), refusingCounter{staticSource{tr: tr, scope: sc}, boom}, in, cfg); !errors.Is(err, boom) {
		t.Fatalf("Run with a failing counter: %v, want %v", err, boom)
	}
}

// TestExplainBefore: a lookback before the onset, on the grid, and still
// while the onset moves by a minute or two within the grid's hour.
func TestExplainBefore(t *testing.T) {
	onset := time.Date(2026, 11, 20, 16, 3, 0, 0, time.UTC)
	for _, step := range []time.Duration{time.Minute, 7 * time.Minute, 2 * time.Hour} {
		b := explainBefore(onset, 6*time.Hour, step)
		lo := onset.Add(-6 * time.Hour)
		if b.After(lo) || !b.After(lo.Add(-max(time.Hour, step)-step)) {
			t.Errorf("step %v: before %v, want within a grid below %v", step, b, lo)
		}
		if !b.Equal(b.Truncate(step)) {
			t.Errorf("step %v: before %v is off the bucket grid", step, b)
		}
	}
	a, b := explainBefore(onset, 6*time.Hour, time.Minute), explainBefore(onset.Add(2*time.Minute), 6*time.Hour, time.Minute)
	if !a.Equal(b) {
		t.Errorf("onset moved by 2 minutes: before %v → %v", a, b)
	}
}
