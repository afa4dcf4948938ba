package timeline

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// Format is an export format.
type Format string

// Export formats, named as on the command line and in ?format=.
const (
	FormatMarkdown Format = "md"
	FormatJSON     Format = "json"
	FormatCSV      Format = "csv"
	FormatHTML     Format = "html"
)

// ParseFormat reads a format name, case-insensitively; "markdown" is
// accepted for md. The error names the bad value and the good ones.
func ParseFormat(s string) (Format, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "md", "markdown":
		return FormatMarkdown, nil
	case "json", "csv", "html":
		return Format(f), nil
	}
	return "", fmt.Errorf("unknown timeline format %q: want md, json, csv or html", s)
}

// ContentType is the MIME type to serve f with.
func (f Format) ContentType() string {
	switch f {
	case FormatMarkdown:
		return "text/markdown; charset=utf-8"
	case FormatJSON:
		return "application/json"
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatHTML:
		return "text/html; charset=utf-8"
	}
	return "application/octet-stream"
}

// Write exports t in format f. It fails for a format ParseFormat would
// not return, and when w fails.
func (t Timeline) Write(w io.Writer, f Format) error {
	switch f {
	case FormatMarkdown:
		return t.Markdown(w)
	case FormatJSON:
		return t.JSON(w)
	case FormatCSV:
		return t.CSV(w)
	case FormatHTML:
		return t.HTML(w)
	}
	return fmt.Errorf("unknown timeline format %q: want md, json, csv or html", string(f))
}

// unknown is how md and html show a value that is not known.
const unknown = "—"

const (
	dateTimeLayout = "2006-01-02 15:04:05"
	timeLayout     = "15:04:05"
)

// Markdown writes the timeline as a review-ready document: a title with
// the headline, the response times, and a table of entries.
func (t Timeline) Markdown(w io.Writer) error {
	v := t.view()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Incident %s: %s\n\n", mdEscape(v.ID), mdEscape(v.Headline))
	if v.Meta != "" {
		fmt.Fprintf(&b, "%s\n\n", mdEscape(v.Meta))
	}
	b.WriteString("| Metric | Value |\n| --- | --- |\n")
	for _, r := range v.Summary {
		fmt.Fprintf(&b, "| %s | %s |\n", mdEscape(r.Name), mdEscape(r.Value))
	}
	b.WriteString("\n")
	if len(v.Rows) == 0 {
		b.WriteString("No events recorded.\n")
	} else {
		b.WriteString("| Time (UTC) | Event | Details | Who |\n| --- | --- | --- | --- |\n")
		for _, r := range v.Rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdEscape(r.Time), mdEscape(r.Event), mdEscape(r.Text), mdEscape(r.Actor))
		}
	}
	t.markdownReview(&b)
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write timeline markdown: %w", err)
	}
	return nil
}

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "~", `\~`,
	"<", `\<`, ">", `\>`, "[", `\[`, "]", `\]`,
	"\r\n", "<br>", "\n", "<br>", "\r", "<br>",
)

// mdEscape makes s safe inside a Markdown table cell or heading: pipes
// would split the cell, newlines end the row, and the characters of
// inline markup would turn signatures like "fn-<*> failed <*>" into
// emphasis or HTML.
func mdEscape(s string) string { return mdEscaper.Replace(s) }

type jsonDoc struct {
	Incident jsonIncident `json:"incident"`
	Metrics  jsonMetrics  `json:"metrics"`
	Entries  []jsonEntry  `json:"entries"`
	// Review is the review's sections, when the export has them.
	Review *jsonReview `json:"review,omitempty"`
}

type jsonIncident struct {
	ID         string  `json:"id"`
	Key        string  `json:"key"`
	Service    string  `json:"service"`
	Signature  string  `json:"signature"`
	Kind       string  `json:"kind"`
	Status     string  `json:"status"`
	Severity   string  `json:"severity"`
	Headline   string  `json:"headline"`
	OpenedAt   *string `json:"opened_at"`
	LastSeen   *string `json:"last_seen"`
	ResolvedAt *string `json:"resolved_at"`
}

