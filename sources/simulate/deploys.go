package simulate

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/culprithq/culprit/correlate"
)

type deployKind int

const (
	deployHarmless deployKind = iota
	deployBad                 // the incident's cause
	deployCanary              // the incident's cause, on one host
	deployRollback            // back to the version before deployBad
)

// plannedDeploy is a deploy before versions and ids are assigned, which
// happens once every deploy of the run is known, in start order, so that
// versions only ever increase (except for a rollback).
type plannedDeploy struct {
	kind  deployKind
	svc   int
	start int64 // unix ms, whole seconds
	dur   int64 // rollout length, ms
	// batches rolls out provider by provider, as cautious teams do; the
	// default is host by host in random order.
	batches bool
	hosts   []*host // nil: all hosts of svc
	desc    string
	// at is filled by schedule: per host of hosts, its switch time.
	at []int64
	// index is the deploy's position in the run's deploys, set by finalize.
	index int
}

var authors = []string{"maria.kowalski", "jchen", "a.okafor", "lpetrov", "sam.rivera", "deploy-bot", "n.haddad", "t.nguyen"}

var harmlessChanges = [][]string{
	svcEdge:      {"Bump Envoy to 1.31.3", "Add request id to access logs", "Tune upstream keepalive to 60s", "Cache immutable assets for a year", "Rotate TLS session ticket keys", "Raise header size limit to 96KiB"},
	svcAPI:       {"Paginate /api/v1/deploys", "Audit log for DNS record changes", "Upgrade Go to 1.26.1", "Validate form submission size", "Drop unused sites columns", "Faster site search index"},
	svcFunctions: {"Node.js 22.11 runtime image", "Larger invocation log buffer", "Expose invocation metrics", "Refresh base images", "Trim cold-start bundle"},
	svcDashboard: {"New billing page", "Fix team invite modal", "Upgrade React to 19.1", "Dark mode polish", "Faster deploy list"},
}

// serviceDeployWeights is how often each service ships.
var serviceDeployWeights = []float64{0.35, 0.3, 0.2, 0.15}

// planHarmless draws the run's routine deploys: one every 50 minutes on
// average, never two rollouts of one service at once.
func planHarmless(r *rand.Rand, from, to int64) []*plannedDeploy {
	var out []*plannedDeploy
	busyUntil := make([]int64, len(serviceDefs))
	t := from + int64(5+r.Float64()*25)*60000
	for t < to-15*60000 {
		svc := pickWeighted(r, serviceDeployWeights)
		dur := int64(10+r.Float64()*20) * 60000
		batches := r.IntN(2) == 0
		desc := harmlessChanges[svc][r.IntN(len(harmlessChanges[svc]))]
		if t >= busyUntil[svc] {
			out = append(out, &plannedDeploy{kind: deployHarmless, svc: svc, start: t / 1000 * 1000, dur: dur, batches: batches, desc: desc})
			busyUntil[svc] = t + dur + 5*60000
		}
		t += int64((15 + r.ExpFloat64()*35) * 60000)
	}
	return out
}

// schedule decides each host's switch time: evenly spread over the
// rollout with a little jitter, so the share of upgraded hosts grows about
// linearly, as a rolling deploy's does.
func (p *plannedDeploy) schedule(r *rand.Rand, f *fleet) {
	if p.hosts == nil {
		p.hosts = slices.Clone(f.services[p.svc].hosts)
		r.Shuffle(len(p.hosts), func(i, j int) { p.hosts[i], p.hosts[j] = p.hosts[j], p.hosts[i] })
		if p.batches {
			order := r.Perm(3)
			rank := map[string]int{}
			for i, pr := range []string{"aws", "gcp", "azure"} {
				rank[pr] = order[i]
			}
			slices.SortStableFunc(p.hosts, func(a, b *host) int { return rank[a.provider] - rank[b.provider] })
		}
	}
	n := len(p.hosts)
	p.at = make([]int64, n)
	for i := range p.hosts {
		off := int64(10000)
		if n > 1 {
			off = int64(i)*p.dur/int64(n-1) + r.Int64N(15000)
		}
		p.at[i] = (p.start + off) / 1000 * 1000
	}
}

func (p *plannedDeploy) last() int64 { return slices.Max(p.at) }

// finalize assigns versions and ids in start order, records every host's
// version timeline and returns the deploy records.
func finalize(r *rand.Rand, f *fleet, plans []*plannedDeploy) []correlate.Deploy {
	slices.SortStableFunc(plans, func(a, b *plannedDeploy) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	cur := make([]semver, len(serviceDefs))
	for i, d := range serviceDefs {
		cur[i] = d.version
	}
	before := make([]semver, len(serviceDefs)) // version before the bad deploy
	ids := map[string]bool{}
	out := make([]correlate.Deploy, 0, len(plans))
	for i, p := range plans {
		p.index = i
		var version string
		switch p.kind {
		case deployHarmless:
			if r.IntN(10) < 7 {
				cur[p.svc].patch++
			} else {
				cur[p.svc].minor++
				cur[p.svc].patch = 0
			}
			version = cur[p.svc].String()
		case deployBad:
			before[p.svc] = cur[p.svc]
			cur[p.svc].minor++
			cur[p.svc].patch = 0
			version = cur[p.svc].String()
		case deployCanary:
			// A canary does not move the service's version: the other
			// hosts stay where they are.
			before[p.svc] = cur[p.svc]
			next := cur[p.svc]
			next.minor++
			next.patch = 0
			version = next.String() + "-canary.1"
		case deployRollback:
			cur[p.svc] = before[p.svc]
			version = cur[p.svc].String()
		}
		id := ""
		for id == "" || ids[id] {
			id = "dep-" + strconv.FormatUint(0x100000+r.Uint64N(0xf00000), 16)
		}
		ids[id] = true
		name := serviceDefs[p.svc].name
		d := correlate.Deploy{
			ID:          id,
			Service:     name,
			Version:     version,
			Environment: "production",
			StartedAt:   time.UnixMilli(p.start).UTC(),
			FinishedAt:  time.UnixMilli(p.last() + int64(30+r.IntN(60))*1000).UTC(),
			Author:      authors[r.IntN(len(authors))],
			URL:         "https://github.com/acme/" + name + "/releases/tag/v" + version,
			Description: p.desc,
		}
		for k, h := range p.hosts {
			d.Hosts = append(d.Hosts, correlate.HostRollout{Name: h.name, At: time.UnixMilli(p.at[k]).UTC()})
			h.timeline = append(h.timeline, hostSwitch{at: p.at[k], version: version, deploy: i})
		}
		slices.SortStableFunc(d.Hosts, func(a, b correlate.HostRollout) int { return a.At.Compare(b.At) })
		out = append(out, d)
	}
	for _, s := range f.services {
		for _, h := range s.hosts {
			slices.SortStableFunc(h.timeline, func(a, b hostSwitch) int {
				switch {
				case a.at < b.at:
					return -1
				case a.at > b.at:
					return 1
				}
				return 0
			})
		}
	}
	return out
}
