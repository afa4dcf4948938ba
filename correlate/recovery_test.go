package correlate

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestCompareRates(t *testing.T) {
	// 90 errors in 10,000 requests against 10 in 10,000: the conditional
	// binomial's Clopper–Pearson interval for 90/100 is 0.8238–0.9510,
	// which is a rate ratio of 4.67–19.4.
	rr := compareRates(90, 10000, 10, 10000)
	if math.Abs(rr.ratio-9) > 1e-9 {
		t.Errorf("ratio = %v, want 9", rr.ratio)
	}
	if rr.lo < 4.6 || rr.lo > 4.75 || rr.hi < 19 || rr.hi > 19.8 {
		t.Errorf("95%% CI = %.2f–%.2f, want about 4.67–19.4", rr.lo, rr.hi)
	}
	if rr.p > 1e-15 {
		t.Errorf("p = %g, want tiny", rr.p)
	}
	// Equal rates: the interval straddles 1 and p is not small.
	rr = compareRates(50, 10000, 50, 10000)
	if rr.lo >= 1 || rr.hi <= 1 || rr.p < 0.3 {
		t.Errorf("equal rates: CI %.2f–%.2f p=%g, want 1 inside and p large", rr.lo, rr.hi, rr.p)
	}
}

func TestIsRollback(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	deploys := []Deploy{
		{ID: "dep-a", Service: "api", Version: "1.41.0", StartedAt: at(0)},
		{ID: "dep-b", Service: "api", Version: "1.42.0", StartedAt: at(60)},
		{ID: "dep-c", Service: "api", Version: "1.41.0", StartedAt: at(90)},
		{ID: "dep-d", Service: "api", Version: "1.43.0", StartedAt: at(120), Description: "Revert the ORM layer"},
		{ID: "dep-e", Service: "api", Version: "1.44.0", StartedAt: at(150)},
		{ID: "dep-f", Service: "web", Version: "1.42.0", StartedAt: at(160)},
	}
	want := map[string]bool{"dep-a": false, "dep-b": false, "dep-c": true, "dep-d": true, "dep-e": false, "dep-f": false}
	for _, d := range deploys {
		if got := IsRollback(d, deploys); got != want[d.ID] {
			t.Errorf("IsRollback(%s) = %t, want %t", d.ID, got, want[d.ID])
		}
	}
}

func TestRecoveryFor(t *testing.T) {
	w, _ := NewWindow(t0, t0.Add(6*time.Hour), time.Minute)
	bad := Deploy{ID: "dep-bad", Service: "edge", Version: "v2"}
	back := Deploy{ID: "dep-e5fb72", Service: "edge", Version: "v1", Description: "Roll back: revert v2"}
	for h := range 10 {
		bad.Hosts = append(bad.Hosts, HostRollout{Name: fmt.Sprintf("h%d", h), At: w.Start(200 + h)})
		back.Hosts = append(back.Hosts, HostRollout{Name: fmt.Sprintf("h%d", h), At: w.Start(280 + 2*h)})
	}
	bad.StartedAt, back.StartedAt = bad.Hosts[0].At, back.Hosts[0].At
	deploys := []Deploy{bad, back}
	onV2 := func(h, i int) bool { return i >= 200+h && i < 280+2*h }
	recovered := w.Start(300)

	t.Run("errors stop host by host as the rollback lands", func(t *testing.T) {
		sc := fleet(w, func(h, i int) float64 {
			if onV2(h, i) {
				return 2
			}
			return 0
		}, func(h, i int) string { return "v2" })
		f := Finding{Service: "edge", Recovered: &recovered}
		r := recoveryFor(f, bad, deploys, sc, w, w.Len())
		if r == nil {
			t.Fatal("no recovery named")
		}
		if r.DeployID != "dep-e5fb72" || !r.Rollback || !r.ReachedAffected.Equal(w.Start(298)) {
			t.Errorf("recovery = %+v, want rollback dep-e5fb72 reaching its last host at 16:58", r)
		}
		if len(r.Reasons) == 0 || !strings.HasPrefix(r.Reasons[0], "recovery alignment:") {
			t.Errorf("reasons = %q, want recovery alignment first", r.Reasons)
		}
		want := "recovered 17:00 UTC, 2 min after rollback dep-e5fb72 (edge v1) reached the last affected host"
		if got := r.Sentence(f.Recovered); got != want {
			t.Errorf("Sentence = %q, want %q", got, want)
		}
	})
	t.Run("errors stop everywhere at once midway through a later deploy: not named", func(t *testing.T) {
		sc := fleet(w, func(h, i int) float64 {
			if i >= 200+h && i < 290 {
				return 2
			}
			return 0
		}, func(h, i int) string { return "v2" })
		at := w.Start(290)
		f := Finding{Service: "edge", Recovered: &at}
		if r := recoveryFor(f, bad, deploys, sc, w, w.Len()); r != nil {
			t.Errorf("recovery = %+v, want none: the errors did not follow the replacement", r)
		}
	})
	t.Run("a one-bucket rollback leaves no strata; the recovery falls within it", func(t *testing.T) {
		quick := back
		quick.Hosts = nil
		for h := range 10 {
			quick.Hosts = append(quick.Hosts, HostRollout{Name: fmt.Sprintf("h%d", h), At: w.Start(280).Add(time.Duration(h) * 5 * time.Second)})
		}
		sc := fleet(w, func(h, i int) float64 {
			if i >= 200+h && i < 280 {
				return 2
			}
			return 0
		}, func(h, i int) string { return "v2" })
		at := w.Start(282)
		f := Finding{Service: "edge", Recovered: &at}
		r := recoveryFor(f, bad, []Deploy{bad, quick}, sc, w, w.Len())
		if r == nil || r.DeployID != quick.ID || !r.Rollback {
			t.Fatalf("recovery = %+v, want the rollback named", r)
		}
		late := w.Start(340)
		f.Recovered = &late
		if r := recoveryFor(f, bad, []Deploy{bad, quick}, sc, w, w.Len()); r != nil {
			t.Errorf("recovery an hour after the rollback = %+v, want none", r)
		}
	})
}
