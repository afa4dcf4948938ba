package simulate

import (
	"math/rand/v2"
	"strings"
	"time"
)

// Tickets in customers' own words. The incident tickets of ticketSpec
// are a few fixed subjects; real customers describe the same incident in
// many ways, and file tickets about other things while it lasts. A grammar
// (what they see broken, how, when, and sometimes the error they copied)
// gives varied phrasings, so that a relevance matcher measured on them is
// measured on language, not on a list of subjects.

// phrase is a noun phrase and whether it takes a plural verb.
type phrase struct {
	text   string
	plural bool
}

// symptom is a verb phrase in its plural and singular forms.
type symptom struct{ plural, singular string }

func (s symptom) agree(p phrase) string {
	if p.plural {
		return s.plural
	}
	return s.singular
}

// ticketVoice is how customers describe one incident shape.
type ticketVoice struct {
	things   []phrase
	symptoms []symptom
	// quotes are error text a customer pastes: a piece of the message or
	// the status line their browser showed.
	quotes []string
	// unaffected says whether customers without an error in the logs
	// write in too: a fleet problem reaches customers whose own requests
	// were not sampled, while one customer's broken certificate does not.
	unaffected bool
}

var voices = map[Shape]ticketVoice{
	ShapeFriday: {
		things: []phrase{{"our serverless functions", true}, {"functions", true}, {"the checkout function", false},
			{"our API functions", true}, {"edge functions", true}, {"all our function endpoints", true}, {"the contact form function", false}},
		symptoms: []symptom{{"fail", "fails"}, {"are failing", "is failing"}, {"return 502", "returns 502"},
			{"throw bad gateway errors", "throws bad gateway errors"}, {"error out with 502s", "errors out with 502s"},
			{"are broken", "is broken"}, {"stopped working", "stopped working"}, {"fail intermittently", "fails intermittently"},
			{"keep returning 502 Bad Gateway", "keeps returning 502 Bad Gateway"}},
		quotes:     []string{"function invocation failed", "502 Bad Gateway", "returned 502 from upstream"},
		unaffected: true,
	},
	ShapeIncrease: {
		things: []phrase{{"the API", false}, {"API requests", true}, {"the deploys API", false}, {"API calls", true},
			{"our integration with your API", false}, {"REST API calls", true}},
		symptoms: []symptom{{"time out", "times out"}, {"are timing out", "is timing out"}, {"are very slow and failing", "is very slow and failing"},
			{"return 500 errors", "returns 500 errors"}, {"hang and then fail", "hangs and then fails"}, {"keep timing out", "keeps timing out"}},
		quotes:     []string{"context deadline exceeded", "500 Internal Server Error"},
		unaffected: true,
	},
	ShapeCanary: {
		things: []phrase{{"the API", false}, {"API calls", true}, {"the sites endpoint", false}, {"requests to /api/v1/sites", true},
			{"our API integration", false}},
		symptoms: []symptom{{"return 500 now and then", "returns 500 now and then"}, {"fail randomly with 500", "fails randomly with 500"},
			{"throw internal server errors", "throws internal server errors"}, {"give 500 errors", "gives 500 errors"}},
		quotes:     []string{"index out of range", "runtime error", "500 Internal Server Error"},
		unaffected: true,
	},
	ShapeSlowRamp: {
		things: []phrase{{"the API", false}, {"API requests", true}, {"the deploys endpoint", false}, {"API calls", true}},
		symptoms: []symptom{{"return 503", "returns 503"}, {"are getting slower and failing with 503", "is getting slower and failing with 503"},
			{"say service unavailable", "says service unavailable"}, {"fail intermittently with 503", "fails intermittently with 503"}},
		quotes:     []string{"connection pool exhausted", "503 Service Unavailable"},
		unaffected: true,
	},
	ShapeRegionOutage: {
		things: []phrase{{"our site in Europe", false}, {"our website from Europe", false}, {"pages for visitors in Europe", true},
			{"our shop in Europe", false}},
		symptoms: []symptom{{"are down with 503", "is down with 503"}, {"return 503", "returns 503"},
			{"show service unavailable", "shows service unavailable"}, {"are unreachable", "is unreachable"}},
		quotes:     []string{"no healthy upstream", "503 Service Unavailable"},
		unaffected: true,
	},
	ShapeSingleCustomer: {
		things: []phrase{{"our site", false}, {"our custom domain", false}, {"HTTPS on our domain", false}},
		symptoms: []symptom{{"show certificate errors", "shows certificate errors"}, {"return 502", "returns 502"},
			{"have an expired SSL certificate", "has an expired SSL certificate"}},
		quotes: []string{"certificate verify failed", "certificate has expired"},
	},
}

var (
	ticketOpeners = []string{"", "", "", "Urgent: ", "Production issue: ", "Help - ", "Checkout broken - "}
	ticketWhens   = []string{"", "", " since this afternoon", " since %s UTC", " for the last hour", " again", " right now"}
)

