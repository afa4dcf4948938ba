// Package intake is culprit's HTTP API for the evidence that arrives as it
// happens: deploys (from CI or GitHub), rollout progress per host, and support
// tickets (pushed, or from a Zendesk trigger).
//
// Every route lives in routes.go. The deploy and ticket endpoints take a
// bearer token; the webhooks take their vendor's signature instead, because
// neither GitHub nor Zendesk can send a bearer token of our choosing along
// with a signature we can check. Bodies are validated whole before anything
// is stored, so a rejected batch leaves no partial state to clean up; on top
// of the file format's rules, intake refuses what no real sender sends
// (invalid UTF-8, over-long or control-character ids, far-future or ancient
// times, negative ticket ids: the limits are in validate.go).
//
// # Endpoints
//
//	POST /api/v1/deploys                  bearer; a deploy, an array of them, or NDJSON
//	POST /api/v1/deploys/{id}/progress    bearer; {"hosts":[{"name":…,"at":…}],"finished_at":…}
//	POST /api/v1/tickets                  bearer; a ticket, an array, or {"tickets":[…]} pages
//	POST /api/v1/webhooks/github          X-Hub-Signature-256; deployment_status events, JSON or form
//	POST /api/v1/webhooks/zendesk         X-Zendesk-Webhook-Signature; a trigger's ticket
//
// Deploys and tickets use the file formats of the README ("Input formats"),
// decoded by the same code as the file source. Errors are JSON,
// {"error":"…"}, and name the array index and field at fault.
//
// # Zendesk trigger body
//
// Create a webhook (request format JSON, signing secret = ZendeskSecret,
// POST to /api/v1/webhooks/zendesk) and connect it to a trigger on ticket
// creation or update with this body:
//
//	{"ticket": {
//	  "id": "{{ticket.id}}",
//	  "created_at": "{{ticket.created_at_with_timestamp}}",
//	  "subject": "{{ticket.title}}",
//	  "description": "{{ticket.description}}",
//	  "priority": "{{ticket.priority}}",
//	  "status": "{{ticket.status}}",
//	  "tags": "{{ticket.tags}}",
//	  "organization_id": "{{ticket.organization.id}}",
//	  "requester_id": "{{ticket.requester.id}}",
//	  "via": "{{ticket.via}}"
//	}}
//
// Placeholders render as text, so ids may be strings ("123") or numbers and
// an empty organization is "". created_at_with_timestamp has minute
// precision (2013-12-12T05:35Z) and is accepted as such; tags arrive space
// separated; priority and status are lower-cased ("-" means none). Only id and
// created_at are required. A webhook subscribed to Zendesk ticket events
// ({"type":"zen:event-type:ticket.…","detail":{…}}) is accepted as well.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/culprithq/culprit/correlate"
)

// DefaultMaxBody is the body limit when Config.MaxBody is zero: a deploy
// batch or a Zendesk export page of a few hundred tickets fits easily.
const DefaultMaxBody = 1 << 20

// zendeskMaxSkew is how far a Zendesk signature timestamp may be from now.
// The signature covers the timestamp, so an old request cannot be re-dated;
// this bounds how long a captured request can be replayed.
const zendeskMaxSkew = 5 * time.Minute

// DeployStore records deploys. The SQLite store implements it.
type DeployStore interface {
	// AddDeploy records a deploy; idempotent by ID: a deploy already known is
	// merged (hosts added, finished_at set) and created is false. An error
	// means the deploy may not be stored; retrying is safe.
	AddDeploy(ctx context.Context, d correlate.Deploy) (created bool, err error)
	// AddProgress appends per-host rollout progress to a known deploy.
	// Unknown id: an error for which errors.Is(err, fs.ErrNotExist). Any other
	// error means the progress may not be stored; retrying is safe.
	AddProgress(ctx context.Context, id string, hosts []correlate.HostRollout, finishedAt time.Time) error
}

