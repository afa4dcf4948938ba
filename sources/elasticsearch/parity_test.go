package elasticsearch

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/simulate"
)

// parityMapping is an ECS-like index template: keywords, a long status,
// and messages as text with a keyword sub-field (ignore_above 256, as
// dynamic mapping does).
const parityMapping = `{"mappings":{"properties":{
  "@timestamp":{"type":"date"},
  "service":{"properties":{"name":{"type":"keyword"},"version":{"type":"keyword"}}},
  "host":{"properties":{"name":{"type":"keyword"}}},
  "organization":{"properties":{"id":{"type":"keyword"}}},
  "url":{"properties":{"domain":{"type":"keyword"},"path":{"type":"keyword"}}},
  "cloud":{"properties":{"provider":{"type":"keyword"},"region":{"type":"keyword"}}},
  "http":{"properties":{"request":{"properties":{"method":{"type":"keyword"}}},"response":{"properties":{"status_code":{"type":"long"}}}}},
  "event":{"properties":{"outcome":{"type":"keyword"},"duration":{"type":"long"}}},
  "error":{"properties":{"message":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}}}},
  "message":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}}}}}`

// parityData is a simulated six hours across midnight, loaded into two
// daily indices and written to an NDJSON file.
type parityData struct {
	run  *simulate.Run
	w    correlate.Window
	src  *Source
	logs correlate.Source
	docs int
}

