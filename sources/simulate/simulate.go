// Package simulate generates a hosting company's fleet traffic as ECS request
// logs, with deploys, support tickets and one injected incident whose ground
// truth is known exactly.
//
// It exists because culprit's claims ("names the deploy", "finds the new
// error class a 1% threshold misses", "does not page for one customer") can
// only be tested against data where the answer is known, and real incident
// data is neither shareable nor labelled. The background is deliberately
// unkind to naive detectors: traffic is heavy-tailed across customers and
// diurnal, background errors come in bursts, and harmless deploys land near
// every incident.
//
// Everything is derived from Config.Seed through independent random streams,
// so a run is byte-for-byte reproducible, and the background traffic of a
// seed is the same whatever incident is injected into it: only the incident's
// own documents (and, for a traffic surge, the surging requests) differ.
//
// Documents are produced minute by minute in time order and never held for
// the whole run, so the same generator can feed a file, a benchmark or a live
// Elasticsearch index.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// Shape is the kind of incident injected into the background traffic.
type Shape string

// The shapes. Each one is a question culprit must answer correctly: who is
// to blame (or nobody), how broad it is, and whether it is worth a page.
const (
	// ShapeQuiet is background only: bursts, harmless deploys and tickets.
	// Nothing should page.
	ShapeQuiet Shape = "quiet"
	// ShapeFriday is the story culprit was built for: an edge-router deploy
	// makes function invocations fail for a few percent of requests on one
	// provider's hosts, host by host as the rollout spreads. The overall 5xx
	// share stays under 1%, so a threshold alert never fires.
	ShapeFriday Shape = "new_error_provider"
	// ShapeIncrease is an api deploy that multiplies an existing background
	// error class on every host that gets it.
	ShapeIncrease Shape = "error_increase"
	// ShapeCanary is a deploy to a single canary host that fails there only.
	ShapeCanary Shape = "canary"
	// ShapeSlowRamp is a deploy with a leak: a new error class whose rate
	// grows linearly for about 80 minutes after each host restarts.
	ShapeSlowRamp Shape = "slow_ramp"
	// ShapeRegionOutage is an infrastructure failure in one region with no
	// deploy to blame, while harmless deploys (one of the same service)
	// landed shortly before it.
	ShapeRegionOutage Shape = "region_outage"
	// ShapeSingleCustomer is one customer's broken certificate: real, new,
	// but one customer's problem, never a page.
	ShapeSingleCustomer Shape = "single_customer"
	// ShapeTicketSurge is clean logs with a surge of tickets about a problem
	// the logs cannot see (emails not arriving).
	ShapeTicketSurge Shape = "ticket_surge"
	// ShapeTrafficSurge is a few customers going viral: errors rise with the
	// traffic but their share does not.
	ShapeTrafficSurge Shape = "traffic_surge"

	// The harder deploy shapes: each is one step away from the ones above,
	// where a nearest-deploy or share-only attributor goes wrong.

	// ShapeQuickIncrease is ShapeIncrease rolled out in 2–5 minutes: too
	// few minutes in which both versions serve to compare them there.
	ShapeQuickIncrease Shape = "quick_increase"
	// ShapeLateLeak is an api deploy rolled out in 2–5 minutes whose leak
	// only starts 10–20 minutes after the rollout ended, grows, and stops
	// host by host when a rollback replaces the version.
	ShapeLateLeak Shape = "late_leak"
	// ShapeDecoyIncrease is ShapeQuickIncrease with another service's
	// deploy landing 1–4 minutes before it.
	ShapeDecoyIncrease Shape = "decoy_increase"
	// ShapeBurstBeforeDeploy is ShapeQuickIncrease with one customer's
	// burst of the same class 4–8 minutes before the deploy.
	ShapeBurstBeforeDeploy Shape = "burst_before_deploy"
	// ShapeSecondDeploy is ShapeQuickIncrease shipped 15 minutes after a
	// harmless deploy of the same service.
	ShapeSecondDeploy Shape = "second_deploy"
)

