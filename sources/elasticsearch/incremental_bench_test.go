package elasticsearch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/cache"
	"github.com/culprithq/culprit/sources/simulate"
)

// TestIncrementalCost measures what one evaluation costs Elasticsearch
// with incremental reads (sources/cache) and without, for issue 17's
// BENCHMARKS.md section (scripts/bench/regen.sh, step incremental). It
// indexes simulated traffic into the cluster at CULPRIT_BENCH_INCR_ES_URL
// (and deletes it after), then:
//   - by lookback: 1 h, 6 h and 24 h windows ending at the same instant of
//     one index, from scratch and incremental, at steady state: the
//     incremental source has read the window once, five minutes before;
//   - by traffic: the incremental steady state at 500, 8,000, 32,000 and
//     128,000 requests a minute, quiet and with the Friday's incident
//     open;
//   - the story's scale: per-document and fixed costs fitted (least
//     squares) to the traffic runs, projected to 2.4 M documents a minute.
//     The largest rate is there so that the per-document slope is
//     measured over a hundred thousand documents, not lost in the noise of
//     a few milliseconds.
//
// Each took is the least of five consecutive evaluations, one minute
// apart as the daemon runs them (the other figures their median), of the
// whole correlation: traffic and the scope of every finding. By traffic,
// they follow a lookback of evaluations (the steady state of a running
// daemon); the open incident is also measured 5 minutes after a restart,
// when its evaluations read a bucket again for its examples (measure). The markdown
// goes to CULPRIT_BENCH_INCR_OUT, or the test log.
func TestIncrementalCost(t *testing.T) {
	u := os.Getenv("CULPRIT_BENCH_INCR_ES_URL")
	if u == "" {
		t.Skip("set CULPRIT_BENCH_INCR_ES_URL to a cluster the benchmark may index into")
	}
	c := cluster{url: u}
	cfg := rules.Default()
	recheck := cfg.Evaluation.Recheck.D()
	var out strings.Builder
	fmt.Fprintf(&out, "%d steady-state evaluations one minute apart, each the whole correlation (traffic, then the scope of each finding): took is the least of them (the machine is shared, and other builds only ever add to it), the other figures their median; "+
		"incremental: sources/cache with `evaluation.recheck` %s (the re-checked minutes are counted, and read again only when their count changed), "+
		"after a first read of the window %d minutes before (by traffic, a lookback and %d minutes before: see there). Elasticsearch `took` summed over the evaluation's searches.\n\n", evals, short(recheck), evals, evals)

	// By lookback: a day and a bit in one index, with the Friday's
	// incident open at its end, so that every window has a finding whose
	// scope and explanations are counted at each evaluation.
	lb := indexName(t, "lookback")
	start := simulate.DefaultStart
	n := loadSim(t, c, lb, simulate.Config{Seed: 3, Start: start, Duration: 24*time.Hour + 10*time.Minute, PeakPerMin: 200,
		Shape: simulate.ShapeFriday, Onset: 23*time.Hour + 20*time.Minute})
	end := start.Add(24*time.Hour + 8*time.Minute)
	fmt.Fprintf(&out, "### Steady-state cost by lookback\n\nOne index of %s documents (`simulate` %s, peak 200 requests a minute, the deploy 48 minutes before the end: its incident is open in every window); every window ends at %s.\n\n",
		thousands(n), simulate.ShapeFriday, end.Format("2006-01-02 15:04Z"))
	out.WriteString("| lookback | documents in window | from scratch: took | requests | incremental: took | requests | buckets whose traffic was read | buckets whose conjunctions were counted | findings |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	var first, last [2]time.Duration
	for i, l := range []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour} {
		s := measure(t, c, lb, end, l, false, false, cfg)
		inc := measure(t, c, lb, end, l, true, false, cfg)
		fmt.Fprintf(&out, "| %s | %s | %s | %.0f | %s | %.0f | %.0f | %.0f | %d |\n", short(l), thousands(s.docs), msText(s.took), s.requests,
			msText(inc.took), inc.requests, inc.buckets, inc.conjBuckets, inc.findings)
		if i == 0 {
			first = [2]time.Duration{s.took, inc.took}
		}
		last = [2]time.Duration{s.took, inc.took}
	}
	fmt.Fprintf(&out, "\n24 h / 1 h took: from scratch %.1f, incremental %.2f (target ≤ 1.3).\n\n",
		ratio(last[0], first[0]), ratio(last[1], first[1]))

	// By traffic: the Friday at the diurnal peak, four rates, each
	// measured twice on its index: quiet, before the deploy, and with the
	// incident open, when each evaluation also counts a finding's scope
	// and explanations.
	out.WriteString("### Cost by traffic\n\nThe Friday (`simulate` " + string(simulate.ShapeFriday) + ") at the diurnal peak (15:00) per rate, each in its own index, incremental steady state. " +
		"_Quiet_: evaluations ending a minute before the deploy, a 5-minute lookback (the steady state does not depend on it). " +
		"_Incident open_: evaluations ending 25 minutes after it, a 30-minute lookback: each also counts the finding's scope and its explanations' conjunctions over the new buckets. " +
		"Both after a lookback of evaluations a minute apart, as a daemon that has run that long; _the costliest_ is the most took of any of them, the first read of the window aside (the deploy comes 10 minutes into them: the finding's first breakdown, conjunctions first asked for as the incident grows, its onset re-estimated). " +
		"_After a restart_: the incident-open evaluations with the cache filled by a read of the window 5 minutes before: within a lookback of a restart, each also reads one bucket of that first read again for its examples.\n\n")
	out.WriteString("| requests a minute (peak) | documents in the new minute | quiet: took | requests | findings | incident open: took | the costliest of its lookback | requests | buckets whose conjunctions were counted | findings | after a restart: took | requests |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	var quiet, open, restart, costliest []point
	var openRuns []cost
	var sideBySide string
	for _, rate := range []float64{500, 8000, 32000, 128000} {
		ix := indexName(t, fmt.Sprintf("rate%.0f", rate))
		at := time.Date(2026, 11, 20, 14, 35, 0, 0, time.UTC)
		loadSim(t, c, ix, simulate.Config{Seed: 5, Start: at, Duration: 42 * time.Minute, Shape: simulate.ShapeFriday, Onset: 15 * time.Minute, PeakPerMin: rate})
		q := measure(t, c, ix, at.Add(14*time.Minute), 5*time.Minute, true, true, cfg)
		r := measure(t, c, ix, at.Add(40*time.Minute), 30*time.Minute, true, true, cfg)
		rs := measure(t, c, ix, at.Add(40*time.Minute), 30*time.Minute, true, false, cfg)
		fmt.Fprintf(&out, "| %s | %s | %s | %.0f | %d | %s | %s | %.0f | %.0f | %d | %s | %.0f |\n", thousands(int64(rate)), thousands(int64(r.newest)),
			msText(q.took), q.requests, q.findings, msText(r.took), msText(r.worst), r.requests, r.conjBuckets, r.findings, msText(rs.took), rs.requests)
		quiet, open = append(quiet, point{q.newest, q.took}), append(open, point{r.newest, r.took})
		costliest = append(costliest, point{r.newest, r.worst})
		restart = append(restart, point{rs.newest, rs.took})
		openRuns = append(openRuns, r)
		if rate == 128000 {
			sideBySide = explainSideBySide(t, c, ix, at.Add(40*time.Minute), cfg)
		}
	}
	const story = 2.4e6
	out.WriteString("\n### The story's scale: 2.4 M documents a minute\n\n" +
		"Per document of the new minute (its traffic read, its share of counting the re-checked minutes and, with the incident open, of the finding's counts): the least-squares slope of took over the new minute's documents across the rates above; fixed per evaluation: the intercept. " +
		"Core-seconds a minute assume every millisecond of took keeps one core busy (one shard per index here). Targets: < 1 s per evaluation, < 10 core-seconds a minute.\n\n")
	out.WriteString("| evaluation | per document | fixed | projected took at 2.4 M a minute | core-seconds a minute |\n| --- | --- | --- | --- | --- |\n")
	for _, row := range []struct {
		name string
		pts  []point
	}{{"quiet", quiet}, {"incident open", open}, {"incident open, the costliest evaluation of a lookback", costliest}, {"incident open, within a lookback of a restart", restart}} {
		perDoc, fixed := fit(row.pts)
		proj := time.Duration(fixed + perDoc*story)
		fmt.Fprintf(&out, "| %s | %.1f ns | %s | %s + %.1f ns × 2,400,000 = **%s** | **%.1f** |\n", row.name, perDoc, msText(time.Duration(fixed)),
			msText(time.Duration(fixed)), perDoc, msText(proj), proj.Seconds())
	}
	out.WriteString(opSplit(openRuns, story))
	out.WriteString(sideBySide)
	out.WriteString("\nThese rates are this node's, under the load average above; a row with more requests paid for a finding's first scope read or an example top-up.\n")

	if p := os.Getenv("CULPRIT_BENCH_INCR_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Log("\n" + out.String())
}

// opSplit is the incident-open row of the story's scale split by search:
// each search's took in the reported evaluation at every rate, and its own
// least-squares line projected to story documents a minute. The lines add
// up to the evaluation's, as the tooks do.
func opSplit(runs []cost, story float64) string {
	var names []string
	for _, r := range runs {
		for op := range r.byOp {
			if !slices.Contains(names, op) {
				names = append(names, op)
			}
		}
	}
	type row struct {
		op           string
		perDoc, proj float64
		tooks        []time.Duration
	}
	var rows []row
	for _, op := range names {
		pts := make([]point, len(runs))
		r := row{op: op}
		for i, c := range runs {
			pts[i] = point{c.newest, c.byOp[op]}
			r.tooks = append(r.tooks, c.byOp[op])
		}
		var fixed float64
		r.perDoc, fixed = fit(pts)
		r.proj = fixed + r.perDoc*story
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.proj, a.proj) })
	var out strings.Builder
	out.WriteString("\nThe incident-open evaluation by search (the source's name for each): its took in the evaluation reported above at each rate, and the search's own line projected as above.\n\n| search |")
	for _, r := range runs {
		fmt.Fprintf(&out, " %s a minute |", thousands(int64(r.newest)))
	}
	out.WriteString(" per document | projected at 2.4 M a minute |\n| --- |")
	for range runs {
		out.WriteString(" --- |")
	}
	out.WriteString(" --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&out, "| %s |", r.op)
		for _, d := range r.tooks {
			fmt.Fprintf(&out, " %s |", msText(d))
		}
		fmt.Fprintf(&out, " %.1f ns | %s |\n", r.perDoc, msText(time.Duration(r.proj)))
	}
	return out.String()
}

