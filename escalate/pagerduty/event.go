package pagerduty

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/report"
)

// PagerDuty's documented limits (developer.pagerduty.com, Events API v2).
const (
	// MaxSummary is the longest payload.summary PagerDuty accepts, in
	// characters.
	MaxSummary = 1024
	// maxEventBytes is the budget for one encoded event. PagerDuty caps
	// payloads at 512 KB; staying under 500,000 bytes holds whichever KB
	// it means.
	maxEventBytes = 500_000
	// maxShort bounds identifiers and names copied into an event, which
	// are short in any sane finding.
	maxShort = 255
	// maxLinks bounds the links on one event.
	maxLinks = 10
	// maxURL drops links whose URL is longer than browsers reliably open.
	maxURL = 2048
)

// Links are culprit's own pages about a finding, as absolute URLs. Any may
// be empty.
type Links struct {
	Evidence string // the finding's evidence page
	Kibana   string // the matching log lines in Kibana
	Chart    string // a PNG of the error series; shown only when https
}

// Trigger builds the trigger event for an incident. key is the dedup_key
// (the incident key): PagerDuty folds every trigger with the same key into
// one open alert, and Resolve with the same key closes it. PagerDuty
// rejects keys over 255 characters, so the caller's keys must stay short.
//
// The event carries the whole evidence in custom_details, trimmed only as
// far as needed to stay under PagerDuty's 512 KB payload cap.
func Trigger(routingKey, key string, f *correlate.Finding, l Links) *pd.V2Event {
	return trigger(routingKey, key, f, l, maxEventBytes)
}

func trigger(routingKey, key string, f *correlate.Finding, l Links, budget int) *pd.V2Event {
	if f == nil {
		f = &correlate.Finding{}
	}
	source := "culprit"
	if f.Service != "" {
		source += "/" + clip(f.Service, maxShort)
	}
	ev := &pd.V2Event{
		RoutingKey: routingKey,
		Action:     "trigger",
		DedupKey:   key,
		Client:     "culprit",
		Links:      links(f, l),
		Images:     images(f, l),
		Payload: &pd.V2Payload{
			Summary:   clip(summary(f), MaxSummary),
			Source:    source,
			Severity:  severity(f.Severity),
			Timestamp: stamp(f.Detected),
			Component: clip(f.Service, maxShort),
			Group:     clip(group(f.Scope.Concentration), maxShort),
			Class:     clip(string(f.Kind), maxShort),
		},
	}
	if webURL(l.Evidence) {
		ev.ClientURL = l.Evidence
	}
	for i, lim := range levels {
		d := details(f, lim, i > 0)
		if o, ok := d["other_tickets"].(map[string]any); ok && webURL(l.Evidence) {
			o["url"] = l.Evidence + "#" + correlate.OtherTicketsAnchor
		}
		ev.Payload.Details = d
		if size(ev) <= budget {
			return ev
		}
	}
	// Only a pathological finding gets here (thousands of huge links or
	// names); the responder still gets the summary and the evidence link.
	ev.Payload.Details = map[string]any{
		"finding_id": clip(f.ID, maxShort),
		"truncated":  "the evidence is too large for PagerDuty; open the evidence link",
	}
	if size(ev) > budget {
		ev.Links, ev.Images = ev.Links[:min(len(ev.Links), 1)], nil
	}
	return ev
}

// Resolve builds the event that closes the alert opened under key.
func Resolve(routingKey, key string) *pd.V2Event {
	return &pd.V2Event{RoutingKey: routingKey, Action: "resolve", DedupKey: key}
}

// ChangeFromDeploy forwards a deploy as a Change Event, so responders see
// it on the service's timeline next to the incident it may have caused.
func ChangeFromDeploy(routingKey string, d correlate.Deploy) pd.ChangeEvent {
	what := strings.TrimSpace(d.Service + " " + d.Version)
	if what == "" {
		what = "a new version"
	}
	sum := what + " deployed"
	if d.ID != "" {
		sum += " (" + d.ID + ")"
	}
	det := map[string]any{
		"id":          clip(d.ID, maxShort),
		"service":     clip(d.Service, maxShort),
		"version":     clip(d.Version, maxShort),
		"environment": clip(d.Environment, maxShort),
		"author":      clip(d.Author, maxShort),
		"hosts":       len(d.Hosts),
	}
	putTime(det, "started_at", d.StartedAt)
	putTime(det, "finished_at", d.FinishedAt)
	if d.Description != "" {
		det["description"] = clip(d.Description, 2000)
	}
	ev := pd.ChangeEvent{
		RoutingKey: routingKey,
		Payload: pd.ChangeEventPayload{
			Summary:       clip(sum, MaxSummary),
			Source:        "culprit",
			Timestamp:     stamp(d.StartedAt),
			CustomDetails: det,
		},
	}
	if webURL(d.URL) {
		ev.Links = []pd.ChangeEventLink{{Href: d.URL, Text: clip(what+" release", maxShort)}}
	}
	return ev
}

