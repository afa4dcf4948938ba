// Package report renders correlation results for people and programs: the
// JSON contract of `culprit correlate --format json`, and a text report a
// support engineer can paste into a page.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// maxOtherIDs bounds the ids of not obviously related tickets a text
// report lists: they are a pointer, not evidence.
const maxOtherIDs = 10

// maxNamed bounds the customers a text report lists by name.
const maxNamed = 5

func owner(o string) string {
	if o == "" {
		return ""
	}
	return "  owner " + o
}

// JSON writes the result in culprit's stable JSON shape.
func JSON(w io.Writer, r *correlate.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode json report: %w", err)
	}
	return nil
}

// Text writes the human report: a summary line, then for each finding its
// headline followed by the evidence behind it.
func Text(w io.Writer, r *correlate.Result) error {
	tw := &errWriter{w: w}
	span := fmt.Sprintf("%s – %s UTC", r.From.UTC().Format("2006-01-02 15:04"), r.To.UTC().Format("15:04"))
	if r.To.Sub(r.From) > 24*time.Hour {
		span = fmt.Sprintf("%s – %s UTC", r.From.UTC().Format("2006-01-02 15:04"), r.To.UTC().Format("2006-01-02 15:04"))
	}
	if len(r.Findings) == 0 {
		tw.printf("No significant change in %d series from %d services, %s.\n", r.Stats.Tested, r.Stats.Services, span)
		return tw.err
	}
	counts := map[correlate.Severity]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
	}
	tw.printf("culprit: %s (%d page, %d notify, %d info) in %d series from %d services, %s.\n\n",
		correlate.Plural(len(r.Findings), "finding"), counts[correlate.SeverityPage], counts[correlate.SeverityNotify], counts[correlate.SeverityInfo],
		r.Stats.Tested, r.Stats.Services, span)
	for i, f := range r.Findings {
		if i > 0 {
			tw.printf("\n")
		}
		finding(tw, f)
	}
	return tw.err
}

func finding(w *errWriter, f correlate.Finding) {
	w.printf("[%s] %s\n\n", strings.ToUpper(string(f.Severity)), f.Headline)
	row := func(label, format string, a ...any) {
		w.printf("  %-13s %s\n", label, fmt.Sprintf(format, a...))
	}
	more := func(format string, a ...any) { w.printf("  %-13s %s\n", "", fmt.Sprintf(format, a...)) }

	row("Finding", "%s  kind %s  service %s", f.ID, f.Kind, orDash(f.Service))
	if p := f.Priority; p != nil {
		row("Priority", "%s: %s", p.Level, p.Why)
		more("%s", p.Facts)
	}
	row("Signature", "%s", f.Signature)
	rec := "not yet"
	if f.Recovered != nil {
		rec = f.Recovered.UTC().Format("15:04 UTC")
	}
	row("Onset", "%s   recovered: %s", f.Onset.UTC().Format("2006-01-02 15:04 UTC"), rec)
	fr := f.Frequency
	if f.Kind == correlate.KindTicketSurge {
		row("Frequency", "%s tickets/h after onset, %s/h before; %d tickets", Number(fr.AfterPerMin*60), Number(fr.BeforePerMin*60), fr.Count)
	} else {
		row("Frequency", "%s/min after onset (%s), %s/min before", Number(fr.AfterPerMin), Magnitude(fr.AfterPerMin), Number(fr.BeforePerMin))
		more("%s of all %s requests after onset (%s), %s before; %d errors since onset", correlate.Percent(fr.ShareAfter), orDash(f.Service), OneIn(fr.ShareAfter), correlate.Percent(fr.ShareBefore), fr.Count)
	}
	if f.Series != nil && f.Kind != correlate.KindTicketSurge {
		more("errors/bucket %s", Sparkline(f.Series.Errors, 60))
	}
	sg := f.Significance
	row("Significance", "p=%.2g, q=%.2g over %d series tested", sg.PValue, sg.QValue, sg.Tests)
	more("method: %s", sg.Method)

	if f.Kind != correlate.KindTicketSurge {
		a := f.Scope.Affected
		row("Scope", "%s, %s, %s", correlate.Plural(a[correlate.FieldCustomer], "customer"), correlate.Plural(a[correlate.FieldSite], "site"), correlate.Plural(a[correlate.FieldHost], "host"))
		for _, c := range f.Scope.Concentration {
			more("%-36s %5s of the errors, %5s of %s requests", c.Field+"="+c.Value, correlate.Percent(c.ShareOfErrors), correlate.Percent(c.ShareOfRequests), orDash(f.Service))
		}
		for i, e := range f.Scope.Explanations {
			label := ""
			if i == 0 {
				label = "Explained by"
			}
			row(label, "%d. %s", i+1, e.Describe(orDash(f.Service)))
		}
		if c := f.Customers; c != nil {
			row("Customers", "%s", c.Summary)
			for _, n := range c.Named[:min(len(c.Named), maxNamed)] {
				more("%-36s %11s  organization.id=%s%s", n.Label(), correlate.Plural(int(n.Errors), "error"), n.ID, owner(n.Owner))
			}
			if len(c.Named) > maxNamed {
				more("… %d more named in the JSON report", len(c.Named)-maxNamed)
			}
		}
	}
	if len(f.SuspectedDeploys) == 0 {
		if f.Kind != correlate.KindTicketSurge {
			row("Suspects", "none: no deploy is tied to these errors by rollout or version evidence")
			if u := f.UnalignedDeploy; u != nil {
				more("   - %s", u.Sentence())
			}
		}
	} else {
		for i, s := range f.SuspectedDeploys {
			label := ""
			if i == 0 {
				label = "Suspects"
			}
			w.printf("  %-13s %d. %s %s %s  score %.2f  %s\n", label, i+1, s.ID, s.Service, s.Version, s.Score, s.URL)
			for _, r := range s.Reasons {
				more("   - %s", r)
			}
		}
	}
	if r := f.Recovery; r != nil {
		row("Recovery", "%s", r.Sentence(f.Recovered))
		for _, why := range r.Reasons {
			more("   - %s", why)
		}
	}
	if p := f.PreDeployExcess; p != nil {
		row("Before deploy", "%s", p.Sentence())
	}
	if len(f.Tickets) > 0 {
		for i, t := range f.Tickets {
			label := ""
			if i == 0 {
				label = "Tickets"
			}
			w.printf("  %-13s #%d %s org %d %q (%s)\n", label, t.ID, t.CreatedAt.UTC().Format("15:04"), t.OrganizationID, t.Subject, t.Reason)
		}
	} else if f.Kind != correlate.KindTicketSurge {
		row("Tickets", "none linked")
	}
	if n := len(f.OtherTickets); n > 0 {
		ids := make([]string, 0, min(n, maxOtherIDs))
		for _, id := range f.OtherTickets[:min(n, maxOtherIDs)] {
			ids = append(ids, "#"+strconv.FormatInt(id, 10))
		}
		if n > maxOtherIDs {
			ids = append(ids, "…")
		}
		row("", "%s: %s", correlate.OtherTicketsNote(n), strings.Join(ids, " "))
	}
	for i, e := range f.Examples {
		label := ""
		if i == 0 {
			label = "Examples"
		}
		w.printf("  %-13s %s\n", label, e)
	}
	for i, s := range f.Samples {
		label := ""
		if i == 0 {
			label = "Samples"
		}
		w.printf("  %-13s %s host=%s org=%s site=%s version=%s\n", label, s.Time.UTC().Format("15:04:05"), orDash(s.Host), orDash(s.Customer), orDash(s.Site), orDash(s.Version))
	}
	for i, l := range f.Links {
		label := ""
		if i == 0 {
			label = "Links"
		}
		w.printf("  %-13s %s: %s\n", label, orDash(l.Title), l.URL)
	}
	row("Severity", "%s: %s", f.Severity, strings.Join(f.SeverityReasons, "; "))
}

