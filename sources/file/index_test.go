package file

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/simulate"
)

// indexSim is a small Friday: 90 minutes, the incident at 40 minutes,
// rolled back at 75, so windows cover a baseline, the onset and the
// recovery.
var indexSim = simulate.Config{Seed: 1, Shape: simulate.ShapeFriday, Duration: 90 * time.Minute,
	Onset: 40 * time.Minute, Rollback: 75 * time.Minute, PeakPerMin: 1500}

var (
	indexOnce sync.Once
	indexPath string
	indexErr  error
)

// simLogs writes indexSim once per test binary, for the tests to share;
// TestMain removes it.
func simLogs(t *testing.T) string {
	t.Helper()
	indexOnce.Do(func() {
		dir, err := os.MkdirTemp("", "culprit-index-test-")
		if err != nil {
			indexErr = err
			return
		}
		if _, indexErr = simulate.WriteFiles(context.Background(), dir, indexSim); indexErr == nil {
			indexPath = filepath.Join(dir, simulate.LogsFile)
		}
	})
	if indexErr != nil {
		t.Fatal(indexErr)
	}
	return indexPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if indexPath != "" {
		os.RemoveAll(filepath.Dir(indexPath))
	}
	os.Exit(code)
}

func openStep(t *testing.T, path string, step time.Duration) *Logs {
	t.Helper()
	l, err := OpenLogs(path, rules.Default().Fields, step)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newIndex(t *testing.T, path string, res time.Duration) *Index {
	t.Helper()
	x, err := NewIndex(context.Background(), openStep(t, path, res))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func win(t *testing.T, from time.Time, d, step time.Duration) correlate.Window {
	t.Helper()
	w, err := correlate.NewWindow(from, from.Add(d), step)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestIndexTrafficEqualsStreaming: for windows on and off the grid, the
// index answers exactly what a streaming Logs reading the same file
// answers, examples included.
func TestIndexTrafficEqualsStreaming(t *testing.T) {
	path := simLogs(t)
	x := newIndex(t, path, time.Minute)
	start := simulate.DefaultStart
	cases := []struct {
		name string
		w    correlate.Window
	}{
		{"whole run", win(t, start, indexSim.Duration, time.Minute)},
		{"first hour", win(t, start, time.Hour, time.Minute)},
		{"sliding, across the onset", win(t, start.Add(17*time.Minute), time.Hour, time.Minute)},
		{"sliding, across the rollback", win(t, start.Add(29*time.Minute), time.Hour, time.Minute)},
		{"two-minute buckets", win(t, start.Add(10*time.Minute), 40*time.Minute, 2*time.Minute)},
		{"half past the file's end", win(t, start.Add(70*time.Minute), 45*time.Minute, time.Minute)},
		{"before the file", win(t, start.Add(-2*time.Hour), time.Hour, time.Minute)},
		{"off the grid: 30s buckets", win(t, start.Add(45*time.Minute), 20*time.Minute, 30*time.Second)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := openStep(t, path, time.Minute).Traffic(context.Background(), c.w)
			if err != nil {
				t.Fatal(err)
			}
			got, err := x.Traffic(context.Background(), c.w)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("index and streaming traffic differ\n%s", trafficDiff(got, want))
			}
		})
	}
}

// TestIndexUntil: the view at a cutoff answers what a file holding only
// the lines before the cutoff answers, with the buckets after it marked
// incomplete; whatever the index's resolution, and for cutoffs on, inside
// and off its grid.
func TestIndexUntil(t *testing.T) {
	path := simLogs(t)
	start := simulate.DefaultStart
	w := win(t, start.Add(5*time.Minute), time.Hour, time.Minute)
	cases := []struct {
		name     string
		res      time.Duration
		cut      time.Time
		complete int
	}{
		{"on the minute", time.Minute, start.Add(50 * time.Minute), 45},
		{"inside a bucket, index of minutes (read again)", time.Minute, start.Add(50*time.Minute + 30*time.Second), 45},
		{"inside a bucket, index of half minutes", 30 * time.Second, start.Add(50*time.Minute + 30*time.Second), 45},
		{"odd second, index of half minutes (read again)", 30 * time.Second, start.Add(50*time.Minute + 7*time.Second), 45},
		{"at the window's end", time.Minute, w.To, 0},
		{"after the window", time.Minute, w.To.Add(time.Hour), 0},
		{"before the window", time.Minute, w.From.Add(-time.Minute), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newIndex(t, path, c.res)
			got, err := x.Until(c.cut).Traffic(context.Background(), w)
			if c.cut.Before(w.From) || c.cut.Equal(w.From) {
				// Nothing arrived: no service has traffic in w.
				if err != nil || len(got.Services) != 0 || got.Complete != c.complete {
					t.Fatalf("got %+v, %v; want no services, complete %d", got, err, c.complete)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := openStep(t, truncated(t, path, c.cut), time.Minute).Traffic(context.Background(), w)
			if err != nil {
				t.Fatal(err)
			}
			want.Complete = c.complete
			if !reflect.DeepEqual(got, want) {
				t.Errorf("view and truncated file differ\n%s", trafficDiff(got, want))
			}
		})
	}
}

// TestIndexUntilScope: the view's Scope sees only lines before the cutoff.
func TestIndexUntilScope(t *testing.T) {
	path := simLogs(t)
	start := simulate.DefaultStart
	run, err := simulate.Generate(context.Background(), indexSim, func(*simulate.Doc) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	x := newIndex(t, path, time.Minute)
	w := win(t, start.Add(10*time.Minute), time.Hour, time.Minute)
	cut := start.Add(52 * time.Minute)
	tr, err := x.Until(cut).Traffic(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, s := range tr.Services {
		if s.Service != run.Truth.Service {
			continue
		}
		for _, m := range s.Messages {
			msgs = append(msgs, m.Message)
		}
	}
	if len(msgs) == 0 {
		t.Fatalf("no error messages for %s before %s", run.Truth.Service, cut)
	}
	q := correlate.ScopeQuery{Service: run.Truth.Service, Messages: msgs, From: run.Truth.Onset, To: w.To, Window: w}
	got, err := x.Until(cut).Scope(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want, err := openStep(t, truncated(t, path, cut), time.Minute).Scope(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		wt, _ := json.Marshal(want)
		t.Errorf("scope at the cutoff differs from the truncated file's:\n got  %.600s\n want %.600s", g, wt)
	}
	full, err := x.Scope(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(full.Errors, got.Errors) {
		t.Error("the cutoff changed nothing: the test does not exercise it")
	}
}

// TestIndexScopeEqualsStreaming: Scope from the lines in memory is
// Logs.Scope, whether or not the value tallies overflow their cap.
func TestIndexScopeEqualsStreaming(t *testing.T) {
	path := simLogs(t)
	start := simulate.DefaultStart
	run, err := simulate.Generate(context.Background(), indexSim, func(*simulate.Doc) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	w := win(t, start.Add(10*time.Minute), time.Hour, time.Minute)
	tr, err := openStep(t, path, time.Minute).Traffic(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	messages := map[string][]string{}
	var other string
	for _, s := range tr.Services {
		for _, m := range s.Messages {
			messages[s.Service] = append(messages[s.Service], m.Message)
		}
		if s.Service != run.Truth.Service && len(s.Messages) > 0 {
			other = s.Service
		}
	}
	svc := run.Truth.Service
	cases := []struct {
		name string
		q    correlate.ScopeQuery
		opts []Option
	}{
		{"incident, onset to window end", correlate.ScopeQuery{Service: svc, Messages: messages[svc], From: run.Truth.Onset, To: w.To, Window: w}, nil},
		{"one message", correlate.ScopeQuery{Service: svc, Messages: messages[svc][:1], From: w.From, To: w.To, Window: w}, nil},
		{"host series only", correlate.ScopeQuery{Service: svc, Messages: messages[svc], Window: w}, nil},
		{"another service", correlate.ScopeQuery{Service: other, Messages: messages[other], From: w.From.Add(5 * time.Minute), To: w.To, Window: w}, nil},
		{"unknown service", correlate.ScopeQuery{Service: "nope", Messages: []string{"x"}, From: w.From, To: w.To, Window: w}, nil},
		{"tallies over their cap", correlate.ScopeQuery{Service: svc, Messages: messages[svc], From: run.Truth.Onset, To: w.To, Window: w}, []Option{WithMaxScopeValues(3)}},
		{"<other> messages", correlate.ScopeQuery{Service: svc, Messages: []string{otherMessage}, From: w.From, To: w.To, Window: w}, []Option{WithMaxMessages(2)}},
	}
	// A copy out of time order, every block of 16 lines reversed: the
	// index then reads every line for a query, not just its time range.
	for _, p := range []struct{ name, path string }{{"in order", path}, {"out of order", unorderedCopy(t, path, 16)}} {
		for _, c := range cases {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				scopeEqualsStreaming(t, p.path, svc, c.q, c.opts, p.path == path)
			})
		}
	}
}

// scopeEqualsStreaming: an Index over path answers q as a streaming Logs
// does, the first time and from the lines it kept; ordered is whether the
// kept lines should be known to be in time order.
func scopeEqualsStreaming(t *testing.T, path, svc string, q correlate.ScopeQuery, opts []Option, ordered bool) {
	t.Helper()
	l, err := OpenLogs(path, rules.Default().Fields, time.Minute, opts...)
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewIndex(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := OpenLogs(path, rules.Default().Fields, time.Minute, opts...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Scope(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second answer comes from the lines kept
		got, err := x.Scope(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("index and streaming scope differ:\n got  %s\n want %s", jsonOf(got), jsonOf(want))
		}
	}
	if sl := x.lines[svc]; sl != nil && sl.ordered != ordered {
		t.Errorf("kept lines ordered = %v; want %v", sl.ordered, ordered)
	}
}

// unorderedCopy writes path's lines with every block of n reversed, to a
// plain file beside the test's other temporary files.
func unorderedCopy(t *testing.T, path string, n int) string {
	t.Helper()
	var out, block []string
	eachLine(t, path, func(line []byte) {
		if block = append(block, string(line)); len(block) == n {
			slices.Reverse(block)
			out, block = append(out, block...), block[:0]
		}
	})
	slices.Reverse(block)
	out = append(out, block...)
	return writeFile(t, "unordered.ndjson", strings.Join(out, "\n")+"\n")
}

// eachLine calls fn with each line of the gzipped file at path.
func eachLine(t *testing.T, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestIndexNoUsableLine(t *testing.T) {
	for _, c := range []struct{ name, content string }{
		{"empty", ""},
		{"garbage", "not json\n{\"no\":\"time\"}\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewIndex(context.Background(), openStep(t, writeFile(t, "logs.ndjson", c.content), time.Minute)); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestIndexHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewIndex(ctx, openStep(t, simLogs(t), time.Minute)); err == nil {
		t.Fatal("cancelled build succeeded")
	}
}

// truncated writes the lines of path stamped before cut to a new file.
func truncated(t *testing.T, path string, cut time.Time) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "before.ndjson")
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(o)
	eachLine(t, path, func(line []byte) {
		var d struct {
			At time.Time `json:"@timestamp"`
		}
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatal(err)
		}
		if d.At.Before(cut) {
			bw.Write(line)
			bw.WriteByte('\n')
		}
	})
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// trafficDiff names the first difference, for a readable failure.
func trafficDiff(got, want *correlate.Traffic) string {
	if got.Window != want.Window || got.Complete != want.Complete {
		return "window or complete: got " + jsonOf(got.Window) + " " + jsonOf(got.Complete) + ", want " + jsonOf(want.Window) + " " + jsonOf(want.Complete)
	}
	if len(got.Services) != len(want.Services) {
		return "services: got " + jsonOf(len(got.Services)) + ", want " + jsonOf(len(want.Services))
	}
	for i := range got.Services {
		if !reflect.DeepEqual(got.Services[i], want.Services[i]) {
			return "service " + want.Services[i].Service + ":\n got  " + jsonOf(got.Services[i]) + "\n want " + jsonOf(want.Services[i])
		}
	}
	return "(no difference found by field)"
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 2000 {
		b = append(b[:2000], "..."...)
	}
	return string(b)
}
