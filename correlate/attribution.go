package correlate

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/culprithq/culprit/rules"
)

// evidence grades one line of reasoning about a deploy.
type evidence int

const (
	evNone evidence = iota // not applicable or uninformative
	evAgainst
	evModerate
	evStrong
)

// attribute ranks the deploys that could explain a finding.
//
// Timing only makes a deploy eligible; it never implicates one. A deploy is
// suspected when the data tie it to the errors: errors appear on each host
// only after that host received the version (rollout alignment), they
// concentrate on the deployed version (version split), the version fails
// more often per request than the one it replaced while the change began
// during its rollout (version rate), or the errors stopped on each host as
// a later deploy took the version away (recovery alignment). A deploy that merely
// happened to be nearest in time is not blamed, because on a busy fleet one
// always is.
//
// latest is the latest the onset can be: the CUSUM dates an onset from
// where excess began to accumulate, which in a bursty class can be a
// background burst many minutes before the change that matters, and a
// deploy starting between the two must still be examined.
func attribute(f Finding, latest time.Time, sc *Scope, deploys []Deploy, w Window, L int, cfg rules.Correlate) []Suspect {
	out := []Suspect{}
	onsetIdx := w.Index(f.Onset)
	latest = later(latest, f.Onset)
	endIdx := L
	if f.Recovered != nil {
		endIdx = min(L, max(onsetIdx+1, w.Index(*f.Recovered)))
	}
	for _, d := range deploys {
		start := rolloutStart(d)
		lead := f.Onset.Sub(start)
		if start.After(latest.Add(onsetSlack(w))) || lead > cfg.AttributionWindow.D() {
			continue
		}
		var reasons []string
		// A new class has no errors before its onset, and strata without
		// errors weigh nothing, so the whole rollout can be examined even
		// when the onset was dated later. An existing class does have
		// errors there: its background, which on a busy fleet falls on the
		// updated hosts at p < 0.05 for one deploy in twenty. Its strata
		// start at the onset, so a rollout that finished before the class
		// burst (a session-token burst twenty minutes after a dashboard
		// deploy, in the corpus) is not tested on background alone.
		from := onsetIdx
		if i := w.Index(start); i >= 0 && i < from && f.Kind != KindErrorIncrease {
			from = i
		}
		align, why, sideBySide := rolloutAlignment(d, sc, w, from, endIdx)
		if why != "" {
			reasons = append(reasons, why)
		}
		split, rate, rec := evNone, evNone, evNone
		if d.Service == f.Service {
			var why string
			split, why = versionSplit(d, sc)
			if split, why = overPooled(split, why, sideBySide); why != "" {
				reasons = append(reasons, why)
			}
			// Rates over all the version's requests say nothing when one
			// customer carries the errors: their own trouble, on hosts the
			// rollout happened to reach, compares the same way.
			_, oneCustomer := singleCustomer(f)
			if !oneCustomer {
				if rate, why = versionRate(f, latest, d, sc, w, endIdx, deploys); why != "" {
					reasons = append(reasons, why)
				}
			}
			if r, ok := replacement(d, deploys); ok && !oneCustomer {
				if rec, why, _ = recoveryAlignment(d, r, sc, w, L); why != "" {
					reasons = append(reasons, why)
				}
			}
		}
		if align == evAgainst || split == evAgainst {
			continue
		}
		if max(align, split, rate, rec) < evModerate {
			continue
		}
		score := 0.0
		if d.Service == f.Service {
			score += 0.15
			reasons = append(reasons, fmt.Sprintf("deploys %s, the service that is failing", d.Service))
		}
		score += map[evidence]float64{evStrong: 0.45, evModerate: 0.25}[align]
		score += map[evidence]float64{evStrong: 0.3, evModerate: 0.15}[split]
		score += map[evidence]float64{evModerate: 0.2}[rate]
		score += map[evidence]float64{evStrong: 0.35, evModerate: 0.2}[rec]
		mins := math.Max(lead.Minutes(), 0)
		score += 0.1 * math.Exp(-mins/30)
		reasons = append(reasons, timingReason(lead, start))
		out = append(out, Suspect{
			ID: d.ID, Service: d.Service, Version: d.Version,
			StartedAt: d.StartedAt, FinishedAt: d.FinishedAt, URL: d.URL,
			Score:        math.Round(math.Min(score, 1)*100) / 100,
			Reasons:      reasons,
			rolloutTied:  align >= evModerate || rate >= evModerate,
			corroborated: corroborated(align, split, rate, rec, sideBySide),
		})
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Score != out[b].Score {
			return out[a].Score > out[b].Score
		}
		return out[a].StartedAt.After(out[b].StartedAt)
	})
	return out
}

