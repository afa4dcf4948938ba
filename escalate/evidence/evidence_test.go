package evidence

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"html/template"
	"image"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/store"
)

// The SQLite store is what cmd/culprit passes in.
var _ Store = (*store.Store)(nil)

// server serves a Handler over st with the fixture's clock and links, and
// collects what it logs.
func server(t *testing.T, st *fakeStore) (*http.ServeMux, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	h, err := New(Config{
		Store: st,
		Links: func(in *escalate.Incident) []correlate.Link {
			if in.Finding == nil {
				return nil
			}
			return []correlate.Link{{Title: "Kibana Discover", URL: kibanaURL}}
		},
		Now:    func() time.Time { return fixNow },
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	return mux, &logs
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func get(t *testing.T, h http.Handler, path string) response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return response{code: rec.Code, header: rec.Result().Header, body: rec.Body.Bytes()}
}

// esc is s as html/template writes it in text, so tests can look for the
// exact bytes a value becomes.
func esc(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	if err := template.Must(template.New("").Parse(`{{.}}`)).Execute(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestNewNeedsAStore(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a store: no error")
	}
}

func TestEvidencePage(t *testing.T) {
	mux, _ := server(t, fixture())
	res := get(t, mux, "/incidents/"+fridayID)
	if res.code != http.StatusOK {
		t.Fatalf("status %d: %s", res.code, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q does not forbid scripts", csp)
	}
	page := string(res.body)
	for _, c := range []struct{ name, want string }{
		{"headline", "<h1>" + esc(t, fridayHeadline) + "</h1>"},
		{"rate chart", `<img src="/incidents/` + fridayID + `/chart.svg" width="800" height="300" alt="Errors a minute of `},
		{"scope chart", `<img src="/incidents/` + fridayID + `/scope.svg" width="800" height="300" alt="Where the errors of `},
		{"status", `<span class="badge status-resolved">resolved</span>`},
		{"routing", "page: route always"},
		{"rate after", "~41.3 errors a minute (order 10^1)"},
		{"share after", "0.33% of all requests: about 1 in 300, order 10^-3"},
		{"share header", `<th scope="col">Share of all edge-router requests</th>`},
		{"explanation", "<td><code>cloud.provider=aws ∧ url.path=/.fn/*</code></td><td class=\"num\">96%</td><td class=\"num\">5.0%</td><td class=\"num\">6.3%</td><td>the rest: 0.01% failed: 630× as often here</td>"},
		{"nothing before", "<td>none</td>"},
		{"count", "1776 errors since the onset"},
		{"significance", "q = 1e-12 over 412 series tested"},
		{"affected customers", `<th scope="row">customers (organization.id)</th><td class="num">37</td>`},
		{"affected hosts", `<th scope="row">hosts (host.name)</th><td class="num">8</td>`},
		{"concentration", "<td><code>cloud.provider=aws</code></td><td class=\"num\">97%</td><td class=\"num\">42%</td>"},
		{"concentration host", "<code>host.name=edge-aws-use1-03</code>"},
		{"suspect link", `<a href="` + releaseURL + `">dep-1a2b</a> · edge-router 3.8.0 · score 0.97`},
		{"suspect reason", "<li>hosts broke in rollout order: 8 of 8 failed within 2 minutes of receiving 3.8.0</li>"},
		{"severity reason", "<li>new error class on 37 customers</li>"},
		{"ticket", "<td>Functions return 502 since 4pm</td>"},
		{"ticket org", "<td>10234</td>"},
		{"other tickets", `<p id="other-tickets" class="muted">2 more tickets from affected customers, not obviously related: #117, #118.</p>`},
		{"sample host", "<td>edge-aws-use1-01</td>"},
		{"sample message", "<code>function invocation failed: fn-8812 returned 502 from upstream 10.0.3.7:8080</code>"},
		{"sample time", `<time datetime="2026-11-20T16:02:41Z">2026-11-20 16:02:41 UTC</time>`},
		// html/template percent-encodes the parentheses and quotes of
		// Kibana's rison state; Kibana decodes them the same.
		{"kibana link", `<a href="https://kibana.example.net/app/discover#/?_g=%28time:%28from:%272026-11-20T15:47:00Z%27%29%29&amp;_a=%28query:%27edge-router%27%29" rel="noreferrer">Kibana Discover</a>`},
		{"deploy link", `>Deploy dep-1a2b (edge-router 3.8.0)</a>`},
		{"timeline fragment", `<table class="timeline-entries">`},
		{"timeline acknowledged", "<td>PagerDuty acknowledged</td>"},
		{"timeline acknowledged by", "<td>Alice</td>"},
		{"timeline rollback", "rollback dep-9f9f: edge-router 3.7.4"},
		{"timeline host", "edge-aws-use1-08 on edge-router 3.8.0 (dep-1a2b)"},
		{"timeline ticket", "#101 Functions return 502 since 4pm"},
		{"timeline page", "PagerDuty accepted the trigger"},
		{"download md", `<a href="/incidents/` + fridayID + `/timeline.md">Markdown</a>`},
		{"download csv", `<a href="/incidents/` + fridayID + `/timeline.csv">CSV</a>`},
		{"download json", `<a href="/incidents/` + fridayID + `/timeline.json">JSON</a>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(page, c.want) {
				t.Errorf("page lacks %s:\n%s", c.want, page)
			}
		})
	}
	for _, c := range []struct{ name, unwanted string }{
		{"another incident's event", "api errors rising"},
		{"an unrelated customer's ticket", "Invoice address"},
		{"a deploy too old to matter", "dep-0c0c"},
	} {
		t.Run("not "+c.name, func(t *testing.T) {
			if strings.Contains(page, c.unwanted) {
				t.Errorf("page shows %s (%q)", c.name, c.unwanted)
			}
		})
	}
}

// TestEvidencePageRecoveryAndBursts: what ended the errors, a customer's
// own burst before the deploy, and, when nothing is blamed, the deploy
// that finished just before the onset are on the page, in the words the
// text report and the page use.
func TestEvidencePageRecoveryAndBursts(t *testing.T) {
	st := fixture()
	f := st.incidents[2].Finding
	if f.ID != "f-5e6f7a8b" {
		t.Fatalf("fixture order changed: incident 2 holds finding %s", f.ID)
	}
	f.Recovery = &correlate.Recovery{DeployID: "dep-9f9f", Service: "edge-router", Version: "3.7.4", Rollback: true,
		ReachedAffected: at(16, 44), Reasons: []string{"errors stopped on 8 of 8 hosts within 2 minutes of leaving 3.8.0"}}
	f.PreDeployExcess = &correlate.PreDeployExcess{DeployID: "dep-1a2b", From: at(15, 55), To: at(16, 0), Customer: "10234", Excess: 12, Share: 0.92}
	mux, _ := server(t, st)
	page := string(get(t, mux, "/incidents/"+fridayID).body)
	for _, want := range []string{
		"<h2>Recovery</h2>",
		`<p class="recovery">` + esc(t, f.Recovery.Sentence(f.Recovered)) + "</p>",
		"<li>errors stopped on 8 of 8 hosts within 2 minutes of leaving 3.8.0</li>",
		`<p class="before-deploy">Before the deploy: ` + esc(t, f.PreDeployExcess.Sentence()) + "</p>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, `class="unaligned"`) {
		t.Error("a finding with a suspect shows the no-deploy-aligned note")
	}

	// Nothing blamed: the deploy that finished before the onset is named
	// under "None", with why it is not blamed.
	st = fixture()
	f = st.incidents[2].Finding
	f.SuspectedDeploys = nil
	f.UnalignedDeploy = &correlate.UnalignedDeploy{DeployID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", FinishedAt: at(15, 40),
		RateAfter: 0.009, RateBefore: 0.001, Ratio: 9, Low: 6, High: 12, Lead: 22 * time.Minute}
	mux, _ = server(t, st)
	page = string(get(t, mux, "/incidents/"+fridayID).body)
	for _, want := range []string{
		"None: no deploy is tied to these errors",
		`<p class="unaligned">` + esc(t, f.UnalignedDeploy.Sentence()) + "</p>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, unwanted := range []string{"<h2>Recovery</h2>", `class="before-deploy"`} {
		if strings.Contains(page, unwanted) {
			t.Errorf("page shows %s, which the finding does not have", unwanted)
		}
	}
}

func TestEvidencePageEscapes(t *testing.T) {
	st := fixture()
	f := st.incidents[2].Finding
	f.Tickets = append(f.Tickets, correlate.TicketRef{ID: 103, Subject: `"><img src=x onerror=alert(2)>`, CreatedAt: at(16, 30), OrganizationID: 20417})
	f.Links = []correlate.Link{{Title: "click me", URL: "javascript:alert(3)"}}
	mux, _ := server(t, st)
	page := string(get(t, mux, "/incidents/"+fridayID).body)

	for _, c := range []struct{ name, want, unwanted string }{
		{"sample message", "fn-&lt;script&gt;alert(1)&lt;/script&gt; returned 502", "<script>"},
		{"ticket subject", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;", "<img src=x"},
		{"link scheme", `<a href="#ZgotmplZ" rel="noreferrer">click me</a>`, "javascript:"},
		{"signature", "fn-&lt;*&gt; returned &lt;*&gt;", "fn-<*>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(page, c.want) {
				t.Errorf("page lacks the escaped %s %q", c.name, c.want)
			}
			if strings.Contains(page, c.unwanted) {
				t.Errorf("page contains %q unescaped", c.unwanted)
			}
		})
	}
}

func TestMetaIncidentPage(t *testing.T) {
	mux, _ := server(t, fixture())
	res := get(t, mux, "/incidents/"+blindID)
	if res.code != http.StatusOK {
		t.Fatalf("status %d: %s", res.code, res.body)
	}
	page := string(res.body)
	text := esc(t, "culprit cannot read logs from http://es.internal:9200: 3 evaluations in a row failed: connection refused")
	for _, want := range []string{"<h1>" + text + "</h1>", `<p class="meta-text">` + text + "</p>", "source unreadable", "it cannot see errors there either"} {
		if !strings.Contains(page, want) {
			t.Errorf("meta page lacks %q", want)
		}
	}
	if strings.Contains(page, "<img") {
		t.Error("meta page has a chart, but the incident has no finding to draw")
	}
}

func TestIncidentList(t *testing.T) {
	mux, _ := server(t, fixture())
	for _, c := range []struct {
		name, query string
		code        int
		want, not   []string
	}{
		{"all, newest first", "", http.StatusOK, []string{blindID, openID, fridayID}, nil},
		{"open", "?status=open", http.StatusOK, []string{blindID, openID}, []string{fridayID}},
		{"resolved", "?status=resolved", http.StatusOK, []string{fridayID}, []string{blindID, openID}},
		{"unknown status", "?status=closed", http.StatusBadRequest, []string{`unknown status "closed": want open or resolved`}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := get(t, mux, "/incidents"+c.query)
			if res.code != c.code {
				t.Fatalf("status %d, want %d: %s", res.code, c.code, res.body)
			}
			body := string(res.body)
			last := -1
			for _, w := range c.want {
				i := strings.Index(body, w)
				if i < 0 {
					t.Errorf("list lacks %q", w)
					continue
				}
				if i < last {
					t.Errorf("%q is out of order", w)
				}
				last = i
			}
			for _, n := range c.not {
				if strings.Contains(body, n) {
					t.Errorf("list shows %q", n)
				}
			}
		})
	}

	res := get(t, mux, "/incidents?status=resolved")
	row := `<tr><td><a href="/incidents/` + fridayID + `">` + fridayID + `</a></td><td><span class="badge status-resolved">resolved</span></td><td class="severity-page">page</td><td>—</td><td>page</td><td>edge-router</td><td>` + esc(t, fridayHeadline) + `</td>` +
		`<td><time datetime="2026-11-20T16:02:00Z">2026-11-20 16:02:00 UTC</time></td><td><time datetime="2026-11-20T16:05:00Z">2026-11-20 16:05:00 UTC</time></td>` +
		`<td><time datetime="2026-11-20T16:05:00Z">2026-11-20 16:05:00 UTC</time></td><td><time datetime="2026-11-20T16:55:00Z">2026-11-20 16:55:00 UTC</time></td></tr>`
	if !strings.Contains(string(res.body), row) {
		t.Errorf("the Friday row is not\n%s\nin\n%s", row, res.body)
	}
	res = get(t, mux, "/incidents?status=open")
	if !strings.Contains(string(res.body), "<td>—</td>") {
		t.Error("an open incident's unknown resolution time is not shown as —")
	}
}

func TestIncidentListEmpty(t *testing.T) {
	mux, _ := server(t, &fakeStore{})
	res := get(t, mux, "/incidents")
	if res.code != http.StatusOK || !strings.Contains(string(res.body), "<p>No incidents.</p>") {
		t.Fatalf("status %d: %s", res.code, res.body)
	}
}

func TestNotFound(t *testing.T) {
	mux, _ := server(t, fixture())
	for _, c := range []struct{ name, path, want string }{
		{"unknown incident", "/incidents/nope", `no incident "nope"`},
		{"unknown incident's chart", "/incidents/nope/chart.svg", `no incident "nope"`},
		{"unknown incident's timeline", "/incidents/nope/timeline.md", `no incident "nope"`},
		{"unknown extension", "/incidents/" + fridayID + "/chart.gif", `no file "chart.gif" for an incident: want chart.png, chart.svg, scope.png, scope.svg, timeline.md, timeline.json, timeline.csv or timeline.html`},
		{"no extension", "/incidents/" + fridayID + "/chart", `no file "chart"`},
		{"unknown file", "/incidents/" + fridayID + "/report.md", `no file "report.md"`},
		{"upper-case name", "/incidents/" + fridayID + "/chart.SVG", `no file "chart.SVG"`},
		{"meta incident's chart", "/incidents/" + blindID + "/chart.png", `incident "` + blindID + `" has no finding to chart`},
		{"meta incident's scope", "/incidents/" + blindID + "/scope.svg", `incident "` + blindID + `" has no finding to chart`},
		{"finding without series", "/incidents/" + openID + "/chart.svg", `incident "` + openID + `" has no error series to chart`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := get(t, mux, c.path)
			if res.code != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", res.code, res.body)
			}
			if !strings.Contains(string(res.body), c.want) {
				t.Errorf("body %q lacks %q", res.body, c.want)
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want plain text", ct)
			}
		})
	}
}

func TestStoreErrors(t *testing.T) {
	for _, c := range []struct{ name, fail, path, want string }{
		{"list", "Incidents", "/incidents", "cannot read incidents"},
		{"page: incident", "Incident", "/incidents/" + fridayID, "cannot read incident"},
		{"page: events", "Events", "/incidents/" + fridayID, "cannot read the incident's timeline"},
		{"page: deploys", "Deploys", "/incidents/" + fridayID, "cannot read deploys"},
		{"page: tickets", "Tickets", "/incidents/" + fridayID, "cannot read tickets"},
		{"chart: deploys", "Deploys", "/incidents/" + fridayID + "/chart.png", "cannot read deploys"},
		{"timeline: tickets", "Tickets", "/incidents/" + fridayID + "/timeline.csv", "cannot read tickets"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := fixture()
			st.fail = c.fail
			mux, logs := server(t, st)
			res := get(t, mux, c.path)
			if res.code != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500: %s", res.code, res.body)
			}
			if got := strings.TrimSpace(string(res.body)); got != c.want {
				t.Errorf("body %q, want %q", got, c.want)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "disk I/O error") {
				t.Errorf("the store error was not logged: %s", logs)
			}
		})
	}
}

