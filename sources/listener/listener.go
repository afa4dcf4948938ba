// Package listener is the HTTP server culprit faces the internet with:
// read, write and idle timeouts, a header limit, a cap on connections that
// sheds idle and slow clients rather than refusing new ones, and per-route
// body limits and concurrency (see Class).
//
// The threat it answers is cheap: a client that opens a connection and then
// sends nothing, a header a byte at a time, or a body a byte a second costs
// the attacker almost nothing and used to cost culprit a goroutine and a
// file descriptor for as long as it liked. A plain connection limit
// (netutil.LimitListener) would only move the problem: once the slow
// clients fill it, Accept blocks and /healthz and the webhooks queue behind
// them. Here every connection is either doing work culprit chose to do
// (a handler past its body, bounded by the route's Class) or waiting on the
// client (no request yet, idle between requests, sending a body, or
// draining a finished one). When a new connection would exceed the cap, the
// one that has waited on its client the longest is closed instead. A real
// webhook sends its headers and body in milliseconds, so it is never the
// oldest waiter; an attacker has to out-pace the cap with fresh
// connections to evict it, which the timeouts make pointless to sustain.
package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero fields. They suit webhooks and SaaS image
// fetches, which send small requests quickly, and a browser behind an SSO
// proxy, whose cookies make the headers the largest part of a request.
const (
	// DefaultReadHeaderTimeout bounds the request line and headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds the whole request, body included: 1 MiB
	// at a slow mobile uplink's 100 KB/s takes 10 s.
	DefaultReadTimeout = 15 * time.Second
	// DefaultWriteTimeout bounds a request from the end of its headers to
	// the end of the response: handler time plus writing.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request. Webhook senders reconnect cheaply.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers. An OIDC
	// session cookie and a proxy's forwarded identity fit easily; net/http's
	// own default of 1 MiB let 200 connections take 350 MB.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxConns caps open connections, well under a typical file
	// descriptor limit so that the store and outgoing requests keep theirs.
	DefaultMaxConns = 512
)

// Config sets the server's limits. Zero fields take the defaults above.
type Config struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxConns is the most connections held open at once; beyond it the
	// connection waiting longest on its client is closed.
	MaxConns int
	// Logger receives net/http's own complaints (TLS handshakes, panics)
	// at warn level. Nil means slog.Default().
	Logger *slog.Logger
	// Registerer, if non-nil, gets the connection metrics, labelled
	// listener=Name so that two listeners (public and private) can share
	// one registry. Name defaults to "http".
	Registerer prometheus.Registerer
	Name       string
}

// Validate reports every negative field, naming it.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", d.name, d.v))
		}
	}
	if c.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("max_header_bytes must not be negative, got %d", c.MaxHeaderBytes))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("max_connections must not be negative, got %d", c.MaxConns))
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Name == "" {
		c.Name = "http"
	}
	return c
}

// Server is an http.Server with culprit's limits and connection shedding.
type Server struct {
	srv   *http.Server
	conns *tracker
}

// New builds a server for h. It fails only on a negative limit.
func New(h http.Handler, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("http server: %w", err)
	}
	cfg = cfg.withDefaults()
	t := newTracker(cfg.MaxConns, cfg.Name)
	if cfg.Registerer != nil {
		if err := t.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("http server: metrics: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           t.wrap(h),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnState:         t.connState,
		ConnContext:       t.connContext,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return &Server{srv: srv, conns: t}, nil
}

// Serve accepts connections on ln until Shutdown; like http.Server.Serve it
// returns http.ErrServerClosed after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(&shedListener{Listener: ln, t: s.conns})
}

// Shutdown stops accepting, closes idle connections and waits for active
// ones until ctx ends (http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Conns reports how many connections are open and how many were shed so
// far, for tests and the load benchmark.
func (s *Server) Conns() (open int, shed uint64) {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	return s.conns.live, s.conns.shed
}

// shedListener registers every accepted connection and, past the cap,
// closes the one that has waited on its client the longest.
type shedListener struct {
	net.Listener
	t *tracker
}

func (l *shedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.t.add(c)
	return c, nil
}

// phase is what a connection is doing, as far as shedding cares.
type phase int

