package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/culprithq/culprit/escalate/handover"
	"github.com/culprithq/culprit/escalate/store"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/customers"
)

const handoverUsage = "handover (--config FILE | --store DIR) [--since 8h] [--until T] [--format text|json]"

// customerDirectory is the customer directory of the commands that read
// the daemon's store (handover, timeline), assembled as serve assembles
// its own: customers.file, overridden by the organizations the daemon
// synced from Zendesk. Without either it is empty and customers stay ids.
func customerDirectory(ctx context.Context, cfg *rules.Config, st *store.Store) (*customers.Directory, error) {
	dir := customers.New()
	if p := cfg.Customers.File; p != "" {
		d, err := customers.Load(p)
		if err != nil {
			return nil, fmt.Errorf("customers.file: %w", err)
		}
		dir = d
	}
	synced, err := st.Customers(ctx)
	if err != nil {
		return nil, err
	}
	dir.Put(synced...)
	return dir, nil
}

// newHandover is the daemon's shift rota from the configuration.
func newHandover(cfg *rules.Config, st handover.Store, dir handover.Customers, queued func(), log *slog.Logger) (*handover.Poster, error) {
	var shifts []handover.Shift
	for i := range cfg.Shifts {
		sh := &cfg.Shifts[i]
		sched, err := sh.Schedule()
		if err != nil {
			return nil, fmt.Errorf("shifts[%d]: %w", i, err)
		}
		shifts = append(shifts, handover.Shift{Name: sh.Name, Channel: sh.Channel, Start: sched})
	}
	return handover.New(handover.Config{Shifts: shifts, Store: st, Queued: queued, Logger: log,
		Options: handoverOptions(cfg, dir)})
}

func handoverOptions(cfg *rules.Config, dir handover.Customers) handover.Options {
	return handover.Options{EvidenceURL: func(id string) string { return evidenceURL(cfg, id) }, Customers: dir}
}

// cmdHandover prints the handover digest of the last --since on demand:
// the same digest the daemon posts at each shift boundary. Like timeline,
// it reads the daemon's store directly.
func cmdHandover(ctx context.Context, env *environ, args []string) error {
	fl := newFlags("handover", handoverUsage, env.stderr)
	cfgPath := fl.String("config", "", "the daemon's configuration file: its store.dir is read, and ui.external_url links the incidents")
	dir := fl.String("store", "", "the daemon's data directory, instead of --config")
	since := fl.Duration("since", 8*time.Hour, "how long before --until the shift began")
	until := fl.String("until", "", "the boundary, RFC 3339 (default: now): what a past handover said, as far as the store still knows it")
	format := fl.String("format", "text", "output format: text or json")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if err := checkFormat(*format, "text", "json"); err != nil {
		return err
	}
	if *since <= 0 {
		return usagef("handover: --since must be positive, got %s", *since)
	}
	end := time.Now()
	if *until != "" {
		t, err := parseTime("until", *until)
		if err != nil {
			return err
		}
		end = t
	}
	st, cfg, err := openDaemonStore(ctx, env, fl, "handover", *cfgPath, *dir)
	if err != nil {
		return err
	}
	defer st.Close()
	names, err := customerDirectory(ctx, &cfg, st)
	if err != nil {
		return err
	}
	h, err := handover.Build(ctx, st, end.Add(-*since), end, handoverOptions(&cfg, names))
	if err != nil {
		return err
	}
	if *format == "json" {
		return handover.JSON(env.stdout, h)
	}
	return handover.Text(env.stdout, h)
}