type point struct {
	docs float64
	took time.Duration
}

// fit is the least-squares line through pts: took = fixed + perDoc ×
// documents, in nanoseconds.
func fit(pts []point) (perDoc, fixed float64) {
	var sx, sy, sxx, sxy float64
	for _, p := range pts {
		x, y := p.docs, float64(p.took)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	k := float64(len(pts))
	perDoc = (k*sxy - sx*sy) / (k*sxx - sx*sx)
	return perDoc, (sy - perDoc*sx) / k
}

type cost struct {
	took                                   time.Duration
	worst                                  time.Duration // of every evaluation measure ran but the first read
	requests, buckets, conjBuckets, newest float64
	docs                                   int64
	findings                               int
	// byOp splits took, of the evaluation whose took is reported, by the
	// source's name for each search.
	byOp map[string]time.Duration
}

// opTook is a slog handler that sums the took of the source's debug
// records per search: where an evaluation's took goes.
type opTook struct {
	mu  *sync.Mutex
	sum map[string]time.Duration
}

func newOpTook() opTook { return opTook{mu: &sync.Mutex{}, sum: map[string]time.Duration{}} }

func (o opTook) Enabled(context.Context, slog.Level) bool { return true }
func (o opTook) WithAttrs([]slog.Attr) slog.Handler       { return o }
func (o opTook) WithGroup(string) slog.Handler            { return o }
func (o opTook) Handle(_ context.Context, r slog.Record) error {
	var op string
	var took int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "op":
			op = a.Value.String()
		case "took_ms":
			took = a.Value.Int64()
		}
		return true
	})
	if op != "" && r.Message == "elasticsearch request" {
		o.mu.Lock()
		o.sum[op] += time.Duration(took) * time.Millisecond
		o.mu.Unlock()
	}
	return nil
}

