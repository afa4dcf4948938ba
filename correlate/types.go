// Package correlate is culprit's domain: the traffic it reasons about, the
// deploys and tickets that may explain it, and the findings it produces.
//
// Everything here is pure logic. Sources (files, Elasticsearch) implement the
// Source interface declared in this package; escalation (reports, pages,
// Slack) consumes Findings. Neither direction needs the other, and nothing in
// this package performs I/O or reads the wall clock: time is always passed in.
package correlate

import (
	"fmt"
	"time"
)

// Canonical field names. Findings name dimensions by these ECS names whatever
// the source's own mapping is, so that reports, pages and tests stay stable
// when an operator remaps a field.
const (
	FieldTime     = "@timestamp"
	FieldService  = "service.name"
	FieldVersion  = "service.version"
	FieldHost     = "host.name"
	FieldCustomer = "organization.id"
	FieldSite     = "url.domain"
	FieldPath     = "url.path"
	FieldProvider = "cloud.provider"
	FieldRegion   = "cloud.region"
	FieldStatus   = "http.response.status_code"
	FieldOutcome  = "event.outcome"
	FieldMessage  = "error.message"
)

// ScopeFields are the dimensions a scope breakdown reports, in the order a
// report lists them when shares tie.
var ScopeFields = []string{
	FieldCustomer, FieldSite, FieldHost, FieldProvider, FieldRegion, FieldVersion, FieldPath,
}

// AffectedFields are the dimensions whose distinct affected values are
// counted: they answer "how many customers, sites and hosts".
var AffectedFields = []string{FieldCustomer, FieldSite, FieldHost}

// Customer is what support knows about an organization beyond its id:
// support prioritises by plan and names customers when it talks about
// them, so a page that can say "3 enterprise customers, including Acme
// Corp" is read differently from "37 customers". Sources of customer
// context (a file, Zendesk Organizations) fill it; every field but ID may
// be empty, and nothing requires one.
type Customer struct {
	// ID is the organization.id the logs carry.
	ID string `json:"id"`
	// Name is the customer's name as support knows it.
	Name string `json:"name,omitempty"`
	// Tier is the plan or support tier, lower-case: "enterprise",
	// "premium", "pro", "free"; empty when unknown.
	Tier string `json:"tier,omitempty"`
	// VIP marks a customer support treats personally whatever its tier.
	VIP bool `json:"vip,omitempty"`
	// Owner is the account owner to reach about this customer.
	Owner string `json:"owner,omitempty"`
}

// Window is a half-open time range [From, To) cut into buckets of Step.
// From is aligned to Step so that every source buckets identically, which is
// what makes the file and Elasticsearch sources comparable.
type Window struct {
	From time.Time
	To   time.Time
	Step time.Duration
}

// NewWindow aligns from down and to up to step, in UTC.
func NewWindow(from, to time.Time, step time.Duration) (Window, error) {
	if step <= 0 {
		return Window{}, fmt.Errorf("bucket step must be positive, got %s", step)
	}
	if !to.After(from) {
		return Window{}, fmt.Errorf("window end %s is not after its start %s", to.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339))
	}
	f := from.UTC().Truncate(step)
	t := to.UTC().Truncate(step)
	if t.Before(to.UTC()) {
		t = t.Add(step)
	}
	return Window{From: f, To: t, Step: step}, nil
}

// Len is the number of buckets.
func (w Window) Len() int {
	if w.Step <= 0 || !w.To.After(w.From) {
		return 0
	}
	return int(w.To.Sub(w.From) / w.Step)
}

// Index is the bucket holding t, or -1 when t is outside the window.
func (w Window) Index(t time.Time) int {
	if t.Before(w.From) || !t.Before(w.To) {
		return -1
	}
	return int(t.Sub(w.From) / w.Step)
}

// Start is the start time of bucket i.
func (w Window) Start(i int) time.Time { return w.From.Add(time.Duration(i) * w.Step) }

// Traffic is what a source reports for a window: per service, the request
// volume (the denominator of every rate) and the error counts per masked
// message. Messages arrive already masked (template.Mask) so that sources
// never ship unbounded raw-message cardinality; the correlator merges masked
// messages into signatures itself, which keeps signatures identical across
// sources.
type Traffic struct {
	Window   Window
	Services []ServiceTraffic // sorted by Service
	// Complete is the number of leading buckets that are fully ingested.
	// Buckets at or after it may still be filling and must not be read as a
	// drop. Zero means all buckets are complete.
	Complete int
}

// ServiceTraffic is one service's traffic in a window.
type ServiceTraffic struct {
	Service  string
	Requests []float64 // requests per bucket, len Window.Len()
	Errors   []float64 // errors per bucket, all messages
	Messages []MessageCounts
}

// MessageCounts is the error count series of one masked message.
type MessageCounts struct {
	Message  string   // template.Mask of the raw message
	Counts   Counts   // errors per bucket, Len Window.Len()
	Examples []string // up to a few raw messages, earliest first
}

