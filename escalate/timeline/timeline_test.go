package timeline

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

var update = flag.Bool("update", false, "rewrite testdata/friday.* from the current output")

func TestGolden(t *testing.T) {
	tl := Build(friday())
	for _, f := range []Format{FormatMarkdown, FormatJSON, FormatCSV, FormatHTML} {
		t.Run(string(f), func(t *testing.T) {
			var b bytes.Buffer
			if err := tl.Write(&b, f); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "friday."+string(f))
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from the output (go test -update rewrites it); got:\n%s", path, b.String())
			}
		})
	}
}

func TestFridayMetrics(t *testing.T) {
	m := Build(friday()).Metrics
	times := []struct {
		name      string
		got, want time.Time
	}{
		{"onset", m.Onset, at(16, 2)},
		{"detected", m.Detected, at(16, 5)},
		{"paged", m.Paged, at(16, 5).Add(2 * time.Second)},
		{"acknowledged", m.Acknowledged, at(16, 9)},
		{"rollback", m.Rollback, at(17, 10)},
		{"recovered", m.Recovered, at(17, 14)},
		{"resolved", m.Resolved, at(17, 28)},
	}
	for _, c := range times {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	durations := []struct {
		name  string
		got   time.Duration
		known bool
		want  time.Duration
	}{
		{"time to detect", m.TimeToDetect, m.KnownTimeToDetect, 3 * time.Minute},
		{"time to page", m.TimeToPage, m.KnownTimeToPage, 3*time.Minute + 2*time.Second},
		{"time to acknowledge", m.TimeToAcknowledge, m.KnownTimeToAcknowledge, 4*time.Minute - 2*time.Second},
		{"time to recover", m.TimeToRecover, m.KnownTimeToRecover, 72 * time.Minute},
		{"rollback to recovery", m.RollbackToRecover, m.KnownRollbackToRecover, 4 * time.Minute},
	}
	for _, c := range durations {
		if !c.known || c.got != c.want {
			t.Errorf("%s = %v (known %v), want %v", c.name, c.got, c.known, c.want)
		}
	}
}

// deployLabels lists "id label" for every deploy_started entry.
func deployLabels(tl Timeline) []string {
	var out []string
	for _, e := range tl.Entries {
		if e.Kind != KindDeployStarted {
			continue
		}
		head, _, _ := strings.Cut(e.Text, ":")
		i := strings.LastIndex(head, " ")
		out = append(out, head[i+1:]+" "+head[:i])
	}
	return out
}

func TestBuildChoosesDeploys(t *testing.T) {
	in, _, _, _ := friday()
	suspect := correlate.Deploy{ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", StartedAt: at(16, 2)}
	prior := correlate.Deploy{ID: "dep-0c0c", Service: "edge-router", Version: "3.7.4", StartedAt: at(9, 0)}
	d := func(id, service, version string, start time.Time, desc string) correlate.Deploy {
		return correlate.Deploy{ID: id, Service: service, Version: version, StartedAt: start, Description: desc}
	}
	open := in
	open.Status, open.ResolvedAt, open.LastSeen, open.Recovered = escalate.StatusOpen, time.Time{}, time.Time{}, time.Time{}
	noSuspect := in
	noSuspect.Finding = &correlate.Finding{Headline: "x"}
	recovered := in
	rf := *in.Finding
	rf.Recovery = &correlate.Recovery{DeployID: "dep-rb2", Service: "edge-router", Version: "3.7.2", Rollback: true}
	recovered.Finding = &rf

	cases := []struct {
		name    string
		in      escalate.Incident
		deploys []correlate.Deploy
		want    []string
	}{
		{"other service during the incident is left out", in,
			[]correlate.Deploy{prior, suspect, d("dep-api7", "api", "9", at(16, 30), "")},
			[]string{"dep-1a2b suspect deploy"}},
		{"same service long before the onset is left out", in,
			[]correlate.Deploy{prior, suspect, d("dep-old1", "edge-router", "3.7.3", at(13, 59), "")},
			[]string{"dep-1a2b suspect deploy"}},
		{"same service within two hours before the onset is an earlier deploy", in,
			[]correlate.Deploy{prior, suspect, d("dep-cfg1", "edge-router", "3.7.5", at(14, 30), "")},
			[]string{"dep-cfg1 earlier deploy", "dep-1a2b suspect deploy"}},
		{"same service over an hour after resolution is left out", in,
			[]correlate.Deploy{prior, suspect, d("dep-next", "edge-router", "3.8.1", at(18, 29), "")},
			[]string{"dep-1a2b suspect deploy"}},
		{"same service within an hour after resolution is a later deploy", in,
			[]correlate.Deploy{prior, suspect, d("dep-next", "edge-router", "3.8.1", at(18, 27), "")},
			[]string{"dep-1a2b suspect deploy", "dep-next later deploy"}},
		{"back to the version before the suspect is a rollback", in,
			[]correlate.Deploy{prior, suspect, d("dep-9f9f", "edge-router", "3.7.4", at(17, 10), "")},
			[]string{"dep-1a2b suspect deploy", "dep-9f9f rollback"}},
		{"a description saying rollback is a rollback", in,
			[]correlate.Deploy{suspect, d("dep-9f9f", "edge-router", "3.8.0-hotfix", at(17, 10), "Rollback of the upstream pool change")},
			[]string{"dep-1a2b suspect deploy", "dep-9f9f rollback"}},
		{"an id saying revert is a rollback", in,
			[]correlate.Deploy{suspect, d("revert-1a2b", "edge-router", "3.8.1", at(17, 10), "")},
			[]string{"dep-1a2b suspect deploy", "revert-1a2b rollback"}},
		{"a new version after the suspect is a later deploy", in,
			[]correlate.Deploy{prior, suspect, d("dep-fix1", "edge-router", "3.8.1", at(17, 10), "fix upstream pool")},
			[]string{"dep-1a2b suspect deploy", "dep-fix1 later deploy"}},
		{"a suspect outside the window is still shown", in,
			[]correlate.Deploy{prior, d("dep-1a2b", "edge-router", "3.8.0", at(11, 0), "")},
			[]string{"dep-1a2b suspect deploy"}},
		{"a suspect the store lacks is shown from the finding", in,
			[]correlate.Deploy{prior},
			[]string{"dep-1a2b suspect deploy"}},
		{"an open incident shows deploys until now", open,
			[]correlate.Deploy{prior, suspect, d("dep-late", "edge-router", "3.8.1", at(23, 0), "")},
			[]string{"dep-1a2b suspect deploy", "dep-late later deploy"}},
		{"the deploy the finding's recovery names as a rollback is a rollback", recovered,
			[]correlate.Deploy{prior, suspect, d("dep-rb2", "edge-router", "3.7.2", at(17, 10), "")},
			[]string{"dep-1a2b suspect deploy", "dep-rb2 rollback"}},
		{"without a suspect a rollback is known by its words", noSuspect,
			[]correlate.Deploy{prior, d("dep-rb", "edge-router", "3.7.4", at(17, 10), "roll back 3.8.0")},
			[]string{"dep-rb rollback"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := deployLabels(Build(c.in, nil, c.deploys, nil))
			if !slices.Equal(got, c.want) {
				t.Errorf("deploys = %q, want %q", got, c.want)
			}
		})
	}
}

func TestBuildDeployEntries(t *testing.T) {
	in, _, deploys, _ := friday()
	tl := Build(in, nil, deploys, nil)
	count := map[string]int{}
	for _, e := range tl.Entries {
		if e.Source != SourceDeploy {
			t.Errorf("entry %+v from deploys has source %q", e, e.Source)
		}
		count[e.Kind]++
	}
	want := map[string]int{KindDeployStarted: 2, KindHostUpdated: 16, KindDeployFinished: 2}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s entries, want %d", count[k], k, n)
		}
	}
}

