package elasticsearch

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
)

// TestCountConjunctions runs the filters aggregation against the real
// cluster and holds it to the file source's counts of the same documents.
func TestCountConjunctions(t *testing.T) {
	c := testCluster(t)
	docs := []string{
		// Before onset.
		`{"@timestamp":"2026-11-20T14:00:30Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","organization.id":"7","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:01:30Z","service.name":"edge","cloud.provider":"gcp","url.path":"/","http.response.status_code":500,"error.message":"disk full"}`,
		`{"@timestamp":"2026-11-20T14:01:40Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","organization.id":"7","http.response.status_code":502,"error.message":"fn 9 failed"}`,
		// The episode.
		`{"@timestamp":"2026-11-20T14:02:10Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","organization.id":"7","http.response.status_code":502,"error.message":"fn 1 failed"}`,
		`{"@timestamp":"2026-11-20T14:02:20Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/b/run","organization.id":"8","http.response.status_code":502,"error.message":"fn 2 failed"}`,
		`{"@timestamp":"2026-11-20T14:02:30Z","service.name":"edge","cloud.provider":"aws","url.path":"/cart","organization.id":"7","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:02:40Z","service.name":"edge","cloud.provider":"gcp","url.path":"/.fn/a","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:02:50Z","service.name":"edge","url.path":"/.fnord","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:03:00Z","service.name":"web","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":502,"error.message":"fn 3 failed"}`,
		// After To.
		`{"@timestamp":"2026-11-20T14:05:00Z","service.name":"edge","cloud.provider":"aws","url.path":"/.fn/a","http.response.status_code":502,"error.message":"fn 4 failed"}`,
	}
	ix := indexName(t, "")
	c.createIndex(t, ix, parityMapping)
	c.load(t, ix, docs)
	src := c.source(t, ix)

	aws := correlate.Condition{Field: correlate.FieldProvider, Value: "aws"}
	fn := correlate.Condition{Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true}
	org := correlate.Condition{Field: correlate.FieldCustomer, Value: "7"}
	region := correlate.Condition{Field: correlate.FieldRegion, Value: "r1"}
	q := correlate.ConjunctionQuery{
		Service: "edge", Messages: []string{template.Mask("fn 1 failed")},
		Before: ts("2026-11-20T14:00:00Z"), From: ts("2026-11-20T14:02:00Z"), To: ts("2026-11-20T14:05:00Z"),
		Conjunctions: [][]correlate.Condition{nil, {aws}, {fn}, {aws, fn}, {aws, fn, org}, {region}},
	}
	want := []correlate.ConjunctionCount{
		{Errors: 2, Requests: 5, ErrorsBefore: 1, RequestsBefore: 3},
		{Errors: 2, Requests: 3, ErrorsBefore: 1, RequestsBefore: 2},
		{Errors: 2, Requests: 3, ErrorsBefore: 1, RequestsBefore: 2},
		{Errors: 2, Requests: 2, ErrorsBefore: 1, RequestsBefore: 2},
		{Errors: 1, Requests: 1, ErrorsBefore: 1, RequestsBefore: 2},
		{},
	}
	got, err := src.CountConjunctions(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Elasticsearch counts =\n%+v\nwant\n%+v", got, want)
	}
	fileGot, err := fileLogs(t, docs, time.Minute).CountConjunctions(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fileGot, got) {
		t.Errorf("file counts =\n%+v\nElasticsearch\n%+v", fileGot, got)
	}

	// More conjunctions than one search carries: split, counted alike.
	many := q
	many.Conjunctions = nil
	for range maxConjunctionsPerSearch + 3 {
		many.Conjunctions = append(many.Conjunctions, []correlate.Condition{aws, fn})
	}
	got, err = src.CountConjunctions(context.Background(), many)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if g != want[3] {
			t.Fatalf("conjunction %d of %d: %+v; want %+v", i, len(got), g, want[3])
		}
	}
}
