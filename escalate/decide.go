package escalate

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

// Policy is what routing and silencing decide; rules.Config implements it.
type Policy interface {
	// Route gives the action for a finding of service detected at t, and
	// the name of the route that decided it.
	Route(service string, t time.Time) (Action, string)
	// Silenced reports whether a finding is silenced or inside a
	// maintenance window at t, and by what.
	Silenced(service, signature string, t time.Time) (bool, string)
}

// impactRouter is a Policy that also routes by who is affected (a
// route for one VIP customer); rules.Config is one. A Policy without it
// routes by service and time only.
type impactRouter interface {
	RouteImpact(imp rules.Impact, t time.Time) rules.Decision
}

// Settings tune incident life cycles.
type Settings struct {
	// MaxQ is the largest q-value acted upon; findings above it are
	// ignored entirely.
	MaxQ float64
	// QuietEvaluations is how many evaluations in a row must have data
	// and no longer see a finding before its incident resolves without
	// an explicit recovery (the onset has left the lookback, say).
	QuietEvaluations int
	// ReopenCooldown: a finding that comes back within this long after its
	// incident resolved reopens that incident instead of opening a new one.
	ReopenCooldown time.Duration
	// Slack reports whether a Slack channel is configured; without one the
	// slack action only records.
	Slack bool
}

// Evaluation is what one correlation run saw.
type Evaluation struct {
	Now      time.Time
	Findings []correlate.Finding
	// HasData reports whether the service's newest complete buckets had
	// traffic. A finding's absence only counts towards resolving its
	// incident when they did: data that stops arriving never resolves a
	// real incident.
	HasData func(service string) bool
}

// Decide compares one evaluation's findings with the known incidents (open
// ones, and those resolved within the cooldown) and returns what changes.
// It never pages an incident twice: a trigger is queued only when an
// incident first reaches the page action, or when it reopens after it was
// resolved (PagerDuty resolved it too, so the on-call must hear it is back).
func Decide(known []Incident, ev Evaluation, p Policy, s Settings) []Change {
	byFinding := map[string]int{}
	// bySurge finds a ticket surge by its onset: its signature is its
	// topic words, which change as tickets arrive ("function, 502", then
	// "function, 502, checkout"), and each new wording is the same surge,
	// not a new incident.
	bySurge := map[time.Time]int{}
	for i := range known {
		in := &known[i]
		if in.Meta {
			continue
		}
		id := correlate.FindingID(in.Service, in.Signature)
		if prefer(known, byFinding, id, i) {
			byFinding[id] = i
		}
		if in.Kind == correlate.KindTicketSurge && prefer(known, bySurge, in.Onset.UTC(), i) {
			bySurge[in.Onset.UTC()] = i
		}
	}
	var changes []Change
	seen := map[int]bool{}
	for fi := range ev.Findings {
		f := &ev.Findings[fi]
		if s.MaxQ > 0 && f.Significance.QValue > s.MaxQ {
			continue
		}
		i, ok := byFinding[f.ID]
		if !ok && f.Kind == correlate.KindTicketSurge {
			i, ok = bySurge[f.Onset.UTC()]
		}
		if ok {
			seen[i] = true
			if ch, ok := update(known[i], f, ev.Now, p, s); ok {
				changes = append(changes, ch)
			}
			continue
		}
		changes = append(changes, open(f, ev.Now, p, s))
	}
	for i := range known {
		in := known[i]
		if seen[i] || in.Meta || in.Status != StatusOpen {
			continue
		}
		if ev.HasData == nil || !ev.HasData(in.Service) {
			continue
		}
		in.Quiet++
		ch := Change{}
		if in.Quiet >= quietNeeded(in, s) {
			resolve(&in, &ch, ev.Now, fmt.Sprintf("no longer detected for %d evaluations while logs kept arriving", in.Quiet))
		}
		ch.Incident = in
		changes = append(changes, stamp(ch))
	}
	return changes
}