func TestBuildChoosesTickets(t *testing.T) {
	in, _, _, _ := friday()
	in.Finding.Scope.Concentration = append(in.Finding.Scope.Concentration,
		correlate.Concentration{Field: correlate.FieldCustomer, Value: "30003", ShareOfErrors: 0.5})
	tk := func(id int64, created time.Time, org int64) correlate.Ticket {
		return correlate.Ticket{ID: id, CreatedAt: created, Subject: "s", OrganizationID: org}
	}
	cases := []struct {
		name    string
		tickets []correlate.Ticket
		want    []string
	}{
		{"a linked ticket is shown even before the onset", []correlate.Ticket{tk(101, at(15, 0), 10234)}, []string{"#101 s"}},
		{"a linked organization's ticket during the incident is shown", []correlate.Ticket{tk(104, at(16, 30), 10234)}, []string{"#104 s"}},
		{"a concentrated organization's ticket is shown", []correlate.Ticket{tk(105, at(17, 0), 30003)}, []string{"#105 s"}},
		{"another organization's ticket is left out", []correlate.Ticket{tk(106, at(16, 30), 20001)}, nil},
		{"an affected organization's ticket after resolution is left out", []correlate.Ticket{tk(107, at(17, 29), 10234)}, nil},
		{"a ticket without organization is left out", []correlate.Ticket{tk(108, at(16, 30), 0)}, nil},
		{"a ticket listed twice is shown once", []correlate.Ticket{tk(101, at(16, 20), 10234), tk(101, at(16, 20), 10234)}, []string{"#101 s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, e := range Build(in, nil, nil, c.tickets).Entries {
				if e.Kind == KindTicketCreated && e.Source == SourceZendesk {
					got = append(got, e.Text)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("tickets = %q, want %q", got, c.want)
			}
		})
	}
}

