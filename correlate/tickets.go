package correlate

import (
	"sort"
	"strings"
	"time"

	"github.com/culprithq/culprit/rules"
)

// ticketCandidate tests ticket volume for a surge with the same machinery as
// error series: counts against a flat exposure, a negative-binomial tail,
// and membership in the run's family for the false-discovery correction.
func ticketCandidate(tickets []Ticket, w Window, cfg rules.Correlate) (candidate, bool) {
	if len(tickets) == 0 {
		return candidate{}, false
	}
	step := cfg.TicketBucket.D()
	tw, err := NewWindow(w.From, w.To, step)
	if err != nil || tw.Len() < 8 {
		return candidate{}, false
	}
	counts := make([]float64, tw.Len())
	expo := make([]float64, tw.Len())
	for i := range expo {
		expo[i] = 1
	}
	var in []Ticket
	for _, t := range tickets {
		if excludedTicket(t) {
			continue
		}
		if i := tw.Index(t.CreatedAt); i >= 0 {
			counts[i]++
			in = append(in, t)
		}
	}
	dc := detectConfig{
		minErrors:   5,
		minRatio:    3,
		minBase:     max(4, tw.Len()/4),
		recovery:    2,
		block:       1,
		newShareMax: 0,
		// One series gives no family to learn burstiness from: assume
		// tickets cluster moderately (a customer often files several).
		priorAlpha:  0.1,
		corrBuckets: 2,
	}
	ep, ok := detect(counts, expo, history{}, dc)
	c := candidate{kind: KindTicketSurge, ep: ep, ok: ok, counts: counts, requests: expo}
	if ok {
		from, to := tw.Start(ep.start), tw.Start(ep.end)
		var surge []Ticket
		for _, t := range in {
			if !t.CreatedAt.Before(from) && t.CreatedAt.Before(to) {
				surge = append(surge, t)
			}
		}
		words := topicWords(surge)
		// Volume buckets are coarse, and tickets on other subjects ("Upgrade
		// to the Pro plan") keep arriving during a surge: only the tickets
		// on the surging topic are counted, and the first of them dates it.
		lead := words[:min(2, len(words))]
		for _, t := range surge {
			if onTopic(t, lead) {
				c.tickets = append(c.tickets, t)
			}
		}
		if len(c.tickets) == 0 {
			c.tickets = surge
		}
		from = c.tickets[0].CreatedAt
		c.ep.start = w.Index(w.From.Add(from.Sub(w.From).Truncate(w.Step)))
		c.ep.end = max(c.ep.start+1, indexOrEnd(w, to))
		c.signature = "ticket volume"
		if len(words) > 0 {
			c.signature = "ticket volume: " + strings.Join(words, ", ")
		}
		c.examples = ticketExamples(c.tickets)
	}
	return c, ok
}

func indexOrEnd(w Window, t time.Time) int {
	if i := w.Index(t); i >= 0 {
		return i
	}
	return w.Len()
}

// topicWords are the terms a surge's tickets share most: what customers
// are writing in about. Terms are concepts (stems through the synonym
// table, so "function" and "functions" are one) and status codes; words
// that only say something failed are left out, since every surge has
// them. A term counts once per ticket and must recur.
func topicWords(ts []Ticket) []string {
	freq := map[string]int{}
	for _, t := range ts {
		tt := readText(t.Subject)
		for w := range tt.concepts {
			freq[w]++
		}
		for w := range tt.codes {
			freq[w]++
		}
	}
	type kv struct {
		w string
		n int
	}
	var top []kv
	for w, n := range freq {
		if n >= 3 {
			top = append(top, kv{w, n})
		}
	}
	sort.Slice(top, func(a, b int) bool {
		if top[a].n != top[b].n {
			return top[a].n > top[b].n
		}
		return top[a].w < top[b].w
	})
	words := make([]string, 0, 4)
	for i := 0; i < len(top) && i < 4; i++ {
		words = append(words, top[i].w)
	}
	return words
}

// onTopic says whether a ticket's subject or description has one of the
// topic's lead terms.
func onTopic(t Ticket, lead []string) bool {
	tt := readText(t.Subject + "\n" + t.Description)
	for _, w := range lead {
		if tt.concepts[w] || tt.codes[w] {
			return true
		}
	}
	return false
}

func ticketExamples(ts []Ticket) []string {
	var out []string
	for _, t := range ts {
		out = mergeExamples(out, []string{t.Subject}, 3)
	}
	return nonNil(out)
}

// ticketFinding reports a surge. Its severity is at most notify: customers
// writing in is a reason to look, not to wake someone.
func ticketFinding(c candidate, w Window, sig Significance, now time.Time) Finding {
	ep := c.ep
	onset := w.Start(ep.start)
	f := Finding{
		ID:               FindingID("", c.signature),
		Kind:             KindTicketSurge,
		Signature:        c.signature,
		Examples:         c.examples,
		Onset:            onset,
		Detected:         now,
		Significance:     sig,
		Scope:            ScopeSummary{Affected: map[string]int{}, Concentration: []Concentration{}},
		SuspectedDeploys: []Suspect{},
		Tickets:          []TicketRef{},
	}
	orgs := map[int64]bool{}
	for _, t := range c.tickets {
		f.Tickets = append(f.Tickets, TicketRef{ID: t.ID, Subject: t.Subject, CreatedAt: t.CreatedAt, OrganizationID: t.OrganizationID, Reason: "part of the surge"})
		if t.OrganizationID != 0 {
			orgs[t.OrganizationID] = true
		}
	}
	f.Scope.Affected[FieldCustomer] = len(orgs)
	minutes := func(buckets int) float64 { return float64(buckets) * w.Step.Minutes() }
	f.Frequency = Frequency{
		BeforePerMin: safeDiv(ep.baseErr, minutes(ep.start)),
		AfterPerMin:  safeDiv(float64(len(c.tickets)), minutes(ep.end-ep.start)),
		Count:        int64(len(c.tickets)),
	}
	f.Severity = SeverityNotify
	f.SeverityReasons = []string{"ticket surges corroborate; alone they never page"}
	f.Headline = Headline(f)
	return f
}
