package intake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// ghPayload is a deployment_status event shaped like GitHub's published
// examples (testdata/github), with the deployment's payload and status
// state filled in. Like them, ref is the branch: it is not a version.
func ghPayload(state, payload string) string {
	return `{
  "action": "created",
  "deployment_status": {
    "url": "https://api.github.com/repos/acme/edge-router/deployments/145988746/statuses/1",
    "id": 1, "node_id": "DES_x", "state": "` + state + `",
    "creator": {"login": "ci-bot", "id": 2},
    "description": "", "environment": "production",
    "target_url": "https://ci.acme.dev/runs/77", "log_url": "https://ci.acme.dev/runs/77/log",
    "created_at": "2026-11-20T16:21:00Z", "updated_at": "2026-11-20T16:21:00Z",
    "deployment_url": "https://api.github.com/repos/acme/edge-router/deployments/145988746",
    "repository_url": "https://api.github.com/repos/acme/edge-router"
  },
  "deployment": {
    "url": "https://api.github.com/repos/acme/edge-router/deployments/145988746",
    "id": 145988746, "node_id": "MDEwOkRlcGxveW1lbnQxNDU5ODg3NDY=",
    "sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "ref": "master", "task": "deploy",
    "payload": ` + payload + `, "original_environment": "production", "environment": "production",
    "description": "proxy rollout",
    "creator": {"login": "jo", "id": 3},
    "created_at": "2026-11-20T16:00:00Z", "updated_at": "2026-11-20T16:21:00Z",
    "statuses_url": "https://api.github.com/repos/acme/edge-router/deployments/145988746/statuses",
    "repository_url": "https://api.github.com/repos/acme/edge-router"
  },
  "repository": {"id": 9, "name": "edge-router", "full_name": "acme/edge-router", "html_url": "https://github.com/acme/edge-router"},
  "sender": {"login": "ci-bot", "id": 2}
}`
}

func ghSign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func ghHeaders(event, delivery, sig string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}, "X-GitHub-Event": {event}}
	if delivery != "" {
		h.Set("X-GitHub-Delivery", delivery)
	}
	if sig != "" {
		h.Set("X-Hub-Signature-256", sig)
	}
	return h
}

