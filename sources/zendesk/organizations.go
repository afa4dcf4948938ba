package zendesk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/culprithq/culprit/correlate"
)

// CustomerStore keeps the customers an organization export changes, so a
// restart resumes from the stored cursor without losing who they are.
type CustomerStore interface {
	// ApplyCustomers upserts put and deletes the ids in removed, in one
	// transaction. An error means nothing was applied; the poller then
	// keeps its cursor and reads the page again.
	ApplyCustomers(ctx context.Context, put []correlate.Customer, removed []string) error
}

// OrgConfig is what an OrgPoller needs.
type OrgConfig struct {
	// URL, Email, Token and HTTPClient are as for Config.
	URL, Email, Token string
	HTTPClient        *http.Client
	// Customers receives each page's changes; Cursors keeps the export's
	// position, under "zendesk/<host>/organizations".
	Customers CustomerStore
	Cursors   CursorStore
	// OnChange, when set, is told of each page's changes once they are
	// stored: the daemon updates its in-memory directory with it.
	OnChange func(put []correlate.Customer, removed []string)
	// MatchBy is the organization field that equals the logs'
	// organization.id: "external_id" (default) or "id".
	MatchBy string
	// TierField and OwnerField are organization_fields keys; default
	// "tier" and "owner". VIPTags are tags that mark a VIP; default [vip].
	TierField, OwnerField string
	VIPTags               []string
	// PerPage asks for pages of this many organizations; 0 leaves
	// Zendesk's default (1000).
	PerPage int
	// Now is the clock for start_time; time.Now when nil.
	Now func() time.Time
	// Logger receives one line per poll; never credentials.
	Logger *slog.Logger
	// Registerer receives the poller's metrics; none when nil.
	Registerer prometheus.Registerer
}

// OrgPoller syncs Zendesk organizations into customers with the
// time-based incremental export (GET /api/v2/incremental/organizations),
// the only export Zendesk offers for organizations. The cursor is the
// page's end_time, stored after each page's customers are: a crash
// re-reads at most one page, which the upsert makes harmless.
type OrgPoller struct {
	*api
	customers  CustomerStore
	cursors    CursorStore
	onChange   func([]correlate.Customer, []string)
	matchByID  bool
	tierField  string
	ownerField string
	vipTags    []string
	perPage    int
	log        *slog.Logger
	cursorName string
	wait       func(ctx context.Context, d time.Duration) error

	mu sync.Mutex

	synced   prometheus.Counter
	removed  prometheus.Counter
	unmapped prometheus.Counter
}

