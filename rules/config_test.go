package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// The documented example must be a valid configuration with no warnings,
// and where it says "default" it must show the defaults, so the README
// never lies about them.
func TestExample(t *testing.T) {
	c, warnings, err := Check("example.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	d := Default()
	// Products have no default: the example shows the shape with names.
	exampleCorrelate := c.Correlate
	exampleCorrelate.Products = nil
	same := []struct {
		name      string
		got, want any
	}{
		{"fields", c.Fields, d.Fields},
		{"correlate", exampleCorrelate, d.Correlate},
		{"evaluation", c.Evaluation, d.Evaluation},
		{"thresholds", c.Thresholds, d.Thresholds},
		{"default_action", c.DefaultAction, d.DefaultAction},
		{"pagerduty.url", c.PagerDuty.URL, d.PagerDuty.URL},
		{"intake.listen", c.Intake.Listen, d.Intake.Listen},
		{"zendesk.poll_interval", c.Zendesk.PollInterval, d.Zendesk.PollInterval},
		{"kibana.data_view", c.Kibana.DataView, d.Kibana.DataView},
		{"retention", c.Retention, d.Retention},
		{"heartbeat.method", c.Heartbeat.Method, d.Heartbeat.Method},
		{"heartbeat.timeout", c.Heartbeat.Timeout, d.Heartbeat.Timeout},
		{"review", c.Review, d.Review},
		{"sources.elasticsearch.index", c.Sources.Elasticsearch.Index, d.Sources.Elasticsearch.Index},
		{"sources.elasticsearch.timeout", c.Sources.Elasticsearch.Timeout, d.Sources.Elasticsearch.Timeout},
		{"sources.elasticsearch.lag", c.Sources.Elasticsearch.Lag, d.Sources.Elasticsearch.Lag},
		{"priority", c.Priority, d.Priority},
		{"customers", c.Customers, d.Customers},
	}
	for _, s := range same {
		if !reflect.DeepEqual(s.got, s.want) {
			t.Errorf("example.yml %s = %+v, default %+v", s.name, s.got, s.want)
		}
	}
	if c.Sources.Elasticsearch.URLs == nil || c.Kibana.URL == "" || c.Zendesk.URL == "" || c.Store.Dir == "" ||
		len(c.Routes) == 0 || len(c.Silences) == 0 || len(c.Maintenance) == 0 || len(c.Services) == 0 ||
		len(c.Correlate.Products["edge"]) == 0 {
		t.Error("example.yml leaves a section out")
	}
}

// The docker compose configuration is written by hand elsewhere; it must
// stay valid without its environment variables set.
func TestComposeConfig(t *testing.T) {
	if _, _, err := Check("compose.yml", nil); err != nil {
		t.Error(err)
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // the problems, in order
	}{
		{"unknown key", "fields:\n  tme: x\n", []string{"line 2: fields.tme: unknown key"}},
		{"a ruleset key is fine without change events", "pagerduty:\n  routing_key: R02ABCDEFGHIJKLMNOPQRSTUVWXYZ01\n", nil},
		{"change events to a ruleset key", "services:\n  - name: api\n    routing_key: R02ABCDEFGHIJKLMNOPQRSTUVWXYZ01\npagerduty:\n  routing_key: e93facc04764012d7bfb002500d5d1a6\n  change_events: true\n", []string{
			"line 3: services[0].routing_key: is a ruleset key (starts with R), and PagerDuty rejects change events sent to ruleset keys: use a service's Events API v2 integration key, or set pagerduty.change_events: false",
		}},
		{"unknown top-level key", "correlation:\n  fdr: 0.1\n", []string{"line 1: correlation: unknown key"}},
		{"bad duration", "correlate:\n  bucket: 5\n", []string{`line 2: correlate.bucket: invalid duration "5": use forms like 90s, 5m or 1h`}},
		{"every error at once", "fields:\n  tme: x\ncorrelate:\n  bucket: five\n  nope: 1\n", []string{
			"line 2: fields.tme: unknown key",
			`line 4: correlate.bucket: invalid duration "five": use forms like 90s, 5m or 1h`,
			"line 5: correlate.nope: unknown key",
		}},
		{"out of range", "correlate:\n  fdr: 2\n  min_ratio: 0.5\n", []string{
			"line 2: correlate.fdr: must be between 0 and 1 exclusive, got 2",
			"line 3: correlate.min_ratio: must be at least 1, got 0.5",
		}},
		{"detection span too short to segment", "correlate:\n  detection_span: 30m\n", []string{
			"line 2: correlate.detection_span: must be 0 (the whole window) or at least 1h, got 30m",
		}},
		{"seasonality", "correlate:\n  seasonality: hourly\n", []string{
			`line 2: correlate.seasonality: "hourly": use off, daily or weekly`,
		}},
		{"lookback too short for seasonality", "correlate:\n  seasonality: daily\nevaluation:\n  lookback: 24h\n", []string{
			"line 4: evaluation.lookback: 24h is too short for correlate.seasonality daily over 3 periods: it needs at least 84h (the periods and correlate.detection_span)",
		}},
		{"seasonal periods", "correlate:\n  seasonality: weekly\n  seasonal_periods: 0\n", []string{
			"line 3: correlate.seasonal_periods: must be at least 1, got 0",
		}},
		{"empty field", "fields:\n  time: \"\"\n", []string{"line 2: fields.time: must not be empty"}},
		{"not yaml", "fields: [\n", []string{"line 1: did not find expected node content"}},
		{"tab indentation", "fields:\n\ttime: x\n", []string{"line 2: found character that cannot start any token"}},
		{"wrong type", "correlate:\n  min_errors: lots\n", []string{`line 2: correlate.min_errors: "lots" is not a whole number`}},
		{"flow mapping keeps each key's path", "evaluation: {interval: 1m, lookback: 6hours, blind_after: x}\n", []string{
			`line 1: evaluation.lookback: invalid duration "6hours": use forms like 90s, 5m or 1h`,
			`line 1: evaluation.blind_after: "x" is not a whole number`,
		}},
		{"duplicate key", "store:\n  dir: /a\n  dir: /b\n", []string{"line 3: store.dir: duplicate key (first at line 2)"}},
		{"list expected", "services: api\n", []string{"line 1: services: must be a list"}},
		{"products per service", "correlate:\n  products:\n    edge: functions\n    api: [\"\"]\n", []string{
			"line 3: correlate.products.edge: must be a list",
			"line 4: correlate.products.api[0]: must not be empty",
		}},
		{"products not a mapping", "correlate:\n  products: [functions]\n", []string{
			"line 2: correlate.products: must be a mapping of names",
		}},
		{"mapping expected", "pagerduty: [x]\n", []string{"line 1: pagerduty: must be a mapping of keys"}},
		{"undecodable value is reported once", "correlate:\n  bucket: never\nevaluation:\n  interval: 1m\n", []string{
			`line 2: correlate.bucket: invalid duration "never": use forms like 90s, 5m or 1h`,
		}},
		{"retention shorter than what culprit reads", "retention:\n  deliveries: 24h\n  deploys: 2h\n  tickets: -1h\n  interval: 0s\n", []string{
			"line 2: retention.deliveries: 24h is shorter than 48h (PagerDuty's redelivery window); 0 keeps for ever",
			"line 3: retention.deploys: 2h is shorter than 7h (evaluation.lookback + correlate.attribution_window, which evaluations read); 0 keeps for ever",
			"line 4: retention.tickets: must not be negative (0 keeps for ever), got -1h",
			"line 5: retention.interval: must be positive, got 0s",
		}},
		{"retention 0 keeps for ever", "retention:\n  deliveries: 0s\n  incidents: 0s\n", nil},
		{"heartbeat", "heartbeat:\n  url: hc-ping.com/abc\n  method: PUT\n  timeout: 0s\n", []string{
			`line 2: heartbeat.url: "hc-ping.com/abc" is not an http:// or https:// URL`,
			`line 3: heartbeat.method: "PUT": use GET or POST`,
			"line 4: heartbeat.timeout: must be positive, got 0s",
		}},
		{"interval shorter than bucket", "correlate: {bucket: 5m}\nevaluation: {interval: 1m}\n", []string{
			"line 2: evaluation.interval: 1m is shorter than correlate.bucket (5m)",
		}},
		{"interval not a multiple of bucket", "evaluation:\n  interval: 90s\n", []string{
			"line 2: evaluation.interval: 1m30s is not a multiple of correlate.bucket (1m)",
		}},
		{"lookback not longer than interval", "evaluation:\n  interval: 5m\n  lookback: 5m\n", []string{
			"line 3: evaluation.lookback: 5m must be longer than evaluation.interval (5m)",
		}},
		{"lag eats the lookback", "sources:\n  elasticsearch:\n    urls: [http://es:9200]\n    lag: 1h\nevaluation:\n  lookback: 1h\n", []string{
			"line 4: sources.elasticsearch.lag: 1h leaves nothing of evaluation.lookback (1h) to read",
		}},
		{"elasticsearch section needs urls", "sources:\n  elasticsearch:\n    index: logs-*\n", []string{
			"line 2: sources.elasticsearch.urls: at least one URL is required",
		}},
		{"credentials in a URL are refused without being repeated", "sources:\n  elasticsearch:\n    urls: [\"https://u:hunter2@es:9200\"]\n", []string{
			"line 3: sources.elasticsearch.urls[0]: must not contain credentials: they would end up in logs",
		}},
		{"api key and password", "sources:\n  elasticsearch:\n    urls: [http://es:9200]\n    username: u\n    password: {env: P}\n    api_key: {env: K}\n", []string{
			"line 6: sources.elasticsearch.api_key: set either api_key or username and password, not both",
		}},
		{"duplicate service", "services:\n  - name: api\n  - name: edge\n  - name: api\n", []string{
			`line 4: services[2].name: duplicate service "api"`,
		}},
		{"page without a routing key", "routes:\n  - name: all\n    action: page\n", []string{
			"line 3: routes[0].action: page needs a PagerDuty routing key: set pagerduty.routing_key",
		}},
		{"page with a key on every service", "services:\n  - {name: a, routing_key: {env: A}}\n  - {name: b, routing_key: {env: B}}\nroutes:\n  - {name: all, action: page}\n", nil},
		{"page with a key on some services", "services:\n  - {name: a, routing_key: {env: A}}\n  - {name: b}\nroutes:\n  - {name: all, action: page}\n", []string{
			`line 5: routes[0].action: page needs a PagerDuty routing key for "b": set pagerduty.routing_key or the service's routing_key`,
		}},
		{"page only for services that have a key", "services:\n  - {name: a, routing_key: {env: A}}\n  - {name: b}\nroutes:\n  - {name: a-only, services: [a], action: page}\n", nil},
		{"default action page after a catch-all route needs no key", "routes:\n  - {name: all, action: slack}\ndefault_action: page\n", nil},
		{"default action page", "default_action: page\n", []string{
			"line 1: default_action: page needs a PagerDuty routing key: set pagerduty.routing_key",
		}},
		{"undefined service in a route", "services: [{name: api}]\npagerduty: {routing_key: {env: K}}\nroutes:\n  - {name: r, services: [api, bill], action: page}\n", []string{
			`line 4: routes[0].services[1]: undefined service "bill": not in services`,
		}},
		{"any service when the list is empty", "pagerduty: {routing_key: {env: K}}\nroutes:\n  - {name: r, services: [api, bill], action: page}\n", nil},
		{"max_q above fdr", "thresholds:\n  max_q: 0.05\n", []string{
			"line 2: thresholds.max_q: 0.05 is above correlate.fdr (0.01): findings never have a q-value above fdr, so it would have no effect",
		}},
		{"intake needs a token", "intake:\n  listen: \":9090\"\n", []string{
			"line 1: intake.token: required: without it anyone who reaches the port can post deploys and tickets",
		}},
		{"zendesk needs its credentials", "zendesk:\n  url: https://acme.zendesk.com\n", []string{
			"line 1: zendesk.email: required: the API token belongs to this user",
			"line 1: zendesk.token: required",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if got := problemLines(err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if err != nil && strings.Contains(err.Error(), "rules.") {
				t.Errorf("error %q leaks Go type names", err)
			}
		})
	}
}

func problemLines(err error) []string {
	if err == nil {
		return nil
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		return []string{"not a *ConfigError: " + err.Error()}
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, p.Error())
	}
	return out
}

// Each testdata file holds several mistakes; all of them, and only them,
// must be reported, with their lines, in file order.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, warnings, err := Check(f, nil)
			var b strings.Builder
			for _, l := range problemLines(err) {
				b.WriteString(l + "\n")
			}
			for _, w := range warnings {
				b.WriteString("warning: " + w.Error() + "\n")
			}
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./rules -run TestGolden -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("got:\n%s\nwant (%s):\n%s", b.String(), golden, want)
			}
		})
	}
}

