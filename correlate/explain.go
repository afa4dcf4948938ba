package correlate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Condition is one attribute of an explanation: Field equals Value, or,
// when Prefix is set, Field starts with Value minus its trailing "*" (a
// URL path templated to its stable prefix, "/.fn/*").
type Condition struct {
	Field  string `json:"field"`
	Value  string `json:"value"`
	Prefix bool   `json:"prefix,omitempty"`
}

// Matches reports whether a document whose Field holds v meets c.
func (c Condition) Matches(v string) bool {
	if c.Prefix {
		return strings.HasPrefix(v, strings.TrimSuffix(c.Value, "*"))
	}
	return v == c.Value
}

func (c Condition) String() string { return c.Field + "=" + c.Value }

// ConjunctionQuery asks a source to count, for each conjunction of
// conditions, the signature's errors and the service's requests that meet
// every condition: during the episode [From, To) and before it
// [Before, From). An empty conjunction matches every document, which is
// how the correlator learns the totals in the same pass.
type ConjunctionQuery struct {
	Service string
	// Messages are the masked messages that make up the signature, as in
	// ScopeQuery.
	Messages         []string
	Before, From, To time.Time
	Conjunctions     [][]Condition
}

// ConjunctionCount is a source's count for one conjunction.
type ConjunctionCount struct {
	Errors, Requests             float64
	ErrorsBefore, RequestsBefore float64
}

// ConjunctionCounter is what a source offers to explain a finding's scope
// by conjunctions of dimension values. It is separate from Source because
// the candidates depend on the one-dimension breakdown Scope returns: a
// source that lacks it still gets the one-dimension table.
//
// CountConjunctions honours ctx and returns one count per conjunction, in
// order; errors carry the source's own context, as Source's do.
type ConjunctionCounter interface {
	CountConjunctions(ctx context.Context, q ConjunctionQuery) ([]ConjunctionCount, error)
}

// ErrNoConjunctions is what a wrapper's CountConjunctions returns when
// nothing it wraps can count conjunctions (a cache over a source without
// them): the finding keeps its one-dimension table, as it would with the
// source itself.
var ErrNoConjunctions = errors.New("source cannot count conjunctions")

// Behind is the first of src and the sources it wraps that offers T, if
// any. Wrappers that narrow a source (to watched services, to one
// service, a cache) pass Traffic through and name what they wrap with
// Unwrap, so they need not know about every optional capability.
func Behind[T any](src Source) (T, bool) {
	for range 8 {
		if t, ok := src.(T); ok {
			return t, true
		}
		u, ok := src.(interface{ Unwrap() Source })
		if !ok {
			break
		}
		src = u.Unwrap()
	}
	var zero T
	return zero, false
}

// counterOf is the ConjunctionCounter behind src, if any.
func counterOf(src Source) (ConjunctionCounter, bool) { return Behind[ConjunctionCounter](src) }

// Explanation is a conjunction of dimension values that accounts for a
// finding's errors out of proportion to its requests: MacroBase's
// explanation (Bailis et al., SIGMOD 2017), support among the errors and
// risk ratio against the requests. Every share names its denominator.
type Explanation struct {
	Conditions []Condition `json:"conditions"`
	// Errors and Requests are the signature's errors and the service's
	// requests that match, from onset to the end of the episode.
	Errors   int64 `json:"errors"`
	Requests int64 `json:"requests"`
	// ShareOfErrors is Errors over all the finding's errors in the same
	// span (MacroBase's support).
	ShareOfErrors float64 `json:"share_of_errors"`
	// ShareOfRequests is Requests over all the service's requests in the
	// same span.
	ShareOfRequests float64 `json:"share_of_requests"`
	// ErrorRate is Errors over Requests: the share of the matching
	// requests that failed.
	ErrorRate float64 `json:"error_rate"`
	// Versus says what the risk ratio compares ErrorRate with: "rest",
	// the other requests in the same span, or "before", the other
	// requests before onset, used when the matching requests grew to
	// serve most of the traffic (a version rolled out to every host has
	// no contemporary to compare with, but has a predecessor).
	Versus string `json:"versus"`
	// VersusErrorRate is the error rate of what ErrorRate is compared with.
	VersusErrorRate float64 `json:"versus_error_rate"`
	// RiskRatio is ErrorRate over VersusErrorRate (half a count added to
	// each cell, so an empty comparison stays finite), and RiskRatioLow
	// the lower end of its 95% interval.
	RiskRatio    float64 `json:"risk_ratio"`
	RiskRatioLow float64 `json:"risk_ratio_low"`
}

