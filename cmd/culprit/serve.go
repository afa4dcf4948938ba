package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/daemon"
	"github.com/culprithq/culprit/escalate/evidence"
	"github.com/culprithq/culprit/escalate/handover"
	"github.com/culprithq/culprit/escalate/outbox"
	"github.com/culprithq/culprit/escalate/pagerduty"
	"github.com/culprithq/culprit/escalate/slack"
	"github.com/culprithq/culprit/escalate/store"
	"github.com/culprithq/culprit/escalate/timeline"
	"github.com/culprithq/culprit/escalate/webauth"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/cache"
	"github.com/culprithq/culprit/sources/customers"
	"github.com/culprithq/culprit/sources/elasticsearch"
	"github.com/culprithq/culprit/sources/intake"
	"github.com/culprithq/culprit/sources/listener"
	"github.com/culprithq/culprit/sources/zendesk"
)

const serveUsage = "serve --config FILE [--log-level debug|info|warn|error] [--log-format json|text]"

// cmdServe runs the daemon: scheduled correlation, intake, delivery.
func cmdServe(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("serve", serveUsage, env.stderr)
	path := fs.String("config", "", "configuration file (see rules/example.yml)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	format := fs.String("log-format", "json", "log format: json or text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fs.Usage()
		return usagef("serve: --config is required")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usagef("serve: --log-level %q: use debug, info, warn or error", *level)
	}
	var h slog.Handler
	switch *format {
	case "json":
		h = slog.NewJSONHandler(env.stderr, &slog.HandlerOptions{Level: lvl})
	case "text":
		h = slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: lvl})
	default:
		return usagef("serve: --log-format %q: use json or text", *format)
	}
	cfg, err := rules.LoadWith(*path, env.getenv)
	if err != nil {
		return err
	}
	d, err := assemble(ctx, &cfg, time.Now, slog.New(h))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx, nil)
}

// server is the assembled daemon. Its parts do not know one another; this
// is the only place they meet.
type server struct {
	cfg    *rules.Config
	now    func() time.Time
	log    *slog.Logger
	reg    *prometheus.Registry
	store  *store.Store
	source correlate.Source
	// after is the timer on the daemon's clock: time.After, or the
	// demo's accelerated one. With an accelerated clock the evaluations
	// follow it too (daemon.Every) instead of the wall clock's cron.
	after       func(time.Duration) <-chan time.Time
	accelerated bool
	// wrapEval wraps each scheduled evaluation (the demo feeds the
	// deploys and tickets due by then, and reports what changed); nil in
	// production, where intake and the poller feed the store.
	wrapEval func(evalFunc) evalFunc
	// closers are released with the store (the page log file).
	closers []io.Closer
	eval    *daemon.Evaluator
	outbox  *outbox.Worker
	poller  *zendesk.Poller
	// orgs syncs Zendesk organizations into customers; nil unless
	// customers.zendesk.enabled.
	orgs *zendesk.OrgPoller
	// customers is the customer directory: customers.file, kept current
	// by the Zendesk Organizations sync when that is on. Empty without
	// either, and then customers stay ids.
	customers *customers.Directory
	slack     *slack.App // nil without a Slack app configured
	evidence  *evidence.Handler
	classes   *routeClasses
	// heartbeat is nil without heartbeat.url.
	heartbeat *daemon.Heartbeat
	// handover posts the shifts' handover digests; nil without shifts.
	handover *handover.Poster
	// signer signs chart links; nil without intake.link_secret, and then
	// no chart is linked or served publicly.
	signer *webauth.Signer
	// handler is the public listener's (intake.listen), ui the private
	// one's (ui.listen; nil when unset).
	handler http.Handler
	ui      http.Handler
	// private are the patterns served behind the private listener's
	// login, for the test that none of them leaks on the public one.
	private []string
	// listener is the public listener, set by Run before it reports
	// ready; uiListener the private one (nil without ui.listen).
	listener   *listener.Server
	uiListener *listener.Server
	// uiAddr is the private listener's bound address, set before Run
	// reports ready.
	uiAddr  string
	started time.Time
}

