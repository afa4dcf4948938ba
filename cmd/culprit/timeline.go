package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/culprithq/culprit/escalate/store"
	"github.com/culprithq/culprit/escalate/timeline"
	"github.com/culprithq/culprit/rules"
)

const timelineUsage = "timeline INCIDENT (--config FILE | --store DIR) [--format md|json|csv|html] [--customers-csv FILE]"

// cmdTimeline exports an incident's timeline for the review. It reads the
// daemon's store directly (SQLite in WAL mode lets it read while the daemon
// writes), so it works on a copy of the data directory too.
func cmdTimeline(ctx context.Context, env *environ, args []string) error {
	fl := newFlags("timeline", timelineUsage, env.stderr)
	cfgPath := fl.String("config", "", "the daemon's configuration file: its store.dir is read")
	dir := fl.String("store", "", "the daemon's data directory, instead of --config")
	format := fl.String("format", "md", "output format: md, json, csv or html")
	customersCSV := fl.String("customers-csv", "", "also write \"What to tell customers\" to FILE as CSV")
	// The incident comes first, as people type it; flags may follow.
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if id == "" {
		fl.Usage()
		return usagef("timeline: which incident? (ids are listed at /incidents and /api/v1/incidents)")
	}
	f, err := timeline.ParseFormat(*format)
	if err != nil {
		return usagef("timeline: --format: %v", err)
	}
	st, cfg, err := openDaemonStore(ctx, env, fl, "timeline", *cfgPath, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	names, err := customerDirectory(ctx, &cfg, st)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	tl, err := timeline.LoadReview(ctx, st, id, time.Now(), reviewOptions(&cfg, names))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("timeline: no incident %q in %s", id, cfg.Store.Dir)
	}
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	if *customersCSV != "" {
		if err := writeCustomersCSV(tl, *customersCSV); err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
	}
	return tl.Write(env.stdout, f)
}

// writeCustomersCSV writes the customers table to path.
func writeCustomersCSV(tl timeline.Timeline, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--customers-csv: %w", err)
	}
	if err := tl.CustomersCSV(f); err != nil {
		f.Close()
		return fmt.Errorf("--customers-csv %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--customers-csv %s: %w", path, err)
	}
	return nil
}

// reviewOptions is the review's threshold alert and customer names from
// the configuration (the defaults with --store alone).
func reviewOptions(cfg *rules.Config, dir timeline.Customers) timeline.ReviewOptions {
	return timeline.ReviewOptions{Threshold: timeline.Threshold{Share: cfg.Review.AlertErrorShare, For: cfg.Review.AlertFor.D()},
		Customers: dir}
}

// openDaemonStore opens the daemon's store for a command that reads it
// (timeline, handover), from --config (whose store.dir it reads) or
// --store; with --store alone the configuration is the default, its
// store.dir set to the directory.
func openDaemonStore(ctx context.Context, env *environ, fl *flag.FlagSet, cmd, cfgPath, dir string) (*store.Store, rules.Config, error) {
	cfg := rules.Default()
	switch {
	case dir != "" && cfgPath != "":
		return nil, cfg, usagef("%s: give --config or --store, not both", cmd)
	case cfgPath != "":
		var err error
		if cfg, err = rules.LoadWith(cfgPath, env.getenv); err != nil {
			return nil, cfg, err
		}
	case dir == "":
		fl.Usage()
		return nil, cfg, usagef("%s: --config or --store is required", cmd)
	default:
		cfg.Store.Dir = dir
	}
	st, err := store.OpenExisting(ctx, cfg.Store.Dir, time.Now)
	if err != nil {
		return nil, cfg, fmt.Errorf("%s: %w", cmd, err)
	}
	return st, cfg, nil
}