// Label is the conjunction as a reader says it: "cloud.provider=aws ∧
// url.path=/.fn/*".
func (e Explanation) Label() string {
	parts := make([]string, len(e.Conditions))
	for i, c := range e.Conditions {
		parts[i] = c.String()
	}
	return strings.Join(parts, " ∧ ")
}

// Phrase is the explanation as a headline's tail: "customers calling
// /.fn/* on cloud.provider=aws". Paths read as calls, the rest as
// attributes, so the sentence names where to look first.
func (e Explanation) Phrase() string {
	var path []string
	var rest []string
	for _, c := range e.Conditions {
		if c.Field == FieldPath {
			path = append(path, c.Value)
			continue
		}
		rest = append(rest, c.String())
	}
	switch {
	case len(path) > 0 && len(rest) > 0:
		return "customers calling " + strings.Join(path, ", ") + " on " + strings.Join(rest, " ∧ ")
	case len(path) > 0:
		return "customers calling " + strings.Join(path, ", ")
	default:
		return "requests on " + strings.Join(rest, " ∧ ")
	}
}

// Describe is the explanation with every share labelled by its
// denominator: "cloud.provider=aws ∧ url.path=/.fn/*: 100% of the errors,
// 4.1% of edge requests; 4.6% of these requests failed, 920× the rest
// (0.005%)".
func (e Explanation) Describe(service string) string {
	return e.Label() + ": " + e.Evidence(service)
}

// Evidence is Describe without the label, for renderers that format the
// label themselves.
func (e Explanation) Evidence(service string) string {
	versus := "the rest"
	if e.Versus == "before" {
		versus = "the rest before onset"
	}
	cmp := fmt.Sprintf("%s %s (%s)", Ratio(e.RiskRatio), versus, Percent(e.VersusErrorRate))
	if e.VersusErrorRate == 0 {
		// The ratio against nothing is the smoothing's, not a measurement.
		cmp = "none of " + versus
	}
	return fmt.Sprintf("%s of the errors, %s of %s requests; %s of these requests failed, %s",
		Percent(e.ShareOfErrors), Percent(e.ShareOfRequests), service, Percent(e.ErrorRate), cmp)
}

// Ratio formats a risk ratio: "920×", "3.4×".
func Ratio(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.1f×", x)
}

// TopExplanation is the explanation a headline names: the best one, when
// it covers most of the errors.
func TopExplanation(f Finding) (Explanation, bool) {
	if ex := f.Scope.Explanations; len(ex) > 0 && ex[0].ShareOfErrors >= explainMajority {
		return ex[0], true
	}
	return Explanation{}, false
}

// Explanation search bounds. The support and risk-ratio floors are
// MacroBase's defaults raised to what a page should name: an explanation
// that holds under a tenth of the errors, or a rate under three times the
// rest's, is not where to look first.
const (
	explainMinSupport = 0.1
	explainMinRisk    = 3
	// explainMaxItems bounds the single conditions combined; with up to
	// three per conjunction that is at most 12+66+220 counts, one pass.
	explainMaxItems = 12
	explainMaxOrder = 3
	// explainMajority is "most of the errors": explanations that cover
	// this much rank before those that do not.
	explainMajority = 0.5
	// explainShown bounds the explanations a finding carries.
	explainShown = 3
	// pathDepth is how many leading path segments a templated prefix
	// may keep.
	pathDepth = 3
)