// parts are what an assembly may take instead of building it from the
// configuration: the demo's accelerated clock and in-process logs. The
// zero value (but now) is the daemon as configured.
type parts struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	// source and sourceName replace sources.elasticsearch.
	source     correlate.Source
	sourceName string
	wrapEval   func(evalFunc) evalFunc
}

// evalFunc is one scheduled evaluation at a time.
type evalFunc = func(ctx context.Context, at time.Time) error

// assemble builds every part from the configuration, reporting all that
// is wrong at once.
func assemble(ctx context.Context, cfg *rules.Config, now func() time.Time, log *slog.Logger) (*server, error) {
	return assembleParts(ctx, cfg, parts{now: now}, log)
}

// assembleParts is assemble with some parts given instead of configured.
func assembleParts(ctx context.Context, cfg *rules.Config, p parts, log *slog.Logger) (*server, error) {
	now := p.now
	s := &server{cfg: cfg, now: now, log: log, reg: prometheus.NewRegistry(), started: now(),
		after: p.after, accelerated: p.after != nil, wrapEval: p.wrapEval}
	if s.after == nil {
		s.after = time.After
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var errs []error
	es := cfg.Sources.Elasticsearch
	var esSrc *elasticsearch.Source
	src, sourceName := p.source, p.sourceName
	if src == nil {
		var err error
		esSrc, err = elasticsearch.New(elasticsearch.Config{
			URLs: es.URLs, Index: es.Index, Username: es.Username, Password: es.Password.Reveal(), APIKey: es.APIKey.Reveal(),
			CACertFile: es.CAFile, Timeout: es.Timeout.D(), Fields: cfg.Fields, Lag: es.Lag.D(), Now: now,
			Logger: log.With("component", "elasticsearch"),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("sources.elasticsearch: %w", err))
		}
		src, sourceName = esSrc, fmt.Sprintf("Elasticsearch %s index %s", strings.Join(es.URLs, ","), es.Index)
	}
	pd, err := pagerduty.New(pagerduty.Config{URL: cmp.Or(cfg.PagerDuty.URL, pagerduty.DefaultURL)})
	if err != nil {
		errs = append(errs, fmt.Errorf("pagerduty: %w", err))
	}
	if sec := cfg.Intake.LinkSecret.Reveal(); sec != "" {
		s.signer, err = webauth.NewSigner([]byte(sec), cfg.Intake.LinkTTL.D(), now)
		if err != nil {
			errs = append(errs, fmt.Errorf("intake.link_secret: %w", err))
		}
	}
	gate, metricsGate, login, err := s.gates()
	if err != nil {
		errs = append(errs, err)
	}
	s.customers = customers.New()
	if p := cfg.Customers.File; p != "" {
		if d, err := customers.Load(p); err != nil {
			errs = append(errs, fmt.Errorf("customers.file: %w", err))
		} else {
			s.customers = d
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("serve: %w", errors.Join(errs...))
	}
	s.source = src
	st, err := store.Open(ctx, cfg.Store.Dir, now)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.store = st
	fail := func(err error) (*server, error) {
		s.Close()
		return nil, fmt.Errorf("serve: %w", err)
	}
	// Organizations synced before a restart are in the store; they are
	// newer than the file, which they override, deletions included.
	synced, err := st.Customers(ctx)
	if err != nil {
		return fail(err)
	}
	s.customers.Put(synced...)
	if cfg.Customers.Zendesk.Enabled {
		// Only while the sync is on: with it off, the file is the only
		// list someone maintains, and an old deletion must not hide it.
		removed, err := st.RemovedCustomers(ctx)
		if err != nil {
			return fail(err)
		}
		s.customers.Remove(removed...)
	}
	pages := &pagerduty.Deliverer{Notifier: pd, RoutingKey: cfg.RoutingKey, RouteKey: cfg.RouteKey, Links: s.links}
	if cfg.PagerDuty.Deliver == rules.DeliverLog {
		w, err := s.openPageLog(cfg.PagerDuty.LogFile)
		if err != nil {
			return fail(err)
		}
		pages.Notifier = pagerduty.NewLogSender(w, now)
		// No key is needed, none is sent; the log leaves it out anyway.
		pages.RoutingKey = func(service string) string { return cmp.Or(cfg.RoutingKey(service), rules.DeliverLog) }
	}
	notifiers := map[escalate.Channel]outbox.Notifier{escalate.ChannelPagerDuty: pages}
	sl := cfg.Slack
	if sl.Channel != "" || len(cfg.Shifts) > 0 {
		n, err := slack.NewNotifier(slack.NotifierConfig{Token: sl.BotToken.Reveal(), Channel: sl.Channel, RouteChannel: cfg.RouteChannel,
			APIURL: sl.APIURL, Logger: log.With("component", "slack-notifier"),
			PublicURL: cfg.UI.ExternalURL, ChartURL: func(in *escalate.Incident) string { return s.chartURL(in.ID) }})
		if err != nil {
			return fail(fmt.Errorf("slack: %w", err))
		}
		notifiers[escalate.ChannelSlack] = n
	}
	s.outbox, err = outbox.New(outbox.Config{Queue: st, Now: now, Logger: log.With("component", "outbox"), Registerer: s.reg,
		Notifiers: notifiers})
	if err != nil {
		return fail(err)
	}
	s.eval, err = newEvaluator(cfg, src, sourceName, st, s.outbox.Kick, log, s.reg, s.customers)
	if err != nil {
		return fail(err)
	}
	if z := cfg.Zendesk; z.URL != "" {
		s.poller, err = zendesk.New(zendesk.Config{URL: z.URL, Email: z.Email, Token: z.Token.Reveal(), Tickets: st, Cursors: st,
			Now: now, Logger: log.With("component", "zendesk"), Registerer: s.reg})
		if err != nil {
			return fail(err)
		}
	}
	if z, co := cfg.Zendesk, cfg.Customers.Zendesk; co.Enabled {
		s.orgs, err = zendesk.NewOrganizations(zendesk.OrgConfig{URL: z.URL, Email: z.Email, Token: z.Token.Reveal(),
			Customers: st, Cursors: st, MatchBy: co.MatchBy, TierField: co.TierField, OwnerField: co.OwnerField, VIPTags: co.VIPTags,
			OnChange: func(put []correlate.Customer, removed []string) {
				s.customers.Put(put...)
				s.customers.Remove(removed...)
			},
			Now: now, Logger: log.With("component", "zendesk-organizations"), Registerer: s.reg})
		if err != nil {
			return fail(err)
		}
	}
	var onDeploy func(correlate.Deploy)
	if cfg.PagerDuty.ChangeEvents {
		onDeploy = s.forwardDeploy
	}
	in := cfg.Intake
	api, err := intake.New(intake.Config{Token: in.Token.Reveal(), GitHubSecret: in.GitHubSecret.Reveal(),
		ZendeskSecret: in.ZendeskWebhookSecret.Reveal(), Deploys: st, Tickets: st, Deliveries: st, Now: now,
		Logger: log.With("component", "intake"), Registerer: s.reg, OnDeploy: onDeploy})
	if err != nil {
		return fail(err)
	}
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "culprit_outbox_depth", Help: "Messages waiting for delivery."}, func() float64 {
			n, err := st.Depth(context.Background())
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	if esSrc != nil {
		src := esSrc
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "culprit_elasticsearch_requests_total", Help: "Requests sent to Elasticsearch, retries included."},
			func() float64 { return float64(src.Stats().Requests) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "culprit_elasticsearch_took_seconds_total", Help: "Elasticsearch's own time (took) over all requests."},
				func() float64 { return src.Stats().Took.Seconds() }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "culprit_elasticsearch_latency_seconds_total", Help: "Wall time culprit waited on Elasticsearch over all requests."},
				func() float64 { return src.Stats().Latency.Seconds() }),
		)
	}
	if sl.SigningSecret.IsSet() || sl.AppToken.IsSet() {
		bridge := slackBridge{s}
		s.slack, err = slack.New(slack.Config{SigningSecret: sl.SigningSecret.Reveal(), Correlator: bridge, Pager: bridge, Recorder: bridge, Replays: st,
			BaseContext: ctx, InChannel: sl.InChannel, Now: now, Logger: log.With("component", "slack")})
		if err != nil {
			return fail(fmt.Errorf("slack: %w", err))
		}
	}
	var pdHook http.Handler
	if secrets := cfg.PagerDuty.WebhookSecrets; len(secrets) > 0 {
		var keys []string
		for _, k := range secrets {
			keys = append(keys, k.Reveal())
		}
		pdHook = pagerduty.NewWebhook(pagerduty.WebhookConfig{Secrets: keys, Sink: pdSink{s}, Now: now, Logger: log.With("component", "pagerduty-webhook")})
	}
	if len(cfg.Shifts) > 0 {
		s.handover, err = newHandover(cfg, st, s.customers, s.outbox.Kick, log.With("component", "handover"))
		if err != nil {
			return fail(err)
		}
	}
	if hb := cfg.Heartbeat; hb.URL != "" {
		s.heartbeat, err = daemon.NewHeartbeat(daemon.HeartbeatConfig{URL: hb.URL, Method: hb.Method, Timeout: hb.Timeout.D(),
			Logger: log.With("component", "heartbeat"), Registerer: s.reg})
		if err != nil {
			return fail(err)
		}
	}
	s.evidence, err = evidence.New(evidence.Config{Store: st, Links: s.findingLinks, Now: now, Logger: log.With("component", "evidence"),
		Review: st, ReviewOptions: reviewOptions(cfg, s.customers)})
	if err != nil {
		return fail(err)
	}
	if s.classes, err = newRouteClasses(cfg.HTTP.Concurrency, s.reg); err != nil {
		return fail(err)
	}
	s.handler = s.routes(api, pdHook)
	if cfg.UI.Listen != "" {
		s.ui = s.uiRoutes(gate, metricsGate, login)
	}
	return s, nil
}

