// Package file reads culprit's inputs from files: NDJSON request logs (one
// ECS document per HTTP request), deploy records and Zendesk ticket exports.
//
// Everything is streamed. A log file is read once for Range and Traffic
// together (pass 1, cached as counts per bucket), plus once per Scope, and
// memory is bounded by services, distinct masked messages and buckets, never
// by the file size.
//
// Two names are reserved in what Logs reports. Requests without a service
// are counted under the service "(none)" rather than dropped: they are still
// traffic, and a wrong service mapping then shows up as one loud service
// instead of an empty report. Errors of a service past its distinct-message
// cap are counted under the message "<other>", so totals stay exact.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

var _ correlate.Source = (*Logs)(nil)

// Logs is a streamed NDJSON log file. It is safe for concurrent use: Scope
// calls each read the file on their own.
type Logs struct {
	path string
	spec *fieldSpec
	step int64
	cfg  config

	mu    sync.Mutex
	agg   *agg // whole-file aggregate, nil until pass 1 succeeds
	stats lineStats
}

type config struct {
	maxMessages  int
	maxLine      int
	maxScopeVals int
}

// Option tunes memory bounds. The defaults suit files of tens of gigabytes.
type Option func(*config)

// WithMaxMessages caps distinct masked messages per service; errors past
// the cap are counted under "<other>" (see Stats.OtherErrors).
func WithMaxMessages(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxMessages = n
		}
	}
}

// WithMaxLineBytes sets the longest line read; longer lines are skipped with
// reason "line too long". It is also the read buffer size.
func WithMaxLineBytes(n int) Option {
	return func(c *config) {
		if n >= 64 {
			c.maxLine = n
		}
	}
}

// WithMaxScopeValues caps distinct values per field in a Scope breakdown.
func WithMaxScopeValues(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxScopeVals = n
		}
	}
}

// OpenLogs checks that path can be read and prepares to stream it. Nothing
// is parsed yet: the first Range or Traffic call reads the file.
func OpenLogs(path string, fields rules.Fields, step time.Duration, opts ...Option) (*Logs, error) {
	if step <= 0 {
		return nil, fmt.Errorf("logs %s: bucket step must be positive, got %s", path, step)
	}
	spec, err := newFieldSpec(fields)
	if err != nil {
		return nil, fmt.Errorf("logs %s: %w", path, err)
	}
	cfg := config{maxMessages: 20000, maxLine: 1 << 20, maxScopeVals: 100000}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("logs %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("logs %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("logs %s: is a directory", path)
	}
	// Reading a byte catches files that open but cannot be read.
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("logs %s: %w", path, err)
	}
	return &Logs{path: path, spec: spec, step: int64(step), cfg: cfg}, nil
}

// Path is the file being read.
func (l *Logs) Path() string { return l.path }

// Problem is one skipped line, for operators to fix their export.
type Problem struct {
	Line   int64  // 1-based
	Reason string // e.g. "not JSON"
}

// Stats account for every line of pass 1 so that an operator can tell a
// quiet service from a broken export.
type Stats struct {
	Path  string
	Lines int64 // lines read, including skipped ones
	Used  int64 // lines with a usable timestamp
	// Skipped counts skipped lines per reason ("not JSON", "not a JSON
	// object", "no timestamp", "unusable timestamp", "line too long",
	// "empty line").
	Skipped map[string]int64
	// Problems are the first few skipped lines, empty lines excepted.
	Problems []Problem
	// OtherErrors is how many errors were counted under "<other>" because
	// their service had too many distinct messages.
	OtherErrors int64
}

// String is a one-line summary followed by one "path:line: reason" line per
// problem, the form editors and terminals jump to.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d lines, %d used", s.Path, s.Lines, s.Used)
	if sk := s.skippedSummary(); sk != "" {
		fmt.Fprintf(&b, ", %s", sk)
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "\n%s:%d: %s", s.Path, p.Line, p.Reason)
	}
	return b.String()
}

