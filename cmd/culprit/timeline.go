package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/culprithq/culprit/escalate/store"
	"github.com/culprithq/culprit/escalate/timeline"
	"github.com/culprithq/culprit/rules"
)

const timelineUsage = "timeline INCIDENT (--config FILE | --store DIR) [--format md|json|csv|html]"

// cmdTimeline exports an incident's timeline for the review. It reads the
// daemon's store directly (SQLite in WAL mode lets it read while the daemon
// writes), so it works on a copy of the data directory too.
func cmdTimeline(ctx context.Context, env *environ, args []string) error {
	fl := newFlags("timeline", timelineUsage, env.stderr)
	cfgPath := fl.String("config", "", "the daemon's configuration file: its store.dir is read")
	dir := fl.String("store", "", "the daemon's data directory, instead of --config")
	format := fl.String("format", "md", "output format: md, json, csv or html")
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
	switch {
	case *dir != "" && *cfgPath != "":
		return usagef("timeline: give --config or --store, not both")
	case *cfgPath != "":
		cfg, err := rules.LoadWith(*cfgPath, env.getenv)
		if err != nil {
			return err
		}
		*dir = cfg.Store.Dir
	case *dir == "":
		fl.Usage()
		return usagef("timeline: --config or --store is required")
	}
	st, err := store.OpenExisting(ctx, *dir, time.Now)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	defer st.Close()
	tl, err := timeline.Load(ctx, st, id, time.Now())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("timeline: no incident %q in %s", id, *dir)
	}
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return tl.Write(env.stdout, f)
}