// gates builds the private listener's login from ui: one gate for the
// pages and API, and one for /metrics that also takes the scrape token.
// login is nil without OIDC.
func (s *server) gates() (gate, metrics *webauth.Gate, login *webauth.OIDC, err error) {
	u := s.cfg.UI
	var auth []webauth.Authenticator
	policy := webauth.Policy{Domains: u.AllowedDomains, Groups: u.AllowedGroups}
	if o := u.OIDC; o.Issuer != "" {
		login, err = webauth.NewOIDC(webauth.OIDCConfig{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(),
			ExternalURL: u.ExternalURL, Scopes: o.Scopes, GroupsClaim: o.GroupsClaim, SessionSecret: []byte(o.SessionSecret.Reveal()),
			SessionTTL: o.SessionTTL.D(), Now: s.now, Logger: s.log.With("component", "login")}, policy)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("ui.oidc: %w", err)
		}
		auth = append(auth, login)
	}
	if tp := u.TrustedProxy; len(tp.Addresses) > 0 {
		p := &webauth.Proxy{UserHeader: tp.UserHeader, EmailHeader: tp.EmailHeader, GroupsHeader: tp.GroupsHeader, Policy: policy}
		for _, a := range tp.Addresses {
			pf, err := rules.ParseAddress(a)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("ui.trusted_proxy.addresses: %w", err)
			}
			p.From = append(p.From, pf)
		}
		auth = append(auth, p)
	}
	log := s.log.With("component", "ui")
	gate = &webauth.Gate{Authenticators: auth, Login: login != nil, Insecure: u.Insecure, Logger: log}
	metrics = &webauth.Gate{Authenticators: auth, Insecure: u.Insecure, Logger: log}
	if t := u.MetricsToken.Reveal(); t != "" {
		metrics.Authenticators = append(slices.Clip(auth), webauth.Token{Secret: t, Subject: "metrics scraper"})
	}
	return gate, metrics, login, nil
}