// skippedSummary is "3 skipped: 2 not JSON, 1 no timestamp", commonest first.
func (s Stats) skippedSummary() string {
	var total int64
	type rc struct {
		r string
		n int64
	}
	var rs []rc
	for r, n := range s.Skipped {
		total += n
		rs = append(rs, rc{r, n})
	}
	if total == 0 {
		return ""
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].n != rs[j].n {
			return rs[i].n > rs[j].n
		}
		return rs[i].r < rs[j].r
	})
	parts := make([]string, len(rs))
	for i, x := range rs {
		parts[i] = fmt.Sprintf("%d %s", x.n, x.r)
	}
	return fmt.Sprintf("%d skipped: %s", total, strings.Join(parts, ", "))
}

// Stats describes the last pass 1 (zero before Range or Traffic).
func (l *Logs) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statsLocked()
}

func (l *Logs) statsLocked() Stats {
	s := Stats{Path: l.path, Lines: l.stats.lines, Used: l.stats.used, Skipped: map[string]int64{}}
	for i, n := range l.stats.skipped {
		if n > 0 {
			s.Skipped[reasonNames[i]] = n
		}
	}
	s.Problems = append([]Problem(nil), l.stats.problems...)
	if l.agg != nil {
		s.OtherErrors = l.agg.other
	}
	return s
}

// load runs pass 1 once. A failed or cancelled pass is not cached, so a
// later call retries; its stats are kept for the error message.
func (l *Logs) load(ctx context.Context) (*agg, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.agg != nil {
		return l.agg, nil
	}
	a := newAgg(0, l.step, math.MinInt64, math.MaxInt64, l.cfg.maxMessages)
	l.stats = lineStats{}
	if err := l.scan(ctx, &l.stats, nil, a.add); err != nil {
		return nil, err
	}
	if a.n == 0 {
		return nil, l.noUsableError()
	}
	l.agg = a
	return a, nil
}

func (l *Logs) noUsableError() error {
	s := l.statsLocked()
	if s.Lines == 0 {
		return fmt.Errorf("logs %s: file is empty", l.path)
	}
	plural := "s"
	if s.Lines == 1 {
		plural = ""
	}
	return fmt.Errorf("logs %s: no usable line in %d line%s (%s)", l.path, s.Lines, plural, s.skippedSummary())
}

// Range is the time of the earliest and of the latest usable line. Both are
// instants that carry data, so a window built from them must end after to
// (correlate.NewWindow(from, to.Add(step), step) covers every line).
func (l *Logs) Range(ctx context.Context) (from, to time.Time, err error) {
	a, err := l.load(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return time.Unix(0, a.minT).UTC(), time.Unix(0, a.maxT).UTC(), nil
}

// maxWindowBuckets refuses windows whose series alone would exhaust memory;
// such a window is a caller bug, not a request to honour.
const maxWindowBuckets = 10_000_000

// Traffic serves w from the cached whole-file aggregate when w lies on its
// bucket grid, and otherwise (a step that is not a multiple of the opening
// step, a misaligned start, or examples that the cache cannot place in w)
// reads the file again just for w, so that answers are always exact.
func (l *Logs) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	n := w.Len()
	if n <= 0 {
		return nil, fmt.Errorf("logs %s: empty window %s to %s step %s", l.path, w.From.Format(time.RFC3339), w.To.Format(time.RFC3339), w.Step)
	}
	if n > maxWindowBuckets {
		return nil, fmt.Errorf("logs %s: window has %d buckets, more than %d", l.path, n, maxWindowBuckets)
	}
	a, err := l.load(ctx)
	if err != nil {
		return nil, err
	}
	from, wstep := w.From.UnixNano(), int64(w.Step)
	if wstep%l.step == 0 && from%l.step == 0 {
		if tr, ok := a.traffic(w, floorDiv(from, l.step), wstep/l.step); ok {
			return tr, nil
		}
	}
	b := newAgg(from, wstep, from, w.To.UnixNano(), l.cfg.maxMessages)
	var st lineStats
	if err := l.scan(ctx, &st, nil, b.add); err != nil {
		return nil, err
	}
	tr, _ := b.traffic(w, 0, 1)
	return tr, nil
}
