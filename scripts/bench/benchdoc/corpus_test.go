package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusJSON is TestCorpus's output shape, cut down: two shapes that
// should page (one run missed), a shape that should not, a quiet day.
const corpusJSON = `{
  "command": "CULPRIT_CORPUS=1 go test -run TestCorpus ./cmd/culprit/",
  "summary": [
    {"group": "new_error_provider", "runs": 2, "false_pages": 1, "hours": 6, "false_pages_per_week": 28},
    {"group": "canary", "runs": 1, "false_pages": 0, "hours": 3, "false_pages_per_week": 0},
    {"group": "traffic_surge", "runs": 1, "false_pages": 0, "hours": 3, "false_pages_per_week": 0},
    {"group": "quiet days", "runs": 1, "false_pages": 2, "hours": 24, "false_pages_per_week": 14},
    {"group": "incident runs", "runs": 4, "false_pages": 1, "hours": 12, "false_pages_per_week": 14},
    {"group": "all", "runs": 5, "false_pages": 3, "hours": 36, "false_pages_per_week": 14}
  ],
  "runs": [
    {"name": "new_error_provider-s1", "shape": "new_error_provider", "truth": {"expect_page": true}, "detected": true, "delay_seconds": 297},
    {"name": "new_error_provider-s2", "shape": "new_error_provider", "truth": {"expect_page": true}, "detected": true, "delay_seconds": 180},
    {"name": "canary-s1", "shape": "canary", "truth": {"expect_page": true}, "detected": false},
    {"name": "traffic_surge-s1", "shape": "traffic_surge", "truth": {"expect_page": false}, "detected": false},
    {"name": "quiet-day1-s1001", "shape": "quiet", "quiet_day": true, "truth": {"expect_page": false}}
  ],
  "targets": {"recall": 0.95, "false_pages_per_week": 1, "median_delay_seconds": 180, "attribution_top1": 0.95}
}`

const corpusMD = "```sh\nCULPRIT_CORPUS=1 go test -run TestCorpus ./cmd/culprit/\n```\n\n3 incident runs (seeds 1,2), 1 quiet days.\n\n| runs | expect page |\n| --- | --- |\n| all (5) | 3 |\n"

func TestCorpusGroups(t *testing.T) {
	var c corpusResults
	if err := readJSONString(t, corpusJSON, &c); err != nil {
		t.Fatal(err)
	}
	d := c.delaysByShape()
	if len(d) != 2 || d[0].Shape != "new_error_provider" || d[1].Shape != "canary" {
		t.Fatalf("delay groups %+v: want new_error_provider then canary, nothing for shapes that should not page", d)
	}
	if d[0].Expected != 2 || len(d[0].Minutes) != 2 || d[0].Minutes[0] != 4.95 || d[0].Minutes[1] != 3 {
		t.Errorf("new_error_provider delays %+v, want 2 expected, minutes [4.95 3]", d[0])
	}
	if d[1].Expected != 1 || len(d[1].Minutes) != 0 {
		t.Errorf("canary delays %+v, want 1 expected and no delay for the missed run", d[1])
	}
	g := c.falsePageGroups()
	var names []string
	for _, x := range g {
		names = append(names, x.Group)
	}
	if got := strings.Join(names, ","); got != "new_error_provider,canary,traffic_surge,quiet days,all" {
		t.Errorf("false page groups %s, want every group but the incident runs' total", got)
	}
}

func readJSONString(t *testing.T, s string, v any) error {
	p := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		return err
	}
	return readJSON(p, v)
}