// ScopeQuery asks a source to break down the errors of one signature.
type ScopeQuery struct {
	Service string
	// Messages are the masked messages that make up the signature.
	Messages []string
	// From and To bound the breakdown of Errors, Requests and Affected:
	// typically onset to recovery (or the window end).
	From, To time.Time
	// Window is the whole analysis window, for the per-host series that
	// rollout alignment needs.
	Window Window
}

// Scope is a source's answer to a ScopeQuery.
type Scope struct {
	// Errors counts the signature's errors per field value in [From, To).
	Errors map[string]map[string]float64
	// Requests counts all the service's requests per field value in [From, To).
	Requests map[string]map[string]float64
	// HostErrors is the signature's error series per host over Window.
	HostErrors map[string][]float64
	// HostRequests is the service's request series per host over Window.
	HostRequests map[string][]float64
	// Samples are a few matching documents, earliest first.
	Samples []Sample
}

// Sample is one matching log document, kept as evidence.
type Sample struct {
	Time     time.Time `json:"time"`
	Host     string    `json:"host,omitempty"`
	Customer string    `json:"customer,omitempty"`
	Site     string    `json:"site,omitempty"`
	Version  string    `json:"version,omitempty"`
	Message  string    `json:"message"`
}

// Deploy is a change that may explain a finding.
type Deploy struct {
	ID          string        `json:"id"`
	Service     string        `json:"service"`
	Version     string        `json:"version"`
	Environment string        `json:"environment,omitempty"`
	StartedAt   time.Time     `json:"started_at"`
	FinishedAt  time.Time     `json:"finished_at,omitzero"`
	Author      string        `json:"author,omitempty"`
	URL         string        `json:"url,omitempty"`
	Description string        `json:"description,omitempty"`
	Hosts       []HostRollout `json:"hosts,omitempty"`
}

// HostRollout records when one host received a deploy's version.
type HostRollout struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Ticket is a support ticket, in Zendesk's shape. OrganizationID is the same
// customer as the logs' organization.id.
type Ticket struct {
	ID             int64     `json:"id"`
	CreatedAt      time.Time `json:"created_at"`
	Subject        string    `json:"subject"`
	Description    string    `json:"description,omitempty"`
	Priority       string    `json:"priority,omitempty"`
	Status         string    `json:"status,omitempty"`
	Tags           []string  `json:"tags,omitempty"`
	OrganizationID int64     `json:"organization_id,omitempty"`
	RequesterID    int64     `json:"requester_id,omitempty"`
	Via            string    `json:"via,omitempty"`
}

// Kind is what a finding is about.
type Kind string

const (
	KindNewError      Kind = "new_error"
	KindErrorIncrease Kind = "error_increase"
	KindTicketSurge   Kind = "ticket_surge"
)

// Severity is how loudly a finding should be escalated.
type Severity string

const (
	// SeverityPage: broad, significant, infrastructure-wide. Wake someone.
	SeverityPage Severity = "page"
	// SeverityNotify: real but narrow (one customer) or low confidence.
	SeverityNotify Severity = "notify"
	// SeverityInfo: recorded, nobody is disturbed.
	SeverityInfo Severity = "info"
)

