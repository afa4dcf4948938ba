// Package rules holds culprit's configuration: its schema, defaults and
// validation. It imports nothing from the rest of the module so that every
// package can take its own section without an import cycle.
package rules

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file. Fields and Correlate drive the
// correlator; the other sections configure the daemon and are optional for
// offline use.
type Config struct {
	Fields     Fields     `yaml:"fields"`
	Correlate  Correlate  `yaml:"correlate"`
	Sources    Sources    `yaml:"sources"`
	Evaluation Evaluation `yaml:"evaluation"`
	// Services are the watched services; empty, every service found.
	Services   []Service  `yaml:"services"`
	Thresholds Thresholds `yaml:"thresholds"`
	// Routes decide each finding's action: the first that matches wins.
	Routes []Route `yaml:"routes"`
	// DefaultAction applies when no route matches.
	DefaultAction Action        `yaml:"default_action"`
	PagerDuty     PagerDuty     `yaml:"pagerduty"`
	Silences      []Silence     `yaml:"silences"`
	Maintenance   []Maintenance `yaml:"maintenance"`
	Intake        Intake        `yaml:"intake"`
	Zendesk       Zendesk       `yaml:"zendesk"`
	// Customers says where names, tiers and VIPs come from.
	Customers Customers `yaml:"customers"`
	// Priority computes each finding's support priority, P1 to P4.
	Priority Priority `yaml:"priority"`
	Kibana   Kibana   `yaml:"kibana"`
	Slack    Slack    `yaml:"slack"`
	UI       UI       `yaml:"ui"`
	Store    Store    `yaml:"store"`

	// HTTP limits the listeners: timeouts, headers, connections and
	// per-route concurrency.
	HTTP      HTTP      `yaml:"http"`
	Retention Retention `yaml:"retention"`
	Heartbeat Heartbeat `yaml:"heartbeat"`
	// Shifts are the support shifts that follow the sun; at each one's
	// start the daemon posts a handover digest to its channel.
	Shifts []Shift `yaml:"shifts"`
	// Review tunes the timeline export's review sections.
	Review Review `yaml:"review"`
}

// Review is the threshold alert the timeline's "Why alerting missed it"
// compares the incident with: the share of requests that failed, over a
// trailing window, fleet-wide and per service, as the usual error-rate
// alert computes it (errors / requests over the last AlertFor).
type Review struct {
	// AlertErrorShare is the alert's threshold, 0.05 for 5%.
	AlertErrorShare float64 `yaml:"alert_error_share"`
	// AlertFor is the trailing window the share is computed over.
	AlertFor Duration `yaml:"alert_for"`
}

// Fields maps culprit's roles onto the log documents' field names. Dotted
// names match both nested objects and literal dotted keys.
type Fields struct {
	Time     string `yaml:"time"`
	Service  string `yaml:"service"`
	Version  string `yaml:"version"`
	Host     string `yaml:"host"`
	Customer string `yaml:"customer"`
	Site     string `yaml:"site"`
	Path     string `yaml:"path"`
	Provider string `yaml:"provider"`
	Region   string `yaml:"region"`
	Status   string `yaml:"status"`
	Outcome  string `yaml:"outcome"`
	// Message lists the fields tried in order for the error text.
	Message []string `yaml:"message"`
}

