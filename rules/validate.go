package rules

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checker collects problems, each placed at its key's line.
type checker struct {
	loc      *locator
	problems []Problem
	warnings []Problem
}

func (ck *checker) errf(path, format string, a ...any) {
	ck.problems = append(ck.problems, Problem{Line: ck.loc.line(path), Path: path, Msg: fmt.Sprintf(format, a...)})
}

func (ck *checker) warnf(path, format string, a ...any) {
	ck.warnings = append(ck.warnings, Problem{Line: ck.loc.line(path), Path: path, Msg: fmt.Sprintf(format, a...)})
}

// sub reports problems found by a helper that knows only the keys below
// path.
func (ck *checker) sub(path string, ps []Problem) {
	for _, p := range ps {
		if p.Path != "" {
			ck.errf(path+"."+p.Path, "%s", p.Msg)
		} else {
			ck.errf(path, "%s", p.Msg)
		}
	}
}

// validate checks every value and cross-reference of c and, when compile
// is set, stores what it parsed (zones, windows, regexps, schedules) in c
// for Route and Silenced. It never stops at the first problem.
func validate(c *Config, loc *locator, compile bool) (problems, warnings []Problem) {
	ck := &checker{loc: loc}
	ck.fields(c.Fields)
	ck.correlate(c.Correlate)
	ck.elasticsearch(c)
	ck.evaluation(c)
	services := ck.services(c.Services)
	ck.thresholds(c)
	ck.routes(c, services, compile)
	ck.silences(c, services, compile)
	ck.maintenance(c, services, compile)
	ck.pagerduty(c)
	ck.intake(c)
	ck.http(c)
	ck.zendesk(c)
	ck.customers(c)
	ck.priority(c.Priority)
	ck.kibana(c)
	ck.slack(c)
	ck.retention(c)
	ck.heartbeat(c)
	ck.shifts(c, compile)
	ck.review(c)
	ck.ui(c)
	ck.inlineSecrets(c)
	return ck.problems, ck.warnings
}

func (ck *checker) fields(f Fields) {
	for _, r := range []struct{ key, v string }{{"time", f.Time}, {"service", f.Service}, {"status", f.Status}} {
		if strings.TrimSpace(r.v) == "" {
			ck.errf("fields."+r.key, "must not be empty")
		}
	}
	if len(f.Message) == 0 {
		ck.errf("fields.message", "must list at least one field")
	}
}

func (ck *checker) correlate(k Correlate) {
	if k.Bucket.D() < time.Second {
		ck.errf("correlate.bucket", "must be at least 1s, got %s", short(k.Bucket.D()))
	}
	if k.AttributionWindow.D() < 0 {
		ck.errf("correlate.attribution_window", "must not be negative, got %s", short(k.AttributionWindow.D()))
	}
	if k.FDR <= 0 || k.FDR >= 1 {
		ck.errf("correlate.fdr", "must be between 0 and 1 exclusive, got %g", k.FDR)
	}
	atLeast1 := func(key string, v int) {
		if v < 1 {
			ck.errf("correlate."+key, "must be at least 1, got %d", v)
		}
	}
	atLeast1("min_errors", k.MinErrors)
	atLeast1("new_error_min_entities", k.NewErrorMinEntities)
	atLeast1("page_min_customers", k.PageMinCustomers)
	atLeast1("page_min_customers_deploy", k.PageMinCustomersDeploy)
	atLeast1("recovery_buckets", k.RecoveryBuckets)
	if k.SustainWithoutDeploy.D() < 0 {
		ck.errf("correlate.sustain_without_deploy", "must not be negative, got %s", short(k.SustainWithoutDeploy.D()))
	}
	if k.MinRatio < 1 {
		ck.errf("correlate.min_ratio", "must be at least 1, got %g", k.MinRatio)
	}
	for _, svc := range slices.Sorted(maps.Keys(k.Products)) {
		for i, name := range k.Products[svc] {
			if strings.TrimSpace(name) == "" {
				ck.errf(fmt.Sprintf("correlate.products.%s[%d]", svc, i), "must not be empty")
			}
		}
	}
	if d := k.DetectionSpan.D(); d < 0 || (d > 0 && d < time.Hour) {
		ck.errf("correlate.detection_span", "must be 0 (the whole window) or at least 1h, got %s", short(d))
	}
	switch k.Seasonality {
	case "", SeasonalityOff, SeasonalityDaily, SeasonalityWeekly:
	default:
		ck.errf("correlate.seasonality", "%q: use off, daily or weekly", k.Seasonality)
	}
	if k.Seasonality == SeasonalityDaily || k.Seasonality == SeasonalityWeekly {
		atLeast1("seasonal_periods", k.SeasonalPeriods)
	}
	if k.TicketBucket.D() < k.Bucket.D() {
		ck.errf("correlate.ticket_bucket", "%s must not be shorter than correlate.bucket (%s)", short(k.TicketBucket.D()), short(k.Bucket.D()))
	}
}