// corroborated says whether the lines of evidence for a deploy amount to
// more than one test coming up below 0.05 by chance. Each line is tested
// for every deploy in the attribution window against every significant
// series, many times a day, and an existing class's own bursts (a region's
// flapping upstream, a scanner tripping the WAF) land on whatever hosts
// or versions they land on: on the corpus's quiet weeks, one moderate line
// alone tied a harmless deploy to a background burst about once every
// five days. A strong line (p < 0.001 with the errors on the version), or
// two lines that agree, is what a real regression shows within minutes.
//
// The version rate is the exception: where the rollout was
// too quick for its minutes to hold enough errors on both versions, the
// comparison with the replaced version's own rate before it is all there
// is, and a real regression after a two-minute rollout must not wait for
// the hold. It stands alone, too, when the few minutes there were agree
// with it (at least the 2× lift it claims, if not significantly). Where
// the rollout compared the versions side by side and found them alike,
// the version rate is only a time comparison that a burst starting with
// the rollout passes as well (a session-token burst from a 20-minute
// dashboard rollout's first minute, in the corpus's quiet days), and it
// counts as one line.
func corroborated(align, split, rate, rec evidence, sbs sideBySide) bool {
	moderate := 0
	for _, e := range []evidence{align, split, rate, rec} {
		if e == evStrong {
			return true
		}
		if e == evModerate {
			moderate++
		}
	}
	return moderate >= 2 || rate >= evModerate && sbs != sideBySideDisagrees
}

// overPooled is the version split once the rollout's own minutes have
// spoken. The split pools the whole span, so it is confounded with time:
// one customer's burst on the old version just before the rollout reads
// as "the errors are not on the new version" (burst_before_deploy-s4 in
// the corpus, whose rollout alignment was strong), and a background class
// growing through a rollout reads as "they are". Where the rollout
// compared the versions minute by minute, that comparison stands over the
// pooled one: the split neither clears the deploy nor, when the minutes
// found the versions alike, adds a line.
func overPooled(split evidence, why string, sbs sideBySide) (evidence, string) {
	if sbs != sideBySideNone && (split == evAgainst || sbs == sideBySideDisagrees && split >= evModerate) {
		return evNone, ""
	}
	return split, why
}

