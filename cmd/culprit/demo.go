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

const demoUsage = "demo [--out DIR] [--seed N] [--serve [--listen 127.0.0.1:8080] [--speed 60]]"

// cmdDemo simulates the Friday story, correlates it from the written files
// exactly as `culprit correlate` would, and leaves everything in DIR. With
// --serve it runs the daemon over the same Friday instead (demo_serve.go).
// What it is doing goes to stderr as it goes, so a first run that takes a
// minute is never silent; stdout carries only the report.
func cmdDemo(ctx context.Context, env *environ, args []string) error {
	return demo(ctx, env, args, nil)
}

// demo is cmdDemo; with --serve, ready receives the evidence pages'
// address once they are up (for the tests, which listen on port 0).
func demo(ctx context.Context, env *environ, args []string, ready chan<- string) error {
	fs := newFlags("demo", demoUsage, env.stderr)
	out := fs.String("out", "culprit-demo", "directory for the generated logs, deploys, tickets and reports")
	seed := fs.Int64("seed", 1, "simulation seed; the same seed gives the same files")
	serve := fs.Bool("serve", false, "run the daemon over the simulated Friday in accelerated time, with its evidence pages at --listen")
	listen := fs.String("listen", "127.0.0.1:8080", "with --serve: where the evidence pages are served, loopback only (they need no login)")
	speed := fs.Float64("speed", 60, "with --serve: simulated seconds per real second")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *serve {
		if err := checkDemoListen(*listen); err != nil {
			return err
		}
		if !(*speed > 0) || *speed > 1e6 {
			return usagef("demo: --speed %g: must be above 0 and at most 1000000", *speed)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("demo: create output directory: %w", err)
	}
	progress := func(format string, a ...any) { fmt.Fprintf(env.stderr, "demo: "+format+"\n", a...) }
	sim := simulate.Config{Seed: *seed, Shape: simulate.ShapeFriday, Rollback: 5*time.Hour + 10*time.Minute}
	progress("generating six hours of fleet traffic, deploys and tickets into %s …", *out)
	run, err := simulate.WriteFiles(ctx, *out, sim)
	if err != nil {
		return fmt.Errorf("demo: simulate: %w", err)
	}
	progress("generated %d log lines, %d deploys and %d tickets", run.Docs, len(run.Deploys), len(run.Tickets))
	if *serve {
		d := demoServe{dir: *out, run: run, listen: *listen, speed: *speed, lead: 20 * time.Minute, wall: time.Now}
		return d.serve(ctx, env, ready)
	}
	progress("correlating the logs with the deploys and tickets …")
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
	progress("writing report.json and report.txt …")
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
	fmt.Fprintf(env.stdout, "Watch the daemon catch it live, in the browser:\n  go run ./cmd/culprit demo --serve --out %s\n", *out)
	return nil
}
