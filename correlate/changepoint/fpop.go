package changepoint

import (
	"math"
	"sort"
)

// fpopBudget is the most candidate last changes fpop keeps alive. Series
// with changes, stationary noise, random walks and counts keep well under
// 60; only a long stretch of smooth drift that is large against the noise
// (a ramp) keeps many alive, because on a ramp almost every recent position
// is the best last change for some segment mean. There the exact answer is a
// staircase whose step positions are nearly interchangeable, and the budget
// bounds the run time (O(n·budget)) at the price of exactness.
const fpopBudget = 128

// fpop minimises the same penalised Gaussian mean-shift cost as
// PELT(nm, nm.Len(), minSize, penalty), by functional pruning (Maidstone,
// Hocking, Rigaill & Fearnhead 2017), and returns the same answer as long as
// no more than fpopBudget candidates survive at once.
//
// PELT keeps every candidate last change inside the current segment, so on a
// long series with few changes it is quadratic: 100,000 values with a handful
// of shifts means billions of cost evaluations. Functional pruning keeps, for
// each candidate τ, the set of segment means μ for which τ is still the best
// last change, and drops τ when that set is empty. On homogeneous stretches
// only O(log n) candidates survive.
//
// For the Gaussian mean cost the comparison between an older candidate a and
// a newer one b does not depend on the current time: b beats a at mean μ for
// every later end exactly when
//
//	F(b) - F(a) < Σ_{i∈[a,b)} (x_i-μ)²/σ² = Cost(a,b) + L(μ-m)²/σ²,
//
// with L = b-a and m the mean of [a,b). So a survives only on the interval
// m ± σ·sqrt(D/L), D = F(b)-F(a)-Cost(a,b), and the survival sets change
// only when a candidate is added. A negative D is PELT's own pruning rule.
//
// Minimum segment length: a candidate τ may end a segment only from time
// τ+minSize on, so it joins the comparison then and not before — a
// candidate that cannot yet be used must not prune one that can.
func fpop(nm *NormalMean, minSize int, penalty float64) []int {
	return fpopBudgeted(nm, minSize, penalty, fpopBudget)
}

// fpopBudgeted is fpop with the candidate budget as a parameter (at least
// 2); a budget of nm.Len()+1 or more makes it exact.
func fpopBudgeted(nm *NormalMean, minSize int, penalty float64, budget int) []int {
	n := nm.Len()
	if minSize < 1 {
		minSize = 1
	}
	if n < 2*minSize {
		return nil
	}
	s := &fpopState{
		nm:     nm,
		budget: max(budget, 2),
		f:      make([]float64, n+1),
		pos:    make([]int32, n+1),
		seen:   make([]int32, n+1),
	}
	f := s.f
	last := make([]int, n+1)
	f[0] = -penalty
	for t := 1; t < minSize; t++ {
		f[t] = math.Inf(1)
	}
	inv := 1 / (nm.sigma * nm.sigma)
	ps, ss := nm.s, nm.ss
	for t := minSize; t <= n; t++ {
		if tau := t - minSize; !math.IsInf(f[tau], 1) {
			s.insert(tau)
			if len(s.cands) > s.budget {
				s.thin()
			}
		}
		best, arg := math.Inf(1), -1
		st, sst := ps[t], ss[t]
		for _, a := range s.cands {
			d := st - ps[a]
			rss := (sst - ss[a]) - d*d/float64(t-a)
			v := f[a] + math.Max(rss, 0)*inv
			if v < best {
				best, arg = v, a
			}
		}
		f[t], last[t] = best+penalty, arg
	}
	return backtrack(last, n)
}

// fpopState is the functional description of the candidates: for each, the
// intervals of segment means on which it is the best last change.
type fpopState struct {
	nm     *NormalMean
	budget int
	f      []float64 // optimal penalised cost of each prefix
	cands  []int     // candidates alive, ascending
	pieces []piece   // sorted by lo, tiling the real line
	spare  []piece
	lo, hi []float64 // per position in cands: where it survives the newcomer
	pos    []int32   // candidate → position in cands
	seen   []int32   // candidate → last insertion (stamp) that found it alive
	stamp  int32
}

