package listener

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// blockingClass is a class of one slot whose handler holds /block until
// release closes, and answers anything else at once.
func blockingClass(t *testing.T) (c *Class, h http.Handler, entered, release chan struct{}) {
	t.Helper()
	c, err := NewClass("charts", 1, BusyCounter())
	if err != nil {
		t.Fatal(err)
	}
	entered, release = make(chan struct{}), make(chan struct{})
	h = c.Guard(0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-release
		}
		fmt.Fprintln(w, "ok")
	}))
	return c, h, entered, release
}

// serve runs one request in the background and sends its status.
func serve(h http.Handler, path string) <-chan *httptest.ResponseRecorder {
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		done <- w
	}()
	return done
}

// A request finding its class full waits its turn in the queue.
func TestGuardQueues(t *testing.T) {
	c, h, entered, release := blockingClass(t)
	first := serve(h, "/block")
	<-entered
	second := serve(h, "/other")
	waitFor(t, func() bool { return len(c.queue) == 1 })
	close(release)
	for _, done := range []<-chan *httptest.ResponseRecorder{first, second} {
		if w := <-done; w.Code != http.StatusOK {
			t.Errorf("got %d, want 200", w.Code)
		}
	}
}

// A full queue answers 503 with Retry-After at once, and so does a wait
// that runs out.
func TestGuardBusy(t *testing.T) {
	c, h, entered, release := blockingClass(t)
	c.maxWait = time.Hour
	first := serve(h, "/block")
	<-entered
	var waiting []<-chan *httptest.ResponseRecorder
	for range QueueFactor {
		waiting = append(waiting, serve(h, "/other"))
	}
	waitFor(t, func() bool { return len(c.queue) == QueueFactor })
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/other", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Errorf("a request past the queue got %d Retry-After %q, want 503 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), "too many charts requests") {
		t.Errorf("503 does not name the class: %q", w.Body)
	}
	if n := testutil.ToFloat64(c.busy); n != 1 {
		t.Errorf("busy counter %v, want 1", n)
	}
	close(release)
	for _, done := range append(waiting, first) {
		if w := <-done; w.Code != http.StatusOK {
			t.Errorf("a queued request got %d", w.Code)
		}
	}

	c, h, entered, release = blockingClass(t)
	defer close(release)
	c.maxWait = 10 * time.Millisecond
	serve(h, "/block")
	<-entered
	if w := <-serve(h, "/other"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("a request whose wait ran out got %d, want 503", w.Code)
	}
}

func TestNewClassNegative(t *testing.T) {
	if _, err := NewClass("github", -1, nil); err == nil || !strings.Contains(err.Error(), "concurrency of github must not be negative") {
		t.Errorf("got %v", err)
	}
}