// httpURL checks that v is an absolute http(s) URL without credentials;
// the message never repeats a password that was in it.
func (ck *checker) httpURL(path, v string) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		ck.errf(path, "not a URL")
	case u.User != nil:
		ck.errf(path, "must not contain credentials: they would end up in logs")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		ck.errf(path, "%q is not an http:// or https:// URL", v)
	}
}

func (ck *checker) elasticsearch(c *Config) {
	es := c.Sources.Elasticsearch
	const p = "sources.elasticsearch"
	if len(es.URLs) == 0 && !ck.loc.has(p) {
		return // not configured: offline use
	}
	if len(es.URLs) == 0 {
		ck.errf(p+".urls", "at least one URL is required")
	}
	for i, u := range es.URLs {
		ck.httpURL(fmt.Sprintf("%s.urls[%d]", p, i), u)
	}
	if strings.TrimSpace(es.Index) == "" {
		ck.errf(p+".index", "must not be empty")
	}
	switch {
	case es.APIKey.IsSet() && (es.Username != "" || es.Password.IsSet()):
		ck.errf(p+".api_key", "set either api_key or username and password, not both")
	case es.Username != "" && !es.Password.IsSet():
		ck.errf(p+".password", "required with username")
	case es.Username == "" && es.Password.IsSet():
		ck.errf(p+".username", "required with password")
	}
	if es.Timeout.D() <= 0 {
		ck.errf(p+".timeout", "must be positive, got %s", short(es.Timeout.D()))
	}
	if es.Lag.D() < 0 {
		ck.errf(p+".lag", "must not be negative, got %s", short(es.Lag.D()))
	}
}

func (ck *checker) evaluation(c *Config) {
	e, bucket := c.Evaluation, c.Correlate.Bucket.D()
	iv := e.Interval.D()
	switch {
	case iv < bucket:
		ck.errf("evaluation.interval", "%s is shorter than correlate.bucket (%s)", short(iv), short(bucket))
	case bucket > 0 && iv%bucket != 0:
		ck.errf("evaluation.interval", "%s is not a multiple of correlate.bucket (%s)", short(iv), short(bucket))
	}
	if e.Lookback.D() <= iv {
		ck.errf("evaluation.lookback", "%s must be longer than evaluation.interval (%s)", short(e.Lookback.D()), short(iv))
	} else if lag := c.Sources.Elasticsearch.Lag.D(); lag >= e.Lookback.D() {
		ck.errf("sources.elasticsearch.lag", "%s leaves nothing of evaluation.lookback (%s) to read", short(lag), short(e.Lookback.D()))
	}
	if e.ReopenCooldown.D() < 0 {
		ck.errf("evaluation.reopen_cooldown", "must not be negative, got %s", short(e.ReopenCooldown.D()))
	}
	// A recheck as long as the window is wasteful, not wrong: every
	// evaluation then reads its whole window, as without the cache.
	if r := e.Recheck.D(); r < 0 {
		ck.errf("evaluation.recheck", "must not be negative, got %s", short(r))
	}
	if e.BlindAfter < 1 {
		ck.errf("evaluation.blind_after", "must be at least 1, got %d", e.BlindAfter)
	}
	// Seasonality compares with earlier periods the window must hold, or
	// it silently does nothing.
	k := c.Correlate
	period := map[string]time.Duration{SeasonalityDaily: 24 * time.Hour, SeasonalityWeekly: 7 * 24 * time.Hour}[k.Seasonality]
	if period > 0 && k.SeasonalPeriods >= 1 {
		if need := time.Duration(k.SeasonalPeriods)*period + k.DetectionSpan.D(); e.Lookback.D() < need {
			ck.errf("evaluation.lookback", "%s is too short for correlate.seasonality %s over %d periods: it needs at least %s (the periods and correlate.detection_span)",
				short(e.Lookback.D()), k.Seasonality, k.SeasonalPeriods, short(need))
		}
	}
}