// piece says candidate tau is the best last change for segment means in
// [lo, hi].
type piece struct {
	lo, hi float64
	tau    int
}

// insert adds candidate b, newer than every candidate alive.
func (s *fpopState) insert(b int) {
	if len(s.cands) == 0 {
		s.cands = append(s.cands, b)
		s.pieces = append(s.pieces[:0], piece{math.Inf(-1), math.Inf(1), b})
		return
	}
	f, ps, ss := s.f, s.nm.s, s.nm.ss
	inv, sigma := 1/(s.nm.sigma*s.nm.sigma), s.nm.sigma
	s.lo, s.hi = s.lo[:0], s.hi[:0]
	slack := pruneSlack(f[b])
	for i, a := range s.cands {
		s.pos[a] = int32(i)
		l := float64(b - a)
		sum := ps[b] - ps[a]
		m := sum / l
		rss := (ss[b] - ss[a]) - sum*m
		if rss < 0 {
			rss = 0
		}
		d := f[b] - f[a] - rss*inv
		if d < -slack {
			s.lo = append(s.lo, math.Inf(1)) // empty: b is better everywhere
			s.hi = append(s.hi, math.Inf(-1))
			continue
		}
		if d < 0 {
			d = 0
		}
		r := sigma * math.Sqrt(d/l)
		m += s.nm.centre
		s.lo = append(s.lo, m-r)
		s.hi = append(s.hi, m+r)
	}
	out := s.spare[:0]
	for _, p := range s.pieces {
		i := s.pos[p.tau]
		lo, hi := s.lo[i], s.hi[i]
		if lo <= p.lo && hi >= p.hi {
			out = appendPiece(out, p.lo, p.hi, p.tau) // a keeps all of it
			continue
		}
		out = appendPiece(out, p.lo, min(p.hi, lo), b)
		out = appendPiece(out, max(p.lo, lo), min(p.hi, hi), p.tau)
		out = appendPiece(out, max(p.lo, hi), p.hi, b)
	}
	s.spare, s.pieces = s.pieces, out
	s.stamp++
	for _, p := range out {
		s.seen[p.tau] = s.stamp
	}
	alive := s.cands[:0]
	for _, a := range s.cands {
		if s.seen[a] == s.stamp {
			alive = append(alive, a)
		}
	}
	if s.seen[b] == s.stamp {
		alive = append(alive, b)
	}
	s.cands = alive
}

// appendPiece appends [lo, hi] for tau, merging with the previous piece when
// it has the same candidate and skipping empty intervals.
func appendPiece(out []piece, lo, hi float64, tau int) []piece {
	if !(lo < hi) {
		return out
	}
	if k := len(out) - 1; k >= 0 && out[k].tau == tau {
		out[k].hi = hi
		return out
	}
	return append(out, piece{lo, hi, tau})
}

// thin drops the candidates owning the narrowest ranges of means, down to
// half the budget, and rebuilds the pieces of the rest. A narrow range means
// the candidate is only marginally better than its neighbours anywhere, so
// dropping it changes the optimum least. Rebuilding by re-inserting the kept
// candidates in order gives their exact joint description again.
func (s *fpopState) thin() {
	width := make(map[int]float64, len(s.cands))
	for _, p := range s.pieces {
		width[p.tau] += p.hi - p.lo
	}
	keep := append([]int(nil), s.cands...)
	sort.SliceStable(keep, func(i, j int) bool { return width[keep[i]] > width[keep[j]] })
	keep = keep[:s.budget/2]
	sort.Ints(keep)
	s.cands = s.cands[:0]
	s.pieces = s.pieces[:0]
	for _, a := range keep {
		s.insert(a)
	}
}
