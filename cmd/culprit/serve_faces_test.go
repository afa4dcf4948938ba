package main

import (
	"bytes"
	"context"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/rules"
)

// facesEnv resolves every secret rules/example.yml names.
func facesEnv(k string) string {
	switch k {
	case "CULPRIT_LINK_SECRET":
		return "link-secret-link-secret-link-secret"
	case "CULPRIT_SESSION_SECRET":
		return "session-secret-session-secret-session"
	case "CULPRIT_OIDC_CLIENT_SECRET":
		return "oidc-client-secret"
	}
	return "secret-of-" + k
}

// facesClock is the injected clock of the example server.
type facesClock struct{ t time.Time }

func (c *facesClock) Now() time.Time { return c.t }

// exampleServer assembles the daemon from rules/example.yml, as shipped
// but for the store, with one incident worth showing: a finding with its
// error series, a headline and a customer id that must never reach the
// public listener. edit, if not nil, changes the configuration first.
func exampleServer(t *testing.T, clock *facesClock, edit func(*rules.Config)) (*server, escalate.Incident) {
	t.Helper()
	cfg, err := rules.LoadWith("../../rules/example.yml", facesEnv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.Dir = t.TempDir()
	if edit != nil {
		edit(&cfg)
	}
	ctx := context.Background()
	s, err := assemble(ctx, &cfg, clock.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	onset := clock.t.Add(-30 * time.Minute)
	series := &correlate.FindingChart{Start: onset.Add(-time.Hour), StepSec: 60}
	for i := range 90 {
		e := 1.0
		if i >= 60 {
			e = 40
		}
		series.Errors = append(series.Errors, e)
		series.Requests = append(series.Requests, 12000)
		series.Baseline = append(series.Baseline, 1)
	}
	f := correlate.Finding{Service: "edge-router", Signature: "upstream timeout", Onset: onset, Severity: correlate.SeverityPage,
		Headline: "edge-router: upstream timeout for customer org-SECRET-42", Series: series}
	in, ch := escalate.Asked(nil, &f, clock.t, "", "test")
	if err := s.store.Apply(ctx, []escalate.Change{ch}); err != nil {
		t.Fatal(err)
	}
	return s, in
}

// privatePaths expands each pattern of the private listener into the
// concrete paths it serves for incident id.
func privatePaths(t *testing.T, patterns []string, id string) []string {
	t.Helper()
	files := []string{"chart.png", "chart.svg", "scope.png", "scope.svg", "timeline.md", "timeline.json", "timeline.csv", "timeline.html"}
	var paths []string
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok || method != http.MethodGet {
			t.Fatalf("private pattern %q: the table expects GET routes; extend it", p)
		}
		path = strings.ReplaceAll(strings.ReplaceAll(path, "{id}", id), "{$}", "")
		if strings.Contains(path, "{file}") {
			for _, f := range files {
				paths = append(paths, strings.ReplaceAll(path, "{file}", f))
			}
			continue
		}
		if strings.Contains(path, "{") {
			t.Fatalf("private pattern %q has a wildcard the table does not fill", p)
		}
		paths = append(paths, path, path+"?status=open")
	}
	return paths
}

// TestPublicListenerShowsNoEvidence is the acceptance test of the two
// faces: with the example configuration, every route the private listener
// serves (incident pages, files, JSON API, /metrics) answers an
// unauthenticated request on the public listener with 401 or 404 and
// renders nothing, and on the private listener with 401.
func TestPublicListenerShowsNoEvidence(t *testing.T) {
	clock := &facesClock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	s, in := exampleServer(t, clock, nil)
	for _, must := range []string{"GET /incidents", "GET /incidents/{id}", "GET /incidents/{id}/{file}", "GET /api/v1/incidents",
		"GET /api/v1/incidents/{id}", "GET /metrics"} {
		if !slices.Contains(s.private, must) {
			t.Fatalf("private routes %q lack %q: the table would not cover it", s.private, must)
		}
	}
	paths := append(privatePaths(t, s.private, in.ID), "/readyz", "/incidents/"+in.ID+"/chart.png?exp=9999999999&sig=forged")
	for _, path := range paths {
		for _, h := range []struct {
			name    string
			handler http.Handler
			want    []int
		}{
			{"public", s.handler, []int{http.StatusUnauthorized, http.StatusNotFound}},
			{"private", s.ui, []int{http.StatusUnauthorized}},
		} {
			if h.name == "private" && path == "/readyz" {
				continue // a probe, which shows nothing
			}
			for _, accept := range []string{"", "application/json"} {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Header.Set("Accept", accept)
				w := httptest.NewRecorder()
				h.handler.ServeHTTP(w, r)
				body := w.Body.String()
				if !slices.Contains(h.want, w.Code) && !(h.name == "public" && w.Code == http.StatusForbidden && strings.Contains(path, "sig=")) {
					t.Errorf("%s GET %s: %d, want one of %v", h.name, path, w.Code, h.want)
				}
				for _, leak := range []string{in.ID, "org-SECRET-42", "upstream timeout", "culprit_", "\x89PNG", "<svg"} {
					if strings.Contains(body, leak) {
						t.Errorf("%s GET %s: the answer shows %q: %.200s", h.name, path, leak, body)
					}
				}
			}
		}
	}
	// The private listener sends a browser to the login instead.
	r := httptest.NewRequest(http.MethodGet, "/incidents/"+in.ID, nil)
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	s.ui.ServeHTTP(w, r)
	if loc := w.Header().Get("Location"); w.Code != http.StatusFound || !strings.HasPrefix(loc, "/auth/login?next=") {
		t.Errorf("browser without a session: %d to %q, want a redirect to the login", w.Code, loc)
	}
	// And the public listener still does its job.
	w = httptest.NewRecorder()
	s.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusOK {
		t.Errorf("public /healthz: %d", w.Code)
	}
}

// TestSignedChartLink follows the chart link a page carries: it opens on
// the public listener without a login until link_ttl has passed, and then
// renders nothing; the evidence link points at the private listener.
func TestSignedChartLink(t *testing.T) {
	clock := &facesClock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	s, in := exampleServer(t, clock, nil)
	links := s.links(&in)
	if want := "https://culprit-ui.example.com/incidents/" + in.ID; links.Evidence != want {
		t.Errorf("evidence link %q, want %q", links.Evidence, want)
	}
	u, err := url.Parse(links.Chart)
	if err != nil || u.Scheme != "https" || u.Host != "culprit.example.com" || u.Path != "/incidents/"+in.ID+"/chart.png" {
		t.Fatalf("chart link %q: want a signed https link on intake.public_url", links.Chart)
	}
	get := func(target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		return w
	}
	target := u.RequestURI()
	if w := get(target); w.Code != http.StatusOK {
		t.Fatalf("fresh link: %d %s", w.Code, w.Body)
	} else if _, err := png.Decode(bytes.NewReader(w.Body.Bytes())); err != nil {
		t.Fatalf("fresh link: not a PNG: %v", err)
	}
	// The same signature on the timeline, or on another incident, is refused.
	for _, other := range []string{strings.Replace(target, "chart.png", "timeline.json", 1), strings.Replace(target, in.ID, in.ID+"0", 1),
		strings.Replace(target, "chart.png", "scope.png", 1)} {
		if w := get(other); w.Code != http.StatusForbidden && w.Code != http.StatusNotFound {
			t.Errorf("%s with chart.png's signature: %d", other, w.Code)
		}
	}
	clock.t = clock.t.Add(s.cfg.Intake.LinkTTL.D() - time.Second)
	if w := get(target); w.Code != http.StatusOK {
		t.Errorf("a second before expiry: %d", w.Code)
	}
	clock.t = clock.t.Add(time.Second)
	if w := get(target); w.Code != http.StatusForbidden || bytes.HasPrefix(w.Body.Bytes(), []byte("\x89PNG")) {
		t.Errorf("expired link: %d, want 403 and no chart", w.Code)
	}
}

// TestNoChartLinkWithoutSecret: without intake.link_secret no chart is
// linked, and none is served publicly, signed or not.
func TestNoChartLinkWithoutSecret(t *testing.T) {
	clock := &facesClock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	s, in := exampleServer(t, clock, func(c *rules.Config) { c.Intake.LinkSecret = rules.Secret{} })
	if l := s.links(&in); l.Chart != "" {
		t.Errorf("chart link %q without a link secret", l.Chart)
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/incidents/"+in.ID+"/chart.png", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("public chart without a link secret: %d, want 404", w.Code)
	}
}