// newEvaluator is the daemon's decision logic as the configuration sets
// it: the correlation settings, lookback, routes, silences, maintenance
// and incident life cycle. `culprit serve` and `culprit backtest` both
// build it here, so a backtest decides exactly as the daemon would; only
// the source, the store and what wakes delivery differ. queued and reg
// may be nil.
func newEvaluator(cfg *rules.Config, src correlate.Source, sourceName string, st daemon.Store, queued func(),
	log *slog.Logger, reg prometheus.Registerer, dir correlate.Directory) (*daemon.Evaluator, error) {
	step := cfg.Correlate.Bucket.D()
	interval := cfg.Evaluation.Interval.D()
	quiet := max(1, int((time.Duration(cfg.Correlate.RecoveryBuckets)*step+interval-1)/interval))
	var services []string
	for _, sv := range cfg.Services {
		services = append(services, sv.Name)
	}
	if cfg.Evaluation.Incremental {
		// The same incremental path for serve and backtest, whatever the
		// source: a backtest replays what the daemon reads.
		c, err := cache.New(src, cache.Config{Recheck: cfg.Evaluation.Recheck.D(),
			Keep: daemon.MaxWindow(cfg.Evaluation.Lookback.D()) + step})
		if err != nil {
			return nil, err
		}
		src = c
	}
	// The daemon's store keeps the traffic for the review; a backtest's
	// store need not.
	var traffic daemon.TrafficRecorder
	if tr, ok := st.(daemon.TrafficRecorder); ok {
		traffic = tr
	}
	return daemon.New(daemon.Config{
		Source: src, SourceName: sourceName, Traffic: traffic,
		Store: st, Policy: cfg, Correlate: cfg.Correlate, Lookback: cfg.Evaluation.Lookback.D(),
		Customers: dir, Priority: &cfg.Priority,
		Settings: escalate.Settings{MaxQ: cfg.Thresholds.MaxQ, QuietEvaluations: quiet, ReopenCooldown: cfg.Evaluation.ReopenCooldown.D(),
			Slack: cfg.Slack.Channel != ""},
		BlindAfter: cfg.Evaluation.BlindAfter, Services: services, Queued: queued,
		Logger: log.With("component", "evaluator"), Registerer: reg,
	})
}

