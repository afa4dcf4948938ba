package escalate

import (
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

type policy struct {
	action  Action
	silence string
}

func (p policy) Route(string, time.Time) (Action, string) {
	return p.action, "route " + string(p.action)
}
func (p policy) Silenced(string, string, time.Time) (bool, string) {
	return p.silence != "", p.silence
}

var t0 = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)

func finding(sev correlate.Severity, onset time.Time, suspect string) correlate.Finding {
	f := correlate.Finding{
		ID: correlate.FindingID("edge-router", "function invocation failed: fn-<*>"), Service: "edge-router",
		Kind: correlate.KindNewError, Signature: "function invocation failed: fn-<*>", Onset: onset,
		Severity: sev, Headline: "edge-router broke functions", Significance: correlate.Significance{QValue: 1e-6},
	}
	if suspect != "" {
		f.SuspectedDeploys = []correlate.Suspect{{ID: suspect, Service: "edge-router", Version: "2.42.0", Score: 0.9, Reasons: []string{"aligned"}}}
	}
	return f
}

func always(string) bool { return true }

// step runs Decide and folds its changes into the known incidents, as the
// store would, returning the messages queued.
func step(t *testing.T, known *[]Incident, now time.Time, p Policy, s Settings, fs ...correlate.Finding) []Message {
	t.Helper()
	changes := Decide(*known, Evaluation{Now: now, Findings: fs, HasData: always}, p, s)
	var msgs []Message
	for _, ch := range changes {
		found := false
		for i := range *known {
			if (*known)[i].ID == ch.Incident.ID {
				(*known)[i], found = ch.Incident, true
			}
		}
		if !found {
			*known = append(*known, ch.Incident)
		}
		for _, e := range ch.Events {
			if e.IncidentID != ch.Incident.ID {
				t.Errorf("event %s not stamped with incident id", e.Kind)
			}
		}
		msgs = append(msgs, ch.Messages...)
	}
	return msgs
}

func actions(ms []Message) string {
	var b []string
	for _, m := range ms {
		b = append(b, m.Action)
	}
	return strings.Join(b, ",")
}

func TestDecideLifecycle(t *testing.T) {
	s := Settings{QuietEvaluations: 3, ReopenCooldown: 30 * time.Minute}
	page := policy{action: ActionPage}
	var known []Incident
	onset := t0.Add(2 * time.Minute)

	// Early in the rollout: few customers, graded notify: no page yet.
	if got := actions(step(t, &known, t0.Add(4*time.Minute), page, s, finding(correlate.SeverityNotify, onset, ""))); got != "" {
		t.Fatalf("notify finding queued %q, want nothing", got)
	}
	if len(known) != 1 || known[0].Status != StatusOpen {
		t.Fatalf("want one open incident, got %+v", known)
	}
	key := known[0].Key
	// The suspect appears and severity reaches page: exactly one trigger.
	if got := actions(step(t, &known, t0.Add(5*time.Minute), page, s, finding(correlate.SeverityPage, onset, "dep-1"))); got != "trigger" {
		t.Fatalf("escalation queued %q, want trigger", got)
	}
	if known[0].Key != key {
		t.Errorf("key changed when the suspect appeared: %q → %q", key, known[0].Key)
	}
	// Further updates never re-page.
	for i := 6; i < 20; i++ {
		if got := actions(step(t, &known, t0.Add(time.Duration(i)*time.Minute), page, s, finding(correlate.SeverityPage, onset, "dep-1"))); got != "" {
			t.Fatalf("update at +%dm queued %q", i, got)
		}
	}
	// Recovery resolves once.
	rec := finding(correlate.SeverityPage, onset, "dep-1")
	r := t0.Add(70 * time.Minute)
	rec.Recovered = &r
	if got := actions(step(t, &known, t0.Add(81*time.Minute), page, s, rec)); got != "resolve" {
		t.Fatalf("recovery queued %q, want resolve", got)
	}
	if known[0].Status != StatusResolved || !known[0].Recovered.Equal(r) {
		t.Fatalf("incident not resolved at recovery: %+v", known[0])
	}
	// The recovered finding stays in the lookback: nothing more happens.
	if got := actions(step(t, &known, t0.Add(82*time.Minute), page, s, rec)); got != "" {
		t.Fatalf("recovered finding seen again queued %q", got)
	}
	// It flaps back within the cooldown: same incident, paged again, and
	// it now needs twice the quiet evaluations.
	back := finding(correlate.SeverityPage, t0.Add(85*time.Minute), "dep-1")
	if got := actions(step(t, &known, t0.Add(86*time.Minute), page, s, back)); got != "trigger" {
		t.Fatalf("reopen queued %q, want one trigger", got)
	}
	if len(known) != 1 || known[0].Flaps != 1 || known[0].Status != StatusOpen {
		t.Fatalf("want the same incident reopened once, got %+v", known)
	}
	for i := 1; i <= 5; i++ {
		if got := actions(step(t, &known, t0.Add(time.Duration(86+i)*time.Minute), page, s)); got != "" {
			t.Fatalf("quiet evaluation %d queued %q (needs 6)", i, got)
		}
	}
	if got := actions(step(t, &known, t0.Add(92*time.Minute), page, s)); got != "resolve" {
		t.Fatalf("sixth quiet evaluation queued %q, want resolve", got)
	}
}

