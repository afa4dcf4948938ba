package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// incident is the injected problem: where its errors can occur, how often,
// and what a correct analysis concludes about it.
type incident struct {
	shape Shape
	svc   *service
	// from and to bound incidents without a deploy; deploy-caused ones are
	// bounded by the hosts' versions instead.
	from, to int64
	bad      *plannedDeploy
	rollback *plannedDeploy
	// hosts are where the errors can occur; nil means every host of svc.
	hosts    map[*host]bool
	region   int // -1 for any
	provider string
	p        float64 // per-request probability of an injected error
	ramp     int64   // slow ramp: ms from a host's switch to full rate
	fnOnly   bool    // only function invocations fail
	cust     *customer
	site     string
	status   int
	msg      func(r *rand.Rand, q *request) string

	// leakFrom, when set, is when a deploy-caused incident's errors begin
	// (a leak that starts after the rollout); its ramp counts from then.
	leakFrom int64
	// burst is one customer's burst of the incident's class in
	// [burstFrom, burstTo), whatever the version, at probability burstP.
	burst              *customer
	burstFrom, burstTo int64
	burstP             float64

	// surge is the customers whose traffic jumps, by factor.
	surge       []*customer
	surgeFactor []float64

	tickets ticketSpec
	truth   Truth
}

// Incident tuning. The Friday numbers are the point of the exercise: the
// injected share stays a fraction of a percent of all requests, so the
// fleet's 5xx share stays under a 1% threshold while dozens of customers
// are hurt.
const (
	fridayTargetShare = 0.003 // of all requests, at full rollout
	fridayMinP        = 0.02
	fridayMaxP        = 0.06
	increaseFactor    = 8
	canaryP           = 0.08
	slowRampMaxP      = 0.04
	slowRampLength    = 80 * time.Minute
	outageP           = 0.2
	outageLength      = 45 * time.Minute
	outageRegion      = 3 // gcp europe-west1
	surgeShare        = 1.0 / 6
)

