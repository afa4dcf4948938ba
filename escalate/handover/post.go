package handover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/culprithq/culprit/escalate"
)

// Shift is one shift of the rota: at each time Start gives, it takes over
// and its Channel gets the digest.
type Shift struct {
	Name, Channel string
	// Start is the shift's start schedule; robfig/cron's Schedule
	// satisfies it.
	Start interface{ Next(time.Time) time.Time }
}

// Store is what posting needs beyond Reader: a cursor per shift, and a
// queue that takes each boundary's digest once.
type Store interface {
	Reader
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, value string) error
	QueueHandover(ctx context.Context, m escalate.Message, events []escalate.Event) (bool, error)
}

// Config is what a Poster needs.
type Config struct {
	Shifts []Shift
	Store  Store
	// Options shape every digest (links, customer names).
	Options Options
	// Queued is called after a digest is queued, to wake the outbox.
	Queued func()
	Logger *slog.Logger
}

// Poster queues a handover digest at each shift boundary.
type Poster struct {
	cfg Config
}

// New checks cfg.
func New(cfg Config) (*Poster, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("no store"))
	}
	for i, s := range cfg.Shifts {
		if s.Name == "" || s.Channel == "" || s.Start == nil {
			errs = append(errs, fmt.Errorf("shift %d (%q): name, channel and start are required", i, s.Name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("handover: %w", errors.Join(errs...))
	}
	if cfg.Queued == nil {
		cfg.Queued = func() {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poster{cfg: cfg}, nil
}

// maxCatchUp bounds how far back boundaries are looked for after culprit
// was down, and how far back a shift's previous start is looked for; a
// rota repeats at least weekly.
const maxCatchUp = 8 * 24 * time.Hour

func cursorName(shift string) string { return "handover/" + shift }

// Run queues the digest of the latest boundary of each shift passed since
// the last Run (or, the first time, since now: a new rota does not post
// its past). Older boundaries missed while culprit was down are skipped:
// only the shift now on duty needs its handover.
func (p *Poster) Run(ctx context.Context, now time.Time) error {
	var errs []error
	for _, sh := range p.cfg.Shifts {
		if err := p.runShift(ctx, sh, now); err != nil {
			errs = append(errs, fmt.Errorf("handover to %s: %w", sh.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Poster) runShift(ctx context.Context, sh Shift, now time.Time) error {
	st := p.cfg.Store
	v, err := st.Cursor(ctx, cursorName(sh.Name))
	if err != nil {
		return err
	}
	if v == "" {
		return st.SetCursor(ctx, cursorName(sh.Name), now.UTC().Format(time.RFC3339Nano))
	}
	last, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("cursor %s is %q, not a time: %w", cursorName(sh.Name), v, err)
	}
	last = later(last, now.Add(-maxCatchUp))
	var at time.Time
	for n := sh.Start.Next(last); !n.IsZero() && !n.After(now); n = sh.Start.Next(n) {
		at = n
	}
	if at.IsZero() {
		return nil
	}
	if err := p.post(ctx, sh, at, now); err != nil {
		return err
	}
	return st.SetCursor(ctx, cursorName(sh.Name), at.UTC().Format(time.RFC3339Nano))
}

// post builds and queues the digest of boundary at for sh.
func (p *Poster) post(ctx context.Context, sh Shift, at, now time.Time) error {
	since, prev := p.previous(at)
	h, err := Build(ctx, p.cfg.Store, since, at, p.cfg.Options)
	if err != nil {
		return err
	}
	h.Shift, h.Previous, h.Channel = sh.Name, prev, sh.Channel
	body, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode digest: %w", err)
	}
	key := "handover/" + sh.Name + "/" + at.UTC().Format(time.RFC3339)
	m := escalate.Message{Channel: escalate.ChannelSlack, Action: escalate.HandoverAction, Key: key, Body: body,
		CreatedAt: now, NextAt: now}
	var events []escalate.Event
	text := fmt.Sprintf("handed over to %s (%s) at %s", sh.Name, sh.Channel, Stamp(at))
	if prev != "" && prev != sh.Name {
		text = fmt.Sprintf("handed over from %s to %s (%s) at %s", prev, sh.Name, sh.Channel, Stamp(at))
	}
	for _, list := range [][]escalate.HandoverIncident{h.Open, h.Resolved} {
		for _, in := range list {
			events = append(events, escalate.Event{IncidentID: in.ID, At: at, Kind: escalate.EventHandover,
				Text: text + ": " + Status(in), Actor: sh.Name})
		}
	}
	queued, err := p.cfg.Store.QueueHandover(ctx, m, events)
	if err != nil {
		return err
	}
	if queued {
		p.cfg.Logger.Info("handover queued", "shift", sh.Name, "boundary", at, "open", len(h.Open),
			"resolved", len(h.Resolved), "pages", len(h.Pages), "waiting", len(h.Waiting))
		p.cfg.Queued()
	}
	return nil
}

// previous is when the shift handing over at began: the latest start of
// any shift before at, and that shift's name. With no start found within
// maxCatchUp, the digest covers the day before.
func (p *Poster) previous(at time.Time) (time.Time, string) {
	var since time.Time
	var name string
	for _, sh := range p.cfg.Shifts {
		var last time.Time
		for n := sh.Start.Next(at.Add(-maxCatchUp)); !n.IsZero() && n.Before(at); n = sh.Start.Next(n) {
			last = n
		}
		if !last.IsZero() && last.After(since) {
			since, name = last, sh.Name
		}
	}
	if since.IsZero() {
		return at.Add(-24 * time.Hour), ""
	}
	return since, name
}
