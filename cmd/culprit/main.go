// Command culprit turns what support sees into evidence-backed pages: it
// correlates error-log series with deploys and tickets and explains what
// changed, where, and which deploy is to blame.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError marks a problem with the command line itself; it exits 2 so
// scripts can tell "you called me wrong" from "the work failed".
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "culprit:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const topUsage = `culprit finds what changed, who it hurts and which deploy caused it.

Usage:
  culprit correlate (--logs FILE | --es URL --index PATTERN) [--deploys FILE] [--tickets FILE] [--from T] [--to T] [--config FILE] [--format text|json]
  culprit changepoints --input FILE.csv [--format json|text]
  culprit demo [--out DIR]
  culprit simulate --es URL [--shape SHAPE] [--seed N] [--duration 6h] [--peak-per-min N]
  culprit serve --config FILE [--log-level info] [--log-format json|text]
  culprit backtest (--logs FILE | --es URL --index PATTERN) [--deploys FILE] [--tickets FILE] --from T --to T [--config FILE] [--lag D] [--format text|json]
  culprit timeline INCIDENT (--config FILE | --store DIR) [--format md|json|csv|html] [--customers-csv FILE]
  culprit handover (--config FILE | --store DIR) [--since 8h] [--until T] [--format text|json]
  culprit rules check [--resolve-secrets] FILE...
  culprit version

Run 'culprit COMMAND -h' for a command's flags.
`

// run is the whole program with its environment passed in, so tests can
// drive it exactly as a user would.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usagef("no command given")
	}
	env := &environ{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	err := dispatch(ctx, env, args)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, env *environ, args []string) error {
	stdout, stderr := env.stdout, env.stderr
	switch args[0] {
	case "correlate":
		return cmdCorrelate(ctx, env, args[1:])
	case "changepoints":
		return cmdChangepoints(ctx, env, args[1:])
	case "demo":
		return cmdDemo(ctx, env, args[1:])
	case "simulate":
		return cmdSimulate(ctx, env, args[1:])
	case "rules":
		return cmdRules(ctx, env, args[1:])
	case "serve":
		return cmdServe(ctx, env, args[1:])
	case "backtest":
		return cmdBacktest(ctx, env, args[1:])
	case "timeline":
		return cmdTimeline(ctx, env, args[1:])
	case "handover":
		return cmdHandover(ctx, env, args[1:])
	case "version", "--version":
		fmt.Fprintln(stdout, "culprit", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topUsage)
		return nil
	}
	fmt.Fprint(stderr, topUsage)
	return usagef("unknown command %q", args[0])
}

// environ is what a command may touch of the outside world.
type environ struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}
