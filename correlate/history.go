package correlate

import (
	"slices"
	"time"

	"github.com/culprithq/culprit/rules"
)

// history summarises the buckets of a series before the span that change
// detection searches (see rules.Correlate.DetectionSpan). Onsets are only
// looked for in the recent span, where segmentation runs at full
// resolution; the older buckets still count as baseline, through their
// totals and the moments of their block sums, which is all the baseline
// rate and the block dispersion (blockAlpha) read from them. The zero value
// is no history: detection then behaves exactly as on the span alone.
type history struct {
	buckets  int     // buckets summarised
	err, req float64 // errors and requests in them
	// Moments of whole blocks (block buckets each, from the first bucket)
	// with requests: Σc², Σc·n, Σn², Σn, and how many there are.
	scc, scn, snn, sn, blocks float64
	// seasonal, when seasonality is on, is the errors per request of
	// the same hours in previous periods as the span's buckets [start,
	// end); ok is false when the window holds no such period.
	seasonal func(start, end int) (rate float64, ok bool)
}

// alpha is blockAlpha over the summarised blocks: with mu = n·rate,
// Σ((c-mu)² - mu) and Σmu² expand into the moments kept.
func (h history) alpha(rate float64) (alpha, blocks float64) {
	if rate <= 0 || h.blocks == 0 {
		return 0, 0
	}
	num := h.scc - 2*rate*h.scn + rate*rate*h.snn - rate*h.sn
	den := rate * rate * h.snn
	if den <= 0 || num <= 0 {
		return 0, h.blocks
	}
	return num / den, h.blocks
}

// exposureHistory is the part of a history that only depends on request
// volume, shared by every series of a service.
type exposureHistory struct {
	buckets int
	req     float64
	blockN  []float64 // requests per whole block
	snn, sn float64
	blocks  float64
}

func newExposureHistory(exposure []float64, buckets, block int) exposureHistory {
	e := exposureHistory{buckets: buckets}
	for _, v := range exposure[:buckets] {
		e.req += v
	}
	e.blockN = make([]float64, buckets/block)
	for b := range e.blockN {
		var n float64
		for _, v := range exposure[b*block : (b+1)*block] {
			n += v
		}
		e.blockN[b] = n
		if n > 0 {
			e.snn += n * n
			e.sn += n
			e.blocks++
		}
	}
	return e
}

// of summarises a series' history against its service's; scratch is a
// buffer the caller reuses between series.
func (e exposureHistory) of(c Counts, block int, scratch []float64) (history, []float64) {
	if e.buckets == 0 {
		return history{}, scratch
	}
	h := history{buckets: e.buckets, req: e.req, snn: e.snn, sn: e.sn, blocks: e.blocks}
	// One pass over the history: its whole blocks, then the partial block
	// left at its end, which counts in the totals only.
	nb := len(e.blockN)
	if cap(scratch) < nb+1 {
		scratch = make([]float64, nb+1)
	}
	scratch = scratch[:nb+1]
	clear(scratch)
	h.err = c.AddBlocks(scratch, block)
	h.err -= c.Sum(e.buckets, (nb+1)*block)
	for b, n := range e.blockN {
		if n > 0 {
			s := scratch[b]
			h.scc += s * s
			h.scn += s * n
		}
	}
	return h, scratch
}

// seasonalRate is the errors per request that the same buckets [a, b) of
// the window had one, two, … periods back, up to periods of them: the
// lower median of the rates of those the window holds, so that one earlier
// incident among them does not excuse this one. ok is false when the
// window holds none.
func seasonalRate(all Counts, req []float64, a, b, period, periods int) (float64, bool) {
	var rates []float64
	for k := 1; k <= periods; k++ {
		s, e := a-k*period, b-k*period
		if s < 0 {
			break
		}
		var n float64
		for _, v := range req[s:e] {
			n += v
		}
		if n > 0 {
			rates = append(rates, all.Sum(s, e)/n)
		}
	}
	if len(rates) == 0 {
		return 0, false
	}
	slices.Sort(rates)
	return rates[(len(rates)-1)/2], true
}

// seasonalPeriod is the period of cfg.Seasonality in buckets of step, or 0
// when it is off.
func seasonalPeriod(cfg rules.Correlate, step time.Duration) int {
	if step <= 0 {
		return 0
	}
	switch cfg.Seasonality {
	case rules.SeasonalityDaily:
		return int(24 * time.Hour / step)
	case rules.SeasonalityWeekly:
		return int(7 * 24 * time.Hour / step)
	}
	return 0
}

// detectionOffset is the first bucket change detection searches in a
// window of L buckets of step: the newest span buckets, or all of them
// when the span is unbounded or covers the window.
func detectionOffset(cfg rules.Correlate, L int, step time.Duration) int {
	span := cfg.DetectionSpan.D()
	if span <= 0 || step <= 0 {
		return 0
	}
	n := int(span / step)
	if n <= 0 || L <= n {
		return 0
	}
	return L - n
}