// planIncident adds the incident's deploys (and the decoys that make
// attribution honest) to plans and describes the incident.
func planIncident(cfg Config, f *fleet, r, ir *rand.Rand, plans []*plannedDeploy) (*incident, []*plannedDeploy, error) {
	start := cfg.Start.UnixMilli()
	end := start + cfg.Duration.Milliseconds()
	onset := (start + cfg.Onset.Milliseconds()) / 1000 * 1000
	inc := &incident{shape: cfg.Shape, region: -1, from: onset, to: math.MaxInt64}
	inc.truth = Truth{Shape: cfg.Shape}
	const minute = int64(60000)

	var own []*plannedDeploy // the incident's deploys, scheduled last
	addBad := func(kind deployKind, svc int, dur int64, batches bool, desc string, hosts []*host) {
		plans = dropHarmless(plans, svc, onset-30*minute, end)
		inc.svc = f.services[svc]
		inc.bad = &plannedDeploy{kind: kind, svc: svc, start: onset, dur: dur, batches: batches, desc: desc, hosts: hosts}
		own = append(own, inc.bad)
		rb := start + cfg.Rollback.Milliseconds()
		if cfg.Rollback > 0 && rb < end {
			inc.rollback = &plannedDeploy{kind: deployRollback, svc: svc, start: rb / 1000 * 1000, dur: 5 * minute, desc: "Roll back: revert \"" + desc + "\"", hosts: slices.Clone(hosts)}
			own = append(own, inc.rollback)
		}
	}

	switch cfg.Shape {
	case ShapeFriday:
		addBad(deployBad, svcEdge, 20*minute, false, "Route function invocations through the new upstream pool (fn-pool-v2)", nil)
		inc.provider = "aws"
		inc.fnOnly = true
		inc.hosts = map[*host]bool{}
		for _, h := range inc.svc.hosts {
			if h.provider == inc.provider {
				inc.hosts[h] = true
			}
		}
		inc.p = fridayP(f, inc.provider)
		inc.status = 502
		inc.msg = func(r *rand.Rand, q *request) string {
			return "function invocation failed: " + q.fn.id + " returned 502 from upstream 10." +
				strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254)) + ":8443"
		}
		inc.truth.Kind = correlate.KindNewError
		inc.truth.MessageContains = "function invocation failed"
		inc.truth.Field, inc.truth.Value = correlate.FieldProvider, inc.provider
		inc.truth.ExpectPage = true
		inc.tickets = ticketSpec{
			prob: 0.35,
			subjects: []string{
				"Functions failing with 502 since this afternoon",
				"Intermittent 502 errors on our serverless functions",
				"Checkout function returns 502 randomly",
				"\"function invocation failed\" errors on our site",
				"502 from /fn endpoints",
			},
			tags:     []string{"functions", "502", "errors"},
			priority: "high",
		}
	case ShapeIncrease, ShapeQuickIncrease, ShapeDecoyIncrease, ShapeBurstBeforeDeploy, ShapeSecondDeploy:
		dur, batches := int64(10+ir.IntN(11))*minute, ir.IntN(2) == 0
		if cfg.Shape != ShapeIncrease {
			dur, batches = int64(2+ir.IntN(4))*minute, false
		}
		addBad(deployBad, svcAPI, dur, batches, "Move site queries to the new ORM layer", nil)
		deadline, err := findClass(inc.svc, "deadline")
		if err != nil {
			return nil, nil, err
		}
		switch cfg.Shape {
		case ShapeDecoyIncrease:
			svc := []int{svcEdge, svcFunctions, svcDashboard}[ir.IntN(3)]
			plans = dropHarmless(plans, svc, onset-35*minute, onset+35*minute)
			own = append(own, &plannedDeploy{kind: deployHarmless, svc: svc, start: onset - int64(1+ir.IntN(4))*minute, dur: int64(2+ir.IntN(4)) * minute,
				desc: harmlessChanges[svc][ir.IntN(len(harmlessChanges[svc]))]})
		case ShapeBurstBeforeDeploy:
			// A big customer's own burst: enough to move a CUSUM's onset.
			inc.burst = f.byRank[1+ir.IntN(5)]
			inc.burstFrom = onset - int64(4+ir.IntN(5))*minute
			inc.burstTo = inc.burstFrom + 3*minute
			inc.burstP = 0.3
		case ShapeSecondDeploy:
			own = append(own, &plannedDeploy{kind: deployHarmless, svc: svcAPI, start: onset - 15*minute, dur: int64(2+ir.IntN(4)) * minute,
				desc: harmlessChanges[svcAPI][ir.IntN(len(harmlessChanges[svcAPI]))]})
		}
		inc.p = (increaseFactor - 1) * deadline.base
		inc.status = deadline.status
		inc.msg = deadline.msg
		inc.truth.Kind = correlate.KindErrorIncrease
		inc.truth.MessageContains = "context deadline exceeded"
		inc.truth.ExpectPage = true
		inc.tickets = ticketSpec{
			prob:     0.15,
			subjects: []string{"API requests timing out", "Deploys API very slow and failing", "Getting 500 errors from the API"},
			tags:     []string{"api", "timeout"},
			priority: "high",
		}
	case ShapeCanary:
		api := f.services[svcAPI]
		canary := api.hosts[ir.IntN(len(api.hosts))]
		addBad(deployCanary, svcAPI, 0, false, "Canary: new request router for /api/v1/sites", []*host{canary})
		inc.hosts = map[*host]bool{canary: true}
		inc.p = canaryP
		inc.status = 500
		inc.msg = func(r *rand.Rand, q *request) string {
			n := 2 + r.IntN(6)
			return "panic: runtime error: index out of range [" + strconv.Itoa(n) + "] with length " + strconv.Itoa(n) +
				" (goroutine " + strconv.Itoa(1000+r.IntN(90000)) + ")"
		}
		inc.truth.Kind = correlate.KindNewError
		inc.truth.MessageContains = "index out of range"
		inc.truth.Field, inc.truth.Value = correlate.FieldHost, canary.name
		// A canary serves real customers: when its failures reach several
		// of them, someone must halt it now, not in the morning.
		inc.truth.ExpectPage = true
		inc.tickets = ticketSpec{
			prob:     0.1,
			subjects: []string{"Random 500 errors from the API", "API returned an internal error"},
			tags:     []string{"api", "500"},
			priority: "normal",
		}
	case ShapeSlowRamp:
		addBad(deployBad, svcAPI, int64(15+ir.IntN(11))*minute, ir.IntN(2) == 0, "Reuse database connections across requests in the deploys handler", nil)
		inc.poolExhaustion(slowRampLength)
	case ShapeLateLeak:
		dur := int64(2+ir.IntN(4)) * minute
		addBad(deployBad, svcAPI, dur, false, "Cache prepared statements per connection", nil)
		// The leak starts after the rollout's last host (at most 15 s of
		// jitter past dur) and ends when a rollback replaces the version.
		inc.leakFrom = onset + dur + 15000 + int64(10+ir.IntN(11))*minute
		if inc.rollback == nil {
			inc.rollback = &plannedDeploy{kind: deployRollback, svc: svcAPI, start: inc.leakFrom + int64(40+ir.IntN(21))*minute, dur: int64(4+ir.IntN(4)) * minute,
				desc: "Roll back: revert \"Cache prepared statements per connection\""}
			own = append(own, inc.rollback)
		}
		inc.poolExhaustion(30 * time.Minute)
	case ShapeRegionOutage:
		inc.svc = f.services[svcEdge]
		// A harmless deploy of the very service, finished minutes before
		// the outage, is the trap for an attributor that blames the
		// nearest deploy.
		plans = dropHarmless(plans, svcEdge, onset-60*minute, onset+60*minute)
		decoy := &plannedDeploy{kind: deployHarmless, svc: svcEdge, start: onset - int64(19+ir.IntN(3))*minute, dur: 12 * minute, batches: ir.IntN(2) == 0, desc: harmlessChanges[svcEdge][ir.IntN(len(harmlessChanges[svcEdge]))]}
		own = append(own, decoy)
		inc.to = onset + outageLength.Milliseconds()
		inc.region = outageRegion
		inc.p = outageP
		inc.status = 503
		inc.msg = func(r *rand.Rand, q *request) string {
			return "no healthy upstream for cluster origin-" + regions[outageRegion].name + " (0/" + strconv.Itoa(6+2*r.IntN(2)) + " endpoints healthy)"
		}
		inc.truth.Kind = correlate.KindNewError
		inc.truth.MessageContains = "no healthy upstream"
		inc.truth.Field, inc.truth.Value = correlate.FieldRegion, regions[outageRegion].name
		inc.truth.ExpectPage = true
		inc.tickets = ticketSpec{
			prob:     0.25,
			subjects: []string{"Site down in Europe?", "503 \"no healthy upstream\" on our site", "Our site is unreachable for European visitors"},
			tags:     []string{"outage", "503"},
			priority: "urgent",
		}
	case ShapeSingleCustomer:
		inc.svc = f.services[svcEdge]
		inc.cust = f.byRank[5+ir.IntN(10)]
		inc.site = inc.cust.sites[0]
		inc.p = 1
		inc.status = 502
		inc.msg = func(r *rand.Rand, q *request) string {
			return "certificate verify failed for " + q.site + ": x509: certificate has expired or is not yet valid"
		}
		inc.truth.Kind = correlate.KindNewError
		inc.truth.MessageContains = "certificate verify failed"
		inc.truth.Field, inc.truth.Value = correlate.FieldCustomer, inc.cust.org
		inc.tickets = ticketSpec{
			prob:     1,
			subjects: []string{"Our site shows 502 / certificate errors"},
			tags:     []string{"ssl", "502"},
			priority: "urgent",
		}
	case ShapeTicketSurge:
		inc.truth.Kind = correlate.KindTicketSurge
		inc.truth.MessageContains = "emails not arriving"
	case ShapeTrafficSurge:
		inc.svc = f.services[svcEdge]
		limited := -1
		for _, s := range f.services {
			for _, c := range s.classes {
				if c.org >= 0 {
					limited = c.org
				}
			}
		}
		// Sites go viral until a sixth of the edge traffic is surging,
		// so that the error counts visibly rise with it.
		edge := f.services[svcEdge]
		share := 0.0
		for _, k := range ir.Perm(29) {
			c := f.byRank[1+k]
			if c.idx == limited || share >= surgeShare {
				continue
			}
			share += edge.weights[c.idx] / edge.weightTotal
			inc.surge = append(inc.surge, c)
			inc.surgeFactor = append(inc.surgeFactor, 3+2*ir.Float64())
		}
	}
	if inc.svc != nil {
		inc.truth.Service = inc.svc.name
	}

	// Another team's harmless deploy lands shortly before every onset:
	// the nearest deploy is rarely the guilty one.
	switch cfg.Shape {
	case ShapeQuiet, ShapeTicketSurge, ShapeTrafficSurge:
	default:
		if !hasDecoy(plans, inc.svc.idx, onset) {
			svc := ir.IntN(len(serviceDefs) - 1)
			if svc >= inc.svc.idx {
				svc++
			}
			d := &plannedDeploy{kind: deployHarmless, svc: svc, start: onset - int64(5+ir.IntN(20))*minute, dur: int64(10+ir.IntN(10)) * minute, batches: ir.IntN(2) == 0, desc: harmlessChanges[svc][ir.IntN(len(harmlessChanges[svc]))]}
			plans = dropHarmless(plans, svc, d.start-35*minute, d.start+35*minute)
			own = append(own, d)
		}
	}
	for _, p := range own {
		p.schedule(r, f)
	}
	plans = append(plans, own...)
	return inc, plans, nil
}