func TestBuildSortsAndDedupes(t *testing.T) {
	in, events, deploys, tickets := friday()
	want := Build(in, events, deploys, tickets)

	reversed := slices.Clone(events)
	slices.Reverse(reversed)
	dup := append(slices.Clone(reversed), events...)
	other := escalate.Event{IncidentID: "inc-other", At: at(16, 6), Kind: escalate.EventDetected, Text: "another incident"}
	got := Build(in, append(dup, other), append(slices.Clone(deploys), deploys[1]), append(tickets, tickets[0]))

	if !slices.Equal(got.Entries, want.Entries) {
		t.Fatalf("shuffled, duplicated input gives\n%+v\nwant\n%+v", got.Entries, want.Entries)
	}
	for i := 1; i < len(got.Entries); i++ {
		if got.Entries[i].At.Before(got.Entries[i-1].At) {
			t.Errorf("entry %d (%v) before entry %d (%v)", i, got.Entries[i].At, i-1, got.Entries[i-1].At)
		}
	}
	// At 16:02 the deploy that caused the onset reads before it.
	if got.Entries[0].Kind != KindDeployStarted || got.Entries[1].Kind != escalate.EventOnset {
		t.Errorf("first entries %q, %q; want deploy_started then onset", got.Entries[0].Kind, got.Entries[1].Kind)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct{ kind, source, short string }{
		{escalate.EventPageSent, SourceCulprit, escalate.EventPageSent},
		{escalate.EventResolved, SourceCulprit, escalate.EventResolved},
		{"acknowledged", SourcePagerDuty, "acknowledged"},
		{"incident.acknowledged", SourcePagerDuty, "acknowledged"},
		{"incident.resolved", SourcePagerDuty, "resolved"},
		{"pagerduty.escalated", SourcePagerDuty, "escalated"},
		{"slack.ack", SourceSlack, "ack"},
		{"zendesk.comment", SourceZendesk, "comment"},
		{"something_new", SourceCulprit, "something_new"},
		{"weird.", SourceCulprit, "weird."},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			src, short := classify(c.kind)
			if src != c.source || short != c.short {
				t.Errorf("classify(%q) = %q, %q; want %q, %q", c.kind, src, short, c.source, c.short)
			}
		})
	}
}

