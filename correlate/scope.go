package correlate

import (
	"math"
	"sort"
)

// Concentration thresholds. A value is reported when it carries a clear
// majority of its dimension's errors out of proportion to its traffic; the
// numbers are deliberately plain so a reader can check them by eye.
const (
	minShareOfErrors = 0.1
	minLift          = 1.5
	maxConcentration = 8
)

// summarizeScope counts who is affected and finds the dimension values that
// carry the errors out of proportion to their traffic: "cloud.provider=aws
// carries 100% of the new errors but 41% of requests" is what tells infra
// where to look.
func summarizeScope(sc *Scope) ScopeSummary {
	out := ScopeSummary{Affected: map[string]int{}, Concentration: []Concentration{}}
	for _, f := range AffectedFields {
		out.Affected[f] = len(sc.Errors[f])
		if top := topValues(sc.Errors[f], MaxTop); len(top) > 0 {
			if out.Top == nil {
				out.Top = map[string][]ValueCount{}
			}
			out.Top[f] = top
		}
	}
	for _, field := range ScopeFields {
		errs := sc.Errors[field]
		reqs := sc.Requests[field]
		te, tr := sumMap(errs), sumMap(reqs)
		if te == 0 {
			continue
		}
		for v, e := range errs {
			soe := e / te
			sor := safeDiv(reqs[v], tr)
			if soe < minShareOfErrors || soe < sor*minLift {
				continue
			}
			out.Concentration = append(out.Concentration, Concentration{Field: field, Value: v, ShareOfErrors: soe, ShareOfRequests: sor})
		}
	}
	order := make(map[string]int, len(ScopeFields))
	for i, f := range ScopeFields {
		order[f] = i
	}
	sort.Slice(out.Concentration, func(a, b int) bool {
		ca, cb := out.Concentration[a], out.Concentration[b]
		da, db := ca.ShareOfErrors-ca.ShareOfRequests, cb.ShareOfErrors-cb.ShareOfRequests
		if da != db {
			return da > db
		}
		if order[ca.Field] != order[cb.Field] {
			return order[ca.Field] < order[cb.Field]
		}
		return ca.Value < cb.Value
	})
	if len(out.Concentration) > maxConcentration {
		out.Concentration = out.Concentration[:maxConcentration]
	}
	return out
}

// singleCustomer reports whether one customer carries the finding: either
// only one is affected or one carries nearly all the errors.
func singleCustomer(f Finding) (string, bool) {
	if f.Scope.Affected[FieldCustomer] == 1 {
		for _, c := range f.Scope.Concentration {
			if c.Field == FieldCustomer {
				return c.Value, true
			}
		}
		return "", true
	}
	for _, c := range f.Scope.Concentration {
		if c.Field == FieldCustomer && c.ShareOfErrors >= 0.9 {
			return c.Value, true
		}
	}
	return "", false
}

// oneCustomerShare is the customer that carries the finding and its share
// of the errors, when one does and more than one is affected: a headline
// that counts 7 customers says at once that one of them carries 92%.
func oneCustomerShare(f Finding) (string, float64, bool) {
	org, ok := singleCustomer(f)
	if !ok || org == "" || f.Scope.Affected[FieldCustomer] <= 1 {
		return "", 0, false
	}
	for _, c := range f.Scope.Concentration {
		if c.Field == FieldCustomer && c.Value == org {
			return org, c.ShareOfErrors, true
		}
	}
	return "", 0, false
}

func sumMap(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// topValues is the n values with the most errors, most first, ties by
// value so the order is stable.
func topValues(errs map[string]float64, n int) []ValueCount {
	out := make([]ValueCount, 0, len(errs))
	for v, e := range errs {
		if e > 0 {
			out = append(out, ValueCount{Value: v, Errors: int64(math.Round(e))})
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Errors != out[b].Errors {
			return out[a].Errors > out[b].Errors
		}
		return out[a].Value < out[b].Value
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
