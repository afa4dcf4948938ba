package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HeartbeatConfig configures a Heartbeat.
type HeartbeatConfig struct {
	// URL is pinged after every successful evaluation.
	URL string
	// Method is GET (default) or POST.
	Method string
	// Timeout bounds one request; default 10s.
	Timeout time.Duration
	// Client sends the requests; default a plain http.Client.
	Client *http.Client
	Logger *slog.Logger
	// Registerer gets culprit_heartbeats_total; nil registers nothing.
	Registerer prometheus.Registerer
}

// Heartbeat is culprit's dead man's switch. A paging system that stops
// silently is the worst failure it can have, so after each successful
// evaluation culprit tells a monitor outside (healthchecks.io, Cronitor,
// Dead Man's Snitch) that it is alive; the monitor alerts when the beats
// stop. Beats are sent from Run's goroutine: a slow or failing monitor
// delays and blocks no evaluation, it is logged and counted.
type Heartbeat struct {
	cfg   HeartbeatConfig
	due   chan struct{}
	beats *prometheus.CounterVec
}

// NewHeartbeat checks cfg and builds a Heartbeat.
func NewHeartbeat(cfg HeartbeatConfig) (*Heartbeat, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("heartbeat: URL must be an absolute http(s) URL")
	}
	switch cfg.Method {
	case "":
		cfg.Method = http.MethodGet
	case http.MethodGet, http.MethodPost:
	default:
		return nil, fmt.Errorf("heartbeat: method %q: use GET or POST", cfg.Method)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Heartbeat{cfg: cfg, due: make(chan struct{}, 1),
		beats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "culprit_heartbeats_total",
			Help: "Heartbeat requests after successful evaluations, by result (ok, failed).",
		}, []string{"result"})}
	h.beats.WithLabelValues("ok")
	h.beats.WithLabelValues("failed")
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.beats); err != nil {
			return nil, fmt.Errorf("heartbeat: register metrics: %w", err)
		}
	}
	return h, nil
}

// Beat asks for a heartbeat and returns at once. Beats asked for while one
// is being sent collapse into one more: the monitor needs to hear that
// culprit lives, not how often.
func (h *Heartbeat) Beat() {
	select {
	case h.due <- struct{}{}:
	default:
	}
}

// After wraps an evaluation so that each one that succeeds asks for a
// heartbeat; a failed one does not, so a culprit that cannot read its logs
// goes quiet at the monitor as surely as a dead one.
func (h *Heartbeat) After(eval func(ctx context.Context, at time.Time) error) func(ctx context.Context, at time.Time) error {
	return func(ctx context.Context, at time.Time) error {
		err := eval(ctx, at)
		if err == nil {
			h.Beat()
		}
		return err
	}
}

// Run sends the beats asked for until ctx ends.
func (h *Heartbeat) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.due:
		}
		if err := h.send(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			h.beats.WithLabelValues("failed").Inc()
			h.cfg.Logger.Warn("heartbeat failed", "err", err)
			continue
		}
		h.beats.WithLabelValues("ok").Inc()
	}
}

func (h *Heartbeat) send(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, h.cfg.Method, h.cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("heartbeat: build request: %w", err)
	}
	req.Header.Set("User-Agent", "culprit-heartbeat")
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		// The URL may carry the monitor's secret (a check's UUID): the
		// error names only the host.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("heartbeat to %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("heartbeat to %s: %s", req.URL.Host, resp.Status)
	}
	return nil
}
