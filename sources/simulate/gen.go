package simulate

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// sim is one run's state. Everything but the current minute's documents is
// planned up front and small: the fleet, bursts, deploys and the incident.
type sim struct {
	cfg        Config
	start, end int64 // unix ms
	f          *fleet
	deploys    []correlate.Deploy
	inc        *incident
	tickets    []pendingTicket

	traffic, injR, attackR, ticketR *rand.Rand

	docs []Doc    // the current minute
	keys []uint64 // offset<<32 | index, to emit docs in time order
	msg  []byte

	firstHit []int64 // per customer, first injected error; 0 if none
	hits     []int32
	injected int
	ndocs    int
}

// request is what a document is generated from.
type request struct {
	ms     int64
	svc    *service
	cust   *customer
	host   *host
	site   string
	fn     *fn // the function invoked, if any
	deploy int // the host's current deploy index, -1 for the initial version
	since  int64
}

func newSim(cfg Config) (*sim, error) {
	s := &sim{
		cfg:      cfg,
		start:    cfg.Start.UnixMilli(),
		end:      cfg.Start.Add(cfg.Duration).UnixMilli(),
		traffic:  newRand(cfg.Seed, streamTraffic),
		injR:     newRand(cfg.Seed, streamIncident),
		attackR:  newRand(cfg.Seed, streamAttacks),
		ticketR:  newRand(cfg.Seed, streamTickets),
		firstHit: make([]int64, numCustomers),
		hits:     make([]int32, numCustomers),
	}
	s.f = newFleet(cfg.Seed)
	br := newRand(cfg.Seed, streamBursts)
	newClasses(s.f, br)
	planBursts(s.f, br, s.start, s.end)

	dr := newRand(cfg.Seed, streamDeploys)
	plans := planHarmless(dr, s.start, s.end)
	for _, p := range plans {
		p.schedule(dr, s.f)
	}
	// The incident's own choices come from a stream of their own, so that
	// the deploys and traffic around it stay those of the seed.
	ir := newRand(cfg.Seed, streamIncidentPlan)
	var err error
	if s.inc, plans, err = planIncident(cfg, s.f, dr, ir, plans); err != nil {
		return nil, err
	}
	s.deploys = finalize(dr, s.f, plans)
	s.inc.truthTimes(s.end)

	s.tickets = planBackgroundTickets(s.f, s.ticketR, s.start, s.end)
	if cfg.Shape == ShapeTicketSurge {
		surge := planSurgeTickets(s.f, s.ticketR, s.start+cfg.Onset.Milliseconds())
		first := int64(math.MaxInt64)
		orgs := map[int64]bool{}
		for _, t := range surge {
			first = min(first, t.at)
			orgs[t.cust.orgNum] = true
		}
		s.inc.truth.Onset = time.UnixMilli(first / 1000 * 1000).UTC()
		s.inc.truth.AffectedCustomers = len(orgs)
		s.tickets = append(s.tickets, surge...)
	}
	return s, nil
}

// diurnal is the traffic level at ms relative to the daily peak at 15:00
// UTC, when Europe's afternoon and America's morning overlap; the night
// trough is a third of the peak.
func diurnal(ms int64) float64 {
	const day = 86400000
	h := float64((ms%day+day)%day) / 3600000
	return 0.35 + 0.65*(1+math.Cos(2*math.Pi*(h-15)/24))/2
}

func (s *sim) run(ctx context.Context, emit func(*Doc) error) error {
	const minute = int64(60000)
	for t0 := s.start; t0 < s.end; t0 += minute {
		if err := s.pace(ctx, t0); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t1 := min(t0+minute, s.end)
		s.minute(t0, t1)
		for _, k := range s.keys {
			if err := emit(&s.docs[k&0xffffffff]); err != nil {
				return err
			}
		}
		s.ndocs += len(s.keys)
	}
	return s.pace(ctx, s.end)
}

// pace calls Config.Pace, if any, with the unix-ms instant t.
func (s *sim) pace(ctx context.Context, t int64) error {
	if s.cfg.Pace == nil {
		return nil
	}
	return s.cfg.Pace(ctx, time.UnixMilli(t).UTC())
}