// onsetSlack is how far after an estimated onset a deploy may start and
// still be examined: onsets of increases in bursty classes are uncertain by
// minutes, and the evidence tests, not the timing, decide.
func onsetSlack(w Window) time.Duration {
	return max(w.Step, 10*time.Minute)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// rolloutStart is when the first host got the version: a deploy's recorded
// start can precede its first host by minutes of build and approval.
func rolloutStart(d Deploy) time.Time {
	s := d.StartedAt
	for _, h := range d.Hosts {
		if !h.At.IsZero() && (s.IsZero() || h.At.Before(s)) {
			s = h.At
		}
	}
	return s
}

func timingReason(lead time.Duration, start time.Time) string {
	at := start.UTC().Format("15:04")
	switch {
	case lead <= -time.Minute:
		return fmt.Sprintf("rollout began at %s UTC, %s after the excess first showed (an onset in a bursty class is uncertain)", at, minutes(-lead))
	case lead < time.Minute:
		return fmt.Sprintf("rollout began at %s UTC, within a minute of the onset", at)
	default:
		return fmt.Sprintf("rollout began at %s UTC, %s before the onset", at, minutes(lead))
	}
}

// sideBySide is what a rollout's side-by-side comparison says of the
// versions, whatever its significance.
type sideBySide int

const (
	sideBySideNone      sideBySide = iota // too few errors to say anything
	sideBySideAgrees                      // hosts not yet updated carried at most half their share
	sideBySideDisagrees                   // they carried more: the versions fail alike
)

// minExpectedUnupdated is how many errors the hosts not yet updated must be
// expected to carry before the side-by-side comparison says anything:
// fewer, and even none on them is what chance gives.
const minExpectedUnupdated = 3

// rolloutAlignment asks whether errors fell on hosts that already ran the
// deploy rather than on hosts that did not yet (or never would), comparing
// the two groups only within the same bucket. Pooling over time would
// confound exposure with time: an outage that starts after a rollout
// finished would look aligned, and a ramp that became visible after it
// finished would not. Within each bucket where both groups served traffic,
// under "the deploy is unrelated" the bucket's errors split between the
// groups in proportion to their requests; the strata are combined as in a
// Cochran–Mantel–Haenszel test. sbs says what the strata show even when
// they are not significant.
func rolloutAlignment(d Deploy, sc *Scope, w Window, from, to int) (ev evidence, why string, sbs sideBySide) {
	if len(d.Hosts) == 0 || len(sc.HostRequests) == 0 || from < 0 {
		return evNone, "", sideBySideNone
	}
	overlap := 0
	for _, h := range d.Hosts {
		if _, ok := sc.HostRequests[h.Name]; ok {
			overlap++
		}
	}
	if overlap == 0 {
		return evNone, "", sideBySideNone
	}
	s := splitByRollout(d, sc, w, from, to, nil)
	if s.expUn < minExpectedUnupdated || s.varUn <= 0 {
		return evNone, "", sideBySideNone
	}
	sbs = sideBySideDisagrees
	if s.obsUn <= s.expUn/2 {
		sbs = sideBySideAgrees
	}
	// One-sided: fewer errors on hosts without the version than chance.
	z := (s.obsUn + 0.5 - s.expUn) / math.Sqrt(s.varUn)
	p := clampP(0.5 * math.Erfc(-z/math.Sqrt2))
	desc := fmt.Sprintf("in the minutes when some hosts ran %s and others did not, %d of %d errors fell on hosts without it where %.0f were expected if it were unrelated (p=%.2g)",
		versionName(d), int64(s.obsUn), int64(s.total), s.expUn, p)
	switch {
	case s.obsUn >= s.expUn:
		return evAgainst, "", sbs
	case p < 1e-3 && s.obsUn <= s.expUn/3:
		return evStrong, "rollout alignment: " + desc, sbs
	case p < 0.05:
		return evModerate, "partial rollout alignment: " + desc, sbs
	}
	return evNone, "", sbs
}

// rolloutSplit is a rollout's errors split, bucket by bucket, between hosts
// that had received the deploy by the bucket's start (updated) and hosts
// that had not by its end (not updated), pooled over the buckets where both
// groups served. exp and var are the counts expected, and their variance,
// if the errors of each bucket fell on the groups in proportion to their
// requests.
type rolloutSplit struct {
	obsUn, expUn, varUn float64
	obsUp, expUp, varUp float64
	total               float64
}

// splitByRollout stratifies [from, to) by bucket for d's rollout. eligible,
// when not nil, limits the hosts compared: a replacement deploy is judged
// only on the hosts that ran the version it replaced.
func splitByRollout(d Deploy, sc *Scope, w Window, from, to int, eligible func(host string) bool) rolloutSplit {
	at := make(map[string]time.Time, len(d.Hosts))
	for _, h := range d.Hosts {
		at[h.Name] = h.At
	}
	n := w.Len()
	eExp, eUn := make([]float64, n), make([]float64, n)
	rExp, rUn := make([]float64, n), make([]float64, n)
	for host, reqs := range sc.HostRequests {
		if eligible != nil && !eligible(host) {
			continue
		}
		errs := sc.HostErrors[host]
		got, updated := at[host]
		for i := max(from, 0); i < to && i < len(reqs) && i < n; i++ {
			b0 := w.Start(i)
			var e float64
			if i < len(errs) {
				e = errs[i]
			}
			switch {
			case updated && !got.After(b0):
				eExp[i] += e
				rExp[i] += reqs[i]
			case !updated || !got.Before(b0.Add(w.Step)):
				eUn[i] += e
				rUn[i] += reqs[i]
			}
		}
	}
	var s rolloutSplit
	for i := max(from, 0); i < to && i < n; i++ {
		e, r := eExp[i]+eUn[i], rExp[i]+rUn[i]
		if e == 0 || rExp[i] == 0 || rUn[i] == 0 {
			continue
		}
		q := rUn[i] / r
		s.obsUn += eUn[i]
		s.expUn += e * q
		s.varUn += e * q * (1 - q)
		s.obsUp += eExp[i]
		s.expUp += e * (1 - q)
		s.total += e
	}
	s.varUp = s.varUn
	return s
}

// versionSplit asks whether the errors concentrate on the deployed version
// compared with that version's share of requests.
func versionSplit(d Deploy, sc *Scope) (evidence, string) {
	if d.Version == "" {
		return evNone, ""
	}
	errs, reqs := sc.Errors[FieldVersion], sc.Requests[FieldVersion]
	te, tr := sumMap(errs), sumMap(reqs)
	if te == 0 || tr == 0 {
		return evNone, ""
	}
	ev, rv := errs[d.Version], reqs[d.Version]
	soe, sor := ev/te, rv/tr
	if sor >= 0.98 {
		return evNone, ""
	}
	if soe <= sor {
		return evAgainst, ""
	}
	p := binomUpperTail(ev, te, sor)
	desc := fmt.Sprintf("%s of the errors come from %s, which served %s of requests (p=%.2g)", Percent(soe), versionName(d), Percent(sor), p)
	switch {
	case p < 1e-3 && soe >= 0.9:
		return evStrong, "version split: " + desc
	case p < 0.05 && soe >= sor*minLift:
		return evModerate, "version split: " + desc
	}
	return evNone, ""
}

func versionName(d Deploy) string {
	if d.Version == "" {
		return "deploy " + d.ID
	}
	return d.Service + " " + d.Version
}

// minutes renders a lead time as people say it: "2 min", "1 h 5 min".
func minutes(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	if m < 60 {
		return fmt.Sprintf("%d min", m)
	}
	if m%60 == 0 {
		return fmt.Sprintf("%d h", m/60)
	}
	return fmt.Sprintf("%d h %d min", m/60, m%60)
}