func loadParity(t *testing.T, c cluster) parityData {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2026, time.November, 20, 21, 0, 0, 0, time.UTC)
	midnight := start.Add(3 * time.Hour)
	cfg := simulate.Config{Seed: 11, Start: start, Duration: 6 * time.Hour, Shape: simulate.ShapeFriday, PeakPerMin: 150}
	var day1, day2, all []string
	var last time.Time
	errorsSeen := 0
	run, err := simulate.Generate(ctx, cfg, func(d *simulate.Doc) error {
		doc := *d
		// Distinct instants: the order of equal timestamps is the one
		// thing the two sources may legitimately disagree on (file order
		// versus index order), and it would decide examples and samples.
		if !doc.Time.After(last) {
			doc.Time = last.Add(time.Millisecond)
		}
		last = doc.Time
		// Some errors carry a stack trace, too long for the keyword
		// sub-field: those messages are read from _source.
		if doc.Error != "" {
			errorsSeen++
			if errorsSeen%40 == 0 {
				doc.Error += strings.Repeat("\n\tat com.shop.http.Router.dispatch(Router.java:211)", 6)
			}
		}
		line := string(doc.AppendJSON(nil))
		all = append(all, line)
		if doc.Time.Before(midnight) {
			day1 = append(day1, line)
		} else {
			day2 = append(day2, line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	base := indexName(t, "")
	for _, ix := range []struct {
		name string
		docs []string
	}{{base + "-2026.11.20", day1}, {base + "-2026.11.21", day2}} {
		c.createIndex(t, ix.name, parityMapping)
		c.load(t, ix.name, ix.docs)
	}
	w, err := correlate.NewWindow(start, start.Add(6*time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("parity data: %d documents (%d + %d in two daily indices)", len(all), len(day1), len(day2))
	return parityData{run: run, w: w, src: c.source(t, base+"-*", farFuture), logs: fileLogs(t, all, time.Minute), docs: len(all)}
}

// busiest are the n masked messages with the most errors, over all services.
func busiest(tr *correlate.Traffic, n int) []correlate.ScopeQuery {
	type sig struct {
		svc, msg string
		total    float64
	}
	var all []sig
	for _, s := range tr.Services {
		for _, m := range s.Messages {
			sum := m.Counts.Sum(0, m.Counts.Len())
			all = append(all, sig{s.Service, m.Message, sum})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].total != all[j].total {
			return all[i].total > all[j].total
		}
		return all[i].svc+all[i].msg < all[j].svc+all[j].msg
	})
	var out []correlate.ScopeQuery
	for _, s := range all[:min(n, len(all))] {
		out = append(out, correlate.ScopeQuery{Service: s.svc, Messages: []string{s.msg},
			From: tr.Window.From.Add(4 * time.Hour), To: tr.Window.To, Window: tr.Window})
	}
	return out
}

func TestParityWithFileSource(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	p := loadParity(t, c)

	before := p.src.Stats()
	got, err := p.src.Traffic(ctx, p.w)
	if err != nil {
		t.Fatal(err)
	}
	afterTraffic := p.src.Stats()
	want, err := p.logs.Traffic(ctx, p.w)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "traffic", diffTraffic(want, got))
	msgs, fetched := 0, false
	for _, s := range got.Services {
		msgs += len(s.Messages)
		for _, m := range s.Messages {
			if strings.Contains(m.Message, "Router.java") {
				fetched = true
			}
		}
	}
	if !fetched {
		t.Error("no long (fetched) message in the parity data; the test lost its coverage of _source reading")
	}
	t.Logf("traffic: %d services, %d masked messages, %d requests", len(got.Services), msgs, afterTraffic.Requests-before.Requests)

	// The request budget: Traffic and three Scope calls, as one correlate
	// run over six hours makes them.
	for _, q := range busiest(got, 3) {
		sc, err := p.src.Scope(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := p.logs.Scope(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		report(t, "scope of "+q.Service+" "+q.Messages[0], diffScope(want, sc))
	}
	used := p.src.Stats()
	n := used.Requests - before.Requests
	t.Logf("Traffic + 3 Scope: %d requests, Elasticsearch took %s, wall latency %s", n, used.Took-before.Took, used.Latency-before.Latency)
	if n > 20 {
		t.Errorf("Traffic + 3 Scope made %d requests, over the budget of 20", n)
	}

	// Every other signature too, and one signature made of several masked
	// messages.
	var many []string
	for _, s := range got.Services {
		for _, m := range s.Messages {
			q := correlate.ScopeQuery{Service: s.Service, Messages: []string{m.Message},
				From: p.w.From.Add(time.Hour), To: p.w.To.Add(-time.Hour), Window: p.w}
			sc, err := p.src.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := p.logs.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			report(t, "scope of "+s.Service+" "+m.Message, diffScope(want, sc))
			if s.Service == got.Services[0].Service {
				many = append(many, m.Message)
			}
		}
	}
	q := correlate.ScopeQuery{Service: got.Services[0].Service, Messages: many, From: p.w.From, To: p.w.To, Window: p.w}
	sc, err := p.src.Scope(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	wantSc, err := p.logs.Scope(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "scope of all of "+q.Service+"'s messages", diffScope(wantSc, sc))
}

// TestParityCorrelateRun runs the whole correlator over both sources: the
// findings (ids, kinds, onsets, suspects, scope, samples) must be equal.
func TestParityCorrelateRun(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	p := loadParity(t, c)
	in := correlate.Input{Window: p.w, Deploys: p.run.Deploys, Tickets: p.run.Tickets}
	cfg := rules.Default().Correlate

	want, err := correlate.Run(ctx, p.logs, in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := p.src.Stats()
	got, err := correlate.Run(ctx, p.src, in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	used := p.src.Stats()
	t.Logf("correlate.Run over Elasticsearch: %d findings, %d requests, took %s, latency %s",
		len(got.Findings), used.Requests-before.Requests, used.Took-before.Took, used.Latency-before.Latency)
	if len(want.Findings) == 0 {
		t.Errorf("the file source found nothing in a %s run; the comparison proves little", p.run.Truth.Shape)
	}
	for i := range max(len(want.Findings), len(got.Findings)) {
		var a, b correlate.Finding
		if i < len(want.Findings) {
			a = want.Findings[i]
		}
		if i < len(got.Findings) {
			b = got.Findings[i]
		}
		ja, _ := json.MarshalIndent(a, "", "  ")
		jb, _ := json.MarshalIndent(b, "", "  ")
		if string(ja) != string(jb) {
			t.Errorf("finding %d differs:\nfile:\n%s\nelasticsearch:\n%s", i, ja, jb)
		}
	}
	ja, _ := json.Marshal(want)
	jb, _ := json.Marshal(got)
	if string(ja) != string(jb) {
		t.Errorf("results differ beyond the findings:\nfile: %s\nelasticsearch: %s", ja, jb)
	}
}
