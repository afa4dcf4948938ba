package timeline

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// Reader is what Load reads: the daemon's store satisfies it.
type Reader interface {
	Incident(ctx context.Context, id string) (escalate.Incident, error)
	Events(ctx context.Context, incidentID string) ([]escalate.Event, error)
	Deploys(ctx context.Context, from, to time.Time) ([]correlate.Deploy, error)
	Tickets(ctx context.Context, from, to time.Time) ([]correlate.Ticket, error)
}

// Before and After widen the span read around an incident: deploys that
// started up to two hours before the onset can be its cause, and an hour
// after it ends catches a late rollback or the last tickets.
const (
	Before = 2 * time.Hour
	After  = time.Hour
)

// Span is the time range whose deploys and tickets belong on an incident's
// timeline: from Before its onset to After it was resolved (or last seen,
// while open; every evaluation that sees it moves that on).
func Span(in escalate.Incident, now time.Time) (from, to time.Time) {
	end := cmp.Or(in.ResolvedAt, in.LastSeen, now)
	start := cmp.Or(in.Onset, in.OpenedAt, now)
	return start.Add(-Before), end.Add(After)
}

// Load reads one incident and what surrounds it, and builds its timeline.
// An unknown id gives the Reader's error (fs.ErrNotExist for the store).
func Load(ctx context.Context, r Reader, id string, now time.Time) (Timeline, error) {
	t, _, err := load(ctx, r, id, now)
	return t, err
}

// ReviewStore is what LoadReview reads.
type ReviewStore interface {
	Reader
	ReviewReader
}

// LoadReview is Load with the review's sections (AddReview).
func LoadReview(ctx context.Context, r ReviewStore, id string, now time.Time, o ReviewOptions) (Timeline, error) {
	t, tickets, err := load(ctx, r, id, now)
	if err != nil {
		return t, err
	}
	if err := t.AddReview(ctx, r, tickets, o); err != nil {
		return Timeline{}, err
	}
	return t, nil
}

func load(ctx context.Context, r Reader, id string, now time.Time) (Timeline, []correlate.Ticket, error) {
	in, err := r.Incident(ctx, id)
	if err != nil {
		return Timeline{}, nil, err
	}
	events, err := r.Events(ctx, id)
	if err != nil {
		return Timeline{}, nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	from, to := Span(in, now)
	deploys, err := r.Deploys(ctx, from, to)
	if err != nil {
		return Timeline{}, nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	tickets, err := r.Tickets(ctx, from, to)
	if err != nil {
		return Timeline{}, nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	return Build(in, events, deploys, tickets), tickets, nil
}