// truthTimes fills the onset and recovery once rollouts are scheduled.
func (inc *incident) truthTimes(end int64) {
	switch {
	case inc.bad != nil:
		first, last := int64(math.MaxInt64), int64(math.MinInt64)
		for i, h := range inc.bad.hosts {
			if inc.hosts == nil || inc.hosts[h] {
				first = min(first, inc.bad.at[i])
			}
		}
		if inc.leakFrom > 0 {
			first = max(first, inc.leakFrom)
		}
		inc.truth.Onset = time.UnixMilli(first).UTC()
		if inc.rollback != nil {
			for i, h := range inc.rollback.hosts {
				if inc.hosts == nil || inc.hosts[h] {
					last = max(last, inc.rollback.at[i])
				}
			}
			if last < end {
				t := time.UnixMilli(last).UTC()
				inc.truth.Recovered = &t
			}
		}
	case inc.shape == ShapeQuiet || inc.shape == ShapeTicketSurge:
	default:
		inc.truth.Onset = time.UnixMilli(inc.from).UTC()
		if inc.to < end {
			t := time.UnixMilli(inc.to).UTC()
			inc.truth.Recovered = &t
		}
	}
}

// fridayP sets the per-request failure probability so that the injected
// share of all requests is about fridayTargetShare once every affected host
// runs the bad version, whatever share of the traffic this seed's heavy
// tail happened to put on the provider's functions.
func fridayP(f *fleet, provider string) float64 {
	edge := f.services[svcEdge]
	fnw := 0.0
	for _, c := range f.customers {
		if len(c.fns) > 0 && regions[c.region].provider == provider {
			fnw += edge.weights[c.idx] * fnPathShare
		}
	}
	share := edge.share * fnw / edge.weightTotal
	if share <= 0 {
		return fridayMaxP
	}
	return min(max(fridayTargetShare/share, fridayMinP), fridayMaxP)
}

