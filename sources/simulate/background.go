package simulate

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// A background error class is a low per-request probability plus
// occasional bursts, because real error series are overdispersed: a
// detector tuned on Poisson noise pages on every burst, and culprit must
// not.
//
// Bursts come in two kinds. A rate burst multiplies the class's probability
// within one scope (a host, a region or the whole service) by 5–20× at its
// start, decaying over 3–15 minutes like a self-exciting (Hawkes) process: a
// flapping upstream, a GC storm. An attack is extra traffic aimed at one
// customer that mostly fails (a credential-stuffing run, a scanner tripping
// the WAF, a customer's own runaway script hitting its rate limit): error
// counts jump far more than request counts, and all of it is one
// customer's. Attacks are what make the fleet's total error count spike;
// rate bursts are what make one class's series misleading.
type class struct {
	name   string
	svc    int
	status int
	base   float64 // per-request probability outside bursts
	// org ties the class to one customer: base applies to that customer's
	// requests only. -1 for none.
	org int
	msg func(r *rand.Rand, q *request) string

	rateGap   float64 // mean hours between rate bursts; 0 for none
	scopes    []burstScope
	attackGap float64 // mean hours between attacks; 0 for none
	bursts    []burst
	attacks   []attack
	active    []*burst // bursts overlapping the current minute
}

type burstScope int

const (
	scopeService burstScope = iota
	scopeRegion
	scopeHost
)

type burst struct {
	start, end int64 // unix ms
	peak       float64
	tau        float64 // decay constant, ms
	region     int     // -1 for any
	host       *host   // nil for any
}

// extra is how much the burst adds to the class's multiplier at ms.
func (b *burst) extra(ms int64) float64 {
	if ms < b.start || ms >= b.end {
		return 0
	}
	return (b.peak - 1) * math.Exp(-float64(ms-b.start)/b.tau)
}

type attack struct {
	start, end int64
	peak       float64 // failing requests per minute at start
	tau        float64 // ms
	cust       int
}

// count is the expected number of attack requests in [a, b).
func (at *attack) count(a, b int64) float64 {
	a, b = max(a, at.start), min(b, at.end)
	if b <= a {
		return 0
	}
	perMS := at.peak / 60000
	return perMS * at.tau * (math.Exp(-float64(a-at.start)/at.tau) - math.Exp(-float64(b-at.start)/at.tau))
}

// attackFailShare is the share of an attack's requests that fail: a few
// guesses succeed, a few scanner probes are harmless.
const attackFailShare = 0.9

// attackRef is the nominal base rate, in errors per minute, that an
// attack's 5–20× peak multiplies.
const attackRef = 1.5

func newClasses(f *fleet, r *rand.Rand) {
	waf := []string{"942100", "941100", "930120", "913100"}
	upstreamMS := []int{10000, 15000, 30000}
	rels := []string{"sites", "deploys", "members"}
	// The rate-limited customer is big (its script runs all day) but not
	// the biggest, so that its spikes do not dominate the whole api.
	var limited *customer
	for _, c := range f.byRank[2:] {
		if c.usesAPI {
			limited = c
			break
		}
	}
	add := func(c *class) {
		f.services[c.svc].classes = append(f.services[c.svc].classes, c)
	}
	add(&class{
		name: "upstream_connect", svc: svcEdge, status: 503, base: 0.0008, org: -1,
		msg: func(*rand.Rand, *request) string {
			return "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
		},
		rateGap: 6, scopes: []burstScope{scopeRegion, scopeHost},
	})
	add(&class{
		name: "upstream_timeout", svc: svcEdge, status: 504, base: 0.0005, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			return "upstream request timeout after " + strconv.Itoa(upstreamMS[r.IntN(len(upstreamMS))]) + "ms to origin " + q.site
		},
		rateGap: 8, scopes: []burstScope{scopeHost, scopeRegion},
	})
	add(&class{
		name: "waf", svc: svcEdge, status: 403, base: 0.0002, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			return "request blocked by WAF rule " + waf[r.IntN(len(waf))] + " for " + q.site + " from " + testIP(r)
		},
		rateGap: 8, scopes: []burstScope{scopeService},
	})
	add(&class{
		name: "deadline", svc: svcAPI, status: 500, base: 0.0015, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			ms := 3000
			if r.IntN(4) == 0 {
				ms = 5000
			}
			return "context deadline exceeded after " + strconv.Itoa(ms) + "ms calling db-" + strconv.Itoa(1+r.IntN(12))
		},
		rateGap: 6, scopes: []burstScope{scopeHost, scopeRegion},
	})
	add(&class{
		name: "invalid_key", svc: svcAPI, status: 401, base: 0.002, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			return "invalid API key for site " + q.site
		},
		attackGap: 4,
	})
	add(&class{
		name: "rate_limit", svc: svcAPI, status: 429, base: 0.02, org: limited.idx,
		msg: func(r *rand.Rand, q *request) string {
			return "rate limit exceeded for org " + q.cust.org
		},
		attackGap: 4,
	})
	add(&class{
		name: "fn_timeout", svc: svcFunctions, status: 504, base: 0.003, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			s := "10"
			if r.IntN(5) == 0 {
				s = "26"
			}
			return "function " + q.fn.id + " timed out after " + s + "s"
		},
		rateGap: 6, scopes: []burstScope{scopeRegion, scopeHost},
	})
	add(&class{
		name: "cold_start", svc: svcFunctions, status: 503, base: 0.001, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			return "cold start of " + q.fn.id + " took " + strconv.Itoa(5001+r.IntN(4000)) + "ms, exceeding 5000ms budget"
		},
		rateGap: 8, scopes: []burstScope{scopeRegion},
	})
	add(&class{
		name: "session", svc: svcDashboard, status: 401, base: 0.003, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			return "session token expired for user " + strconv.Itoa(100000+r.IntN(900000))
		},
		rateGap: 8, scopes: []burstScope{scopeService},
	})
	add(&class{
		name: "deadlock", svc: svcDashboard, status: 500, base: 0.0005, org: -1,
		msg: func(r *rand.Rand, q *request) string {
			return "pq: deadlock detected on relation " + rels[r.IntN(len(rels))] + " (SQLSTATE 40P01) in txn " + strconv.Itoa(1000000+r.IntN(9000000))
		},
		rateGap: 10, scopes: []burstScope{scopeService},
	})
}

