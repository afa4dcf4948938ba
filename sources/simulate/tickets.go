package simulate

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// ticketSpec is how customers hit by an incident complain about it.
type ticketSpec struct {
	// prob is the chance that a heavily affected customer files a ticket;
	// a customer who saw one error rarely bothers.
	prob     float64
	subjects []string
	tags     []string
	priority string
}

type pendingTicket struct {
	at       int64
	cust     *customer
	subject  string
	desc     string
	priority string
	status   string
	via      string
	tags     []string
	// incident marks a ticket about the injected incident, for the
	// truth's labels.
	incident bool
}

type genericTicket struct {
	subject string
	tags    []string
}

var genericTickets = []genericTicket{
	{"Billing question", []string{"billing"}},
	{"How do I set up DNS?", []string{"dns", "how-to"}},
	{"Custom domain not verifying", []string{"dns", "domains"}},
	{"Invoice for last month", []string{"billing"}},
	{"Add a team member", []string{"account"}},
	{"Build failing with out of memory", []string{"builds"}},
	{"Question about bandwidth limits", []string{"billing", "limits"}},
	{"Redirect rules not working", []string{"redirects"}},
	{"How do I roll back a deploy?", []string{"deploys", "how-to"}},
	{"Cannot log in to the dashboard", []string{"account"}},
	{"Feature request: more build minutes", []string{"feature-request"}},
	{"Spam in form submissions", []string{"forms"}},
	{"Upgrade to the Pro plan", []string{"billing"}},
	{"Environment variables in functions", []string{"functions", "how-to"}},
}

var surgeSubjects = []string{
	"Form notification emails not arriving",
	"Password reset emails not arriving",
	"Order confirmation emails not arriving",
	"Contact form emails not arriving since this afternoon",
	"Urgent: customer emails not arriving",
}

// backgroundTicketsPerHour is the support queue's steady trickle.
const backgroundTicketsPerHour = 3

func planBackgroundTickets(f *fleet, r *rand.Rand, from, to int64) []pendingTicket {
	people := &f.services[svcDashboard].pick
	var out []pendingTicket
	n := poisson(r, backgroundTicketsPerHour*float64(to-from)/3600000)
	for range n {
		g := genericTickets[r.IntN(len(genericTickets))]
		c := f.customers[people.draw(r)]
		t := pendingTicket{
			at:       from + r.Int64N(to-from),
			cust:     c,
			subject:  g.subject,
			desc:     "Hi, " + lowerFirst(g.subject) + " (site " + c.sites[0] + "). Thanks!",
			priority: []string{"low", "normal", "normal", "normal"}[r.IntN(4)],
			status:   []string{"new", "open", "open", "pending", "solved"}[r.IntN(5)],
			via:      via(r),
			tags:     g.tags,
		}
		out = append(out, t)
	}
	return out
}

// planSurgeTickets is a problem outside the logs' sight: 8–15 tickets from
// 5–8 organisations in half an hour.
func planSurgeTickets(f *fleet, r *rand.Rand, onset int64) []pendingTicket {
	people := &f.services[svcDashboard].pick
	n := 8 + r.IntN(8)
	k := 5 + r.IntN(4)
	var orgs []*customer
	for len(orgs) < k {
		c := f.customers[people.draw(r)]
		if !slices.Contains(orgs, c) {
			orgs = append(orgs, c)
		}
	}
	out := make([]pendingTicket, 0, n)
	for i := range n {
		c := orgs[i%k]
		if i >= k {
			c = orgs[r.IntN(k)]
		}
		at := onset + r.Int64N(30*60000)
		out = append(out, pendingTicket{
			at:       at,
			cust:     c,
			subject:  surgeSubjects[r.IntN(len(surgeSubjects))],
			desc:     "Since about " + time.UnixMilli(onset).UTC().Format("15:04") + " UTC our visitors do not receive emails from " + c.sites[0] + ".",
			priority: "high",
			status:   "new",
			via:      via(r),
			tags:     []string{"email", "notifications"},
			incident: true,
		})
	}
	return out
}