func TestDecideRouting(t *testing.T) {
	s := Settings{QuietEvaluations: 3, ReopenCooldown: time.Hour, Slack: true}
	cases := []struct {
		name    string
		p       policy
		sev     correlate.Severity
		want    Action
		queued  string
		slackOn bool
	}{
		{"off-hours page", policy{action: ActionPage}, correlate.SeverityPage, ActionPage, "trigger", true},
		{"business hours slack", policy{action: ActionSlack}, correlate.SeverityPage, ActionSlack, "post", true},
		{"notify never pages", policy{action: ActionPage}, correlate.SeverityNotify, ActionSlack, "post", true},
		{"info is recorded", policy{action: ActionPage}, correlate.SeverityInfo, ActionRecord, "", true},
		{"silence wins", policy{action: ActionPage, silence: "silence INC-1"}, correlate.SeverityPage, ActionRecord, "", true},
		{"no slack configured", policy{action: ActionSlack}, correlate.SeverityPage, ActionRecord, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s
			s.Slack = c.slackOn
			var known []Incident
			got := actions(step(t, &known, t0, c.p, s, finding(c.sev, t0, "dep-1")))
			if got != c.queued || known[0].Action != c.want {
				t.Fatalf("got action %s queued %q, want %s %q (why %q)", known[0].Action, got, c.want, c.queued, known[0].Why)
			}
		})
	}
}

func TestDecideNoDataNeverResolves(t *testing.T) {
	s := Settings{QuietEvaluations: 2, ReopenCooldown: time.Hour}
	known := []Incident{}
	step(t, &known, t0, policy{action: ActionPage}, s, finding(correlate.SeverityPage, t0, ""))
	for i := 1; i <= 10; i++ {
		ch := Decide(known, Evaluation{Now: t0.Add(time.Duration(i) * time.Minute), HasData: func(string) bool { return false }}, policy{action: ActionPage}, s)
		if len(ch) != 0 {
			t.Fatalf("evaluation %d without data changed %+v", i, ch[0].Incident)
		}
	}
}

func TestDecideAlreadyRecoveredIsRecordedNotPaged(t *testing.T) {
	f := finding(correlate.SeverityPage, t0, "dep-1")
	r := t0.Add(30 * time.Minute)
	f.Recovered = &r
	var known []Incident
	if got := actions(step(t, &known, t0.Add(2*time.Hour), policy{action: ActionPage}, Settings{}, f)); got != "" {
		t.Fatalf("queued %q for a finding already over", got)
	}
	if known[0].Status != StatusResolved {
		t.Fatalf("status %s, want resolved", known[0].Status)
	}
}

func TestDecideMaxQ(t *testing.T) {
	f := finding(correlate.SeverityPage, t0, "")
	f.Significance.QValue = 0.05
	if ch := Decide(nil, Evaluation{Now: t0, Findings: []correlate.Finding{f}}, policy{action: ActionPage}, Settings{MaxQ: 0.01}); len(ch) != 0 {
		t.Fatalf("finding above max_q opened an incident")
	}
}

