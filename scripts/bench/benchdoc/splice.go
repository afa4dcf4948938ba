package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// regionNames are the generated regions BENCHMARKS.md may hold, one per
// fragment regen.sh writes. A marker naming anything else is a typo that
// would otherwise leave a region silently stale, so it is an error.
var regionNames = []string{
	"micro", "big", "tcpd", "bursty", "es5m", "es5m-requests", "intake", "retention", "e2e",
	"ruptures", "elastalert", "corpus", "slowload", "loghub", "tickets", "scale", "seasonal", "incremental",
}

// markerRE matches a well-formed marker line; markerish catches the lines
// meant as markers that do not match it ("<!-- bench: corpus -->").
var (
	markerRE  = regexp.MustCompile(`^<!-- (/?)bench:([a-z0-9-]+) -->$`)
	markerish = regexp.MustCompile(`^\s*<!--\s*/?\s*bench`)
)

// region is one generated region of a document: lines[open] and
// lines[close] are its markers.
type region struct {
	name        string
	open, close int
}

// parseRegions finds the generated regions of doc's lines. Markers inside
// fenced code blocks are text (the document may show how markers look).
// Every marker problem is reported, not just the first, so one run of
// `make bench` shows everything to fix.
func parseRegions(lines []string, known []string) ([]region, error) {
	var (
		errs   []error
		out    []region
		cur    *region
		fence  string
		seen   = map[string]int{}
		report = func(i int, format string, a ...any) {
			errs = append(errs, fmt.Errorf("line %d: %s", i+1, fmt.Sprintf(format, a...)))
		}
	)
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if f := fenceOf(trimmed); f != "" {
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence) && strings.TrimLeft(trimmed, string(fence[0])) == "":
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		m := markerRE.FindStringSubmatch(l)
		if m == nil {
			if markerish.MatchString(l) {
				report(i, "malformed marker %q: want <!-- bench:NAME --> or <!-- /bench:NAME --> alone on its line, NAME in [a-z0-9-]", l)
			}
			continue
		}
		closing, name := m[1] == "/", m[2]
		if !slices.Contains(known, name) {
			report(i, "unknown region %q (known: %s)", name, strings.Join(known, ", "))
		}
		switch {
		case !closing && cur != nil:
			report(i, "region %q opens inside region %q (opened on line %d)", name, cur.name, cur.open+1)
		case !closing:
			if prev, dup := seen[name]; dup {
				report(i, "region %q opened again (first on line %d)", name, prev+1)
			}
			seen[name] = i
			cur = &region{name: name, open: i}
		case cur == nil:
			report(i, "region %q closes but is not open", name)
		case cur.name != name:
			report(i, "region %q closes while region %q (line %d) is open", name, cur.name, cur.open+1)
			cur = nil
		default:
			cur.close = i
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		report(cur.open, "region %q is never closed", cur.name)
	}
	if fence != "" {
		errs = append(errs, fmt.Errorf("a code fence %q is never closed", fence))
	}
	return out, errors.Join(errs...)
}

// fenceOf returns the fence (``` or ~~~, three or more) a line opens or
// closes, or "".
func fenceOf(trimmed string) string {
	for _, c := range []string{"`", "~"} {
		n := len(trimmed) - len(strings.TrimLeft(trimmed, c))
		if n >= 3 {
			return trimmed[:n]
		}
	}
	return ""
}

// splice replaces the content of every region that has a fragment with it.
// Regions without a fragment are left as they are; a fragment without a
// region is an error, since its figures would silently go nowhere. The
// content is set off by blank lines so that a table right after a marker
// still parses as a table.
func splice(doc string, fragments map[string]string, known []string) (string, []string, error) {
	lines := strings.Split(doc, "\n")
	regions, err := parseRegions(lines, known)
	if err != nil {
		return "", nil, err
	}
	have := map[string]bool{}
	for _, r := range regions {
		have[r.name] = true
	}
	var missing []string
	for name := range fragments {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return "", nil, fmt.Errorf("fragments with no region in the document: %s (add <!-- bench:NAME --> … <!-- /bench:NAME -->)",
			strings.Join(missing, ", "))
	}
	var b strings.Builder
	var done []string
	next := 0
	for _, r := range regions {
		body, ok := fragments[r.name]
		if !ok {
			continue
		}
		for _, l := range lines[next : r.open+1] {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteString("\n")
		if body = strings.Trim(body, "\n"); body != "" {
			b.WriteString(body)
			b.WriteString("\n\n")
		}
		next = r.close
		done = append(done, r.name)
	}
	b.WriteString(strings.Join(lines[next:], "\n"))
	return b.String(), done, nil
}

// readFragments reads every NAME.md in dir. A missing dir is no fragments.
func readFragments(dir string) (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, fmt.Errorf("list fragments: %w", err)
	}
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read fragment: %w", err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".md")] = string(b)
	}
	return out, nil
}

func cmdSplice(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("splice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	docPath := fs.String("doc", "BENCHMARKS.md", "the document to splice into")
	dir := fs.String("fragments", ".bench/fragments", "directory of NAME.md fragments")
	outPath := fs.String("out", "", "write the result here instead of over -doc")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	doc, err := os.ReadFile(*docPath)
	if err != nil {
		return fmt.Errorf("read document: %w", err)
	}
	frags, err := readFragments(*dir)
	if err != nil {
		return err
	}
	out, done, err := splice(string(doc), frags, regionNames)
	if err != nil {
		return fmt.Errorf("%s: %w", *docPath, err)
	}
	dest := *outPath
	if dest == "" {
		dest = *docPath
	}
	if dest != *docPath || out != string(doc) {
		if err := writeAtomic(dest, []byte(out)); err != nil {
			return err
		}
	}
	if len(done) == 0 {
		_, err = fmt.Fprintf(stdout, "%s: no fragments in %s, nothing changed\n", dest, *dir)
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s: regenerated %s\n", dest, strings.Join(done, ", "))
	return err
}

// writeAtomic replaces path in one rename, so an interrupted run never
// leaves half a document.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.Chmod(f.Name(), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
