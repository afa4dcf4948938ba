package correlate

import (
	"context"
	"maps"
	"math"
	"slices"
	"sort"
	"time"
)

// The onset search pays for not knowing when a change happened: its
// p-value is corrected over every bucket an onset could be in (hundreds in
// a six-hour window), so a 3–8× increase in a bursty class needs many
// buckets of excess before it clears the family threshold. A deploy of the
// failing service says when a change of ours could have begun. Testing at
// that one onset, and asking whether the excess fell on the hosts that ran
// the new version rather than on those that did not yet, confirms an
// increase that came with a rollout within a few buckets.
//
// Both halves of the test are needed. The excess after the rollout's
// start, against the baseline before it, is judged with the same
// negative-binomial tail as every episode, so a fleet-wide burst that
// happens to follow a deploy is no likelier to pass than any burst. The
// host comparison is made bucket by bucket, each host weighted by its own
// error rate in the hour before the rollout, so a host that always errs
// more than the others does not count against the version it received.
// Neither alone confirms anything: a series-level rise is timing, and a
// host split without a rise is the background falling where it falls.

// anchorHorizon is how long after a rollout's first host the anchored test
// is made: past it, the onset search has had time to catch up on any real
// change, and a deploy half an hour old says little about when one began.
const anchorHorizon = 30 * time.Minute

// anchorWeight is the share of a series' false-alarm budget spent on the
// anchored tests when a deploy of its service is recent (weighted
// Bonferroni): the onset search keeps the rest, so a series without a
// recent deploy is judged exactly as before, and one with a deploy pays
// 4/3 on its searched onsets.
const anchorWeight = 0.25

// anchorScreen is the series-level tail above which no host breakdown is
// asked for: a rise this weak cannot confirm anything, and the breakdown is
// a query to the source.
const anchorScreen = 0.05

// anchorDeploys are the deploys of service whose rollout began in [minBase,
// L) and at most anchorHorizon before the end of bucket L-1.
func anchorDeploys(service string, deploys []Deploy, w Window, L, minBase int) []Deploy {
	var out []Deploy
	for _, d := range deploys {
		if d.Service != service || len(d.Hosts) == 0 {
			continue
		}
		s := w.Index(rolloutStart(d))
		if s < minBase || s >= L || w.Start(L).Sub(w.Start(s)) > anchorHorizon {
			continue
		}
		out = append(out, d)
	}
	return out
}

// anchoredEpisode is the episode that starts at bucket s and runs to the
// end of the series, tested against the baseline before s (with the older
// history summarised in h, as the searched onsets are) without any search
// over onsets: p is the raw tail.
func anchoredEpisode(counts, exposure []float64, h history, s int, cfg detectConfig) (episode, bool) {
	L := len(counts)
	if s <= 0 || s >= L {
		return episode{}, false
	}
	ep := episode{start: s, end: L, boundary: s, baseErr: h.err, baseReq: h.req, hist: h.buckets}
	for i := range L {
		if i < s {
			ep.baseErr += counts[i]
			ep.baseReq += exposure[i]
		} else {
			ep.epErr += counts[i]
			ep.epReq += exposure[i]
		}
	}
	if ep.baseReq <= 0 || ep.epReq <= 0 || ep.epErr < cfg.minErrors {
		return episode{}, false
	}
	ep.baseRate = (ep.baseErr + 0.5) / ep.baseReq
	if ep.epErr/ep.epReq < ep.baseRate*cfg.minRatio {
		return episode{}, false
	}
	ep.judge(counts, exposure, h, cfg)
	ep.p = ep.pRaw
	return ep, true
}

