package simulate

import (
	"slices"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// EventKind is what happened outside the logs at an Event's moment.
type EventKind int

// The kinds of event a live feed publishes, in the order a deploy system
// and a help desk would report them.
const (
	// DeployStarted is a rollout beginning: the deploy record as the
	// deploy system knows it then.
	DeployStarted EventKind = iota + 1
	// DeployProgress is one or more hosts of a started deploy switching to
	// its version, or the rollout finishing.
	DeployProgress
	// TicketCreated is a support ticket being filed.
	TicketCreated
)

// String names the kind for logs.
func (k EventKind) String() string {
	switch k {
	case DeployStarted:
		return "deploy started"
	case DeployProgress:
		return "deploy progress"
	case TicketCreated:
		return "ticket created"
	}
	return "unknown event"
}

// Event is a deploy or ticket update at the simulated moment it becomes
// known, so that a live feed can hand a daemon the same facts the files
// of a finished run hold, but only as they happen. Replaying a run's
// events in order rebuilds its Deploys and Tickets exactly, except for
// updates at or after the end of the run, which never happen.
type Event struct {
	At   time.Time
	Kind EventKind
	// Deploy is set for DeployStarted: the deploy without FinishedAt, and
	// with only the hosts that switched at or before At.
	Deploy *correlate.Deploy
	// DeployID is set for DeployStarted and DeployProgress.
	DeployID string
	// Hosts are, for DeployProgress, the hosts that switched at At; empty
	// on the event that only finishes the rollout.
	Hosts []correlate.HostRollout
	// FinishedAt is set, to At, on the DeployProgress event that ends the
	// rollout.
	FinishedAt time.Time
	// Ticket is set for TicketCreated; At is its CreatedAt.
	Ticket *correlate.Ticket
}

// Events lists the run's deploy and ticket updates in time order. Events
// at one instant keep a causal order: a deploy starts before its hosts
// switch, and deploys come in the order they were planned. Deploys that
// started before the run (decoys placed ahead of an early onset) have
// events before Config.Start: a live feed publishes those at once.
func Events(run *Run) []Event {
	end := run.Config.Start.Add(run.Config.Duration)
	var out []Event
	for i := range run.Deploys {
		d := &run.Deploys[i]
		if !d.StartedAt.Before(end) {
			continue
		}
		start := *d
		start.FinishedAt = time.Time{}
		start.Hosts = nil
		k := 0
		for k < len(d.Hosts) && !d.Hosts[k].At.After(d.StartedAt) {
			k++
		}
		if k > 0 {
			start.Hosts = slices.Clone(d.Hosts[:k])
		}
		out = append(out, Event{At: d.StartedAt, Kind: DeployStarted, Deploy: &start, DeployID: d.ID})
		for k < len(d.Hosts) && d.Hosts[k].At.Before(end) {
			j := k + 1
			for j < len(d.Hosts) && d.Hosts[j].At.Equal(d.Hosts[k].At) {
				j++
			}
			out = append(out, Event{At: d.Hosts[k].At, Kind: DeployProgress, DeployID: d.ID, Hosts: slices.Clone(d.Hosts[k:j])})
			k = j
		}
		if !d.FinishedAt.IsZero() && d.FinishedAt.Before(end) && k == len(d.Hosts) {
			out = append(out, Event{At: d.FinishedAt, Kind: DeployProgress, DeployID: d.ID, Hosts: []correlate.HostRollout{}, FinishedAt: d.FinishedAt})
		}
	}
	for i := range run.Tickets {
		t := run.Tickets[i]
		if t.CreatedAt.Before(end) {
			out = append(out, Event{At: t.CreatedAt, Kind: TicketCreated, Ticket: &t})
		}
	}
	// Stable: per deploy, start, progress and finish were appended in
	// order; deploys are in start order and tickets in creation order.
	slices.SortStableFunc(out, func(a, b Event) int { return a.At.Compare(b.At) })
	return out
}
