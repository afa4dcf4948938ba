package slack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// DefaultAPIURL is Slack's Web API base, used when NotifierConfig.APIURL
// is empty.
const DefaultAPIURL = "https://slack.com/api/"

// maxNotifierRetryAfter caps a Retry-After the outbox will honour, so a
// garbled header cannot park a post for days.
const maxNotifierRetryAfter = time.Hour

// NotifierConfig says where the daemon's channel posts go.
type NotifierConfig struct {
	// Token is the bot token (xoxb-…) with chat:write.
	Token string
	// Channel is the channel id (C…) or name incidents are posted to.
	// It may be empty when the notifier only posts handovers, which name
	// their shift's channel.
	Channel string
	// RouteChannel is the channel of a route that has its own (the
	// support on-call's, for one VIP customer), "" for one that has
	// none; nil, none has.
	RouteChannel func(route string) string
	// APIURL is the Web API base; empty means DefaultAPIURL.
	APIURL string
	// PublicURL is the base URL of the evidence pages (ui.external_url,
	// behind the private listener's login); evidence links are PublicURL +
	// "/incidents/" + id. Empty means no evidence button.
	PublicURL string
	// ChartURL optionally gives an incident's chart (a public https PNG).
	ChartURL func(in *escalate.Incident) string
	// HTTPClient is optional; its transport is reused and wrapped to read
	// status and Retry-After, which slack-go does not always expose.
	HTTPClient *http.Client
	// Timeout bounds one post; default 10s.
	Timeout time.Duration
	// Logger reports a failed look-up of an earlier post; nil discards.
	Logger *slog.Logger
}

// Notifier posts outbox messages for the Slack channel with
// chat.postMessage. It never retries itself: the outbox owns retries,
// guided by the retry result and Error.RetryDelay.
type Notifier struct {
	api     *slackgo.Client
	channel string
	byRoute func(route string) string
	public  string
	chart   func(in *escalate.Incident) string
	host    string
	token   string
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
}

var _ interface {
	Deliver(ctx context.Context, m escalate.Message) (bool, error)
} = (*Notifier)(nil)

