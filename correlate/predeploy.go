package correlate

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

// PreDeployExcess is one customer's own burst of the finding's class in the
// minutes before the suspected deploy's rollout began. A big customer's
// burst shortly before a deploy dates a series' onset before the rollout,
// and without a word about it the reader sees errors that "started before
// the deploy" and doubts the suspect, or blames the deploy for that
// customer. Saying who carried the early excess separates the two stories:
// the deploy is judged on its own evidence either way.
type PreDeployExcess struct {
	// DeployID is the suspected deploy whose rollout the burst preceded.
	DeployID string `json:"deploy_id"`
	// From and To bound the minutes examined: up to onsetSlack before the
	// rollout's first host, and its start.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Customer is the organization.id that carried the excess.
	Customer string `json:"customer"`
	// Excess is the errors over what the baseline rate predicts for the
	// requests of those minutes; Share is the customer's part of it.
	Excess float64 `json:"excess"`
	Share  float64 `json:"share"`
}

// Sentence says it in a report's words, every share with its denominator:
// "before dep-1 began rolling out at 16:00 UTC, one customer
// (organization.id=42) carried 93% of the 18 excess errors of 15:50–16:00".
func (p *PreDeployExcess) Sentence() string {
	return fmt.Sprintf("before %s began rolling out at %s UTC, one customer (organization.id=%s) carried %s of the %.0f excess errors of %s–%s: their own burst, not evidence about the deploy",
		p.DeployID, p.To.UTC().Format("15:04"), p.Customer, Percent(p.Share), p.Excess,
		p.From.UTC().Format("15:04"), p.To.UTC().Format("15:04"))
}

// preDeployExcess looks at the minutes before d's rollout for an excess of
// the class over baseRate that one customer carries (80% of it, as
// excessCustomers counts). It is nil when those minutes show no excess of
// at least minErrors errors and twice the baseline, or when the excess is
// spread across customers: an early start of the change itself, which the
// onset already says.
func preDeployExcess(ctx context.Context, src Source, c candidate, d Deploy, baseRate float64, minErrors float64, w Window) (*PreDeployExcess, error) {
	start := rolloutStart(d)
	s := w.Index(start)
	if s <= 0 || s > len(c.counts) || baseRate <= 0 {
		return nil, nil
	}
	from := max(0, w.Index(start.Add(-onsetSlack(w))))
	var errs, reqs float64
	for i := from; i < s; i++ {
		errs += c.counts[i]
		reqs += c.requests[i]
	}
	if errs < minErrors || errs < 2*baseRate*reqs {
		return nil, nil
	}
	sc, err := src.Scope(ctx, ScopeQuery{Service: c.service, Messages: c.members, From: w.Start(from), To: w.Start(s), Window: w})
	if err != nil {
		return nil, err
	}
	carriers, excess := excessCustomers(sc, baseRate)
	if carriers != 1 || excess <= 0 {
		return nil, nil
	}
	byCust, reqCust := sc.Errors[FieldCustomer], sc.Requests[FieldCustomer]
	type cust struct {
		id string
		x  float64
	}
	var cs []cust
	for id, e := range byCust {
		cs = append(cs, cust{id, e - baseRate*reqCust[id]})
	}
	sort.Slice(cs, func(a, b int) bool { return cs[a].x > cs[b].x || cs[a].x == cs[b].x && cs[a].id < cs[b].id })
	if len(cs) == 0 || cs[0].x <= 0 {
		return nil, nil
	}
	return &PreDeployExcess{
		DeployID: d.ID, From: w.Start(from), To: w.Start(s), Customer: cs[0].id,
		Excess: math.Round(excess), Share: math.Min(1, cs[0].x/excess),
	}, nil
}