// NewOrganizations checks cfg and returns an OrgPoller; every problem is
// reported at once.
func NewOrganizations(cfg OrgConfig) (*OrgPoller, error) {
	a, errs := newAPI(cfg.URL, cfg.Email, cfg.Token, cfg.HTTPClient, cfg.Now)
	if cfg.Customers == nil {
		errs = append(errs, errors.New("a customer store is required"))
	}
	if cfg.Cursors == nil {
		errs = append(errs, errors.New("a cursor store is required"))
	}
	switch cfg.MatchBy {
	case "", "external_id", "id":
	default:
		errs = append(errs, fmt.Errorf("match_by %q is not external_id or id", cfg.MatchBy))
	}
	if cfg.PerPage < 0 || cfg.PerPage > 1000 {
		errs = append(errs, fmt.Errorf("per_page %d is not between 1 and 1000", cfg.PerPage))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("zendesk organizations: %w", errors.Join(errs...))
	}
	p := &OrgPoller{
		api: a, customers: cfg.Customers, cursors: cfg.Cursors, onChange: cfg.OnChange,
		matchByID:  cfg.MatchBy == "id",
		tierField:  cmpOr(cfg.TierField, "tier"),
		ownerField: cmpOr(cfg.OwnerField, "owner"),
		vipTags:    cfg.VIPTags,
		perPage:    cfg.PerPage,
		log:        cfg.Logger,
		cursorName: "zendesk/" + a.host + "/organizations",
		wait:       sleepCtx,
	}
	if p.vipTags == nil {
		p.vipTags = []string{"vip"}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "culprit_zendesk_organization_requests_total",
		Help: "Zendesk organization export requests by HTTP status code (\"error\" when none came back).",
	}, []string{"code"})
	p.synced = prometheus.NewCounter(prometheus.CounterOpts{Name: "culprit_zendesk_organizations_total",
		Help: "Organizations read from the Zendesk export and stored as customers."})
	p.removed = prometheus.NewCounter(prometheus.CounterOpts{Name: "culprit_zendesk_organizations_deleted_total",
		Help: "Deleted organizations of the Zendesk export, removed from the customers."})
	p.unmapped = prometheus.NewCounter(prometheus.CounterOpts{Name: "culprit_zendesk_organizations_unmapped_total",
		Help: "Organizations without the field match_by names (external_id), so no organization.id: skipped."})
	if reg := cfg.Registerer; reg != nil {
		for _, c := range []prometheus.Collector{p.requests, p.synced, p.removed, p.unmapped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("zendesk organizations: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// orgPage is one page of the time-based organization export.
type orgPage struct {
	Organizations []organization `json:"organizations"`
	EndTime       *int64         `json:"end_time"`
	EndOfStream   bool           `json:"end_of_stream"`
	Count         int            `json:"count"`
}

// organization is the part of Zendesk's organization object culprit uses.
type organization struct {
	ID                 int64                      `json:"id"`
	ExternalID         *string                    `json:"external_id"`
	Name               string                     `json:"name"`
	Tags               []string                   `json:"tags"`
	OrganizationFields map[string]json.RawMessage `json:"organization_fields"`
	DeletedAt          *string                    `json:"deleted_at"`
}

// Poll reads the export from the stored end_time (from the beginning, the
// first time: the directory needs every organization, not the recent
// ones) to the end of the stream. n counts the organizations applied.
//
// The next page is always requested from URL with start_time=end_time,
// never from the next_page URL in the response, so credentials only ever
// go to the configured host.
func (p *OrgPoller) Poll(ctx context.Context) (n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cursor, err := p.cursors.Cursor(ctx, p.cursorName)
	if err != nil {
		return 0, fmt.Errorf("zendesk %s: read organizations cursor: %w", p.host, err)
	}
	start := int64(0)
	if cursor != "" {
		if start, err = strconv.ParseInt(cursor, 10, 64); err != nil {
			return 0, fmt.Errorf("zendesk %s: stored organizations cursor %q is not a Unix time", p.host, cursor)
		}
	}
	for pages := 1; ; pages++ {
		// Zendesk refuses a start_time within the last minute.
		start = min(start, p.now().Add(-time.Minute).Unix())
		q := url.Values{"start_time": {strconv.FormatInt(max(start, 0), 10)}}
		if p.perPage > 0 {
			q.Set("per_page", strconv.Itoa(p.perPage))
		}
		var page orgPage
		if err := p.getJSON(ctx, "/api/v2/incremental/organizations", q, &page); err != nil {
			return n, err
		}
		put, removed := p.convert(page.Organizations)
		if len(put) > 0 || len(removed) > 0 {
			if err := p.customers.ApplyCustomers(ctx, put, removed); err != nil {
				return n, fmt.Errorf("zendesk %s: store %d organizations: %w", p.host, len(put)+len(removed), err)
			}
			n += len(put) + len(removed)
			p.synced.Add(float64(len(put)))
			p.removed.Add(float64(len(removed)))
			if p.onChange != nil {
				p.onChange(put, removed)
			}
		}
		if page.EndTime == nil {
			return n, fmt.Errorf("zendesk %s: organizations page %d has no end_time", p.host, pages)
		}
		next := *page.EndTime
		if next > start {
			if err := p.cursors.SetCursor(ctx, p.cursorName, strconv.FormatInt(next, 10)); err != nil {
				return n, fmt.Errorf("zendesk %s: save organizations cursor: %w", p.host, err)
			}
			start = next
		} else if !page.EndOfStream {
			// More promised but the window did not move (over a page of
			// organizations changed in one second): stop rather than
			// re-read the same page in a loop.
			return n, fmt.Errorf("zendesk %s: organizations page %d has end_of_stream false but end_time %d does not advance", p.host, pages, next)
		}
		if page.EndOfStream {
			p.log.Info("zendesk: organizations synced", slog.String("host", p.host), slog.Int("organizations", n), slog.Int("pages", pages))
			return n, nil
		}
	}
}

// convert maps a page's organizations onto customers, and deleted ones
// onto ids to remove. A later copy of an organization in one page wins.
func (p *OrgPoller) convert(orgs []organization) (put []correlate.Customer, removed []string) {
	latest := map[string]int{}
	var out []struct {
		c       correlate.Customer
		deleted bool
	}
	for _, o := range orgs {
		id := strconv.FormatInt(o.ID, 10)
		if !p.matchByID {
			if o.ExternalID == nil || strings.TrimSpace(*o.ExternalID) == "" {
				p.unmapped.Inc()
				continue
			}
			id = strings.TrimSpace(*o.ExternalID)
		}
		c := correlate.Customer{ID: id, Name: o.Name, Tier: strings.ToLower(strings.TrimSpace(fieldString(o.OrganizationFields[p.tierField]))),
			Owner: fieldString(o.OrganizationFields[p.ownerField])}
		for _, t := range o.Tags {
			if slices.ContainsFunc(p.vipTags, func(v string) bool { return strings.EqualFold(v, t) }) {
				c.VIP = true
			}
		}
		e := struct {
			c       correlate.Customer
			deleted bool
		}{c, o.DeletedAt != nil && *o.DeletedAt != ""}
		if i, ok := latest[id]; ok {
			out[i] = e
			continue
		}
		latest[id] = len(out)
		out = append(out, e)
	}
	for _, e := range out {
		if e.deleted {
			removed = append(removed, e.c.ID)
		} else {
			put = append(put, e.c)
		}
	}
	return put, removed
}

// fieldString reads a custom field's value: a dropdown's tag or a text
// field is a string; numbers and booleans are written as they are; null
// and objects are "".
func fieldString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return strconv.FormatBool(b)
	}
	return ""
}

// Run polls until ctx is done, as Poller.Run does.
func (p *OrgPoller) Run(ctx context.Context, interval time.Duration) {
	runPolls(ctx, interval, p.Poll, p.wait, p.log.With(slog.String("export", "organizations")), p.host)
}