type jsonMetrics struct {
	Onset             *string  `json:"onset"`
	Detected          *string  `json:"detected"`
	Paged             *string  `json:"paged"`
	Acknowledged      *string  `json:"acknowledged"`
	Rollback          *string  `json:"rollback"`
	Recovered         *string  `json:"recovered"`
	Resolved          *string  `json:"resolved"`
	TimeToDetect      *float64 `json:"time_to_detect_seconds"`
	TimeToPage        *float64 `json:"time_to_page_seconds"`
	TimeToAcknowledge *float64 `json:"time_to_acknowledge_seconds"`
	TimeToRecover     *float64 `json:"time_to_recover_seconds"`
	RollbackToRecover *float64 `json:"rollback_to_recover_seconds"`
}

type jsonEntry struct {
	At     *string `json:"at"`
	Kind   string  `json:"kind"`
	Source string  `json:"source"`
	Actor  string  `json:"actor"`
	Text   string  `json:"text"`
}

// JSON writes the timeline with snake_case field names, RFC 3339 times,
// durations in seconds, and null for whatever is unknown. Field names are
// a contract: add fields, never rename them.
func (t Timeline) JSON(w io.Writer) error {
	in, m := t.Incident, t.Metrics
	doc := jsonDoc{
		Incident: jsonIncident{
			ID: in.ID, Key: in.Key, Service: in.Service, Signature: in.Signature,
			Kind: string(in.Kind), Status: string(in.Status), Severity: string(in.Severity),
			Headline: t.headline(),
			OpenedAt: jsonTime(in.OpenedAt), LastSeen: jsonTime(in.LastSeen), ResolvedAt: jsonTime(in.ResolvedAt),
		},
		Metrics: jsonMetrics{
			Onset: jsonTime(m.Onset), Detected: jsonTime(m.Detected), Paged: jsonTime(m.Paged),
			Acknowledged: jsonTime(m.Acknowledged), Rollback: jsonTime(m.Rollback),
			Recovered: jsonTime(m.Recovered), Resolved: jsonTime(m.Resolved),
			TimeToDetect:      jsonSeconds(m.TimeToDetect, m.KnownTimeToDetect),
			TimeToPage:        jsonSeconds(m.TimeToPage, m.KnownTimeToPage),
			TimeToAcknowledge: jsonSeconds(m.TimeToAcknowledge, m.KnownTimeToAcknowledge),
			TimeToRecover:     jsonSeconds(m.TimeToRecover, m.KnownTimeToRecover),
			RollbackToRecover: jsonSeconds(m.RollbackToRecover, m.KnownRollbackToRecover),
		},
		Entries: make([]jsonEntry, 0, len(t.Entries)),
		Review:  t.jsonReview(),
	}
	for _, e := range t.Entries {
		doc.Entries = append(doc.Entries, jsonEntry{At: jsonTime(e.At), Kind: e.Kind, Source: e.Source, Actor: e.Actor, Text: e.Text})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // signatures are full of <*>; this is not embedded in HTML
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode timeline json: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write timeline json: %w", err)
	}
	return nil
}

func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func jsonSeconds(d time.Duration, known bool) *float64 {
	if !known {
		return nil
	}
	s := d.Seconds()
	return &s
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// CSV writes one row per entry under a header row: time (RFC 3339, empty
// when unknown), source, kind, actor, text. The review's sections follow
// as rows of source "review" (see csvReview).
//
// A cell that a spreadsheet would run as a formula (starting with =, +,
// -, @, tab or carriage return) gets a leading apostrophe: ticket
// subjects are written by customers, and this file gets opened in Excel.
func (t Timeline) CSV(w io.Writer) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	records := make([][]string, 0, len(t.Entries)+1)
	records = append(records, []string{"time", "source", "kind", "actor", "text"})
	for _, e := range t.Entries {
		at := ""
		if !e.At.IsZero() {
			at = rfc3339(e.At)
		}
		records = append(records, []string{at, csvSafe(e.Source), csvSafe(e.Kind), csvSafe(e.Actor), csvSafe(e.Text)})
	}
	records = append(records, t.csvReview()...)
	if err := cw.WriteAll(records); err != nil {
		return fmt.Errorf("encode timeline csv: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write timeline csv: %w", err)
	}
	return nil
}