// minute generates [t0, t1) into s.docs and orders it in s.keys.
func (s *sim) minute(t0, t1 int64) {
	span := t1 - t0
	s.docs = s.docs[:0]
	for _, svc := range s.f.services {
		for _, c := range svc.classes {
			c.prepare(t0, t1)
		}
	}
	rate := s.cfg.PeakPerMin * diurnal(t0+span/2) * float64(span) / 60000
	r := s.traffic
	for _, svc := range s.f.services {
		n := poisson(r, rate*svc.share)
		for range n {
			c := s.f.customers[svc.pick.draw(r)]
			s.request(r, svc, c, t0+r.Int64N(span), nil)
		}
	}
	// Attacks: extra requests against one customer, nearly all failing.
	ar := s.attackR
	for _, svc := range s.f.services {
		for _, cl := range svc.classes {
			for i := range cl.attacks {
				a := &cl.attacks[i]
				lo, hi := max(t0, a.start), min(t1, a.end)
				if hi <= lo {
					continue
				}
				n := poisson(ar, a.count(lo, hi))
				for range n {
					var force *class
					if ar.Float64() < attackFailShare {
						force = cl
					}
					s.request(ar, svc, s.f.customers[a.cust], lo+ar.Int64N(hi-lo), force)
				}
			}
		}
	}
	// A traffic surge adds requests on top of the background's, drawn from
	// the incident's stream so the background is untouched. A viral site's
	// visitors also invoke its functions.
	if len(s.inc.surge) > 0 && t1 > s.inc.from {
		lo := max(t0, s.inc.from)
		rate := s.cfg.PeakPerMin * diurnal(t0+span/2) * float64(t1-lo) / 60000
		for _, svc := range []*service{s.f.services[svcEdge], s.f.services[svcFunctions]} {
			for i, c := range s.inc.surge {
				n := poisson(s.injR, rate*svc.share*svc.weights[c.idx]/svc.weightTotal*(s.inc.surgeFactor[i]-1))
				for range n {
					s.request(s.injR, svc, c, lo+s.injR.Int64N(t1-lo), nil)
				}
			}
		}
	}
	s.keys = s.keys[:0]
	for i := range s.docs {
		off := s.docs[i].Time.UnixMilli() - t0
		s.keys = append(s.keys, uint64(off)<<32|uint64(i))
	}
	slices.Sort(s.keys)
}

type weighted[T any] struct {
	v T
	w float64
}

type pathDef struct{ path, method string }

// pick draws from a small weighted table; a linear scan over ten entries
// is faster than anything with setup.
func pick[T any](r *rand.Rand, t []weighted[T], total float64) T {
	u := r.Float64() * total
	for _, e := range t {
		if u < e.w {
			return e.v
		}
		u -= e.w
	}
	return t[len(t)-1].v
}

func total[T any](t []weighted[T]) float64 {
	s := 0.0
	for _, e := range t {
		s += e.w
	}
	return s
}

var (
	edgePaths = []weighted[pathDef]{
		{pathDef{"/", "GET"}, 30}, {pathDef{"/assets/app.js", "GET"}, 15}, {pathDef{"/assets/app.css", "GET"}, 10},
		{pathDef{"/images/hero.webp", "GET"}, 10}, {pathDef{"/favicon.ico", "GET"}, 5}, {pathDef{"/blog/", "GET"}, 8},
		{pathDef{"/products/", "GET"}, 10}, {pathDef{"/robots.txt", "GET"}, 2}, {pathDef{"/cart", "GET"}, 5},
		{pathDef{"/contact", "POST"}, 2},
	}
	apiPaths = []weighted[pathDef]{
		{pathDef{"/api/v1/sites", "GET"}, 30}, {pathDef{"/api/v1/deploys", "POST"}, 12}, {pathDef{"/api/v1/deploys", "GET"}, 13},
		{pathDef{"/api/v1/dns/records", "GET"}, 10}, {pathDef{"/api/v1/forms/submissions", "POST"}, 15},
		{pathDef{"/api/v1/functions", "GET"}, 10}, {pathDef{"/api/v1/auth/token", "POST"}, 10},
	}
	dashPaths = []weighted[pathDef]{
		{pathDef{"/", "GET"}, 30}, {pathDef{"/sites", "GET"}, 25}, {pathDef{"/deploys", "GET"}, 20},
		{pathDef{"/team", "GET"}, 8}, {pathDef{"/billing", "GET"}, 7}, {pathDef{"/login", "POST"}, 10},
	}
	edgeStatus = []weighted[int]{{200, 80}, {304, 10}, {301, 3}, {404, 7}}
	apiStatus  = []weighted[int]{{200, 75}, {201, 10}, {204, 5}, {404, 5}, {400, 3}, {403, 2}}
	fnStatus   = []weighted[int]{{200, 96}, {400, 4}}
	dashStatus = []weighted[int]{{200, 85}, {302, 10}, {404, 5}}

	edgePathsW, apiPathsW, dashPathsW               = total(edgePaths), total(apiPaths), total(dashPaths)
	edgeStatusW, apiStatusW, fnStatusW, dashStatusW = total(edgeStatus), total(apiStatus), total(fnStatus), total(dashStatus)
	attackPaths                                     = map[string]pathDef{"invalid_key": {"/api/v1/deploys", "POST"}, "rate_limit": {"/api/v1/sites", "GET"}}
	attackDurations                                 = map[string]float64{"invalid_key": 8, "rate_limit": 3}
)

