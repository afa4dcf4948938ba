package escalate

import "time"

// HandoverAction is the outbox action of a handover digest posted to the
// incoming shift's Slack channel. Its Body is a Handover, its Key
// "handover/<shift>/<boundary>": the outbox queues one message per key, so
// a restart or a second look at the same boundary never posts it twice.
const HandoverAction = "handover"

// EventHandover is the timeline event written on each incident a handover
// digest names.
const EventHandover = "handover"

// Handover is the digest the outgoing support shift leaves the incoming
// one: what is open, what was paged and who acknowledged it, and which
// customers are still waiting. Since is when the outgoing shift began,
// Until the boundary.
type Handover struct {
	// Shift takes over at Until; Previous hands over (empty on demand).
	Shift    string    `json:"shift,omitempty"`
	Previous string    `json:"previous_shift,omitempty"`
	Channel  string    `json:"channel,omitempty"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	// Open are the incidents open at Until; Resolved those resolved
	// during the shift. Meta (cannot read logs) incidents are included:
	// the next shift must know culprit is blind.
	Open     []HandoverIncident `json:"open"`
	Resolved []HandoverIncident `json:"resolved"`
	// Pages are the pages, page requests and PagerDuty acknowledgements
	// (and other PagerDuty incident events) during the shift, oldest
	// first.
	Pages []HandoverPage `json:"pages"`
	// Waiting are the tickets linked to Open or Resolved incidents whose
	// status (as last synced) is not solved or closed.
	Waiting []HandoverTicket `json:"waiting"`
}

// HandoverIncident is one incident as the next shift needs it.
type HandoverIncident struct {
	ID       string `json:"id"`
	Service  string `json:"service"`
	Headline string `json:"headline"`
	Status   Status `json:"status"`
	// Severity is culprit's grade (page, notify, info). Priority is the
	// support priority (P1–P4) when the incident carries one; empty
	// until it does.
	Severity string    `json:"severity"`
	Priority string    `json:"priority,omitempty"`
	Action   Action    `json:"action"`
	Onset    time.Time `json:"onset,omitzero"`
	PagedAt  time.Time `json:"paged_at,omitzero"`
	// Acknowledged is who acknowledged the page in PagerDuty, and when;
	// empty when nobody has.
	Acknowledged   string    `json:"acknowledged_by,omitempty"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	// Customers is how many customers the finding counts as affected.
	Customers int `json:"customers"`
	// URL is the evidence page; empty without ui.external_url.
	URL string `json:"url,omitempty"`
}

// HandoverPage is one paging event of the shift.
type HandoverPage struct {
	At         time.Time `json:"at"`
	IncidentID string    `json:"incident_id"`
	// Kind is the timeline event's kind: page_sent, page_requested,
	// incident.acknowledged, …
	Kind  string `json:"kind"`
	Text  string `json:"text"`
	Actor string `json:"actor,omitempty"`
}

// HandoverTicket is one customer still waiting.
type HandoverTicket struct {
	ID         int64     `json:"id"`
	Subject    string    `json:"subject"`
	Status     string    `json:"status,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	IncidentID string    `json:"incident_id"`
	// Organization is the ticket's organization id; Customer and Tier
	// its name and plan when a customer directory knows them.
	Organization int64  `json:"organization_id,omitempty"`
	Customer     string `json:"customer,omitempty"`
	Tier         string `json:"tier,omitempty"`
}

// ServiceTraffic is one service's requests and errors, bucket by bucket,
// as evaluations read them: what a threshold alert on the error share
// would have seen.
type ServiceTraffic struct {
	Service string
	Buckets []TrafficBucket
}

// TrafficBucket is one bucket of a service's traffic.
type TrafficBucket struct {
	At               time.Time
	Step             time.Duration
	Requests, Errors float64
}

// AffectedCustomer is one customer's part in an incident, as the
// evaluations counted it.
type AffectedCustomer struct {
	ID string
	// First is the evaluation that first counted the customer's errors,
	// Last the last one whose count grew: as precise as the evaluation
	// interval, and a customer hit before detection shows the detection.
	First, Last time.Time
	Errors      int64
}