// TicketStore records support tickets.
type TicketStore interface {
	// AddTickets upserts by ticket id (a later update of the same ticket
	// replaces it). An error means some tickets may not be stored; retrying
	// the whole batch is safe.
	AddTickets(ctx context.Context, ts []correlate.Ticket) error
}

// DeliveryLog remembers webhook deliveries. GitHub signs the body but sends
// no timestamp, so a captured delivery stays valid forever unless its id is
// remembered.
type DeliveryLog interface {
	// FirstDelivery records a webhook delivery id and reports whether it was
	// new (replay guard). An error means nothing is known about the id; the
	// delivery is then refused, so that GitHub redelivers it.
	FirstDelivery(ctx context.Context, source, id string) (bool, error)
}

// Config is what the intake API needs. An empty Token, GitHubSecret or
// ZendeskSecret turns its endpoints off (they answer 404), so a daemon can
// run the webhooks without the token API and the other way round.
type Config struct {
	// Token is the bearer token of the deploy, progress and ticket endpoints.
	Token string
	// GitHubSecret is the webhook secret of the GitHub deployment_status hook.
	GitHubSecret string
	// ZendeskSecret is the signing secret of the Zendesk webhook.
	ZendeskSecret string
	// Deploys is required with Token or GitHubSecret.
	Deploys DeployStore
	// Tickets is required with Token or ZendeskSecret.
	Tickets TicketStore
	// Deliveries is required with GitHubSecret.
	Deliveries DeliveryLog
	// Now is the clock for signature timestamps; time.Now when nil.
	Now func() time.Time
	// Logger receives one line per rejected request and per stored batch,
	// never a token, a signature or a body. Discarded when nil.
	Logger *slog.Logger
	// Registerer receives culprit_intake_requests_total; none when nil.
	Registerer prometheus.Registerer
	// MaxBody bounds request bodies in bytes (413 beyond); DefaultMaxBody when 0.
	MaxBody int64
	// OnDeploy, when set, is called once per deploy the store did not know
	// yet (created), after it is stored, with the deploy as received; for
	// example to forward it as a PagerDuty change event. It runs on the
	// request's goroutine, so it must hand slow work off rather than block.
	OnDeploy func(correlate.Deploy)
}

// server holds the dependencies every handler shares.
type server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	maxBody  int64
	requests *prometheus.CounterVec
}

// New checks cfg and returns the intake API. Every configuration problem is
// reported at once.
func New(cfg Config) (http.Handler, error) {
	var errs []error
	if cfg.Token == "" && cfg.GitHubSecret == "" && cfg.ZendeskSecret == "" {
		errs = append(errs, errors.New("no endpoint enabled: set a token, a github secret or a zendesk secret"))
	}
	if (cfg.Token != "" || cfg.GitHubSecret != "") && cfg.Deploys == nil {
		errs = append(errs, errors.New("deploy intake needs a deploy store"))
	}
	if (cfg.Token != "" || cfg.ZendeskSecret != "") && cfg.Tickets == nil {
		errs = append(errs, errors.New("ticket intake needs a ticket store"))
	}
	if cfg.GitHubSecret != "" && cfg.Deliveries == nil {
		errs = append(errs, errors.New("github webhook needs a delivery log (replay guard)"))
	}
	if cfg.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("max body must not be negative, got %d", cfg.MaxBody))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("intake: %w", errors.Join(errs...))
	}
	s := &server{cfg: cfg, log: cfg.Logger, now: cfg.Now, maxBody: cfg.MaxBody}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBody
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "culprit_intake_requests_total",
		Help: "Intake API requests by endpoint and HTTP status code.",
	}, []string{"endpoint", "code"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.requests); err != nil {
			// A handler rebuilt on a configuration reload keeps counting
			// into the series it registered before.
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			if !ok {
				return nil, fmt.Errorf("intake: register metrics: %w", err)
			}
			cv, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("intake: register metrics: %w", err)
			}
			s.requests = cv
		}
	}
	mux := http.NewServeMux()
	s.routes(mux)
	return mux, nil
}