func TestCharts(t *testing.T) {
	mux, logs := server(t, fixture())
	for _, c := range []struct {
		name, file, contentType string
		check                   func(t *testing.T, body []byte)
	}{
		{"rate png", "chart.png", "image/png", decodePNG},
		{"scope png", "scope.png", "image/png", decodePNG},
		{"rate svg", "chart.svg", "image/svg+xml", func(t *testing.T, body []byte) {
			parseSVG(t, body)
			// The rollback is known only to the store: its label proves
			// the chart got the deploys around the incident.
			if !bytes.Contains(body, []byte("edge-router 3.7.4")) {
				t.Error("rate chart does not show the rollback deploy")
			}
		}},
		{"scope svg", "scope.svg", "image/svg+xml", func(t *testing.T, body []byte) {
			parseSVG(t, body)
			if !bytes.Contains(body, []byte("cloud.provider=aws")) {
				t.Error("scope chart does not show cloud.provider=aws")
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := get(t, mux, "/incidents/"+fridayID+"/"+c.file)
			if res.code != http.StatusOK {
				t.Fatalf("status %d: %s (log: %s)", res.code, res.body, logs)
			}
			if ct := res.header.Get("Content-Type"); ct != c.contentType {
				t.Errorf("Content-Type %q, want %q", ct, c.contentType)
			}
			if cc := res.header.Get("Cache-Control"); cc != "max-age=60" {
				t.Errorf("Cache-Control %q", cc)
			}
			c.check(t, res.body)
		})
	}

	t.Run("scope without a series", func(t *testing.T) {
		res := get(t, mux, "/incidents/"+openID+"/scope.png")
		if res.code != http.StatusOK {
			t.Fatalf("status %d: %s", res.code, res.body)
		}
		decodePNG(t, res.body)
	})
}

func decodePNG(t *testing.T, body []byte) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	if format != "png" || img.Bounds().Dx() != 800 || img.Bounds().Dy() != 300 {
		t.Errorf("got a %s of %v, want an 800×300 png", format, img.Bounds())
	}
}

