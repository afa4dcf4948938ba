package listener

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGuardBodyLimit(t *testing.T) {
	class, err := NewClass("slack", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := class.Guard(16, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		fmt.Fprintf(w, "%s", b)
	}))
	for _, tc := range []struct {
		name    string
		body    string
		chunked bool
		code    int
	}{
		{"at the limit", strings.Repeat("a", 16), false, http.StatusOK},
		{"declared too long", strings.Repeat("a", 17), false, http.StatusRequestEntityTooLarge},
		{"chunked too long", strings.Repeat("a", 17), true, http.StatusRequestEntityTooLarge},
		{"chunked within", "abc", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/slack/commands", strings.NewReader(tc.body))
			if tc.chunked {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("got %d, want %d", w.Code, tc.code)
			}
			if tc.code == http.StatusOK && w.Body.String() != tc.body {
				t.Errorf("handler read %q, want %q", w.Body, tc.body)
			}
			if tc.code == http.StatusRequestEntityTooLarge && !strings.Contains(w.Body.String(), "POST /slack/commands exceeds 16 bytes") {
				t.Errorf("413 does not name the path and limit: %q", w.Body)
			}
		})
	}
}

func TestGuardCapsAtMaxBody(t *testing.T) {
	class, _ := NewClass("intake", 0, nil)
	h := class.Guard(10*MaxBody, http.HandlerFunc(ok))
	r := httptest.NewRequest("POST", "/api/v1/deploys", strings.NewReader(strings.Repeat("a", MaxBody+1)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over MaxBody got %d", w.Code)
	}
}

// A full class answers 503 with Retry-After at once; a slot freed is
// usable again.
func TestGuardConcurrency(t *testing.T) {
	busy := BusyCounter()
	class, err := NewClass("charts", 1, busy)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := class.Guard(0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-release
		}
		fmt.Fprintln(w, "ok")
	}))
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/block", nil))
		done <- w.Code
	}()
	<-entered
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/other", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Errorf("full class got %d Retry-After %q, want 503 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	if n := testutil.ToFloat64(busy.WithLabelValues("charts")); n != 1 {
		t.Errorf("busy counter %v, want 1", n)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("the blocked request got %d", code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/other", nil))
	if w.Code != http.StatusOK {
		t.Errorf("after release got %d", w.Code)
	}
}

func TestNewClassNegative(t *testing.T) {
	if _, err := NewClass("github", -1, nil); err == nil || !strings.Contains(err.Error(), "concurrency of github must not be negative") {
		t.Errorf("got %v", err)
	}
}
