package main

import (
	"context"
	"slices"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// visibleDeploys is what the CI would have reported of deploys by at: the
// deploys that started before it, each with the hosts switched before it
// and its finish only if that came before it too. Replaying history
// through the daemon (the backtest, the end-to-end tests) must not let it
// see a rollout's future.
func visibleDeploys(all []correlate.Deploy, at time.Time) []correlate.Deploy {
	var out []correlate.Deploy
	for _, d := range all {
		if !d.StartedAt.Before(at) {
			continue
		}
		sofar := d
		sofar.Hosts = nil
		for _, h := range d.Hosts {
			if h.At.Before(at) {
				sofar.Hosts = append(sofar.Hosts, h)
			}
		}
		if !d.FinishedAt.Before(at) {
			sofar.FinishedAt = time.Time{}
		}
		out = append(out, sofar)
	}
	return out
}

// intakeStore is where replayed deploys and tickets land, as intake and
// the Zendesk poller would have stored them.
type intakeStore interface {
	AddDeploy(ctx context.Context, d correlate.Deploy) (created bool, err error)
	AddTickets(ctx context.Context, ts []correlate.Ticket) error
}

// intakeReplay hands a store the deploys and tickets of recorded history
// as time passes: each deploy as far as it had gone (hosts switched, the
// finish reported), each ticket once created. Backtest and the demo's
// daemon both replay through it, so they see what the daemon would have.
type intakeReplay struct {
	deploys []correlate.Deploy
	tickets []correlate.Ticket // by creation, not yet handed over
	seen    map[string]deploySeen
}

// deploySeen is how much of a deploy the store was last given, so an
// unchanged deploy is not written again at every tick.
type deploySeen struct {
	hosts    int
	finished time.Time
}

func newIntakeReplay(deploys []correlate.Deploy, tickets []correlate.Ticket) *intakeReplay {
	tickets = slices.Clone(tickets)
	slices.SortStableFunc(tickets, func(a, b correlate.Ticket) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return &intakeReplay{deploys: deploys, tickets: tickets, seen: map[string]deploySeen{}}
}

// until stores what had arrived before at and not been stored yet.
func (r *intakeReplay) until(ctx context.Context, st intakeStore, at time.Time) error {
	for _, d := range visibleDeploys(r.deploys, at) {
		if s := (deploySeen{len(d.Hosts), d.FinishedAt}); r.seen[d.ID] != s {
			if _, err := st.AddDeploy(ctx, d); err != nil {
				return err
			}
			r.seen[d.ID] = s
		}
	}
	n := 0
	for n < len(r.tickets) && r.tickets[n].CreatedAt.Before(at) {
		n++
	}
	if n > 0 {
		if err := st.AddTickets(ctx, r.tickets[:n]); err != nil {
			return err
		}
		r.tickets = r.tickets[n:]
	}
	return nil
}