// evidenceURL is the incident's evidence page on the private listener,
// behind its login, or "" without ui.external_url: a link nobody can
// open is worse than none.
func (s *server) evidenceURL(id string) string { return evidenceURL(s.cfg, id) }

func evidenceURL(cfg *rules.Config, id string) string {
	base := strings.TrimRight(cfg.UI.ExternalURL, "/")
	if base == "" {
		return ""
	}
	return base + "/incidents/" + url.PathEscape(id)
}

// scheduled is one scheduled run: the evaluation, then the handovers of
// any shift boundary it passed, so a digest shows the incidents as that
// evaluation left them.
func (s *server) scheduled(ctx context.Context, at time.Time) error {
	err := s.eval.Evaluate(ctx, at)
	if s.handover != nil {
		err = errors.Join(err, s.handover.Run(ctx, at))
	}
	return err
}

// chartURL is a signed, expiring link to the incident's chart as a PNG on
// the public listener, for Slack and PagerDuty, which fetch images from
// the internet without a login and (PagerDuty) only over https. "" without
// a link secret or an https intake.public_url.
func (s *server) chartURL(id string) string {
	base := strings.TrimRight(s.cfg.Intake.PublicURL, "/")
	if s.signer == nil || !strings.HasPrefix(base, "https://") {
		return ""
	}
	return base + s.signer.Sign("/incidents/"+url.PathEscape(id)+"/chart.png")
}

