package correlate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// rolloutRun is a fleet of 10 hosts over L one-minute buckets: one existing
// class at 1.5 errors a minute (0.15 per host) that runs factor× on each
// host once host h received deploy dep at bucket 300+h, beside three bursty
// background classes that set the run's prior burstiness.
func rolloutRun(seed uint64, L int, factor float64) (*Traffic, *Scope, Deploy) {
	return rolloutRunUntil(seed, L, factor, L)
}

// rolloutRunUntil is rolloutRun with the increase ending at bucket until.
func rolloutRunUntil(seed uint64, L int, factor float64, until int) (*Traffic, *Scope, Deploy) {
	return rolloutRunWith(seed, L, factor, func(h, i int) bool { return i >= 300+h && i < until })
}

// rolloutRunWith is rolloutRun with the class at factor× on host h in
// bucket i when on(h, i).
func rolloutRunWith(seed uint64, L int, factor float64, on func(h, i int) bool) (*Traffic, *Scope, Deploy) {
	r := rand.New(rand.NewPCG(seed, 1))
	w, _ := NewWindow(t0, t0.Add(time.Duration(L)*time.Minute), time.Minute)
	dep := Deploy{ID: "dep-1", Service: "api", Version: "v2", StartedAt: w.Start(300)}
	for h := range 10 {
		dep.Hosts = append(dep.Hosts, HostRollout{Name: fmt.Sprintf("h%d", h), At: w.Start(300 + h)})
	}
	sc := fleet(w, func(h, i int) float64 {
		mu := 0.15
		if on(h, i) {
			mu *= factor
		}
		return poisson(r, mu)
	}, func(h, i int) string {
		if i >= 300+h {
			return "v2"
		}
		return "v1"
	})
	c := seriesOf(w, sc)
	st := ServiceTraffic{Service: "api", Requests: c.Requests, Errors: make([]float64, L)}
	st.Messages = append(st.Messages, MessageCounts{Message: "context deadline exceeded after 30s", Counts: NewCounts(c.Errors), Examples: []string{"context deadline exceeded after 30s"}})
	for k, m := range []string{"upstream connect error or disconnect reset before headers", "pq: deadlock detected while waiting for lock", "WAF blocked request matching rule 942100"} {
		counts := make([]float64, L)
		for i := range L {
			mu := 0.5
			if (i+40*k)%90 < 5 {
				mu = 1.5 // a burst of 5 minutes every hour and a half
			}
			counts[i] = poisson(r, mu)
		}
		st.Messages = append(st.Messages, MessageCounts{Message: m, Counts: NewCounts(counts), Examples: []string{m}})
	}
	for _, mc := range st.Messages {
		for i, v := range mc.Counts.Dense() {
			st.Errors[i] += v
		}
	}
	return &Traffic{Window: w, Services: []ServiceTraffic{st}}, sc, dep
}

