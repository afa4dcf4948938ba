package timeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// reader serves one incident and records the span it was asked for.
type reader struct {
	in      escalate.Incident
	events  []escalate.Event
	deploys []correlate.Deploy
	asked   [2]time.Time
}

func (r *reader) Incident(_ context.Context, id string) (escalate.Incident, error) {
	if id != r.in.ID {
		return escalate.Incident{}, fmt.Errorf("incident %q: %w", id, fs.ErrNotExist)
	}
	return r.in, nil
}
func (r *reader) Events(context.Context, string) ([]escalate.Event, error) { return r.events, nil }
func (r *reader) Deploys(_ context.Context, from, to time.Time) ([]correlate.Deploy, error) {
	r.asked = [2]time.Time{from, to}
	return r.deploys, nil
}
func (r *reader) Tickets(context.Context, time.Time, time.Time) ([]correlate.Ticket, error) {
	return nil, nil
}

func TestLoad(t *testing.T) {
	onset := time.Date(2026, 11, 20, 16, 2, 0, 0, time.UTC)
	r := &reader{
		in: escalate.Incident{ID: "inc-1", Service: "edge-router", Status: escalate.StatusResolved, Onset: onset,
			OpenedAt: onset.Add(3 * time.Minute), LastSeen: onset.Add(70 * time.Minute), ResolvedAt: onset.Add(86 * time.Minute)},
		events:  []escalate.Event{{IncidentID: "inc-1", At: onset.Add(3 * time.Minute), Kind: escalate.EventDetected, Text: "detected"}},
		deploys: []correlate.Deploy{{ID: "dep-1", Service: "edge-router", Version: "2", StartedAt: onset}},
	}
	tl, err := Load(context.Background(), r, "inc-1", onset.Add(5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := [2]time.Time{onset.Add(-Before), r.in.ResolvedAt.Add(After)}; r.asked != want {
		t.Errorf("read deploys for %v, want %v: from Before the onset to After the resolve", r.asked, want)
	}
	if !tl.Metrics.KnownTimeToDetect || tl.Metrics.TimeToDetect != 3*time.Minute {
		t.Errorf("time to detect %s (known %v), want 3m", tl.Metrics.TimeToDetect, tl.Metrics.KnownTimeToDetect)
	}
	if _, err := Load(context.Background(), r, "inc-nope", onset); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unknown incident: %v, want fs.ErrNotExist", err)
	}
}
