package intake

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/culprithq/culprit/correlate"
)

const (
	zt1 = `{"id":101,"created_at":"2026-11-20T14:10:00Z","subject":"Checkout broken","description":"500 on pay","priority":"high","status":"open","tags":["checkout","bug"],"organization_id":42,"requester_id":7,"via":{"channel":"email","source":{"from":{},"to":{}}},"custom_fields":[]}`
	zt2 = `{"id":"102","created_at":"2026-11-20T14:05:00Z","subject":"Slow","organization_id":"43","via":"api"}`
)

var (
	wantT1 = correlate.Ticket{ID: 101, CreatedAt: ts("2026-11-20T14:10:00Z"), Subject: "Checkout broken", Description: "500 on pay",
		Priority: "high", Status: "open", Tags: []string{"checkout", "bug"}, OrganizationID: 42, RequesterID: 7, Via: "email"}
	wantT2 = correlate.Ticket{ID: 102, CreatedAt: ts("2026-11-20T14:05:00Z"), Subject: "Slow", OrganizationID: 43, Via: "api"}
)

func TestPostTickets(t *testing.T) {
	updated := strings.Replace(zt1, `"open"`, `"solved"`, 1)
	wantUpdated := wantT1
	wantUpdated.Status = "solved"
	tests := []struct {
		name     string
		body     string
		wantResp string
		want     map[int64]correlate.Ticket
	}{
		{"one ticket", zt1, `{"tickets":[101]}`, map[int64]correlate.Ticket{101: wantT1}},
		{"array", "[" + zt1 + "," + zt2 + "]", `{"tickets":[101,102]}`, map[int64]correlate.Ticket{101: wantT1, 102: wantT2}},
		{"export page", `{"tickets":[` + zt1 + "," + zt2 + `],"after_cursor":"abc","end_of_stream":true}`, `{"tickets":[101,102]}`,
			map[int64]correlate.Ticket{101: wantT1, 102: wantT2}},
		{"pages, update wins", `{"tickets":[` + zt1 + `]}` + "\n" + `{"tickets":[` + zt2 + "," + updated + `]}`, `{"tickets":[101,102]}`,
			map[int64]correlate.Ticket{101: wantUpdated, 102: wantT2}},
		{"ticket per line", zt1 + "\n" + zt2, `{"tickets":[101,102]}`, map[int64]correlate.Ticket{101: wantT1, 102: wantT2}},
		{"empty page", `{"tickets":[],"end_of_stream":true}`, `{"tickets":[]}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.post("/api/v1/tickets", tc.body)
			if w.Code != http.StatusOK {
				t.Fatalf("code %d: %s", w.Code, w.Body)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tc.wantResp {
				t.Errorf("response %s, want %s", got, tc.wantResp)
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

func TestPostTicketsRejectsWholeBatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"bad element in array", "[" + zt1 + `,{"id":"x1","created_at":"2026-11-20T14:05:00Z"}]`,
			[]string{"1 of 2 tickets invalid, nothing stored", `tickets[1] (line 1, id "x1"): id: expected an integer, got "x1"`}},
		{"bad ticket in page", `{"tickets":[` + zt1 + `,{"id":5}]}`, []string{"tickets[1] (id 5): created_at is required"}},
		{"bad ticket in second page", `{"tickets":[` + zt1 + `]}` + "\n" + `{"tickets":[{"id":6,"created_at":"now"}]}`,
			[]string{`page 1 (line 2): tickets[0] (id 6): created_at "now" is not an RFC 3339 time`}},
		{"tickets not an array", `{"tickets":{"id":1}}`, []string{`tickets: expected an array, got {"id":1}`}},
		{"single ticket", `{"subject":"no id"}`, []string{"ticket: id is required; created_at is required"}},
		{"malformed", `[` + zt1 + `,{"id":1,}]`, []string{"invalid JSON at line 1, column"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.post("/api/v1/tickets", tc.body)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("code %d, want 400: %s", w.Code, w.Body)
			}
			msg := errorOf(t, w)
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q lacks %q", msg, s)
				}
			}
			if e.tickets.calls != 0 {
				t.Errorf("store called %d times for a rejected batch", e.tickets.calls)
			}
		})
	}
}