// Correlate tunes detection. The defaults are what the benchmarks measure;
// change them with `culprit backtest` in hand, not by feel.
type Correlate struct {
	// Bucket is the width of one series bucket.
	Bucket Duration `yaml:"bucket"`
	// AttributionWindow is how long before an onset a deploy may start and
	// still be suspected.
	AttributionWindow Duration `yaml:"attribution_window"`
	// FDR is the false discovery rate controlled across every series tested
	// in one run (Benjamini–Hochberg).
	FDR float64 `yaml:"fdr"`
	// MinErrors is the fewest errors after onset that can make a finding.
	MinErrors int `yaml:"min_errors"`
	// MinRatio is the smallest after/before rate ratio that is a change
	// worth reporting, however significant.
	MinRatio float64 `yaml:"min_ratio"`
	// NewErrorMinEntities is how many distinct customers or hosts a new
	// signature must reach before it is a new error class.
	NewErrorMinEntities int `yaml:"new_error_min_entities"`
	// PageMinCustomers is the fewest affected customers for severity page,
	// and so for paging. YAML also accepts it as thresholds.min_customers.
	PageMinCustomers int `yaml:"page_min_customers"`
	// PageMinCustomersDeploy replaces PageMinCustomers, when lower, for a
	// brand-new error class that a deploy is suspected of causing, and for
	// an increase that a deploy is tied to by a strong line of evidence or
	// two. The customer count is there to tell the infrastructure's
	// problems from a few customers' own; a class that did not exist
	// before our rollout, or that fails more on the new version than on
	// the old side by side, is already ours, and while the rollout goes on
	// every minute spent waiting for more customers lets it reach more
	// hosts. It stays above one customer, whose breakage is support's by
	// day (see grade).
	PageMinCustomersDeploy int `yaml:"page_min_customers_deploy"`
	// RecoveryBuckets is how many buckets at baseline mean recovered, and
	// so resolve the daemon's incident. YAML also accepts it as
	// evaluation.resolve_after.
	RecoveryBuckets int `yaml:"recovery_buckets"`
	// TicketBucket is the bucket width for ticket volume.
	TicketBucket Duration `yaml:"ticket_bucket"`
	// SustainWithoutDeploy is how long an increase in an existing error
	// class with no deploy implicated must stay elevated, without fading,
	// before it is graded page. Background classes burst and decay on
	// their own (a flapping upstream, a scanner tripping the WAF, a
	// deadlock storm); in the labelled corpus every false page was such a
	// burst. The default outlasts the simulator's longest burst (15
	// minutes) by one 5-minute block, because a burst's tail on a few
	// errors a minute cannot be told from a step until it has ended; set
	// it from your own fleet's bursts with culprit backtest. New error
	// classes and increases tied to a deploy by corroborated evidence (a
	// strong line, or two lines) are never held: they are what culprit
	// exists to page fast. One line of evidence alone does not lift the
	// hold: chance gives one to a harmless deploy every few days. 0 turns
	// the hold off.
	SustainWithoutDeploy Duration `yaml:"sustain_without_deploy"`
	// Products names, per service, the products customers know it by
	// ("functions", "CDN"): tickets speak of products, logs of services,
	// and a ticket naming the failing service's product is a cue that it
	// is about the finding.
	Products map[string][]string `yaml:"products"`
	// DetectionSpan bounds the buckets change detection segments at full
	// resolution: with a longer lookback (a week, to keep a weekly
	// baseline) only the newest DetectionSpan is searched for onsets, and
	// the buckets before it are summarised into the baseline (its rate and
	// its block-to-block dispersion). Segmentation costs about the square
	// of what it searches, so without the bound a week of one-minute
	// buckets costs minutes a run. The default, 12h, is the longest window
	// the daemon reads at the default lookback (6h, stretched to 12h while
	// an incident is open), so that lookback judges exactly as before. 0
	// searches the whole window.
	DetectionSpan Duration `yaml:"detection_span"`
	// Seasonality, daily or weekly, also judges an episode against the
	// same hours of previous days or weeks (the lower median of their
	// error rates over SeasonalPeriods of them, scaled to the episode's
	// traffic): a class that follows the day or the week (a nightly
	// batch's timeouts, weekend scanners tripping the WAF) then does not
	// read as an increase every night or weekend. It only ever makes the
	// test stricter. The window must hold the earlier periods: daily needs
	// a lookback of at least a day more than detection_span, weekly a
	// week more. Default off.
	Seasonality string `yaml:"seasonality"`
	// SeasonalPeriods is how many previous days or weeks are compared.
	SeasonalPeriods int `yaml:"seasonal_periods"`
}

// Seasonality values.
const (
	SeasonalityOff    = "off"
	SeasonalityDaily  = "daily"
	SeasonalityWeekly = "weekly"
)

