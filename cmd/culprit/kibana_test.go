package main

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/simulate"
)

// TestCorrelateKibanaLinks checks that --kibana puts a Discover link on
// every log finding of the JSON output, and nowhere without it.
func TestCorrelateKibanaLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates and correlates two hours of traffic")
	}
	dir := t.TempDir()
	if _, err := simulate.WriteFiles(context.Background(), dir, simulate.Config{Seed: 42, Shape: simulate.ShapeFriday, Duration: 2 * time.Hour, Onset: time.Hour}); err != nil {
		t.Fatal(err)
	}
	files := []string{"--logs", filepath.Join(dir, simulate.LogsFile), "--deploys", filepath.Join(dir, simulate.DeploysFile), "--tickets", filepath.Join(dir, simulate.TicketsFile)}
	tests := []struct {
		name      string
		args      []string
		wantLinks bool
		wantURL   string // prefix
		wantView  string // in the decoded _a state
	}{
		{name: "no --kibana", wantLinks: false},
		{name: "default data view", args: []string{"--kibana", "http://localhost:5601/"}, wantLinks: true,
			wantURL: "http://localhost:5601/app/discover#/?_g=(time:(from:'", wantView: "dataSource:(dataViewId:culprit-logs,type:dataView)"},
		{name: "data view of the operator's", args: []string{"--kibana", "https://kb.example.com/s/ops", "--kibana-data-view", "logs view"}, wantLinks: true,
			wantURL: "https://kb.example.com/s/ops/app/discover#/?_g=", wantView: "dataSource:(dataViewId:'logs view',type:dataView)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := correlateJSON(t, append(files, tc.args...)...)
			logFindings := 0
			for _, f := range res.Findings {
				if f.Kind == correlate.KindTicketSurge {
					if len(f.Links) != 0 {
						t.Errorf("ticket surge %s has links %v", f.ID, f.Links)
					}
					continue
				}
				logFindings++
				if !tc.wantLinks {
					if len(f.Links) != 0 {
						t.Errorf("finding %s has links %v without --kibana", f.ID, f.Links)
					}
					continue
				}
				if len(f.Links) != 1 || f.Links[0].Title != "Kibana Discover" || !strings.HasPrefix(f.Links[0].URL, tc.wantURL) {
					t.Fatalf("finding %s: links %+v, want one Kibana Discover link starting %s", f.ID, f.Links, tc.wantURL)
				}
				u, err := url.Parse(f.Links[0].URL)
				if err != nil {
					t.Fatal(err)
				}
				q, err := url.ParseQuery(strings.TrimPrefix(u.Fragment, "/?"))
				if err != nil {
					t.Fatal(err)
				}
				if a := q.Get("_a"); !strings.Contains(a, tc.wantView) || !strings.Contains(a, `service.name:"`+f.Service+`"`) {
					t.Errorf("finding %s: state %s lacks %s or its service", f.ID, a, tc.wantView)
				}
			}
			if logFindings == 0 {
				t.Fatal("no log finding to link: the test proves nothing")
			}
		})
	}

	// The text report shows the link too.
	out, _, err := runCLI(append(append([]string{"correlate"}, files...), "--kibana", "http://localhost:5601")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "  Links         Kibana Discover: http://localhost:5601/app/discover#/?_g=") {
		t.Errorf("text report lacks the link:\n%s", out)
	}
}

func TestCorrelateKibanaBadFlags(t *testing.T) {
	logs := write(t, "l.ndjson", goodLine+"\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no scheme", []string{"--kibana", "localhost:5601"}, "--kibana: not an http(s) URL"},
		{"credentials are not echoed", []string{"--kibana", "ftp://elastic:s3cret@kb"}, "--kibana: not an http(s) URL"},
		{"query in the URL", []string{"--kibana", "http://kb/?space=ops"}, "without query or fragment"},
		{"empty data view", []string{"--kibana", "http://kb", "--kibana-data-view", ""}, "--kibana-data-view: empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(append([]string{"correlate", "--logs", logs}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q leaks the password", err)
			}
			if code := exitCode(err, &bytes.Buffer{}); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}
