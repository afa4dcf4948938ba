package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/culprithq/culprit/sources/simulate"
)

// cmdSimulate writes one simulated run to files. `culprit simulate` only
// writes to Elasticsearch, and `culprit demo` fixes the traffic and has no
// rollback; the end-to-end delay table needs the run of TestServeFridayES
// (15,000 requests a minute, a rollback) on the file source, where
// `culprit backtest` replays it without a cluster.
func cmdSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for logs.ndjson.gz, deploys.json, tickets.json and truth.json")
	seed := fs.Int64("seed", 1, "simulation seed")
	shape := fs.String("shape", string(simulate.ShapeFriday), "incident shape")
	start := fs.String("start", "", "simulated start, RFC 3339 (default: the simulator's)")
	duration := fs.Duration("duration", 0, "simulated span (default: the simulator's, 6h)")
	onset := fs.Duration("onset", 0, "the incident's onset after the start (default 4h)")
	rollback := fs.Duration("rollback", 0, "a rollback this long after the start (default none)")
	peak := fs.Float64("peak", 0, "requests per minute at the diurnal peak (default: the simulator's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("simulate: want -out DIR and no arguments")
	}
	cfg := simulate.Config{Seed: *seed, Shape: simulate.Shape(*shape), Duration: *duration, Onset: *onset,
		Rollback: *rollback, PeakPerMin: *peak}
	if *start != "" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			return fmt.Errorf("simulate: -start %q: not RFC 3339", *start)
		}
		cfg.Start = t
	}
	began := time.Now()
	run, err := simulate.WriteFiles(ctx, *out, cfg)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %d documents to %s in %s; onset %s\n", run.Docs, *out,
		time.Since(began).Round(time.Millisecond), run.Truth.Onset.Format(time.RFC3339))
	return err
}
