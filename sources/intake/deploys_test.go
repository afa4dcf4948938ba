package intake

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

const (
	depA = `{"id":"dep-1a2b","service":"edge-router","version":"3.8.0","environment":"production",
 "started_at":"2026-11-20T16:00:00Z","finished_at":"2026-11-20T16:21:00Z",
 "author":"jo","url":"https://github.com/acme/edge-router/releases/tag/v3.8.0","description":"proxy",
 "hosts":[{"name":"edge-aws-use1-03","at":"2026-11-20T16:00:40Z"}], "ci_run": 7}`
	depB = `{"id":42,"service":"api","version":3,"started_at":"2026-11-20T15:00:00+01:00"}`
)

var (
	wantA = correlate.Deploy{ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", Environment: "production",
		StartedAt: ts("2026-11-20T16:00:00Z"), FinishedAt: ts("2026-11-20T16:21:00Z"), Author: "jo",
		URL: "https://github.com/acme/edge-router/releases/tag/v3.8.0", Description: "proxy",
		Hosts: []correlate.HostRollout{{Name: "edge-aws-use1-03", At: ts("2026-11-20T16:00:40Z")}}}
	wantB = correlate.Deploy{ID: "42", Service: "api", Version: "3", StartedAt: ts("2026-11-20T14:00:00Z")}
)