func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// HTML writes a standalone page: no scripts, no external resources, so it
// can be attached to a review or opened from disk.
func (t Timeline) HTML(w io.Writer) error {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, t.view()); err != nil {
		return fmt.Errorf("render timeline html: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write timeline html: %w", err)
	}
	return nil
}

// HTMLFragment renders the response-time and timeline tables alone, for a
// page that embeds them (the evidence page). Styling is left to that page
// through the classes "timeline", "timeline-metrics" and
// "timeline-entries".
func (t Timeline) HTMLFragment() (template.HTML, error) {
	var b bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&b, "fragment", t.view()); err != nil {
		return "", fmt.Errorf("render timeline html fragment: %w", err)
	}
	return template.HTML(b.String()), nil // #nosec G203 -- produced by html/template, escaped
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Incident {{.ID}}: {{.Headline}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #1b1b1b; }
h1 { font-size: 1.4em; }
.meta { color: #555; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
td { white-space: pre-wrap; }
caption { text-align: left; font-weight: bold; padding: .3em 0; }
.timeline-entries td:first-child { white-space: nowrap; font-variant-numeric: tabular-nums; }
.source-deploy { background: #f4f8ff; }
.source-pagerduty { background: #f3fbf3; }
.source-zendesk { background: #fff9ef; }
</style>
</head>
<body>
<h1>Incident {{.ID}}: {{.Headline}}</h1>
{{if .Meta}}<p class="meta">{{.Meta}}</p>
{{end}}{{template "fragment" .}}
</body>
</html>
{{define "fragment"}}<section class="timeline">
<table class="timeline-metrics">
<caption>Response times</caption>
<tbody>
{{range .Summary}}<tr><th scope="row">{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</tbody>
</table>
<table class="timeline-entries">
<caption>Timeline</caption>
<thead><tr><th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Details</th><th scope="col">Who</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="source-{{.Source}}"><td>{{if .ISO}}<time datetime="{{.ISO}}">{{.Time}}</time>{{else}}{{.Time}}{{end}}</td><td>{{.Event}}</td><td>{{.Text}}</td><td>{{.Actor}}</td></tr>
{{else}}<tr><td colspan="4">No events recorded.</td></tr>
{{end}}</tbody>
</table>
{{with .Review}}<section class="timeline-review">
<h2>{{.AlertingTitle}}</h2>
<p>{{.Summary}}</p>
{{if .Verdicts}}<table class="timeline-alerting">
<thead><tr><th scope="col">Scope</th><th scope="col">Peak share</th><th scope="col">At</th><th scope="col">Alert</th></tr></thead>
<tbody>
{{range .Verdicts}}<tr><td>{{.Scope}}</td><td>{{.Peak}}</td><td>{{.At}}</td><td>{{.Alert}}</td></tr>
{{end}}</tbody>
</table>
{{end}}{{if .Shares}}<table class="timeline-shares">
<caption>Error share over the alert's window, by minute</caption>
<thead><tr><th scope="col">Time (UTC)</th>{{range .Columns}}<th scope="col">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Shares}}<tr><td>{{.Time}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{end}}<h2>{{.CustomersTitle}}</h2>
{{if .Customers}}<table class="timeline-customers">
<thead><tr><th scope="col">Customer</th><th scope="col">Tier</th><th scope="col">First error (UTC)</th><th scope="col">Last error (UTC)</th><th scope="col">Errors</th><th scope="col">Tickets</th></tr></thead>
<tbody>
{{range .Customers}}<tr><td>{{.Customer}}</td><td>{{.Tier}}</td><td>{{.First}}</td><td>{{.Last}}</td><td>{{.Errors}}</td><td>{{.Tickets}}</td></tr>
{{end}}</tbody>
</table>
{{else}}<p>No affected customers were counted.</p>
{{end}}</section>
{{end}}</section>
{{end}}`))

// view is what the Markdown and HTML renderings share, already worded.
type view struct {
	ID, Headline, Meta string
	Summary            []summaryRow
	Rows               []entryRow
	Review             *reviewView
}

type summaryRow struct{ Name, Value string }

type entryRow struct{ Time, ISO, Event, Text, Actor, Source string }

func (t Timeline) view() view {
	in, m := t.Incident, t.Metrics
	v := view{ID: in.ID, Headline: t.headline(), Review: t.reviewView()}
	if v.ID == "" {
		v.ID = in.Key
	}
	var meta []string
	for _, kv := range [][2]string{{"Service", in.Service}, {"Status", string(in.Status)}, {"Severity", string(in.Severity)}, {"Key", in.Key}} {
		if kv[1] != "" {
			meta = append(meta, kv[0]+": "+kv[1])
		}
	}
	v.Meta = strings.Join(meta, " · ")

	stamp := func(t time.Time) string {
		if t.IsZero() {
			return unknown
		}
		return t.UTC().Format(dateTimeLayout) + " UTC"
	}
	span := func(d time.Duration, known bool, suffix string) string {
		if !known {
			return unknown
		}
		return formatDuration(d) + suffix
	}
	v.Summary = []summaryRow{
		{"Onset", stamp(m.Onset)},
		{"Detected", stamp(m.Detected)},
		{"Paged", stamp(m.Paged)},
		{"Acknowledged", stamp(m.Acknowledged)},
		{"Rollback started", stamp(m.Rollback)},
		{"Recovered", stamp(m.Recovered)},
		{"Resolved", stamp(m.Resolved)},
		{"Time to detect", span(m.TimeToDetect, m.KnownTimeToDetect, "")},
		{"Time to page", span(m.TimeToPage, m.KnownTimeToPage, "")},
		{"Time to acknowledge", span(m.TimeToAcknowledge, m.KnownTimeToAcknowledge, " after the page")},
		{"Time to recover", span(m.TimeToRecover, m.KnownTimeToRecover, "")},
		{"Rollback to recovery", span(m.RollbackToRecover, m.KnownRollbackToRecover, "")},
	}

	// One date for the whole table reads better as bare times; an incident
	// that spans midnight keeps the dates.
	layout := timeLayout
	var day string
	for _, e := range t.Entries {
		if e.At.IsZero() {
			continue
		}
		d := e.At.UTC().Format(time.DateOnly)
		if day != "" && d != day {
			layout = dateTimeLayout
			break
		}
		day = d
	}
	for _, e := range t.Entries {
		r := entryRow{Time: unknown, Event: eventLabel(e), Text: e.Text, Actor: e.Actor, Source: e.Source}
		if !e.At.IsZero() {
			r.Time, r.ISO = e.At.UTC().Format(layout), rfc3339(e.At)
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

// headline is the incident's one-line story: the finding's headline when
// there is one.
func (t Timeline) headline() string {
	in := t.Incident
	var h string
	switch {
	case in.Finding != nil && in.Finding.Headline != "":
		h = in.Finding.Headline
	case in.Service != "" && in.Signature != "":
		h = fmt.Sprintf("%s: '%s'", in.Service, in.Signature)
	case in.Service != "":
		h = in.Service
	default:
		h = in.Key
	}
	return strings.Join(strings.Fields(h), " ")
}

func eventLabel(e Entry) string {
	k := strings.NewReplacer("_", " ", ".", " ").Replace(e.Kind)
	switch {
	case e.Source == SourcePagerDuty:
		return "PagerDuty " + k
	case e.Source == SourceSlack:
		return "Slack " + k
	case e.Source == SourceZendesk && e.Kind != KindTicketCreated:
		return "Zendesk " + k
	}
	return k
}

// formatDuration writes whole seconds as "1h 12m 5s", dropping zero parts,
// which reads better in a review than time.Duration's "1h12m5s".
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	var parts []string
	if h > 0 {
		parts = append(parts, fmt.Sprintf("%dh", h))
	}
	if m > 0 {
		parts = append(parts, fmt.Sprintf("%dm", m))
	}
	if s > 0 {
		parts = append(parts, fmt.Sprintf("%ds", s))
	}
	return strings.Join(parts, " ")
}
