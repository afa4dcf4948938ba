package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/daemon"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/cache"
	"github.com/culprithq/culprit/sources/elasticsearch"
	"github.com/culprithq/culprit/sources/simulate"
)

// TestBacktestIncrementalParity: `culprit backtest` over the simulated
// Friday sends the same messages and leaves the same incidents with
// evaluation.incremental on (the default) as with every evaluation reading
// its whole window.
func TestBacktestIncrementalParity(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the simulated Friday twice")
	}
	f := backtestFiles(t, simulate.ShapeFriday)
	from, to := backtestRange()
	args := append(fileArgs(f), "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))
	inc := runBacktest(t, args...)
	scratch := runBacktestWith(t, strings.Replace(backtestConfig, "  lookback: 60m\n", "  lookback: 60m\n  incremental: false\n", 1), args...)
	if len(inc.Messages) == 0 {
		t.Fatal("the incremental backtest sent nothing: there is nothing to compare")
	}
	a, _ := json.Marshal(inc)
	b, _ := json.Marshal(scratch)
	if string(a) != string(b) {
		t.Errorf("incremental and from-scratch backtests differ:\nincremental  %.3000s\nfrom scratch %.3000s", a, b)
	}
}

// TestIncrementalEquivalenceES: against the real Elasticsearch, tick by
// tick as the daemon evaluates, the cached source returns the same traffic
// and the correlator the same findings as reads from scratch: through the
// Friday's onset and page, across a restart (a new cache over a new
// client) mid-run, and after a document indexed late into a bucket that
// was already read.
func TestIncrementalEquivalenceES(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a simulated Friday into Elasticsearch")
	}
	u := esURL(t)
	prefix := fmt.Sprintf("culprit-incremental-%d-", time.Now().UnixNano())
	t.Cleanup(func() { deleteIndices(t, u, prefix+"*") })
	// The Friday up to 45 minutes past the onset, at a third of the
	// backtests' traffic: enough for a page, little to index.
	sim := backtestSim(simulate.ShapeFriday)
	sim.PeakPerMin, sim.Duration = 1200, sim.Onset+45*time.Minute
	loadES(t, u, prefix, sim)
	dir := t.TempDir()
	if _, err := simulate.WriteFiles(context.Background(), dir, sim); err != nil {
		t.Fatal(err)
	}
	deploys, _, err := readSidecars(filepath.Join(dir, "deploys.json"), "")
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	cfg := rules.Default()
	step, lag, lookback := time.Minute, 30*time.Second, 90*time.Minute
	clock := &ticker{}
	newES := func() *elasticsearch.Source {
		es, err := elasticsearch.New(elasticsearch.Config{URLs: []string{u}, Index: prefix + "*", Fields: cfg.Fields, Lag: lag, Now: clock.now})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	newCache := func() *cache.Source {
		// The daemon's re-check, one bucket: a steady evaluation reuses
		// its last read of the re-checked bucket as it joins the cached
		// region, which the late document below must undo.
		c, err := cache.New(newES(), cache.Config{Recheck: cfg.Evaluation.Recheck.D(), Keep: daemon.MaxWindow(lookback)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	scratch, inc := newES(), newCache()
	onset := simulate.DefaultStart.Add(sim.Onset)
	sched := daemon.EvaluationSchedule(time.Minute, step, lag)
	findings, ticks, explained := 0, 0, false
	for at := sched.Next(onset.Add(-10 * time.Minute)); at.Before(onset.Add(40 * time.Minute)); at = sched.Next(at) {
		clock.at = at
		switch ticks {
		case 20:
			// A request indexed late into a bucket already read complete,
			// within the re-checked region: a read from scratch sees it, so
			// the traffic stays equal only if the cache reads it too.
			late := at.Truncate(step).Add(-2*step + 10*time.Second)
			indexDoc(t, u, prefix+late.Format("2006.01.02"), fmt.Sprintf(
				`{"@timestamp":%q,"service":{"name":"edge-router"},"http":{"response":{"status_code":200}},"event":{"outcome":"success"},"host":{"name":"late-host"}}`,
				late.Format(time.RFC3339Nano)))
		case 30:
			inc = newCache() // a restart
		}
		ticks++
		w, err := correlate.NewWindow(at.Add(-lookback), at.Truncate(step), step)
		if err != nil {
			t.Fatal(err)
		}
		var visible []correlate.Deploy
		for _, d := range deploys {
			if d.StartedAt.Before(at) {
				visible = append(visible, d)
			}
		}
		// Each source's Traffic is the one its run asked for: a second
		// call per tick would be an evaluation of its own to the cache.
		in := correlate.Input{Window: w, Deploys: visible, Now: at, MinBaseline: lookback / 3}
		st, it := &tapped{Source: scratch}, &tapped{Source: inc}
		a, err := correlate.Run(ctx, st, in, cfg.Correlate)
		if err != nil {
			t.Fatal(err)
		}
		b, err := correlate.Run(ctx, it, in, cfg.Correlate)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(it.traffic, st.traffic) {
			t.Fatalf("at %s: incremental traffic differs from a read from scratch:\n%s", at.Format(time.RFC3339), trafficDiff(st.traffic, it.traffic))
		}
		ja, _ := json.Marshal(a.Findings)
		jb, _ := json.Marshal(b.Findings)
		if string(ja) != string(jb) {
			t.Fatalf("at %s: incremental findings differ:\nfrom scratch %.2000s\nincremental  %.2000s", at.Format(time.RFC3339), ja, jb)
		}
		findings += len(a.Findings)
		for _, f := range a.Findings {
			explained = explained || len(f.Scope.Explanations) > 0
		}
		if ticks%10 == 0 {
			t.Logf("%s: %d findings, equal", at.Format("15:04:05"), len(a.Findings))
		}
	}
	if findings == 0 {
		t.Fatal("no tick had a finding: the run compared nothing but traffic")
	}
	// The findings' breakdowns came from the kept ones: after the restart's
	// first read, each read of the source spans a few new buckets, not the
	// window.
	st := inc.Stats()
	if st.ScopeReads == 0 {
		t.Fatal("the cache never read a breakdown: the findings' scopes did not go through it")
	}
	avg, whole := float64(st.ScopeBuckets)/float64(st.ScopeReads), float64(lookback/step)
	t.Logf("after the restart: %d breakdown reads of %.1f buckets on average; a window is %.0f", st.ScopeReads, avg, whole)
	if avg > whole/3 {
		t.Errorf("breakdown reads spanned %.1f buckets on average over %d reads; a window is %.0f: scopes are not kept", avg, st.ScopeReads, whole)
	}
	if st.ScopeReuses == 0 || st.ConjunctionReuses == 0 {
		t.Errorf("breakdowns reused their last read %d times, conjunction counts %d: a steady evaluation should read its re-checked bucket once", st.ScopeReuses, st.ConjunctionReuses)
	}
	// So did the explanations' conjunction counts.
	if !explained {
		t.Fatal("no finding had an explanation: the run compared no conjunction counts")
	}
	if st.ConjunctionReads == 0 {
		t.Fatal("the cache never counted a conjunction: the explanations did not go through it")
	}
	// A conjunction first asked for is read over the finding's whole span,
	// and the candidates change as the incident grows; the rest is new
	// buckets.
	t.Logf("after the restart: %d conjunction reads spanning %d buckets, of %d asked about", st.ConjunctionReads, st.ConjunctionBuckets, st.ConjunctionAsked)
	if st.ConjunctionBuckets*2 > st.ConjunctionAsked {
		t.Errorf("conjunction reads spanned %d buckets of the %d asked about: counts are not kept", st.ConjunctionBuckets, st.ConjunctionAsked)
	}
}

// tapped keeps the traffic its source gave the correlator.
type tapped struct {
	correlate.Source
	traffic *correlate.Traffic
}

func (t *tapped) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	tr, err := t.Source.Traffic(ctx, w)
	t.traffic = tr
	return tr, err
}

// Unwrap lets the correlator find what the source can do besides Traffic
// and Scope (correlate.Behind).
func (t *tapped) Unwrap() correlate.Source { return t.Source }

func indexDoc(t *testing.T, u, index, doc string) {
	t.Helper()
	res, err := http.Post(u+"/"+index+"/_doc?refresh=true", "application/json", strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("index a late document: %s", res.Status)
	}
}

// trafficDiff shows where two traffics' JSON forms part.
func trafficDiff(want, got *correlate.Traffic) string {
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(got)
	i := 0
	for i < min(len(a), len(b)) && a[i] == b[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("from scratch …%.400s\nincremental  …%.400s", a[from:], b[from:])
}
