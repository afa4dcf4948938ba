package correlate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/culprithq/culprit/rules"
)

// linkTickets returns the tickets created after onset that belong to an
// affected customer or talk about the failing signature or service. Tickets
// corroborate a finding; they never make one.
func linkTickets(f Finding, sc *Scope, tickets []Ticket, until time.Time) []TicketRef {
	affected := sc.Errors[FieldCustomer]
	words := signatureWords(f.Signature)
	out := []TicketRef{}
	for _, t := range tickets {
		if t.CreatedAt.Before(f.Onset) {
			continue
		}
		reason := ""
		org := strconv.FormatInt(t.OrganizationID, 10)
		text := strings.ToLower(t.Subject + " " + t.Description)
		switch {
		case t.OrganizationID != 0 && affected[org] > 0:
			reason = fmt.Sprintf("organization %s is affected", org)
		case matchesWords(text, words):
			reason = "mentions the error"
		case f.Service != "" && containsWord(text, strings.ToLower(f.Service)):
			reason = "mentions " + f.Service
		}
		if reason == "" {
			continue
		}
		out = append(out, TicketRef{ID: t.ID, Subject: t.Subject, CreatedAt: t.CreatedAt, OrganizationID: t.OrganizationID, Reason: reason})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].CreatedAt.Before(out[b].CreatedAt) })
	return out
}

var stopwords = map[string]bool{
	"error": true, "failed": true, "with": true, "from": true, "after": true, "before": true,
	"this": true, "that": true, "while": true, "when": true, "have": true, "unable": true,
}

// signatureWords are the distinctive literal words of a signature, the ones
// a customer might repeat in a ticket.
func signatureWords(sig string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(sig), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if len(w) < 4 || stopwords[w] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// matchesWords needs two distinct signature words, so that one common word
// such as "timeout" does not link every ticket.
func matchesWords(text string, words []string) bool {
	n := 0
	for _, w := range words {
		if containsWord(text, w) {
			n++
			if n >= 2 {
				return true
			}
		}
	}
	return false
}

func containsWord(text, w string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], w)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || !isWordByte(text[j-1])
		after := j+len(w) == len(text) || !isWordByte(text[j+len(w)])
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isWordByte(b byte) bool {
	return b == '_' || b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

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
	ep, ok := detect(counts, expo, dc)
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
		// Volume buckets are coarse and a few unrelated tickets often
		// cluster by chance just before a real surge; the first ticket on
		// the surging topic dates it better than the bucket edge.
		if first, ok := firstOnTopic(surge, words); ok {
			from = first
		}
		for _, t := range surge {
			if !t.CreatedAt.Before(from) {
				c.tickets = append(c.tickets, t)
			}
		}
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

// topicWords are the words a surge's tickets share most: what customers
// are writing in about. A word counts once per ticket and must recur.
func topicWords(ts []Ticket) []string {
	freq := map[string]int{}
	for _, t := range ts {
		seen := map[string]bool{}
		for _, w := range signatureWords(t.Subject) {
			if !seen[w] {
				freq[w]++
				seen[w] = true
			}
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

// firstOnTopic is the creation time of the first ticket whose subject has
// one of the topic's two commonest words.
func firstOnTopic(ts []Ticket, words []string) (time.Time, bool) {
	if len(words) == 0 {
		return time.Time{}, false
	}
	lead := words[:min(2, len(words))]
	for _, t := range ts {
		subj := strings.ToLower(t.Subject)
		for _, w := range lead {
			if containsWord(subj, w) {
				return t.CreatedAt, true
			}
		}
	}
	return time.Time{}, false
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
