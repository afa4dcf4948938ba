package timeline

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// Review is what the review after the incident asks beyond the timeline:
// why alerting missed it, and what to tell customers.
type Review struct {
	Alerting  Alerting
	Customers []CustomerImpact
}

// Threshold is the error-share alert the incident is compared with: it
// fires when errors / requests over the trailing For reach Share.
type Threshold struct {
	Share float64
	For   time.Duration
}

// Alerting is the error share around the incident, bucket by bucket,
// fleet-wide and per service, as a threshold alert would have computed
// it, and whether and when it would have fired.
type Alerting struct {
	Threshold Threshold
	// Step is the bucket; zero when no traffic was recorded.
	Step time.Duration
	// Services are the services shown in Rows: the incident's first, then
	// the others with the most errors.
	Services []string
	Rows     []ShareRow
	// Verdicts say, for the fleet (Scope "fleet") and each service with
	// traffic, the highest trailing share and when the alert would have
	// fired.
	Verdicts []Verdict
}

// ShareRow is one bucket: the trailing error share over Threshold.For
// up to At, the bucket's end (when an alert evaluating then would have
// seen it), fleet-wide and of each of Alerting.Services (a scope without
// requests has share 0).
type ShareRow struct {
	At       time.Time
	Fleet    float64
	Services []float64
}

// Verdict is one scope's outcome against the threshold.
type Verdict struct {
	Scope  string
	Peak   float64
	PeakAt time.Time
	// FiredAt is the end of the first bucket whose trailing share reached
	// the threshold; zero when it never did.
	FiredAt time.Time
}

// Fleet is the Verdict scope of the whole fleet.
const Fleet = "fleet"

// maxShareColumns bounds the services shown bucket by bucket; Verdicts
// cover them all.
const maxShareColumns = 5

// CustomerImpact is one affected customer, for the message support sends.
type CustomerImpact struct {
	ID   string
	Name string
	Tier string
	// First and Last bound the customer's errors as the evaluations saw
	// them (see escalate.AffectedCustomer).
	First, Last time.Time
	Errors      int64
	Tickets     []correlate.Ticket
}

// ReviewReader is where the review's data is: the traffic evaluations
// recorded and the customers they counted. The daemon's store satisfies
// it.
type ReviewReader interface {
	Traffic(ctx context.Context, from, to time.Time) ([]escalate.ServiceTraffic, error)
	IncidentCustomers(ctx context.Context, incidentID string) ([]escalate.AffectedCustomer, error)
}

// Customers names customers by their organization id; optional.
type Customers interface {
	Customer(id string) (correlate.Customer, bool)
}

// ReviewOptions shape a review.
type ReviewOptions struct {
	Threshold Threshold
	// Customers, when set, gives names and tiers.
	Customers Customers
}

// maxReviewSpan bounds the minutes shown: an incident left open for days
// is reviewed over its first half day.
const maxReviewSpan = 12 * time.Hour

// AddReview reads the review's data for t's incident and sets t.Review.
// The share is shown from Threshold.For before the onset (the alert's
// first full window) to the recovery, or the end of the incident.
func (t *Timeline) AddReview(ctx context.Context, r ReviewReader, tickets []correlate.Ticket, o ReviewOptions) error {
	in := t.Incident
	rv := &Review{Alerting: Alerting{Threshold: o.Threshold}}
	if !in.Meta {
		start := cmp.Or(in.Onset, in.OpenedAt)
		end := cmp.Or(in.Recovered, in.ResolvedAt, in.LastSeen, start)
		if f := in.Finding; f != nil && f.Recovered != nil && in.Recovered.IsZero() {
			end = *f.Recovered
		}
		from := start.Add(-o.Threshold.For)
		to := end.Add(time.Minute)
		if to.Sub(from) > maxReviewSpan {
			to = from.Add(maxReviewSpan)
		}
		traffic, err := r.Traffic(ctx, from.Add(-o.Threshold.For), to)
		if err != nil {
			return fmt.Errorf("review of %s: %w", in.ID, err)
		}
		rv.Alerting = alerting(in.Service, traffic, from, to, o.Threshold)
	}
	affected, err := r.IncidentCustomers(ctx, in.ID)
	if err != nil {
		return fmt.Errorf("review of %s: %w", in.ID, err)
	}
	byOrg := map[string][]correlate.Ticket{}
	for _, tk := range Tickets(in, tickets) {
		if tk.OrganizationID != 0 {
			id := strconv.FormatInt(tk.OrganizationID, 10)
			byOrg[id] = append(byOrg[id], tk)
		}
	}
	for _, a := range affected {
		c := CustomerImpact{ID: a.ID, First: a.First, Last: a.Last, Errors: a.Errors, Tickets: byOrg[a.ID]}
		if o.Customers != nil {
			if k, ok := o.Customers.Customer(a.ID); ok {
				c.Name, c.Tier = k.Name, k.Tier
			}
		}
		rv.Customers = append(rv.Customers, c)
	}
	t.Review = rv
	return nil
}