// request generates one document into s.docs. force, when set, is the
// background class the request fails with (an attack's).
func (s *sim) request(r *rand.Rand, svc *service, c *customer, ms int64, force *class) {
	regionHosts := svc.byRegion[c.region]
	q := request{ms: ms, svc: svc, cust: c, host: regionHosts[r.IntN(len(regionHosts))]}
	q.site = c.site(r)
	var pd pathDef
	status := 200
	switch svc.idx {
	case svcEdge:
		if len(c.fns) > 0 && r.Float64() < fnPathShare {
			q.fn = &c.fns[r.IntN(len(c.fns))]
			pd = pathDef{q.fn.path, "POST"}
			if r.IntN(2) == 0 {
				pd.method = "GET"
			}
		} else {
			pd = pick(r, edgePaths, edgePathsW)
			status = pick(r, edgeStatus, edgeStatusW)
		}
	case svcAPI:
		pd = pick(r, apiPaths, apiPathsW)
		status = pick(r, apiStatus, apiStatusW)
	case svcFunctions:
		q.fn = &c.fns[r.IntN(len(c.fns))]
		pd = pathDef{q.fn.path, "POST"}
		status = pick(r, fnStatus, fnStatusW)
	case svcDashboard:
		pd = pick(r, dashPaths, dashPathsW)
		status = pick(r, dashStatus, dashStatusW)
	}
	var version string
	version, q.deploy, q.since = q.host.at(ms)
	durMS := svc.durMS * math.Exp(0.8*r.NormFloat64())

	// Background errors: one uniform draw walks the classes' probabilities.
	var errClass *class
	if force != nil {
		errClass = force
		if p, ok := attackPaths[force.name]; ok {
			pd = p
		}
		durMS = attackDurations[force.name] * (1 + r.Float64())
	} else {
		u := r.Float64()
		for _, cl := range svc.classes {
			p := cl.prob(&q)
			if u < p {
				errClass = cl
				break
			}
			u -= p
		}
	}

	s.docs = append(s.docs, Doc{})
	d := &s.docs[len(s.docs)-1]
	d.Time = time.UnixMilli(ms).UTC()
	d.Service = svc.name
	d.Version = version
	d.Host = q.host.name
	d.Org = c.org
	d.Domain = q.site
	d.Path = pd.path
	d.Method = pd.method
	d.Provider = q.host.provider
	d.Region = regions[q.host.region].name
	d.Status = status
	d.Outcome = "success"
	if errClass != nil {
		d.Error = errClass.msg(r, &q)
		d.Status = errClass.status
		d.Outcome = "failure"
		if d.Status >= 500 {
			// A failed request waits for its timeout, not for its
			// handler.
			durMS = max(durMS, 1000+4000*r.Float64())
		}
	}
	if s.inc.inject(s.injR, &q, d) {
		s.injected++
		if s.hits[c.idx] == 0 || ms < s.firstHit[c.idx] {
			s.firstHit[c.idx] = ms
		}
		s.hits[c.idx]++
		d.Outcome = "failure"
		if d.Status >= 500 {
			durMS = max(durMS, 1000+4000*s.injR.Float64())
		}
	}
	d.Duration = int64(durMS * 1e6)
	d.Dotted = r.IntN(5) == 0

	b := append(s.msg[:0], '"')
	b = append(b, pd.method...)
	b = append(b, ' ')
	b = append(b, pd.path...)
	b = append(b, ` HTTP/1.1" `...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(200+r.IntN(40000)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(durMS), 10)
	b = append(b, `ms "`...)
	b = append(b, q.site...)
	b = append(b, '"')
	s.msg = b
	d.Message = string(b)
}

// finish completes the ground truth and the tickets once every document
// has been generated, since who was affected is only known by counting.
func (s *sim) finish() *Run {
	truth := s.inc.truth
	if s.cfg.Shape != ShapeTicketSurge {
		for _, n := range s.hits {
			if n > 0 {
				truth.AffectedCustomers++
			}
		}
	}
	truth.InjectedErrors = s.injected
	for i, n := range s.hits {
		if n > 0 && (truth.FirstError.IsZero() || s.firstHit[i] < truth.FirstError.UnixMilli()) {
			truth.FirstError = time.UnixMilli(s.firstHit[i]).UTC()
		}
	}
	if s.inc.bad != nil {
		truth.SuspectDeployID = s.deploys[s.inc.bad.index].ID
	}
	tickets := append(s.tickets, incidentTickets(s.inc.tickets, s.f, s.ticketR, s.firstHit, s.hits, s.end)...)
	tickets = append(tickets, voiceTickets(s.cfg.Shape, s.f, newRand(s.cfg.Seed, streamTicketWords),
		s.start+s.cfg.Onset.Milliseconds(), s.firstHit, s.hits, s.end, s.inc)...)
	numbered := numberTickets(s.ticketR, tickets)
	truth.IncidentTickets = []int64{}
	for i, t := range tickets { // sorted by numberTickets like numbered
		if t.incident {
			truth.IncidentTickets = append(truth.IncidentTickets, numbered[i].ID)
		}
	}
	return &Run{
		Customers: s.f.directory(s.cfg.Seed),
		Config:    s.cfg,
		Deploys:   s.deploys,
		Tickets:   numbered,
		Truth:     truth,
		Docs:      s.ndocs,
	}
}