// services checks the list and returns the defined names with their
// index, nil when every service is watched.
func (ck *checker) services(list []Service) map[string]int {
	if len(list) == 0 {
		return nil
	}
	names := map[string]int{}
	for i, s := range list {
		p := fmt.Sprintf("services[%d].name", i)
		if strings.TrimSpace(s.Name) == "" {
			ck.errf(p, "must not be empty")
			continue
		}
		if _, dup := names[s.Name]; dup {
			ck.errf(p, "duplicate service %q", s.Name)
			continue
		}
		names[s.Name] = i
	}
	return names
}

// defined reports a reference to a service missing from the services list,
// the way Alertmanager reports an undefined receiver.
func (ck *checker) defined(path string, services map[string]int, names []string) {
	for i, n := range names {
		p := fmt.Sprintf("%s[%d]", path, i)
		if strings.TrimSpace(n) == "" {
			ck.errf(p, "must not be empty")
		} else if _, ok := services[n]; services != nil && !ok {
			ck.errf(p, "undefined service %q: not in services", n)
		}
	}
}

func (ck *checker) thresholds(c *Config) {
	q, fdr := c.Thresholds.MaxQ, c.Correlate.FDR
	// Left out, max_q is fdr, whose own problem is reported already.
	fdrOK := fdr > 0 && fdr < 1
	switch {
	case q <= 0 || q >= 1:
		if fdrOK || ck.loc.has("thresholds.max_q") {
			ck.errf("thresholds.max_q", "must be between 0 and 1 exclusive, got %g", q)
		}
	case fdrOK && q > fdr:
		ck.errf("thresholds.max_q", "%g is above correlate.fdr (%g): findings never have a q-value above fdr, so it would have no effect", q, fdr)
	}
}

func (ck *checker) routes(c *Config, services map[string]int, compile bool) {
	names := map[string]bool{}
	catchAll := -1
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case strings.TrimSpace(r.Name) == "":
			ck.errf(p+".name", "must not be empty: decisions record the route's name")
		case names[r.Name]:
			ck.errf(p+".name", "duplicate route %q", r.Name)
		}
		names[r.Name] = true
		if catchAll >= 0 {
			ck.warnf(p, "never used: routes[%d] before it matches every finding", catchAll)
		} else if len(r.When) == 0 && len(r.Services) == 0 && r.Customers == nil {
			catchAll = i
		}
		loc, err := r.location()
		if err != nil {
			ck.errf(p+".time_zone", "%v", err)
		}
		ck.defined(p+".services", services, r.Services)
		for j := range r.When {
			w, ps := r.When[j].compile()
			ck.sub(fmt.Sprintf("%s.when[%d]", p, j), ps)
			if compile && len(ps) == 0 {
				r.When[j].compiled = w
			}
		}
		switch {
		case r.Action == "":
			ck.errf(p+".action", "required: page, slack or record")
		case !r.Action.valid():
			ck.errf(p+".action", "%q is not one of page, slack, record", r.Action)
		}
		if r.Action == ActionPage && !r.RoutingKey.IsSet() {
			ck.routingKeys(c, p+".action", r.Services)
		}
		ck.routeImpact(p, r)
		if compile && err == nil {
			r.loc = loc
		}
	}
	switch {
	case c.DefaultAction == "":
		ck.errf("default_action", "required: page, slack or record")
	case !c.DefaultAction.valid():
		ck.errf("default_action", "%q is not one of page, slack, record", c.DefaultAction)
	case c.DefaultAction == ActionPage && catchAll < 0:
		ck.routingKeys(c, "default_action", nil)
	}
}