// otherTopics are what affected customers also write about while an
// incident goes on: questions that have nothing to do with it.
var otherTopics = [][]string{
	{"Can I raise the bandwidth limit?", "How do I increase our bandwidth limit?", "Bandwidth limit for our team"},
	{"DNS not propagating", "DNS changes not propagating after a day", "Our domain's DNS still points to the old host"},
	{"Upgrade to the Pro plan", "How do I upgrade to Pro?", "Question about Pro plan pricing"},
	{"Add a second team member", "Invite a colleague to our team", "Change the account owner"},
	{"Invoice address change", "Need a copy of last month's invoice", "VAT number on invoices"},
	{"Build minutes running out", "Can we buy more build minutes?"},
	{"How to set environment variables in functions", "Where do I put secrets for functions?"},
	{"Feature request: scheduled builds", "Feature request: IP allow lists"},
	{"Can we get a copy of the DPA?", "GDPR data processing agreement"},
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func oneOf[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// voiceTicket is one incident ticket in a customer's own words, quoting
// the error in the subject or description some of the time.
func voiceTicket(v ticketVoice, r *rand.Rand, c *customer, at, since int64) pendingTicket {
	thing, sym := oneOf(r, v.things), oneOf(r, v.symptoms)
	when := oneOf(r, ticketWhens)
	when = strings.Replace(when, "%s", time.UnixMilli(since).UTC().Format("15:04"), 1)
	var subject string
	switch r.IntN(4) {
	case 0:
		subject = oneOf(r, ticketOpeners) + thing.text + " " + sym.agree(thing) + when
	case 1:
		subject = "Anyone else? " + thing.text + " " + sym.agree(thing)
	case 2:
		subject = "Problem with " + thing.text
	default:
		subject = thing.text + " " + sym.agree(thing) + when
	}
	subject = capitalize(strings.TrimSpace(subject))
	desc := "Hi, " + thing.text + " " + sym.agree(thing) + " on " + c.sites[0] + "."
	switch r.IntN(3) {
	case 0:
		q := oneOf(r, v.quotes)
		if r.IntN(2) == 0 {
			subject += " (\"" + q + "\")"
		} else {
			desc += " Visitors see \"" + q + "\"."
		}
	case 1:
		desc += " It started around " + time.UnixMilli(since).UTC().Format("15:04") + " UTC."
	}
	return pendingTicket{
		at: at, cust: c, subject: subject, desc: desc + " Can you check?",
		priority: oneOf(r, []string{"normal", "high", "high", "urgent"}), status: "new", via: via(r),
		tags: []string{}, incident: true,
	}
}

// voiceTickets adds the incident's tickets in customers' own words, from
// affected customers and (for a fleet problem) from customers without an
// error in the logs, and the affected customers' tickets about other
// things. It draws from its own stream so that the other tickets of a
// seed stay what they were.
func voiceTickets(shape Shape, f *fleet, r *rand.Rand, onset int64, first []int64, count []int32, end int64, inc *incident) []pendingTicket {
	v, ok := voices[shape]
	if !ok {
		return nil
	}
	var out []pendingTicket
	var affected []*customer
	for i, n := range count {
		if n > 0 {
			affected = append(affected, f.customers[i])
		}
	}
	for _, c := range affected {
		if r.Float64() < 0.25 {
			at := first[c.idx] + int64((10+40*r.Float64())*60000)
			if at < end {
				out = append(out, voiceTicket(v, r, c, at, first[c.idx]))
			}
		}
	}
	if v.unaffected && len(affected) > 0 {
		var pool []*customer
		for _, c := range f.customers {
			if count[c.idx] == 0 && unaffectedFits(shape, c, inc) {
				pool = append(pool, c)
			}
		}
		for k := 2 + r.IntN(4); k > 0 && len(pool) > 0; k-- {
			i := r.IntN(len(pool))
			c := pool[i]
			pool = append(pool[:i], pool[i+1:]...)
			at := onset + int64((10+50*r.Float64())*60000)
			if at < end {
				out = append(out, voiceTicket(v, r, c, at, onset))
			}
		}
	}
	// Affected customers keep asking about everything else.
	n := max(1, len(affected)/8)
	for _, k := range r.Perm(len(affected))[:min(n, len(affected), 12)] {
		c := affected[k]
		at := first[c.idx] + int64((5+115*r.Float64())*60000)
		if at >= end {
			continue
		}
		subject := oneOf(r, oneOf(r, otherTopics))
		out = append(out, pendingTicket{
			at: at, cust: c, subject: subject,
			desc:     "Hi, " + lowerFirst(subject) + " (site " + c.sites[0] + "). Thanks!",
			priority: oneOf(r, []string{"low", "normal", "normal"}), status: oneOf(r, []string{"new", "open"}), via: via(r),
			tags: []string{},
		})
	}
	return out
}

// unaffectedFits says whether a customer without errors could plausibly
// have hit the incident: they use the failing feature or are in the
// failing region.
func unaffectedFits(shape Shape, c *customer, inc *incident) bool {
	switch shape {
	case ShapeFriday:
		return len(c.fns) > 0
	case ShapeIncrease, ShapeCanary, ShapeSlowRamp:
		return c.usesAPI
	case ShapeRegionOutage:
		return inc.region < 0 || c.region == inc.region
	}
	return true
}
