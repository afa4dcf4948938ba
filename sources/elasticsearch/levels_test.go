package elasticsearch

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// opRecorder is a slog handler that keeps the op of every request record.
type opRecorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *opRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *opRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *opRecorder) WithGroup(string) slog.Handler            { return r }
func (r *opRecorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "elasticsearch request" {
		return nil
	}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "op" {
			r.mu.Lock()
			r.ops = append(r.ops, a.Value.String())
			r.mu.Unlock()
		}
		return true
	})
	return nil
}

// TestTrafficLateLevel covers the errors whose message comes from the
// second message field when that field is a keyword (text with a keyword
// sub-field, as dynamic mapping makes it): they are read from doc values,
// and when there are more than may be read, counted with a composite after
// all. Both ways must give the file source's Traffic, and a Scope that
// finds those errors again.
func TestTrafficLateLevel(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	set := loadDynamic(t, c)
	w := window(t, handFrom, handTo, time.Minute)
	logs := fileLogs(t, set.file, time.Minute)
	want, err := logs.Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	q := correlate.ScopeQuery{Service: "api", Messages: []string{"payment declined for order <*>"},
		From: ts(handFrom), To: ts(handTo), Window: w}
	wantScope, err := logs.Scope(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		fetch     int
		composite bool // whether the composite takes over
	}{
		{"read from doc values", maxFetch, false},
		{"more than may be read", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &opRecorder{}
			src := c.source(t, set.index, farFuture, func(c *Config) { c.Logger = slog.New(rec) })
			src.levelFetch = tc.fetch
			got, err := src.Traffic(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			report(t, "traffic", diffTraffic(want, got))
			sc, err := src.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			report(t, "scope", diffScope(wantScope, sc))

			rec.mu.Lock()
			ops := slices.Clone(rec.ops)
			rec.mu.Unlock()
			if !slices.Contains(ops, "read errors by message") {
				t.Errorf("no request read the second message field's errors from doc values: %q", ops)
			}
			if got := slices.Contains(ops, "count errors by message"); got != tc.composite {
				t.Errorf("composite over the second message field: %v, want %v (requests %q)", got, tc.composite, ops)
			}
		})
	}
}