func TestPostDeploys(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantResp string
		want     []correlate.Deploy
	}{
		{"one object", depA, 201, `{"deploys":[{"id":"dep-1a2b","created":true}]}`, []correlate.Deploy{wantA}},
		{"array", "[" + depA + ",\n" + depB + "]", 201,
			`{"deploys":[{"id":"dep-1a2b","created":true},{"id":"42","created":true}]}`, []correlate.Deploy{wantA, wantB}},
		{"ndjson", strings.ReplaceAll(depA, "\n", "") + "\n" + depB + "\n", 201,
			`{"deploys":[{"id":"dep-1a2b","created":true},{"id":"42","created":true}]}`, []correlate.Deploy{wantA, wantB}},
		{"empty array", "[]", 200, `{"deploys":[]}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.post("/api/v1/deploys", tc.body)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tc.wantResp {
				t.Errorf("response %s, want %s", got, tc.wantResp)
			}
			var got []correlate.Deploy
			for _, id := range e.deploys.ids() {
				d, _ := e.deploys.get(id)
				got = append(got, d)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("stored %+v\nwant   %+v", got, tc.want)
			}
			if !reflect.DeepEqual(e.onDeploy, tc.want) {
				t.Errorf("OnDeploy saw %+v, want %+v", e.onDeploy, tc.want)
			}
		})
	}
}

func TestPostDeployMergesKnown(t *testing.T) {
	e := newEnv(t)
	first := `{"id":"d1","service":"api","version":"2","started_at":"2026-11-20T16:00:00Z","hosts":[{"name":"h1","at":"2026-11-20T16:01:00Z"}]}`
	again := `{"id":"d1","service":"api","version":"2","started_at":"2026-11-20T16:00:00Z","finished_at":"2026-11-20T16:09:00Z","hosts":[{"name":"h2","at":"2026-11-20T16:05:00Z"}]}`
	if w := e.post("/api/v1/deploys", first); w.Code != http.StatusCreated {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	w := e.post("/api/v1/deploys", again)
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"deploys":[{"id":"d1","created":false}]}` {
		t.Fatalf("again: %d %s, want 200 with created false", w.Code, w.Body)
	}
	d, _ := e.deploys.get("d1")
	if len(d.Hosts) != 2 || !d.FinishedAt.Equal(ts("2026-11-20T16:09:00Z")) {
		t.Errorf("merged deploy %+v", d)
	}
	if len(e.onDeploy) != 1 {
		t.Errorf("OnDeploy called %d times, want once (for the new deploy only)", len(e.onDeploy))
	}
}

func TestPostDeploysRejectsWholeBatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // substrings of the error
	}{
		{"one bad element of three", "[" + depB + ",\n" + `{"id":"dep-9","version":"1","started_at":"2026-11-20T16:00:00Z"}` + ",\n" + depA + "]",
			[]string{"1 of 3 deploys invalid, nothing stored", `deploys[1] (line 2, id "dep-9"): service is required`}},
		{"every problem of a record", `[{"service":"x","started_at":"yesterday","hosts":[{"name":"h"}]}]`,
			[]string{"deploys[0] (line 1): id is required", `started_at "yesterday" is not an RFC 3339 time`, "hosts[0]: at is required"}},
		{"single object", `{"id":"d","service":"s"}`, []string{`deploy (id "d"): started_at is required`}},
		{"wrong type", `{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z","hosts":"h1"}`, []string{`field "hosts": expected an array, got string`}},
		{"not an object", `["dep-1"]`, []string{`deploys[0] (line 1): expected a JSON object, got "dep-1"`}},
		{"finished before started", `{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z","finished_at":"2026-11-20T15:00:00Z"}`, []string{"finished_at 2026-11-20T15:00:00Z is before started_at"}},
		{"malformed json", "[" + depB + ",\n{\"id\": \"x\",,}]", []string{"invalid JSON at line 2, column 12 (byte"}},
		{"empty body", "", []string{"empty body"}},
		{"many bad, capped", "[" + strings.Repeat(`{"id":"d","service":"s"},`, 12) + `{"id":"d","service":"s"}]`,
			[]string{"13 of 13 deploys invalid", "deploys[9]", "and 3 more"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.post("/api/v1/deploys", tc.body)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("code %d, want 400: %s", w.Code, w.Body)
			}
			msg := errorOf(t, w)
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q lacks %q", msg, s)
				}
			}
			if ids := e.deploys.ids(); len(ids) != 0 {
				t.Errorf("stored %v from a rejected batch", ids)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	known := `{"id":"dep-1","service":"api","version":"2","started_at":"2026-11-20T16:00:00Z","hosts":[{"name":"h1","at":"2026-11-20T16:01:00Z"}]}`
	tests := []struct {
		name      string
		path      string
		body      string
		wantCode  int
		wantErr   string
		wantHosts []string
		wantFin   time.Time
	}{
		{"hosts", "/api/v1/deploys/dep-1/progress", `{"hosts":[{"name":"h2","at":"2026-11-20T16:03:00Z"},{"name":"h3","at":"2026-11-20T16:04:00Z"}]}`,
			200, "", []string{"h1", "h2", "h3"}, time.Time{}},
		{"finished only", "/api/v1/deploys/dep-1/progress", `{"finished_at":"2026-11-20T16:20:00Z"}`,
			200, "", []string{"h1"}, ts("2026-11-20T16:20:00Z")},
		{"escaped id", "/api/v1/deploys/dep%2D1/progress", `{"finished_at":"2026-11-20T16:20:00Z"}`,
			200, "", []string{"h1"}, ts("2026-11-20T16:20:00Z")},
		{"unknown deploy", "/api/v1/deploys/dep-404/progress", `{"hosts":[{"name":"h2","at":"2026-11-20T16:03:00Z"}]}`,
			404, `deploy "dep-404" not found`, []string{"h1"}, time.Time{}},
		{"empty", "/api/v1/deploys/dep-1/progress", `{}`, 400, "hosts or finished_at is required", []string{"h1"}, time.Time{}},
		{"bad host", "/api/v1/deploys/dep-1/progress", `{"hosts":[{"name":"h2","at":"2026-11-20T16:03:00Z"},{"at":"soon"}]}`,
			400, `hosts[1].name is required; hosts[1].at "soon" is not an RFC 3339 time`, []string{"h1"}, time.Time{}},
		{"host wrong type", "/api/v1/deploys/dep-1/progress", `{"hosts":[{"name":7,"at":"2026-11-20T16:03:00Z"}]}`,
			400, `hosts[0].name: expected a string, got number`, []string{"h1"}, time.Time{}},
		{"host not object", "/api/v1/deploys/dep-1/progress", `{"hosts":["h2"]}`, 400, `hosts[0]: expected an object, got "h2"`, []string{"h1"}, time.Time{}},
		{"array body", "/api/v1/deploys/dep-1/progress", `[]`, 400, "got an array", []string{"h1"}, time.Time{}},
		{"bad finished", "/api/v1/deploys/dep-1/progress", `{"finished_at":"16:20"}`, 400, `finished_at "16:20" is not an RFC 3339 time`, []string{"h1"}, time.Time{}},
		{"malformed", "/api/v1/deploys/dep-1/progress", `{"hosts":[}`, 400, "invalid JSON at line 1, column 11", []string{"h1"}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if w := e.post("/api/v1/deploys", known); w.Code != http.StatusCreated {
				t.Fatalf("seed: %d %s", w.Code, w.Body)
			}
			w := e.post(tc.path, tc.body)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantErr != "" && !strings.Contains(errorOf(t, w), tc.wantErr) {
				t.Errorf("error %q lacks %q", errorOf(t, w), tc.wantErr)
			}
			d, _ := e.deploys.get("dep-1")
			var hosts []string
			for _, h := range d.Hosts {
				hosts = append(hosts, h.Name)
			}
			if !reflect.DeepEqual(hosts, tc.wantHosts) || !d.FinishedAt.Equal(tc.wantFin) {
				t.Errorf("deploy hosts %v finished %v; want %v, %v", hosts, d.FinishedAt, tc.wantHosts, tc.wantFin)
			}
			if w.Code == 200 {
				var resp progressResponse
				if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.ID != "dep-1" {
					t.Errorf("response %s", w.Body)
				}
			}
		})
	}
}