// Magnitude names the order of magnitude of a rate, because "about 4 a
// minute" and "about 400 a minute" call for different urgency while 4.1 and
// 4.3 do not.
func Magnitude(x float64) string {
	if !(x > 0) || math.IsInf(x, 0) {
		return "none"
	}
	e := int(math.Floor(math.Log10(x)))
	return fmt.Sprintf("order 10^%d", e)
}

// OneIn phrases a share as "about 1 in N" with its order of magnitude, the
// way support says it; pages use it too, so every channel reads the same.
func OneIn(share float64) string {
	if !(share > 0) || math.IsInf(share, 0) {
		return "none"
	}
	n := 1 / share
	switch {
	case n < 10:
		return fmt.Sprintf("1 in %.1f", n)
	default:
		return fmt.Sprintf("about 1 in %s, %s", Number(roundSig(n, 2)), Magnitude(share))
	}
}

func roundSig(x float64, digits int) float64 {
	if x == 0 {
		return 0
	}
	p := math.Pow(10, float64(digits)-math.Ceil(math.Log10(math.Abs(x))))
	return math.Round(x*p) / p
}

// Sparkline draws a series in at most width block characters, summing
// buckets so that spikes survive the downsampling.
func Sparkline(x []float64, width int) string {
	if len(x) == 0 || width <= 0 {
		return ""
	}
	per := int(math.Ceil(float64(len(x)) / float64(width)))
	var sums []float64
	for i := 0; i < len(x); i += per {
		var s float64
		for j := i; j < i+per && j < len(x); j++ {
			s += x[j]
		}
		sums = append(sums, s)
	}
	mx := 0.0
	for _, s := range sums {
		mx = math.Max(mx, s)
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, s := range sums {
		if s == 0 || mx == 0 {
			b.WriteRune(' ')
			continue
		}
		b.WriteRune(bars[min(len(bars)-1, int(s/mx*float64(len(bars)-1)+0.5))])
	}
	return "│" + b.String() + "│"
}

// Number formats a rate with as many digits as a reader needs.
func Number(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 1:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2g", x)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errWriter keeps the first write error so rendering code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, a...)
}