// Duration is a time.Duration written as "90s", "5m" or "1h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: duration must be a string like \"5m\"", n.Line)}}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		// A TypeError lets the decoder go on and report every bad key.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q: use forms like 90s, 5m or 1h", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default is the configuration used when no file is given. It maps the
// Elastic Common Schema fields that most HTTP logs already carry, and gives
// the daemon's settings the values of rules/example.yml. Places (URLs,
// credentials, the store) have no default.
func Default() Config {
	return Config{
		Fields: Fields{
			Time:     "@timestamp",
			Service:  "service.name",
			Version:  "service.version",
			Host:     "host.name",
			Customer: "organization.id",
			Site:     "url.domain",
			Path:     "url.path",
			Provider: "cloud.provider",
			Region:   "cloud.region",
			Status:   "http.response.status_code",
			Outcome:  "event.outcome",
			Message:  []string{"error.message", "message"},
		},
		Correlate: Correlate{
			Bucket:                 Duration(time.Minute),
			AttributionWindow:      Duration(60 * time.Minute),
			FDR:                    0.01,
			MinErrors:              5,
			MinRatio:               2,
			NewErrorMinEntities:    3,
			PageMinCustomers:       5,
			PageMinCustomersDeploy: 3,
			RecoveryBuckets:        10,
			TicketBucket:           Duration(15 * time.Minute),
			SustainWithoutDeploy:   Duration(20 * time.Minute),
			DetectionSpan:          Duration(12 * time.Hour),
			Seasonality:            SeasonalityOff,
			SeasonalPeriods:        3,
		},
		Sources: Sources{Elasticsearch: Elasticsearch{
			Index:   "logs-*",
			Timeout: Duration(30 * time.Second),
			Lag:     Duration(30 * time.Second),
		}},
		Evaluation: Evaluation{
			Interval:       Duration(time.Minute),
			Lookback:       Duration(6 * time.Hour),
			ReopenCooldown: Duration(30 * time.Minute),
			BlindAfter:     3,
			Incremental:    true,
			Recheck:        Duration(time.Minute),
		},
		Thresholds:    Thresholds{MaxQ: 0.01},
		DefaultAction: ActionRecord,
		PagerDuty:     PagerDuty{URL: "https://events.pagerduty.com"},
		Slack:         Slack{APIURL: "https://slack.com/api/"},
		Intake:        Intake{Listen: ":8080", LinkTTL: Duration(7 * 24 * time.Hour)},
		UI: UI{
			OIDC: OIDC{SessionTTL: Duration(12 * time.Hour), Scopes: []string{"email", "profile"}, GroupsClaim: "groups"},
			TrustedProxy: TrustedProxy{UserHeader: "X-Forwarded-User", EmailHeader: "X-Forwarded-Email",
				GroupsHeader: "X-Forwarded-Groups"},
		},
		Zendesk:  Zendesk{PollInterval: Duration(time.Minute)},
		Priority: DefaultPriority(),
		Customers: Customers{Zendesk: ZendeskOrganizations{MatchBy: "external_id", TierField: "tier",
			VIPTags: []string{"vip"}, OwnerField: "owner"}},
		Kibana: Kibana{DataView: "culprit-logs"},
		Retention: Retention{
			Interval:   Duration(time.Hour),
			Deliveries: Duration(7 * 24 * time.Hour),
			Outbox:     Duration(30 * 24 * time.Hour),
			Incidents:  Duration(90 * 24 * time.Hour),
			Deploys:    Duration(30 * 24 * time.Hour),
			Tickets:    Duration(30 * 24 * time.Hour),
		},
		Heartbeat: Heartbeat{Method: "GET", Timeout: Duration(10 * time.Second)},
		Review:    Review{AlertErrorShare: 0.05, AlertFor: Duration(5 * time.Minute)},
	}
}

// Load reads and validates a configuration file. Every problem is reported
// at once, as a *ConfigError naming the file and each problem's line.
// Secrets are checked for shape but not resolved: Reveal gives "" for
// {env: …} and {file: …}. Whatever needs the credentials uses LoadWith.
func Load(path string) (Config, error) {
	return LoadWith(path, nil)
}

// LoadWith is Load that also resolves secrets: {env: NAME} through getenv
// (a variable set to "" counts as unset) and {file: PATH} by reading the
// file, relative to the configuration's directory, without its trailing
// newline. A secret that cannot be resolved is a problem naming its key and
// line, never its value. A nil getenv resolves nothing, as Load.
func LoadWith(path string, getenv func(string) string) (Config, error) {
	c, _, err := Check(path, getenv)
	return c, err
}

// Check is LoadWith that also returns warnings — valid but unwise
// settings, such as a secret written in the file — for culprit rules
// check. The error, when not nil, is a *ConfigError unless the file could
// not be read.
func Check(path string, getenv func(string) string) (Config, []Problem, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("read config: %w", err)
	}
	c, warnings, problems := parse(b, filepath.Dir(path), getenv)
	if err := asError(path, problems); err != nil {
		return Config{}, warnings, err
	}
	return c, warnings, nil
}