// An 8× increase on the hosts a rollout reached is confirmed five minutes
// after the rollout began, with half the hosts updated; without the deploy to anchor it, the onset
// search cannot tell it from a burst that early.
func TestAnchoredTestConfirmsARolloutIncreaseEarly(t *testing.T) {
	cfg := rules.Default().Correlate
	found := func(tr *Traffic, sc *Scope, deploys []Deploy) (Finding, bool) {
		t.Helper()
		res, err := Run(context.Background(), staticSource{tr: tr, scope: sc}, Input{Window: tr.Window, Deploys: deploys}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Findings {
			if f.Signature == "context deadline exceeded after <*>" || f.Signature == "context deadline exceeded after 30s" {
				return f, true
			}
		}
		return Finding{}, false
	}
	confirmed, searched := 0, 0
	for seed := range uint64(10) {
		tr, sc, dep := rolloutRun(seed, 305, 8)
		f, ok := found(tr, sc, []Deploy{dep})
		if ok {
			confirmed++
			if !f.Onset.Equal(dep.StartedAt) {
				t.Errorf("seed %d: onset %s, want the rollout's start %s", seed, f.Onset, dep.StartedAt)
			}
		}
		if _, ok := found(tr, sc, nil); ok {
			searched++
		}
	}
	t.Logf("5 minutes in: %d of 10 confirmed with the deploy, %d found by the search alone", confirmed, searched)
	if confirmed < 9 {
		t.Errorf("confirmed %d of 10 rollout increases 5 minutes in, want at least 9", confirmed)
	}
	if searched > 2 {
		t.Errorf("the onset search alone found %d of 10 that early: the test no longer shows what anchoring adds", searched)
	}
}

// A burst of the class on every host that begins after the rollout has
// finished has a strong rise after the deploy but no host split: the
// anchored test must not confirm it. Before the split was gated, Fisher's
// method let the rise alone confirm it (1e-30 and a split of 1 combined to
// about 1e-28).
func TestAnchoredTestIgnoresABurstAfterTheRollout(t *testing.T) {
	split := 0
	for seed := range uint64(20) {
		tr, sc, dep := rolloutRunWith(seed, 325, 8, func(h, i int) bool { return i >= 313 })
		p := hostSplitP(dep, sc, tr.Window, 300, 325)
		if p < splitGate {
			split++
		}
		if got := bothHalves(1e-30, p); p >= splitGate && got < 1 {
			t.Errorf("seed %d: a rise of p=1e-30 with a host split of p=%.2g confirms at %.2g; want nothing", seed, p, got)
		}
	}
	if split > 1 {
		t.Errorf("the host split passed its gate in %d of 20 bursts after the rollout; want at most about 1%% of them", split)
	}
	// Both halves together still confirm.
	if p := bothHalves(1e-4, 1e-3); p > 1e-5 {
		t.Errorf("a rise of 1e-4 and a split of 1e-3 combine to %.2g; want below 1e-5", p)
	}
}

// A harmless deploy changes nothing: anchoring at it must not make the
// background a finding.
func TestAnchoredTestHarmlessDeploy(t *testing.T) {
	cfg := rules.Default().Correlate
	for seed := range uint64(20) {
		tr, sc, dep := rolloutRun(seed, 310, 1)
		res, err := Run(context.Background(), staticSource{tr: tr, scope: sc}, Input{Window: tr.Window, Deploys: []Deploy{dep}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Findings {
			if f.Onset.Equal(dep.StartedAt) {
				t.Errorf("seed %d: a harmless deploy anchored a finding: %s", seed, f.Headline)
			}
		}
	}
}

// A host that always errs more than its peers and happens to get the
// version first is expected to: the host split weighs each host by its own
// rate before the rollout, and does not call its usual errors the
// version's.
func TestHostSplitWeighsHostsByTheirOwnRate(t *testing.T) {
	w, _ := NewWindow(t0, t0.Add(320*time.Minute), time.Minute)
	r := rand.New(rand.NewPCG(7, 7))
	sc := fleet(w, func(h, i int) float64 {
		if h == 0 {
			return poisson(r, 1.5) // ten times its peers, all day
		}
		return poisson(r, 0.15)
	}, func(h, i int) string { return "v1" })
	dep := Deploy{ID: "dep-1", Service: "api", Version: "v2"}
	for h := range 10 {
		// h0 first, the rest only after the test's end.
		dep.Hosts = append(dep.Hosts, HostRollout{Name: fmt.Sprintf("h%d", h), At: w.Start(300 + 30*min(h, 1))})
	}
	if p := hostSplitP(dep, sc, w, 300, 320); p < 0.05 {
		t.Errorf("host split p=%.3g for a host that always erred ten times as often, want no evidence", p)
	}
	// The same host with ten times its own rate after the deploy is evidence.
	sc2 := fleet(w, func(h, i int) float64 {
		mu := 0.15
		if h == 0 {
			mu = 1.5
			if i >= 300 {
				mu = 15
			}
		}
		return poisson(r, mu)
	}, func(h, i int) string { return "v1" })
	if p := hostSplitP(dep, sc2, w, 300, 320); p > 1e-3 {
		t.Errorf("host split p=%.3g for a host at ten times its own rate after the deploy, want < 1e-3", p)
	}
}

// One big customer's burst of the class in the minutes before the suspect's
// rollout is said, with the customer and its share of the excess; the same
// excess spread across customers is the change starting early, and is not.
func TestPreDeployExcessNamesTheOneCustomer(t *testing.T) {
	w, _ := NewWindow(t0, t0.Add(320*time.Minute), time.Minute)
	c := candidate{service: "api", counts: make([]float64, 320), requests: make([]float64, 320)}
	for i := range c.counts {
		c.requests[i] = 1000
		c.counts[i] = 1
		if i >= 294 && i < 297 {
			c.counts[i] = 8 // the burst, 6 minutes before the rollout
		}
	}
	d := Deploy{ID: "dep-9", Service: "api", StartedAt: w.Start(300), Hosts: []HostRollout{{Name: "h0", At: w.Start(300)}}}
	scope := func(byCustomer map[string]float64) *Scope {
		sc := &Scope{Errors: map[string]map[string]float64{FieldCustomer: byCustomer}, Requests: map[string]map[string]float64{FieldCustomer: {}}}
		for id := range byCustomer {
			sc.Requests[FieldCustomer][id] = 10000 / float64(len(byCustomer))
		}
		return sc
	}
	one := scope(map[string]float64{"42": 22, "7": 2, "8": 1, "9": 1, "10": 1, "11": 1, "12": 1, "13": 2})
	got, err := preDeployExcess(context.Background(), staticSource{scope: one}, c, d, 0.001, 5, w)
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Customer != "42" || got.DeployID != "dep-9" || got.Share < 0.9 || !got.To.Equal(w.Start(300)) {
		t.Fatalf("pre-deploy excess %+v; want organization 42 carrying most of it before dep-9", got)
	}
	if s := got.Sentence(); !strings.Contains(s, "organization.id=42") || !strings.Contains(s, "dep-9") {
		t.Errorf("sentence %q does not name the customer and the deploy", s)
	}
	spread := map[string]float64{}
	for k := range 31 {
		spread[fmt.Sprint(k)] = 1
	}
	if got, err := preDeployExcess(context.Background(), staticSource{scope: scope(spread)}, c, d, 0.001, 5, w); err != nil || got != nil {
		t.Errorf("excess spread over 31 customers gave %+v, %v; want nothing", got, err)
	}
	// Nothing to say without an excess before the rollout.
	calm := c
	calm.counts = make([]float64, 320)
	if got, err := preDeployExcess(context.Background(), staticSource{scope: one}, calm, d, 0.001, 5, w); err != nil || got != nil {
		t.Errorf("no excess before the rollout gave %+v, %v; want nothing", got, err)
	}
}

// A leak that starts after a rollout finished is not blamed on it (the
// guard in attribute), but the report names the deploy and the comparison
// across time, with why it is not enough.
func TestUnalignedDeployIsNamedNotBlamed(t *testing.T) {
	w, _ := NewWindow(t0, t0.Add(330*time.Minute), time.Minute)
	series := &FindingChart{Errors: make([]float64, 330), Requests: make([]float64, 330)}
	for i := range series.Errors {
		series.Requests[i] = 1000
		if i%30 == 0 {
			series.Errors[i] = 1
		}
		if i >= 318 {
			series.Errors[i] = 9
		}
	}
	d := Deploy{ID: "dep-7", Service: "api", Version: "5.13.0", StartedAt: w.Start(300), FinishedAt: w.Start(304),
		Hosts: []HostRollout{{Name: "h0", At: w.Start(300)}, {Name: "h1", At: w.Start(304)}}}
	other := Deploy{ID: "dep-8", Service: "edge", Version: "2.0", StartedAt: w.Start(310), FinishedAt: w.Start(312)}
	f := Finding{Service: "api", Kind: KindErrorIncrease, Onset: w.Start(318), Series: series}
	u := unalignedDeploy(f, []Deploy{d, other}, w, time.Hour)
	if u == nil || u.DeployID != "dep-7" || !u.FinishedAt.Equal(w.Start(304)) || u.Lead != 14*time.Minute {
		t.Fatalf("unaligned deploy %+v; want dep-7, finished 14 min before the onset", u)
	}
	if u.RateAfter != 0.009 || u.Ratio < 100 || u.Low <= 1 {
		t.Errorf("rates %+v; want 0.9%% after, about 270× the hour before", u)
	}
	s := u.Sentence()
	for _, want := range []string{"no deploy aligned", "5.13.0 (dep-7)", "14 min before the onset", "fails 0.9% of api requests", "not blamed"} {
		if !strings.Contains(s, want) {
			t.Errorf("sentence %q lacks %q", s, want)
		}
	}
	// A rollout still going at the onset is attribution's to judge.
	f.Onset = w.Start(302)
	if u := unalignedDeploy(f, []Deploy{d}, w, time.Hour); u != nil {
		t.Errorf("a rollout under way at the onset is named unaligned: %+v", u)
	}
}

// An increase that came and went within the anchored test's horizon keeps
// the recovery the search dated: anchoring must not reopen it.
func TestAnchoredTestKeepsARecovery(t *testing.T) {
	cfg := rules.Default().Correlate
	tr, sc, dep := rolloutRunUntil(3, 328, 20, 312)
	res, err := Run(context.Background(), staticSource{tr: tr, scope: sc}, Input{Window: tr.Window, Deploys: []Deploy{dep}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if strings.HasPrefix(f.Signature, "context deadline exceeded") {
			if f.Recovered == nil {
				t.Errorf("finding %q not recovered; the increase ended 16 minutes before the window's end", f.Headline)
			}
			return
		}
	}
	t.Fatal("no finding for a 20× increase")
}
