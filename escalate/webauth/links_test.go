package webauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestSignedLinkWorksUntilItExpires(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	s, err := NewSigner(testSecret, time.Hour, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	h := s.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	link := s.Sign("/incidents/inc-1/chart.png")
	get := func(target string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		return w.Code
	}
	for _, step := range []struct {
		name    string
		advance time.Duration
		want    int
	}{
		{"fresh", 0, http.StatusOK},
		{"a second before expiry", time.Hour - time.Second, http.StatusOK},
		{"at expiry", time.Second, http.StatusForbidden},
		{"a day later", 24 * time.Hour, http.StatusForbidden},
	} {
		c.t = c.t.Add(step.advance)
		if got := get(link); got != step.want {
			t.Errorf("%s: %d, want %d", step.name, got, step.want)
		}
	}
	if served != 2 {
		t.Errorf("handler ran %d times, want 2: a refused link must render nothing", served)
	}
}

func TestSignedLinkRefusals(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	s, _ := NewSigner(testSecret, time.Hour, c.Now)
	other, _ := NewSigner([]byte("another secret, also 32 bytes long"), time.Hour, c.Now)
	link := s.Sign("/incidents/inc-1/chart.png")
	path, query, _ := strings.Cut(link, "?")
	later, _ := NewSigner(testSecret, 48*time.Hour, c.Now)
	longer := later.Sign("/incidents/inc-1/chart.png")
	_, longerQuery, _ := strings.Cut(longer, "?")
	exp := strings.Split(longerQuery, "&")[0] // exp=… comes first: url.Values sorts
	sig := strings.Split(query, "&")[1]
	for _, tc := range []struct {
		name, target string
		want         int
	}{
		{"unsigned", path, http.StatusNotFound},
		{"another incident", "/incidents/inc-2/chart.png?" + query, http.StatusForbidden},
		{"another file", "/incidents/inc-1/timeline.json?" + query, http.StatusForbidden},
		{"expiry pushed out", path + "?" + exp + "&" + sig, http.StatusForbidden},
		{"another secret", other.Sign(path), http.StatusForbidden},
		{"signature only", path + "?" + sig, http.StatusForbidden},
		{"two signatures", link + "&" + sig, http.StatusForbidden},
		{"not base64", path + "?exp=1&sig=%21%21", http.StatusForbidden},
		{"expiry not a number", path + "?exp=soon&" + sig, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := s.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Error("handler ran for a refused link")
			}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.target, nil))
			if w.Code != tc.want {
				t.Errorf("%s: %d, want %d", tc.target, w.Code, tc.want)
			}
		})
	}
}

func TestNewSignerRefusesWeakSettings(t *testing.T) {
	if _, err := NewSigner([]byte("short"), time.Hour, nil); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
	if _, err := NewSigner(testSecret, 0, nil); err == nil {
		t.Error("a zero ttl was accepted")
	}
}