// prefer reports whether known[i] should stand for k in by: the open
// incident, else the latest resolved one.
func prefer[K comparable](known []Incident, by map[K]int, k K, i int) bool {
	j, ok := by[k]
	if !ok {
		return true
	}
	prev, in := &known[j], &known[i]
	return prev.Status != StatusOpen && (in.Status == StatusOpen || in.OpenedAt.After(prev.OpenedAt))
}

func quietNeeded(in Incident, s Settings) int {
	n := max(1, s.QuietEvaluations)
	return n << min(in.Flaps, 6)
}

// unmatchedExplainer is a Policy that can say why no route matched
// (rules.Config does): without it an incident nobody was told about had an
// empty "why", and nothing said that the configuration had no page route.
type unmatchedExplainer interface {
	NoRoute(service string, t time.Time) string
}

// route combines the configured route with the finding's own severity: a
// page route only pages findings graded page (or, for a route with
// min_severity notify, graded notify), and a silence always wins. name is
// the deciding route's, "" for a silence or default_action.
func route(f *correlate.Finding, now time.Time, p Policy, s Settings) (a Action, why, name string) {
	if ok, why := p.Silenced(f.Service, f.Signature, now); ok {
		return ActionRecord, why, ""
	}
	pages := f.Severity == correlate.SeverityPage
	if ir, ok := p.(impactRouter); ok {
		d := ir.RouteImpact(correlate.ImpactOf(f), now)
		a, why, name, pages = d.Action, d.Route, d.Route, d.Pages
	} else {
		a, why = p.Route(f.Service, now)
		name = why
	}
	if why == "" {
		if x, ok := p.(unmatchedExplainer); ok {
			why = x.NoRoute(f.Service, now)
		}
	}
	switch {
	case f.Severity == correlate.SeverityInfo:
		a, why = ActionRecord, why+" (severity info: recorded only)"
	case a == ActionPage && !pages:
		a, why = ActionSlack, why+" (severity "+string(f.Severity)+": not paged)"
	}
	if a == ActionSlack && !s.Slack {
		a, why = ActionRecord, why+" (no Slack channel configured)"
	}
	return a, why, name
}

func open(f *correlate.Finding, now time.Time, p Policy, s Settings) Change {
	deploy := ""
	if len(f.SuspectedDeploys) > 0 {
		deploy = f.SuspectedDeploys[0].ID
	}
	key := IncidentKey(f.Service, f.Signature, deploy)
	in := Incident{
		ID: incidentID(key, now), Key: key, Service: f.Service, Signature: f.Signature, Kind: f.Kind,
		Status: StatusOpen, Severity: f.Severity, OpenedAt: now, Onset: f.Onset, LastSeen: now,
		Finding: f,
	}
	ch := Change{}
	ch.Events = append(ch.Events,
		Event{At: f.Onset, Kind: EventOnset, Text: fmt.Sprintf("errors of '%s' on %s start", clip(f.Signature, 120), f.Service)},
		Event{At: now, Kind: EventDetected, Text: f.Headline})
	if f.Priority != nil {
		ch.Events = append(ch.Events, Event{At: now, Kind: EventPriority, Text: ImpactSentence(f)})
	}
	if deploy != "" {
		ch.Events = append(ch.Events, suspectEvent(now, f))
	}
	if f.Recovered != nil {
		// First seen already over (culprit was down, say): record it
		// as it was, and do not wake anyone for something finished.
		in.Action, in.Why = ActionRecord, "already recovered when first seen"
		resolve(&in, &ch, now, "already recovered when first seen")
		ch.Incident = in
		return stamp(ch)
	}
	in.Action, in.Why, in.Route = route(f, now, p, s)
	notify(&in, &ch, now)
	ch.Incident = in
	return stamp(ch)
}