func TestGitHubWebhook(t *testing.T) {
	pending := ghPayload("in_progress", `{}`)
	success := ghPayload("success", `{}`)
	base := correlate.Deploy{ID: "github-145988746", Service: "edge-router", Version: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Environment: "production",
		StartedAt: ts("2026-11-20T16:00:00Z"), Author: "jo", URL: "https://ci.acme.dev/runs/77", Description: "proxy rollout"}
	finished := base
	finished.FinishedAt = ts("2026-11-20T16:21:00Z")

	type step struct {
		body     string
		header   http.Header
		wantCode int
		wantBody string // substring
	}
	tests := []struct {
		name  string
		steps []step
		want  []correlate.Deploy // stored at the end
	}{
		{"unsigned", []step{{success, ghHeaders("deployment_status", "d1", ""), 401, "missing X-Hub-Signature-256"}}, nil},
		{"forged", []step{{success, ghHeaders("deployment_status", "d1", ghSign("guessed-secret", success)), 401, "does not match"}}, nil},
		{"signed for another body", []step{{success, ghHeaders("deployment_status", "d1", ghSign(testGitHubSecret, pending)), 401, "does not match"}}, nil},
		{"sha1 style", []step{{success, ghHeaders("deployment_status", "d1", "sha1=abcd"), 401, "must start with"}}, nil},
		{"not hex", []step{{success, ghHeaders("deployment_status", "d1", "sha256=zz"), 401, "not hex"}}, nil},
		{"ping", []step{{`{"zen":"hi"}`, ghHeaders("ping", "p1", ghSign(testGitHubSecret, `{"zen":"hi"}`)), 200, `"pong"`}}, nil},
		{"other event", []step{{`{}`, ghHeaders("push", "p1", ghSign(testGitHubSecret, `{}`)), 202, `"ignored"`}}, nil},
		{"form encoded, signed over the form", []step{{formOf(success), ghFormHeaders("d1", ghSign(testGitHubSecret, formOf(success))), 201, `"created":true`}}, []correlate.Deploy{finished}},
		{"form encoded, signed over the JSON only", []step{{formOf(success), ghFormHeaders("d1", ghSign(testGitHubSecret, success)), 401, "does not match"}}, nil},
		{"form without payload", []step{{"x=1", ghFormHeaders("d1", ghSign(testGitHubSecret, "x=1")), 400, "exactly one"}}, nil},
		{"missing delivery", []step{{success, ghHeaders("deployment_status", "", ghSign(testGitHubSecret, success)), 400, "X-GitHub-Delivery"}}, nil},
		{"in progress then success", []step{
			{pending, ghHeaders("deployment_status", "d1", ghSign(testGitHubSecret, pending)), 201, `"created":true`},
			{success, ghHeaders("deployment_status", "d2", ghSign(testGitHubSecret, success)), 200, `"created":false`},
		}, []correlate.Deploy{finished}},
		{"replay stores nothing", []step{
			{pending, ghHeaders("deployment_status", "d1", ghSign(testGitHubSecret, pending)), 201, `"id":"github-145988746"`},
			// A replay of a later, validly signed status under a seen id.
			{success, ghHeaders("deployment_status", "d1", ghSign(testGitHubSecret, success)), 200, "duplicate delivery"},
		}, []correlate.Deploy{base}},
		{"replay under a new delivery id, its signature re-cased", []step{
			{pending, ghHeaders("deployment_status", "d1", ghSign(testGitHubSecret, pending)), 201, `"id":"github-145988746"`},
			{success, ghHeaders("deployment_status", "d2", ghSign(testGitHubSecret, success)), 200, `"created":false`},
			{success, ghHeaders("deployment_status", "d3", "sha256="+strings.ToUpper(ghSign(testGitHubSecret, success)[len("sha256="):])), 200, "duplicate delivery"},
		}, []correlate.Deploy{finished}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for i, s := range tc.steps {
				w := e.do(http.MethodPost, "/api/v1/webhooks/github", s.body, s.header)
				if w.Code != s.wantCode || !strings.Contains(w.Body.String(), s.wantBody) {
					t.Fatalf("step %d: %d %s; want %d with %q", i, w.Code, w.Body, s.wantCode, s.wantBody)
				}
			}
			var got []correlate.Deploy
			for _, id := range e.deploys.ids() {
				d, _ := e.deploys.get(id)
				got = append(got, d)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("stored %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}

func TestGitHubDeployMapping(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    func(d *correlate.Deploy)
		wantErr string
	}{
		{"payload object names service and version", ghPayload("success", `{"service":"edge","version":"3.8.1"}`), func(d *correlate.Deploy) {
			d.Service, d.Version, d.FinishedAt = "edge", "3.8.1", ts("2026-11-20T16:21:00Z")
		}, ""},
		{"payload as a JSON string", ghPayload("queued", `"{\"service\":\"edge\",\"version\":42}"`), func(d *correlate.Deploy) {
			d.Service, d.Version = "edge", "42"
		}, ""},
		{"payload unusable", ghPayload("failure", `"not json"`), func(d *correlate.Deploy) {
			d.FinishedAt = ts("2026-11-20T16:21:00Z")
		}, ""},
		{"a tag as ref is still not the version", strings.Replace(ghPayload("error", `{}`), `"ref": "master"`, `"ref": "v3.8.0"`, 1), func(d *correlate.Deploy) {
			d.FinishedAt = ts("2026-11-20T16:21:00Z")
		}, ""},
		{"no target url: log url", strings.Replace(ghPayload("pending", `{}`), `"target_url": "https://ci.acme.dev/runs/77", `, ``, 1), func(d *correlate.Deploy) {
			d.URL = "https://ci.acme.dev/runs/77/log"
		}, ""},
		{"status before deployment clamps", strings.Replace(ghPayload("inactive", `{}`), `"created_at": "2026-11-20T16:21:00Z"`, `"created_at": "2026-11-20T15:59:59Z"`, 1), func(d *correlate.Deploy) {
			d.FinishedAt = d.StartedAt
		}, ""},
		{"id as string", strings.Replace(ghPayload("success", `{}`), `"id": 145988746`, `"id": "145988746"`, 1), nil, "deployment.id: expected a number, got string"},
		{"no created_at", strings.Replace(ghPayload("success", `{}`), `"created_at": "2026-11-20T16:00:00Z"`, `"created_at": "yesterday"`, 1), nil, `deployment.created_at "yesterday" is not an RFC 3339 time`},
		{"no deployment", `{"action":"created","deployment_status":{"state":"success"}}`, nil, "deployment and deployment_status are required"},
		{"malformed", `{"deployment": {`, nil, "invalid JSON at line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeGitHubDeploy([]byte(tc.body), testNow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := correlate.Deploy{ID: "github-145988746", Service: "edge-router", Version: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Environment: "production",
				StartedAt: ts("2026-11-20T16:00:00Z"), Author: "jo", URL: "https://ci.acme.dev/runs/77", Description: "proxy rollout"}
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// formOf is body as GitHub's default content type sends it.
func formOf(body string) string { return url.Values{"payload": {body}}.Encode() }

func ghFormHeaders(delivery, sig string) http.Header {
	h := ghHeaders("deployment_status", delivery, sig)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

// TestGitHubPublishedExamples decodes GitHub's own deployment_status
// examples (octokit/webhooks, see testdata/github/README.md), posted with
// both content types GitHub offers. Their ref is "master": the version must
// be the sha.
func TestGitHubPublishedExamples(t *testing.T) {
	sha := "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
	tests := []struct {
		file string
		want correlate.Deploy
	}{
		{"deployment_status.payload.json", correlate.Deploy{ID: "github-145988746", Service: "Hello-World", Version: sha,
			Environment: "production", StartedAt: ts("2019-05-15T15:20:53Z"), FinishedAt: ts("2019-05-15T15:20:55Z"),
			Author: "Codertocat", URL: "https://github.com/Codertocat/Hello-World"}},
		{"deployment_status.with-installation.payload.json", correlate.Deploy{ID: "github-145988746", Service: "Hello-World", Version: sha,
			Environment: "production", StartedAt: ts("2019-05-15T15:20:53Z"), FinishedAt: ts("2019-05-15T15:20:55Z"),
			Author: "Codertocat", URL: "https://github.com/Codertocat/Hello-World"}},
		{"deployment_status.gh-pages.payload.json", correlate.Deploy{ID: "github-145988746", Service: "Hello-World", Version: sha,
			Environment: "github-pages", StartedAt: ts("2022-01-03T01:28:30Z"),
			Author: "github-pages[bot]", URL: "https://github.com/Codertocat/Hello-World/runs/145988746?check_suite_focus=true"}},
	}
	for _, tc := range tests {
		raw, err := os.ReadFile(filepath.Join("testdata", "github", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s form=%v", tc.file, form), func(t *testing.T) {
				e := newEnv(t)
				body, h := string(raw), ghHeaders("deployment_status", "d-"+tc.file, "")
				if form {
					body, h = formOf(body), ghFormHeaders("d-"+tc.file, "")
				}
				h.Set("X-Hub-Signature-256", ghSign(testGitHubSecret, body))
				w := e.do(http.MethodPost, "/api/v1/webhooks/github", body, h)
				if w.Code != http.StatusCreated {
					t.Fatalf("code %d: %s", w.Code, w.Body)
				}
				got, _ := e.deploys.get("github-145988746")
				got.Description = "" // the examples' descriptions are free text
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("stored %+v\nwant   %+v", got, tc.want)
				}
			})
		}
	}
}

func TestGitHubDeliveryLogDown(t *testing.T) {
	e := newEnv(t)
	e.deliveries.err = errors.New("database is locked")
	body := ghPayload("success", `{}`)
	w := e.do(http.MethodPost, "/api/v1/webhooks/github", body, ghHeaders("deployment_status", "d1", ghSign(testGitHubSecret, body)))
	if w.Code != http.StatusInternalServerError || len(e.deploys.ids()) != 0 {
		t.Errorf("code %d with %d stored; want 500 and nothing stored, so GitHub redelivers", w.Code, len(e.deploys.ids()))
	}
}

// zdTrigger is what the documented trigger body renders to.
const zdTrigger = `{"ticket": {
  "id": "35436",
  "created_at": "2026-11-20T16:12Z",
  "subject": "Functions fail on AWS",
  "description": "Our resize function returns 502 since 16:05",
  "priority": "High",
  "status": "Open",
  "tags": "functions aws  vip",
  "organization_id": "10234",
  "requester_id": "20978392",
  "via": "Web Form"
}}`

var wantZD = correlate.Ticket{ID: 35436, CreatedAt: ts("2026-11-20T16:12:00Z"), Subject: "Functions fail on AWS",
	Description: "Our resize function returns 502 since 16:05", Priority: "high", Status: "open",
	Tags: []string{"functions", "aws", "vip"}, OrganizationID: 10234, RequesterID: 20978392, Via: "Web Form"}

func zdSign(secret, stamp, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stamp + body))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func zdHeaders(stamp, sig string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if stamp != "" {
		h.Set("X-Zendesk-Webhook-Signature-Timestamp", stamp)
	}
	if sig != "" {
		h.Set("X-Zendesk-Webhook-Signature", sig)
	}
	return h
}

func TestZendeskWebhook(t *testing.T) {
	fresh := testNow.Add(-30 * time.Second).Format(time.RFC3339)
	old := testNow.Add(-6 * time.Minute).Format(time.RFC3339)
	ahead := testNow.Add(6 * time.Minute).Format(time.RFC3339)
	late := testNow.Add(-4*time.Minute - 59*time.Second).Format(time.RFC3339)
	event := `{"type":"zen:event-type:ticket.created","account_id":1,"id":"e1","time":"2026-11-20T16:12:00Z","detail":{"id":"35437","created_at":"2026-11-20T16:12:30Z","subject":"Also broken","organization_id":"10234","tags":["aws"],"via":{"channel":"web_service"}}}`
	unix := strconv.FormatInt(testNow.Add(-30*time.Second).Unix(), 10)

	tests := []struct {
		name     string
		body     string
		header   http.Header
		wantCode int
		wantErr  string
		want     map[int64]correlate.Ticket
	}{
		{"signed trigger", zdTrigger, zdHeaders(fresh, zdSign(testZendeskSecret, fresh, zdTrigger)), 200, "", map[int64]correlate.Ticket{35436: wantZD}},
		{"unix timestamp", zdTrigger, zdHeaders(unix, zdSign(testZendeskSecret, unix, zdTrigger)), 200, "", map[int64]correlate.Ticket{35436: wantZD}},
		{"just inside the window", zdTrigger, zdHeaders(late, zdSign(testZendeskSecret, late, zdTrigger)), 200, "", map[int64]correlate.Ticket{35436: wantZD}},
		{"ticket event", event, zdHeaders(fresh, zdSign(testZendeskSecret, fresh, event)), 200, "", map[int64]correlate.Ticket{35437: {
			ID: 35437, CreatedAt: ts("2026-11-20T16:12:30Z"), Subject: "Also broken", OrganizationID: 10234, Tags: []string{"aws"}, Via: "web_service"}}},
		{"unsigned", zdTrigger, zdHeaders("", ""), 401, "missing X-Zendesk-Webhook-Signature", nil},
		{"no timestamp", zdTrigger, zdHeaders("", zdSign(testZendeskSecret, "", zdTrigger)), 401, "missing", nil},
		{"forged", zdTrigger, zdHeaders(fresh, zdSign("guessed-secret", fresh, zdTrigger)), 401, "does not match", nil},
		{"timestamp swapped", zdTrigger, zdHeaders(fresh, zdSign(testZendeskSecret, old, zdTrigger)), 401, "does not match", nil},
		{"expired", zdTrigger, zdHeaders(old, zdSign(testZendeskSecret, old, zdTrigger)), 401, "more than 5m0s from now", nil},
		{"from the future", zdTrigger, zdHeaders(ahead, zdSign(testZendeskSecret, ahead, zdTrigger)), 401, "more than 5m0s from now", nil},
		{"not base64", zdTrigger, zdHeaders(fresh, "!!"), 401, "not base64", nil},
		{"bad timestamp", zdTrigger, zdHeaders("soon", zdSign(testZendeskSecret, "soon", zdTrigger)), 401, "not a time", nil},
		{"no ticket", `{"subject":"x"}`, zdHeaders(fresh, zdSign(testZendeskSecret, fresh, `{"subject":"x"}`)), 400, `expected {"ticket":{…}}`, nil},
		{"bad ticket", `{"ticket":{"id":"{{ticket.id}}","created_at":"2026-11-20T16:12Z"}}`,
			zdHeaders(fresh, zdSign(testZendeskSecret, fresh, `{"ticket":{"id":"{{ticket.id}}","created_at":"2026-11-20T16:12Z"}}`)), 400,
			`ticket (id "{{ticket.id}}"): id: expected an integer`, nil},
		{"unescaped quote", `{"ticket":{"id":"1","subject":"say "hi""}}`,
			zdHeaders(fresh, zdSign(testZendeskSecret, fresh, `{"ticket":{"id":"1","subject":"say "hi""}}`)), 400, "invalid JSON at line 1, column 37", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(http.MethodPost, "/api/v1/webhooks/zendesk", tc.body, tc.header)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantErr != "" && !strings.Contains(errorOf(t, w), tc.wantErr) {
				t.Errorf("error %q lacks %q", errorOf(t, w), tc.wantErr)
			}
			got := e.tickets.all()
			if len(tc.want) == 0 && len(got) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("stored %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}
