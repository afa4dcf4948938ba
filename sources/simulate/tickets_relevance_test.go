package simulate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/file"
	"github.com/culprithq/culprit/sources/simulate"
)

// fleetProducts is what an operator of the simulated fleet would write
// in correlate.products: the names its customers know each service by.
var fleetProducts = map[string][]string{
	"edge-router": {"CDN", "serverless", "edge functions"},
	"api":         {"API", "REST API"},
	"functions":   {"functions", "serverless"},
	"dashboard":   {"dashboard", "control panel"},
}

// ticketScore is related-ticket precision and recall against the truth's
// labels, for the finding about the injected incident.
type ticketScore struct {
	related, correct, truth int
	background              []string // related tickets not about the incident
	missed                  []string // incident tickets not related
}

// relatedTickets correlates a generated run over its whole span and
// scores the related tickets of the finding about the incident.
func relatedTickets(t *testing.T, cfg simulate.Config) (ticketScore, bool) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	run, err := simulate.WriteFiles(ctx, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := rules.Default()
	rc.Correlate.Products = fleetProducts
	logs, err := file.OpenLogs(filepath.Join(dir, simulate.LogsFile), rc.Fields, rc.Correlate.Bucket.D())
	if err != nil {
		t.Fatal(err)
	}
	src, err := file.NewIndex(ctx, logs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := correlate.NewWindow(run.Config.Start, run.Config.Start.Add(run.Config.Duration), rc.Correlate.Bucket.D())
	if err != nil {
		t.Fatal(err)
	}
	res, err := correlate.Run(ctx, src, correlate.Input{Window: w, Deploys: run.Deploys, Tickets: run.Tickets}, rc.Correlate)
	if err != nil {
		t.Fatal(err)
	}
	truth := run.Truth
	var f *correlate.Finding
	for i := range res.Findings {
		g := &res.Findings[i]
		if g.Kind == correlate.KindTicketSurge && truth.Kind != correlate.KindTicketSurge || g.Service != truth.Service {
			continue
		}
		if strings.Contains(g.Signature, truth.MessageContains) || slices.ContainsFunc(g.Examples, func(e string) bool { return strings.Contains(e, truth.MessageContains) }) {
			f = g
			break
		}
	}
	if f == nil {
		return ticketScore{}, false
	}
	subjects := map[int64]string{}
	for _, tk := range run.Tickets {
		subjects[tk.ID] = tk.Subject
	}
	s := ticketScore{related: len(f.Tickets), truth: len(truth.IncidentTickets)}
	for _, r := range f.Tickets {
		if slices.Contains(truth.IncidentTickets, r.ID) {
			s.correct++
		} else {
			s.background = append(s.background, fmt.Sprintf("#%d %q (%s)", r.ID, subjects[r.ID], r.Reason))
		}
	}
	for _, id := range truth.IncidentTickets {
		if !slices.ContainsFunc(f.Tickets, func(r correlate.TicketRef) bool { return r.ID == id }) {
			s.missed = append(s.missed, fmt.Sprintf("#%d %q", id, subjects[id]))
		}
	}
	return s, true
}

func ratio(n, of int) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f (%d/%d)", float64(n)/float64(of), n, of)
}

// relevancePeak keeps the runs cheap: a third of the default traffic
// still hurts dozens of customers in a fleet-wide incident.
const relevancePeak = 400

// TestRelatedTicketsPrecisionRecall measures the related tickets on the
// simulator's incident shapes, whose tickets come in customers' own words
// from a grammar, from affected and unaffected customers, beside affected
// customers' tickets about other things. The corpus benchmark reports the
// same per shape through the daemon's evaluator; this is its cheap check.
// CULPRIT_TICKETS_SEEDS (e.g. "1,2,3") changes the seeds, and
// CULPRIT_TICKETS_OUT names a file for the per-shape table (make bench,
// step tickets).
func TestRelatedTicketsPrecisionRecall(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and correlates a dozen six-hour runs")
	}
	shapes := []simulate.Shape{simulate.ShapeFriday, simulate.ShapeIncrease, simulate.ShapeCanary, simulate.ShapeSlowRamp,
		simulate.ShapeRegionOutage, simulate.ShapeSingleCustomer, simulate.ShapeTicketSurge}
	seeds := []int64{1, 2}
	if v := os.Getenv("CULPRIT_TICKETS_SEEDS"); v != "" {
		seeds = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("CULPRIT_TICKETS_SEEDS %q: %q is not a seed", v, f)
			}
			seeds = append(seeds, n)
		}
	}
	var total ticketScore
	var table strings.Builder
	table.WriteString("| shape | runs | related | about the incident | incident tickets | precision | recall | other tickets in the list |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, shape := range shapes {
		var sh ticketScore
		for _, seed := range seeds {
			s, ok := relatedTickets(t, simulate.Config{Seed: seed, Shape: shape,
				Start: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), PeakPerMin: relevancePeak})
			if !ok {
				t.Errorf("%s seed %d: no finding about the incident", shape, seed)
				continue
			}
			t.Logf("%s seed %d: %d related, %d about the incident, %d incident tickets", shape, seed, s.related, s.correct, s.truth)
			total.related += s.related
			total.correct += s.correct
			total.truth += s.truth
			sh.related += s.related
			sh.correct += s.correct
			sh.truth += s.truth
			sh.background = append(sh.background, s.background...)
			for _, b := range s.background {
				t.Logf("  not about the incident: %s", b)
			}
			for _, m := range s.missed {
				t.Logf("  missed: %s", m)
			}
			// A canary or one host hurts few customers: any of their
			// other tickets in the list would outnumber the evidence.
			if (shape == simulate.ShapeCanary || shape == simulate.ShapeSingleCustomer) && len(s.background) > 0 {
				t.Errorf("%s seed %d: related list holds tickets not about the incident: %v", shape, seed, s.background)
			}
		}
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %d | %s | %s | %d |\n", shape, len(seeds), sh.related, sh.correct, sh.truth,
			ratio(sh.correct, sh.related), ratio(sh.correct, sh.truth), len(sh.background))
	}
	precision := float64(total.correct) / float64(max(1, total.related))
	recall := float64(total.correct) / float64(max(1, total.truth))
	t.Logf("precision %.3f (%d/%d), recall %.3f (%d/%d)", precision, total.correct, total.related, recall, total.correct, total.truth)
	fmt.Fprintf(&table, "| all | %d | %d | %d | %d | %s | %s | %d |\n", len(seeds)*len(shapes), total.related, total.correct, total.truth,
		ratio(total.correct, total.related), ratio(total.correct, total.truth), total.related-total.correct)
	if out := os.Getenv("CULPRIT_TICKETS_OUT"); out != "" {
		head := fmt.Sprintf("Seeds %v, 6 h runs from 12:00 UTC with the onset at 4 h, %d requests a minute at the peak; related tickets of the finding about the incident, correlated over the whole run.\n\n", seeds, relevancePeak)
		if err := os.WriteFile(out, []byte(head+table.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if precision < 0.9 || recall < 0.9 {
		t.Errorf("precision %.3f, recall %.3f: want both at least 0.9", precision, recall)
	}
}