func update(in Incident, f *correlate.Finding, now time.Time, p Policy, s Settings) (Change, bool) {
	ch := Change{}
	if in.Status == StatusResolved {
		if f.Recovered != nil || now.Sub(in.ResolvedAt) > s.ReopenCooldown {
			if f.Recovered != nil || !f.Onset.After(in.ResolvedAt) {
				// The episode it resolved on is still in the lookback.
				return Change{}, false
			}
			return open(f, now, p, s), true
		}
		in.Status, in.ResolvedAt, in.Recovered = StatusOpen, time.Time{}, time.Time{}
		in.Flaps++
		in.PagedAt, in.PostedAt = time.Time{}, time.Time{}
		ch.Events = append(ch.Events, Event{At: now, Kind: EventReopened,
			Text: fmt.Sprintf("errors are back within %s of resolving (flap %d): it now needs %d quiet evaluations to resolve", s.ReopenCooldown, in.Flaps, quietNeeded(in, s))})
	}
	prev := in.Finding
	in.Finding, in.LastSeen, in.Quiet = f, now, 0
	if id := suspectID(f); id != "" && (prev == nil || suspectID(prev) != id) {
		ch.Events = append(ch.Events, suspectEvent(now, f))
	}
	if f.Priority != nil && (prev == nil || prev.Priority == nil || prev.Priority.Level != f.Priority.Level) {
		from := "none"
		if prev != nil && prev.Priority != nil {
			from = prev.Priority.Level
		}
		ch.Events = append(ch.Events, Event{At: now, Kind: EventPriority, Text: "priority " + from + " → " + ImpactSentence(f)})
	}
	if f.Severity.Rank() > in.Severity.Rank() {
		ch.Events = append(ch.Events, Event{At: now, Kind: EventEscalated,
			Text: fmt.Sprintf("severity %s → %s: %s", in.Severity, f.Severity, strings.Join(f.SeverityReasons, "; "))})
	}
	in.Severity = f.Severity
	if f.Recovered != nil {
		resolve(&in, &ch, now, "back at baseline")
		ch.Incident = in
		return stamp(ch), true
	}
	a, why, name := route(f, now, p, s)
	switch {
	case in.Paged() && a == ActionPage && name != in.Route && otherPager(p, in.Route, name):
		// Paged on one route (the support on-call, for one VIP
		// customer) and now another pages it (it spread to other
		// customers): that route's on-call must hear of it too, and
		// the first page is resolved there, since it is no longer
		// theirs alone.
		old := in
		ch.Messages = append(ch.Messages, message(ChannelPagerDuty, Resolve, &old, now))
		ch.Events = append(ch.Events, Event{At: now, Kind: EventEscalated,
			Text: fmt.Sprintf("route %s → %s: %s", routeName(in.Route), routeName(name), ImpactSentence(f))})
		in.Action, in.Why, in.Route, in.PagedAt = a, why, name, time.Time{}
	case a != in.Action && (in.Action != ActionPage || !in.Paged()):
		in.Action, in.Why, in.Route = a, why, name
	}
	notify(&in, &ch, now)
	ch.Incident = in
	return stamp(ch), true
}

// otherPager reports whether routes a and b page different on-calls; a
// policy that cannot tell (no per-route keys) never does.
func otherPager(p Policy, a, b string) bool {
	sp, ok := p.(interface{ SamePager(a, b string) bool })
	return ok && !sp.SamePager(a, b)
}

func routeName(n string) string {
	if n == "" {
		return "default_action"
	}
	return n
}

// ImpactSentence says who a finding affects and its priority, for
// timelines: "P2; 1 enterprise customer: Acme Corp (enterprise)".
func ImpactSentence(f *correlate.Finding) string {
	var parts []string
	if f.Priority != nil {
		parts = append(parts, f.Priority.Level+" ("+f.Priority.Why+")")
	}
	if f.Customers != nil {
		parts = append(parts, f.Customers.Summary)
	} else {
		parts = append(parts, correlate.Plural(f.Scope.Affected[correlate.FieldCustomer], "customer")+" affected")
	}
	return strings.Join(parts, "; ")
}