// hostSplitP is the one-sided p-value that, in the buckets of [from, to)
// where some hosts ran d's version and others did not yet, the errors fell
// on the updated hosts no more than chance would put there. Under "the
// version is unrelated", each bucket's errors split across its hosts in
// proportion to requests times the host's own rate in the hour before the
// rollout (shrunk towards the fleet's), so a host that always errs more is
// expected to. It is 1 when no bucket compares the two groups.
func hostSplitP(d Deploy, sc *Scope, w Window, from, to int) float64 {
	if from < 1 || len(sc.HostRequests) == 0 {
		return 1
	}
	at := make(map[string]time.Time, len(d.Hosts))
	for _, h := range d.Hosts {
		at[h.Name] = h.At
	}
	pre := max(0, from-preDeployBuckets)
	// Hosts in a fixed order: floating-point sums depend on the order of
	// their terms, and a map's order changes from run to run, which made
	// the same data give p-values differing in the last digits (and an
	// incremental evaluation differ from a from-scratch one).
	hosts := slices.Sorted(maps.Keys(sc.HostRequests))
	var fleetErr, fleetReq float64
	own := map[string][2]float64{}
	for _, host := range hosts {
		reqs := sc.HostRequests[host]
		errs := sc.HostErrors[host]
		var e, r float64
		for i := pre; i < from && i < len(reqs); i++ {
			r += reqs[i]
			if i < len(errs) {
				e += errs[i]
			}
		}
		own[host] = [2]float64{e, r}
		fleetErr += e
		fleetReq += r
	}
	if fleetReq <= 0 {
		return 1
	}
	fleet := (fleetErr + 0.5) / fleetReq
	// Each host's rate is shrunk towards the fleet's by two errors' worth of
	// requests: a host that erred twice in the hour is not taken to fail
	// twice as often as one that erred once, and one that erred ninety
	// times is taken at its word.
	const pseudoErrors = 2
	weight := func(host string) float64 {
		o := own[host]
		return (o[0] + pseudoErrors) / (o[1] + pseudoErrors/fleet)
	}
	var obs, exp, vr float64
	for i := from; i < to && i < w.Len(); i++ {
		b0, b1 := w.Start(i), w.Start(i+1)
		var eUp, mUp, eAll, mAll float64
		un := false
		for _, host := range hosts {
			reqs := sc.HostRequests[host]
			if i >= len(reqs) || reqs[i] <= 0 {
				continue
			}
			var e float64
			if errs := sc.HostErrors[host]; i < len(errs) {
				e = errs[i]
			}
			m := reqs[i] * weight(host)
			got, updated := at[host]
			switch {
			case updated && !got.After(b0):
				eUp += e
				mUp += m
			case !updated || !got.Before(b1):
				un = true
			default:
				continue // updated during the bucket: neither group
			}
			eAll += e
			mAll += m
		}
		if !un || mUp <= 0 || eAll == 0 || mUp >= mAll {
			continue
		}
		q := mUp / mAll
		obs += eUp
		exp += eAll * q
		vr += eAll * q * (1 - q)
	}
	if vr <= 0 {
		return 1
	}
	z := (obs - 0.5 - exp) / math.Sqrt(vr)
	return clampP(0.5 * math.Erfc(z/math.Sqrt2))
}

// splitGate is the host split's own level: below it the split is
// evidence that the excess fell on the updated hosts, above it the
// anchored test confirms nothing, however strong the rise.
const splitGate = 0.01

// bothHalves combines the series-level rise and the host split when each
// is evidence on its own: the rise passed anchorScreen before the split
// was asked for, and the split must pass splitGate. Then Fisher's method
// combines them, so a moderate rise and a clear split confirm together
// early in a rollout. Without the gate, Fisher's method let the rise alone
// carry it: a burst of a background class that began after a rollout had
// finished (p 1e-30 for the rise, no host evidence at all) combined to
// 1e-28, confirmed at the rollout's start. With it, a real rise that the
// deploy did not cause confirms at most splitGate of the time, whatever
// its size. (The corpus's quiet-day false pages did not come this way:
// they page through attribution, BENCHMARKS.md.)
func bothHalves(rise, split float64) float64 {
	if split >= splitGate {
		return 1
	}
	x := rise * split
	if x <= 0 {
		return minP
	}
	return clampP(x * (1 - math.Log(x)))
}

// median of x, without reordering it; 0 for none.
func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// anchoredTest runs the deploy-anchored test of c for each recent deploy of
// its service and returns the strongest, its p-value corrected for the
// deploys tested and the share of the budget anchors get. ok is false when
// no deploy was recent enough, and tested then says the search keeps its
// whole budget.
func anchoredTest(ctx context.Context, src Source, c candidate, ds []Deploy, w Window, cfg detectConfig) (best episode, ok bool, err error) {
	L := len(c.counts)
	for _, d := range ds {
		s := w.Index(rolloutStart(d))
		ep, found := anchoredEpisode(c.counts, c.requests, c.hist, s, cfg)
		if !found || ep.pRaw >= anchorScreen {
			continue
		}
		sc, err := src.Scope(ctx, ScopeQuery{Service: c.service, Messages: c.members, From: w.Start(s), To: w.Start(L), Window: w})
		if err != nil {
			return episode{}, false, err
		}
		p := bothHalves(ep.pRaw, hostSplitP(d, sc, w, s, L))
		ep.p = clampP(math.Min(1, p*float64(len(ds))/anchorWeight))
		if !ok || ep.p < best.p {
			best, ok = ep, true
		}
	}
	return best, ok, nil
}