// since is what o summed after before, a copy of o.sum taken then.
func (o opTook) since(before map[string]time.Duration) map[string]time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := map[string]time.Duration{}
	for k, v := range o.sum {
		if v -= before[k]; v > 0 {
			d[k] = v
		}
	}
	return d
}

func (o opTook) snapshot() map[string]time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.sum)
}

// evals is how many steady-state evaluations each figure is the median of.
const evals = 5

// measure runs the evaluations ending at each of the evals minutes up to
// end over lookback l, after (incremental) one that fills the cache, and
// returns the median of each figure. With warm, that first read is a
// lookback earlier still and every minute in between is evaluated too, as
// the daemon would have: every bucket of the measured windows was then read
// on its own, the steady state of a daemon that has run for a lookback.
// Without, the first read is the evals minutes before: the first lookback
// after a restart, when the buckets of that first read lack the examples a
// read of each alone gives, and an evaluation reads one again for them (a
// top-up, sources/cache budget).
func measure(t *testing.T, c cluster, index string, end time.Time, l time.Duration, incremental, warm bool, cfg rules.Config) cost {
	t.Helper()
	ctx := context.Background()
	lag := cfg.Sources.Elasticsearch.Lag.D()
	var now time.Time
	ops := newOpTook()
	es := c.source(t, index, func(cf *Config) {
		cf.Now = func() time.Time { return now }
		cf.Lag = lag
		cf.Timeout = 2 * time.Minute
		cf.Logger = slog.New(ops)
	})
	var src correlate.Source = es
	var cs *cache.Source
	if incremental {
		var err error
		if cs, err = cache.New(es, cache.Config{Recheck: cfg.Evaluation.Recheck.D(), Keep: l}); err != nil {
			t.Fatal(err)
		}
		src = cs
	}
	run := func(to time.Time) (correlate.Window, int) {
		now = to.Add(lag)
		w, err := correlate.NewWindow(to.Add(-l), to, cfg.Correlate.Bucket.D())
		if err != nil {
			t.Fatal(err)
		}
		res, err := correlate.Run(ctx, src, correlate.Input{Window: w, Now: now, MinBaseline: l / 3}, cfg.Correlate)
		if err != nil {
			t.Fatal(err)
		}
		return w, len(res.Findings)
	}
	var worst time.Duration // the costliest evaluation after the first read
	if incremental {
		first := end.Add(-time.Duration(evals) * time.Minute)
		if warm {
			first = first.Add(-l)
		}
		for at := first; at.Before(end.Add(-time.Duration(evals-1) * time.Minute)); at = at.Add(time.Minute) {
			before := es.Stats().Took
			run(at)
			if at.After(first) {
				worst = max(worst, es.Stats().Took-before)
			}
		}
	}
	var tooks []time.Duration
	var byOp []map[string]time.Duration
	var reqs, buckets, conjBuckets, newest []float64
	var docs int64
	findings := 0
	for k := evals - 1; k >= 0; k-- {
		before, opsBefore := es.Stats(), ops.snapshot()
		var cb cache.Stats
		if cs != nil {
			cb = cs.Stats()
		}
		w, f := run(end.Add(-time.Duration(k) * time.Minute))
		st := es.Stats()
		tooks = append(tooks, st.Took-before.Took)
		byOp = append(byOp, ops.since(opsBefore))
		reqs = append(reqs, float64(st.Requests-before.Requests))
		findings = max(findings, f)
		tr, err := es.Traffic(ctx, w) // outside the counts: what the window holds
		if err != nil {
			t.Fatal(err)
		}
		docs = 0
		perBucket := make([]float64, w.Len())
		for _, s := range tr.Services {
			for i, v := range s.Requests {
				docs += int64(v)
				perBucket[i] += v
			}
		}
		newest = append(newest, perBucket[w.Len()-1])
		if cs != nil {
			buckets = append(buckets, float64(cs.Stats().Buckets-cb.Buckets))
			conjBuckets = append(conjBuckets, float64(cs.Stats().ConjunctionBuckets-cb.ConjunctionBuckets))
		}
	}
	least := slices.Index(tooks, slices.Min(tooks))
	return cost{took: tooks[least], worst: max(worst, slices.Max(tooks)), byOp: byOp[least], requests: median(reqs), buckets: median(buckets), conjBuckets: median(conjBuckets), newest: median(newest), docs: docs, findings: findings}
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadSim indexes a simulation into index and returns how many documents.
func loadSim(t *testing.T, c cluster, index string, cfg simulate.Config) int64 {
	t.Helper()
	c.createIndex(t, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
	var docs []string
	var b []byte
	if _, err := simulate.Generate(context.Background(), cfg, func(d *simulate.Doc) error {
		b = d.AppendJSON(b[:0])
		docs = append(docs, string(b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.load(t, index, docs)
	settle(t, c, index)
	return int64(len(docs))
}

// settle waits until Elasticsearch has no merge running on index: a bulk
// load of millions of documents leaves merges that run for a minute or
// more, and measuring beside them measured them.
func settle(t *testing.T, c cluster, index string) {
	t.Helper()
	es := c.admin(t)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		res, err := es.Indices.Stats(es.Indices.Stats.WithIndex(index), es.Indices.Stats.WithMetric("merge"))
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			All struct {
				Total struct {
					Merges struct {
						Current int `json:"current"`
					} `json:"merges"`
				} `json:"total"`
			} `json:"_all"`
		}
		err = json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		if err != nil {
			t.Fatalf("merge stats of %s: %v", index, err)
		}
		if st.All.Total.Merges.Current == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("merges on %s still running after 10 minutes", index)
		}
		time.Sleep(2 * time.Second) // polling Elasticsearch, not synchronising goroutines
	}
}

func msText(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func short(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	var out []byte
	for i, r := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, r)
	}
	return string(out)
}

// conjRecorder keeps the last explanation query the correlator asked of
// the source it embeds.
type conjRecorder struct {
	*Source
	last correlate.ConjunctionQuery
}

func (r *conjRecorder) CountConjunctions(ctx context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	r.last = q
	return r.Source.CountConjunctions(ctx, q)
}

// explainSideBySide counts the explanation query of the finding open at
// end both ways, over the same two minutes after its onset (a steady
// evaluation reads one, the new minute), and reports the least took of
// each.
func explainSideBySide(t *testing.T, c cluster, index string, end time.Time, cfg rules.Config) string {
	t.Helper()
	ctx := context.Background()
	lag := cfg.Sources.Elasticsearch.Lag.D()
	es := c.source(t, index, func(cf *Config) {
		cf.Now = func() time.Time { return end.Add(lag) }
		cf.Lag = lag
		cf.Timeout = 2 * time.Minute
	})
	rec := &conjRecorder{Source: es}
	l := 30 * time.Minute
	w, err := correlate.NewWindow(end.Add(-l), end, cfg.Correlate.Bucket.D())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := correlate.Run(ctx, rec, correlate.Input{Window: w, Now: end.Add(lag), MinBaseline: l / 3}, cfg.Correlate); err != nil {
		t.Fatal(err)
	}
	q := rec.last
	if len(q.Conjunctions) == 0 {
		t.Fatal("the open incident asked for no explanations")
	}
	q.Before, q.From, q.To = end.Add(-2*time.Minute), end.Add(-2*time.Minute), end
	m, err := es.currentMapping(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := m.scopeFields()
	p, ok := planMask(byName, q.Conjunctions)
	if !ok {
		t.Fatal("the correlator's explanation query has too many combinations to count by mask")
	}
	atoms, leaves := 0, 1
	for _, lv := range p.levels {
		atoms += len(lv.atoms)
		leaves *= len(lv.atoms) + 1
	}
	_, sig, err := es.signature(ctx, correlate.ScopeQuery{Service: q.Service, Messages: q.Messages}, q.Before, q.To)
	if err != nil {
		t.Fatal(err)
	}
	cq := conjSearchOf(m, sig, q.Service, q.Before, q.From, q.To)
	took := func(mask bool) (time.Duration, []correlate.ConjunctionCount) {
		best := time.Duration(-1)
		var counts []correlate.ConjunctionCount
		for range evals {
			before := es.Stats().Took
			var err error
			if mask {
				counts, err = es.CountConjunctions(ctx, q)
			} else {
				counts, err = es.countByFilters(ctx, cq, byName, q.Conjunctions, make([]correlate.ConjunctionCount, len(q.Conjunctions)))
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := es.Stats().Took - before; best < 0 || d < best {
				best = d
			}
		}
		return best, counts
	}
	byMask, a := took(true)
	byConj, b := took(false)
	if !slices.Equal(a, b) {
		t.Fatal("the two ways of counting disagree")
	}
	return fmt.Sprintf("\nThe explanations' counts side by side, the incident's own query at 128,000 requests a minute over two minutes (%d conjunctions of %d distinct conditions, %d combinations): "+
		"counted by mask %s, conjunction by conjunction %s (%.1f× faster), the same counts.\n", len(q.Conjunctions), atoms, leaves, msText(byMask), msText(byConj), ratio(byConj, byMask))
}
