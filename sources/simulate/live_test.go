package simulate

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// paceCall is one Pace call and how many documents had been emitted then.
type paceCall struct {
	t       time.Time
	emitted int
}

// TestPace checks the hook's contract, which a live feed and the daemon's
// end-to-end test rely on: one call per minute start and one at the end,
// and at each call exactly the documents before it have been emitted.
func TestPace(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		calls int // minute starts plus the final call
	}{
		{"whole minutes", Config{Seed: 3, Duration: 30 * time.Minute, PeakPerMin: 200, Shape: ShapeFriday, Onset: 10 * time.Minute}, 31},
		{"partial last minute", Config{Seed: 4, Duration: 20*time.Minute + 30*time.Second, Onset: 5 * time.Minute, PeakPerMin: 200}, 22},
		{"start between minutes", Config{Seed: 5, Start: DefaultStart.Add(30*time.Second + 250*time.Millisecond), Duration: 15 * time.Minute, Onset: 5 * time.Minute, PeakPerMin: 300}, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var times []time.Time
			var calls []paceCall
			paced := tc.cfg
			paced.Pace = func(_ context.Context, at time.Time) error {
				calls = append(calls, paceCall{at, len(times)})
				return nil
			}
			hPaced := sha256.New()
			run := generate(t, paced, func(d *Doc) {
				times = append(times, d.Time)
				hPaced.Write(d.AppendJSON(nil))
			})
			if len(calls) != tc.calls {
				t.Fatalf("%d Pace calls, want %d", len(calls), tc.calls)
			}
			start := run.Config.Start
			end := start.Add(run.Config.Duration)
			for i, c := range calls {
				want := start.Add(time.Duration(i) * time.Minute)
				if i == len(calls)-1 {
					want = end
				}
				if !c.t.Equal(want) {
					t.Errorf("call %d: Pace(%s), want Pace(%s)", i, c.t.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
				}
				if c.emitted > 0 && !times[c.emitted-1].Before(c.t) {
					t.Errorf("call %d at %s: document at %s already emitted", i, c.t, times[c.emitted-1])
				}
				if c.emitted < len(times) && times[c.emitted].Before(c.t) {
					t.Errorf("call %d at %s: document at %s not emitted yet", i, c.t, times[c.emitted])
				}
			}
			if last := calls[len(calls)-1]; last.emitted != run.Docs || run.Docs != len(times) || run.Docs == 0 {
				t.Errorf("final call saw %d documents; run has %d, emit saw %d", last.emitted, run.Docs, len(times))
			}

			// Pacing must not change a single byte of the run.
			hPlain := sha256.New()
			plain := generate(t, tc.cfg, func(d *Doc) { hPlain.Write(d.AppendJSON(nil)) })
			if !slices.Equal(hPaced.Sum(nil), hPlain.Sum(nil)) || !reflect.DeepEqual(plain.Tickets, run.Tickets) || !reflect.DeepEqual(plain.Deploys, run.Deploys) {
				t.Error("a paced run differs from the unpaced one")
			}
		})
	}
}