func TestAliases(t *testing.T) {
	tests := []struct {
		name                  string
		yaml                  string
		minCustomers, resolve int
		maxQ                  float64
		want                  []string
	}{
		{"defaults", "", 5, 10, 0.01, nil},
		{"daemon names", "thresholds: {min_customers: 7}\nevaluation: {resolve_after: 4}\n", 7, 4, 0.01, nil},
		{"correlator names", "correlate: {page_min_customers: 8, recovery_buckets: 3}\n", 8, 3, 0.01, nil},
		{"both names agreeing", "correlate: {page_min_customers: 6}\nthresholds: {min_customers: 6}\n", 6, 10, 0.01, nil},
		{"both names disagreeing", "correlate: {page_min_customers: 6}\nthresholds: {min_customers: 2}\nevaluation:\n  resolve_after: 4\ncorrelate2: x\n", 0, 0, 0, []string{
			"line 2: thresholds.min_customers: 2 contradicts correlate.page_min_customers (6): they are one setting, set only one",
			"line 5: correlate2: unknown key",
		}},
		{"bad value under the alias is named by the alias", "evaluation:\n  resolve_after: 0\n", 0, 0, 0, []string{
			"line 2: evaluation.resolve_after: must be at least 1, got 0",
		}},
		{"max_q follows fdr when left out", "correlate: {fdr: 0.05}\n", 5, 10, 0.05, nil},
		{"max_q stricter than fdr", "thresholds: {max_q: 0.001}\n", 5, 10, 0.001, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if got := problemLines(err); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if err != nil {
				return
			}
			if c.Correlate.PageMinCustomers != tc.minCustomers || c.Correlate.RecoveryBuckets != tc.resolve || c.Thresholds.MaxQ != tc.maxQ {
				t.Errorf("page_min_customers %d, recovery_buckets %d, max_q %g; want %d, %d, %g",
					c.Correlate.PageMinCustomers, c.Correlate.RecoveryBuckets, c.Thresholds.MaxQ, tc.minCustomers, tc.resolve, tc.maxQ)
			}
		})
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	c, err := Parse([]byte("correlate:\n  bucket: 30s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Correlate.Bucket.D() != 30*time.Second {
		t.Errorf("bucket = %s", c.Correlate.Bucket.D())
	}
	if c.Fields.Service != "service.name" || c.Correlate.FDR != 0.01 || c.Evaluation.Lookback.D() != 6*time.Hour {
		t.Error("keys left out lost their defaults")
	}
	for name, src := range map[string]string{"empty": "", "comments only": "# nothing\n", "null sections": "fields:\nroutes:\n"} {
		c, err := Parse([]byte(src))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !reflect.DeepEqual(c, Default()) {
			t.Errorf("%s: differs from Default()", name)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(p, []byte("nope: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || err.Error() != "config "+p+": line 1: nope: unknown key" {
		t.Errorf("error %v does not name %s", err, p)
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.yml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("error %v does not name the missing file", err)
	}
}

func TestConfigErrorFormat(t *testing.T) {
	e := &ConfigError{File: "c.yml", Problems: []Problem{{Line: 2, Path: "a.b", Msg: "bad"}, {Path: "c", Msg: "worse"}}}
	want := "config c.yml: 2 problems:\n  line 2: a.b: bad\n  c: worse"
	if e.Error() != want {
		t.Errorf("got %q, want %q", e.Error(), want)
	}
	var p Problem
	if !errors.As(e, &p) || p.Path != "a.b" {
		t.Errorf("errors.As gives %+v", p)
	}
}

// Validate checks a Config built in code like a file, without lines.
func TestValidateInCode(t *testing.T) {
	c := Default()
	c.Routes = []Route{{Name: "r", TimeZone: "Mars/Olympus", Action: "wake"}}
	c.Evaluation.Interval = Duration(90 * time.Second)
	got := problemLines(c.Validate())
	want := []string{
		"evaluation.interval: 1m30s is not a multiple of correlate.bucket (1m)",
		`routes[0].time_zone: unknown time zone "Mars/Olympus"`,
		`routes[0].action: "wake" is not one of page, slack, record`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Validate must not store anything in the caller's slices.
	if c.Routes[0].loc != nil {
		t.Error("Validate compiled into the caller's config")
	}
}
