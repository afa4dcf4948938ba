package file

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/culprithq/culprit/correlate"
)

const (
	ticket1 = `{"id":101,"created_at":"2026-11-20T14:10:00Z","subject":"Checkout broken","description":"500 on pay","priority":"high","status":"open","tags":["checkout","bug"],"organization_id":42,"requester_id":7,"via":{"channel":"email","source":{"from":{},"to":{}}},"custom_fields":[]}`
	ticket2 = `{"id":102,"created_at":"2026-11-20T14:05:00Z","subject":"Slow","priority":null,"status":"new","tags":[],"organization_id":null,"requester_id":8,"via":{"channel":"web"}}`
	ticket3 = `{"id":103,"created_at":"2026-11-20T14:05:00Z","subject":"Also slow","organization_id":"43","via":"api"}`
)

var wantTickets = []correlate.Ticket{
	{ID: 102, CreatedAt: ts("2026-11-20T14:05:00Z"), Subject: "Slow", Status: "new", Tags: []string{}, RequesterID: 8, Via: "web"},
	{ID: 103, CreatedAt: ts("2026-11-20T14:05:00Z"), Subject: "Also slow", OrganizationID: 43, Via: "api"},
	{ID: 101, CreatedAt: ts("2026-11-20T14:10:00Z"), Subject: "Checkout broken", Description: "500 on pay", Priority: "high",
		Status: "open", Tags: []string{"checkout", "bug"}, OrganizationID: 42, RequesterID: 7, Via: "email"},
}

func page(ts ...string) string {
	return `{"tickets":[` + strings.Join(ts, ",") + `],"after_cursor":"abc","end_of_stream":false}`
}

func TestReadTickets(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
	}{
		{"one page", []byte(page(ticket1, ticket2, ticket3))},
		{"pages", []byte(lines(page(ticket1), page(), page(ticket2, ticket3)))},
		{"pretty pages", []byte("{\n  \"tickets\": [\n" + ticket3 + "\n]}\n{\"tickets\":[" + ticket1 + "," + ticket2 + "]}")},
		{"array", []byte("[" + ticket3 + ",\n" + ticket1 + ",\n" + ticket2 + "]")},
		{"ticket per line", []byte(lines(ticket1, ticket2, ticket3))},
		{"gz pages", gz(t, lines(page(ticket1), page(ticket2, ticket3)))},
		// An incremental export repeats updated tickets; the last wins.
		{"updated ticket", []byte(lines(page(strings.Replace(ticket1, `"open"`, `"new"`, 1), ticket2), page(ticket1, ticket3)))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tickets.json")
			if err := os.WriteFile(p, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadTickets(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantTickets) {
				t.Errorf("got  %+v\nwant %+v", got, wantTickets)
			}
		})
	}
}

func TestReadTicketsErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"missing created_at in page", lines(page(ticket1), page(ticket2, `{"id":7,"subject":"x"}`)), "page 2 (line 2): ticket 1 (id 7): created_at is required"},
		{"missing id", page(`{"created_at":"2026-11-20T14:05:00Z"}`), "page 1 (line 1): ticket 0: id is required"},
		{"bad time in array", "[" + ticket1 + `,{"id":9,"created_at":"20/11/2026"}]`, `index 1 (line 1) (id 9): created_at "20/11/2026" is not an RFC 3339 time`},
		{"bad org id", page(`{"id":9,"created_at":"2026-11-20T14:05:00Z","organization_id":"acme"}`), `ticket 0 (id 9): organization_id: expected an integer, got "acme"`},
		{"bad via", page(`{"id":9,"created_at":"2026-11-20T14:05:00Z","via":5}`), "via: expected an object or a string, got 5"},
		{"tickets not an array", `{"tickets":{"id":1}}`, `line 1: field "tickets": expected an array, got object`},
		{"not an object", lines(page(ticket1), `42`), "line 2: expected a JSON object, got 42"},
		{"syntax", lines(page(ticket1), `{"tickets":[}`), "line 2: invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "tickets.json", tc.content)
			_, err := ReadTickets(p)
			if err == nil || !strings.HasPrefix(err.Error(), "tickets "+p+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant tickets %s: ...%s", err, p, tc.want)
			}
		})
	}
}

func FuzzDeploysTickets(f *testing.F) {
	f.Add([]byte(page(ticket1, ticket2)))
	f.Add([]byte("[" + ticket3 + "]"))
	f.Add([]byte(lines(deployD2, `{"id":1}`)))
	f.Add([]byte("[{\"hosts\":[{}]}"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "in.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ReadDeploys(p)
		ReadTickets(p)
	})
}