// severity maps culprit's escalation level onto PagerDuty's. A page is
// "error", not "critical": with "Based on alert severity" urgency both page
// at high urgency, and "critical" stays free for signals that a service is
// down outright (health checks), so event rules can still tell culprit's
// statistical inference apart from them. An unknown level has not passed
// the breadth test that justifies waking someone, hence "warning".
func severity(s correlate.Severity) string {
	switch s {
	case correlate.SeverityPage:
		return "error"
	case correlate.SeverityInfo:
		return "info"
	default:
		return "warning"
	}
}

// PrioritySeverity maps a support priority onto PagerDuty's severity
// scale, the documented mapping an Event Orchestration rule can use to set
// PagerDuty's own priority: P1 critical, P2 error, P3 warning, P4 info.
// The event's own payload.severity stays the finding's (see severity), so
// existing urgency rules keep working.
func PrioritySeverity(level string) string {
	switch level {
	case "P1":
		return "critical"
	case "P2":
		return "error"
	case "P3":
		return "warning"
	}
	return "info"
}

// summary is the headline the correlator wrote; a finding without one
// (never from the correlator) still pages with something readable.
func summary(f *correlate.Finding) string {
	if h := strings.TrimSpace(f.Headline); h != "" {
		return h
	}
	parts := []string{"culprit"}
	if f.Kind != "" {
		parts = append(parts, strings.ReplaceAll(string(f.Kind), "_", " "))
	}
	if f.Service != "" {
		parts = append(parts, "in "+f.Service)
	}
	s := strings.Join(parts, " ")
	if f.Signature != "" {
		s += ": " + f.Signature
	}
	return s
}

// group names the dimension value that concentrates the errors, such as
// "cloud.provider=aws": PagerDuty groups alerts by it. Providers and
// regions come first because that is where infrastructure looks first; a
// new version concentrates every deploy-caused error by construction and
// is already in the suspects, so it is the last resort. Customers, sites
// and paths are skipped: they are one tenant's, not a group of components,
// and would split alerts per customer.
func group(cs []correlate.Concentration) string {
	rank := func(field string) int {
		switch field {
		case correlate.FieldProvider, correlate.FieldRegion:
			return 0
		case correlate.FieldVersion:
			return 2
		case correlate.FieldCustomer, correlate.FieldSite, correlate.FieldPath, "":
			return -1
		}
		return 1
	}
	for want := 0; want <= 2; want++ {
		for _, c := range cs {
			if rank(c.Field) == want && c.Value != "" {
				return c.Field + "=" + c.Value
			}
		}
	}
	return ""
}

func links(f *correlate.Finding, l Links) []any {
	var out []any
	add := func(href, text string) {
		if len(out) < maxLinks && webURL(href) {
			out = append(out, map[string]string{"href": href, "text": clip(text, maxShort)})
		}
	}
	name := "finding"
	if f.ID != "" {
		name = "finding " + f.ID
	}
	add(l.Evidence, "culprit evidence for "+name)
	service := f.Service
	if service == "" {
		service = "the service"
	}
	add(l.Kibana, "Kibana: matching errors of "+service)
	for _, s := range f.SuspectedDeploys {
		add(s.URL, strings.Join(strings.Fields(fmt.Sprintf("Suspected deploy %s: %s %s", s.ID, s.Service, s.Version)), " "))
	}
	return out
}

// images attaches the chart. PagerDuty only renders images served over
// https, so an http chart (a dev setup) is left to the evidence page.
func images(f *correlate.Finding, l Links) []any {
	if !webURL(l.Chart) || !strings.HasPrefix(strings.ToLower(l.Chart), "https://") {
		return nil
	}
	img := map[string]string{"src": l.Chart, "alt": clip("errors per minute of "+f.Service+" around onset", maxShort)}
	if webURL(l.Evidence) {
		img["href"] = l.Evidence
	}
	return []any{img}
}