func TestPaceStops(t *testing.T) {
	stop := errors.New("stop")
	tests := []struct {
		name    string
		pace    func(ctx context.Context, cancel func(), at time.Time) error
		wantErr error
	}{
		{"error", func(_ context.Context, _ func(), at time.Time) error {
			if at.Equal(DefaultStart.Add(3 * time.Minute)) {
				return stop
			}
			return nil
		}, stop},
		{"cancelled context", func(_ context.Context, cancel func(), at time.Time) error {
			if at.Equal(DefaultStart.Add(3 * time.Minute)) {
				cancel()
			}
			return nil
		}, context.Canceled},
		{"pace honours the context", func(ctx context.Context, cancel func(), at time.Time) error {
			if at.Equal(DefaultStart.Add(3 * time.Minute)) {
				cancel()
				return ctx.Err()
			}
			return nil
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var last time.Time
			cfg := Config{Seed: 1, Duration: 20 * time.Minute, Onset: 10 * time.Minute, PeakPerMin: 100}
			cfg.Pace = func(ctx context.Context, at time.Time) error { return tc.pace(ctx, cancel, at) }
			_, err := Generate(ctx, cfg, func(d *Doc) error {
				last = d.Time
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if lim := DefaultStart.Add(3 * time.Minute); !last.Before(lim) || last.Before(lim.Add(-time.Minute)) {
				t.Errorf("last document at %s, want in the minute before %s", last, lim)
			}
		})
	}
}

// replay rebuilds deploy records from events as an intake API would.
func replay(t *testing.T, evs []Event) ([]correlate.Deploy, []correlate.Ticket) {
	t.Helper()
	var deploys []correlate.Deploy
	var tickets []correlate.Ticket
	index := map[string]int{}
	for i, ev := range evs {
		if i > 0 && ev.At.Before(evs[i-1].At) {
			t.Errorf("event %d at %s comes after one at %s", i, ev.At, evs[i-1].At)
		}
		switch ev.Kind {
		case DeployStarted:
			d := *ev.Deploy
			if !d.FinishedAt.IsZero() {
				t.Errorf("deploy %s is finished when it starts", d.ID)
			}
			for _, h := range d.Hosts {
				if h.At.After(ev.At) {
					t.Errorf("deploy %s: host %s at %s announced at its start %s", d.ID, h.Name, h.At, ev.At)
				}
			}
			d.Hosts = slices.Clone(d.Hosts)
			index[d.ID] = len(deploys)
			deploys = append(deploys, d)
		case DeployProgress:
			k, ok := index[ev.DeployID]
			if !ok {
				t.Fatalf("progress of deploy %s before it started", ev.DeployID)
			}
			for _, h := range ev.Hosts {
				if !h.At.Equal(ev.At) {
					t.Errorf("deploy %s: host %s at %s reported at %s", ev.DeployID, h.Name, h.At, ev.At)
				}
			}
			deploys[k].Hosts = append(deploys[k].Hosts, ev.Hosts...)
			if !ev.FinishedAt.IsZero() {
				deploys[k].FinishedAt = ev.FinishedAt
			}
		case TicketCreated:
			if !ev.Ticket.CreatedAt.Equal(ev.At) {
				t.Errorf("ticket %d created at %s published at %s", ev.Ticket.ID, ev.Ticket.CreatedAt, ev.At)
			}
			tickets = append(tickets, *ev.Ticket)
		default:
			t.Errorf("event %d: unknown kind %d", i, ev.Kind)
		}
	}
	return deploys, tickets
}

// TestEvents replays a run's events and checks they rebuild its deploys and
// tickets, cut at the end of the run.
func TestEvents(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		// mustCut says the incident's rollout outlives the run, so the
		// cut at the end is exercised.
		mustCut bool
	}{
		{"friday with an early onset", Config{Seed: 42, Shape: ShapeFriday, Duration: 2 * time.Hour, Onset: 15 * time.Minute, PeakPerMin: 300}, false},
		{"canary", Config{Seed: 7, Shape: ShapeCanary, Duration: 3 * time.Hour, Onset: time.Hour, PeakPerMin: 300}, false},
		{"rollout cut by the end", Config{Seed: 42, Shape: ShapeFriday, Duration: 70 * time.Minute, Onset: 60 * time.Minute, PeakPerMin: 300}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := generate(t, tc.cfg, func(*Doc) {})
			evs := Events(run)
			deploys, tickets := replay(t, evs)
			end := run.Config.Start.Add(run.Config.Duration)
			var want []correlate.Deploy
			cut := false
			for _, d := range run.Deploys {
				if !d.StartedAt.Before(end) {
					continue
				}
				all := len(d.Hosts)
				d.Hosts = slices.DeleteFunc(slices.Clone(d.Hosts), func(h correlate.HostRollout) bool { return !h.At.Before(end) })
				if !d.FinishedAt.Before(end) || len(d.Hosts) < all {
					d.FinishedAt = time.Time{}
					cut = true
				}
				want = append(want, d)
			}
			if tc.mustCut && !cut {
				t.Error("no rollout outlives the run: the cut at the end is not exercised")
			}
			if !reflect.DeepEqual(deploys, want) {
				a, _ := json.Marshal(deploys)
				b, _ := json.Marshal(want)
				t.Errorf("replayed deploys differ:\ngot  %s\nwant %s", a, b)
			}
			if !reflect.DeepEqual(tickets, run.Tickets) || len(tickets) == 0 {
				t.Errorf("replayed %d tickets, run has %d", len(tickets), len(run.Tickets))
			}
		})
	}
}

func TestMarshalTicket(t *testing.T) {
	run := generate(t, Config{Seed: 42, Shape: ShapeFriday, Duration: 2 * time.Hour, Onset: 30 * time.Minute, PeakPerMin: 300}, func(*Doc) {})
	page, err := MarshalTickets(run.Tickets)
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Tickets []json.RawMessage }
	if err := json.Unmarshal(page, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Tickets) != len(run.Tickets) || len(p.Tickets) == 0 {
		t.Fatalf("%d tickets in the page, %d in the run", len(p.Tickets), len(run.Tickets))
	}
	for i, tk := range run.Tickets {
		one, err := MarshalTicket(tk)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(one, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(p.Tickets[i], &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("ticket %d: %s, page has %s", tk.ID, one, p.Tickets[i])
		}
	}
}