const (
	// waiting: on its client (no request yet, idle keep-alive, sending a
	// body, or a finished request being drained). Sheddable.
	waiting phase = iota
	// working: a handler is past reading the body. Never shed: the route's
	// Class bounds how many there are.
	working
)

// conn is one tracked connection.
type conn struct {
	c     net.Conn
	phase phase
	// seq orders the moments connections last started waiting: the
	// smallest has waited longest. A counter rather than a clock, so that
	// the order is exact and needs no time source.
	seq  uint64
	shed bool
}

// tracker knows every open connection's phase.
type tracker struct {
	max  int
	name string // the listener label of the metrics

	mu    sync.Mutex
	conns map[net.Conn]*conn
	seq   uint64
	live  int // open and not shed
	shed  uint64

	shedTotal prometheus.Counter
}

func newTracker(max int, name string) *tracker {
	return &tracker{max: max, name: name, conns: make(map[net.Conn]*conn),
		shedTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "culprit_http_shed_connections_total",
			Help:        "Connections closed because the connection cap was reached and they had waited longest on their client.",
			ConstLabels: prometheus.Labels{"listener": name}})}
}

func (t *tracker) register(reg prometheus.Registerer) error {
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "culprit_http_connections", Help: "Open HTTP connections.",
		ConstLabels: prometheus.Labels{"listener": t.name}},
		func() float64 {
			t.mu.Lock()
			defer t.mu.Unlock()
			return float64(t.live)
		})
	return errors.Join(reg.Register(open), reg.Register(t.shedTotal))
}

// add registers a freshly accepted connection and sheds past the cap.
func (t *tracker) add(c net.Conn) {
	t.mu.Lock()
	t.seq++
	t.conns[c] = &conn{c: c, seq: t.seq}
	t.live++
	var victims []net.Conn
	for t.live > t.max {
		v := t.oldestWaiting()
		if v == nil {
			break
		}
		v.shed = true
		t.live--
		t.shed++
		victims = append(victims, v.c)
	}
	t.mu.Unlock()
	for _, v := range victims {
		t.shedTotal.Inc()
		// The server's goroutine for v sees the error and reports
		// StateClosed, which forgets it.
		_ = v.Close()
	}
}

// oldestWaiting is the sheddable connection that started waiting first, or
// nil when every connection is working. Called with mu held; a linear scan
// of at most the cap's worth, only when the cap is exceeded.
func (t *tracker) oldestWaiting() *conn {
	var best *conn
	for _, e := range t.conns {
		if e.shed || e.phase != waiting {
			continue
		}
		if best == nil || e.seq < best.seq {
			best = e
		}
	}
	return best
}

// set moves c to phase p; a move to waiting restarts its wait.
func (t *tracker) set(c net.Conn, p phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.conns[c]
	if !ok {
		return
	}
	if p == waiting && e.phase != waiting {
		t.seq++
		e.seq = t.seq
	}
	e.phase = p
}

// connState follows net/http's view: a connection that is new or idle
// waits on its client; an active one is working until a guarded route
// says it is reading a body (Class.Guard).
func (t *tracker) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew, http.StateIdle:
		t.set(c, waiting)
	case http.StateActive:
		t.set(c, working)
	case http.StateClosed, http.StateHijacked:
		t.mu.Lock()
		if e, ok := t.conns[c]; ok {
			if !e.shed {
				t.live--
			}
			delete(t.conns, c)
		}
		t.mu.Unlock()
	}
}

type connKey struct{}

// handle lets a handler move its own connection between phases.
type handle struct {
	t *tracker
	c net.Conn
}

func (t *tracker) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, handle{t, c})
}

// wrap marks a connection waiting again once its handler returns: what
// net/http does next (drain an unread body, flush to a slow reader) is the
// client's pace, not culprit's work.
func (t *tracker) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer markPhase(r.Context(), waiting)
		h.ServeHTTP(w, r)
	})
}

// markPhase sets the phase of the request's connection, if it is tracked
// (it is not under httptest or another server).
func markPhase(ctx context.Context, p phase) {
	if h, ok := ctx.Value(connKey{}).(handle); ok {
		h.t.set(h.c, p)
	}
}