// deployCaused reports whether a deploy causes the shape's incident, and
// so whether a rollback can end it.
func (s Shape) deployCaused() bool {
	switch s {
	case ShapeFriday, ShapeIncrease, ShapeCanary, ShapeSlowRamp,
		ShapeQuickIncrease, ShapeLateLeak, ShapeDecoyIncrease, ShapeBurstBeforeDeploy, ShapeSecondDeploy:
		return true
	}
	return false
}

// Shapes lists every shape in a stable order.
func Shapes() []Shape {
	return []Shape{
		ShapeQuiet, ShapeFriday, ShapeIncrease, ShapeCanary, ShapeSlowRamp,
		ShapeRegionOutage, ShapeSingleCustomer, ShapeTicketSurge, ShapeTrafficSurge,
		ShapeQuickIncrease, ShapeLateLeak, ShapeDecoyIncrease, ShapeBurstBeforeDeploy, ShapeSecondDeploy,
	}
}

// Config selects a run. The zero value (plus a Seed) is a valid six-hour
// Friday afternoon of quiet traffic.
type Config struct {
	Seed int64
	// Start is the first moment of the run; zero means Friday
	// 2026-11-20T12:00:00Z. It is truncated to the millisecond.
	Start time.Time
	// Duration is the run's length; zero means 6h.
	Duration time.Duration
	// Shape is the injected incident; empty means ShapeQuiet.
	Shape Shape
	// Onset is the offset from Start of the incident's deploy (or of its
	// start when no deploy is involved); zero means 4h, i.e. 16:00.
	Onset time.Duration
	// Rollback is the offset from Start of a rollback deploy for the
	// deploy-caused shapes (Friday, Increase, Canary, SlowRamp); zero means
	// none. Other shapes ignore it: there is nothing to roll back. A
	// rollback at or after the end of the run is not generated.
	Rollback time.Duration
	// PeakPerMin is the fleet's total requests per minute at the diurnal
	// peak (15:00 UTC); zero means 1200.
	PeakPerMin float64
	// Pace, when set, lets a consumer hold the generator back: a live feed
	// waits for the wall clock in it, and a test steps the simulation one
	// minute at a time. Generate calls Pace(ctx, t) before it generates the
	// minute starting at t, for t = Start, Start+1m, … while t is before the
	// end, and once more with t = Start+Duration after the last document.
	// When Pace(t) is called, every document stamped before t has been
	// passed to emit and no document stamped at or after t has: minutes are
	// generated whole and emitted in time order. An error from Pace stops
	// the run and Generate returns it unchanged. Nil means no pacing. Pace
	// does not change the documents: a paced run is identical to an
	// unpaced one.
	Pace func(ctx context.Context, t time.Time) error
}

// DefaultStart is a Friday noon, so that the default onset is Friday 16:00.
var DefaultStart = time.Date(2026, time.November, 20, 12, 0, 0, 0, time.UTC)

const (
	defaultDuration = 6 * time.Hour
	defaultOnset    = 4 * time.Hour
	defaultPeak     = 1200
	// minRollbackDelay keeps a rollback after the incident's own rollout,
	// which lasts at most 30 minutes: a rollback overtaking its rollout
	// would leave hosts on the bad version with no deploy record saying so.
	minRollbackDelay = 30 * time.Minute
)

// withDefaults fills the zero fields and rejects configurations that cannot
// be simulated faithfully.
func (c Config) withDefaults() (Config, error) {
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.UTC().Truncate(time.Millisecond)
	if c.Duration == 0 {
		c.Duration = defaultDuration
	}
	if c.Shape == "" {
		c.Shape = ShapeQuiet
	}
	if c.Onset == 0 {
		c.Onset = defaultOnset
	}
	if c.PeakPerMin == 0 {
		c.PeakPerMin = defaultPeak
	}
	var errs []error
	if !slices.Contains(Shapes(), c.Shape) {
		errs = append(errs, fmt.Errorf("unknown shape %q (known: %v)", c.Shape, Shapes()))
	}
	if c.Duration < 10*time.Minute {
		errs = append(errs, fmt.Errorf("duration %s is too short: at least 10m", c.Duration))
	}
	if c.PeakPerMin < 0 || c.PeakPerMin > 1e6 {
		errs = append(errs, fmt.Errorf("peak rate %g requests/min is out of range (0, 1e6]", c.PeakPerMin))
	}
	if c.Onset < 0 || c.Onset >= c.Duration {
		errs = append(errs, fmt.Errorf("onset %s is outside the run (0, %s)", c.Onset, c.Duration))
	}
	if c.Rollback != 0 && c.Shape.deployCaused() && c.Rollback < c.Onset+minRollbackDelay {
		errs = append(errs, fmt.Errorf("rollback %s must come at least %s after the onset %s, once the rollout is over", c.Rollback, minRollbackDelay, c.Onset))
	}
	return c, errors.Join(errs...)
}