// notify queues the page (or Slack post) the incident's action calls for,
// once per opening.
func notify(in *Incident, ch *Change, now time.Time) {
	switch in.Action {
	case ActionPage:
		if in.Paged() {
			return
		}
		in.PagedAt = now
		ch.Messages = append(ch.Messages, message(ChannelPagerDuty, Trigger, in, now))
		ch.Events = append(ch.Events, Event{At: now, Kind: EventPageQueued, Text: "page queued for PagerDuty (" + in.Why + ")"})
	case ActionSlack:
		if !in.PostedAt.IsZero() {
			return
		}
		in.PostedAt = now
		ch.Messages = append(ch.Messages, message(ChannelSlack, Post, in, now))
		ch.Events = append(ch.Events, Event{At: now, Kind: EventPostQueued, Text: "post queued for the Slack channel (" + in.Why + ")"})
	case ActionRecord:
		if in.Why != "" && in.Finding != nil && in.Finding.Severity == correlate.SeverityPage && !hasEvent(ch, EventSilenced) {
			ch.Events = append(ch.Events, Event{At: now, Kind: EventSilenced, Text: "not paged: " + in.Why})
		}
	}
}

func hasEvent(ch *Change, kind string) bool {
	for _, e := range ch.Events {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

func resolve(in *Incident, ch *Change, now time.Time, why string) {
	rec := now
	if in.Finding != nil && in.Finding.Recovered != nil {
		rec = *in.Finding.Recovered
	}
	in.Status, in.Recovered, in.ResolvedAt = StatusResolved, rec, now
	text := "errors back at baseline"
	if in.Finding != nil && in.Finding.Recovery != nil {
		// The deploy that ended it is what the review asks first.
		text += "; " + in.Finding.Recovery.Sentence(in.Finding.Recovered)
	}
	ch.Events = append(ch.Events,
		Event{At: rec, Kind: EventRecovered, Text: text},
		Event{At: now, Kind: EventResolved, Text: "resolved: " + why})
	if in.Paged() {
		ch.Messages = append(ch.Messages, message(ChannelPagerDuty, Resolve, in, now))
	}
	if !in.PostedAt.IsZero() {
		ch.Messages = append(ch.Messages, message(ChannelSlack, Resolve, in, now))
	}
}

// Asked gives a finding someone asked about (/correlate in Slack) an
// incident, so its evidence page and its "Page on-call" button have
// something to point at. An open incident with the same key is the same
// change: it is returned as it is, and the question goes on its timeline.
// Otherwise a record-only incident opens (already resolved if the finding
// is over); nobody is notified, and the daemon's next evaluation routes it
// like any incident of its own if the change is still going on.
func Asked(known []Incident, f *correlate.Finding, now time.Time, by, where string) (Incident, Change) {
	key := IncidentKey(f.Service, f.Signature, suspectID(f))
	who := "someone"
	if by != "" {
		who = by
	}
	why := "recorded because " + who + " asked from " + where
	var asked []Event
	if by != "" {
		// Without a name the asking is left to the caller to record,
		// which may know more (Slack records who, and where).
		asked = []Event{{At: now, Kind: EventAsked, Actor: by, Text: by + " asked about it from " + where}}
	}
	for _, in := range known {
		if in.Key == key && in.Status == StatusOpen {
			return in, stamp(Change{Incident: in, Events: asked})
		}
	}
	ch := open(f, now, recordOnly{why}, Settings{})
	if ch.Incident.Status == StatusOpen {
		ch.Incident.Action, ch.Incident.Why = ActionRecord, why
		ch.Messages = nil
	}
	events := ch.Events[:0]
	for _, e := range ch.Events {
		if e.Kind != EventSilenced {
			events = append(events, e)
		}
	}
	ch.Events = append(events, asked...)
	return ch.Incident, stamp(ch)
}

// recordOnly routes everything to the record action.
type recordOnly struct{ why string }

func (r recordOnly) Route(string, time.Time) (Action, string)          { return ActionRecord, r.why }
func (r recordOnly) Silenced(string, string, time.Time) (bool, string) { return false, "" }

// PageByHand is a person asking for an incident to be paged (Slack's "Page
// on-call" button). It pages an open incident once: pressing again, or
// pressing after the daemon paged it, changes nothing and says so, so two
// people pressing at once never page twice. A resolved incident is not
// paged: the errors it was about are over.
func PageByHand(in Incident, now time.Time, by, where string) (Change, error) {
	switch {
	case in.Status != StatusOpen:
		return Change{}, fmt.Errorf("incident %s is %s: nothing to page", in.ID, in.Status)
	case in.Meta:
		return Change{}, fmt.Errorf("incident %s is culprit's own blindness incident, paged by its own rules", in.ID)
	case in.Paged():
		return Change{}, fmt.Errorf("incident %s was already paged at %s", in.ID, in.PagedAt.UTC().Format("15:04 MST"))
	}
	in.Action, in.Why = ActionPage, "paged by "+by+" from "+where
	ch := Change{Events: []Event{{At: now, Kind: EventPageRequested, Actor: by, Text: by + " asked for a page from " + where}}}
	notify(&in, &ch, now)
	ch.Incident = in
	return stamp(ch), nil
}

func message(c Channel, action string, in *Incident, now time.Time) Message {
	body, err := json.Marshal(in)
	if err != nil {
		// Incident holds only plain data; a failure here is a bug that
		// must not lose the page, so fall back to what identifies it.
		body = []byte(fmt.Sprintf(`{"id":%q,"key":%q,"service":%q}`, in.ID, in.Key, in.Service))
	}
	return Message{Channel: c, Action: action, IncidentID: in.ID, Key: in.Key, Service: in.Service,
		Body: body, CreatedAt: now, NextAt: now}
}

// stamp fills the incident id into events and messages made before the
// incident's identity was final.
func stamp(ch Change) Change {
	for i := range ch.Events {
		ch.Events[i].IncidentID = ch.Incident.ID
	}
	for i := range ch.Messages {
		ch.Messages[i].IncidentID = ch.Incident.ID
	}
	return ch
}

func suspectID(f *correlate.Finding) string {
	if len(f.SuspectedDeploys) == 0 {
		return ""
	}
	return f.SuspectedDeploys[0].ID
}

func suspectEvent(now time.Time, f *correlate.Finding) Event {
	s := f.SuspectedDeploys[0]
	return Event{At: now, Kind: EventSuspect, Text: fmt.Sprintf("suspected deploy %s (%s %s, score %.2f): %s",
		s.ID, s.Service, s.Version, s.Score, strings.Join(s.Reasons, "; "))}
}

// Blindness decides the meta-incident for a source that cannot be read.
// failures counts evaluations in a row that failed to read it; at
// threshold a low-urgency page is queued, and the first successful read
// (failures == 0) resolves it.
func Blindness(meta *Incident, source string, failures, threshold int, cause error, now time.Time) (Change, bool) {
	if failures == 0 {
		if meta == nil || meta.Status != StatusOpen {
			return Change{}, false
		}
		in := *meta
		ch := Change{}
		resolve(&in, &ch, now, "culprit reads "+source+" again")
		ch.Incident = in
		return stamp(ch), true
	}
	if failures < max(1, threshold) || (meta != nil && meta.Status == StatusOpen) {
		return Change{}, false
	}
	key := "culprit/blind/" + source
	text := fmt.Sprintf("culprit cannot read logs from %s: %d evaluations in a row failed", source, failures)
	if cause != nil {
		text += ": " + clip(cause.Error(), 300)
	}
	in := Incident{ID: incidentID(key, now), Key: key, Service: "culprit", Signature: text, Status: StatusOpen,
		Meta: true, Action: ActionPage, Why: "source unreadable", Severity: correlate.SeverityNotify,
		OpenedAt: now, Onset: now, LastSeen: now}
	ch := Change{Events: []Event{{At: now, Kind: EventDetected, Text: text}}}
	notify(&in, &ch, now)
	ch.Incident = in
	return stamp(ch), true
}

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
