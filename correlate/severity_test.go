package correlate

import (
	"strings"
	"testing"

	"github.com/culprithq/culprit/rules"
)

func TestGrade(t *testing.T) {
	cfg := rules.Default().Correlate // page needs 5 customers
	finding := func(kind Kind, customers, hosts int) Finding {
		return Finding{Kind: kind, Scope: ScopeSummary{Affected: map[string]int{FieldCustomer: customers, FieldHost: hosts}}}
	}
	cases := []struct {
		name     string
		f        Finding
		carriers int
		excess   float64
		want     Severity
		reason   string
	}{
		{"new class, first minutes: few errors, five customers", finding(KindNewError, 5, 1), 3, 8, SeverityPage, "5 customers on 1 hosts"},
		{"new class, many errors carried by three customers", finding(KindNewError, 12, 3), 3, 40, SeverityNotify, "3 customers carry 80%"},
		{"new class, enough errors and broad", finding(KindNewError, 30, 4), 20, 60, SeverityPage, "30 customers"},
		{"new class, four customers", finding(KindNewError, 4, 2), 4, 6, SeverityNotify, "only 4 customers"},
		{"new class on too few entities", finding(KindNewError, 2, 1), 2, 6, SeverityInfo, "new signature reached only 2 customers"},
		{"increase carried by three customers, even with few errors", finding(KindErrorIncrease, 40, 6), 3, 8, SeverityNotify, "3 customers carry 80%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reasons := grade(c.f, c.carriers, c.excess, cfg)
			if got != c.want || !strings.Contains(strings.Join(reasons, "; "), c.reason) {
				t.Fatalf("grade = %s %q, want %s with %q", got, reasons, c.want, c.reason)
			}
		})
	}
}
