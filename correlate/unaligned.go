package correlate

import (
	"fmt"
	"time"
)

// UnalignedDeploy is the report's answer to "what about the deploy just
// before?" when no deploy is suspected: the latest deploy of the failing
// service that finished rolling out before the onset, and how its version's
// error rate since the onset compares with its predecessor's before the
// rollout.
//
// That comparison is made across time. A leak that starts minutes after a
// rollout ended shows it, and so does a region outage after a harmless
// deploy of the same service: at page time the two look the same, so the
// deploy is named and not blamed. What can tell them apart comes later:
// errors that stop host by host as a rollback or the next deploy replaces
// the version (recovery alignment), which then implicates it in the page's
// update.
type UnalignedDeploy struct {
	DeployID   string    `json:"deploy_id"`
	Service    string    `json:"service"`
	Version    string    `json:"version"`
	FinishedAt time.Time `json:"finished_at"`
	// RateAfter is the class's errors per request since the onset, and
	// RateBefore the same in the hour before the rollout began.
	RateAfter  float64 `json:"rate_after"`
	RateBefore float64 `json:"rate_before"`
	// Ratio, Low and High are RateAfter over RateBefore with its 95%
	// interval (High is +Inf, omitted, when there were no errors before).
	Ratio float64 `json:"ratio,omitempty"`
	Low   float64 `json:"ratio_low,omitempty"`
	High  float64 `json:"ratio_high,omitempty"`
	// Lead is how long before the onset the rollout finished.
	Lead time.Duration `json:"-"`
}

// Sentence is the line a report prints under "Suspects: none".
func (u *UnalignedDeploy) Sentence() string {
	cmp := fmt.Sprintf("fails %s of %s requests since the onset, %s in the hour before its rollout", Percent(u.RateAfter), u.Service, Percent(u.RateBefore))
	if u.RateBefore > 0 {
		cmp += fmt.Sprintf(" (%s, 95%% CI %s)", times(u.Ratio), interval(u.Low, u.High))
	}
	return fmt.Sprintf("no deploy aligned: %s %s (%s) finished rolling out at %s UTC, %s before the onset; %s %s. That compares times, not versions side by side, and any change since would show it, so it is not blamed; errors stopping host by host as a later deploy replaces %s would implicate it",
		u.Service, u.Version, u.DeployID, u.FinishedAt.UTC().Format("15:04"), minutes(u.Lead), u.Version, cmp, u.Version)
}

// unalignedDeploy finds the deploy UnalignedDeploy describes, if any: of
// f's service, rolled out entirely before the onset and at most the
// attribution window before it.
func unalignedDeploy(f Finding, deploys []Deploy, w Window, window time.Duration) *UnalignedDeploy {
	if f.Series == nil || f.Kind == KindTicketSurge {
		return nil
	}
	var best *Deploy
	var bestEnd time.Time
	for i, d := range deploys {
		if d.Service != f.Service {
			continue
		}
		end := d.FinishedAt
		for _, h := range d.Hosts {
			end = later(end, h.At)
		}
		if end.IsZero() || !end.Before(f.Onset) || f.Onset.Sub(end) > window {
			continue
		}
		if best == nil || end.After(bestEnd) {
			best, bestEnd = &deploys[i], end
		}
	}
	if best == nil {
		return nil
	}
	s, o := w.Index(rolloutStart(*best)), w.Index(f.Onset)
	if s < 1 || o < s {
		return nil
	}
	var a, ra, b, rb float64
	errs, reqs := f.Series.Errors, f.Series.Requests
	for i := o; i < len(errs) && i < len(reqs); i++ {
		if f.Recovered != nil && !w.Start(i).Before(*f.Recovered) {
			break
		}
		a += errs[i]
		ra += reqs[i]
	}
	for i := max(0, s-preDeployBuckets); i < s && i < len(errs) && i < len(reqs); i++ {
		b += errs[i]
		rb += reqs[i]
	}
	if ra <= 0 || rb <= 0 {
		return nil
	}
	u := &UnalignedDeploy{DeployID: best.ID, Service: best.Service, Version: best.Version, FinishedAt: bestEnd,
		RateAfter: a / ra, RateBefore: b / rb, Lead: f.Onset.Sub(bestEnd)}
	if b > 0 {
		rr := compareRates(a, ra, b, rb)
		u.Ratio, u.Low, u.High = rr.ratio, rr.lo, rr.hi
		if u.High > 1e300 {
			u.High = 0
		}
	}
	return u
}