// Parse decodes YAML strictly over the defaults: unknown keys are errors,
// and keys left out keep their default values. Secrets are not resolved,
// as with Load; the error is a *ConfigError.
func Parse(b []byte) (Config, error) {
	c, _, problems := parse(b, "", nil)
	if err := asError("", problems); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parse is the whole of loading: walk the node tree for structure and
// lines, decode, apply aliases, validate, and resolve secrets when getenv
// is given. dir anchors relative paths; "" leaves them as they are.
func parse(b []byte, dir string, getenv func(string) string) (c Config, warnings, problems []Problem) {
	c = Default()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return Config{}, nil, yamlProblems(err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return c, nil, nil // an empty file is the defaults
	}
	doc := root.Content[0]
	w := newWalker()
	w.walk(doc, reflect.TypeFor[Config](), "")
	loc := &locator{lines: w.lines}
	structural := w.problems
	if err := doc.Decode(&c); err != nil && len(structural) == 0 {
		// The walk should have caught anything Decode refuses; if not,
		// say what Decode said rather than nothing.
		structural = yamlProblems(err)
	}
	problems = append(problems, structural...)
	problems = append(problems, applyAliases(&c, w.aliased, loc)...)
	if !loc.has("thresholds.max_q") {
		c.Thresholds.MaxQ = c.Correlate.FDR
	}
	if dir != "" {
		c.anchorPaths(dir)
	}

	semantic, warnings := validate(&c, loc, true)
	renameAliased(semantic, w.aliased, loc)
	// A value that could not be decoded kept its default, which the
	// semantic checks would then blame for something else: report only
	// the decoding problem at that key.
	bad := map[string]bool{}
	for _, p := range structural {
		bad[p.Path] = true
	}
	for _, p := range semantic {
		if !coveredBy(p.Path, bad) {
			problems = append(problems, p)
		}
	}
	if getenv != nil {
		eachSecret(reflect.ValueOf(&c), "", func(path string, s *Secret) {
			if err := s.resolve(getenv, dir); err != nil {
				problems = append(problems, Problem{Line: loc.line(path), Path: path, Msg: err.Error()})
			}
		})
		// Checks that need a secret's value run again on the resolved
		// ones; inline values were checked above and are not repeated.
		resolved := &checker{loc: loc}
		resolved.changeEventKeys(&c)
		for _, p := range resolved.problems {
			if !slices.Contains(problems, p) {
				problems = append(problems, p)
			}
		}
		problems = append(problems, signingKeys(&c, loc)...)
	}
	sortProblems(problems)
	sortProblems(warnings)
	return c, warnings, problems
}

// coveredBy reports whether path or one of its ancestors is in bad.
func coveredBy(path string, bad map[string]bool) bool {
	for p := path; p != ""; p = parentPath(p) {
		if bad[p] {
			return true
		}
	}
	return false
}

// applyAliases copies alias keys into their canonical field. Both names
// set to different values is a contradiction, not an override.
func applyAliases(c *Config, found map[string]*yaml.Node, loc *locator) []Problem {
	var ps []Problem
	for _, path := range slices.Sorted(maps.Keys(found)) {
		a := aliases[path]
		var v int
		if found[path].Decode(&v) != nil {
			continue // reported by the walk
		}
		field := a.field(c)
		if loc.has(a.canonical) && *field != v {
			ps = append(ps, Problem{Line: loc.line(path), Path: path,
				Msg: fmt.Sprintf("%d contradicts %s (%d): they are one setting, set only one", v, a.canonical, *field)})
			continue
		}
		*field = v
	}
	return ps
}

// renameAliased makes a problem with a setting that the file gave under
// its alias name that alias, so that the message matches the file.
func renameAliased(ps []Problem, found map[string]*yaml.Node, loc *locator) {
	for i := range ps {
		for alias := range found {
			if a := aliases[alias]; ps[i].Path == a.canonical && !loc.has(a.canonical) {
				ps[i].Path, ps[i].Line = alias, loc.line(alias)
			}
		}
	}
}

// anchorPaths makes file paths relative to the configuration's directory,
// so that a config and its CA file can move together.
func (c *Config) anchorPaths(dir string) {
	if p := c.Sources.Elasticsearch.CAFile; p != "" && !filepath.IsAbs(p) {
		c.Sources.Elasticsearch.CAFile = filepath.Join(dir, p)
	}
	if p := c.Customers.File; p != "" && !filepath.IsAbs(p) {
		c.Customers.File = filepath.Join(dir, p)
	}
}

// Validate reports every invalid value and broken cross-reference at once,
// as a *ConfigError; it checks a Config built in code the way Load checks a
// file, without line numbers.
func (c Config) Validate() error {
	problems, _ := validate(&c, nil, false)
	return asError("", problems)
}

// minSigningKey is the shortest HMAC key culprit signs links and sessions
// with: shorter than SHA-256's output only weakens it.
const minSigningKey = 32

// signingKeys checks the length of the resolved keys that sign links and
// sessions, so that rules check --resolve-secrets says what serve would.
func signingKeys(c *Config, loc *locator) []Problem {
	var ps []Problem
	for _, k := range []struct {
		path string
		s    Secret
	}{{"intake.link_secret", c.Intake.LinkSecret}, {"ui.oidc.session_secret", c.UI.OIDC.SessionSecret}} {
		if v := k.s.Reveal(); v != "" && len(v) < minSigningKey {
			ps = append(ps, Problem{Line: loc.line(k.path), Path: k.path,
				Msg: fmt.Sprintf("is %d bytes: use %d or more (openssl rand -base64 32)", len(v), minSigningKey)})
		}
	}
	return ps
}
