package correlate

import (
	"math"
	"sync"

	"github.com/culprithq/culprit/correlate/changepoint"
)

// newMaxBaseErrors is the most errors a class may have had before its
// onset and still be new: a stray or two from a host that got the change
// early, or an onset dated a minute late.
const newMaxBaseErrors = 2

// detectConfig holds the knobs of the per-series test.
type detectConfig struct {
	minErrors   float64 // fewest errors in an episode
	minRatio    float64 // smallest episode/baseline rate ratio
	minBase     int     // fewest baseline buckets before an onset can be tested
	recovery    int     // buckets at baseline that mean recovered
	block       int     // buckets per dispersion block
	newShareMax float64 // baseline rate at most this share of the episode rate means "new class"
	// priorAlpha is the overdispersion (1/NB size, per block) typical of the
	// run's series: the least any series is assumed to have.
	priorAlpha float64
	// corrBuckets is how long bursts stay correlated, in buckets.
	corrBuckets int
}

// minAlpha is the least overdispersion ever assumed: real error counts are
// never quite Poisson.
const minAlpha = 0.02

// episode is one elevated stretch of a series and the evidence against
// chance for it.
type episode struct {
	start, end int // buckets [start, end)
	// boundary is where segmentation put the change, before refineOnset
	// moved start earlier: the latest the onset can honestly be dated.
	boundary  int
	recovered bool // end is a recovery inside the window
	baseErr   float64
	baseReq   float64
	epErr     float64
	epReq     float64
	baseRate  float64 // smoothed errors per request before onset
	pRaw      float64 // tail probability of the episode under the baseline
	p         float64 // pRaw corrected for the onset positions searched
	newClass  bool
	// hist is how many buckets before the searched span the baseline
	// also covers (see history); start and end count from the span.
	hist int
	// seasonalRate is the errors per request of the same hours in
	// previous periods, when that was higher than baseRate and the
	// episode was judged against it too; 0 otherwise.
	seasonalRate float64
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// detect finds the most significant upward episode in counts against
// exposure. ok is false when the series cannot show one (too few errors, or
// no elevated segment); p is then 1 for the family correction.
//
// Segmentation (PELT with a Poisson cost against request volume) only
// proposes where rates change. Whether a change is real is decided by a
// negative-binomial tail whose dispersion comes from the baseline's own
// block-to-block variation, because background error classes are bursty and
// a Poisson test would call every burst a change.
//
// counts and exposure are the span searched for onsets; h summarises the
// buckets before it, which only add to the baseline.
func detect(counts, exposure []float64, h history, cfg detectConfig) (episode, bool) {
	L := len(counts)
	if L < cfg.minBase+1 || sum(counts) < cfg.minErrors {
		return episode{p: 1}, false
	}
	if !quickScreen(counts, exposure, h, cfg) {
		return episode{p: 1}, false
	}
	cps := segment(counts, exposure, cfg.block)
	bounds := make([]int, 0, len(cps)+2)
	bounds = append(bounds, 0)
	bounds = append(bounds, cps...)
	bounds = append(bounds, L)

	best := episode{p: 1}
	found := false
	// Each segment after the first is a candidate onset.
	for j := 1; j < len(bounds)-1; j++ {
		start := bounds[j]
		if start < cfg.minBase {
			continue
		}
		ep, ok := testEpisode(counts, exposure, h, bounds, j, cfg)
		if !ok {
			continue
		}
		// Prefer the smallest p; among equals, the latest episode, which is
		// the one an operator is living through.
		if !found || ep.p < best.p || (ep.p == best.p && ep.start > best.start) {
			best, found = ep, true
		}
	}
	return best, found
}

// prefixPool holds quickScreen's prefix sums: it runs on every series of
// every run, and allocating them each time was a third of a run's garbage.
var prefixPool = sync.Pool{New: func() any { return new([]float64) }}

// quickScreen rejects series in which no stretch could be a reportable
// episode, before the much costlier segmentation. It scans windows of
// geometrically growing length at every start and asks whether any reaches
// the minimum count, the minimum ratio and a Poisson likelihood-ratio
// statistic worth a p-value of 1e-3 against the rate before it. The final
// test uses a negative binomial, whose tail is never lighter than the
// Poisson's, and needs p far below 1e-3 after its corrections, so a series
// rejected here could not have been reported. Most series in a run are
// quiet; this keeps segmentation for the few that are not.
func quickScreen(counts, exposure []float64, h history, cfg detectConfig) bool {
	const minG = 13.8 // 2*ln(1/1e-3)
	L := len(counts)
	buf := prefixPool.Get().(*[]float64)
	defer prefixPool.Put(buf)
	if cap(*buf) < 2*(L+1) {
		*buf = make([]float64, 2*(L+1))
	}
	pc, pn := (*buf)[:L+1], (*buf)[L+1:2*(L+1)]
	pc[0], pn[0] = 0, 0
	for i := range L {
		pc[i+1] = pc[i] + counts[i]
		pn[i+1] = pn[i] + exposure[i]
	}
	for s := cfg.minBase; s < L; s++ {
		if pn[s]+h.req <= 0 {
			continue
		}
		r0 := (h.err + pc[s] + 0.5) / (h.req + pn[s])
		for w := 1; ; w *= 2 {
			e := min(s+w, L)
			S, N := pc[e]-pc[s], pn[e]-pn[s]
			M := r0 * N
			if S >= cfg.minErrors && S >= M*cfg.minRatio {
				if M <= 0 || 2*(S*math.Log(S/M)-(S-M)) >= minG {
					return true
				}
			}
			if e == L {
				break
			}
		}
	}
	return false
}

// poissonPool holds segment's costs, whose prefix sums it reuses: a run
// segments every series quickScreen passes, up to thousands, and their
// prefix sums were the larger part of a run's garbage.
var poissonPool = sync.Pool{New: func() any { return new(changepoint.Poisson) }}

// segment proposes where the rate changes. PELT runs on blocks of buckets,
// aligned so the newest buckets form a whole block, because its pruning is
// weak on the many series without a change and full resolution made it the
// whole cost of a run; each boundary is then placed exactly by the best
// single split within a block of it.
func segment(counts, exposure []float64, block int) []int {
	L := len(counts)
	if L < 4*block || block < 2 {
		return changepoint.PELT(changepoint.NewPoisson(counts, exposure), L, 1, proposalPenalty(L))
	}
	nb := (L + block - 1) / block
	off := nb*block - L // the first block is short by off buckets
	bc, be := make([]float64, nb), make([]float64, nb)
	for i := range L {
		k := (i + off) / block
		bc[k] += counts[i]
		be[k] += exposure[i]
	}
	cost := poissonPool.Get().(*changepoint.Poisson)
	defer poissonPool.Put(cost)
	blockCPs := changepoint.PELT(cost.Reset(bc, be), nb, 1, proposalPenalty(L))
	cost.Reset(counts, exposure)
	out := make([]int, 0, len(blockCPs))
	prev := 0
	for j, b := range blockCPs {
		next := L
		if j+1 < len(blockCPs) {
			next = blockCPs[j+1]*block - off
		}
		at := b*block - off
		best, bestAt := math.Inf(1), at
		for t := max(prev+1, at-block+1); t <= min(next-1, at+block-1); t++ {
			if v := cost.Cost(prev, t) + cost.Cost(t, next); v < best {
				best, bestAt = v, t
			}
		}
		out = append(out, bestAt)
		prev = bestAt
	}
	return out
}

// proposalPenalty is the BIC penalty per change. Segmentation only proposes
// episodes; the negative-binomial test, corrected over every onset position,
// decides, so the penalty can be mild enough that a short series can still
// propose an episode that rises and falls (two changes).
func proposalPenalty(L int) float64 { return 2 * math.Log(float64(L)) }

// testEpisode builds the episode that starts at segment j and tests it.
func testEpisode(counts, exposure []float64, h history, bounds []int, j int, cfg detectConfig) (episode, bool) {
	L := len(counts)
	start := bounds[j]
	baseErr, baseReq := h.err, h.req
	for i := 0; i < start; i++ {
		baseErr += counts[i]
		baseReq += exposure[i]
	}
	if baseReq <= 0 {
		return episode{}, false
	}
	r0 := (baseErr + 0.5) / baseReq
	segRate := func(k int) float64 {
		var c, n float64
		for i := bounds[k]; i < bounds[k+1]; i++ {
			c += counts[i]
			n += exposure[i]
		}
		return safeDiv(c, n)
	}
	rj := segRate(j)
	if rj < r0*cfg.minRatio {
		return episode{}, false
	}
	// The episode runs while segments stay clearly above baseline. It has
	// recovered when every remaining segment is back near baseline and that
	// has lasted long enough to trust.
	peak := rj
	end := L
	recovered := false
	for k := j + 1; k < len(bounds)-1; k++ {
		r := segRate(k)
		if r > peak {
			peak = r
		}
		if r <= r0+0.2*(peak-r0) {
			if restLow(counts, exposure, bounds, k, r0+0.2*(peak-r0)) && L-bounds[k] >= cfg.recovery {
				end = bounds[k]
				recovered = true
			}
			if recovered {
				break
			}
		}
	}
	ep := episode{start: start, end: end, boundary: start, recovered: recovered, baseErr: baseErr, baseReq: baseReq, baseRate: r0, hist: h.buckets}
	// The CUSUM may not walk the onset into the minimum baseline that
	// admitted the episode.
	ep.start = refineOnset(counts, exposure, max(bounds[j-1], cfg.minBase), start, r0, rj)
	// Recompute the baseline for the refined onset: anything moved into the
	// episode no longer counts as baseline.
	ep.baseErr, ep.baseReq = h.err, h.req
	for i := 0; i < ep.start; i++ {
		ep.baseErr += counts[i]
		ep.baseReq += exposure[i]
	}
	if ep.baseReq <= 0 {
		return episode{}, false
	}
	ep.baseRate = (ep.baseErr + 0.5) / ep.baseReq
	for i := ep.start; i < ep.end; i++ {
		ep.epErr += counts[i]
		ep.epReq += exposure[i]
	}
	if ep.epErr < cfg.minErrors || ep.epReq <= 0 {
		return episode{}, false
	}
	if safeDiv(ep.epErr, ep.epReq) < ep.baseRate*cfg.minRatio {
		return episode{}, false
	}
	disp := ep.judge(counts, exposure, h, cfg)
	positions := float64(L - cfg.minBase)
	ep.p = clampP(math.Min(1, ep.pRaw*positions))
	// A class that follows the day or the week is also judged against the
	// same hours of previous periods: the episode must stand out from
	// those as well. This only ever makes the test stricter.
	if h.seasonal != nil {
		if sr, ok := h.seasonal(ep.start, ep.end); ok && sr > ep.baseRate {
			if safeDiv(ep.epErr, ep.epReq) < sr*cfg.minRatio {
				return episode{}, false
			}
			ps := nbUpperTail(ep.epErr, sr*ep.epReq, disp)
			if ps > ep.pRaw {
				ep.pRaw = ps
				ep.p = clampP(math.Min(1, ps*positions))
			}
			ep.seasonalRate = sr
		}
	}
	return ep, true
}

// judge sets the episode's raw tail probability under its baseline (and
// the older history summarised in h) and whether its class is new, from
// its counts and baseline. It returns the dispersion the tail used, so
// that a further baseline (a seasonal one) is judged alike.
func (ep *episode) judge(counts, exposure []float64, h history, cfg detectConfig) float64 {
	k := 1 / episodeAlpha(counts, exposure, h, ep.start, ep.end, ep.baseRate, cfg)
	// Bursts last minutes, so neighbouring blocks are not independent: an
	// episode only averages out burstiness over spans longer than the
	// correlation time.
	spans := math.Max(1, float64(ep.end-ep.start)/float64(cfg.corrBuckets))
	ep.pRaw = nbUpperTail(ep.epErr, ep.baseRate*ep.epReq, k*spans)
	// New means (nearly) absent before, not merely far rarer: a sparse
	// background class (a deadlock a few times an hour) bursting 20× has a
	// baseline rate under 5% of its burst's, yet dozens of errors in the
	// baseline say it was there all along, and it must be judged, and
	// held, as the increase it is.
	ep.newClass = ep.baseErr <= newMaxBaseErrors && safeDiv(ep.baseErr, ep.baseReq) <= cfg.newShareMax*safeDiv(ep.epErr, ep.epReq)
	return k * spans
}

// restLow reports whether every segment from k on stays at or below limit.
func restLow(counts, exposure []float64, bounds []int, k int, limit float64) bool {
	for s := k; s < len(bounds)-1; s++ {
		var c, n float64
		for i := bounds[s]; i < bounds[s+1]; i++ {
			c += counts[i]
			n += exposure[i]
		}
		if safeDiv(c, n) > limit {
			return false
		}
	}
	return true
}

// refineOnset moves the onset earlier than the segmentation's boundary when
// the excess began before it. Segmentation places a step where the jump is
// clearest, which for a host-by-host rollout is mid-ramp; a CUSUM tuned to a
// quarter of the jump finds where the excess started to accumulate.
func refineOnset(counts, exposure []float64, lo, start int, r0, r1 float64) int {
	ra := r0 + 0.25*(r1-r0)
	if ra <= r0 || r0 <= 0 {
		return start
	}
	lr := math.Log(ra / r0)
	// Walk backwards accumulating the log-likelihood ratio; the onset is the
	// point from which the cumulative evidence for the change is largest.
	best, bestAt, acc := 0.0, start, 0.0
	for i := start - 1; i >= lo; i-- {
		acc += counts[i]*lr - (ra-r0)*exposure[i]
		if acc > best {
			best, bestAt = acc, i
		}
	}
	return bestAt
}

// episodeAlpha is the overdispersion used to judge the episode [start,
// end): the series' own, from its block sums outside the episode (a class
// that bursts again after recovering was bursty all along), but never less
// than the run's prior. A class that merely happened to be calm before its
// first burst is not judged as if bursts never happen: a moment fit on a few
// calm hours says nothing about rare large bursts.
//
// The summarised history h counts as more baseline blocks.
func episodeAlpha(counts, exposure []float64, h history, start, end int, rate float64, cfg detectConfig) float64 {
	a1, n1 := blockAlpha(counts[:start], exposure[:start], rate, cfg.block)
	a2, n2 := blockAlpha(counts[end:], exposure[end:], rate, cfg.block)
	ah, nh := h.alpha(rate)
	own := safeDiv(a1*n1+a2*n2+ah*nh, n1+n2+nh)
	return math.Max(math.Max(own, cfg.priorAlpha), minAlpha)
}

// blockAlpha is the method-of-moments overdispersion of block sums against
// their expected value under rate: Var = mu + alpha*mu². It works on blocks
// rather than buckets because bursts last several buckets: per-bucket
// variance would understate how far a multi-minute sum wanders by chance.
func blockAlpha(counts, exposure []float64, rate float64, block int) (alpha, blocks float64) {
	var num, den float64
	for s := 0; s+block <= len(counts); s += block {
		var c, n float64
		for i := s; i < s+block; i++ {
			c += counts[i]
			n += exposure[i]
		}
		mu := n * rate
		if mu <= 0 {
			continue
		}
		d := c - mu
		num += d*d - mu
		den += mu * mu
		blocks++
	}
	if den <= 0 || num <= 0 {
		return 0, blocks
	}
	return num / den, blocks
}

// seriesAlpha is a series' own overdispersion over the whole window (the
// searched span and its summarised history h), the raw material of the
// run's prior.
func seriesAlpha(counts, exposure []float64, h history, block int) (float64, bool) {
	c, n := sum(counts), sum(exposure)
	if h.buckets > 0 {
		c, n = c+h.err, n+h.req
	}
	if c < 20 || n <= 0 {
		return 0, false
	}
	a, nb := blockAlpha(counts, exposure, c/n, block)
	if h.buckets > 0 {
		ah, nh := h.alpha(c / n)
		a = safeDiv(a*nb+ah*nh, nb+nh)
	}
	return a, true
}

// priorAlpha is the median overdispersion across the run's series: robust to
// the few series that hold a real incident.
func priorAlpha(alphas []float64) float64 {
	if len(alphas) == 0 {
		return 0.5
	}
	return math.Max(median(alphas), minAlpha)
}

// sustainBlock is the width, in buckets, of the blocks a held increase must
// stay elevated in: the block over which baseline burstiness is measured.
const sustainBlock = 5

// blockRate is one block's rate against the episode's baseline.
type blockRate struct {
	ratio float64 // its rate over the baseline rate
	p     float64 // tail probability of its count under the baseline
}

// elevated: at the minimum ratio, and more errors than the baseline's own
// burstiness explains at p < 0.01.
func (b blockRate) elevated(minRatio float64) bool { return b.ratio >= minRatio && b.p < 0.01 }

// sustained reports, oldest first, how each block of the newest span
// buckets compares with the episode's baseline, with the same
// negative-binomial tail the episode was tested with. It is empty for a
// recovered episode or a window shorter than span.
func sustained(counts, exposure []float64, h history, ep episode, span int, cfg detectConfig) []blockRate {
	L := len(counts)
	if ep.recovered || span <= 0 || span > L || ep.baseRate <= 0 {
		return nil
	}
	k := 1 / episodeAlpha(counts, exposure, h, ep.start, ep.end, ep.baseRate, cfg)
	var out []blockRate
	for from := L - span; from < L; from += sustainBlock {
		to := min(from+sustainBlock, L)
		var c, n float64
		for i := from; i < to; i++ {
			c += counts[i]
			n += exposure[i]
		}
		b := blockRate{p: 1}
		if n > 0 {
			b.ratio = c / n / ep.baseRate
			b.p = nbUpperTail(c, ep.baseRate*n, k)
		}
		out = append(out, b)
	}
	return out
}
