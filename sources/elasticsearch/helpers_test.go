package elasticsearch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	es8 "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/file"

	"github.com/culprithq/culprit/sources/elasticsearch/estest"
)

// These tests run against a real Elasticsearch, never canned answers:
// the point is to prove the queries, and only a cluster can.

// cluster is the test cluster's address and credentials.
type cluster struct {
	url, user, pass string
}

func testCluster(t testing.TB) cluster {
	t.Helper()
	u := estest.URL(t)
	return cluster{url: u, user: os.Getenv("CULPRIT_TEST_ES_USERNAME"), pass: os.Getenv("CULPRIT_TEST_ES_PASSWORD")}
}

func (c cluster) admin(t testing.TB) *es8.Client {
	t.Helper()
	es, err := es8.NewClient(es8.Config{Addresses: []string{c.url}, Username: c.user, Password: c.pass})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// indexName is unique per test and run, so that tests never share data
// and a crashed run's leftovers never match another run's pattern.
func indexName(t testing.TB, suffix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(base) > 60 {
		base = base[:60]
	}
	name := "culprit-test-" + strings.Trim(base, "-") + "-" + hex.EncodeToString(b[:])
	if suffix != "" {
		name += "-" + suffix
	}
	return name
}

// createIndex creates name with body (settings and mappings JSON, or "")
// and deletes it when the test ends.
func (c cluster) createIndex(t testing.TB, name, body string) {
	t.Helper()
	es := c.admin(t)
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	res, err := es.Indices.Create(name, es.Indices.Create.WithBody(r))
	if err != nil {
		t.Fatalf("create index %s: %v", name, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("create index %s: %s: %s", name, res.Status(), b)
	}
	t.Cleanup(func() {
		res, err := es.Indices.Delete([]string{name})
		if err != nil {
			t.Errorf("delete index %s: %v", name, err)
			return
		}
		defer res.Body.Close()
		if res.IsError() {
			b, _ := io.ReadAll(res.Body)
			t.Errorf("delete index %s: %s: %s", name, res.Status(), b)
		}
	})
}

// load bulk-indexes docs (raw JSON objects) into index and refreshes it.
func (c cluster) load(t testing.TB, index string, docs []string) {
	t.Helper()
	es := c.admin(t)
	var mu sync.Mutex
	var failures []string
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client: es, Index: index, NumWorkers: 2, FlushBytes: 2 << 20,
		OnError: func(_ context.Context, err error) {
			mu.Lock()
			failures = append(failures, err.Error())
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range docs {
		err := bi.Add(ctx, esutil.BulkIndexerItem{
			Action: "index", Body: strings.NewReader(d),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, err.Error())
					return
				}
				failures = append(failures, r.Error.Type+": "+r.Error.Reason)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := bi.Stats(); st.NumFailed != 0 {
		t.Fatalf("bulk load into %s: %d of %d documents failed, e.g. %v", index, st.NumFailed, st.NumAdded, failures[:min(3, len(failures))])
	}
	res, err := es.Indices.Refresh(es.Indices.Refresh.WithIndex(index))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.IsError() {
		t.Fatalf("refresh %s: %s", index, res.Status())
	}
}

// source builds a Source on index with the test cluster's credentials.
func (c cluster) source(t testing.TB, index string, mod ...func(*Config)) *Source {
	t.Helper()
	cfg := Config{URLs: []string{c.url}, Index: index, Username: c.user, Password: c.pass, Fields: rules.Default().Fields}
	for _, f := range mod {
		f(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = 5 * time.Millisecond // keep retry tests quick
	return s
}

// fileLogs writes docs as NDJSON and opens them with the file source.
func fileLogs(t testing.TB, docs []string, step time.Duration) *file.Logs {
	t.Helper()
	return fileLogsWith(t, docs, step, rules.Default().Fields)
}

func fileLogsWith(t testing.TB, docs []string, step time.Duration, fields rules.Fields) *file.Logs {
	t.Helper()
	p := filepath.Join(t.TempDir(), "logs.ndjson")
	if err := os.WriteFile(p, []byte(strings.Join(docs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := file.OpenLogs(p, fields, step)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func window(t testing.TB, from, to string, step time.Duration) correlate.Window {
	t.Helper()
	w, err := correlate.NewWindow(ts(from), ts(to), step)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// diffTraffic describes every difference between two Traffic answers,
// service by service and message by message, so that a parity failure
// says what differs rather than "not equal".
func diffTraffic(want, got *correlate.Traffic) []string {
	var out []string
	if !reflect.DeepEqual(want.Window, got.Window) {
		out = append(out, fmt.Sprintf("window: want %+v, got %+v", want.Window, got.Window))
	}
	if want.Complete != got.Complete {
		out = append(out, fmt.Sprintf("complete: want %d, got %d", want.Complete, got.Complete))
	}
	ws, gs := map[string]correlate.ServiceTraffic{}, map[string]correlate.ServiceTraffic{}
	var names []string
	for _, s := range want.Services {
		ws[s.Service] = s
		names = append(names, s.Service)
	}
	for _, s := range got.Services {
		gs[s.Service] = s
		if _, ok := ws[s.Service]; !ok {
			names = append(names, s.Service)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		w, okw := ws[n]
		g, okg := gs[n]
		if !okw || !okg {
			out = append(out, fmt.Sprintf("service %q: in want %v, in got %v", n, okw, okg))
			continue
		}
		if !reflect.DeepEqual(w.Requests, g.Requests) {
			out = append(out, fmt.Sprintf("service %q requests: want %v, got %v", n, w.Requests, g.Requests))
		}
		if !reflect.DeepEqual(w.Errors, g.Errors) {
			out = append(out, fmt.Sprintf("service %q errors: want %v, got %v", n, w.Errors, g.Errors))
		}
		wm, gm := map[string]correlate.MessageCounts{}, map[string]correlate.MessageCounts{}
		var msgs []string
		for _, m := range w.Messages {
			wm[m.Message] = m
			msgs = append(msgs, m.Message)
		}
		for _, m := range g.Messages {
			gm[m.Message] = m
			if _, ok := wm[m.Message]; !ok {
				msgs = append(msgs, m.Message)
			}
		}
		for _, m := range msgs {
			a, oka := wm[m]
			b, okb := gm[m]
			switch {
			case !oka || !okb:
				out = append(out, fmt.Sprintf("service %q message %q: in want %v, in got %v", n, m, oka, okb))
			case !reflect.DeepEqual(a.Counts, b.Counts):
				out = append(out, fmt.Sprintf("service %q message %q counts: want %v, got %v", n, m, a.Counts.Dense(), b.Counts.Dense()))
			case !reflect.DeepEqual(a.Examples, b.Examples):
				out = append(out, fmt.Sprintf("service %q message %q examples: want %q, got %q", n, m, a.Examples, b.Examples))
			}
		}
		if len(w.Messages) == len(g.Messages) {
			for i := range w.Messages {
				if w.Messages[i].Message != g.Messages[i].Message {
					out = append(out, fmt.Sprintf("service %q: messages in a different order at %d", n, i))
					break
				}
			}
		}
	}
	if len(out) == 0 && !reflect.DeepEqual(want, got) {
		out = append(out, "traffic differs (order or nil-versus-empty)")
	}
	return out
}

func diffScope(want, got *correlate.Scope) []string {
	var out []string
	for _, f := range correlate.ScopeFields {
		if !reflect.DeepEqual(want.Errors[f], got.Errors[f]) {
			out = append(out, fmt.Sprintf("errors[%s]: want %v, got %v", f, want.Errors[f], got.Errors[f]))
		}
		if !reflect.DeepEqual(want.Requests[f], got.Requests[f]) {
			out = append(out, fmt.Sprintf("requests[%s]: want %v, got %v", f, want.Requests[f], got.Requests[f]))
		}
	}
	if !reflect.DeepEqual(want.HostErrors, got.HostErrors) {
		out = append(out, fmt.Sprintf("host errors: want %v, got %v", want.HostErrors, got.HostErrors))
	}
	if !reflect.DeepEqual(want.HostRequests, got.HostRequests) {
		out = append(out, fmt.Sprintf("host requests: want %v, got %v", want.HostRequests, got.HostRequests))
	}
	if !reflect.DeepEqual(want.Samples, got.Samples) {
		out = append(out, fmt.Sprintf("samples: want %+v, got %+v", want.Samples, got.Samples))
	}
	if len(out) == 0 && !reflect.DeepEqual(want, got) {
		out = append(out, "scope differs (nil-versus-empty)")
	}
	return out
}

func report(t *testing.T, what string, diffs []string) {
	t.Helper()
	if len(diffs) == 0 {
		return
	}
	if len(diffs) > 30 {
		diffs = append(diffs[:30], fmt.Sprintf("… and %d more", len(diffs)-30))
	}
	t.Errorf("%s differs from the file source:\n  %s", what, strings.Join(diffs, "\n  "))
}

// scopeRequests runs src's Scope for q, reports how it differs from want,
// and returns how many requests it sent.
func scopeRequests(t *testing.T, src *Source, q correlate.ScopeQuery, want *correlate.Scope) int64 {
	t.Helper()
	before := src.Stats().Requests
	got, err := src.Scope(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "scope", diffScope(want, got))
	return src.Stats().Requests - before
}