// webURL accepts absolute http(s) URLs only: a link from a deploy record is
// untrusted, and javascript: or relative links have no place in a page.
func webURL(s string) bool {
	if s == "" || len(s) > maxURL {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme == "http" || scheme == "https"
}

// limits bound the evidence copied into custom_details. The first level is
// what a responder can use; the later ones exist only to fit PagerDuty's
// payload cap when a finding is pathological.
type limits struct {
	text     int // runes per free-text value: reasons, subjects, messages
	long     int // runes for the headline and the signature
	examples int
	samples  int
	dims     int // scope dimensions
	rows     int // concentration rows per dimension
	suspects int
	reasons  int // per suspect, and severity reasons
	tickets  int
}

var levels = []limits{
	{text: 1000, long: 4000, examples: 10, samples: 10, dims: 10, rows: 10, suspects: 10, reasons: 20, tickets: 100},
	{text: 500, long: 2000, examples: 5, samples: 5, dims: 7, rows: 5, suspects: 5, reasons: 10, tickets: 50},
	{text: 200, long: 1000, examples: 3, samples: 3, dims: 7, rows: 3, suspects: 3, reasons: 5, tickets: 20},
	{text: 100, long: 300, examples: 1, samples: 0, dims: 3, rows: 1, suspects: 1, reasons: 2, tickets: 5},
}

// details is the evidence as a JSON-friendly map, in the words of the text
// report where people read it (frequency, scope) and as numbers where rules
// may match on it.
func details(f *correlate.Finding, lim limits, trimmed bool) map[string]any {
	omitted := map[string]int{}
	take := func(name string, n, limit int) int {
		if n > limit {
			omitted[name] = n - limit
			return limit
		}
		return n
	}
	d := map[string]any{
		"finding_id": clip(f.ID, maxShort),
		"service":    clip(f.Service, maxShort),
		"kind":       clip(string(f.Kind), maxShort),
		"severity":   clip(string(f.Severity), maxShort),
		"headline":   clip(f.Headline, lim.long),
		"signature":  clip(f.Signature, lim.long),
	}
	reasons := make([]string, take("severity_reasons", len(f.SeverityReasons), lim.reasons))
	for i := range reasons {
		reasons[i] = clip(f.SeverityReasons[i], lim.text)
	}
	d["severity_reasons"] = reasons
	if p := f.Priority; p != nil {
		// A flat string, so an Event Orchestration rule can match
		// event.custom_details.priority and set PagerDuty's priority.
		d["priority"] = clip(p.Level, maxShort)
		d["priority_severity"] = PrioritySeverity(p.Level)
		d["priority_why"] = clip(p.Why, lim.text)
		d["priority_facts"] = clip(p.Facts, lim.text)
	}
	if c := f.Customers; c != nil {
		named := make([]map[string]any, take("customers", len(c.Named), lim.rows))
		for i := range named {
			n := c.Named[i]
			m := map[string]any{"id": clip(n.ID, maxShort), "errors": n.Errors}
			for k, v := range map[string]string{"name": n.Name, "tier": n.Tier, "owner": n.Owner} {
				if v != "" {
					m[k] = clip(v, maxShort)
				}
			}
			if n.VIP {
				m["vip"] = true
			}
			named[i] = m
		}
		d["customers"] = map[string]any{"summary": clip(c.Summary, lim.text), "named": named, "top": c.Top, "total": c.Total}
	}
	if ev, ok := correlate.ConfinedEvidence(f); ok {
		// One customer carries it: their evidence on its own, for the
		// support on-call the VIP route pages.
		m := map[string]any{"id": clip(ev.ID, maxShort)}
		for k, v := range map[string]string{"name": ev.Name, "tier": ev.Tier, "owner": ev.Owner} {
			if v != "" {
				m[k] = clip(v, maxShort)
			}
		}
		if ev.VIP {
			m["vip"] = true
		}
		clipAll := func(xs []string, n int) []string {
			out := make([]string, 0, min(len(xs), n))
			for _, x := range xs[:min(len(xs), n)] {
				out = append(out, clip(x, lim.text))
			}
			return out
		}
		m["sites"] = clipAll(ev.Sites, lim.rows)
		m["paths"] = clipAll(ev.Paths, lim.rows)
		var msgs, tickets []string
		for _, sm := range ev.Samples {
			msgs = append(msgs, sm.Time.UTC().Format("15:04:05")+" "+sm.Site+" "+sm.Message)
		}
		for _, t := range ev.Tickets {
			tickets = append(tickets, fmt.Sprintf("#%d %s", t.ID, t.Subject))
		}
		m["samples"] = clipAll(msgs, lim.samples)
		m["tickets"] = clipAll(tickets, lim.tickets)
		d["customer"] = m
	}
	putTime(d, "onset", f.Onset)
	putTime(d, "detected", f.Detected)
	if f.Recovered != nil {
		putTime(d, "recovered", *f.Recovered)
	}
	if r := f.Recovery; r != nil {
		d["recovery"] = map[string]any{
			"deploy_id": clip(r.DeployID, maxShort),
			"rollback":  r.Rollback,
			"summary":   clip(r.Sentence(f.Recovered), lim.text),
		}
	}
	if u := f.UnalignedDeploy; u != nil {
		d["unaligned_deploy"] = map[string]any{
			"deploy_id": clip(u.DeployID, maxShort),
			"summary":   clip(u.Sentence(), lim.text),
		}
	}
	if p := f.PreDeployExcess; p != nil {
		d["pre_deploy_excess"] = map[string]any{
			"deploy_id": clip(p.DeployID, maxShort),
			"customer":  clip(p.Customer, maxShort),
			"share":     finite(p.Share),
			"summary":   clip(p.Sentence(), lim.text),
		}
	}

	fr := f.Frequency
	d["frequency"] = map[string]any{
		"after_per_min":  finite(fr.AfterPerMin),
		"before_per_min": finite(fr.BeforePerMin),
		"share_after":    finite(fr.ShareAfter),
		"share_before":   finite(fr.ShareBefore),
		"count":          fr.Count,
		"magnitude":      report.Magnitude(fr.AfterPerMin),
		"text":           frequencyText(f),
	}
	sg := f.Significance
	d["significance"] = map[string]any{
		"method":  clip(sg.Method, lim.text),
		"p_value": finite(sg.PValue),
		"q_value": finite(sg.QValue),
		"tests":   sg.Tests,
	}
	d["scope"] = scope(f.Service, f.Scope, lim, take)

	suspects := make([]map[string]any, take("suspects", len(f.SuspectedDeploys), lim.suspects))
	for i := range suspects {
		s := f.SuspectedDeploys[i]
		rs := make([]string, min(len(s.Reasons), lim.reasons))
		for j := range rs {
			rs[j] = clip(s.Reasons[j], lim.text)
		}
		m := map[string]any{
			"id":      clip(s.ID, maxShort),
			"service": clip(s.Service, maxShort),
			"version": clip(s.Version, maxShort),
			"score":   finite(s.Score),
			"reasons": rs,
		}
		putTime(m, "started_at", s.StartedAt)
		putTime(m, "finished_at", s.FinishedAt)
		if webURL(s.URL) {
			m["url"] = s.URL
		}
		suspects[i] = m
	}
	d["suspects"] = suspects

	tickets := make([]map[string]any, take("tickets", len(f.Tickets), lim.tickets))
	for i := range tickets {
		t := f.Tickets[i]
		m := map[string]any{
			"id":              t.ID,
			"subject":         clip(t.Subject, lim.text),
			"organization_id": t.OrganizationID,
		}
		putTime(m, "created_at", t.CreatedAt)
		if t.Reason != "" {
			m["reason"] = clip(t.Reason, lim.text)
		}
		if t.Score != 0 {
			m["score"] = t.Score
		}
		tickets[i] = m
	}
	d["tickets"] = tickets
	if n := len(f.OtherTickets); n > 0 {
		d["other_tickets"] = map[string]any{"count": n, "note": correlate.OtherTicketsNote(n)}
	}

	examples := make([]string, take("examples", len(f.Examples), lim.examples))
	for i := range examples {
		examples[i] = clip(f.Examples[i], lim.text)
	}
	d["examples"] = examples
	if len(f.Samples) > 0 {
		samples := make([]map[string]any, take("samples", len(f.Samples), lim.samples))
		for i := range samples {
			s := f.Samples[i]
			m := map[string]any{"message": clip(s.Message, lim.text)}
			putTime(m, "time", s.Time)
			for k, v := range map[string]string{"host": s.Host, "customer": s.Customer, "site": s.Site, "version": s.Version} {
				if v != "" {
					m[k] = clip(v, maxShort)
				}
			}
			samples[i] = m
		}
		d["samples"] = samples
	}
	if len(omitted) > 0 {
		d["omitted"] = omitted
	}
	if trimmed {
		d["truncated"] = "evidence shortened to fit PagerDuty's payload limit; the evidence link has all of it"
	}
	return d
}

// scope is the who-and-where table: how many customers, sites and hosts
// are affected, and per dimension the values that concentrate the errors.
func scope(service string, s correlate.ScopeSummary, lim limits, take func(string, int, int) int) map[string]any {
	keys := make([]string, 0, len(s.Affected))
	for k := range s.Affected {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(correlate.AffectedFields, k); i >= 0 {
			return i
		}
		return len(correlate.AffectedFields)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	affected := map[string]int{}
	var counts []string
	for _, k := range keys[:take("affected", len(keys), lim.dims)] {
		affected[clip(k, maxShort)] = s.Affected[k]
		counts = append(counts, fmt.Sprintf("%d %s", s.Affected[k], clip(k, maxShort)))
	}

	// Concentrations arrive strongest first; keep that order within and
	// across dimensions.
	var dims []string
	byDim := map[string][]map[string]any{}
	var lines []string
	rows, dropped := 0, 0
	for _, c := range s.Concentration {
		field := clip(c.Field, maxShort)
		if _, ok := byDim[field]; !ok {
			if len(dims) >= lim.dims {
				dropped++
				continue
			}
			dims = append(dims, field)
			byDim[field] = []map[string]any{}
		}
		if len(byDim[field]) >= lim.rows {
			dropped++
			continue
		}
		value := clip(c.Value, maxShort)
		byDim[field] = append(byDim[field], map[string]any{
			"value":             value,
			"share_of_errors":   finite(c.ShareOfErrors),
			"share_of_requests": finite(c.ShareOfRequests),
		})
		rows++
		lines = append(lines, fmt.Sprintf("%s=%s: %s of the errors, %s of %s requests", field, value, correlate.Percent(c.ShareOfErrors), correlate.Percent(c.ShareOfRequests), clip(service, maxShort)))
	}
	take("concentration", rows+dropped, rows)
	out := map[string]any{"affected": affected, "concentration": byDim}
	text := []string{}
	if len(counts) > 0 {
		text = append(text, "affected: "+strings.Join(counts, ", "))
	}
	// The explanations lead the text: they are what the headline names.
	ex := make([]map[string]any, take("explanations", len(s.Explanations), lim.rows))
	for i := range ex {
		e := s.Explanations[i]
		ex[i] = map[string]any{
			"conditions":        clip(e.Label(), lim.text),
			"errors":            e.Errors,
			"requests":          e.Requests,
			"share_of_errors":   finite(e.ShareOfErrors),
			"share_of_requests": finite(e.ShareOfRequests),
			"error_rate":        finite(e.ErrorRate),
			"versus":            e.Versus,
			"versus_error_rate": finite(e.VersusErrorRate),
			"risk_ratio":        finite(e.RiskRatio),
		}
		text = append(text, clip("explained by: "+e.Describe(service), lim.text))
	}
	if len(ex) > 0 {
		out["explanations"] = ex
	}
	out["text"] = append(text, lines...)
	return out
}

// frequencyText phrases the rate as the text report does, with orders of
// magnitude, because "about 4 a minute" and "about 400 a minute" call for
// different urgency.
func frequencyText(f *correlate.Finding) string {
	fr := f.Frequency
	if f.Kind == correlate.KindTicketSurge {
		return fmt.Sprintf("%s tickets/h after onset, %s/h before; %d tickets", report.Number(fr.AfterPerMin*60), report.Number(fr.BeforePerMin*60), fr.Count)
	}
	return fmt.Sprintf("%s/min after onset (%s), %s/min before; %s of all %s requests after onset (%s), %s before; %d errors since onset",
		report.Number(fr.AfterPerMin), report.Magnitude(fr.AfterPerMin), report.Number(fr.BeforePerMin),
		correlate.Percent(fr.ShareAfter), f.Service, report.OneIn(fr.ShareAfter), correlate.Percent(fr.ShareBefore), fr.Count)
}

// finite keeps NaN and ±Inf out of the event: encoding/json refuses them,
// and one bad float would otherwise make the whole page undeliverable.
func finite(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func putTime(m map[string]any, key string, t time.Time) {
	if s := stamp(t); s != "" {
		m[key] = s
	}
}

// clip shortens s to at most n runes, ending in "…" when cut, without
// splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	count := 0
	for i := range s {
		if count == n-1 {
			return s[:i] + "…"
		}
		count++
	}
	return s
}

// size is the encoded length of an event, or a value over any budget when
// it cannot be encoded.
func size(ev *pd.V2Event) int {
	b, err := json.Marshal(ev)
	if err != nil {
		return math.MaxInt
	}
	return len(b)
}