// routingKeys checks that every service a page can be for has a routing
// key: pagerduty.routing_key, or its own. only lists the services the
// route is limited to; nil means any service.
func (ck *checker) routingKeys(c *Config, path string, only []string) {
	if c.PagerDuty.RoutingKey.IsSet() || c.PagerDuty.Deliver == DeliverLog {
		return
	}
	if len(only) == 0 {
		if len(c.Services) == 0 {
			ck.errf(path, "page needs a PagerDuty routing key: set pagerduty.routing_key")
			return
		}
		only = make([]string, len(c.Services))
		for i, s := range c.Services {
			only[i] = s.Name
		}
	}
	var missing []string
	for _, name := range only {
		if c.RoutingKeySet(name) || !c.Watches(name) {
			continue // an undefined service is reported as such
		}
		missing = append(missing, strconv.Quote(name))
	}
	if len(missing) > 0 {
		ck.errf(path, "page needs a PagerDuty routing key for %s: set pagerduty.routing_key or the service's routing_key", strings.Join(missing, ", "))
	}
}

// RoutingKeySet reports whether a routing key is configured for service,
// resolved or not; a page for it can be sent.
func (c *Config) RoutingKeySet(service string) bool {
	for _, s := range c.Services {
		if s.Name == service && s.RoutingKey.IsSet() {
			return true
		}
	}
	return c.PagerDuty.RoutingKey.IsSet()
}

func (ck *checker) silences(c *Config, services map[string]int, compile bool) {
	for i := range c.Silences {
		s := &c.Silences[i]
		p := fmt.Sprintf("silences[%d]", i)
		if s.Matchers.Service == "" && s.Matchers.Signature == "" {
			ck.errf(p+".matchers", "at least one of service or signature is required: a silence of everything would hide every page")
		}
		svcRE, err1 := compileMatcher(s.Matchers.Service)
		if err1 != nil {
			ck.errf(p+".matchers.service", "%v", err1)
		} else if _, ok := services[s.Matchers.Service]; svcRE == nil && s.Matchers.Service != "" && services != nil && !ok {
			ck.errf(p+".matchers.service", "undefined service %q: not in services", s.Matchers.Service)
		}
		sigRE, err2 := compileMatcher(s.Matchers.Signature)
		if err2 != nil {
			ck.errf(p+".matchers.signature", "%v", err2)
		}
		if s.StartsAt.IsZero() {
			ck.errf(p+".starts_at", "required")
		}
		if s.EndsAt.IsZero() {
			ck.errf(p+".ends_at", "required: a silence without an end is forgotten")
		}
		switch {
		case s.StartsAt.IsZero() || s.EndsAt.IsZero():
		case s.EndsAt.Before(s.StartsAt.Time):
			ck.errf(p, "ends_at is before starts_at")
		case s.EndsAt.Equal(s.StartsAt.Time):
			ck.errf(p, "ends_at equals starts_at: the silence would never be active")
		}
		if compile && err1 == nil && err2 == nil {
			s.service, s.signature = svcRE, sigRE
		}
	}
}

func (ck *checker) maintenance(c *Config, services map[string]int, compile bool) {
	for i := range c.Maintenance {
		m := &c.Maintenance[i]
		p := fmt.Sprintf("maintenance[%d]", i)
		ck.defined(p+".services", services, m.Services)
		if strings.TrimSpace(m.Schedule) == "" {
			ck.errf(p+".schedule", "required, a cron expression such as \"CRON_TZ=Europe/Berlin 0 2 * * sun\"")
		} else if s, err := parseSchedule(m.Schedule); err != nil {
			ck.errf(p+".schedule", "%v", err)
		} else if compile {
			m.schedule = s
		}
		if m.Duration.D() <= 0 {
			ck.errf(p+".duration", "must be positive, got %s", short(m.Duration.D()))
		}
	}
}

func (ck *checker) review(c *Config) {
	r := c.Review
	if r.AlertErrorShare <= 0 || r.AlertErrorShare > 1 {
		ck.errf("review.alert_error_share", "must be above 0 and at most 1 (0.05 is 5%%), got %g", r.AlertErrorShare)
	}
	if r.AlertFor.D() < c.Correlate.Bucket.D() {
		ck.errf("review.alert_for", "%s must not be shorter than correlate.bucket (%s)", short(r.AlertFor.D()), short(c.Correlate.Bucket.D()))
	}
}

