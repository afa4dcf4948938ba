package timeline

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The review's section titles, the same in every format.
const (
	TitleAlerting  = "Why alerting missed it"
	TitleCustomers = "What to tell customers"
)

// percent writes a share as a percentage with enough digits for the small
// shares a fleet sees: 0.452%, 12.3%.
func percent(s float64) string {
	switch p := s * 100; {
	case p == 0:
		return "0%"
	case p >= 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	case p >= 0.01:
		return strconv.FormatFloat(p, 'f', 3, 64) + "%"
	default:
		return strconv.FormatFloat(p, 'g', 2, 64) + "%"
	}
}

// alertName is how the threshold alert is named in prose.
func (a Alerting) alertName() string {
	// The threshold is a round number someone chose: 5%, not 5.000%.
	share := strconv.FormatFloat(a.Threshold.Share*100, 'g', 4, 64) + "%"
	return fmt.Sprintf("an alert on an error share of %s over %s", share, formatDuration(a.Threshold.For))
}

// Summary says in one sentence whether and when the threshold alert would
// have fired, fleet-wide and for the incident's service.
func (a Alerting) Summary(service string) string {
	if a.Step <= 0 {
		return "No traffic was recorded for this incident: evaluations record each service's requests and errors while incidents are open (from culprit's review support on)."
	}
	var parts []string
	for _, v := range a.Verdicts {
		if v.Scope != Fleet && v.Scope != service {
			continue
		}
		name := "fleet-wide"
		if v.Scope != Fleet {
			name = "on " + v.Scope
		}
		if v.FiredAt.IsZero() {
			parts = append(parts, fmt.Sprintf("%s it would not have fired (the share peaked at %s, at %s)", name, percent(v.Peak), clock(v.PeakAt)))
		} else {
			parts = append(parts, fmt.Sprintf("%s it would have fired at %s (peak %s at %s)", name, clock(v.FiredAt), percent(v.Peak), clock(v.PeakAt)))
		}
	}
	fired := 0
	for _, v := range a.Verdicts {
		if v.Scope != Fleet && !v.FiredAt.IsZero() {
			fired++
		}
	}
	s := "Against " + a.alertName() + ": " + strings.Join(parts, "; ") + "."
	if fired == 0 {
		s += " No service crossed it."
	}
	return s
}

func clock(t time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return t.UTC().Format("15:04 UTC")
}

func (a Alerting) verdictText(v Verdict) string {
	if v.FiredAt.IsZero() {
		return "would not have fired"
	}
	return "would have fired at " + clock(v.FiredAt)
}

