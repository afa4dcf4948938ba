package simulate

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Random streams. Each concern draws from its own stream so that, for one
// seed, adding an incident or a deploy never shifts the background traffic.
const (
	streamFleet uint64 = iota + 1
	streamDeploys
	streamBursts
	streamTraffic
	streamIncident
	streamTickets
	streamAttacks
	streamIncidentPlan
	streamTicketWords
	streamCustomers
)

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15*stream))
}

type region struct {
	provider string
	name     string
	short    string // in host names
}

// regions: two per provider, so that a provider-wide problem and a
// region-wide one look different.
var regions = []region{
	{"aws", "us-east-1", "use1"},
	{"aws", "eu-west-1", "euw1"},
	{"gcp", "us-central1", "usc1"},
	{"gcp", "europe-west1", "euw1"},
	{"azure", "eastus", "eus"},
	{"azure", "westeurope", "weu"},
}

// providerWeights is the share of customers homed on each provider, in
// regions order (two regions each).
var providerWeights = []float64{0.45, 0.33, 0.22}

const (
	svcEdge = iota
	svcAPI
	svcFunctions
	svcDashboard
)

type serviceDef struct {
	name      string
	prefix    string // host name prefix
	perRegion int    // hosts per region
	share     float64
	version   semver
	// durMS is the median request duration; request durations are
	// log-normal around it.
	durMS float64
}

var serviceDefs = []serviceDef{
	{"edge-router", "edge", 4, 0.58, semver{2, 41, 3}, 14},
	{"api", "api", 2, 0.22, semver{5, 12, 0}, 55},
	{"functions", "fn", 2, 0.14, semver{1, 88, 2}, 120},
	{"dashboard", "dash", 1, 0.06, semver{3, 7, 14}, 90},
}

type semver struct{ major, minor, patch int }

func (v semver) String() string {
	return strconv.Itoa(v.major) + "." + strconv.Itoa(v.minor) + "." + strconv.Itoa(v.patch)
}

// hostSwitch is a host's change of version, at a deploy's rollout time.
type hostSwitch struct {
	at      int64 // unix ms
	version string
	deploy  int // index into sim.deploys
}

type host struct {
	name     string
	svc      int
	region   int
	provider string
	// timeline is sorted by at; before its first entry a host runs its
	// service's initial version.
	timeline []hostSwitch
	initial  string
}

// at returns the version a host runs at ms, the deploy that put it there
// (-1 for the initial version) and since when. Timelines hold a handful of
// entries, so a backwards scan beats anything cleverer.
func (h *host) at(ms int64) (version string, deploy int, since int64) {
	for i := len(h.timeline) - 1; i >= 0; i-- {
		if e := h.timeline[i]; e.at <= ms {
			return e.version, e.deploy, e.at
		}
	}
	return h.initial, -1, math.MinInt64
}

type fn struct {
	name string
	id   string // fn-<8 hex>
	path string
}

type customer struct {
	idx       int
	org       string
	orgNum    int64
	region    int
	weight    float64 // share of edge traffic, before normalisation
	rank      int     // 0 is the biggest
	sites     []string
	siteCum   []float64
	fns       []fn
	usesAPI   bool
	requester int64
}

func (c *customer) site(r *rand.Rand) string {
	if len(c.sites) == 1 {
		return c.sites[0]
	}
	u := r.Float64()
	for i, w := range c.siteCum {
		if u < w {
			return c.sites[i]
		}
	}
	return c.sites[len(c.sites)-1]
}

type service struct {
	serviceDef
	idx      int
	hosts    []*host
	byRegion [][]*host
	pick     alias // customers, by their traffic to this service
	classes  []*class
	// weightTotal is the sum of the customer weights pick was built from,
	// to turn one customer's weight into a share of the service.
	weightTotal float64
	weights     []float64 // per customer index
}

type fleet struct {
	services  []*service
	customers []*customer
	byRank    []*customer
}

const (
	numCustomers = 400
	// fnPathShare is the share of a functions customer's edge requests
	// that invoke a function.
	fnPathShare = 0.5
	// zipfExponent shapes the customers' traffic: the biggest carries about
	// a tenth of it, the smallest a few requests an hour.
	zipfExponent = 0.95
)

var fnNames = []string{
	"checkout", "resize-image", "contact-form", "auth-callback", "search",
	"webhook-stripe", "og-image", "newsletter-signup", "cart", "graphql",
}

var sitePrefixes = []string{"shop", "www", "blog", "docs", "app", "store", "status"}
var siteTLDs = []string{"example.net", "example.com", "example.org"}