// shifts checks the follow-the-sun rota: unique names, a channel the bot
// can post to, and a start that fires.
func (ck *checker) shifts(c *Config, compile bool) {
	names := map[string]bool{}
	for i := range c.Shifts {
		sh := &c.Shifts[i]
		p := fmt.Sprintf("shifts[%d]", i)
		switch name := strings.TrimSpace(sh.Name); {
		case name == "":
			ck.errf(p+".name", "required, e.g. APAC, EMEA or AMER")
		case names[name]:
			ck.errf(p+".name", "duplicate shift %q", name)
		default:
			names[name] = true
		}
		if strings.TrimSpace(sh.Channel) == "" {
			ck.errf(p+".channel", "required: the Slack channel id (C0123…) or name the handover is posted to")
		}
		if strings.TrimSpace(sh.Start) == "" {
			ck.errf(p+".start", "required, a cron expression such as \"CRON_TZ=Europe/Dublin 0 8 * * *\"")
			continue
		}
		s, err := parseSchedule(sh.Start)
		if err != nil {
			ck.errf(p+".start", "%v", err)
			continue
		}
		// cron's Next gives the zero time for a date that never comes
		// (30 February): such a shift would never take over.
		if s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
			ck.errf(p+".start", "%q never fires", sh.Start)
			continue
		}
		if compile {
			sh.schedule = s
		}
	}
	if len(c.Shifts) > 0 && !c.Slack.BotToken.IsSet() {
		ck.errf("slack.bot_token", "required to post handovers to the shifts' channels")
	}
}

func (ck *checker) pagerduty(c *Config) {
	pd := c.PagerDuty
	ck.httpURL("pagerduty.url", pd.URL)
	ck.changeEventKeys(c)
	switch pd.Deliver {
	case "", DeliverAPI:
		if pd.LogFile != "" {
			ck.errf("pagerduty.log_file", "is only used with deliver: log")
		}
	case DeliverLog:
		return // nothing reaches PagerDuty: no key is needed
	default:
		ck.errf("pagerduty.deliver", "%q is not one of api, log", pd.Deliver)
	}
	if pd.ChangeEvents && !pd.RoutingKey.IsSet() {
		for _, s := range c.Services {
			if s.RoutingKey.IsSet() {
				return
			}
		}
		ck.errf("pagerduty.change_events", "needs pagerduty.routing_key or a service's routing_key")
	}
}

// changeEventKeys checks every key change events can be sent with.
func (ck *checker) changeEventKeys(c *Config) {
	if !c.PagerDuty.ChangeEvents {
		return
	}
	ck.changeEventKey("pagerduty.routing_key", c.PagerDuty.RoutingKey)
	for i, s := range c.Services {
		ck.changeEventKey(fmt.Sprintf("services[%d].routing_key", i), s.RoutingKey)
	}
}

// changeEventKey refuses a ruleset (or Event Orchestration) routing key
// for change events. Those keys start with "R"; PagerDuty accepts alerts on
// them but rejects every change event with a 400, so with change_events on
// every deploy would become a dead letter. Only a resolved key can be
// checked: an {env: …} or {file: …} reference is checked once resolved,
// when the daemon loads it or by rules check --resolve-secrets.
func (ck *checker) changeEventKey(path string, key Secret) {
	if strings.HasPrefix(strings.TrimSpace(key.Reveal()), "R") {
		ck.errf(path, "is a ruleset key (starts with R), and PagerDuty rejects change events sent to ruleset keys: "+
			"use a service's Events API v2 integration key, or set pagerduty.change_events: false")
	}
}

// listenAddr checks a host:port to listen on.
func (ck *checker) listenAddr(path, v string) {
	if _, port, err := net.SplitHostPort(v); err != nil {
		ck.errf(path, "%q is not host:port (\":8080\" listens on every interface)", v)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ck.errf(path, "%q: port must be a number from 0 to 65535", v)
	}
}

