package correlate

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/culprithq/culprit/rules"
)

// evidence grades one line of reasoning about a deploy.
type evidence int

const (
	evNone evidence = iota // not applicable or uninformative
	evAgainst
	evModerate
	evStrong
)

// attribute ranks the deploys that could explain a finding.
//
// Timing only makes a deploy eligible; it never implicates one. A deploy is
// suspected when the data tie it to the errors: errors appear on each host
// only after that host received the version (rollout alignment), or they
// concentrate on the deployed version (version split). A deploy that merely
// happened to be nearest in time is not blamed, because on a busy fleet one
// always is.
func attribute(f Finding, sc *Scope, deploys []Deploy, w Window, L int, cfg rules.Correlate) []Suspect {
	out := []Suspect{}
	onsetIdx := w.Index(f.Onset)
	endIdx := L
	if f.Recovered != nil {
		endIdx = min(L, max(onsetIdx+1, w.Index(*f.Recovered)))
	}
	for _, d := range deploys {
		start := rolloutStart(d)
		lead := f.Onset.Sub(start)
		if start.After(f.Onset.Add(w.Step)) || lead > cfg.AttributionWindow.D() {
			continue
		}
		var reasons []string
		align, why := rolloutAlignment(d, sc, w, onsetIdx, endIdx)
		if why != "" {
			reasons = append(reasons, why)
		}
		split := evNone
		if d.Service == f.Service {
			var whyV string
			split, whyV = versionSplit(d, sc)
			if whyV != "" {
				reasons = append(reasons, whyV)
			}
		}
		if align == evAgainst || split == evAgainst {
			continue
		}
		if align < evModerate && split < evModerate {
			continue
		}
		score := 0.0
		if d.Service == f.Service {
			score += 0.15
			reasons = append(reasons, fmt.Sprintf("deploys %s, the service that is failing", d.Service))
		}
		score += map[evidence]float64{evStrong: 0.45, evModerate: 0.25}[align]
		score += map[evidence]float64{evStrong: 0.3, evModerate: 0.15}[split]
		mins := math.Max(lead.Minutes(), 0)
		score += 0.1 * math.Exp(-mins/30)
		reasons = append(reasons, timingReason(lead, start))
		out = append(out, Suspect{
			ID: d.ID, Service: d.Service, Version: d.Version,
			StartedAt: d.StartedAt, FinishedAt: d.FinishedAt, URL: d.URL,
			Score:   math.Round(math.Min(score, 1)*100) / 100,
			Reasons: reasons,
		})
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Score != out[b].Score {
			return out[a].Score > out[b].Score
		}
		return out[a].StartedAt.After(out[b].StartedAt)
	})
	return out
}

// rolloutStart is when the first host got the version: a deploy's recorded
// start can precede its first host by minutes of build and approval.
func rolloutStart(d Deploy) time.Time {
	s := d.StartedAt
	for _, h := range d.Hosts {
		if !h.At.IsZero() && (s.IsZero() || h.At.Before(s)) {
			s = h.At
		}
	}
	return s
}

func timingReason(lead time.Duration, start time.Time) string {
	at := start.UTC().Format("15:04")
	switch {
	case lead < time.Minute:
		return fmt.Sprintf("rollout began at %s UTC, within a minute of the onset", at)
	default:
		return fmt.Sprintf("rollout began at %s UTC, %s before the onset", at, minutes(lead))
	}
}

// rolloutAlignment asks whether, during the episode, errors fell on hosts
// that already ran the deploy rather than on those that did not yet (or
// never would). Under "the deploy is unrelated", errors split between those
// two groups in proportion to their requests; a binomial tail measures how
// far from that the data are.
func rolloutAlignment(d Deploy, sc *Scope, w Window, from, to int) (evidence, string) {
	if len(d.Hosts) == 0 || len(sc.HostRequests) == 0 || from < 0 {
		return evNone, ""
	}
	at := make(map[string]time.Time, len(d.Hosts))
	overlap := 0
	for _, h := range d.Hosts {
		at[h.Name] = h.At
		if _, ok := sc.HostRequests[h.Name]; ok {
			overlap++
		}
	}
	if overlap == 0 {
		return evNone, ""
	}
	var eExp, eUn, rExp, rUn float64
	hostsWithErr, hostsAligned := 0, 0
	for host, reqs := range sc.HostRequests {
		errs := sc.HostErrors[host]
		got, updated := at[host]
		var hostErr float64
		aligned := true
		for i := from; i < to && i < len(reqs); i++ {
			b0 := w.Start(i)
			var e float64
			if i < len(errs) {
				e = errs[i]
			}
			hostErr += e
			switch {
			case updated && !got.After(b0):
				eExp += e
				rExp += reqs[i]
			case !updated || !got.Before(b0.Add(w.Step)):
				eUn += e
				rUn += reqs[i]
				if e > 0 {
					aligned = false
				}
			}
		}
		if hostErr > 0 {
			hostsWithErr++
			if aligned {
				hostsAligned++
			}
		}
	}
	eTot, rTot := eExp+eUn, rExp+rUn
	if eTot == 0 || rTot == 0 {
		return evNone, ""
	}
	pi := rUn / rTot
	if pi < 0.02 {
		return evNone, ""
	}
	share := eUn / eTot
	p := binomLowerTail(eUn, eTot, pi)
	desc := fmt.Sprintf("%s of %d errors came from hosts already running %s, which served %s of requests (p=%.2g); %d of %d hosts with errors got the version first",
		percent(1-share), int64(eTot), versionName(d), percent(1-pi), p, hostsAligned, hostsWithErr)
	switch {
	case share >= pi:
		return evAgainst, ""
	case p < 1e-3 && share <= pi/3:
		return evStrong, "rollout alignment: " + desc
	case p < 0.05:
		return evModerate, "partial rollout alignment: " + desc
	}
	return evNone, ""
}

// versionSplit asks whether the errors concentrate on the deployed version
// compared with that version's share of requests.
func versionSplit(d Deploy, sc *Scope) (evidence, string) {
	if d.Version == "" {
		return evNone, ""
	}
	errs, reqs := sc.Errors[FieldVersion], sc.Requests[FieldVersion]
	te, tr := sumMap(errs), sumMap(reqs)
	if te == 0 || tr == 0 {
		return evNone, ""
	}
	ev, rv := errs[d.Version], reqs[d.Version]
	soe, sor := ev/te, rv/tr
	if sor >= 0.98 {
		return evNone, ""
	}
	if soe <= sor {
		return evAgainst, ""
	}
	p := binomUpperTail(ev, te, sor)
	desc := fmt.Sprintf("%s of the errors come from %s, which served %s of requests (p=%.2g)", percent(soe), versionName(d), percent(sor), p)
	switch {
	case p < 1e-3 && soe >= 0.9:
		return evStrong, "version split: " + desc
	case p < 0.05 && soe >= sor*minLift:
		return evModerate, "version split: " + desc
	}
	return evNone, ""
}

func versionName(d Deploy) string {
	if d.Version == "" {
		return "deploy " + d.ID
	}
	return d.Service + " " + d.Version
}

// minutes renders a lead time as people say it: "2 min", "1 h 5 min".
func minutes(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	if m < 60 {
		return fmt.Sprintf("%d min", m)
	}
	if m%60 == 0 {
		return fmt.Sprintf("%d h", m/60)
	}
	return fmt.Sprintf("%d h %d min", m/60, m%60)
}
