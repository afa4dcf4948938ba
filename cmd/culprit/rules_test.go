package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files from the current output")

// runWithEnv runs the CLI with the given environment variables.
func runWithEnv(env map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// `culprit rules check` on the rules package's testdata: every problem of
// every file, with its line, and the example config passing.
func TestRulesCheckGolden(t *testing.T) {
	t.Chdir("../../rules")
	files := []string{"example.yml", "testdata/routes.yml", "testdata/silences.yml", "testdata/structure.yml", "testdata/cross.yml", "testdata/secrets.yml", "testdata/uiopen.yml"}
	stdout, _, err := runWithEnv(nil, append([]string{"rules", "check"}, files...)...)
	if err == nil || err.Error() != "rules check: 5 of 7 files invalid" {
		t.Errorf("error %v", err)
	}
	if code := exitCode(err, &bytes.Buffer{}); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	const golden = "testdata/check.golden"
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/culprit -run TestRulesCheckGolden -update)", err)
	}
	if stdout != string(want) {
		t.Errorf("stdout:\n%s\nwant (rules/%s):\n%s", stdout, golden, want)
	}
}

func TestRulesCheck(t *testing.T) {
	t.Chdir("../../rules")
	const goodSecrets = "pagerduty:\n  routing_key: {env: PD_KEY}\nroutes: [{name: all, action: page}]\nintake:\n  token: {file: token}\n"
	tests := []struct {
		name     string
		env      map[string]string
		args     func(t *testing.T) []string
		stdout   []string // exact lines; nil means do not check
		contains []string // substrings of stdout
		err      string   // the error; "" means success
		code     int
	}{
		{
			name:   "valid",
			args:   func(*testing.T) []string { return []string{"example.yml"} },
			stdout: []string{"example.yml: ok"},
		},
		{
			name: "secrets are checked for shape only by default",
			args: func(*testing.T) []string { return []string{"testdata/secrets.yml"} },
			stdout: []string{
				"testdata/secrets.yml: warning: line 14: intake.token: secret is written in the file: prefer {env: NAME} or {file: PATH}",
				"testdata/secrets.yml: ok",
			},
		},
		{
			name: "--resolve-secrets reports unset variables and unreadable files",
			args: func(*testing.T) []string { return []string{"--resolve-secrets", "testdata/secrets.yml"} },
			stdout: []string{
				"testdata/secrets.yml: line 9: pagerduty.routing_key: environment variable CULPRIT_PD_ROUTING_KEY is not set",
				"testdata/secrets.yml: warning: line 14: intake.token: secret is written in the file: prefer {env: NAME} or {file: PATH}",
				"testdata/secrets.yml: line 15: intake.github_secret: read secret file: open testdata/missing_github_secret: no such file or directory",
			},
			err:  "rules check: 1 of 1 files invalid",
			code: 1,
		},
		{
			name: "--resolve-secrets after the file, everything resolving",
			env:  map[string]string{"PD_KEY": "pd-key-value"},
			args: func(t *testing.T) []string {
				dir := t.TempDir()
				if err := os.WriteFile(dir+"/token", []byte("intake-token-value\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dir+"/c.yml", []byte(goodSecrets), 0o600); err != nil {
					t.Fatal(err)
				}
				return []string{dir + "/c.yml", "--resolve-secrets"}
			},
			contains: []string{"/c.yml: ok"},
		},
		{
			name: "secret values are never printed",
			env:  map[string]string{"PD_KEY": "pd-key-value"},
			args: func(t *testing.T) []string {
				return []string{"--resolve-secrets", write(t, "c.yml", "pagerduty:\n  routing_key: inline-key-value\n  url: nope\nintake:\n  token: [inline-token-value]\n")}
			},
			contains: []string{
				`c.yml: warning: line 2: pagerduty.routing_key: secret is written in the file`,
				`c.yml: line 3: pagerduty.url: "nope" is not an http:// or https:// URL`,
				`c.yml: line 5: intake.token: a secret is {env: NAME}, {file: PATH} or a string`,
			},
			err:  "rules check: 1 of 1 files invalid",
			code: 1,
		},
		{
			name:   "unreadable file",
			args:   func(*testing.T) []string { return []string{"example.yml", "nothere.yml"} },
			stdout: []string{"example.yml: ok", "nothere.yml: read config: open nothere.yml: no such file or directory"},
			err:    "rules check: 1 of 2 files invalid",
			code:   1,
		},
		{
			name: "no file",
			args: func(*testing.T) []string { return nil },
			err:  "rules check: no file given",
			code: 2,
		},
		{
			name: "unknown flag",
			args: func(*testing.T) []string { return []string{"--resolve", "example.yml"} },
			err:  "flag provided but not defined: -resolve",
			code: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runWithEnv(tc.env, append([]string{"rules", "check"}, tc.args(t)...)...)
			if got := errString(err); got != tc.err {
				t.Errorf("error %q, want %q", got, tc.err)
			}
			if code := exitCode(err, &bytes.Buffer{}); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if tc.stdout != nil && stdout != strings.Join(tc.stdout, "\n")+"\n" {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, strings.Join(tc.stdout, "\n"))
			}
			for _, c := range tc.contains {
				if !strings.Contains(stdout, c) {
					t.Errorf("stdout does not contain %q:\n%s", c, stdout)
				}
			}
			for _, secret := range []string{"pd-key-value", "intake-token-value", "inline-key-value", "inline-token-value"} {
				if strings.Contains(stdout, secret) || strings.Contains(errString(err), secret) {
					t.Errorf("output shows the secret %q", secret)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRulesUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no subcommand", []string{"rules"}, 2},
		{"unknown subcommand", []string{"rules", "lint"}, 2},
		{"help", []string{"rules", "--help"}, 0},
		{"check help", []string{"rules", "check", "-h"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runWithEnv(nil, tc.args...)
			if code := exitCode(err, &bytes.Buffer{}); code != tc.code {
				t.Errorf("exit code %d (%v), want %d", code, err, tc.code)
			}
			if !strings.Contains(stdout+stderr, "culprit rules check [--resolve-secrets] FILE...") {
				t.Errorf("no usage line:\n%s%s", stdout, stderr)
			}
			var ue usageError
			if tc.code == 2 && !errors.As(err, &ue) {
				t.Errorf("error %v is not a usage error", err)
			}
		})
	}
}

// The docker compose configuration must pass without its secrets set.
func TestRulesCheckCompose(t *testing.T) {
	t.Chdir("../../rules")
	stdout, _, err := runWithEnv(nil, "rules", "check", "compose.yml")
	if err != nil || !strings.HasSuffix(stdout, "compose.yml: ok\n") {
		t.Errorf("err %v, stdout:\n%s", err, stdout)
	}
}