// Close releases the store and the page log.
func (s *server) Close() error {
	errs := []error{s.store.Close()}
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// openPageLog opens pagerduty.log_file for appending; "-" or "" is
// stdout, which the daemon leaves free (its own logs go to stderr).
func (s *server) openPageLog(path string) (io.Writer, error) {
	if path == "" || path == "-" {
		return os.Stdout, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("pagerduty.log_file: %w", err)
	}
	s.closers = append(s.closers, f)
	return f, nil
}

// forwardDeploy queues a PagerDuty change event for a received deploy; it
// goes through the outbox like a page, so an outage loses none.
func (s *server) forwardDeploy(d correlate.Deploy) {
	body, err := json.Marshal(d)
	if err != nil {
		s.log.Error("forward deploy: encode", "deploy", d.ID, "err", err)
		return
	}
	now := s.now()
	m := escalate.Message{Channel: escalate.ChannelPagerDuty, Action: escalate.ChangeEvent, Key: d.ID, Service: d.Service,
		Body: body, CreatedAt: now, NextAt: now}
	if err := s.store.Enqueue(context.Background(), m); err != nil {
		s.log.Error("forward deploy: queue change event", "deploy", d.ID, "err", err)
		return
	}
	s.outbox.Kick()
}

// prune applies the retention settings now and every retention.interval
// until ctx ends. after is the timer, injected like the outbox's.
func (s *server) prune(ctx context.Context, after func(time.Duration) <-chan time.Time) {
	r := s.cfg.Retention
	keep := store.Retention{Deliveries: r.Deliveries.D(), Outbox: r.Outbox.D(), Incidents: r.Incidents.D(),
		Deploys: r.Deploys.D(), Tickets: r.Tickets.D(), Span: timeline.Span}
	for {
		p, err := s.store.Prune(ctx, keep, s.now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("prune store", "err", err)
		case err == nil:
			s.log.Info("store pruned", "deliveries", p.Deliveries, "replays", p.Replays, "outbox", p.Outbox,
				"incidents", p.Incidents, "events", p.Events, "deploys", p.Deploys, "tickets", p.Tickets)
		}
		select {
		case <-ctx.Done():
			return
		case <-after(cmp.Or(r.Interval.D(), time.Hour)):
		}
	}
}

// links are the URLs a page carries: the evidence page and Kibana.
func (s *server) links(in *escalate.Incident) pagerduty.Links {
	l := pagerduty.Links{Evidence: s.evidenceURL(in.ID), Chart: s.chartURL(in.ID)}
	if k := s.cfg.Kibana; k.URL != "" && in.Finding != nil {
		from, to := elasticsearch.DiscoverRange(in.Finding)
		u, err := elasticsearch.DiscoverURL(k.URL, cmp.Or(k.DataView, "culprit-logs"), s.cfg.Fields, in.Finding, from, to)
		if err == nil {
			l.Kibana = u
		} else {
			s.log.Warn("kibana link", "incident", in.ID, "err", err)
		}
	}
	return l
}

// findingLinks are the evidence page's outside links: Kibana Discover over
// the incident's documents (the deploys link themselves).
func (s *server) findingLinks(in *escalate.Incident) []correlate.Link {
	if l := s.links(in); l.Kibana != "" {
		return []correlate.Link{{Title: "Kibana Discover: the matching log lines", URL: l.Kibana}}
	}
	return nil
}

// Run serves HTTP and runs the schedule, the outbox and the poller until
// ctx ends, then shuts down in order. ready, if non-nil, receives the
// bound address once the listener is up.
func (s *server) Run(ctx context.Context, ready chan<- string) error {
	ln, err := net.Listen("tcp", cmp.Or(s.cfg.Intake.Listen, ":8080"))
	if err != nil {
		return fmt.Errorf("serve: listen on intake.listen: %w", err)
	}
	pub, err := listener.New(s.handler, s.listenerConfig("public"))
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: %w", err)
	}
	s.listener = pub
	servers := []*listener.Server{pub}
	listeners := []net.Listener{ln}
	uiAddr := ""
	if s.ui != nil {
		uln, err := net.Listen("tcp", s.cfg.UI.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("serve: listen on ui.listen: %w", err)
		}
		priv, err := listener.New(s.ui, s.listenerConfig("private"))
		if err != nil {
			ln.Close()
			uln.Close()
			return fmt.Errorf("serve: %w", err)
		}
		s.uiListener = priv
		uiAddr = uln.Addr().String()
		s.uiAddr = uiAddr
		servers = append(servers, priv)
		listeners = append(listeners, uln)
	}
	s.log.Info("culprit serving", "addr", ln.Addr().String(), "ui", uiAddr, "store", s.store.Path(), "interval", s.cfg.Evaluation.Interval.D(),
		"lookback", s.cfg.Evaluation.Lookback.D(), "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		wg.Go(func() {
			if err := srv.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve: http on %s: %w", listeners[i].Addr(), err)
				cancel()
			}
		})
	}
	wg.Go(func() {
		sched := daemon.EvaluationSchedule(s.cfg.Evaluation.Interval.D(), s.cfg.Correlate.Bucket.D(), s.cfg.Sources.Elasticsearch.Lag.D())
		eval := s.scheduled
		if s.wrapEval != nil {
			eval = s.wrapEval(eval)
		}
		if s.heartbeat != nil {
			eval = s.heartbeat.After(eval)
		}
		if s.accelerated {
			daemon.Every(ctx, sched, s.now, s.after, s.log, eval)
			return
		}
		daemon.Schedule(ctx, sched, s.now, s.log, eval)
	})
	if s.heartbeat != nil {
		wg.Go(func() { s.heartbeat.Run(ctx) })
	}
	wg.Go(func() { s.prune(ctx, s.after) })
	wg.Go(func() { s.outbox.Run(ctx, s.after) })
	if s.orgs != nil {
		wg.Go(func() { s.orgs.Run(ctx, cmp.Or(s.cfg.Zendesk.PollInterval.D(), zendesk.DefaultInterval)) })
	}
	if s.poller != nil {
		wg.Go(func() { s.poller.Run(ctx, cmp.Or(s.cfg.Zendesk.PollInterval.D(), zendesk.DefaultInterval)) })
	}
	if sl := s.cfg.Slack; s.slack != nil && sl.AppToken.IsSet() {
		wg.Go(func() {
			err := s.slack.RunSocketMode(ctx, sl.AppToken.Reveal(), sl.BotToken.Reveal(), slack.WithAPIURL(sl.APIURL))
			if err != nil && ctx.Err() == nil {
				s.log.Error("slack socket mode stopped", "err", err)
			}
		})
	}
	<-ctx.Done()
	s.log.Info("culprit shutting down")
	shut, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelShut()
	for _, srv := range servers {
		if err := srv.Shutdown(shut); err != nil {
			s.log.Warn("http shutdown", "err", err)
		}
	}
	if s.slack != nil {
		// Answers in flight are finished or told culprit is restarting.
		if err := s.slack.Shutdown(shut); err != nil {
			s.log.Warn("slack shutdown", "err", err)
		}
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// routes is the public listener's endpoints: what the internet must reach
// (intake with its bearer token, the signed webhooks, /healthz, and chart
// images behind signed links) and nothing else, so every other path is a
// 404. What shows incidents is in uiRoutes. Each route but the probe is
// guarded by its class (serve_limits.go): its body limit, and its share of
// handlers at once.
func (s *server) routes(api, pdHook http.Handler) http.Handler {
	mux := http.NewServeMux()
	rc := s.classes
	mux.Handle("/api/v1/deploys", rc.intake.Guard(bodyIntake, api))
	mux.Handle("/api/v1/deploys/", rc.intake.Guard(bodyIntake, api))
	mux.Handle("/api/v1/tickets", rc.intake.Guard(bodyIntake, api))
	mux.Handle("/api/v1/webhooks/", rc.intake.Guard(bodyNone, api))
	mux.Handle("/api/v1/webhooks/github", rc.github.Guard(bodyGitHub, api))
	mux.Handle("/api/v1/webhooks/zendesk", rc.zendesk.Guard(bodyZendesk, api))
	if pdHook != nil {
		mux.Handle("POST /api/v1/webhooks/pagerduty", rc.pagerduty.Guard(bodyPagerDuty, pdHook))
	}
	if s.slack != nil {
		mux.Handle("POST /slack/commands", rc.slack.Guard(bodySlackCommand, s.slack.Commands()))
		mux.Handle("POST /slack/interactions", rc.slack.Guard(bodySlackInteraction, s.slack.Interactions()))
	}
	mux.HandleFunc("GET /healthz", healthz)
	if s.signer != nil {
		charts := http.NewServeMux()
		s.evidence.Register(charts)
		mux.Handle("GET /incidents/{id}/{file}", rc.charts.Guard(bodyNone, chartsOnly(s.signer.Require(charts))))
	}
	return mux
}

func healthz(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }

// chartsOnly lets through the chart images, the only incident files
// signed links are made for: a link is checked for its own path, so this
// is a second lock, in case a link to something else were ever signed.
func chartsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := r.PathValue("file"); f != "chart.png" && f != "scope.png" {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// uiRoutes is the private listener's endpoints: the incident pages, the
// JSON API, the timeline exports and /metrics, all behind gate, plus the
// login itself and the probes, which show nothing.
func (s *server) uiRoutes(gate, metricsGate *webauth.Gate, login *webauth.OIDC) http.Handler {
	rc := s.classes
	private := &recordingMux{ServeMux: http.NewServeMux()}
	ev := &recordingMux{ServeMux: http.NewServeMux()}
	s.evidence.Register(ev)
	rc.evidenceRoutes(private.ServeMux, ev)
	private.patterns = append(private.patterns, ev.patterns...)
	private.Handle("GET /api/v1/incidents", rc.pages.Guard(bodyNone, http.HandlerFunc(s.listIncidents)))
	private.Handle("GET /api/v1/incidents/{id}", rc.pages.Guard(bodyNone, http.HandlerFunc(s.getIncident)))
	private.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/incidents", http.StatusFound)
	})
	s.private = private.patterns
	mux := http.NewServeMux()
	mux.Handle("/", gate.Wrap(private))
	mux.Handle("GET /metrics", metricsGate.Wrap(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})))
	s.private = append(s.private, "GET /metrics")
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if login != nil {
		login.Register(mux)
	}
	return mux
}