// explainItems picks the single conditions worth combining from the
// one-dimension error counts: values, and for paths their prefixes, that
// carry at least explainMinSupport of the errors, most first.
func explainItems(sc *Scope) []Condition {
	type item struct {
		c Condition
		n float64
	}
	var items []item
	order := map[string]int{}
	for i, f := range ScopeFields {
		order[f] = i
		errs := sc.Errors[f]
		total := sumMap(errs)
		if total <= 0 {
			continue
		}
		counts := map[Condition]float64{}
		for v, n := range errs {
			if v == "" || v == otherValue {
				continue
			}
			counts[Condition{Field: f, Value: v}] += n
			if f == FieldPath {
				for _, p := range PathPrefixes(v) {
					counts[Condition{Field: f, Value: p, Prefix: true}] += n
				}
			}
		}
		for c, n := range counts {
			if n/total >= explainMinSupport {
				items = append(items, item{c, n / total})
			}
		}
	}
	sort.Slice(items, func(a, b int) bool {
		ia, ib := items[a], items[b]
		if ia.n != ib.n {
			return ia.n > ib.n
		}
		if ia.c.Field != ib.c.Field {
			return order[ia.c.Field] < order[ib.c.Field]
		}
		if ia.c.Prefix != ib.c.Prefix {
			return ia.c.Prefix // the shorter, templated form first
		}
		return ia.c.Value < ib.c.Value
	})
	if len(items) > explainMaxItems {
		items = items[:explainMaxItems]
	}
	out := make([]Condition, len(items))
	for i, it := range items {
		out[i] = it.c
	}
	return out
}

// otherValue is what sources count values past their cap as; it names no
// value and cannot explain anything.
const otherValue = "<other>"

