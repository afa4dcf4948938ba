package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecretShapes(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		source  string // Source() after Parse
		problem string // the only problem, if any
	}{
		{"env", "pagerduty: {routing_key: {env: PD_KEY}}", "env PD_KEY", ""},
		{"file", "pagerduty: {routing_key: {file: /run/secrets/pd}}", "file /run/secrets/pd", ""},
		{"inline", "pagerduty: {routing_key: abc123}", "inline", ""},
		{"unset", "pagerduty: {url: https://events.pagerduty.com}", "", ""},
		{"empty string is unset", `pagerduty: {routing_key: ""}`, "", ""},
		{"both env and file", "pagerduty: {routing_key: {env: A, file: /b}}", "",
			"line 1: pagerduty.routing_key: a secret is exactly one of {env: NAME} or {file: PATH}"},
		{"unknown source", "pagerduty: {routing_key: {vault: kv/pd}}", "",
			`line 1: pagerduty.routing_key: unknown key "vault": a secret is {env: NAME}, {file: PATH} or a string`},
		{"bad variable name", "pagerduty: {routing_key: {env: 1PD}}", "",
			`line 1: pagerduty.routing_key: env: "1PD" is not an environment variable name`},
		{"empty variable name", "pagerduty: {routing_key: {env: \"\"}}", "",
			"line 1: pagerduty.routing_key: env: must not be empty"},
		{"list", "pagerduty: {routing_key: [hunter2]}", "",
			"line 1: pagerduty.routing_key: a secret is {env: NAME}, {file: PATH} or a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			got := problemLines(err)
			if tc.problem == "" {
				if got != nil {
					t.Fatalf("problems: %v", got)
				}
			} else if len(got) != 1 || got[0] != tc.problem {
				t.Fatalf("problems %q, want %q", got, tc.problem)
			}
			if err == nil && c.PagerDuty.RoutingKey.Source() != tc.source {
				t.Errorf("source %q, want %q", c.PagerDuty.RoutingKey.Source(), tc.source)
			}
			if strings.Contains(fmt.Sprint(err), "hunter2") {
				t.Errorf("error repeats the secret: %v", err)
			}
		})
	}
}

// writeConfig writes a config file and its companions into a fresh
// directory and returns the config's path.
func writeConfig(t *testing.T, config string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "culprit.yml")
	if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretResolution(t *testing.T) {
	const config = `sources:
  elasticsearch:
    urls: [http://es:9200]
    api_key: {file: es_key}
pagerduty:
  routing_key: {env: PD_KEY}
services:
  - name: api
    routing_key: {file: /nonexistent/culprit/api_key}
  - name: edge
    routing_key: {env: EDGE_KEY}
intake:
  token: {file: token}
`
	env := map[string]string{"PD_KEY": "pd-value", "EDGE_KEY": ""}
	getenv := func(k string) string { return env[k] }
	p := writeConfig(t, config, map[string]string{"es_key": "es-value\r\n", "token": "\n"})

	_, err := LoadWith(p, getenv)
	want := []string{
		"line 9: services[0].routing_key: read secret file: open /nonexistent/culprit/api_key: no such file or directory",
		"line 11: services[1].routing_key: environment variable EDGE_KEY is not set",
		"line 13: intake.token: secret file " + filepath.Join(filepath.Dir(p), "token") + " is empty",
	}
	if got := problemLines(err); !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(err.Error(), p) {
		t.Errorf("error does not name the file: %v", err)
	}

	// Fixed, everything resolves; a relative file is read next to the config.
	env["EDGE_KEY"] = "edge-value"
	p = writeConfig(t, strings.Replace(config, "/nonexistent/culprit/api_key", "api_key", 1),
		map[string]string{"es_key": "es-value\r\n", "token": "tok-value\n", "api_key": "api-value"})
	c, err := LoadWith(p, getenv)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{
		"es-value":   c.Sources.Elasticsearch.APIKey.Reveal(),
		"pd-value":   c.PagerDuty.RoutingKey.Reveal(),
		"api-value":  c.RoutingKey("api"),
		"edge-value": c.RoutingKey("edge"),
		"tok-value":  c.Intake.Token.Reveal(),
	} {
		if got != name {
			t.Errorf("resolved %q, want %q", got, name)
		}
	}

	// Load checks the shape only: nothing is read, nothing is revealed.
	env["PD_KEY"] = ""
	c, err = Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.PagerDuty.RoutingKey.Reveal() != "" || !c.PagerDuty.RoutingKey.IsSet() {
		t.Errorf("Load resolved the routing key, or lost it")
	}
}

