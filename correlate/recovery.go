package correlate

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Recovery names the deploy whose arrival ended a finding's errors: a
// rollback, or a later deploy that replaced the implicated version. On-call
// asks "did the rollback fix it?" before anything else once the chart falls.
type Recovery struct {
	DeployID string `json:"deploy_id"`
	Service  string `json:"service"`
	Version  string `json:"version"`
	// Rollback says the deploy went back to a version that ran before, or
	// its description calls it a revert or rollback.
	Rollback bool `json:"rollback"`
	// ReachedAffected is when the deploy reached the last host that
	// carried the errors (its last host, when none did): the moment the
	// replaced version stopped serving where it failed.
	ReachedAffected time.Time `json:"reached_affected,omitzero"`
	// Reasons are the evidence that tied the recovery to the deploy.
	Reasons []string `json:"reasons"`
}

// Sentence is the recovery as a report line says it: "recovered 17:13,
// 3 min after rollback dep-e5fb72 reached the last affected host".
func (r *Recovery) Sentence(recovered *time.Time) string {
	what := "deploy"
	if r.Rollback {
		what = "rollback"
	}
	name := strings.TrimSpace(fmt.Sprintf("%s %s (%s %s)", what, r.DeployID, r.Service, r.Version))
	if recovered == nil || r.ReachedAffected.IsZero() {
		return fmt.Sprintf("errors stop host by host as %s replaces the version", name)
	}
	at := recovered.UTC().Format("15:04")
	lag := recovered.Sub(r.ReachedAffected)
	switch {
	case lag >= time.Minute:
		return fmt.Sprintf("recovered %s UTC, %s after %s reached the last affected host", at, minutes(lag), name)
	case lag > -time.Minute:
		return fmt.Sprintf("recovered %s UTC, as %s reached the last affected host", at, name)
	default:
		return fmt.Sprintf("recovered %s UTC, %s before %s reached the last affected host", at, minutes(-lag), name)
	}
}

// SaysRollback reports whether a deploy's own words call it a rollback.
func SaysRollback(d Deploy) bool {
	s := strings.ToLower(d.ID + " " + d.Description)
	for _, w := range []string{"rollback", "roll back", "roll-back", "rolled back", "revert"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// IsRollback reports whether d goes back to a version of its service that
// an earlier deploy in deploys shipped, or its description calls it a
// revert or rollback. Version strings are not compared by order: teams roll
// forward to fix, and a "lower" version proves nothing.
func IsRollback(d Deploy, deploys []Deploy) bool {
	if SaysRollback(d) {
		return true
	}
	if d.Version == "" {
		return false
	}
	for _, e := range deploys {
		if e.ID != d.ID && e.Service == d.Service && e.Version == d.Version && e.StartedAt.Before(d.StartedAt) {
			return true
		}
	}
	return false
}

// replacement is the first deploy of d's service after d that reached
// hosts d had updated: the deploy that took d's version away from them.
func replacement(d Deploy, deploys []Deploy) (Deploy, bool) {
	got := make(map[string]bool, len(d.Hosts))
	for _, h := range d.Hosts {
		got[h.Name] = true
	}
	start := rolloutStart(d)
	var best Deploy
	found := false
	for _, r := range deploys {
		if r.ID == d.ID || r.Service != d.Service || len(r.Hosts) == 0 || !rolloutStart(r).After(start) {
			continue
		}
		overlap := false
		for _, h := range r.Hosts {
			if got[h.Name] {
				overlap = true
				break
			}
		}
		if overlap && (!found || rolloutStart(r).Before(rolloutStart(best))) {
			best, found = r, true
		}
	}
	return best, found
}

// recoveryAlignment asks whether the errors stopped on each host as the
// replacement deploy r took d's version away from it: within each bucket
// where some of d's hosts already ran r and others still ran d, fewer
// errors fell on the replaced hosts than their requests predict. It is the
// mirror of rolloutAlignment, with the same stratification by bucket, and
// is evidence against d's version: an outage that merely ended during an
// unrelated deploy stops on every host at once and shows no split.
//
// informed says the strata held enough errors to judge at all: a rollback
// of a few hosts within one bucket leaves nothing to compare.
func recoveryAlignment(d, r Deploy, sc *Scope, w Window, to int) (ev evidence, why string, informed bool) {
	on := make(map[string]bool, len(d.Hosts))
	for _, h := range d.Hosts {
		on[h.Name] = true
	}
	from := w.Index(rolloutStart(r))
	if from < 0 {
		return evNone, "", false
	}
	s := splitByRollout(r, sc, w, from, to, func(host string) bool { return on[host] })
	if s.expUp < 3 || s.varUp <= 0 {
		return evNone, "", false
	}
	// One-sided: fewer errors on replaced hosts than chance.
	z := (s.obsUp + 0.5 - s.expUp) / math.Sqrt(s.varUp)
	p := clampP(0.5 * math.Erfc(-z/math.Sqrt2))
	desc := fmt.Sprintf("while %s replaced %s host by host, %d of %d errors fell on hosts already replaced where %.0f were expected if the version were unrelated (p=%.2g)",
		r.ID, versionName(d), int64(s.obsUp), int64(s.total), s.expUp, p)
	switch {
	case s.obsUp >= s.expUp:
		return evNone, "", true
	case p < 1e-3 && s.obsUp <= s.expUp/3:
		return evStrong, "recovery alignment: " + desc, true
	case p < 0.05:
		return evModerate, "partial recovery alignment: " + desc, true
	}
	return evNone, "", true
}

// recoveryFor names the deploy that ended the finding's errors, given the
// implicated deploy: its replacement, when the errors stopped host by host
// as it arrived, or when the finding recovered while it rolled out (a
// rollback of a handful of hosts in one bucket leaves no strata to test).
func recoveryFor(f Finding, suspect Deploy, deploys []Deploy, sc *Scope, w Window, L int) *Recovery {
	r, ok := replacement(suspect, deploys)
	if !ok {
		return nil
	}
	// The recovery is dated by the last host that carried the errors: a
	// rollback of the whole fleet may still be reaching hosts that never
	// failed when the errors have already stopped.
	last, lastAny := time.Time{}, time.Time{}
	for _, h := range r.Hosts {
		if h.At.After(lastAny) {
			lastAny = h.At
		}
		if sum(sc.HostErrors[h.Name]) > 0 && h.At.After(last) {
			last = h.At
		}
	}
	if last.IsZero() {
		last = lastAny
	}
	ev, why, informed := recoveryAlignment(suspect, r, sc, w, L)
	var reasons []string
	if why != "" {
		reasons = append(reasons, why)
	}
	if ev < evModerate {
		// Strata that held errors and showed no host-by-host stop say the
		// errors ended everywhere at once: not this deploy's doing.
		// Without strata, timing is all there is: the recovery must fall
		// within the replacement's rollout, plus the slack an onset gets.
		if informed || f.Recovered == nil {
			return nil
		}
		start := rolloutStart(r)
		if f.Recovered.Before(start) || f.Recovered.After(last.Add(onsetSlack(w))) {
			return nil
		}
		reasons = append(reasons, fmt.Sprintf("the errors stopped at %s UTC, while %s rolled out (%s–%s UTC)",
			f.Recovered.UTC().Format("15:04"), r.ID, start.UTC().Format("15:04"), last.UTC().Format("15:04")))
	}
	return &Recovery{
		DeployID: r.ID, Service: r.Service, Version: r.Version,
		Rollback: IsRollback(r, deploys), ReachedAffected: last, Reasons: reasons,
	}
}
