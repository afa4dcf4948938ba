package elasticsearch

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
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