func TestBlindness(t *testing.T) {
	now := t0
	if _, ok := Blindness(nil, "es", 2, 3, nil, now); ok {
		t.Fatal("meta-incident before the threshold")
	}
	ch, ok := Blindness(nil, "es logs-*", 3, 3, errString("connection refused"), now)
	if !ok || actions(ch.Messages) != "trigger" || !ch.Incident.Meta || !strings.Contains(ch.Incident.Signature, "cannot read logs from es logs-*") {
		t.Fatalf("want one low-urgency trigger, got %+v", ch)
	}
	in := ch.Incident
	if _, ok := Blindness(&in, "es", 4, 3, nil, now); ok {
		t.Fatal("second trigger while the meta-incident is open")
	}
	ch, ok = Blindness(&in, "es", 0, 3, nil, now.Add(time.Minute))
	if !ok || actions(ch.Messages) != "resolve" || ch.Incident.Status != StatusResolved {
		t.Fatalf("want resolve after a good read, got %+v", ch)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestIncidentKey(t *testing.T) {
	a := IncidentKey("edge-router", "sig", "dep-1")
	if a != IncidentKey("edge-router", "sig", "dep-1") || a == IncidentKey("edge-router", "sig", "dep-2") {
		t.Fatal("key not stable or not distinct by deploy")
	}
	if k := IncidentKey(strings.Repeat("s", 300), "sig", "d"); len(k) > 255 {
		t.Fatalf("key %d bytes, over PagerDuty's 255", len(k))
	}
}

// TestSlackPostOnceAndResolve: a business-hours incident is posted once,
// however many evaluations see it, and its resolution is posted too.
func TestSlackPostOnceAndResolve(t *testing.T) {
	s := Settings{QuietEvaluations: 3, ReopenCooldown: time.Hour, Slack: true}
	p := policy{action: ActionSlack}
	var known []Incident
	var got []string
	for i := range 5 {
		got = append(got, actions(step(t, &known, t0.Add(time.Duration(i)*time.Minute), p, s, finding(correlate.SeverityPage, t0, "dep-1"))))
	}
	rec := finding(correlate.SeverityPage, t0, "dep-1")
	r := t0.Add(6 * time.Minute)
	rec.Recovered = &r
	got = append(got, actions(step(t, &known, t0.Add(16*time.Minute), p, s, rec)))
	if strings.Join(got, ",") != "post,,,,,resolve" {
		t.Fatalf("queued %q, want one post then one resolve", got)
	}
}

func TestPageByHand(t *testing.T) {
	s := Settings{QuietEvaluations: 3, ReopenCooldown: time.Hour, Slack: true}
	var known []Incident
	step(t, &known, t0, policy{action: ActionSlack}, s, finding(correlate.SeverityPage, t0, "dep-1"))
	in := known[0]
	ch, err := PageByHand(in, t0.Add(time.Minute), "U123 (alice)", "Slack #support")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Messages) != 1 || ch.Messages[0].Action != Trigger || ch.Messages[0].Key != in.Key || ch.Incident.Action != ActionPage {
		t.Fatalf("want one trigger with the incident key, got %+v", ch.Messages)
	}
	if ch.Events[0].Kind != EventPageRequested || ch.Events[0].Actor != "U123 (alice)" || ch.Events[0].IncidentID != in.ID {
		t.Fatalf("event %+v", ch.Events[0])
	}
	for name, in := range map[string]Incident{
		"already paged": ch.Incident,
		"resolved":      func() Incident { x := in; x.Status = StatusResolved; return x }(),
		"meta":          func() Incident { x := in; x.Meta = true; return x }(),
	} {
		if ch, err := PageByHand(in, t0.Add(2*time.Minute), "U9", "Slack"); err == nil || len(ch.Messages) > 0 {
			t.Errorf("%s: paged again (%v, %d messages)", name, err, len(ch.Messages))
		}
	}
}

func TestAsked(t *testing.T) {
	s := Settings{QuietEvaluations: 3, ReopenCooldown: time.Hour, Slack: true}
	f := finding(correlate.SeverityPage, t0, "dep-1")

	in, ch := Asked(nil, &f, t0.Add(time.Minute), "U1 (bob)", "Slack")
	if in.Status != StatusOpen || in.Action != ActionRecord || len(ch.Messages) != 0 {
		t.Fatalf("new finding: %s %s with %d messages, want an open record-only incident, nobody notified", in.Status, in.Action, len(ch.Messages))
	}
	kinds := map[string]bool{}
	for _, e := range ch.Events {
		kinds[e.Kind] = true
		if e.IncidentID != in.ID {
			t.Errorf("event %s not stamped with the incident", e.Kind)
		}
	}
	if !kinds[EventAsked] || !kinds[EventDetected] || kinds[EventSilenced] {
		t.Errorf("events %v, want asked and detected, no 'not paged'", kinds)
	}

	// The daemon's own incident for the same change is reused.
	var known []Incident
	step(t, &known, t0, policy{action: ActionPage}, s, f)
	got, ch := Asked(known, &f, t0.Add(2*time.Minute), "U1 (bob)", "Slack")
	if got.ID != known[0].ID || len(ch.Messages) != 0 || len(ch.Events) != 1 || ch.Events[0].Kind != EventAsked {
		t.Fatalf("asked about an open incident: got %s (want %s), %d messages, events %+v", got.ID, known[0].ID, len(ch.Messages), ch.Events)
	}

	// A finding that is already over is recorded resolved.
	r := t0.Add(30 * time.Minute)
	f.Recovered = &r
	in, _ = Asked(nil, &f, t0.Add(time.Hour), "U1", "Slack")
	if in.Status != StatusResolved {
		t.Fatalf("recovered finding recorded %s, want resolved", in.Status)
	}
}

// TestResolveNamesTheRollback: the recovered event says which deploy ended
// the errors, so the timeline and the resolve read "… after rollback X".
func TestResolveNamesTheRollback(t *testing.T) {
	f := finding(correlate.SeverityPage, t0, "dep-1")
	r := t0.Add(73 * time.Minute)
	f.Recovered = &r
	f.Recovery = &correlate.Recovery{DeployID: "dep-e5fb72", Service: "edge-router", Version: "2.41.4", Rollback: true, ReachedAffected: t0.Add(70 * time.Minute)}
	changes := Decide(nil, Evaluation{Now: t0.Add(2 * time.Hour), Findings: []correlate.Finding{f}, HasData: always}, policy{action: ActionPage}, Settings{})
	var got string
	for _, ch := range changes {
		for _, e := range ch.Events {
			if e.Kind == EventRecovered {
				got = e.Text
			}
		}
	}
	want := "errors back at baseline; recovered 17:13 UTC, 3 min after rollback dep-e5fb72 (edge-router 2.41.4) reached the last affected host"
	if got != want {
		t.Errorf("recovered event %q, want %q", got, want)
	}
}

// TestTicketSurgeIsOneIncident: a surge's signature is its topic words,
// which grow as tickets arrive; every wording with the same onset updates
// the one incident (its key unchanged) instead of opening another. A surge
// with another onset is another incident.
func TestTicketSurgeIsOneIncident(t *testing.T) {
	surge := func(words string, onset time.Time) correlate.Finding {
		sig := "ticket volume: " + words
		return correlate.Finding{ID: correlate.FindingID("", sig), Kind: correlate.KindTicketSurge, Signature: sig, Onset: onset,
			Severity: correlate.SeverityNotify, Headline: "Ticket surge about '" + words + "'", Significance: correlate.Significance{QValue: 1e-6}}
	}
	var known []Incident
	s := Settings{QuietEvaluations: 3, ReopenCooldown: 30 * time.Minute, Slack: true}
	p := policy{action: ActionSlack}
	onset := t0.Add(15 * time.Minute)
	var msgs []Message
	for i, words := range []string{"function, 502", "function, 502, invoke, site", "function, 502, checkout, invoke", "502, function"} {
		msgs = append(msgs, step(t, &known, onset.Add(time.Duration(10+i)*time.Minute), p, s, surge(words, onset))...)
	}
	if len(known) != 1 {
		t.Fatalf("%d incidents for one surge, want 1: %+v", len(known), known)
	}
	if in := known[0]; in.Status != StatusOpen || in.Key != IncidentKey("", "ticket volume: function, 502", "") ||
		in.Finding.Signature != "ticket volume: 502, function" {
		t.Errorf("incident %s %s, latest finding %q: want it open, keyed by its first wording, carrying the latest", in.Key, in.Status, in.Finding.Signature)
	}
	if got := actions(msgs); got != Post {
		t.Errorf("messages %s, want one Slack post", got)
	}
	step(t, &known, onset.Add(3*time.Hour), p, s, surge("invoice, billing", onset.Add(2*time.Hour)))
	if len(known) != 2 {
		t.Fatalf("%d incidents after a surge with another onset, want 2", len(known))
	}
}
