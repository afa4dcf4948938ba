package evidence

import (
	"cmp"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/chart"
	"github.com/culprithq/culprit/escalate/report"
)

// The views hold everything the templates print, already worded, so the
// templates stay free of logic and every string they print goes through
// html/template's escaping.

// stamp is a moment as the pages show it.
type stamp struct {
	Text string // "2026-11-20 16:02:00 UTC", or "—" when unknown
	ISO  string // RFC 3339 for <time datetime>, empty when unknown
}

const unknown = "—"

func newStamp(t time.Time) stamp {
	if t.IsZero() {
		return stamp{Text: unknown}
	}
	t = t.UTC()
	return stamp{Text: t.Format("2006-01-02 15:04:05") + " UTC", ISO: t.Format(time.RFC3339)}
}

// headline is the incident's one line: the finding's headline, else the
// meta incident's text, else service and signature. Whitespace is
// collapsed so the same line reads the same in the page, its title and
// the timeline export.
func headline(in *escalate.Incident) string {
	var h string
	switch {
	case in.Finding != nil && strings.TrimSpace(in.Finding.Headline) != "":
		h = in.Finding.Headline
	case in.Meta && in.Signature != "":
		h = in.Signature
	case in.Service != "" && in.Signature != "":
		h = fmt.Sprintf("%s: '%s'", in.Service, in.Signature)
	case in.Signature != "":
		h = in.Signature
	case in.Service != "":
		h = in.Service
	default:
		h = cmp.Or(in.Key, in.ID)
	}
	return strings.Join(strings.Fields(h), " ")
}

// incidentPath is the page of an incident, its id escaped as one path
// segment; file names go after it.
func incidentPath(id string) string { return "/incidents/" + url.PathEscape(id) }

// listView is the incident list.
type listView struct {
	Status  string // the filter, "" for all
	Rows    []listRow
	Limited bool // the store returned as many as asked: older ones may exist
	Limit   int
}

type listRow struct {
	ID, Path, Status, Severity, Action, Service, Headline string
	// Priority is P1–P4, "" for an incident without a finding.
	Priority                       string
	Onset, Opened, Paged, Resolved stamp
}