func (ck *checker) intake(c *Config) {
	in := c.Intake
	if in.Listen != "" {
		ck.listenAddr("intake.listen", in.Listen)
	}
	if in.PublicURL != "" {
		ck.httpURL("intake.public_url", in.PublicURL)
		if !in.LinkSecret.IsSet() {
			ck.warnf("intake.link_secret", "unset: pages and Slack posts carry no chart image (intake.public_url serves charts only through signed links)")
		}
	}
	if in.LinkTTL.D() <= 0 {
		ck.errf("intake.link_ttl", "must be positive, got %s", short(in.LinkTTL.D()))
	}
	if ck.loc.has("intake") && !in.Token.IsSet() {
		ck.errf("intake.token", "required: without it anyone who reaches the port can post deploys and tickets")
	}
}

// ui checks the private listener. Its pages show customer ids, log lines,
// ticket subjects and deploy authors: a listener with no login is refused
// unless the operator says, with ui.insecure, that nobody else can reach
// it.
func (ck *checker) ui(c *Config) {
	u := c.UI
	oidc := u.OIDC.Issuer != "" || u.OIDC.ClientID != "" || u.OIDC.ClientSecret.IsSet()
	proxy := len(u.TrustedProxy.Addresses) > 0
	if u.Listen == "" {
		if u.ExternalURL != "" || oidc || proxy || u.Insecure {
			ck.errf("ui.listen", "required when the ui section configures anything: it is where incidents, the API and /metrics are served")
		}
		return
	}
	ck.listenAddr("ui.listen", u.Listen)
	if _, port, _ := net.SplitHostPort(u.Listen); u.Listen == c.Intake.Listen && port != "0" { // :0 is a fresh port each
		ck.errf("ui.listen", "%q is intake.listen too: the private pages need a listener of their own", u.Listen)
	}
	if u.ExternalURL != "" {
		ck.httpURL("ui.external_url", u.ExternalURL)
	}
	if !oidc && !proxy && !u.Insecure {
		ck.errf("ui", "ui.listen %q serves incidents, the JSON API and /metrics to anyone: configure ui.oidc or ui.trusted_proxy, or set ui.insecure: true for a listener nobody else can reach", u.Listen)
	}
	if u.Insecure && (oidc || proxy) {
		ck.errf("ui.insecure", "contradicts the login configured in ui.oidc or ui.trusted_proxy: remove one")
	}
	if oidc {
		o := u.OIDC
		if o.Issuer == "" {
			ck.errf("ui.oidc.issuer", "required, such as https://accounts.google.com")
		} else {
			ck.httpURL("ui.oidc.issuer", o.Issuer)
		}
		if strings.TrimSpace(o.ClientID) == "" {
			ck.errf("ui.oidc.client_id", "required")
		}
		if !o.ClientSecret.IsSet() {
			ck.errf("ui.oidc.client_secret", "required")
		}
		if !o.SessionSecret.IsSet() {
			ck.errf("ui.oidc.session_secret", "required: it signs the login cookie (32 bytes or more)")
		}
		if o.SessionTTL.D() <= 0 {
			ck.errf("ui.oidc.session_ttl", "must be positive, got %s", short(o.SessionTTL.D()))
		}
		if u.ExternalURL == "" {
			ck.errf("ui.external_url", "required with ui.oidc: the provider redirects to ui.external_url + /auth/callback")
		}
	}
	for i, a := range u.TrustedProxy.Addresses {
		if _, err := ParseAddress(a); err != nil {
			ck.errf(fmt.Sprintf("ui.trusted_proxy.addresses[%d]", i), "%v", err)
		}
	}
	if proxy && strings.TrimSpace(u.TrustedProxy.UserHeader) == "" {
		ck.errf("ui.trusted_proxy.user_header", "must not be empty")
	}
	for i, d := range u.AllowedDomains {
		if d = strings.TrimSpace(d); d == "" || strings.Contains(d, "@") {
			ck.errf(fmt.Sprintf("ui.allowed_domains[%d]", i), "%q is not a domain such as example.com", u.AllowedDomains[i])
		}
	}
	if !oidc && !proxy && (len(u.AllowedDomains) > 0 || len(u.AllowedGroups) > 0) {
		ck.errf("ui.allowed_domains", "needs ui.oidc or ui.trusted_proxy: without a login there is nobody to check")
	}
}

