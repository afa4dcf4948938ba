package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"

	"github.com/culprithq/culprit/rules"
)

const rulesUsage = "rules check [--resolve-secrets] FILE..."

// cmdRules groups the commands about configuration files; today only check.
func cmdRules(ctx context.Context, env *environ, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(env.stderr, "Usage: culprit %s\n", rulesUsage)
		return usagef("rules: no subcommand given (want: check)")
	}
	switch args[0] {
	case "check":
		return cmdRulesCheck(ctx, env, args[1:])
	case "help", "-h", "--help":
		fmt.Fprintf(env.stdout, "Usage: culprit %s\n", rulesUsage)
		return nil
	}
	fmt.Fprintf(env.stderr, "Usage: culprit %s\n", rulesUsage)
	return usagef("rules: unknown subcommand %q (want: check)", args[0])
}

// cmdRulesCheck validates configuration files the way promtool check
// config does: every problem of every file, one per line with its line
// number, so one run shows everything to fix. Secrets are checked for shape
// only unless --resolve-secrets, so a config can be checked on a laptop
// that has none of the production environment.
func cmdRulesCheck(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("rules check", rulesUsage, env.stderr)
	resolve := fs.Bool("resolve-secrets", false, "also resolve {env: …} and {file: …} secrets; report unset variables and unreadable files")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return usagef("rules check: no file given")
	}
	var getenv func(string) string
	if *resolve {
		getenv = env.getenv
	}
	bad := 0
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, warnings, err := rules.Check(f, getenv)
		var ce *rules.ConfigError
		switch {
		case errors.As(err, &ce):
			// Errors and warnings together, in file order.
			for _, l := range mergeProblems(ce.Problems, warnings) {
				fmt.Fprintf(env.stdout, "%s: %s\n", f, l)
			}
		case err != nil:
			fmt.Fprintf(env.stdout, "%s: %v\n", f, err)
		default:
			for _, w := range warnings {
				fmt.Fprintf(env.stdout, "%s: warning: %s\n", f, w.Error())
			}
			fmt.Fprintf(env.stdout, "%s: ok\n", f)
		}
		if err != nil {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("rules check: %d of %d files invalid", bad, len(files))
	}
	return nil
}

// mergeProblems interleaves errors and warnings, both already in file
// order (problems without a line last), errors first on the same line.
func mergeProblems(errs, warnings []rules.Problem) []string {
	key := func(p rules.Problem) int {
		if p.Line == 0 {
			return math.MaxInt
		}
		return p.Line
	}
	var out []string
	for len(errs) > 0 || len(warnings) > 0 {
		if len(warnings) == 0 || (len(errs) > 0 && key(errs[0]) <= key(warnings[0])) {
			out = append(out, errs[0].Error())
			errs = errs[1:]
			continue
		}
		out = append(out, "warning: "+warnings[0].Error())
		warnings = warnings[1:]
	}
	return out
}

// parseInterspersed parses flags wherever they appear among the file
// names, so that `rules check a.yml --resolve-secrets` means what it says.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return files, nil
		}
		files = append(files, args[0])
		args = args[1:]
	}
}