func newListView(ins []escalate.Incident, status escalate.Status, limited bool) listView {
	v := listView{Status: string(status), Limit: listLimit, Limited: limited}
	for i := range ins {
		in := &ins[i]
		r := listRow{
			ID: in.ID, Path: incidentPath(in.ID), Status: string(in.Status), Severity: string(in.Severity),
			Action: string(in.Action), Service: in.Service, Headline: headline(in),
			Onset: newStamp(in.Onset), Opened: newStamp(in.OpenedAt), Paged: newStamp(in.PagedAt), Resolved: newStamp(in.ResolvedAt),
		}
		if in.Finding != nil && in.Finding.Priority != nil {
			r.Priority = in.Finding.Priority.Level
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

// pageView is the evidence page.
type pageView struct {
	ID, Path, Headline string
	Status, Severity   string
	Action, Why        string
	Service, Key, Kind string
	Meta               bool
	MetaText           string
	Flaps              int
	Onset, Opened      stamp
	Paged, LastSeen    stamp
	Recovered          stamp
	Resolved           stamp

	Finding *findingView // nil for an incident without a finding

	Links    []correlate.Link
	Timeline template.HTML // rendered and escaped by package timeline
	Exports  []exportLink
}

type exportLink struct{ Label, Href string }

// img is a chart on the page. Width and height are given so the page does
// not jump as the charts arrive, and so print layout knows their size.
type img struct {
	Src, Alt      string
	Width, Height int
}

type findingView struct {
	ID, Kind, Signature string
	Detected            stamp
	SeverityReasons     []string

	// Priority is "P2", with why and the facts weighed; empty for a
	// finding stored before priorities existed.
	Priority, PriorityWhy, PriorityFacts string
	// CustomerSummary and Customers name the affected customers support
	// knows.
	CustomerSummary string
	Customers       []customerRow

	RateChart, ScopeChart *img

	TicketSurge bool
	Frequency   []freqRow
	Count       string
	Significant string

	Affected      []affectedRow
	Concentration []concRow
	Explanations  []explRow
	// Service names the requests every share of requests is a share of.
	Service string

	Suspects []suspectView
	// Unaligned names the deploy that finished just before an onset no
	// deploy is blamed for, and why it is not: the reader's first
	// question when the page says "none".
	Unaligned string
	// Recovery says what ended the errors (a rollback reaching the last
	// host, say), with the per-host evidence; BeforeDeploy, the excess
	// one customer carried before the suspected deploy, which moved no
	// onset. Both are what the Monday review reads first.
	Recovery        string
	RecoveryReasons []string
	BeforeDeploy    string

	Tickets []ticketView
	// Others are the ids of affected customers' tickets that are not
	// obviously related, and OthersNote says how many.
	Others     []int64
	OthersNote string
	Examples   []string
	Samples    []sampleView
}

type freqRow struct{ When, Rate, Share string }

type customerRow struct {
	Name, ID, Tier, Owner string
	VIP                   bool
	Errors                int64
}

type affectedRow struct {
	Label string
	Count int
}

type concRow struct{ Value, Errors, Requests, Ratio string }

// explRow is one scope explanation, each share in its own column under a
// header that names its denominator.
type explRow struct{ Conditions, Errors, Requests, Failed, Versus string }

type suspectView struct {
	ID, Service, Version, URL string
	Started, Finished         stamp
	Score                     string
	Reasons                   []string
}

type ticketView struct {
	ID                   int64
	Subject, Org, Reason string
	Created              stamp
}

type sampleView struct {
	Time                                   stamp
	Host, Customer, Site, Version, Message string
}

// chartPixels is the chart's size on screen: the PNG's pixel size at
// chart.DPI, which the SVG matches.
func chartPixels() (w, h int) {
	return int(float64(chart.DefaultSize.Width)*chart.DPI/72 + 0.5), int(float64(chart.DefaultSize.Height)*chart.DPI/72 + 0.5)
}

func newPageView(in *escalate.Incident, deploys []correlate.Deploy, links []correlate.Link, frag template.HTML) pageView {
	p := incidentPath(in.ID)
	v := pageView{
		ID: in.ID, Path: p, Headline: headline(in),
		Status: string(in.Status), Severity: string(in.Severity), Action: string(in.Action), Why: in.Why,
		Service: in.Service, Key: in.Key, Kind: string(in.Kind), Meta: in.Meta, Flaps: in.Flaps,
		Onset: newStamp(in.Onset), Opened: newStamp(in.OpenedAt), Paged: newStamp(in.PagedAt),
		LastSeen: newStamp(in.LastSeen), Recovered: newStamp(in.Recovered), Resolved: newStamp(in.ResolvedAt),
		Timeline: frag,
		Exports: []exportLink{
			{"Markdown", p + "/timeline.md"}, {"CSV", p + "/timeline.csv"},
			{"JSON", p + "/timeline.json"}, {"HTML", p + "/timeline.html"},
		},
	}
	if in.Meta || in.Finding == nil {
		// The meta incident's text is its signature: what culprit could
		// not read, and why.
		v.MetaText = in.Signature
	}
	if in.Finding != nil {
		v.Finding = newFindingView(in, deploys, p)
	}
	v.Links = pageLinks(in, deploys, links)
	return v
}

func newFindingView(in *escalate.Incident, deploys []correlate.Deploy, path string) *findingView {
	f := in.Finding
	fv := &findingView{
		ID: f.ID, Kind: string(f.Kind), Signature: f.Signature, Detected: newStamp(f.Detected),
		SeverityReasons: f.SeverityReasons, TicketSurge: f.Kind == correlate.KindTicketSurge,
		Examples: f.Examples,
	}
	if p := f.Priority; p != nil {
		fv.Priority, fv.PriorityWhy, fv.PriorityFacts = p.Level, p.Why, p.Facts
	}
	if c := f.Customers; c != nil {
		fv.CustomerSummary = c.Summary
		for _, n := range c.Named {
			fv.Customers = append(fv.Customers, customerRow{Name: n.Name, ID: n.ID, Tier: n.Tier, Owner: n.Owner, VIP: n.VIP, Errors: n.Errors})
		}
	}
	w, h := chartPixels()
	if f.Series != nil {
		fv.RateChart = &img{Src: path + "/chart.svg", Width: w, Height: h,
			Alt: fmt.Sprintf("Errors a minute of %s on %s against the expected range, with the deploys around the onset", f.Signature, f.Service)}
	}
	fv.ScopeChart = &img{Src: path + "/scope.svg", Width: w, Height: h,
		Alt: fmt.Sprintf("Where the errors of %s concentrate: share of errors beside share of requests", f.Signature)}

	fr := f.Frequency
	if fv.TicketSurge {
		fv.Frequency = []freqRow{
			{When: "Before the onset", Rate: perHour(fr.BeforePerMin)},
			{When: "After the onset", Rate: perHour(fr.AfterPerMin)},
		}
		fv.Count = correlate.Plural(int(fr.Count), "ticket") + " since the onset"
	} else {
		fv.Frequency = []freqRow{
			{When: "Before the onset", Rate: perMinute(fr.BeforePerMin), Share: share(fr.ShareBefore)},
			{When: "After the onset", Rate: perMinute(fr.AfterPerMin), Share: share(fr.ShareAfter)},
		}
		fv.Count = correlate.Plural(int(fr.Count), "error") + " since the onset"
	}
	if sg := f.Significance; sg.Method != "" || sg.Tests > 0 {
		fv.Significant = fmt.Sprintf("p = %.2g, q = %.2g over %d series tested", sg.PValue, sg.QValue, sg.Tests)
		if sg.Method != "" {
			fv.Significant += " (" + sg.Method + ")"
		}
	}

	fv.Affected = affectedRows(f.Scope.Affected)
	fv.Service = f.Service
	for _, e := range f.Scope.Explanations {
		r := explRow{Conditions: e.Label(), Errors: correlate.Percent(e.ShareOfErrors), Requests: correlate.Percent(e.ShareOfRequests),
			Failed: correlate.Percent(e.ErrorRate), Versus: "none failed"}
		when := "the rest"
		if e.Versus == "before" {
			when = "the rest before onset"
		}
		if e.VersusErrorRate > 0 {
			r.Versus = fmt.Sprintf("%s failed: %s as often here", correlate.Percent(e.VersusErrorRate), correlate.Ratio(e.RiskRatio))
		}
		r.Versus = when + ": " + r.Versus
		fv.Explanations = append(fv.Explanations, r)
	}
	for _, c := range f.Scope.Concentration {
		r := concRow{Value: c.Field + "=" + c.Value, Errors: correlate.Percent(c.ShareOfErrors), Requests: correlate.Percent(c.ShareOfRequests)}
		if c.ShareOfRequests > 0 && c.ShareOfErrors > 0 {
			r.Ratio = fmt.Sprintf("×%s", report.Number(c.ShareOfErrors/c.ShareOfRequests))
		}
		fv.Concentration = append(fv.Concentration, r)
	}
	for _, s := range f.SuspectedDeploys {
		fv.Suspects = append(fv.Suspects, suspectView{
			ID: s.ID, Service: s.Service, Version: s.Version, URL: deployURL(s, deploys),
			Started: newStamp(s.StartedAt), Finished: newStamp(s.FinishedAt),
			Score: strconv.FormatFloat(s.Score, 'f', 2, 64), Reasons: s.Reasons,
		})
	}
	if u := f.UnalignedDeploy; u != nil && len(f.SuspectedDeploys) == 0 {
		fv.Unaligned = u.Sentence()
	}
	if r := f.Recovery; r != nil {
		fv.Recovery, fv.RecoveryReasons = r.Sentence(f.Recovered), r.Reasons
	}
	if p := f.PreDeployExcess; p != nil {
		fv.BeforeDeploy = p.Sentence()
	}
	for _, t := range f.Tickets {
		tv := ticketView{ID: t.ID, Subject: t.Subject, Reason: t.Reason, Created: newStamp(t.CreatedAt), Org: unknown}
		if t.OrganizationID != 0 {
			tv.Org = strconv.FormatInt(t.OrganizationID, 10)
		}
		fv.Tickets = append(fv.Tickets, tv)
	}
	if n := len(f.OtherTickets); n > 0 {
		fv.Others, fv.OthersNote = f.OtherTickets, correlate.OtherTicketsNote(n)
	}
	for _, s := range f.Samples {
		fv.Samples = append(fv.Samples, sampleView{
			Time: newStamp(s.Time), Host: cmp.Or(s.Host, unknown), Customer: cmp.Or(s.Customer, unknown),
			Site: cmp.Or(s.Site, unknown), Version: cmp.Or(s.Version, unknown), Message: s.Message,
		})
	}
	return fv
}

// perMinute says a rate the way support says it, with its order of
// magnitude: "~40 errors a minute (order 10^1)".
func perMinute(x float64) string {
	if !(x > 0) {
		return "none"
	}
	return fmt.Sprintf("~%s errors a minute (%s)", report.Number(x), report.Magnitude(x))
}

func perHour(perMin float64) string {
	if !(perMin > 0) {
		return "none"
	}
	return fmt.Sprintf("~%s tickets an hour", report.Number(perMin*60))
}

// share says a share of requests as a percentage and as "1 in N", because
// "0.33%" and "about 1 in 300" land differently with different readers.
func share(x float64) string {
	if !(x > 0) {
		return "none"
	}
	return fmt.Sprintf("%s of all requests: %s", correlate.Percent(x), report.OneIn(x))
}

// affectedLabels name the canonical fields in words.
var affectedLabels = map[string]string{
	correlate.FieldCustomer: "customers",
	correlate.FieldSite:     "sites",
	correlate.FieldHost:     "hosts",
	correlate.FieldProvider: "providers",
	correlate.FieldRegion:   "regions",
	correlate.FieldVersion:  "versions",
	correlate.FieldPath:     "paths",
}

// affectedRows lists customers, sites and hosts first, as reports do, then
// any other field by name, so the order never depends on map iteration.
func affectedRows(m map[string]int) []affectedRow {
	var fields []string
	for _, f := range correlate.AffectedFields {
		if _, ok := m[f]; ok {
			fields = append(fields, f)
		}
	}
	var rest []string
	for f := range m {
		if !slices.Contains(correlate.AffectedFields, f) {
			rest = append(rest, f)
		}
	}
	slices.Sort(rest)
	var out []affectedRow
	for _, f := range append(fields, rest...) {
		label := f
		if w, ok := affectedLabels[f]; ok {
			label = w + " (" + f + ")"
		}
		out = append(out, affectedRow{Label: label, Count: m[f]})
	}
	return out
}

// pageLinks are the configured links, the finding's own, and the URL of
// every suspected deploy (from the suspect, else from the stored deploy),
// each URL once, in that order.
func pageLinks(in *escalate.Incident, deploys []correlate.Deploy, cfg []correlate.Link) []correlate.Link {
	var out []correlate.Link
	seen := map[string]bool{}
	add := func(l correlate.Link) {
		if l.URL == "" || seen[l.URL] {
			return
		}
		seen[l.URL] = true
		out = append(out, correlate.Link{Title: cmp.Or(l.Title, l.URL), URL: l.URL})
	}
	for _, l := range cfg {
		add(l)
	}
	f := in.Finding
	if f == nil {
		return out
	}
	for _, l := range f.Links {
		add(l)
	}
	for _, s := range f.SuspectedDeploys {
		what := strings.TrimSpace(s.Service + " " + s.Version)
		add(correlate.Link{Title: fmt.Sprintf("Deploy %s (%s)", s.ID, what), URL: deployURL(s, deploys)})
	}
	return out
}

// deployURL is the suspect's URL, else the stored deploy's: a suspect
// implicated before its deploy hook sent the URL still links to it.
func deployURL(s correlate.Suspect, deploys []correlate.Deploy) string {
	if s.URL != "" {
		return s.URL
	}
	for _, d := range deploys {
		if d.ID == s.ID {
			return d.URL
		}
	}
	return ""
}
