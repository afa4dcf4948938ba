package elasticsearch

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

// BenchmarkCorrelateES runs one whole correlation over six hours of an
// index already loaded with `culprit simulate --es` (which prints what it
// indexed), and reports Elasticsearch's own time ("took") and the number of
// requests per run: the budget is 2 s of Elasticsearch time and 20 requests.
//
//	culprit simulate --es URL --index-prefix bench5m- --peak-per-min 15000 --seed 7
//	CULPRIT_BENCH_ES_URL=URL CULPRIT_BENCH_ES_INDEX='bench5m-*' go test -run '^$' -bench CorrelateES ./sources/elasticsearch/
//
// A loaded index that nobody writes to keeps its caches (filter bitsets,
// global ordinals) from one run to the next; a live one loses them for its
// newest segments at every refresh and for merged ones at every merge.
// CULPRIT_BENCH_ES_COLD=1 clears the index's caches before each run
// (outside the timer and the counts) to measure that case.
// CULPRIT_BENCH_ES_DEBUG=1 logs every request's op and took.
func BenchmarkCorrelateES(b *testing.B) {
	url, index := os.Getenv("CULPRIT_BENCH_ES_URL"), os.Getenv("CULPRIT_BENCH_ES_INDEX")
	if url == "" || index == "" {
		b.Skip("set CULPRIT_BENCH_ES_URL and CULPRIT_BENCH_ES_INDEX to an index loaded by 'culprit simulate --es'")
	}
	ctx := context.Background()
	cfg := rules.Default()
	var logger *slog.Logger
	if os.Getenv("CULPRIT_BENCH_ES_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	src, err := New(Config{URLs: []string{url}, Index: index, Fields: cfg.Fields, Timeout: time.Minute, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	from, to, err := src.Range(ctx)
	if err != nil {
		b.Fatal(err)
	}
	w, err := correlate.NewWindow(from, to.Add(time.Millisecond), cfg.Correlate.Bucket.D())
	if err != nil {
		b.Fatal(err)
	}
	cold := os.Getenv("CULPRIT_BENCH_ES_COLD") != ""
	var findings int
	before := src.Stats()
	for b.Loop() {
		if cold {
			b.StopTimer()
			if _, err := src.es.Indices.ClearCache().Index(index).Do(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		res, err := correlate.Run(ctx, src, correlate.Input{Window: w}, cfg.Correlate)
		if err != nil {
			b.Fatal(err)
		}
		findings = len(res.Findings)
	}
	st := src.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(st.Requests-before.Requests)/n, "requests/op")
	b.ReportMetric(float64((st.Took-before.Took).Milliseconds())/n, "es-took-ms/op")
	b.ReportMetric(float64(findings), "findings")
}