// Truth is what a correct analysis of the run concludes. Its JSON form is
// written as truth.json next to the generated files.
type Truth struct {
	Shape   Shape  `json:"shape"`
	Service string `json:"service,omitempty"`
	// Kind is the finding kind expected, "" when no finding is expected.
	Kind correlate.Kind `json:"kind,omitempty"`
	// MessageContains is a stable substring of every injected raw message
	// (for a ticket surge, of every surge ticket's subject).
	MessageContains string `json:"message_contains,omitempty"`
	// Onset is the first moment injected errors can occur: the first
	// affected host's switch to the bad version, or the start of a
	// non-deploy incident (for a ticket surge, the first surge ticket).
	Onset time.Time `json:"onset,omitzero"`
	// Recovered is when the injected errors stop for good: the last affected
	// host's rollback, or the outage's end. Nil if not within the run.
	Recovered *time.Time `json:"recovered"`
	// SuspectDeployID is the deploy to blame, "" when none is.
	SuspectDeployID string `json:"suspect_deploy_id"`
	// Field and Value name the dimension the injected errors concentrate
	// on, in correlate's canonical field names; empty when they are spread
	// over the whole service.
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
	// AffectedCustomers counts distinct customers that received at least
	// one injected error (for a ticket surge, that filed a surge ticket).
	AffectedCustomers int `json:"affected_customers"`
	// InjectedErrors counts the injected error documents.
	InjectedErrors int `json:"injected_errors"`
	// FirstError is the first injected error document's time. A slow
	// shape's first error can come minutes after Onset (a leak that needs
	// time to exhaust a pool), and no detector can page before it, so
	// delays are reported from both.
	FirstError time.Time `json:"first_error,omitzero"`
	// ExpectPage says whether on-call should be woken.
	ExpectPage bool `json:"expect_page"`
	// IncidentTickets are the ids of the tickets about the incident, in
	// whatever words: the labels that related-ticket precision and recall
	// are measured against. Every other ticket, affected customer or
	// not, is about something else.
	IncidentTickets []int64 `json:"incident_tickets"`
}

// Run is what a generation produced besides the documents.
type Run struct {
	Config  Config // with defaults filled in
	Deploys []correlate.Deploy
	// Tickets are sorted by CreatedAt; IDs increase in that order.
	Tickets []correlate.Ticket
	Truth   Truth
	Docs    int
	// Customers is the fleet's customer directory (names, tiers, VIPs).
	Customers []correlate.Customer
}

// Generate streams the run's documents in time order to emit and returns
// the deploys, tickets and ground truth. The *Doc passed to emit is reused
// once emit returns: copy it to keep it. Generation stops at the first error
// from emit, which is returned unchanged, or when ctx is done.
func Generate(ctx context.Context, cfg Config, emit func(*Doc) error) (*Run, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	s, err := newSim(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.run(ctx, emit); err != nil {
		return nil, err
	}
	return s.finish(), nil
}

// Deploys returns the run's deploy records without generating any traffic:
// they are planned before the first document, so a live feed can publish
// each one as its rollout starts. They equal Generate's Run.Deploys.
func Deploys(cfg Config) ([]correlate.Deploy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	s, err := newSim(cfg)
	if err != nil {
		return nil, err
	}
	return s.deploys, nil
}