// recordingMux remembers the patterns registered on it.
type recordingMux struct {
	*http.ServeMux
	patterns []string
}

func (m *recordingMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

func (m *recordingMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// readyz is ready once an evaluation has succeeded recently, so a load
// balancer or an orchestrator notices a culprit that cannot read its logs.
// A fresh process gets three intervals of grace.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Ping(r.Context()); err != nil {
		// The error names files: it goes to the log, not to the prober.
		s.log.Error("readyz: store", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	grace := 3 * s.cfg.Evaluation.Interval.D()
	last := s.eval.LastSuccess()
	now := s.now()
	switch {
	case !last.IsZero() && now.Sub(last) <= grace:
		fmt.Fprintf(w, "ok: last evaluation %s\n", last.UTC().Format(time.RFC3339))
	case last.IsZero() && now.Sub(s.started) <= grace:
		fmt.Fprintln(w, "ok: starting")
	default:
		http.Error(w, fmt.Sprintf("no successful evaluation since %s", last.UTC().Format(time.RFC3339)), http.StatusServiceUnavailable)
	}
}

func (s *server) listIncidents(w http.ResponseWriter, r *http.Request) {
	ins, err := s.store.Incidents(r.Context(), 200)
	if err != nil {
		s.log.Error("list incidents", "err", err)
		http.Error(w, "cannot read incidents", http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{"incidents": nonNilIncidents(ins)})
}

func nonNilIncidents(ins []escalate.Incident) []escalate.Incident {
	if ins == nil {
		return []escalate.Incident{}
	}
	return ins
}

func (s *server) getIncident(w http.ResponseWriter, r *http.Request) {
	in, evs, ok := s.incident(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{"incident": in, "timeline": evs})
}

func (s *server) incident(w http.ResponseWriter, r *http.Request) (escalate.Incident, []escalate.Event, bool) {
	id := r.PathValue("id")
	in, err := s.store.Incident(r.Context(), id)
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, fmt.Sprintf("no incident %q", id), http.StatusNotFound)
		return in, nil, false
	}
	if err == nil {
		var evs []escalate.Event
		evs, err = s.store.Events(r.Context(), id)
		if err == nil {
			return in, evs, true
		}
	}
	s.log.Error("read incident", "id", id, "err", err)
	http.Error(w, "cannot read incident", http.StatusInternalServerError)
	return in, nil, false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