// incidentTickets lets affected customers complain, 10–40 minutes after
// their first error, more likely the more errors they saw.
func incidentTickets(spec ticketSpec, f *fleet, r *rand.Rand, first []int64, count []int32, end int64) []pendingTicket {
	if spec.prob == 0 {
		return nil
	}
	var out []pendingTicket
	for i, n := range count {
		if n == 0 {
			continue
		}
		// prob 1 is a customer certain to complain, however few errors.
		if u := r.Float64(); spec.prob < 1 && u >= spec.prob*(1-math.Exp(-float64(n)/3)) {
			continue
		}
		c := f.customers[i]
		at := first[i] + int64((10+30*r.Float64())*60000)
		if at >= end {
			continue
		}
		out = append(out, pendingTicket{
			at:       at,
			cust:     c,
			subject:  spec.subjects[r.IntN(len(spec.subjects))],
			desc:     "Since " + time.UnixMilli(first[i]).UTC().Format("15:04") + " UTC some requests to " + c.sites[0] + " fail. Please help.",
			priority: spec.priority,
			status:   "new",
			via:      via(r),
			tags:     spec.tags,
			incident: true,
		})
	}
	return out
}

func via(r *rand.Rand) string {
	if r.IntN(10) < 6 {
		return "web"
	}
	return "email"
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// numberTickets sorts tickets by creation and gives them increasing ids,
// as a help desk does.
func numberTickets(r *rand.Rand, ts []pendingTicket) []correlate.Ticket {
	slices.SortStableFunc(ts, func(a, b pendingTicket) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	base := int64(48000 + r.IntN(1000))
	out := make([]correlate.Ticket, len(ts))
	for i, t := range ts {
		out[i] = correlate.Ticket{
			ID:             base + int64(i),
			CreatedAt:      time.UnixMilli(t.at / 1000 * 1000).UTC(),
			Subject:        t.subject,
			Description:    t.desc,
			Priority:       t.priority,
			Status:         t.status,
			Tags:           t.tags,
			OrganizationID: t.cust.orgNum,
			RequesterID:    t.cust.requester + int64(r.IntN(3)),
			Via:            t.via,
		}
	}
	return out
}

// zendeskTicket is a ticket as Zendesk's API serialises it: via is an
// object, and every ticket has a URL and an update time.
type zendeskTicket struct {
	URL            string     `json:"url"`
	ID             int64      `json:"id"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	Subject        string     `json:"subject"`
	Description    string     `json:"description"`
	Priority       string     `json:"priority"`
	Status         string     `json:"status"`
	RequesterID    int64      `json:"requester_id"`
	OrganizationID int64      `json:"organization_id"`
	Tags           []string   `json:"tags"`
	Via            zendeskVia `json:"via"`
}

type zendeskVia struct {
	Channel string `json:"channel"`
}

// zendeskPage is one page of the incremental ticket export, the last one.
type zendeskPage struct {
	Tickets     []zendeskTicket `json:"tickets"`
	EndOfStream bool            `json:"end_of_stream"`
	AfterCursor *string         `json:"after_cursor"`
	AfterURL    *string         `json:"after_url"`
}

// MarshalTickets renders tickets as a Zendesk incremental-export page.
func MarshalTickets(ts []correlate.Ticket) ([]byte, error) {
	page := zendeskPage{Tickets: make([]zendeskTicket, len(ts)), EndOfStream: true}
	for i, t := range ts {
		page.Tickets[i] = toZendesk(t)
	}
	return json.MarshalIndent(page, "", "  ")
}

// MarshalTicket renders one ticket as the Zendesk ticket object that
// MarshalTickets puts in its page, for feeds that deliver tickets one by
// one as a help desk's webhook would.
func MarshalTicket(t correlate.Ticket) ([]byte, error) {
	return json.Marshal(toZendesk(t))
}

func toZendesk(t correlate.Ticket) zendeskTicket {
	z := zendeskTicket{
		URL:            "https://acme.zendesk.com/api/v2/tickets/" + strconv.FormatInt(t.ID, 10) + ".json",
		ID:             t.ID,
		CreatedAt:      t.CreatedAt,
		UpdatedAt:      t.CreatedAt,
		Subject:        t.Subject,
		Description:    t.Description,
		Priority:       t.Priority,
		Status:         t.Status,
		RequesterID:    t.RequesterID,
		OrganizationID: t.OrganizationID,
		Tags:           t.Tags,
		Via:            zendeskVia{Channel: t.Via},
	}
	if z.Tags == nil {
		z.Tags = []string{}
	}
	return z
}