func TestMetricsUnknownIsNotZero(t *testing.T) {
	base := escalate.Incident{ID: "inc-1", Service: "edge-router", Signature: "boom", Onset: at(16, 2)}
	cases := []struct {
		name   string
		in     escalate.Incident
		events []escalate.Event
		// known lists the durations expected to be known, by JSON name.
		known map[string]float64
	}{
		{"nothing but the onset", base, nil, map[string]float64{}},
		{"opened but never paged", func() escalate.Incident { i := base; i.OpenedAt = at(16, 7); return i }(), nil,
			map[string]float64{"time_to_detect_seconds": 300}},
		{"paged at the onset is a known zero", base,
			[]escalate.Event{{At: at(16, 2), Kind: escalate.EventPageQueued, Text: "queued"}},
			map[string]float64{"time_to_page_seconds": 0}},
		{"page queued without send falls back to the queue time", base,
			[]escalate.Event{{At: at(16, 4), Kind: escalate.EventPageQueued}, {At: at(16, 10), Kind: "acknowledged", Actor: "Bob"}},
			map[string]float64{"time_to_page_seconds": 120, "time_to_acknowledge_seconds": 360}},
		{"acknowledged without a page has no time to acknowledge", base,
			[]escalate.Event{{At: at(16, 10), Kind: "incident.acknowledged"}},
			map[string]float64{}},
		{"recovered event without rollback", base,
			[]escalate.Event{{At: at(16, 40), Kind: escalate.EventRecovered}},
			map[string]float64{"time_to_recover_seconds": 38 * 60}},
	}
	all := []string{"time_to_detect_seconds", "time_to_page_seconds", "time_to_acknowledge_seconds", "time_to_recover_seconds", "rollback_to_recover_seconds"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tl := Build(c.in, c.events, nil, nil)
			var b bytes.Buffer
			if err := tl.JSON(&b); err != nil {
				t.Fatal(err)
			}
			var doc struct{ Metrics map[string]any }
			if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			for _, k := range all {
				v, present := doc.Metrics[k]
				if !present {
					t.Errorf("metrics lack %q", k)
				}
				want, known := c.known[k]
				switch {
				case known && v != want:
					t.Errorf("%s = %v, want %v", k, v, want)
				case !known && v != nil:
					t.Errorf("%s = %v, want null", k, v)
				}
			}
			var md bytes.Buffer
			if err := tl.Markdown(&md); err != nil {
				t.Fatal(err)
			}
			if _, known := c.known["time_to_acknowledge_seconds"]; !known && !strings.Contains(md.String(), "| Time to acknowledge | — |") {
				t.Errorf("markdown does not show an unknown time to acknowledge as —:\n%s", md.String())
			}
			if !strings.Contains(md.String(), "| Rollback to recovery | — |") {
				t.Errorf("markdown does not show an unknown rollback to recovery as —:\n%s", md.String())
			}
		})
	}
}

func TestMarkdownEscapesCells(t *testing.T) {
	in, events, deploys, _ := friday()
	tickets := []correlate.Ticket{{ID: 101, CreatedAt: at(16, 20), OrganizationID: 10234,
		Subject: "502 | 503 on fn-<*>\nsince *4pm*"}}
	var b bytes.Buffer
	if err := Build(in, events, deploys, tickets).Markdown(&b); err != nil {
		t.Fatal(err)
	}
	var row string
	for line := range strings.SplitSeq(b.String(), "\n") {
		if strings.Contains(line, "#101") {
			row = line
		}
	}
	want := `| 16:20:00 | ticket created | #101 502 \| 503 on fn-\<\*\><br>since \*4pm\* | org 10234 |`
	if row != want {
		t.Errorf("ticket row\n got %s\nwant %s", row, want)
	}
	// A table row has exactly five unescaped pipes, whatever the subject.
	if n := strings.Count(row, "|") - strings.Count(row, `\|`); n != 5 {
		t.Errorf("row has %d cell separators, want 5: %s", n, row)
	}
}

