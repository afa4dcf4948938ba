package correlate

import (
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/mathext"
)

// preDeployBuckets bounds how far before a rollout the replaced version's
// own error rate is read: an hour is long enough to average a bursty class
// and short enough that the diurnal mix barely moves.
const preDeployBuckets = 60

// rolloutTail is how long after a rollout's first host an onset may still
// be dated, when the rollout was shorter than that, and be compared with
// the version's predecessor before the rollout: an increase's dating
// trails its start by a few buckets. An onset later than that and after
// the last host began on a fleet that already ran the version everywhere,
// and a before/after comparison would only measure time.
const rolloutTail = 5 * time.Minute

// versionRateSpan bounds how long after a rollout's last host the new
// version's errors are counted against its predecessor's rate before the
// rollout. That comparison is across time: the longer the span, the more it
// measures the hour (the diurnal mix, an unrelated burst on a fleet that
// has run the version all along) and the less the version. A version at
// fault shows it in its first half hour on every host; one whose errors
// begin later is a leak, tied by the replacement that ends it (recovery
// alignment), not by a before/after comparison.
const versionRateSpan = 30 * time.Minute

// rateRatio is errors per request on one version against another, with its
// 95% interval.
type rateRatio struct {
	newErr, newReq float64
	oldErr, oldReq float64
	ratio, lo, hi  float64
	p              float64 // one-sided: the new version fails no more often
}

// compareRates conditions on the total errors: given n = a + b, a is
// binomial with probability ra·RR/(ra·RR + rb) under rate ratio RR, so a
// Clopper–Pearson interval on that probability maps to an exact interval
// on RR (the standard Poisson rate-ratio interval).
func compareRates(a, ra, b, rb float64) rateRatio {
	rr := rateRatio{newErr: a, newReq: ra, oldErr: b, oldReq: rb, p: 1}
	n := a + b
	if ra <= 0 || rb <= 0 || n <= 0 {
		return rr
	}
	a, n = math.Round(a), math.Round(n)
	k := rb / ra
	toRR := func(pi float64) float64 {
		if pi >= 1 {
			return math.Inf(1)
		}
		return pi / (1 - pi) * k
	}
	if b > 0 {
		rr.ratio = (a / ra) / (b / rb)
	} else {
		rr.ratio = math.Inf(1)
	}
	if a > 0 {
		rr.lo = toRR(mathext.InvRegIncBeta(a, n-a+1, 0.025))
	}
	rr.hi = math.Inf(1)
	if a < n {
		rr.hi = toRR(mathext.InvRegIncBeta(a+1, n-a, 0.975))
	}
	rr.p = binomUpperTail(a, n, ra/(ra+rb))
	return rr
}

// versionRate compares errors per request on d's version with the version
// it replaced. Where both served in the same bucket (hosts not yet
// updated), that bucket compares them; where they did not (a short rollout
// leaves the new version serving nearly everything), the replaced version
// is read from the hour before the rollout, when it served everything.
// The second comparison is across time, so it only counts when the change
// began while the rollout was under way: an outage that began after a
// rollout finished says nothing about the version.
func versionRate(f Finding, latest time.Time, d Deploy, sc *Scope, w Window, end int, deploys []Deploy) (evidence, string) {
	if d.Service != f.Service || len(d.Hosts) == 0 || f.Series == nil || len(sc.HostRequests) == 0 {
		return evNone, ""
	}
	start, last := rolloutStart(d), rolloutStart(d)
	for _, h := range d.Hosts {
		if h.At.After(last) {
			last = h.At
		}
	}
	// The onset must fall while the rollout was under way, or within
	// rolloutTail of its first host, for the rollouts too short for the
	// onset's dating to land inside them. Not rolloutTail after the last
	// host: by then the first hosts had run the version for the whole
	// rollout without the change, and a burst that begins just after a
	// long rollout (a session-token burst two minutes after a 15-minute
	// dashboard rollout, in the corpus's quiet days) compared with the
	// hour before as a fault of the version would.
	if f.Onset.After(later(last, start.Add(rolloutTail))) || latest.Before(start.Add(-onsetSlack(w))) {
		return evNone, ""
	}
	s := w.Index(start)
	if s < 1 {
		return evNone, ""
	}
	if stop := w.Index(last.Add(versionRateSpan)); stop >= 0 && stop < end {
		end = stop
	}
	at := make(map[string]time.Time, len(d.Hosts))
	for _, h := range d.Hosts {
		at[h.Name] = h.At
	}
	leave := map[string]time.Time{}
	if r, ok := replacement(d, deploys); ok {
		for _, h := range r.Hosts {
			leave[h.Name] = h.At
		}
	}
	var a, ra, b, rb float64
	for host, reqs := range sc.HostRequests {
		errs := sc.HostErrors[host]
		got, updated := at[host]
		gone, replaced := leave[host]
		for i := s; i < end && i < len(reqs) && i < len(errs); i++ {
			b0, b1 := w.Start(i), w.Start(i+1)
			switch {
			case replaced && b1.After(gone):
			case updated && !got.After(b0):
				a += errs[i]
				ra += reqs[i]
			case !updated || !got.Before(b1):
				b += errs[i]
				rb += reqs[i]
			}
		}
	}
	for i := max(0, s-preDeployBuckets); i < s && i < len(f.Series.Errors) && i < len(f.Series.Requests); i++ {
		b += f.Series.Errors[i]
		rb += f.Series.Requests[i]
	}
	if a < 5 {
		return evNone, ""
	}
	rr := compareRates(a, ra, b, rb)
	if rr.p >= 1e-3 || rr.lo < 2 {
		return evNone, ""
	}
	return evModerate, fmt.Sprintf("version rate: %s fails %s of %s requests, %s %s (%s, 95%% CI %s) before its rollout and on hosts not yet updated (p=%.2g)",
		d.Version, Percent(safeDiv(a, ra)), d.Service, predecessor(d, deploys, sc), Percent(safeDiv(b, rb)),
		times(rr.ratio), interval(rr.lo, rr.hi), rr.p)
}

// predecessor names the version d replaced: the previous deploy of the
// service in the feed, else the other version that served most requests
// during the finding.
func predecessor(d Deploy, deploys []Deploy, sc *Scope) string {
	var prev *Deploy
	for i, e := range deploys {
		if e.Service == d.Service && e.ID != d.ID && e.StartedAt.Before(d.StartedAt) && (prev == nil || e.StartedAt.After(prev.StartedAt)) {
			prev = &deploys[i]
		}
	}
	if prev != nil && prev.Version != "" {
		return prev.Version
	}
	best, most := "", 0.0
	for v, n := range sc.Requests[FieldVersion] {
		if v != d.Version && (n > most || n == most && v < best) {
			best, most = v, n
		}
	}
	if best != "" {
		return best
	}
	return "the version it replaced"
}

func times(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "no errors before"
	case x >= 10:
		return fmt.Sprintf("%.0f×", x)
	default:
		return fmt.Sprintf("%.1f×", x)
	}
}

func interval(lo, hi float64) string {
	f := func(x float64) string {
		switch {
		case math.IsInf(x, 1):
			return "∞"
		case x >= 10:
			return fmt.Sprintf("%.0f", x)
		default:
			return fmt.Sprintf("%.1f", x)
		}
	}
	return f(lo) + "–" + f(hi) + "×"
}