func newFleet(seed int64) *fleet {
	r := newRand(seed, streamFleet)
	f := &fleet{}
	for i, d := range serviceDefs {
		s := &service{serviceDef: d, idx: i, byRegion: make([][]*host, len(regions))}
		for ri, reg := range regions {
			for n := 1; n <= d.perRegion; n++ {
				h := &host{
					name:     d.prefix + "-" + reg.provider + "-" + reg.short + "-" + pad2(n),
					svc:      i,
					region:   ri,
					provider: reg.provider,
					initial:  d.version.String(),
				}
				s.hosts = append(s.hosts, h)
				s.byRegion[ri] = append(s.byRegion[ri], h)
			}
		}
		f.services = append(f.services, s)
	}

	used := map[int64]bool{}
	ranks := r.Perm(numCustomers)
	for i := range numCustomers {
		var org int64
		for org == 0 || used[org] {
			org = 10000 + r.Int64N(90000)
		}
		used[org] = true
		c := &customer{
			idx:       i,
			org:       strconv.FormatInt(org, 10),
			orgNum:    org,
			rank:      ranks[i],
			weight:    math.Pow(float64(ranks[i]+1), -zipfExponent),
			usesAPI:   r.Float64() < 0.75,
			requester: 360000000 + r.Int64N(9000000)*10,
		}
		p := pickWeighted(r, providerWeights)
		// A provider's first region is its bigger one.
		c.region = 2 * p
		if r.Float64() < 0.4 {
			c.region++
		}
		nSites := 1 + pickWeighted(r, []float64{40, 25, 15, 12, 8})
		prefixes := r.Perm(len(sitePrefixes))[:nSites]
		cum := 0.0
		for k, pi := range prefixes {
			c.sites = append(c.sites, sitePrefixes[pi]+"-"+c.org+"."+siteTLDs[r.IntN(len(siteTLDs))])
			// The first site carries most of a customer's traffic.
			w := 0.6
			if k > 0 {
				w = 0.4 / float64(nSites-1)
			}
			if nSites == 1 {
				w = 1
			}
			cum += w
			c.siteCum = append(c.siteCum, cum)
		}
		if r.Float64() < 0.5 {
			n := 1 + r.IntN(3)
			for _, k := range r.Perm(len(fnNames))[:n] {
				c.fns = append(c.fns, fn{name: fnNames[k], id: fnID(r), path: "/fn/" + fnNames[k]})
			}
		}
		f.customers = append(f.customers, c)
	}
	f.byRank = slices.Clone(f.customers)
	slices.SortFunc(f.byRank, func(a, b *customer) int { return a.rank - b.rank })

	for _, s := range f.services {
		s.weights = make([]float64, numCustomers)
		for _, c := range f.customers {
			switch s.idx {
			case svcEdge:
				s.weights[c.idx] = c.weight
			case svcAPI:
				if c.usesAPI {
					s.weights[c.idx] = c.weight
				}
			case svcFunctions:
				if len(c.fns) > 0 {
					s.weights[c.idx] = c.weight
				}
			case svcDashboard:
				// People, not programs, use the dashboard: its traffic
				// is far less skewed than the sites'.
				s.weights[c.idx] = math.Sqrt(c.weight)
			}
			s.weightTotal += s.weights[c.idx]
		}
		s.pick = newAlias(s.weights)
	}
	return f
}

// fnID is a function id of eight hex digits with at least one decimal
// digit, so that the masker always recognises it as an id.
func fnID(r *rand.Rand) string {
	const hex = "0123456789abcdef"
	var b [11]byte
	copy(b[:], "fn-")
	for {
		digit := false
		for i := 3; i < len(b); i++ {
			b[i] = hex[r.IntN(16)]
			digit = digit || b[i] <= '9'
		}
		if digit {
			return string(b[:])
		}
	}
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

func pickWeighted(r *rand.Rand, w []float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	u := r.Float64() * total
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

// alias is Vose's alias table: one uniform draw picks a weighted item in
// constant time, which matters at one customer pick per request.
type alias struct {
	prob  []float64
	alias []int32
	item  []int32
}

func newAlias(weights []float64) alias {
	var a alias
	total := 0.0
	for i, w := range weights {
		if w > 0 {
			a.item = append(a.item, int32(i))
			total += w
		}
	}
	n := len(a.item)
	a.prob = make([]float64, n)
	a.alias = make([]int32, n)
	scaled := make([]float64, n)
	var small, large []int32
	for k, i := range a.item {
		scaled[k] = weights[i] * float64(n) / total
		if scaled[k] < 1 {
			small = append(small, int32(k))
		} else {
			large = append(large, int32(k))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s] = scaled[s]
		a.alias[s] = l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, k := range large {
		a.prob[k] = 1
	}
	for _, k := range small {
		a.prob[k] = 1
	}
	return a
}

func (a *alias) draw(r *rand.Rand) int {
	u := r.Float64() * float64(len(a.item))
	k := int(u)
	if k >= len(a.item) {
		k = len(a.item) - 1
	}
	if u-float64(k) < a.prob[k] {
		return int(a.item[k])
	}
	return int(a.item[a.alias[k]])
}

// poisson draws a Poisson count: by multiplication for small means, by
// Hörmann's transformed rejection (PTRS) for large ones, so that a minute
// of a thousand requests costs a few draws, not a thousand.
func poisson(r *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 10:
		l := math.Exp(-lambda)
		k, p := 0, r.Float64()
		for p > l {
			k++
			p *= r.Float64()
		}
		return k
	}
	b := 0.931 + 2.53*math.Sqrt(lambda)
	a := -0.059 + 0.02483*b
	invAlpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lambda + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v*invAlpha/(a/(us*us)+b)) <= k*math.Log(lambda)-lambda-lg {
			return int(k)
		}
	}
}