// PathPrefixes templates a URL path to its stable prefixes: "/.fn/x/run"
// gives "/.fn/*" and "/.fn/x/*". Which prefix is stable is left to the
// data: a prefix over ids or names carries many values, each rare, while
// the prefix above them carries their sum, so support picks it without a
// rule for any particular path.
func PathPrefixes(path string) []string {
	if !strings.HasPrefix(path, "/") {
		return nil
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var out []string
	for d := 1; d < len(segs) && d <= pathDepth; d++ {
		if segs[d-1] == "" {
			break
		}
		out = append(out, "/"+strings.Join(segs[:d], "/")+"/*")
	}
	return out
}

// explainCandidates are the conjunctions of up to explainMaxOrder items
// on distinct fields, preceded by the empty conjunction (the totals).
// Versions and hosts stand alone (see footprint).
func explainCandidates(items []Condition) [][]Condition {
	out := [][]Condition{nil}
	var rec func(start int, cur []Condition)
	rec = func(start int, cur []Condition) {
		for i := start; i < len(items); i++ {
			clash := false
			for _, c := range cur {
				if c.Field == items[i].Field || footprint(c.Field) || footprint(items[i].Field) {
					clash = true
					break
				}
			}
			if clash {
				continue
			}
			next := append(append([]Condition(nil), cur...), items[i])
			out = append(out, next)
			if len(next) < explainMaxOrder {
				rec(i+1, next)
			}
		}
	}
	rec(0, nil)
	return out
}

// explainScope finds the finding's explanations: candidates counted by the
// source, then scored, filtered and made minimal by explanations.
//
// transient, when not nil, marks conditions that only say how far a rollout
// has got (see explanations).
//
// version, when not empty, is the suspected deploy's: each single
// condition, and each pair of them, is counted on it as well. One that
// every request of that version met is where the version runs, not who is
// hurt; two that the version's requests meet alike (us-east-1 and aws,
// while aws-euw1 hosts still run the old version) cannot be told apart by
// anything the version did (see explanations).
func explainScope(ctx context.Context, cc ConjunctionCounter, sc *Scope, q ConjunctionQuery, transient func(Condition) bool, version string) ([]Explanation, error) {
	items := explainItems(sc)
	if len(items) == 0 {
		return nil, nil
	}
	conjs := explainCandidates(items)
	q.Conjunctions = conjs
	var probes []Condition
	type pair struct{ a, b Condition }
	var pairs []pair
	if version != "" {
		v := Condition{Field: FieldVersion, Value: version}
		q.Conjunctions = append(slices.Clone(conjs), []Condition{v})
		for _, it := range items {
			if !footprint(it.Field) {
				probes = append(probes, it)
				q.Conjunctions = append(q.Conjunctions, []Condition{it, v})
			}
		}
		for i, a := range probes {
			for _, b := range probes[i+1:] {
				if a.Field != b.Field {
					pairs = append(pairs, pair{a, b})
					q.Conjunctions = append(q.Conjunctions, []Condition{a, b, v})
				}
			}
		}
	}
	counts, err := cc.CountConjunctions(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(counts) != len(q.Conjunctions) {
		return nil, fmt.Errorf("scope explanation of %s: source returned %d counts for %d conjunctions", q.Service, len(counts), len(q.Conjunctions))
	}
	var r reach
	if n := len(conjs); version != "" {
		all := map[Condition]bool{}
		on := map[Condition]float64{}
		if vreq := counts[n].Requests; vreq > 0 {
			for j, it := range probes {
				on[it] = counts[n+1+j].Requests
				if on[it] >= vreq {
					all[it] = true
				}
			}
		}
		alike := map[pair]bool{}
		for j, p := range pairs {
			both := counts[n+1+len(probes)+j].Requests
			if both > 0 && both == on[p.a] && both == on[p.b] {
				alike[p], alike[pair{p.b, p.a}] = true, true
			}
		}
		r.confounded = func(c Condition) bool { return all[c] }
		r.alike = func(a, b Condition) bool { return alike[pair{a, b}] }
		counts = counts[:n]
	}
	return explanations(conjs, counts, transient, r), nil
}

// reach is what the suspected version's own requests say about the
// conditions; its zero value knows of no suspect.
type reach struct {
	// confounded: every request of the version met the condition.
	confounded func(Condition) bool
	// alike: the version's requests that met one condition are exactly
	// those that met the other.
	alike func(a, b Condition) bool
}

// reachesAlike reports whether s differs from t only by conditions the
// version's requests meet exactly as they meet one of t's own: "us-east-1
// ∧ /fn/*" against "aws ∧ /fn/*" while the version runs on aws only in
// us-east-1. s's sharper rate is then how far the rollout has got (the
// aws hosts elsewhere still run the old version, whose requests cannot
// fail of the new one's fault), not who is hurt.
func (r reach) reachesAlike(s, t []Condition) bool {
	if r.alike == nil {
		return false
	}
	extra := false
	for _, a := range s {
		if slices.Contains(t, a) {
			continue
		}
		extra = true
		if !slices.ContainsFunc(t, func(b Condition) bool { return !slices.Contains(s, b) && r.alike(a, b) }) {
			return false
		}
	}
	return extra
}

// footprint reports whether a field is where a rollout has reached rather
// than who is hurt: a version, and the hosts that run it. They explain
// alone (a canary host, a version against its predecessor) but join no
// conjunction: early in a rollout "/fn/* on the one host with the new
// version" selects fewer requests than "/fn/* on aws" and would push out,
// by its higher rate, the attribute that says who is hurt and that holds
// as the rollout goes on.
func footprint(field string) bool { return field == FieldVersion || field == FieldHost }

// explanations scores counted conjunctions (the first, empty one holding
// the totals) and keeps the few that explain most: support of at least
// explainMinSupport, a risk ratio of at least explainMinRisk whose interval
// excludes 1, and minimal: a conjunction is dropped when a qualifying
// subset explains as well (a subset of its conditions, or one the data
// show it lies within: a region within its provider), that is when,
// among the subset's requests, the
// conjunction's own are not themselves an explanation (risk ratio against
// the subset's other requests below explainMinRisk, or its interval
// reaching 1). A canary host and its version select the same requests, and
// the pair adds nothing; provider and path, each holding all the errors
// but also requests that never fail, are sharper together. Ranked by the
// share of errors covered (in tenths), then those compared with their
// contemporaries before those compared with the past, a version after the
// rest, then by the lower bound (a sure ratio before a lucky one), then
// fewer conditions, then broader ones.
//
// A host the suspected rollout is still passing through (transient) ranks
// like the version: in its first minutes a rollout's errors fall on the one
// or two hosts it has reached, and "host.name=edge-aws-use1-01" selects
// fewer requests, so a higher rate, than "cloud.provider=aws ∧
// url.path=/fn/*", yet it is the rollout's footprint so far, which the
// suspect line already names, and it stops being true at the next host.
// A canary's one host, or one host of a finished rollout, is where the
// problem is, and keeps its rank.
//
// A condition that every request of the suspected version met
// (confounded) is the same kind of footprint: early in a rollout that has
// reached only aws hosts in us-east-1, "cloud.provider=aws" and
// "cloud.region=us-east-1" select the version's requests as well as the
// host does, and the requests they add (aws hosts still on the old
// version) cannot fail of the new version's fault. Their sharper rate is
// the rollout's reach, not evidence about who is hurt, so they explain
// alone, ranked after who is hurt, and join no conjunction; once the
// version serves requests they do not match (a gcp host without errors),
// they are evidence again. Among footprints the version ranks last: a
// host or a provider at least says where.
//
// The same holds between two conditions (r.alike): once the version runs
// on gcp too, aws is evidence, but while its only aws hosts are in
// us-east-1, "us-east-1 ∧ /fn/*" is sharper than "aws ∧ /fn/*" for the
// same reason, and is not minimal against it.
func explanations(conjs [][]Condition, counts []ConjunctionCount, transient func(Condition) bool, r reach) []Explanation {
	confounded := r.confounded
	if len(conjs) == 0 || len(conjs) != len(counts) || len(conjs[0]) != 0 {
		return nil
	}
	tot := counts[0]
	if tot.Errors <= 0 || tot.Requests <= 0 {
		return nil
	}
	type scored struct {
		e Explanation
		c ConjunctionCount
	}
	var ok []scored
	for i := 1; i < len(conjs); i++ {
		if len(conjs[i]) > 1 && confounded != nil && slices.ContainsFunc(conjs[i], confounded) {
			continue
		}
		if e, pass := score(conjs[i], counts[i], tot); pass {
			ok = append(ok, scored{e, counts[i]})
		}
	}
	// within reports whether every request of s is one of t's: t's
	// conditions are a subset of s's, or the data nest them (cloud.region
	// =us-east-1 within cloud.provider=aws), which shows when s ∧ t was
	// counted and matched what s matched.
	byKey := map[string]ConjunctionCount{}
	for i, conj := range conjs {
		byKey[conjKey(conj)] = counts[i]
	}
	within := func(s, t scored) bool {
		if subset(t.e.Conditions, s.e.Conditions) {
			return len(t.e.Conditions) < len(s.e.Conditions)
		}
		u, ok := byKey[conjKey(union(s.e.Conditions, t.e.Conditions))]
		return ok && u == s.c && t.c.Requests > s.c.Requests
	}
	var kept []Explanation
	for _, s := range ok {
		minimal := true
		for _, t := range ok {
			if !within(s, t) {
				continue
			}
			if r.reachesAlike(s.e.Conditions, t.e.Conditions) {
				minimal = false
				break
			}
			rr, lo := riskRatio(s.c.Errors, s.c.Requests, t.c.Errors-s.c.Errors, t.c.Requests-s.c.Requests)
			if t.c.Requests-s.c.Requests <= 0 || rr < explainMinRisk || lo <= 1 {
				minimal = false
				break
			}
		}
		if minimal {
			kept = append(kept, s.e)
		}
	}
	// breadth is how general a conjunction's conditions are: the sum of
	// the logs of their own shares of requests. Among descriptions of the
	// same requests the broadest names what will hold as the problem
	// spreads (a provider rather than the one host it has reached).
	single := map[Condition]float64{}
	for i, conj := range conjs {
		if len(conj) == 1 {
			single[conj[0]] = safeDiv(counts[i].Requests, tot.Requests)
		}
	}
	breadth := func(e Explanation) float64 {
		var b float64
		for _, c := range e.Conditions {
			b += math.Log(math.Max(single[c], 1e-12))
		}
		return b
	}
	sort.SliceStable(kept, func(a, b int) bool {
		ea, eb := kept[a], kept[b]
		// Coverage first, to the nearest tenth: a few errors on one site
		// at a high rate must not outrank what explains them all.
		if da, db := math.Floor(ea.ShareOfErrors*10+1e-9), math.Floor(eb.ShareOfErrors*10+1e-9); da != db {
			return da > db
		}
		// A comparison with the requests served at the same time is
		// evidence; one with the past is timing too (anything that
		// started at onset would show), so it ranks after.
		if ra, rb := ea.Versus == "rest", eb.Versus == "rest"; ra != rb {
			return ra
		}
		// The version is what the suspect line already names; the scope
		// is for who and where, so it ranks after what covers as much.
		if fa, fb := footprintRank(ea, transient, confounded), footprintRank(eb, transient, confounded); fa != fb {
			return fa < fb
		}
		if ea.RiskRatioLow != eb.RiskRatioLow {
			return ea.RiskRatioLow > eb.RiskRatioLow
		}
		if len(ea.Conditions) != len(eb.Conditions) {
			return len(ea.Conditions) < len(eb.Conditions)
		}
		if ba, bb := breadth(ea), breadth(eb); ba != bb {
			return ba > bb
		}
		return ea.Label() < eb.Label()
	})
	if len(kept) > explainShown {
		kept = kept[:explainShown]
	}
	return kept
}

// score is one conjunction's explanation and whether it qualifies.
func score(conj []Condition, c, tot ConjunctionCount) (Explanation, bool) {
	e := Explanation{
		Conditions:      conj,
		Errors:          int64(math.Round(c.Errors)),
		Requests:        int64(math.Round(c.Requests)),
		ShareOfErrors:   safeDiv(c.Errors, tot.Errors),
		ShareOfRequests: safeDiv(c.Requests, tot.Requests),
		ErrorRate:       safeDiv(c.Errors, c.Requests),
		Versus:          "rest",
	}
	if e.ShareOfErrors < explainMinSupport || c.Requests <= 0 {
		return e, false
	}
	restE, restR := tot.Errors-c.Errors, tot.Requests-c.Requests
	e.VersusErrorRate = safeDiv(restE, restR)
	e.RiskRatio, e.RiskRatioLow = riskRatio(c.Errors, c.Requests, restE, restR)
	// A value that grew to serve most requests (a version rolled out to
	// every host) has few contemporaries left to compare with; its
	// predecessor's rate before onset is the comparison a human makes.
	shareBefore := safeDiv(c.RequestsBefore, tot.RequestsBefore)
	if tot.RequestsBefore > 0 && e.ShareOfRequests >= explainMajority && shareBefore <= e.ShareOfRequests/2 {
		pe, pr := tot.ErrorsBefore-c.ErrorsBefore, tot.RequestsBefore-c.RequestsBefore
		if rr, lo := riskRatio(c.Errors, c.Requests, pe, pr); pr > 0 && lo > e.RiskRatioLow {
			e.Versus, e.VersusErrorRate, e.RiskRatio, e.RiskRatioLow = "before", safeDiv(pe, pr), rr, lo
		}
	}
	return e, e.RiskRatio >= explainMinRisk && e.RiskRatioLow > 1
}

// riskRatio is (a/n)/(b/m) with half a count added to each cell of the
// 2×2 table (Haldane's correction, finite when b is 0), and the lower end
// of its 95% interval.
//
// The interval is the exact one, conditional on the a+b errors (the
// Clopper–Pearson bound that compareRates maps to a rate ratio), not the
// log-scale one (Katz et al. 1978) this used first. An explanation is
// asked for in a finding's first minutes, when it holds a handful of
// errors and its complement none: there the log-scale interval, whose
// variance is dominated by the 1/0.5 of the corrected empty cell, reaches
// below 1 even when chance would put all five errors in a third of the
// requests once in a hundred times ((1/3)^5), and the sharper conjunction
// that says who is hurt lost to a broader one for want of a sixth error.
// Errors are rare among requests, so the rate ratio is the risk ratio;
// where they are not, the conditional interval is the wider, the cautious
// side.
func riskRatio(a, n, b, m float64) (rr, low float64) {
	rr = ((a + 0.5) / (n + 1)) / ((b + 0.5) / (m + 1))
	return rr, math.Min(rr, compareRates(a, n, b, m).lo)
}

// footprintRank says whether e only says where a rollout has reached: a
// host marked transient or a condition confounded with the suspected
// version (1), or the version itself (2), which ranks last because the
// suspect line already names it; 0 for the rest.
func footprintRank(e Explanation, transient, confounded func(Condition) bool) int {
	if len(e.Conditions) != 1 {
		return 0
	}
	switch c := e.Conditions[0]; {
	case c.Field == FieldVersion:
		return 2
	case transient != nil && c.Field == FieldHost && transient(c), confounded != nil && confounded(c):
		return 1
	}
	return 0
}

// conjKey names a conjunction whatever the order of its conditions.
func conjKey(conj []Condition) string {
	keys := make([]string, len(conj))
	for i, c := range conj {
		keys[i] = fmt.Sprintf("%s\x00%s\x00%t", c.Field, c.Value, c.Prefix)
	}
	sort.Strings(keys)
	return strings.Join(keys, "\x01")
}

// union is the conditions of a and those of b not in a.
func union(a, b []Condition) []Condition {
	out := append([]Condition(nil), a...)
	for _, c := range b {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// subset reports whether every condition of s is in e.
func subset(s, e []Condition) bool {
	for _, c := range s {
		found := false
		for _, d := range e {
			if c == d {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
