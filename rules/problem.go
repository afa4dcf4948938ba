package rules

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration or, as a warning, valid
// but unwise. It carries the line and the key path so that an operator can
// go straight to it, the way promtool and amtool report.
type Problem struct {
	// Line is 1-based; 0 when unknown, as for a Config built in code.
	Line int
	// Path is the key, such as routes[0].time_zone; empty when the problem
	// concerns the file as a whole.
	Path string
	// Msg says what is wrong. It never contains a secret's value.
	Msg string
}

// Error formats the problem as "line 31: routes[0].time_zone: unknown time
// zone "America/Chicgo"".
func (p Problem) Error() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ConfigError is every problem found in one configuration, in file order,
// so that one run shows everything to fix instead of one error per attempt.
type ConfigError struct {
	// File is the configuration's path; empty for Parse and Validate.
	File     string
	Problems []Problem
}

// Error lists the problems, one per line after the first when there are
// several.
func (e *ConfigError) Error() string {
	prefix := ""
	if e.File != "" {
		prefix = "config " + e.File + ": "
	}
	if len(e.Problems) == 1 {
		return prefix + e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d problems:", prefix, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap gives each problem as an error, for errors.As.
func (e *ConfigError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// sortProblems puts problems in file order; those without a line (checks
// that span the file) go last, in the order they were found.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Line, ps[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
}

// asError turns a list of problems into a *ConfigError, or nil.
func asError(file string, ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return &ConfigError{File: file, Problems: ps}
}