func TestRoutingKey(t *testing.T) {
	c := Default()
	c.Services = []Service{{Name: "api", RoutingKey: NewSecret("api-key")}, {Name: "edge"}}
	tests := []struct{ service, global, want string }{
		{"api", "global-key", "api-key"},
		{"edge", "global-key", "global-key"},
		{"unlisted", "global-key", "global-key"},
		{"edge", "", ""},
		{"api", "", "api-key"},
	}
	for _, tc := range tests {
		t.Run(tc.service+"/"+tc.global, func(t *testing.T) {
			c.PagerDuty.RoutingKey = NewSecret(tc.global)
			if got := c.RoutingKey(tc.service); got != tc.want {
				t.Errorf("RoutingKey(%q) = %q, want %q", tc.service, got, tc.want)
			}
		})
	}
}

// No way of printing a configuration may show a secret.
func TestSecretsAreRedacted(t *testing.T) {
	const value = "s3cr3t-routing-key"
	c, err := Parse([]byte("pagerduty: {routing_key: " + value + "}\nservices: [{name: api, routing_key: " + value + "}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.PagerDuty.RoutingKey.Reveal() != value {
		t.Fatalf("Reveal = %q", c.PagerDuty.RoutingKey.Reveal())
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "key", c.PagerDuty.RoutingKey, "config", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "key", c.PagerDuty.RoutingKey, "service", c.Services[0])
	jsonOut, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	yamlOut, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":      fmt.Sprintf("%v", c),
		"%+v":     fmt.Sprintf("%+v", c),
		"%#v":     fmt.Sprintf("%#v", c),
		"%s":      fmt.Sprintf("key=%s", c.PagerDuty.RoutingKey),
		"%q":      fmt.Sprintf("%q", c.PagerDuty.RoutingKey),
		"%v ptr":  fmt.Sprintf("%v", &c.PagerDuty),
		"json":    string(jsonOut),
		"yaml":    string(yamlOut),
		"slog":    logs.String(),
		"String":  c.PagerDuty.RoutingKey.String(),
		"problem": fmt.Sprint(Config{PagerDuty: PagerDuty{RoutingKey: NewSecret(value)}}.Validate()),
	}
	for name, out := range outputs {
		if strings.Contains(out, value) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if name != "problem" && !strings.Contains(out, "redacted") {
			t.Errorf("%s does not show it redacted: %s", name, out)
		}
	}
	if s := (Secret{}).String(); s != "" {
		t.Errorf("unset secret prints %q", s)
	}
}

// A ruleset key given as a reference is only known once resolved: the
// daemon (LoadWith) must still refuse it for change events.
func TestChangeEventRulesetKeyFromEnv(t *testing.T) {
	const config = `pagerduty:
  routing_key: {env: PD_KEY}
  change_events: true
`
	getenv := func(string) string { return "R02ABCDEFGHIJKLMNOPQRSTUVWXYZ01" }
	p := writeConfig(t, config, nil)
	if _, err := Load(p); err != nil {
		t.Fatalf("Load, which resolves nothing, refused: %v", err)
	}
	_, err := LoadWith(p, getenv)
	want := []string{"line 2: pagerduty.routing_key: is a ruleset key (starts with R), and PagerDuty rejects change events sent to ruleset keys: " +
		"use a service's Events API v2 integration key, or set pagerduty.change_events: false"}
	if got := problemLines(err); !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "R02ABCDEF") {
		t.Errorf("the error shows the key: %v", err)
	}
}

// TestShortSigningKeys: a link or session key shorter than 32 bytes is
// refused once resolved, naming the key and never its value.
func TestShortSigningKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yml")
	y := "intake:\n  token: {env: T}\n  link_secret: {env: L}\nui:\n  listen: \":8081\"\n  external_url: https://ui.example.com\n" +
		"  oidc:\n    issuer: https://id.example.com\n    client_id: c\n    client_secret: {env: C}\n    session_secret: {env: S}\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"T": "t", "L": "short-link-key", "C": "c", "S": "0123456789abcdef0123456789abcdef"}
	_, err := LoadWith(p, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "line 3: intake.link_secret: is 14 bytes: use 32 or more") ||
		strings.Contains(err.Error(), "short-link-key") || strings.Contains(err.Error(), "session_secret") {
		t.Errorf("error %v, want intake.link_secret named (and only it) without its value", err)
	}
	env["L"] = "0123456789abcdef0123456789abcdef"
	if _, err := LoadWith(p, func(k string) string { return env[k] }); err != nil {
		t.Errorf("32-byte keys: %v", err)
	}
}
