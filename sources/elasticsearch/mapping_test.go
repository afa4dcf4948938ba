package elasticsearch

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// TestMappingCachedUntilIndexAppears: the field mappings are read once and
// reused while the pattern matches the same indices; a new daily index
// (with its own mapping) is read before it is searched, and so is a
// mapping older than mappingMaxAge.
func TestMappingCachedUntilIndexAppears(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	w := window(t, handFrom, handTo, time.Minute)
	base := indexName(t, "")
	day1, day2 := handDocs(true, false)
	c.createIndex(t, base+"-2026.11.19", explicitMapping)
	c.load(t, base+"-2026.11.19", day1)

	var logs strings.Builder
	now := ts("2030-01-01T00:00:00Z")
	s := c.source(t, base+"-*", func(cfg *Config) {
		cfg.Now = func() time.Time { return now }
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	reads := func() int { return strings.Count(logs.String(), `op="read field mappings"`) }
	for range 3 {
		if _, err := s.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if got := reads(); got != 1 {
		t.Fatalf("three reads of unchanged indices read the mappings %d times, want once", got)
	}

	c.createIndex(t, base+"-2026.11.20", explicitMapping)
	c.load(t, base+"-2026.11.20", day2)
	got, err := s.Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if n := reads(); n != 2 {
		t.Fatalf("after a new index the mappings were read %d times in all, want twice", n)
	}
	want, err := c.source(t, base+"-*", farFuture).Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		report(t, "traffic after a new index", diffTraffic(want, got))
	}

	now = now.Add(mappingMaxAge)
	if _, err := s.Traffic(ctx, w); err != nil {
		t.Fatal(err)
	}
	if n := reads(); n != 3 {
		t.Fatalf("a mapping %s old was reused: %d reads in all, want 3", mappingMaxAge, n)
	}
}

// TestMappingWithoutResolvePrivilege: credentials that may search but not
// resolve the pattern (403) still read traffic, reading the mappings at
// every call as before the cache, and say why once.
func TestMappingWithoutResolvePrivilege(t *testing.T) {
	c := testCluster(t)
	set := loadExplicit(t, c)
	u := proxy(t, c, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/_resolve/index/") {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":{"root_cause":[{"type":"security_exception","reason":"action [indices:admin/resolve/index] is unauthorized"}],"type":"security_exception","reason":"action [indices:admin/resolve/index] is unauthorized"},"status":403}`)
			return true
		}
		return false
	})
	pc := c
	pc.url = u
	var logs strings.Builder
	s := pc.source(t, set.index, farFuture, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	w := window(t, handFrom, handTo, time.Minute)
	ctx := context.Background()
	var got *correlate.Traffic
	for range 2 {
		var err error
		if got, err = s.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	want, err := set.src.Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "traffic without the resolve privilege", diffTraffic(want, got))
	if n := strings.Count(logs.String(), `op="read field mappings"`); n != 2 {
		t.Errorf("mappings read %d times in two calls, want 2", n)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "grant view_index_metadata") {
		t.Errorf("%d warnings, want 1 naming view_index_metadata:\n%s", n, logs.String())
	}
}
