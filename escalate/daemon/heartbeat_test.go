package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// monitor is a healthchecks.io stand-in: it records each ping's method
// and answers with status.
type monitor struct {
	pings  chan string
	status int
	hold   chan struct{} // when set, answers wait for it
	// entered gets a value as each request arrives, if set.
	entered chan struct{}
}

func (m *monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.entered != nil {
		m.entered <- struct{}{}
	}
	if m.hold != nil {
		<-m.hold
	}
	m.pings <- r.Method + " " + r.URL.Path
	w.WriteHeader(m.status)
}

func startHeartbeat(t *testing.T, m *monitor, method string) (*Heartbeat, *prometheus.Registry) {
	t.Helper()
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	h, err := NewHeartbeat(HeartbeatConfig{URL: srv.URL + "/ping/0f1e", Method: method, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, reg
}

func waitPing(t *testing.T, m *monitor) string {
	t.Helper()
	select {
	case p := <-m.pings:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat within 10s")
		return ""
	}
}

// waitCount polls a counter until it reaches want, failing after 10s.
func waitCount(t *testing.T, h *Heartbeat, result string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(h.beats.WithLabelValues(result)) < want {
		if time.Now().After(deadline) {
			t.Fatalf("culprit_heartbeats_total{result=%q} = %v after 10s, want %v", result, testutil.ToFloat64(h.beats.WithLabelValues(result)), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHeartbeatFollowsOnlySuccessfulEvaluations(t *testing.T) {
	m := &monitor{pings: make(chan string, 10), status: http.StatusOK}
	h, _ := startHeartbeat(t, m, "POST")
	failing := h.After(func(context.Context, time.Time) error { return errors.New("elasticsearch unreachable") })
	ok := h.After(func(context.Context, time.Time) error { return nil })
	ctx := context.Background()
	if err := failing(ctx, time.Time{}); err == nil {
		t.Fatal("the wrapper hid the evaluation's error")
	}
	if err := ok(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := waitPing(t, m); got != "POST /ping/0f1e" {
		t.Fatalf("ping %q, want POST /ping/0f1e", got)
	}
	waitCount(t, h, "ok", 1)
	// Only the successful evaluation pinged.
	select {
	case p := <-m.pings:
		t.Fatalf("a second ping %q after one successful evaluation", p)
	default:
	}
	if got := testutil.ToFloat64(h.beats.WithLabelValues("failed")); got != 0 {
		t.Errorf("failed beats %v, want 0", got)
	}
}

// A monitor that hangs or fails never holds up an evaluation; its
// failures are counted.
func TestHeartbeatNeverBlocksEvaluation(t *testing.T) {
	m := &monitor{pings: make(chan string, 10), status: http.StatusServiceUnavailable, hold: make(chan struct{}),
		entered: make(chan struct{}, 10)}
	h, _ := startHeartbeat(t, m, "")
	eval := h.After(func(context.Context, time.Time) error { return nil })
	if err := eval(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	<-m.entered
	// The first beat hangs at the monitor; three more evaluations still
	// return at once (a blocking Beat would hang this test).
	for range 3 {
		if err := eval(context.Background(), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	close(m.hold)
	if got := waitPing(t, m); !strings.HasPrefix(got, "GET ") {
		t.Fatalf("ping %q, want the default GET", got)
	}
	// The beats asked for while one was in flight collapse into one more.
	waitPing(t, m)
	waitCount(t, h, "failed", 2)
}

func TestNewHeartbeatRefusesBadConfig(t *testing.T) {
	for _, c := range []HeartbeatConfig{{URL: "hc-ping.com/x"}, {URL: "https://hc-ping.com/x", Method: "PUT"}} {
		if _, err := NewHeartbeat(c); err == nil {
			t.Errorf("NewHeartbeat(%+v) accepted", c)
		}
	}
}
