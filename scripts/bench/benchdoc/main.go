// Command benchdoc assembles BENCHMARKS.md from the outputs of
// scripts/bench/regen.sh (`make bench`): it turns each benchmark's raw output
// into a Markdown fragment, draws the plots, and splices the fragments into
// the document between its <!-- bench:NAME --> markers.
//
// Hand-written prose lives outside the markers and is never touched; a region
// whose fragment is absent keeps its content, so a partial run (BENCH_ONLY)
// never erases figures it did not regenerate.
//
//	benchdoc splice -doc BENCHMARKS.md -fragments .bench/fragments
//	benchdoc wrap -step corpus -seconds 2160 -command '...' < body.md > fragment.md
//	benchdoc micro < gobench.txt
//	benchdoc corpus -json corpus.json -md corpus.md -plots docs/bench -doc BENCHMARKS.md
//
// Run `benchdoc help` for every subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchdoc:", err)
		}
		os.Exit(1)
	}
}

// subcommand is one of benchdoc's verbs.
type subcommand struct {
	usage string
	run   func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// filter adapts a formatter that reads one benchmark's raw output on stdin
// and writes its Markdown body on stdout, taking no flags.
func filter(f func(in io.Reader, out io.Writer) error) func(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
	return func(_ context.Context, args []string, stdin io.Reader, stdout, _ io.Writer) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected arguments %q: the raw output comes on stdin", args)
		}
		return f(stdin, stdout)
	}
}

var subcommands = map[string]subcommand{
	"splice": {"splice -doc FILE -fragments DIR [-out FILE]: put each DIR/NAME.md between the doc's NAME markers",
		func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return cmdSplice(args, stdout, stderr)
		}},
	"wrap": {"wrap -step NAME [-seconds S] [-command CMD] < body: prefix the body with when, where and how it was made",
		func(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
			return cmdWrap(args, stdin, stdout, stderr)
		}},
	"micro": {"micro < go-test-bench-output: the speed and memory targets table", filter(formatMicro)},
	"big":   {"big < go-test-v-output: the 1 GB RSS table (TestBigFileRSS, both runs)", filter(formatBig)},
	"tcpd":  {"tcpd < go-test-v-output: the TCPD accuracy table (TestTCPDDefaults)", filter(formatTCPD)},
	"bursty": {"bursty < go-test-v-output: the false alarms table (TestDetectBurstyBaselineRarelyFires, TestDetectStationaryNeverFires)",
		filter(formatBursty)},
	"intake":    {"intake < go-test-bench-output: the intake load table (BenchmarkIntakeLoadSQLite)", filter(formatIntake)},
	"slowload":  {"slowload < go-test-bench-output: the slow-connection table (BenchmarkServeSlowClients)", filter(formatSlowLoad)},
	"loghub":    {"loghub < run.sh-output: the loghub-2k Grouping Accuracy table (../shared/bench/loghub/run.sh)", filter(formatLoghub)},
	"retention": {"retention < go-test-bench-output: the store size table (BenchmarkStoreQuarter)", filter(formatRetention)},
	"seasonal":  {"seasonal < go-test-v-output: false findings per week with and without seasonality (TestSeasonalBaselines)", filter(formatSeasonal)},
	"scale":     {"scale < go-test-bench-output: memory and CPU of one evaluation by lookback (BenchmarkLargestSetting*)", filter(formatScale)},
	"es5m": {"es5m -warm FILE -cold FILE: the Elasticsearch benchmark table (BenchmarkCorrelateES outputs)",
		func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return cmdES5M(args, stdout, stderr)
		}},
	"es5m-requests": {"es5m-requests < debug-log: took and latency per request kind (CULPRIT_BENCH_ES_DEBUG=1)", filter(formatESRequests)},
	"simulate": {"simulate -out DIR [-seed N -start T -duration D -onset D -rollback D -peak N]: write a simulated run to files",
		func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return cmdSimulate(ctx, args, stdout, stderr)
		}},
	"e2e": {"e2e DIR...: the detection delay table; each DIR holds truth.json and backtest.json",
		func(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
			return cmdE2E(args, stdout)
		}},
	"ruptures": {"ruptures -results FILE -tables FILE -plots DIR -doc FILE: the ruptures tables and the F1-against-time plot",
		func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return cmdRuptures(args, stdout, stderr)
		}},
	"corpus": {"corpus -json FILE [-md FILE] -plots DIR -doc FILE: the corpus tables and plots",
		func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return cmdCorpus(args, stdout, stderr)
		}},
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no subcommand")
		}
		return nil
	}
	c, ok := subcommands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	if err := c.run(ctx, args[1:], stdin, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return nil
}

func usage(w io.Writer) {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: benchdoc SUBCOMMAND [flags]\n\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s\n", subcommands[n].usage)
	}
	io.WriteString(w, b.String())
}