func findClass(s *service, name string) (*class, error) {
	for _, c := range s.classes {
		if c.name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("simulate: service %s has no background class %q", s.name, name)
}

// dropHarmless removes the routine deploys of svc starting in [from, to),
// which would otherwise overwrite the incident's version on some hosts.
func dropHarmless(plans []*plannedDeploy, svc int, from, to int64) []*plannedDeploy {
	return slices.DeleteFunc(plans, func(p *plannedDeploy) bool {
		return p.kind == deployHarmless && p.svc == svc && p.start >= from && p.start < to
	})
}

// hasDecoy reports whether another service's deploy starts in the half hour
// before onset.
func hasDecoy(plans []*plannedDeploy, svc int, onset int64) bool {
	for _, p := range plans {
		if p.svc != svc && p.start >= onset-30*60000 && p.start < onset-3*60000 {
			return true
		}
	}
	return false
}

// inject decides whether a request suffers the incident, and rewrites it
// if so. It draws from its own stream, and only for eligible requests, so
// that the background traffic does not depend on the incident.
func (inc *incident) inject(r *rand.Rand, q *request, d *Doc) bool {
	if inc.msg == nil || q.svc != inc.svc {
		return false
	}
	if inc.burst != nil && q.cust == inc.burst && q.ms >= inc.burstFrom && q.ms < inc.burstTo {
		// The burst is the customer's own trouble, not the incident: it
		// is background to the truth (not Injected), only shaped to
		// mislead.
		if r.Float64() < inc.burstP {
			d.Error = inc.msg(r, q)
			d.Status = inc.status
			d.Outcome = "failure"
		}
		return false
	}
	if inc.hosts != nil && !inc.hosts[q.host] {
		return false
	}
	if inc.region >= 0 && q.host.region != inc.region {
		return false
	}
	if inc.fnOnly && q.fn == nil {
		return false
	}
	if inc.cust != nil && (q.cust != inc.cust || q.site != inc.site) {
		return false
	}
	p := inc.p
	if inc.bad != nil {
		if q.deploy != inc.bad.index || q.ms < inc.leakFrom {
			return false
		}
		if inc.ramp > 0 {
			p *= min(1, float64(q.ms-max(q.since, inc.leakFrom))/float64(inc.ramp))
		}
	} else if q.ms < inc.from || q.ms >= inc.to {
		return false
	}
	if p < 1 && r.Float64() >= p {
		return false
	}
	d.Error = inc.msg(r, q)
	d.Status = inc.status
	d.Injected = true
	return true
}

// poolExhaustion makes inc a connection-pool leak on the api: a brand-new
// 503 class whose share of requests ramps up to slowRampMaxP over ramp,
// the way exhaustion grows as connections are held longer.
func (inc *incident) poolExhaustion(ramp time.Duration) {
	inc.p = slowRampMaxP
	inc.ramp = ramp.Milliseconds()
	inc.status = 503
	inc.msg = func(r *rand.Rand, q *request) string {
		return "connection pool exhausted: 64/64 connections to db-" + strconv.Itoa(1+r.IntN(12)) +
			" busy, waited " + strconv.Itoa(2000+r.IntN(1000)) + "ms"
	}
	inc.truth.Kind = correlate.KindNewError
	inc.truth.MessageContains = "connection pool exhausted"
	inc.truth.ExpectPage = true
	inc.tickets = ticketSpec{
		prob:     0.1,
		subjects: []string{"API getting slower and failing", "Intermittent 503 from the API"},
		tags:     []string{"api", "503"},
		priority: "normal",
	}
}