// Rank orders severities, page highest.
func (s Severity) Rank() int {
	switch s {
	case SeverityPage:
		return 3
	case SeverityNotify:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Finding is one explained change. Its JSON form is culprit's stable output
// contract (`culprit correlate --format json`).
type Finding struct {
	ID              string     `json:"id"`
	Service         string     `json:"service"`
	Kind            Kind       `json:"kind"`
	Signature       string     `json:"signature"`
	Examples        []string   `json:"examples"`
	Onset           time.Time  `json:"onset"`
	Detected        time.Time  `json:"detected"`
	Recovered       *time.Time `json:"recovered"`
	Severity        Severity   `json:"severity"`
	SeverityReasons []string   `json:"severity_reasons"`
	// Priority is the support priority, P1 to P4, computed from who is
	// affected and how (see rules.Priority); severity says whether to
	// wake someone, priority how soon support must answer.
	Priority *PriorityLevel `json:"priority,omitempty"`
	// Customers names the affected customers the customers source knows;
	// nil without one, or when it knows none of them.
	Customers        *CustomerImpact `json:"customers,omitempty"`
	Headline         string          `json:"headline"`
	Frequency        Frequency       `json:"frequency"`
	Significance     Significance    `json:"significance"`
	Scope            ScopeSummary    `json:"scope"`
	SuspectedDeploys []Suspect       `json:"suspected_deploys"`
	// Recovery names the deploy (often a rollback) whose arrival ended the
	// errors of the first suspect's version; nil when none did.
	Recovery *Recovery `json:"recovery,omitempty"`
	// PreDeployExcess says that one customer carried the class's excess in
	// the minutes before the first suspect's rollout began; nil otherwise.
	PreDeployExcess *PreDeployExcess `json:"pre_deploy_excess,omitempty"`
	// UnalignedDeploy, when no deploy is suspected, names the latest deploy
	// of the service that finished before the onset and why it is not
	// blamed; nil when there is none or a deploy is suspected.
	UnalignedDeploy *UnalignedDeploy `json:"unaligned_deploy,omitempty"`
	// Tickets are the related tickets, best first: their text fits the
	// finding. A customer being affected ranks a ticket higher but never
	// makes it related on its own.
	Tickets []TicketRef `json:"tickets"`
	// OtherTickets are the ids of tickets filed since the onset by
	// affected customers that are not obviously related: shown as a count,
	// since support wants to know of them without reading them as evidence.
	OtherTickets []int64       `json:"other_tickets,omitempty"`
	Samples      []Sample      `json:"samples,omitempty"`
	Series       *FindingChart `json:"series,omitempty"`
	// Links point at the evidence elsewhere (a Kibana Discover search, a
	// dashboard). The correlator leaves them empty: whoever knows where the
	// data lives adds them.
	Links []Link `json:"links,omitempty"`
}

// Link is a titled URL attached to a finding.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Frequency says how often the error happens, before and after onset.
type Frequency struct {
	BeforePerMin float64 `json:"before_per_min"`
	AfterPerMin  float64 `json:"after_per_min"`
	ShareBefore  float64 `json:"share_before"`
	ShareAfter   float64 `json:"share_after"`
	Count        int64   `json:"count"`
}

// Significance is the evidence that the change is not noise, after
// correction for the number of series tested in the run.
type Significance struct {
	Method string  `json:"method"`
	PValue float64 `json:"p_value"`
	// QValue is the false-discovery-adjusted p-value across the family.
	QValue float64 `json:"q_value"`
	// Tests is the size of the family the correction was applied to.
	Tests int `json:"tests"`
}

// ScopeSummary says who and what is affected.
type ScopeSummary struct {
	Affected      map[string]int  `json:"affected"`
	Concentration []Concentration `json:"concentration"`
	// Top names who is affected, per field of AffectedFields: the values
	// with the most errors, most first, up to MaxTop each. Support asks
	// "which customers?" before "how many?", and /correlate customer=ID
	// asks whether one customer is among them.
	Top map[string][]ValueCount `json:"top,omitempty"`
	// Explanations are the few conjunctions of dimension values that
	// account for most of the errors at the highest risk ratio, best
	// first (see Explanation); empty when the source cannot count
	// conjunctions or nothing stands out.
	Explanations []Explanation `json:"explanations,omitempty"`
}

// MaxTop bounds ScopeSummary.Top per field, so a finding that reached
// thousands of customers still fits a page's custom details.
const MaxTop = 100

// ValueCount is one field value and its errors.
type ValueCount struct {
	Value  string `json:"value"`
	Errors int64  `json:"errors"`
}

// Concentration is one dimension value that carries more of the errors than
// of the traffic.
type Concentration struct {
	Field           string  `json:"field"`
	Value           string  `json:"value"`
	ShareOfErrors   float64 `json:"share_of_errors"`
	ShareOfRequests float64 `json:"share_of_requests"`
}

// Suspect is a deploy the correlator implicates, with its reasons.
type Suspect struct {
	ID         string    `json:"id"`
	Service    string    `json:"service"`
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	URL        string    `json:"url,omitempty"`
	Score      float64   `json:"score"`
	Reasons    []string  `json:"reasons"`
	// rolloutTied says the errors followed the rollout host by host (or
	// concentrated on the version while it rolled out): only then does the
	// rollout date the onset. A version tied to the errors by its
	// recovery alone may have run for half an hour before they began.
	rolloutTied bool
	// corroborated says the tie rests on more than one chance finding: one
	// line of evidence is strong, or two agree. An increase in an existing
	// class skips the hold on deploy-less increases only when it is (see
	// sustain.holds).
	corroborated bool
}

// TicketRef is a ticket linked to a finding.
type TicketRef struct {
	ID             int64     `json:"id"`
	Subject        string    `json:"subject"`
	CreatedAt      time.Time `json:"created_at"`
	OrganizationID int64     `json:"organization_id"`
	Reason         string    `json:"reason,omitempty"`
	// Score ranks related tickets, highest first: how many independent
	// cues of the finding the ticket's text has, plus a point when its
	// customer is affected and half one when it was filed in the
	// incident's wake.
	Score float64 `json:"score,omitempty"`
	// Affected is true when the ticket's organization has the finding's
	// errors.
	Affected bool `json:"affected,omitempty"`
}

// FindingChart carries the series behind a finding so that charts can be
// drawn without asking the source again.
type FindingChart struct {
	Start    time.Time `json:"start"`
	StepSec  float64   `json:"step_seconds"`
	Errors   []float64 `json:"errors"`
	Requests []float64 `json:"requests"`
	// Baseline is the expected error count per bucket under the pre-onset rate.
	Baseline []float64 `json:"baseline"`
}

// Result is one correlation run.
type Result struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Findings []Finding `json:"findings"`
	// Stats describes the run, for operators: how many series were tested.
	Stats RunStats `json:"stats"`
}

// RunStats describes the work behind a Result.
type RunStats struct {
	Services   int `json:"services"`
	Signatures int `json:"signatures"`
	Tested     int `json:"tested"`
}
