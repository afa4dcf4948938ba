package listener

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// start serves h on a loopback port with cfg and returns the address.
func start(t *testing.T, h http.Handler, cfg Config) (*Server, string) {
	t.Helper()
	srv, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.srv.Close()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// dial opens a raw connection that the test closes at the end.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends one request on a fresh connection and returns status and body.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// closedByServer reports whether the server closed c (a read ends in EOF or
// a reset rather than the deadline).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func ok(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }

func TestDefaults(t *testing.T) {
	srv, err := New(http.HandlerFunc(ok), Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := srv.srv
	if s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.ReadTimeout != DefaultReadTimeout || s.WriteTimeout != DefaultWriteTimeout ||
		s.IdleTimeout != DefaultIdleTimeout || s.MaxHeaderBytes != DefaultMaxHeaderBytes || srv.conns.max != DefaultMaxConns {
		t.Errorf("defaults not applied: %+v", s)
	}
	srv, err = New(http.HandlerFunc(ok), Config{ReadTimeout: time.Second, MaxConns: 7, MaxHeaderBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if srv.srv.ReadTimeout != time.Second || srv.conns.max != 7 || srv.srv.MaxHeaderBytes != 100 || srv.srv.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("settings not kept: %+v", srv.srv)
	}
}

func TestValidate(t *testing.T) {
	_, err := New(http.HandlerFunc(ok), Config{ReadTimeout: -time.Second, MaxConns: -1})
	if err == nil {
		t.Fatal("negative limits accepted")
	}
	for _, want := range []string{"read_timeout must not be negative, got -1s", "max_connections must not be negative, got -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// Idle connections beyond the cap are shed oldest first, so a request on a
// new connection is answered.
func TestShedsOldestIdle(t *testing.T) {
	srv, addr := start(t, http.HandlerFunc(ok), Config{MaxConns: 3})
	var idle []net.Conn
	for range 3 {
		idle = append(idle, dial(t, addr))
	}
	// The kernel queues connections in order and one loop accepts them,
	// so the probe is accepted after all three.
	if code, body := get(t, addr, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("probe got %d %q", code, body)
	}
	if !closedByServer(idle[0]) {
		t.Error("the oldest idle connection was not shed")
	}
	if _, shed := srv.Conns(); shed != 1 {
		t.Errorf("shed %d connections, want 1", shed)
	}
	// The others were within the cap once the oldest went.
	fmt.Fprintf(idle[2], "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	idle[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(idle[2]), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a connection within the cap was not served: %v", err)
	}
}

// A connection whose handler is working is never shed; a waiting one is.
func TestKeepsWorking(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		fmt.Fprintln(w, "done")
	})
	mux.HandleFunc("/", ok)
	_, addr := start(t, mux, Config{MaxConns: 2})
	busy := dial(t, addr)
	fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	idle := dial(t, addr)
	if code, _ := get(t, addr, "/"); code != http.StatusOK {
		t.Fatalf("probe got %d", code)
	}
	if !closedByServer(idle) {
		t.Error("the idle connection was not shed")
	}
	close(release)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the working connection lost its answer: %v", err)
	}
}

// A client sending its body slowly waits on itself: it is shed before a
// new request, and it holds no slot of its class meanwhile.
func TestSlowBodyShedAndHoldsNoSlot(t *testing.T) {
	class, err := NewClass("hooks", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := start(t, class.Guard(1024, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d", len(b))
	})), Config{MaxConns: 2})
	slow := dial(t, addr)
	fmt.Fprintf(slow, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	// Wait until the server has the slow request's headers and is
	// reading its body: the tracker then counts it as waiting.
	waitFor(t, func() bool {
		srv.conns.mu.Lock()
		defer srv.conns.mu.Unlock()
		for _, e := range srv.conns.conns {
			if e.phase == waiting && e.seq > 1 {
				return true
			}
		}
		return false
	})
	// The class allows one request; the slow one does not count.
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != "3" {
		t.Fatalf("got %d %q, want 200 \"3\"", resp.StatusCode, b)
	}
	// A third connection sheds the slow one, the longest waiting.
	if code, _ := get(t, addr, "/hook"); code != http.StatusOK {
		t.Fatalf("probe got %d", code)
	}
	if !closedByServer(slow) {
		t.Error("the slow-body connection was not shed")
	}
}

// waitFor polls cond until it holds, failing after 5 s. It waits for a
// state the test cannot observe any other way (a server goroutine's
// progress), never for a fixed time.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Slow headers are cut off by ReadHeaderTimeout, and headers beyond
// MaxHeaderBytes get a 431.
func TestHeaderLimits(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(ok), Config{ReadHeaderTimeout: 200 * time.Millisecond, MaxHeaderBytes: 1024})
	slow := dial(t, addr)
	fmt.Fprintf(slow, "GET / HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	if !closedByServer(slow) {
		t.Fatal("a client that never finished its headers was not cut off")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cut off after %s, want about 200ms", d)
	}
	big := dial(t, addr)
	big.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 8<<10))
	resp, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KiB of headers over a 1 KiB limit got %d, want 431", resp.StatusCode)
	}
}

// Two listeners can count into one registry, told apart by name.
func TestMetricsPerListener(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"public", "private"} {
		if _, err := New(http.HandlerFunc(ok), Config{Name: name, Registerer: reg}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	n, err := testutil.GatherAndCount(reg, "culprit_http_connections", "culprit_http_shed_connections_total")
	if err != nil || n != 4 {
		t.Errorf("gathered %d series (%v), want 4", n, err)
	}
	if _, err := New(http.HandlerFunc(ok), Config{Name: "public", Registerer: reg}); err == nil {
		t.Error("a second listener of the same name registered its metrics")
	}
}