func parseSVG(t *testing.T, body []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("svg is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
}

// A chart that cannot be drawn is a clean 500, logged, with no partial
// image.
func TestChartErrorIsClean500(t *testing.T) {
	st := fixture()
	st.incidents[2].Finding.Series.Errors[3] = -1 // not a count
	mux, logs := server(t, st)
	res := get(t, mux, "/incidents/"+fridayID+"/chart.png")
	if res.code != http.StatusInternalServerError || strings.TrimSpace(string(res.body)) != "cannot draw the chart" {
		t.Fatalf("status %d: %q", res.code, res.body)
	}
	if ct := res.header.Get("Content-Type"); strings.HasPrefix(ct, "image/") {
		t.Errorf("Content-Type %q on an error", ct)
	}
	if !strings.Contains(logs.String(), "bucket 3") {
		t.Errorf("chart error not logged: %s", logs)
	}
}

func TestTimelineDownloads(t *testing.T) {
	mux, _ := server(t, fixture())
	for _, c := range []struct {
		name, ext, contentType, disposition string
		check                               func(t *testing.T, body []byte)
	}{
		{"markdown", "md", "text/markdown; charset=utf-8", `attachment; filename="` + fridayID + `-timeline.md"`, func(t *testing.T, body []byte) {
			if !bytes.HasPrefix(body, []byte("# Incident "+fridayID+": ")) {
				t.Errorf("markdown starts %q", body[:min(60, len(body))])
			}
			if !bytes.Contains(body, []byte("rollback dep-9f9f")) {
				t.Error("markdown lacks the rollback")
			}
		}},
		{"csv", "csv", "text/csv; charset=utf-8", `attachment; filename="` + fridayID + `-timeline.csv"`, func(t *testing.T, body []byte) {
			rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
			if err != nil {
				t.Fatalf("csv: %v", err)
			}
			if len(rows) < 10 || strings.Join(rows[0], ",") != "time,source,kind,actor,text" {
				t.Errorf("csv has %d rows, header %v", len(rows), rows[0])
			}
		}},
		{"json", "json", "application/json", "", func(t *testing.T, body []byte) {
			var doc struct {
				Incident struct{ ID string } `json:"incident"`
				Entries  []struct{ Kind string }
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("json: %v", err)
			}
			if doc.Incident.ID != fridayID || len(doc.Entries) < 10 {
				t.Errorf("json: incident %q with %d entries", doc.Incident.ID, len(doc.Entries))
			}
		}},
		{"html", "html", "text/html; charset=utf-8", "", func(t *testing.T, body []byte) {
			if !bytes.HasPrefix(body, []byte("<!DOCTYPE html>")) || !bytes.Contains(body, []byte("PagerDuty acknowledged")) {
				t.Errorf("html export: %.200s", body)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := get(t, mux, "/incidents/"+fridayID+"/timeline."+c.ext)
			if res.code != http.StatusOK {
				t.Fatalf("status %d: %s", res.code, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != c.contentType {
				t.Errorf("Content-Type %q, want %q", ct, c.contentType)
			}
			if cd := res.header.Get("Content-Disposition"); cd != c.disposition {
				t.Errorf("Content-Disposition %q, want %q", cd, c.disposition)
			}
			c.check(t, res.body)
		})
	}
}

// The deploys and tickets around an incident reach from two hours before
// its onset to an hour after it ended (or was last seen), as `culprit
// timeline` reads them; the rate chart reaches back to two hours before
// its series starts, so it gets every rollout its window shows.
func TestDeployRange(t *testing.T) {
	for _, c := range []struct {
		name, path string
		from, to   time.Time
	}{
		{"resolved: onset to resolve", "/incidents/" + fridayID, at(14, 2), at(17, 55)},
		{"open, last seen", "/incidents/" + openID, at(15, 55), at(19, 30)},
		{"rate chart, series starts before the onset", "/incidents/" + fridayID + "/chart.svg", at(13, 30), at(17, 55)},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := fixture()
			mux, _ := server(t, st)
			if res := get(t, mux, c.path); res.code != http.StatusOK {
				t.Fatalf("status %d: %s", res.code, res.body)
			}
			if len(st.deployRanges) != 1 {
				t.Fatalf("%d deploy reads, want 1", len(st.deployRanges))
			}
			if got := st.deployRanges[0]; !got[0].Equal(c.from) || !got[1].Equal(c.to) {
				t.Errorf("deploys read for [%s, %s), want [%s, %s)", got[0], got[1], c.from, c.to)
			}
		})
	}

	t.Run("still going: up to now", func(t *testing.T) {
		st := fixture()
		st.incidents[1].LastSeen = time.Time{}
		mux, _ := server(t, st)
		get(t, mux, "/incidents/"+openID)
		if got := st.deployRanges[0][1]; !got.Equal(fixNow.Add(time.Hour)) {
			t.Errorf("deploys read up to %s, want now + 1h = %s", got, fixNow.Add(time.Hour))
		}
	})
}

func TestFileName(t *testing.T) {
	for _, c := range []struct{ name, id, want string }{
		{"plain", "inc-0f1e2d3c4b", "inc-0f1e2d3c4b"},
		{"quotes and slashes", `a"b/c\d`, "a_b_c_d"},
		{"dots only", "..", "incident"},
		{"empty", "", "incident"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := fileName(c.id); got != c.want {
				t.Errorf("fileName(%q) = %q, want %q", c.id, got, c.want)
			}
		})
	}
}

func TestEvidencePagePriorityAndCustomers(t *testing.T) {
	st := fixture()
	for i := range st.incidents {
		if st.incidents[i].ID != fridayID {
			continue
		}
		f := *st.incidents[i].Finding
		f.Priority = &correlate.PriorityLevel{Level: "P1", Why: "20 or more customers see failures", Facts: "37 customers affected"}
		f.Customers = &correlate.CustomerImpact{Summary: "1 enterprise customer, including Acme <Corp>; 37 customers in all", Top: 1, Total: 37,
			Named: []correlate.AffectedCustomer{{Customer: correlate.Customer{ID: "101", Name: "Acme <Corp>", Tier: "enterprise", VIP: true, Owner: "dana"}, Errors: 40, Top: true}}}
		st.incidents[i].Finding = &f
	}
	mux, _ := server(t, st)
	if list := string(get(t, mux, "/incidents?status=resolved").body); !strings.Contains(list, `<td class="severity-page">page</td><td>P1</td>`) {
		t.Errorf("the incident list shows no priority:\n%s", list)
	}
	page := string(get(t, mux, "/incidents/"+fridayID).body)
	for _, want := range []string{
		`<p class="priority"><strong>P1</strong>: 20 or more customers see failures. Weighed: 37 customers affected.</p>`,
		`<caption>Customers: 1 enterprise customer, including Acme &lt;Corp&gt;; 37 customers in all</caption>`,
		`<tr><th scope="row">Acme &lt;Corp&gt; (VIP)</th><td><code>101</code></td><td>enterprise</td><td>dana</td><td class="num">40</td></tr>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}