func TestHTMLEscapesAndEmbeds(t *testing.T) {
	in, events, deploys, _ := friday()
	tickets := []correlate.Ticket{{ID: 101, CreatedAt: at(16, 20), OrganizationID: 10234, Subject: `<script>alert("x")</script>`}}
	tl := Build(in, events, deploys, tickets)
	var page bytes.Buffer
	if err := tl.HTML(&page); err != nil {
		t.Fatal(err)
	}
	frag, err := tl.HTMLFragment()
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"page": page.String(), "fragment": string(frag)} {
		if strings.Contains(s, "<script") {
			t.Errorf("%s contains a script element", name)
		}
		if !strings.Contains(s, "&lt;script&gt;") {
			t.Errorf("%s lacks the escaped subject", name)
		}
	}
	if strings.Contains(string(frag), "<html") || !strings.HasPrefix(string(frag), `<section class="timeline">`) {
		t.Errorf("fragment is not a bare section:\n%s", frag)
	}
	if !strings.Contains(page.String(), string(frag)) {
		t.Errorf("page does not embed the fragment")
	}
}

func TestCSVRowsAndFormulaGuard(t *testing.T) {
	in, events, deploys, _ := friday()
	tickets := []correlate.Ticket{{ID: 101, CreatedAt: at(16, 20), OrganizationID: 10234, Subject: "x"}}
	events = append(events, escalate.Event{At: at(16, 30), Kind: "incident.annotated", Text: `=HYPERLINK("http://evil")`, Actor: "@mallory"})
	tl := Build(in, events, deploys, tickets)
	var b bytes.Buffer
	if err := tl.CSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(tl.Entries)+1 {
		t.Fatalf("%d rows, want header + %d entries", len(rows), len(tl.Entries))
	}
	if !slices.Equal(rows[0], []string{"time", "source", "kind", "actor", "text"}) {
		t.Errorf("header = %q", rows[0])
	}
	i := slices.IndexFunc(rows, func(r []string) bool { return r[2] == "annotated" })
	if i < 0 {
		t.Fatal("annotation row missing")
	}
	if got := rows[i]; got[0] != "2026-11-20T16:30:00Z" || got[1] != "pagerduty" || got[3] != "'@mallory" || got[4] != `'=HYPERLINK("http://evil")` {
		t.Errorf("annotation row = %q", got)
	}
}

func TestParseFormat(t *testing.T) {
	cases := []struct {
		in      string
		want    Format
		wantErr string
	}{
		{"md", FormatMarkdown, ""},
		{"Markdown", FormatMarkdown, ""},
		{" json ", FormatJSON, ""},
		{"csv", FormatCSV, ""},
		{"HTML", FormatHTML, ""},
		{"xlsx", "", `unknown timeline format "xlsx": want md, json, csv or html`},
		{"", "", `unknown timeline format "": want md, json, csv or html`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseFormat(c.in)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("ParseFormat(%q) error = %v, want %q", c.in, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("ParseFormat(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestWriteReportsWriterErrors(t *testing.T) {
	tl := Build(friday())
	for _, f := range []Format{FormatMarkdown, FormatJSON, FormatCSV, FormatHTML} {
		t.Run(string(f), func(t *testing.T) {
			if err := tl.Write(failingWriter{}, f); !errors.Is(err, errDiskFull) {
				t.Errorf("error = %v, want one wrapping %v", err, errDiskFull)
			}
		})
	}
	if err := tl.Write(&bytes.Buffer{}, Format("pdf")); err == nil || !strings.Contains(err.Error(), `"pdf"`) {
		t.Errorf("Write with an unknown format: error = %v", err)
	}
}

func TestFormatDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1400 * time.Millisecond, "1s"},
		{3 * time.Minute, "3m"},
		{72*time.Minute + 5*time.Second, "1h 12m 5s"},
		{25 * time.Hour, "25h"},
		{-90 * time.Second, "-1m 30s"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if got := formatDuration(c.d); got != c.want {
				t.Errorf("formatDuration(%v) = %q, want %q", c.d, got, c.want)
			}
		})
	}
}
