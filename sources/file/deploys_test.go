package file

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/culprithq/culprit/correlate"
)

var wantDeploys = []correlate.Deploy{
	{ID: "d1", Service: "api", Version: "1.0", StartedAt: ts("2026-11-20T13:00:00Z")},
	{ID: "d2", Service: "api", Version: "42", Environment: "prod", StartedAt: ts("2026-11-20T14:00:00Z"),
		FinishedAt: ts("2026-11-20T14:05:00Z"), Author: "ana", URL: "https://ci/2", Description: "fix",
		Hosts: []correlate.HostRollout{{Name: "h1", At: ts("2026-11-20T14:01:00Z")}, {Name: "h2", At: ts("2026-11-20T14:03:00Z")}}},
	{ID: "d3", Service: "web", StartedAt: ts("2026-11-20T14:00:00Z")},
}

const deployD2 = `{"id":"d2","service":"api","version":42,"environment":"prod","started_at":"2026-11-20T15:00:00+01:00","finished_at":"2026-11-20T14:05:00Z","author":"ana","url":"https://ci/2","description":"fix","hosts":[{"name":"h1","at":"2026-11-20T14:01:00Z"},{"name":"h2","at":"2026-11-20T14:03:00.000Z"}],"pipeline":{"unknown":"ignored"}}`

func TestReadDeploys(t *testing.T) {
	ndjson := lines(
		`{"id":"d3","service":"web","started_at":"2026-11-20T14:00:00Z"}`,
		``,
		deployD2,
		`{"id":"d1","service":"api","version":"1.0","started_at":"2026-11-20T13:00:00Z","finished_at":null}`,
	)
	array := "[\n  " + strings.Join([]string{
		`{"id":"d3","service":"web","started_at":"2026-11-20T14:00:00Z"}`,
		deployD2,
		`{"id":"d1","service":"api","version":"1.0","started_at":"2026-11-20T13:00:00Z"}`,
	}, ",\n  ") + "\n]\n"
	tests := []struct {
		name    string
		content []byte
	}{
		{"ndjson", []byte(ndjson)},
		{"array", []byte(array)},
		{"array gz", gz(t, array)},
		{"ndjson gz", gz(t, ndjson)},
		{"pretty-printed values", []byte(strings.ReplaceAll(ndjson, `,"`, ",\n  \""))},
		{"byte order mark", append([]byte{0xEF, 0xBB, 0xBF}, array...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "deploys.json")
			if err := os.WriteFile(p, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadDeploys(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantDeploys) {
				t.Errorf("got  %+v\nwant %+v", got, wantDeploys)
			}
		})
	}
}

func TestReadDeploysEmpty(t *testing.T) {
	for _, c := range []string{"", "[]", "\n \n"} {
		got, err := ReadDeploys(writeFile(t, "d.json", c))
		if err != nil || len(got) != 0 {
			t.Errorf("%q: got %v, %v; want no deploys", c, got, err)
		}
	}
}

func TestReadDeploysErrors(t *testing.T) {
	ok := `{"id":"ok","service":"api","started_at":"2026-11-20T13:00:00Z"}`
	tests := []struct {
		name    string
		content string
		want    string // after "deploys <path>: "
	}{
		{"missing id", lines(ok, `{"service":"api","started_at":"2026-11-20T13:00:00Z"}`), "line 2: id is required"},
		{"missing service", lines(ok, ok, `{"id":"x","started_at":"2026-11-20T13:00:00Z"}`), "line 3: service is required"},
		{"missing started_at", lines(`{"id":"x","service":"api"}`), "line 1: started_at is required"},
		{"everything missing", lines(`{}`), "line 1: id is required; service is required; started_at is required"},
		{"bad started_at", lines(`{"id":"x","service":"api","started_at":"2026-11-20 13:00"}`), `line 1: started_at "2026-11-20 13:00" is not an RFC 3339 time`},
		{"finished before started", lines(`{"id":"x","service":"api","started_at":"2026-11-20T13:00:00Z","finished_at":"2026-11-20T12:00:00Z"}`), "line 1: finished_at 2026-11-20T12:00:00Z is before started_at 2026-11-20T13:00:00Z"},
		{"host without name", lines(`{"id":"x","service":"api","started_at":"2026-11-20T13:00:00Z","hosts":[{"at":"2026-11-20T13:00:00Z"}]}`), "line 1: hosts[0]: name is required"},
		{"host without at", lines(`{"id":"x","service":"api","started_at":"2026-11-20T13:00:00Z","hosts":[{"name":"h"},{"name":"h2","at":"soon"}]}`), `line 1: hosts[0]: at is required; hosts[1].at "soon" is not an RFC 3339 time`},
		{"array index", "[\n" + ok + ",\n" + ok + ",\n{\"id\":\"x\"}\n]", "index 2 (line 4): service is required; started_at is required"},
		{"not an object", lines(ok, `"d2"`), `line 2: expected a JSON object, got "d2"`},
		{"array element not an object", `[1]`, "index 0 (line 1): expected a JSON object, got 1"},
		{"wrong type", lines(`{"id":"x","service":["api"],"started_at":"2026-11-20T13:00:00Z"}`), `line 1: field "service": expected a string, got array`},
		{"id is an object", lines(`{"id":{"a":1},"service":"api","started_at":"2026-11-20T13:00:00Z"}`), `line 1: id: expected a string or a number, got {"a":1}`},
		{"syntax error", lines(ok, `{"id":"x",}`), "line 2: invalid JSON"},
		{"truncated", ok + "\n" + `{"id":"x","serv`, "line 2: file ends in the middle of a JSON value"},
		{"unclosed array", "[" + ok, "file ends in the middle of a JSON value"},
		{"data after array", "[" + ok + "]\n[]", "unexpected data after the closing ]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "deploys.ndjson", tc.content)
			_, err := ReadDeploys(p)
			if err == nil || !strings.HasPrefix(err.Error(), "deploys "+p+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant deploys %s: %s", err, p, tc.want)
			}
		})
	}
	if _, err := ReadDeploys(filepath.Join(t.TempDir(), "nope.json")); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("missing file: %v", err)
	}
}
