package rules

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Sources says where the daemon reads logs.
type Sources struct {
	Elasticsearch Elasticsearch `yaml:"elasticsearch"`
}

// Elasticsearch is the cluster holding the request logs. Use either
// APIKey or Username with Password.
type Elasticsearch struct {
	// URLs are the cluster's HTTP endpoints, without credentials.
	URLs []string `yaml:"urls"`
	// Index is an index pattern such as logs-*.
	Index    string `yaml:"index"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	APIKey   Secret `yaml:"api_key"`
	// CAFile is a PEM bundle to trust instead of the system roots; a
	// relative path is taken from the configuration file's directory.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one request.
	Timeout Duration `yaml:"timeout"`
	// Lag is how far behind real time ingestion runs: the newest buckets
	// are incomplete, and reading them would look like a drop in traffic.
	// Evaluations run this long past each bucket boundary, so it adds to
	// every detection delay second for second. The default, 30s, covers
	// shippers that flush every few seconds into an index refreshed every
	// second with room to spare; a bucket read slightly early still shows
	// its true error rate on fewer requests, because errors and requests
	// arrive through the same pipeline, and the daemon counts requests that
	// arrive after their bucket was judged (culprit_late_requests_total),
	// so a lag too short for the pipeline is seen rather than guessed.
	Lag Duration `yaml:"lag"`
}

// Evaluation is the daemon's correlation loop.
//
// In YAML, evaluation.resolve_after is another name for
// correlate.recovery_buckets (buckets back at baseline before a finding has
// recovered, and so before its incident resolves); it has no field here, so
// that there is one setting to read.
type Evaluation struct {
	// Interval is how often correlation runs; a multiple of
	// correlate.bucket, so that every run ends on a bucket boundary.
	Interval Duration `yaml:"interval"`
	// Lookback is the window each evaluation reads.
	Lookback Duration `yaml:"lookback"`
	// ReopenCooldown is the hysteresis against flapping: a finding that
	// comes back within this long after its incident resolved reopens that
	// incident, without paging again.
	ReopenCooldown Duration `yaml:"reopen_cooldown"`
	// BlindAfter is how many evaluations in a row may fail before culprit
	// raises its own "cannot read logs" incident: one failure is a blip,
	// several mean nobody is watching.
	BlindAfter int `yaml:"blind_after"`
	// Incremental keeps each complete bucket's traffic between
	// evaluations and asks the logs only for the buckets completed since
	// the last one, plus Recheck (sources/cache): an evaluation then costs
	// what its new minute of logs costs, not its whole lookback. Off, every
	// evaluation reads its whole window again. Both give the same findings.
	Incremental bool `yaml:"incremental"`
	// Recheck is how much of what was already read complete an
	// incremental evaluation reads again, to pick up documents indexed late
	// (counted in culprit_late_requests_total). A document indexed later
	// than Lag plus Recheck into its bucket is not seen: set it to the
	// ingestion pipeline's worst lag beyond sources.elasticsearch.lag.
	Recheck Duration `yaml:"recheck"`
}

// Service is a watched service.
type Service struct {
	Name string `yaml:"name"`
	// RoutingKey is the PagerDuty Events API v2 routing key for this
	// service's pages; unset, pagerduty.routing_key is used.
	RoutingKey Secret `yaml:"routing_key"`
}

// Thresholds decide which findings are acted on.
//
// In YAML, thresholds.min_customers is another name for
// correlate.page_min_customers: the correlator grades a finding "page" only
// when at least that many customers are affected, so a second threshold
// here could only contradict it.
type Thresholds struct {
	// MaxQ is the largest q-value acted on. Every finding already has
	// q ≤ correlate.fdr, so MaxQ can only be stricter; left out, it is
	// correlate.fdr and every finding is acted on.
	MaxQ float64 `yaml:"max_q"`
}

// PagerDuty is the Events API v2 endpoint pages go to.
type PagerDuty struct {
	// URL is the Events API base, https://events.pagerduty.com unless a
	// proxy or a test fake stands in.
	URL string `yaml:"url"`
	// RoutingKey is used for services without their own.
	RoutingKey Secret `yaml:"routing_key"`
	// ChangeEvents forwards the deploys culprit receives as PagerDuty
	// Change Events, so responders see them on the incident timeline.
	// Change events need an integration key: PagerDuty rejects them on a
	// ruleset key (starting with R), which validation refuses.
	ChangeEvents bool `yaml:"change_events"`
	// WebhookSecrets verify PagerDuty's v3 webhooks (acknowledged,
	// resolved...), which culprit writes on the incident timeline. Two
	// during a secret rotation; none, and the webhook is refused.
	WebhookSecrets []Secret `yaml:"webhook_secrets"`
	// Deliver is api (default): events go to the Events API; or log: they
	// are written, one JSON line each, to LogFile instead, and no routing
	// key is needed. The demo uses log; so can a new installation that
	// wants to see what it would page before it wakes anyone.
	Deliver string `yaml:"deliver"`
	// LogFile is where deliver: log writes; "-" or empty is stdout.
	LogFile string `yaml:"log_file"`
}

// Pages delivery modes (pagerduty.deliver).
const (
	DeliverAPI = "api"
	DeliverLog = "log"
)

// Slack is the Slack app: /correlate, its buttons, and the channel that
// business-hours incidents are posted to.
type Slack struct {
	// SigningSecret verifies every request Slack sends (slash commands and
	// button presses); unset, both endpoints refuse everything.
	SigningSecret Secret `yaml:"signing_secret"`
	// BotToken (xoxb-) posts to Channel.
	BotToken Secret `yaml:"bot_token"`
	// Channel is the channel id (C0123…) or name incidents routed to
	// "slack" are posted to; unset, the slack route only records.
	Channel string `yaml:"channel"`
	// AppToken (xapp-) enables Socket Mode: commands and buttons arrive
	// over a connection culprit opens, for workspaces where culprit has no
	// public URL.
	AppToken Secret `yaml:"app_token"`
	// APIURL is the Web API base, https://slack.com/api/ unless a proxy or
	// a test fake stands in.
	APIURL string `yaml:"api_url"`
	// InChannel shows /correlate answers to the whole channel instead of
	// only to the person who asked.
	InChannel bool `yaml:"in_channel"`
}

// Intake is the daemon's public listener: what must be reachable from the
// internet (deploy and ticket intake, the signed webhooks, /healthz and
// chart images behind signed links) and nothing else. Incidents, the JSON
// API and /metrics are on UI's listener.
type Intake struct {
	// Listen is host:port; ":8080" listens on every interface.
	Listen string `yaml:"listen"`
	// PublicURL is where the internet reaches this listener: the base of
	// the signed chart links that PagerDuty and Slack fetch. PagerDuty
	// takes images over https only.
	PublicURL string `yaml:"public_url"`
	// Token is the bearer token that POST /api/v1/deploys, its
	// /api/v1/deploys/{id}/progress and POST /api/v1/tickets require. The
	// webhooks carry their vendors' signatures instead; the incidents API
	// is not on this listener (see UI).
	Token Secret `yaml:"token"`
	// LinkSecret signs chart links (HMAC-SHA256 over path and expiry), so
	// that a chart can be opened from a page or a phone without a login
	// while nobody can enumerate incidents. Unset, pages and Slack posts
	// carry no chart image. Changing it breaks every link handed out.
	LinkSecret Secret `yaml:"link_secret"`
	// LinkTTL is how long a chart link works after it was handed out.
	LinkTTL Duration `yaml:"link_ttl"`
	// GitHubSecret verifies deployment_status webhooks; unset, the GitHub
	// webhook is refused.
	GitHubSecret Secret `yaml:"github_secret"`
	// ZendeskWebhookSecret verifies Zendesk webhooks; unset, they are
	// refused.
	ZendeskWebhookSecret Secret `yaml:"zendesk_webhook_secret"`
}

// UI is the private listener: the incident pages, the JSON API, the
// timeline exports and /metrics. They show customer ids, log lines, ticket
// subjects and deploy authors, so validation refuses a listener without a
// login (OIDC or a trusted proxy) unless Insecure says otherwise.
type UI struct {
	// Listen is host:port; unset, none of these are served.
	Listen string `yaml:"listen"`
	// ExternalURL is where people reach this listener (behind the login),
	// the base of evidence links in pages and Slack posts, and of the OIDC
	// redirect URL (ExternalURL + /auth/callback).
	ExternalURL string `yaml:"external_url"`
	// Insecure serves without a login: only for a listener nobody else can
	// reach, such as a demo published on 127.0.0.1.
	Insecure bool `yaml:"insecure"`
	// OIDC logs people in with an OpenID Connect provider.
	OIDC OIDC `yaml:"oidc"`
	// TrustedProxy accepts the user named by an authenticating proxy
	// (oauth2-proxy and the like) in front of this listener.
	TrustedProxy TrustedProxy `yaml:"trusted_proxy"`
	// AllowedDomains, when set, admit only emails in these domains.
	AllowedDomains []string `yaml:"allowed_domains"`
	// AllowedGroups, when set, admit only members of one of these groups
	// (the ID token's groups claim, or the proxy's groups header).
	AllowedGroups []string `yaml:"allowed_groups"`
	// MetricsToken is a bearer token that opens /metrics (and only it)
	// to a scraper, which cannot log in.
	MetricsToken Secret `yaml:"metrics_token"`
}

// OIDC is an OpenID Connect provider (Okta, Google, Keycloak, Dex...)
// with culprit registered as a confidential client.
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// at start-up.
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// SessionSecret signs the session cookie; at least 32 bytes.
	SessionSecret Secret `yaml:"session_secret"`
	// SessionTTL is how long a login lasts.
	SessionTTL Duration `yaml:"session_ttl"`
	// Scopes are requested besides openid.
	Scopes []string `yaml:"scopes"`
	// GroupsClaim is the ID token claim listing the user's groups.
	GroupsClaim string `yaml:"groups_claim"`
}

// TrustedProxy is an authenticating reverse proxy whose headers culprit
// believes, but only on connections from Addresses.
type TrustedProxy struct {
	// Addresses are the proxies' IPs or CIDRs.
	Addresses []string `yaml:"addresses"`
	// UserHeader names the user; EmailHeader and GroupsHeader (comma
	// separated) are read for allowed_domains and allowed_groups.
	UserHeader   string `yaml:"user_header"`
	EmailHeader  string `yaml:"email_header"`
	GroupsHeader string `yaml:"groups_header"`
}

// Zendesk is polled for tickets through the incremental export.
type Zendesk struct {
	// URL is the account's base, such as https://acme.zendesk.com.
	URL   string `yaml:"url"`
	Email string `yaml:"email"`
	// Token is an API token of Email.
	Token        Secret   `yaml:"token"`
	PollInterval Duration `yaml:"poll_interval"`
}

// Kibana is linked from findings so responders land on the raw documents.
type Kibana struct {
	URL string `yaml:"url"`
	// DataView is the id of the data view Discover links open.
	DataView string `yaml:"data_view"`
}

// Store is where the daemon keeps incidents, deploys and tickets.
type Store struct {
	Dir string `yaml:"dir"`
}

// Retention bounds how long the store keeps what it no longer needs, so
// the file does not grow for ever. 0 keeps that kind for ever. Replay-guard
// rows need no setting: they go when their window ends.
type Retention struct {
	// Interval is how often pruning runs.
	Interval Duration `yaml:"interval"`
	// Deliveries is how long webhook delivery ids (GitHub, PagerDuty)
	// are remembered; at least 48h, PagerDuty's redelivery window.
	Deliveries Duration `yaml:"deliveries"`
	// Outbox is how long delivered and dead-lettered messages are kept
	// after they left the queue. Pending messages are never pruned.
	Outbox Duration `yaml:"outbox"`
	// Incidents is how long a resolved incident is kept after it
	// resolved, with its timeline. Open incidents are never pruned.
	Incidents Duration `yaml:"incidents"`
	// Deploys and Tickets are how long received deploys and tickets are
	// kept, except those inside a kept incident's evidence span, which
	// stay as long as the incident.
	Deploys Duration `yaml:"deploys"`
	Tickets Duration `yaml:"tickets"`
}

// Heartbeat is culprit's dead man's switch: a request to URL after every
// successful evaluation (healthchecks.io, Cronitor, Dead Man's Snitch), so
// that a monitor outside notices when the beats stop: culprit dead, stuck
// or blind to its logs. Empty URL sends nothing.
type Heartbeat struct {
	URL string `yaml:"url"`
	// Method is GET or POST.
	Method string `yaml:"method"`
	// Timeout bounds one request.
	Timeout Duration `yaml:"timeout"`
}

// Time is an RFC 3339 instant in YAML, such as 2026-11-20T00:00:00Z. A
// zone is required: a silence must not shift with the server's zone.
type Time struct{ time.Time }

// UnmarshalYAML parses RFC 3339, reporting a bad value with its line.
func (t *Time) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: must be an RFC 3339 time like 2026-11-20T00:00:00Z", n.Line)}}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not an RFC 3339 time like 2026-11-20T00:00:00Z", n.Line, s)}}
	}
	t.Time = v
	return nil
}

// MarshalYAML writes RFC 3339.
func (t Time) MarshalYAML() (any, error) { return t.Format(time.RFC3339Nano), nil }