// markdownReview writes the review's two sections.
func (t Timeline) markdownReview(b *bytes.Buffer) {
	rv := t.Review
	if rv == nil {
		return
	}
	a := rv.Alerting
	fmt.Fprintf(b, "\n## %s\n\n%s\n", TitleAlerting, mdEscape(a.Summary(t.Incident.Service)))
	if len(a.Verdicts) > 0 {
		b.WriteString("\n| Scope | Peak share | At | Alert |\n| --- | --- | --- | --- |\n")
		for _, v := range a.Verdicts {
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", mdEscape(v.Scope), percent(v.Peak), clock(v.PeakAt), a.verdictText(v))
		}
	}
	if len(a.Rows) > 0 {
		fmt.Fprintf(b, "\nError share over the trailing %s, by minute:\n\n| Time (UTC) | Fleet |", formatDuration(a.Threshold.For))
		for _, s := range a.Services {
			fmt.Fprintf(b, " %s |", mdEscape(s))
		}
		b.WriteString("\n| --- | --- |" + strings.Repeat(" --- |", len(a.Services)) + "\n")
		for _, r := range a.Rows {
			fmt.Fprintf(b, "| %s | %s |", r.At.UTC().Format(timeLayout), percent(r.Fleet))
			for _, s := range r.Services {
				fmt.Fprintf(b, " %s |", percent(s))
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(b, "\n## %s\n\n", TitleCustomers)
	if len(rv.Customers) == 0 {
		b.WriteString("No affected customers were counted.\n")
		return
	}
	b.WriteString("| Customer | Tier | First error (UTC) | Last error (UTC) | Errors | Tickets |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, c := range rv.Customers {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %s |\n", mdEscape(customerName(c)), mdEscape(orUnknown(c.Tier)),
			stampShort(c.First), stampShort(c.Last), c.Errors, mdEscape(ticketList(c)))
	}
}

func customerName(c CustomerImpact) string {
	if c.Name != "" {
		return c.Name + " (" + c.ID + ")"
	}
	return c.ID
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

func stampShort(t time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return t.UTC().Format(dateTimeLayout)
}

func ticketList(c CustomerImpact) string {
	var parts []string
	for _, tk := range c.Tickets {
		p := fmt.Sprintf("#%d %s", tk.ID, strings.Join(strings.Fields(tk.Subject), " "))
		if tk.Status != "" {
			p += " (" + tk.Status + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// CustomersCSV writes "What to tell customers" as its own CSV, one row per
// customer, for support to turn into messages: customer, name, tier,
// first_error, last_error (RFC 3339), errors, ticket ids and subjects.
// Cells a spreadsheet would run as formulas are defused as in CSV.
func (t Timeline) CustomersCSV(w io.Writer) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	records := [][]string{{"customer", "name", "tier", "first_error", "last_error", "errors", "tickets"}}
	if t.Review != nil {
		for _, c := range t.Review.Customers {
			records = append(records, []string{csvSafe(c.ID), csvSafe(c.Name), csvSafe(c.Tier), csvTime(c.First), csvTime(c.Last),
				strconv.FormatInt(c.Errors, 10), csvSafe(ticketList(c))})
		}
	}
	if err := cw.WriteAll(records); err != nil {
		return fmt.Errorf("encode customers csv: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write customers csv: %w", err)
	}
	return nil
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return rfc3339(t)
}

// csvReview is the review as rows of the timeline CSV (time, source,
// kind, actor, text), source "review": one error_share row per bucket and
// scope shown, one alert row per scope, one customer row per customer.
func (t Timeline) csvReview() [][]string {
	rv := t.Review
	if rv == nil {
		return nil
	}
	a := rv.Alerting
	var out [][]string
	for _, r := range a.Rows {
		out = append(out, []string{rfc3339(r.At), "review", "error_share", Fleet, percent(r.Fleet)})
		for i, s := range a.Services {
			out = append(out, []string{rfc3339(r.At), "review", "error_share", csvSafe(s), percent(r.Services[i])})
		}
	}
	for _, v := range a.Verdicts {
		out = append(out, []string{csvTime(v.FiredAt), "review", "alert", csvSafe(v.Scope),
			fmt.Sprintf("%s: %s; peak %s at %s", a.alertName(), a.verdictText(v), percent(v.Peak), clock(v.PeakAt))})
	}
	if a.Step <= 0 {
		out = append(out, []string{"", "review", "alert", Fleet, a.Summary(t.Incident.Service)})
	}
	for _, c := range rv.Customers {
		text := fmt.Sprintf("tier %s; first error %s, last error %s; %d errors", orUnknown(c.Tier), stampShort(c.First), stampShort(c.Last), c.Errors)
		if l := ticketList(c); l != "" {
			text += "; tickets " + l
		}
		out = append(out, []string{csvTime(c.First), "review", "customer", csvSafe(customerName(c)), csvSafe(text)})
	}
	return out
}

type jsonReview struct {
	Alerting  jsonAlerting   `json:"alerting"`
	Customers []jsonCustomer `json:"customers"`
}

type jsonAlerting struct {
	Title       string        `json:"title"`
	Summary     string        `json:"summary"`
	ErrorShare  float64       `json:"alert_error_share"`
	ForSeconds  float64       `json:"alert_for_seconds"`
	StepSeconds float64       `json:"step_seconds"`
	Services    []string      `json:"services"`
	Verdicts    []jsonVerdict `json:"verdicts"`
	Shares      []jsonShare   `json:"shares"`
}

type jsonVerdict struct {
	Scope     string  `json:"scope"`
	PeakShare float64 `json:"peak_share"`
	PeakAt    *string `json:"peak_at"`
	FiredAt   *string `json:"fired_at"`
}

type jsonShare struct {
	At       *string   `json:"at"`
	Fleet    float64   `json:"fleet"`
	Services []float64 `json:"services"`
}

type jsonCustomer struct {
	ID      string       `json:"customer"`
	Name    string       `json:"name,omitempty"`
	Tier    string       `json:"tier,omitempty"`
	First   *string      `json:"first_error"`
	Last    *string      `json:"last_error"`
	Errors  int64        `json:"errors"`
	Tickets []jsonTicket `json:"tickets"`
}

type jsonTicket struct {
	ID      int64  `json:"id"`
	Subject string `json:"subject"`
	Status  string `json:"status,omitempty"`
}

func (t Timeline) jsonReview() *jsonReview {
	rv := t.Review
	if rv == nil {
		return nil
	}
	a := rv.Alerting
	j := &jsonReview{Alerting: jsonAlerting{Title: TitleAlerting, Summary: a.Summary(t.Incident.Service), ErrorShare: a.Threshold.Share,
		ForSeconds: a.Threshold.For.Seconds(), StepSeconds: a.Step.Seconds(), Services: append([]string{}, a.Services...),
		Verdicts: []jsonVerdict{}, Shares: []jsonShare{}}, Customers: []jsonCustomer{}}
	for _, v := range a.Verdicts {
		j.Alerting.Verdicts = append(j.Alerting.Verdicts, jsonVerdict{Scope: v.Scope, PeakShare: v.Peak, PeakAt: jsonTime(v.PeakAt), FiredAt: jsonTime(v.FiredAt)})
	}
	for _, r := range a.Rows {
		j.Alerting.Shares = append(j.Alerting.Shares, jsonShare{At: jsonTime(r.At), Fleet: r.Fleet, Services: append([]float64{}, r.Services...)})
	}
	for _, c := range rv.Customers {
		jc := jsonCustomer{ID: c.ID, Name: c.Name, Tier: c.Tier, First: jsonTime(c.First), Last: jsonTime(c.Last), Errors: c.Errors, Tickets: []jsonTicket{}}
		for _, tk := range c.Tickets {
			jc.Tickets = append(jc.Tickets, jsonTicket{ID: tk.ID, Subject: tk.Subject, Status: tk.Status})
		}
		j.Customers = append(j.Customers, jc)
	}
	return j
}

// reviewView is the review worded for the HTML template.
type reviewView struct {
	AlertingTitle, Summary, CustomersTitle string
	Verdicts                               []struct{ Scope, Peak, At, Alert string }
	Columns                                []string
	Shares                                 []struct {
		Time  string
		Cells []string
	}
	Customers []struct{ Customer, Tier, First, Last, Errors, Tickets string }
}

func (t Timeline) reviewView() *reviewView {
	rv := t.Review
	if rv == nil {
		return nil
	}
	a := rv.Alerting
	v := &reviewView{AlertingTitle: TitleAlerting, Summary: a.Summary(t.Incident.Service), CustomersTitle: TitleCustomers}
	for _, vd := range a.Verdicts {
		v.Verdicts = append(v.Verdicts, struct{ Scope, Peak, At, Alert string }{vd.Scope, percent(vd.Peak), clock(vd.PeakAt), a.verdictText(vd)})
	}
	if len(a.Rows) > 0 {
		v.Columns = append([]string{"Fleet"}, a.Services...)
	}
	for _, r := range a.Rows {
		cells := []string{percent(r.Fleet)}
		for _, s := range r.Services {
			cells = append(cells, percent(s))
		}
		v.Shares = append(v.Shares, struct {
			Time  string
			Cells []string
		}{r.At.UTC().Format(timeLayout), cells})
	}
	for _, c := range rv.Customers {
		v.Customers = append(v.Customers, struct{ Customer, Tier, First, Last, Errors, Tickets string }{
			customerName(c), orUnknown(c.Tier), stampShort(c.First), stampShort(c.Last), strconv.FormatInt(c.Errors, 10), ticketList(c)})
	}
	return v
}
