package file

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
)

func TestCountConjunctions(t *testing.T) {
	content := lines(
		// Before onset: one request on aws /.fn/a, one error of another class.
		`{"@timestamp":"2026-11-20T14:00:30Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:01:30Z","service.name":"edge","cloud.provider":"gcp","url.path":"/","http.response.status_code":500,"error.message":"disk full"}`,
		// The episode.
		`{"@timestamp":"2026-11-20T14:02:10Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":502,"error.message":"fn 1 failed"}`,
		`{"@timestamp":"2026-11-20T14:02:20Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/b/run","http.response.status_code":502,"error.message":"fn 2 failed"}`,
		`{"@timestamp":"2026-11-20T14:02:30Z","service.name":"edge","cloud.provider":"aws","url.path":"/cart","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:02:40Z","service.name":"edge","cloud.provider":"gcp","url.path":"/.fn/a","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:02:50Z","service.name":"edge","url.path":"/.fn/a","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:03:00Z","service.name":"web","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":502,"error.message":"fn 3 failed"}`,
		// After To.
		`{"@timestamp":"2026-11-20T14:05:00Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":502,"error.message":"fn 4 failed"}`,
	)
	aws := correlate.Condition{Field: correlate.FieldProvider, Value: "aws"}
	fn := correlate.Condition{Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true}
	region := correlate.Condition{Field: correlate.FieldRegion, Value: "r1"}
	q := correlate.ConjunctionQuery{
		Service: "edge", Messages: []string{template.Mask("fn 1 failed")},
		Before: ts("2026-11-20T14:00:00Z"), From: ts("2026-11-20T14:02:00Z"), To: ts("2026-11-20T14:05:00Z"),
		Conjunctions: [][]correlate.Condition{nil, {aws}, {fn}, {aws, fn}, {region}},
	}
	want := []correlate.ConjunctionCount{
		{Errors: 2, Requests: 5, ErrorsBefore: 0, RequestsBefore: 2},
		{Errors: 2, Requests: 3, RequestsBefore: 1},
		{Errors: 2, Requests: 4, RequestsBefore: 1},
		{Errors: 2, Requests: 2, RequestsBefore: 1},
		{},
	}
	path := writeFile(t, "c.ndjson", content)
	l := open(t, path)
	got, err := l.CountConjunctions(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Logs.CountConjunctions =\n%+v\nwant\n%+v", got, want)
	}
	x, err := NewIndex(context.Background(), open(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := x.CountConjunctions(context.Background(), q); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Index.CountConjunctions =\n%+v, %v\nwant\n%+v", got, err, want)
	}
	// Cut before the second error: it and the rest are not seen yet.
	cut := x.Until(ts("2026-11-20T14:02:15Z")).(correlate.ConjunctionCounter)
	got, err = cut.CountConjunctions(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got[3] != (correlate.ConjunctionCount{Errors: 1, Requests: 1, RequestsBefore: 1}) {
		t.Errorf("cut view aws ∧ /.fn/* = %+v; want 1 error of 1 request, 1 request before", got[3])
	}
	// The same lines written out of time order: the index cannot read
	// only the query's time range, and must still count the same.
	rev := strings.Split(strings.TrimSpace(content), "\n")
	slices.Reverse(rev)
	x, err = NewIndex(context.Background(), open(t, writeFile(t, "rev.ndjson", strings.Join(rev, "\n")+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := x.CountConjunctions(context.Background(), q); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Index.CountConjunctions, lines out of order =\n%+v, %v\nwant\n%+v", got, err, want)
	}
}

func TestCountConjunctionsTooManyConditions(t *testing.T) {
	l := open(t, writeFile(t, "c.ndjson", lines(`{"@timestamp":"2026-11-20T14:00:30Z","service.name":"edge","http.response.status_code":200}`)))
	var conj []correlate.Condition
	for i := range maxConditions + 1 {
		conj = append(conj, correlate.Condition{Field: correlate.FieldHost, Value: time.Duration(i).String()})
	}
	_, err := l.CountConjunctions(context.Background(), correlate.ConjunctionQuery{Service: "edge", Conjunctions: [][]correlate.Condition{conj},
		From: ts("2026-11-20T14:00:00Z"), To: ts("2026-11-20T14:05:00Z")})
	if err == nil {
		t.Fatal("want an error past the condition bound")
	}
}