// ParseAddress reads an IP address or a CIDR block as a prefix; a single
// address is a prefix of its full length.
func ParseAddress(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (ck *checker) zendesk(c *Config) {
	z := c.Zendesk
	if z.URL == "" && !ck.loc.has("zendesk") {
		return
	}
	if z.URL == "" {
		ck.errf("zendesk.url", "required, such as https://acme.zendesk.com")
	} else {
		ck.httpURL("zendesk.url", z.URL)
	}
	if strings.TrimSpace(z.Email) == "" {
		ck.errf("zendesk.email", "required: the API token belongs to this user")
	}
	if !z.Token.IsSet() {
		ck.errf("zendesk.token", "required")
	}
	if z.PollInterval.D() <= 0 {
		ck.errf("zendesk.poll_interval", "must be positive, got %s", short(z.PollInterval.D()))
	}
}

func (ck *checker) kibana(c *Config) {
	k := c.Kibana
	if k.URL == "" {
		return
	}
	ck.httpURL("kibana.url", k.URL)
	if strings.TrimSpace(k.DataView) == "" {
		ck.errf("kibana.data_view", "must not be empty when kibana.url is set")
	}
}

func (ck *checker) slack(c *Config) {
	sl := c.Slack
	if sl.APIURL != "" {
		ck.httpURL("slack.api_url", sl.APIURL)
	}
	if sl.Channel != "" && !sl.BotToken.IsSet() {
		ck.errf("slack.bot_token", "required to post to slack.channel %q", sl.Channel)
	}
	if sl.AppToken.IsSet() && !sl.BotToken.IsSet() {
		ck.errf("slack.bot_token", "Socket Mode (slack.app_token) needs the bot token too")
	}
	if ck.loc.has("slack") && !sl.SigningSecret.IsSet() && !sl.AppToken.IsSet() {
		ck.errf("slack.signing_secret", "required for /correlate over HTTP (or set slack.app_token for Socket Mode)")
	}
}

// retention refuses settings that would prune what culprit still reads:
// deploys and tickets inside an evaluation's window, delivery ids inside
// PagerDuty's 48h redelivery window, incidents that could still reopen.
func (ck *checker) retention(c *Config) {
	r := c.Retention
	if r.Interval.D() <= 0 {
		ck.errf("retention.interval", "must be positive, got %s", short(r.Interval.D()))
	}
	need := c.Evaluation.Lookback.D() + c.Correlate.AttributionWindow.D()
	for _, k := range []struct {
		key string
		v   time.Duration
		min time.Duration
		why string
	}{
		{"deliveries", r.Deliveries.D(), 48 * time.Hour, "PagerDuty's redelivery window"},
		{"outbox", r.Outbox.D(), 0, ""},
		{"incidents", r.Incidents.D(), c.Evaluation.ReopenCooldown.D(), "evaluation.reopen_cooldown"},
		{"deploys", r.Deploys.D(), need, "evaluation.lookback + correlate.attribution_window, which evaluations read"},
		{"tickets", r.Tickets.D(), need, "evaluation.lookback + correlate.attribution_window, which evaluations read"},
	} {
		switch {
		case k.v < 0:
			ck.errf("retention."+k.key, "must not be negative (0 keeps for ever), got %s", short(k.v))
		case k.v > 0 && k.v < k.min:
			ck.errf("retention."+k.key, "%s is shorter than %s (%s); 0 keeps for ever", short(k.v), short(k.min), k.why)
		}
	}
}

func (ck *checker) heartbeat(c *Config) {
	h := c.Heartbeat
	if h.URL == "" {
		return
	}
	ck.httpURL("heartbeat.url", h.URL)
	if h.Method != "GET" && h.Method != "POST" {
		ck.errf("heartbeat.method", "%q: use GET or POST", h.Method)
	}
	if h.Timeout.D() <= 0 {
		ck.errf("heartbeat.timeout", "must be positive, got %s", short(h.Timeout.D()))
	}
}

func (ck *checker) inlineSecrets(c *Config) {
	eachSecret(reflect.ValueOf(c), "", func(path string, s *Secret) {
		if s.inline {
			ck.warnf(path, "secret is written in the file: prefer {env: NAME} or {file: PATH}")
		}
	})
}

// short writes a duration the way it is written in the file: 1m, not 1m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
