package changepoint

import "math"

// PELT finds the segmentation of [0, n) minimising the total cost plus
// penalty per change (Killick, Fearnhead & Eckley 2012). minSize is the
// minimum segment length (values below 1 mean 1). It returns the change
// indices, sorted, never including 0.
//
// The answer is the exact optimum, the same as optimal partitioning, as long
// as c satisfies Cost(a,b)+Cost(b,d) <= Cost(a,d) (see Cost). Pruning drops
// a candidate last change s at time t once F(s)+Cost(s,t) > F(t): then t is
// a better last change than s for every later end. With a minimum segment
// length, t is not yet an allowed last change for the next minSize-1 ends,
// so the test is made against u = t+1-minSize, the candidate that becomes
// allowed at the very next step; pruning is then never premature.
//
// PELT runs in linear time when the number of changes grows with n; on long
// stretches without a change the candidate set grows and the run time tends
// to quadratic. MeanShift uses functional pruning to avoid that.
func PELT(c Cost, n, minSize int, penalty float64) []int {
	if minSize < 1 {
		minSize = 1
	}
	if n < 2*minSize {
		return nil
	}
	f := make([]float64, n+1) // f[t]: optimal penalised cost of [0, t)
	last := make([]int, n+1)  // last[t]: start of the final segment of that optimum
	f[0] = -penalty
	for t := 1; t < minSize; t++ {
		f[t] = math.Inf(1)
	}
	cands := make([]int, 0, 64)
	vals := make([]float64, 0, 64)
	for t := minSize; t <= n; t++ {
		if s := t - minSize; !math.IsInf(f[s], 1) {
			cands = append(cands, s)
		}
		best, arg := math.Inf(1), -1
		vals = vals[:0]
		for _, s := range cands {
			v := f[s] + c.Cost(s, t)
			vals = append(vals, v)
			if v < best {
				best, arg = v, s
			}
		}
		f[t], last[t] = best+penalty, arg

		u := t + 1 - minSize
		if math.IsInf(f[u], 1) {
			continue
		}
		bound := f[u] + pruneSlack(f[u])
		kept := cands[:0]
		for i, s := range cands {
			v := vals[i]
			if u != t {
				v = f[s] + c.Cost(s, u)
			}
			if v <= bound {
				kept = append(kept, s)
			}
		}
		cands = kept
	}
	return backtrack(last, n)
}

// pruneSlack keeps candidates whose bound is within rounding of the optimum:
// pruning too little only costs time, pruning a tie could change the answer.
func pruneSlack(f float64) float64 {
	return 1e-9 * math.Max(1, math.Abs(f))
}

// backtrack turns "start of the final segment of the optimum of [0, t)" into
// the sorted change points of the optimum of [0, n).
func backtrack(last []int, n int) []int {
	var cps []int
	for t := n; t > 0; t = last[t] {
		if last[t] > 0 {
			cps = append(cps, last[t])
		}
	}
	for i, j := 0, len(cps)-1; i < j; i, j = i+1, j-1 {
		cps[i], cps[j] = cps[j], cps[i]
	}
	return cps
}