// NewNotifier checks cfg and builds a Notifier. Errors name the field and
// never the token.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	var errs []error
	if cfg.Token == "" {
		errs = append(errs, errors.New("slack notifier config: Token is required"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("slack notifier config: Timeout must not be negative, got %s", cfg.Timeout))
	}
	base := strings.TrimSpace(cfg.APIURL)
	if base == "" {
		base = DefaultAPIURL
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		errs = append(errs, errors.New("slack notifier config: APIURL is not a URL"))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		errs = append(errs, fmt.Errorf("slack notifier config: APIURL must be an absolute http(s) URL, got scheme %q", u.Scheme))
	case u.User != nil:
		errs = append(errs, errors.New("slack notifier config: APIURL must not carry credentials"))
	}
	public := strings.TrimRight(strings.TrimSpace(cfg.PublicURL), "/")
	if public != "" {
		if _, ok := httpURL(public, false); !ok {
			errs = append(errs, errors.New("slack notifier config: PublicURL must be an absolute http(s) URL"))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport.(*http.Transport).Clone()
	}
	hc.Transport = recorder{next: next}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &Notifier{
		api:     slackgo.New(cfg.Token, slackgo.OptionAPIURL(base), slackgo.OptionHTTPClient(&hc)),
		channel: cfg.Channel,
		byRoute: cfg.RouteChannel,
		public:  public,
		chart:   cfg.ChartURL,
		host:    u.Host,
		token:   cfg.Token,
		timeout: timeout,
		now:     time.Now,
		log:     cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
	}, nil
}

// Deliver implements the outbox's Notifier for escalate.ChannelSlack: a
// post (or trigger) renders the queued incident with the same blocks as
// /correlate answers; a resolve posts one line. On failure the error is an
// *Error; retry is true for rate limits, 5xx, timeouts, network errors and
// Slack's own transient errors, and false for everything the message or
// the configuration must fix (invalid_auth, channel_not_found, …).
//
// A handover posts the queued digest to its shift's channel instead of
// the notifier's.
func (n *Notifier) Deliver(ctx context.Context, m escalate.Message) (retry bool, err error) {
	switch m.Action {
	case escalate.Post, escalate.Trigger, escalate.Resolve:
	case escalate.HandoverAction:
		return n.deliverHandover(ctx, m)
	default:
		return false, fmt.Errorf("slack cannot deliver action %q", m.Action)
	}
	if n.channel == "" {
		return false, fmt.Errorf("slack cannot post incident %s: no channel configured (slack.channel)", m.IncidentID)
	}
	var in escalate.Incident
	if err := json.Unmarshal(m.Body, &in); err != nil {
		return false, fmt.Errorf("decode queued incident %s: %w", m.IncidentID, err)
	}
	if in.ID == "" {
		in.ID = m.IncidentID
	}
	channel := n.channel
	if n.byRoute != nil && in.Route != "" {
		channel = cmp.Or(n.byRoute(in.Route), channel)
	}
	if n.already(ctx, m, channel) {
		return false, nil
	}
	opts := []slackgo.MsgOption{outboxMetadata(m)}
	if m.Action == escalate.Resolve {
		text := fmt.Sprintf(":white_check_mark: Resolved: %s (incident %s)", escape(clip(incidentHeadline(&in), 500)), escape(in.ID))
		opts = append(opts, slackgo.MsgOptionText(text, false))
	} else {
		a := n.answer(&in)
		opts = append(opts, slackgo.MsgOptionText(FallbackText(a), false), slackgo.MsgOptionBlocks(Blocks(a)...))
	}
	return n.send(ctx, channel, opts...)
}

// deliverHandover posts a queued handover digest to its shift's channel.
func (n *Notifier) deliverHandover(ctx context.Context, m escalate.Message) (bool, error) {
	var h escalate.Handover
	if err := json.Unmarshal(m.Body, &h); err != nil {
		return false, fmt.Errorf("decode queued handover %s: %w", m.Key, err)
	}
	if h.Channel == "" {
		return false, fmt.Errorf("handover %s names no channel", m.Key)
	}
	if n.already(ctx, m, h.Channel) {
		return false, nil
	}
	return n.send(ctx, h.Channel, outboxMetadata(m), slackgo.MsgOptionText(HandoverText(h), false),
		slackgo.MsgOptionBlocks(HandoverBlocks(h)...))
}

// already reports whether an earlier attempt of m reached channel. A retry
// may follow an attempt Slack received but culprit never heard back from
// (a timeout, or culprit killed mid-delivery): the message is looked for
// first, so it is not posted twice.
func (n *Notifier) already(ctx context.Context, m escalate.Message, channel string) bool {
	if m.Attempts == 0 && !m.InDoubt {
		return false
	}
	ts, err := n.posted(ctx, m, channel)
	if err != nil {
		n.log.Warn("slack: cannot look for an earlier post, posting again (at least once)",
			"message", m.ID, "incident", m.IncidentID, "err", err)
	}
	return err == nil && ts != ""
}

// outboxMetadata tags a post with its outbox id, for already.
func outboxMetadata(m escalate.Message) slackgo.MsgOption {
	return slackgo.MsgOptionMetadata(slackgo.SlackMetadata{EventType: metadataEvent,
		EventPayload: map[string]any{"outbox_id": strconv.FormatInt(m.ID, 10), "incident_id": m.IncidentID, "action": m.Action}})
}

// metadataEvent is the event type of the message metadata every outbox
// post carries. With the outbox id in it, a retry can find the post in
// the channel's history: chat.postMessage has no idempotency key.
const metadataEvent = "culprit_outbox_message"

// lookBack is how far before a message was queued its post is looked for
// (clock skew between culprit and Slack), and maxLookupPages bounds the
// history pages read.
const (
	lookBack       = 5 * time.Minute
	maxLookupPages = 10
)

// posted finds the post of m in the channel's history by its metadata and
// returns its ts, or "" when it is not there. It needs the
// channels:history scope (groups:history for a private channel) and a
// channel id: conversations.history does not take channel names.
func (n *Notifier) posted(ctx context.Context, m escalate.Message, channel string) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	want := strconv.FormatInt(m.ID, 10)
	p := &slackgo.GetConversationHistoryParameters{ChannelID: channel, Limit: 200, IncludeAllMetadata: true,
		Oldest: fmt.Sprintf("%d.000000", m.CreatedAt.Add(-lookBack).Unix())}
	for range maxLookupPages {
		res, err := n.api.GetConversationHistoryContext(rctx, p)
		if err != nil {
			return "", fmt.Errorf("conversations.history of %s: %s", channel, n.redact(err.Error()))
		}
		for _, msg := range res.Messages {
			md := msg.Metadata
			if md.EventType == metadataEvent && fmt.Sprint(md.EventPayload["outbox_id"]) == want &&
				fmt.Sprint(md.EventPayload["incident_id"]) == m.IncidentID {
				return msg.Timestamp, nil
			}
		}
		if !res.HasMore || res.ResponseMetaData.NextCursor == "" {
			return "", nil
		}
		p.Cursor = res.ResponseMetaData.NextCursor
	}
	return "", fmt.Errorf("conversations.history of %s: more than %d pages since the message was queued", channel, maxLookupPages)
}

// answer turns an incident into the renderer's input.
func (n *Notifier) answer(in *escalate.Incident) Answer {
	f := in.Finding
	if f == nil {
		// The blindness meta-incident has no finding; its signature is
		// the whole story.
		f = &correlate.Finding{Service: in.Service, Signature: in.Signature, Headline: in.Signature,
			Severity: in.Severity, Kind: in.Kind, Onset: in.Onset, Detected: in.OpenedAt}
	}
	it := Item{Finding: *f, IncidentID: in.ID}
	if n.public != "" && in.ID != "" {
		it.EvidenceURL = n.public + "/incidents/" + url.PathEscape(in.ID)
	}
	if n.chart != nil {
		it.ChartURL = n.chart(in)
	}
	head := "culprit incident " + in.ID
	if in.Service != "" {
		head += " on " + in.Service
	}
	return Answer{Headline: head, Items: []Item{it}}
}

