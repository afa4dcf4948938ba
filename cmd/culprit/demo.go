package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/culprithq/culprit/escalate/report"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/simulate"
)

const demoUsage = "demo [--out DIR] [--seed N]"

// cmdDemo simulates the Friday story, correlates it from the written files
// exactly as `culprit correlate` would, and leaves everything in DIR.
func cmdDemo(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("demo", demoUsage, env.stderr)
	out := fs.String("out", "culprit-demo", "directory for the generated logs, deploys, tickets and reports")
	seed := fs.Int64("seed", 1, "simulation seed; the same seed gives the same files")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("demo: create output directory: %w", err)
	}
	sim := simulate.Config{Seed: *seed, Shape: simulate.ShapeFriday, Rollback: 5*time.Hour + 10*time.Minute}
	fmt.Fprintf(env.stderr, "simulating the Friday incident into %s ...\n", *out)
	run, err := simulate.WriteFiles(ctx, *out, sim)
	if err != nil {
		return fmt.Errorf("demo: simulate: %w", err)
	}
	in := fileInputs{
		logs:    filepath.Join(*out, "logs.ndjson.gz"),
		deploys: filepath.Join(*out, "deploys.json"),
		tickets: filepath.Join(*out, "tickets.json"),
	}
	// The simulated CRM's customers file names the customers and their
	// tiers, so the report says who is affected, not just how many.
	cfg := rules.Default()
	cfg.Customers.File = filepath.Join(*out, simulate.CustomersFile)
	res, err := correlateFiles(ctx, env.stderr, in, cfg)
	if err != nil {
		return fmt.Errorf("demo: correlate: %w", err)
	}
	var js, txt bytes.Buffer
	if err := report.JSON(&js, res); err != nil {
		return err
	}
	if err := report.Text(&txt, res); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"report.json": js.Bytes(), "report.txt": txt.Bytes()} {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			return fmt.Errorf("demo: write %s: %w", name, err)
		}
	}
	if _, err := env.stdout.Write(txt.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "\nThe simulation wrote %d log lines, %d deploys, %d tickets and %d customers. Everything is in %s:\n",
		run.Docs, len(run.Deploys), len(run.Tickets), len(run.Customers), *out)
	fmt.Fprintf(env.stdout, "  logs.ndjson.gz deploys.json tickets.json customers.csv truth.json report.json report.txt\n")
	fmt.Fprintf(env.stdout, "Re-run the analysis yourself (or with bin/culprit after make build):\n  go run ./cmd/culprit correlate --logs %s --deploys %s --tickets %s --customers %s\n",
		in.logs, in.deploys, in.tickets, cfg.Customers.File)
	return nil
}