// planBursts draws every class's bursts and attacks for [from, to). Bursts
// may start before the run so that it can open mid-burst, as a real window
// does.
func planBursts(f *fleet, r *rand.Rand, from, to int64) {
	const hour = float64(3600000)
	lead := int64(30 * 60000)
	for _, s := range f.services {
		for _, c := range s.classes {
			if c.rateGap > 0 {
				for t := from - lead + int64(r.ExpFloat64()*c.rateGap*hour); t < to; t += int64(r.ExpFloat64() * c.rateGap * hour) {
					dur := int64(3+r.Float64()*12) * 60000
					b := burst{start: t, end: t + dur, peak: 5 + 15*r.Float64(), tau: float64(dur) / 3, region: -1}
					switch c.scopes[r.IntN(len(c.scopes))] {
					case scopeRegion:
						b.region = r.IntN(len(regions))
					case scopeHost:
						b.host = s.hosts[r.IntN(len(s.hosts))]
					}
					c.bursts = append(c.bursts, b)
				}
			}
			if c.attackGap > 0 {
				for t := from - lead + int64(r.ExpFloat64()*c.attackGap*hour); t < to; t += int64(r.ExpFloat64() * c.attackGap * hour) {
					dur := int64(3+r.Float64()*12) * 60000
					a := attack{start: t, end: t + dur, peak: attackRef * (5 + 15*r.Float64()), tau: float64(dur) / 3}
					if c.org >= 0 {
						a.cust = c.org
					} else {
						a.cust = s.pick.draw(r)
					}
					c.attacks = append(c.attacks, a)
				}
			}
		}
	}
}

// prepare selects the bursts overlapping [t0, t1), so that a request only
// looks at bursts that can touch it.
func (c *class) prepare(t0, t1 int64) {
	c.active = c.active[:0]
	for i := range c.bursts {
		b := &c.bursts[i]
		if b.start < t1 && b.end > t0 {
			c.active = append(c.active, b)
		}
	}
}

// prob is the class's probability for one request.
func (c *class) prob(q *request) float64 {
	if c.org >= 0 && q.cust.idx != c.org {
		return 0
	}
	p := c.base
	if len(c.active) == 0 {
		return p
	}
	m := 1.0
	for _, b := range c.active {
		if b.host != nil && b.host != q.host {
			continue
		}
		if b.region >= 0 && b.region != q.host.region {
			continue
		}
		m += b.extra(q.ms)
	}
	return p * m
}

// testIP is an address from the documentation ranges, so that generated
// logs never name a real network.
func testIP(r *rand.Rand) string {
	nets := [...]string{"192.0.2.", "198.51.100.", "203.0.113."}
	return nets[r.IntN(len(nets))] + strconv.Itoa(1+r.IntN(254))
}