func incidentHeadline(in *escalate.Incident) string {
	if in.Finding != nil && in.Finding.Headline != "" {
		return in.Finding.Headline
	}
	if in.Signature != "" {
		return in.Service + ": " + in.Signature
	}
	return in.Service
}

func (n *Notifier) send(ctx context.Context, channel string, opts ...slackgo.MsgOption) (bool, error) {
	const op = "post message"
	fail := func(retry bool, cause error) (bool, error) {
		return retry, &Error{Op: op, Host: n.host, Err: cause}
	}
	if err := ctx.Err(); err != nil {
		return fail(true, err)
	}
	rctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	x := &exchange{}
	_, _, err := n.api.PostMessageContext(context.WithValue(rctx, exchangeKey{}, x), channel, opts...)
	if err == nil {
		return false, nil
	}
	var serr slackgo.SlackErrorResponse
	switch {
	case x.status == http.StatusTooManyRequests:
		return true, &Error{Op: op, Host: n.host, Status: x.status, Code: "ratelimited",
			RetryAfter: retryAfter(x.header.Get("Retry-After"), n.now(), maxNotifierRetryAfter),
			Err:        errors.New("rate limited")}
	case x.status >= 500 || x.status == http.StatusRequestTimeout:
		return true, &Error{Op: op, Host: n.host, Status: x.status, Err: errors.New("slack server error")}
	case x.status != 0 && x.status != http.StatusOK:
		return false, &Error{Op: op, Host: n.host, Status: x.status, Err: errors.New(n.redact(err.Error()))}
	case errors.As(err, &serr):
		return transientCode(serr.Err), &Error{Op: op, Host: n.host, Status: x.status, Code: serr.Err,
			Err: errors.New(n.redact(slackErrorText(serr)))}
	case x.status == http.StatusOK:
		// Slack said 200 but the body was not its JSON: a proxy or a
		// captive portal in between. Worth another try.
		return fail(true, fmt.Errorf("unreadable response: %s", n.redact(err.Error())))
	case ctx.Err() != nil:
		return fail(true, ctx.Err())
	case rctx.Err() != nil:
		return fail(true, fmt.Errorf("no response within %s: %w", n.timeout, context.DeadlineExceeded))
	case x.err != nil:
		return fail(true, x.err)
	}
	// Nothing reached the network: the message could not be built.
	return fail(false, fmt.Errorf("build request: %s", n.redact(err.Error())))
}

// transientCode lists Slack's error codes that say "not now" rather than
// "never": https://api.slack.com/methods/chat.postMessage#errors.
func transientCode(code string) bool {
	switch code {
	case "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org":
		return true
	}
	return false
}

func slackErrorText(e slackgo.SlackErrorResponse) string {
	s := e.Err
	if msgs := e.ResponseMetadata.Messages; len(msgs) > 0 {
		s += ": " + strings.Join(msgs, "; ")
	}
	return clip(s, 1000)
}

// redact keeps the bot token out of error text, whatever echoed it.
func (n *Notifier) redact(s string) string {
	if n.token != "" {
		s = strings.ReplaceAll(s, n.token, "<token>")
	}
	return s
}

// Error is a failed channel post. It names the Web API host and Slack's
// error code, never the token.
type Error struct {
	// Op is what failed, "post message".
	Op string
	// Host is the Web API host.
	Host string
	// Status is the HTTP status, or 0 when no response arrived.
	Status int
	// Code is Slack's error code ("channel_not_found", "ratelimited"),
	// empty when Slack gave none.
	Code string
	// RetryAfter is the wait Slack asked for (429 Retry-After), or 0.
	RetryAfter time.Duration
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s to %s: ", e.Op, e.Host)
	if e.Status != 0 && e.Status != http.StatusOK {
		fmt.Fprintf(&b, "%d %s: ", e.Status, http.StatusText(e.Status))
	}
	fmt.Fprint(&b, e.Err)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Err }

// RetryDelay is the wait Slack asked for, so the outbox honours
// Retry-After without knowing Slack.
func (e *Error) RetryDelay() time.Duration { return e.RetryAfter }

// exchange is what recorder saw of one request: slack-go turns a 429
// with an HTTP-date Retry-After into a parse error and drops headers, so
// status and headers are read below it.
type exchange struct {
	status int
	header http.Header
	err    error
}

type exchangeKey struct{}

// recorder is an http.RoundTripper that fills the request's exchange.
// http.Client calls it on the caller's goroutine, so the exchange is
// complete when PostMessageContext returns.
type recorder struct{ next http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if x, _ := req.Context().Value(exchangeKey{}).(*exchange); x != nil {
		if err != nil {
			x.status, x.err = 0, err
		} else {
			x.status, x.header = resp.StatusCode, resp.Header
		}
	}
	return resp, err
}