// alerting computes the trailing error share per bucket in [from, to).
func alerting(service string, traffic []escalate.ServiceTraffic, from, to time.Time, th Threshold) Alerting {
	a := Alerting{Threshold: th}
	for _, sv := range traffic {
		if len(sv.Buckets) > 0 && sv.Buckets[0].Step > 0 {
			a.Step = sv.Buckets[0].Step
			break
		}
	}
	if a.Step <= 0 {
		return a
	}
	type counts struct{ req, errs []float64 }
	n := int(to.Sub(from.Truncate(a.Step)) / a.Step)
	width := max(1, int((th.For+a.Step-1)/a.Step))
	base := from.Truncate(a.Step).Add(-time.Duration(width-1) * a.Step)
	total := n + width - 1
	index := func(at time.Time) int { return int(at.Sub(base) / a.Step) }
	series := map[string]*counts{}
	fleet := &counts{req: make([]float64, total), errs: make([]float64, total)}
	var errorsBy []struct {
		name string
		errs float64
	}
	for _, sv := range traffic {
		c := &counts{req: make([]float64, total), errs: make([]float64, total)}
		sum := 0.0
		for _, b := range sv.Buckets {
			i := index(b.At)
			if i < 0 || i >= total || !b.At.Equal(base.Add(time.Duration(i)*a.Step)) {
				continue
			}
			c.req[i] += b.Requests
			c.errs[i] += b.Errors
			fleet.req[i] += b.Requests
			fleet.errs[i] += b.Errors
			sum += b.Errors
		}
		series[sv.Service] = c
		errorsBy = append(errorsBy, struct {
			name string
			errs float64
		}{sv.Service, sum})
	}
	slices.SortFunc(errorsBy, func(x, y struct {
		name string
		errs float64
	}) int {
		return cmp.Or(cmp.Compare(y.errs, x.errs), cmp.Compare(x.name, y.name))
	})
	if _, ok := series[service]; ok {
		a.Services = append(a.Services, service)
	}
	for _, e := range errorsBy {
		if len(a.Services) == maxShareColumns {
			break
		}
		if e.name != service {
			a.Services = append(a.Services, e.name)
		}
	}
	trailing := func(c *counts, i int) float64 {
		req, errs := 0.0, 0.0
		for j := i - width + 1; j <= i; j++ {
			req += c.req[j]
			errs += c.errs[j]
		}
		if req <= 0 {
			return 0
		}
		return errs / req
	}
	verdict := func(scope string, c *counts) Verdict {
		v := Verdict{Scope: scope}
		for k := range n {
			i := k + width - 1
			s := trailing(c, i)
			end := base.Add(time.Duration(i+1) * a.Step)
			if s > v.Peak {
				v.Peak, v.PeakAt = s, end
			}
			if v.FiredAt.IsZero() && s >= th.Share && th.Share > 0 {
				v.FiredAt = end
			}
		}
		return v
	}
	for k := range n {
		i := k + width - 1
		row := ShareRow{At: base.Add(time.Duration(i+1) * a.Step), Fleet: trailing(fleet, i)}
		for _, s := range a.Services {
			row.Services = append(row.Services, trailing(series[s], i))
		}
		a.Rows = append(a.Rows, row)
	}
	a.Verdicts = append(a.Verdicts, verdict(Fleet, fleet))
	names := make([]string, 0, len(series))
	for name := range series {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a.Verdicts = append(a.Verdicts, verdict(name, series[name]))
	}
	return a
}
