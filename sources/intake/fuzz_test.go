package intake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The fuzz targets post arbitrary bodies through the real handlers and
// check intake's promises: no panic; a refused request stores nothing;
// whatever is stored passes the same validation again when posted back in
// the documented format. Seeds are in testdata/fuzz/<Name>, built from the
// tests' inputs and the vendors' published examples.

// assertStoredNothing fails when a refused request left anything behind.
func assertStoredNothing(t *testing.T, e *testEnv, w *httptest.ResponseRecorder) {
	t.Helper()
	if ids := e.deploys.ids(); len(ids) != 0 {
		t.Fatalf("status %d, yet stored deploys %q", w.Code, ids)
	}
	if got := e.tickets.all(); len(got) != 0 {
		t.Fatalf("status %d, yet stored tickets %v", w.Code, got)
	}
}

// revalidateDeploys posts every stored deploy back, in the deploys format,
// to a fresh intake: what was accepted once must be accepted again.
func revalidateDeploys(t *testing.T, e *testEnv) {
	t.Helper()
	for _, id := range e.deploys.ids() {
		d, _ := e.deploys.get(id)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal stored deploy: %v", err)
		}
		if w := newEnv(t).post("/api/v1/deploys", string(b)); w.Code != http.StatusCreated {
			t.Fatalf("stored deploy %s is refused when posted back: %d %s", b, w.Code, w.Body)
		}
	}
}

func revalidateTickets(t *testing.T, e *testEnv) {
	t.Helper()
	for _, tk := range e.tickets.all() {
		b, err := json.Marshal(tk)
		if err != nil {
			t.Fatalf("marshal stored ticket: %v", err)
		}
		if w := newEnv(t).post("/api/v1/tickets", string(b)); w.Code != http.StatusOK {
			t.Fatalf("stored ticket %s is refused when posted back: %d %s", b, w.Code, w.Body)
		}
	}
}

// checkOutcome is the promise every intake fuzz target checks: a status in
// stored means the request was taken, and revalidate checks what it stored;
// a 400 or 413 means nothing was stored; anything else is a bug (a signed
// delivery is never a 401).
func checkOutcome(t *testing.T, e *testEnv, w *httptest.ResponseRecorder, revalidate func(*testing.T, *testEnv), stored ...int) {
	t.Helper()
	switch {
	case slices.Contains(stored, w.Code):
		revalidate(t, e)
	case w.Code == http.StatusBadRequest || w.Code == http.StatusRequestEntityTooLarge:
		assertStoredNothing(t, e, w)
	default:
		t.Fatalf("unexpected status %d: %s", w.Code, w.Body)
	}
}

func FuzzDeploys(f *testing.F) {
	f.Add([]byte(depA))
	f.Add([]byte("[" + depA + ",\n" + depB + "]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		w := e.post("/api/v1/deploys", string(body))
		checkOutcome(t, e, w, revalidateDeploys, http.StatusOK, http.StatusCreated)
	})
}

func FuzzTickets(f *testing.F) {
	f.Add([]byte(zt1))
	f.Add([]byte(`{"tickets":[` + zt1 + `,` + zt2 + `]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		w := e.post("/api/v1/tickets", string(body))
		checkOutcome(t, e, w, revalidateTickets, http.StatusOK)
	})
}

// FuzzGitHubWebhook signs each body, so the fuzzer reaches the decoder
// behind the signature, sent as JSON or as GitHub's form encoding.
func FuzzGitHubWebhook(f *testing.F) {
	for _, name := range []string{"deployment_status.payload.json", "deployment_status.gh-pages.payload.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "github", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add([]byte(formOf(string(b))), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, form bool) {
		e := newEnv(t)
		h := ghHeaders("deployment_status", "delivery-1", ghSign(testGitHubSecret, string(body)))
		if form {
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := e.do(http.MethodPost, "/api/v1/webhooks/github", string(body), h)
		checkOutcome(t, e, w, revalidateDeploys, http.StatusOK, http.StatusCreated)
	})
}

func FuzzZendeskWebhook(f *testing.F) {
	f.Add([]byte(zdTrigger))
	f.Add([]byte(`{"type":"zen:event-type:ticket.created","detail":{"id":"35437","created_at":"2026-11-20T16:12:30Z","subject":"Also broken","tags":["aws"],"via":{"channel":"web_service"}}}`))
	stamp := testNow.Add(-30 * time.Second).Format(time.RFC3339)
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		w := e.do(http.MethodPost, "/api/v1/webhooks/zendesk", string(body), zdHeaders(stamp, zdSign(testZendeskSecret, stamp, string(body))))
		checkOutcome(t, e, w, revalidateTickets, http.StatusOK)
		if n := len(e.tickets.all()); w.Code == http.StatusOK && n != 1 {
			t.Fatalf("a webhook stored %d tickets, want 1", n)
		}
	})
}
