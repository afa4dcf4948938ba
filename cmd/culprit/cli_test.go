package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodLine = `{"@timestamp":"2026-11-20T16:00:00Z","service":{"name":"api"},"http":{"response":{"status_code":200}}}`

func TestCorrelateBadInput(t *testing.T) {
	tests := []struct {
		name     string
		args     func(t *testing.T) []string
		wantErr  []string // substrings of the error; nil means success
		wantLog  []string // substrings of stderr
		wantCode int
	}{
		{
			name:     "missing --logs",
			args:     func(t *testing.T) []string { return nil },
			wantErr:  []string{"exactly one of --logs FILE or --es URL"},
			wantCode: 2,
		},
		{
			name:     "unreadable file",
			args:     func(t *testing.T) []string { return []string{"--logs", "/nonexistent/logs.ndjson"} },
			wantErr:  []string{"/nonexistent/logs.ndjson"},
			wantCode: 1,
		},
		{
			name: "empty file",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "empty.ndjson", "")}
			},
			wantErr:  []string{"empty.ndjson", "empty"},
			wantCode: 1,
		},
		{
			name: "only malformed lines",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "bad.ndjson", "not json\n[1,2]\n{\"@timestamp\":\"yesterday\"}\n")}
			},
			wantErr:  []string{"bad.ndjson", "no usable line"},
			wantCode: 1,
		},
		{
			name: "malformed lines among good ones are skipped and reported",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "mixed.ndjson", goodLine+"\nnot json\n"+goodLine+"\n{\"service\":{\"name\":\"api\"}}\n{\"@timestamp\":\"2026-11-20 16:00:00\"}\n")}
			},
			wantLog: []string{"mixed.ndjson:2:", "mixed.ndjson:4:", "mixed.ndjson:5:", "skipped 3 of 5 lines"},
		},
		{
			name: "unknown config key",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "l.ndjson", goodLine+"\n"), "--config", write(t, "c.yml", "correlate:\n  fdrr: 0.1\n")}
			},
			wantErr:  []string{"c.yml", "line 2", "fdrr"},
			wantCode: 1,
		},
		{
			name: "wrong --from format",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "l.ndjson", goodLine+"\n"), "--from", "2026-11-20 16:00"}
			},
			wantErr:  []string{"--from", "RFC 3339"},
			wantCode: 2,
		},
		{
			name: "bad format",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "l.ndjson", goodLine+"\n"), "--format", "xml"}
			},
			wantErr:  []string{"--format", "xml"},
			wantCode: 2,
		},
		{
			name: "deploy without id",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "l.ndjson", goodLine+"\n"), "--deploys", write(t, "d.json", `[{"service":"api","started_at":"2026-11-20T16:00:00Z"}]`)}
			},
			wantErr:  []string{"d.json", "id"},
			wantCode: 1,
		},
		{
			name: "tickets not JSON",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "l.ndjson", goodLine+"\n"), "--tickets", write(t, "t.json", "{tickets: nope")}
			},
			wantErr:  []string{"t.json"},
			wantCode: 1,
		},
		{
			name: "stray argument",
			args: func(t *testing.T) []string {
				return []string{"--logs", write(t, "l.ndjson", goodLine+"\n"), "extra"}
			},
			wantErr:  []string{"unexpected argument \"extra\""},
			wantCode: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runCLI(append([]string{"correlate"}, tc.args(t)...)...)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				if code := exitCode(err, &bytes.Buffer{}); code != tc.wantCode {
					t.Errorf("exit code %d, want %d", code, tc.wantCode)
				}
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestCorrelateQuietFileExitsZero(t *testing.T) {
	out, _, err := runCLI("correlate", "--format", "json", "--logs", write(t, "l.ndjson", goodLine+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if f, ok := res["findings"].([]any); !ok || len(f) != 0 {
		t.Errorf("findings = %#v, want []", res["findings"])
	}
}

func TestChangepointsCLI(t *testing.T) {
	var b strings.Builder
	b.WriteString("time,value\n")
	for i := range 200 {
		v := "1"
		if i >= 100 {
			v = "10"
		}
		if i == 50 {
			v = ""
		}
		b.WriteString("t," + v + "\n")
	}
	out, _, err := runCLI("changepoints", "--input", write(t, "s.csv", b.String()))
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Changepoints []int }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.Changepoints) != 1 || res.Changepoints[0] != 100 {
		t.Errorf("changepoints = %v, want [100]", res.Changepoints)
	}

	for name, csv := range map[string]string{
		"no value column": "a,b\n1,2\n",
		"not a number":    "value\n1\nabc\n",
		"empty":           "",
	} {
		_, _, err := runCLI("changepoints", "--input", write(t, "bad.csv", csv))
		if err == nil || !strings.Contains(err.Error(), "bad.csv") {
			t.Errorf("%s: error %v does not name the file", name, err)
		}
	}
	if _, _, err := runCLI("changepoints"); err == nil || exitCode(err, &bytes.Buffer{}) != 2 {
		t.Errorf("missing --input: %v", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	_, stderr, err := runCLI("corelate")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(stderr, "Usage") {
		t.Errorf("err=%v stderr=%q", err, stderr)
	}
	if _, _, err := runCLI("correlate", "-h"); err != nil {
		t.Errorf("-h: %v", err)
	}
}

// culprit handover names what is wrong with its command line before it
// opens anything.
func TestHandoverCLI(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--config or --store is required"},
		{[]string{"--store", dir, "--config", "x.yml"}, "not both"},
		{[]string{"--store", dir, "--since", "-1h"}, "--since must be positive"},
		{[]string{"--store", dir, "--until", "yesterday"}, `--until "yesterday": not an RFC 3339 time`},
		{[]string{"--store", dir, "--format", "md"}, `--format "md"`},
	} {
		_, _, err := runCLI(append([]string{"handover"}, tc.args...)...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("handover %v: %v; want a usage error with %q", tc.args, err, tc.want)
		}
	}
}
