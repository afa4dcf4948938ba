package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/culprithq/culprit/sources/elasticsearch"
	"github.com/culprithq/culprit/sources/simulate"
)

const simulateUsage = "simulate --es URL [--index-prefix logs-] [--shape SHAPE] [--seed N] [--start T] [--duration 6h] [--peak-per-min N] [--out DIR]"

// cmdSimulate writes a simulated run into Elasticsearch through the bulk
// API, and the run's deploys, tickets and ground truth into DIR, so the
// Elasticsearch path can be tried, tested and benchmarked on known data.
func cmdSimulate(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("simulate", simulateUsage, env.stderr)
	esURL := fs.String("es", "", "Elasticsearch URL(s), comma-separated (credentials from CULPRIT_ES_USERNAME/CULPRIT_ES_PASSWORD or CULPRIT_ES_API_KEY)")
	prefix := fs.String("index-prefix", "logs-", "documents go to PREFIX + the day, e.g. logs-2026.11.20")
	shape := fs.String("shape", string(simulate.ShapeFriday), "incident shape: "+shapeNames())
	seed := fs.Int64("seed", 1, "simulation seed")
	start := fs.String("start", "", "simulated start time, RFC 3339 (default: Friday 2026-11-20T12:00:00Z)")
	duration := fs.Duration("duration", 6*time.Hour, "simulated time span")
	peak := fs.Float64("peak-per-min", 0, "requests per minute at the diurnal peak (default: the simulator's)")
	out := fs.String("out", "culprit-sim", "directory for deploys.json, tickets.json and truth.json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *esURL == "" {
		fs.Usage()
		return usagef("simulate: --es is required")
	}
	sh := simulate.Shape(*shape)
	if !validShape(sh) {
		return usagef("simulate: unknown --shape %q (one of %s)", *shape, shapeNames())
	}
	st, err := parseTime("start", *start)
	if err != nil {
		return err
	}
	cfg := simulate.Config{Seed: *seed, Shape: sh, Start: st, Duration: *duration, PeakPerMin: *peak}
	w, err := elasticsearch.NewBulkWriter(elasticsearch.Config{
		URLs: strings.Split(*esURL, ","), Username: env.getenv("CULPRIT_ES_USERNAME"),
		Password: env.getenv("CULPRIT_ES_PASSWORD"), APIKey: env.getenv("CULPRIT_ES_API_KEY"),
	}, *prefix)
	if err != nil {
		return err
	}
	var buf []byte
	began := time.Now()
	run, err := simulate.Generate(ctx, cfg, func(d *simulate.Doc) error {
		buf = d.AppendJSON(buf[:0])
		return w.Add(ctx, d.Time, buf)
	})
	stats, cerr := w.Close(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("simulate: %w", cerr)
	}
	if err := simulate.WriteSidecars(*out, run); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	fmt.Fprintf(env.stdout, "indexed %d documents into %s* in %s; deploys, tickets and truth are in %s\n",
		stats.Indexed, *prefix, time.Since(began).Round(time.Millisecond), *out)
	return nil
}

func shapeNames() string {
	var s []string
	for _, sh := range simulate.Shapes() {
		s = append(s, string(sh))
	}
	return strings.Join(s, ", ")
}

func validShape(s simulate.Shape) bool {
	for _, sh := range simulate.Shapes() {
		if sh == s {
			return true
		}
	}
	return false
}