func TestStripLeadingCommand(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"leading block", "```sh\ncmd\n```\n\nrest\n", "rest\n"},
		{"blank lines first", "\n\n```sh\ncmd\n```\nrest", "rest"},
		{"no block", "rest\n```sh\ncmd\n```\n", "rest\n```sh\ncmd\n```\n"},
		{"unclosed block is left alone", "```sh\ncmd\n", "```sh\ncmd\n"},
		{"a closing fence needs no info string", "```sh\n```go\n```\nrest", "rest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := stripLeadingCommand(c.in); got != c.want {
				t.Errorf("stripLeadingCommand(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestImageLink(t *testing.T) {
	cases := []struct{ name, doc, png, want string }{
		{"beside the document", "BENCHMARKS.md", "docs/bench/x.png", "![alt](docs/bench/x.png)"},
		{"document in a subdirectory", "copy/BENCHMARKS.md", "docs/bench/x.png", "![alt](../docs/bench/x.png)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := imageLink(c.doc, c.png, "alt")
			if err != nil || got != c.want {
				t.Errorf("imageLink = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// checkPNG fails unless path is a PNG of the plot size under 150 KB.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 150<<10 {
		t.Errorf("%s is %d KB, over 150", filepath.Base(path), len(b)>>10)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	if cfg.Width != 576 || cfg.Height != 346 {
		t.Errorf("%s is %d×%d, want 576×346", filepath.Base(path), cfg.Width, cfg.Height)
	}
}

func TestCmdCorpus(t *testing.T) {
	dir := t.TempDir()
	js, md := filepath.Join(dir, "corpus.json"), filepath.Join(dir, "corpus.md")
	for p, s := range map[string]string{js: corpusJSON, md: corpusMD} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plots := filepath.Join(dir, "docs", "bench")
	var out, errOut strings.Builder
	if err := cmdCorpus([]string{"-json", js, "-plots", plots, "-doc", filepath.Join(dir, "BENCHMARKS.md")}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	want := "3 incident runs (seeds 1,2), 1 quiet days.\n\n| runs | expect page |\n| --- | --- |\n| all (5) | 3 |\n\n" +
		"![Detection delay per incident shape, one dot per run, with the 3-minute target](docs/bench/corpus-delay.png)\n" +
		"![False pages per week by group of runs, with the target of one a week](docs/bench/corpus-false-pages.png)\n"
	if out.String() != want {
		t.Errorf("fragment body =\n%s\nwant\n%s", out.String(), want)
	}
	checkPNG(t, filepath.Join(plots, "corpus-delay.png"))
	checkPNG(t, filepath.Join(plots, "corpus-false-pages.png"))
}

func TestCmdRuptures(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "results.json")
	tables := filepath.Join(dir, "tables.md")
	js := `{"summary": {
	  "ruptures PELT l2": {"runs": 2, "mean_f1": 0.6, "total_seconds": 6.4},
	  "ruptures Binseg l2": {"runs": 2, "mean_f1": 0.64, "total_seconds": 0.32},
	  "culprit changepoints (MeanShift)": {"runs": 2, "mean_f1": 0.71, "total_seconds": 0.13, "in_process_total_seconds": 0.001},
	  "culprit correlate (finding onset/recovery)": {"runs": 2, "mean_f1": 0.98, "total_seconds": 53},
	  "culprit correlator on the series alone (detect, NB test, onset, recovery)": {"runs": 2, "mean_f1": 0.9, "total_seconds": 0.004, "in_process_total_seconds": 0.004},
	  "failed everywhere": {"runs": 0, "mean_f1": null, "total_seconds": null},
	  "untimed": {"runs": 2, "mean_f1": 0.8, "total_seconds": null}
	}, "runs": [{}, {}]}`
	if err := os.WriteFile(results, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tables, []byte("| method | mean F1 |\n| --- | --- |\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var r rupturesResults
	if err := readJSON(results, &r); err != nil {
		t.Fatal(err)
	}
	pts := r.points()
	var got []string
	for _, p := range pts {
		got = append(got, p.Name)
	}
	if want := "Binseg l2,PELT l2,culprit changepoints (MeanShift),culprit correlate (whole pipeline),culprit correlator (series alone)"; strings.Join(got, ",") != want {
		t.Errorf("plotted methods %q, want %q (methods without F1 or time left out)", strings.Join(got, ","), want)
	}
	for _, p := range pts {
		if p.Name == "culprit changepoints (MeanShift)" && p.Seconds != 0.001 {
			t.Errorf("MeanShift plotted at %g s, want its in-process time 0.001", p.Seconds)
		}
		if p.Name == "culprit correlator (series alone)" && (p.Seconds != 0.004 || !p.Culprit) {
			t.Errorf("correlator on the series plotted at %g s (culprit %v), want 0.004 s as culprit's", p.Seconds, p.Culprit)
		}
	}
	plots := filepath.Join(dir, "plots")
	var out, errOut strings.Builder
	if err := cmdRuptures([]string{"-results", results, "-tables", tables, "-plots", plots, "-doc", filepath.Join(dir, "B.md")}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "\n\n![Mean F1 against time for all series, per method, log scale](plots/ruptures-f1-time.png)\n") {
		t.Errorf("fragment body does not end with the image link:\n%s", out.String())
	}
	checkPNG(t, filepath.Join(plots, "ruptures-f1-time.png"))
}

func TestStepTicks(t *testing.T) {
	cases := []struct {
		name   string
		lo, hi float64
		want   string
	}{
		{"minutes", 0, 17, "0 2 4 6 8 10 12 14 16"},
		{"per week", 0, 72, "0 10 20 30 40 50 60 70"},
		{"fractions", 0, 0.5, "0.00 0.05 0.10 0.15 0.20 0.25 0.30 0.35 0.40 0.45 0.50"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, tk := range (stepTicks{}).Ticks(c.lo, c.hi) {
				got = append(got, tk.Label)
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("ticks %q, want %q", strings.Join(got, " "), c.want)
			}
		})
	}
}
