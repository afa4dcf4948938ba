package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// corpusResults is the part of TestCorpus's JSON (cmd/culprit/corpus_test.go)
// the plots need.
type corpusResults struct {
	Command string `json:"command"`
	Summary []struct {
		Group        string  `json:"group"`
		Runs         int     `json:"runs"`
		FalsePages   int     `json:"false_pages"`
		Hours        float64 `json:"hours"`
		FalsePerWeek float64 `json:"false_pages_per_week"`
	} `json:"summary"`
	Runs []struct {
		Name  string `json:"name"`
		Shape string `json:"shape"`
		Quiet bool   `json:"quiet_day"`
		Truth struct {
			ExpectPage bool `json:"expect_page"`
		} `json:"truth"`
		Detected     bool     `json:"detected"`
		DelaySeconds *float64 `json:"delay_seconds"`
	} `json:"runs"`
	Targets struct {
		FalsePerWeek   float64 `json:"false_pages_per_week"`
		MedianDelaySec float64 `json:"median_delay_seconds"`
	} `json:"targets"`
}

// delaysByShape groups the delays of the runs that should page by shape,
// in the order the shapes first appear.
func (c *corpusResults) delaysByShape() []shapeDelays {
	var out []shapeDelays
	idx := map[string]int{}
	for _, r := range c.Runs {
		if r.Quiet || !r.Truth.ExpectPage {
			continue
		}
		i, ok := idx[r.Shape]
		if !ok {
			i = len(out)
			idx[r.Shape] = i
			out = append(out, shapeDelays{Shape: r.Shape})
		}
		out[i].Expected++
		if r.Detected && r.DelaySeconds != nil {
			out[i].Minutes = append(out[i].Minutes, *r.DelaySeconds/60)
		}
	}
	return out
}

// falsePageGroups is one bar per summary group, the quiet days and "all"
// included; "incident runs" is left out as the sum of the shapes shown.
func (c *corpusResults) falsePageGroups() []groupRate {
	var out []groupRate
	for _, s := range c.Summary {
		if s.Group == "incident runs" || s.Hours <= 0 {
			continue
		}
		out = append(out, groupRate{Group: s.Group, PerWeek: s.FalsePerWeek, Pages: s.FalsePages, Hours: s.Hours})
	}
	return out
}

// imageLink is a Markdown image whose path is relative to the document,
// so it resolves on GitHub and in a local checkout alike.
func imageLink(doc, png, alt string) (string, error) {
	d, err := filepath.Abs(filepath.Dir(doc))
	if err != nil {
		return "", fmt.Errorf("image link: %w", err)
	}
	p, err := filepath.Abs(png)
	if err != nil {
		return "", fmt.Errorf("image link: %w", err)
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return "", fmt.Errorf("image link: %w", err)
	}
	return fmt.Sprintf("![%s](%s)", alt, filepath.ToSlash(rel)), nil
}

// stripLeadingCommand removes a fenced block opening the Markdown: the
// corpus summary starts with its command, which the region's provenance
// line already gives.
func stripLeadingCommand(md string) string {
	lines := strings.Split(strings.TrimLeft(md, "\n"), "\n")
	f := fenceOf(strings.TrimSpace(lines[0]))
	if f == "" {
		return md
	}
	for i := 1; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if strings.HasPrefix(t, f) && strings.Trim(t, f[:1]) == "" {
			return strings.TrimLeft(strings.Join(lines[i+1:], "\n"), "\n")
		}
	}
	return md // unclosed: leave it alone
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

type plotFlags struct {
	plots, doc string
}

func (p *plotFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.plots, "plots", "docs/bench", "directory for the PNG plots")
	fs.StringVar(&p.doc, "doc", "BENCHMARKS.md", "the document the images are linked from")
}

func cmdCorpus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("corpus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonPath := fs.String("json", "", "TestCorpus's results (CULPRIT_CORPUS_OUT)")
	mdPath := fs.String("md", "", "its summary tables (default: the JSON's path with .md)")
	var pf plotFlags
	pf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *jsonPath == "" || fs.NArg() > 0 {
		return fmt.Errorf("want -json FILE")
	}
	if *mdPath == "" {
		*mdPath = strings.TrimSuffix(*jsonPath, filepath.Ext(*jsonPath)) + ".md"
	}
	var c corpusResults
	if err := readJSON(*jsonPath, &c); err != nil {
		return err
	}
	md, err := os.ReadFile(*mdPath)
	if err != nil {
		return fmt.Errorf("read summary: %w", err)
	}
	delayPNG := filepath.Join(pf.plots, "corpus-delay.png")
	fpPNG := filepath.Join(pf.plots, "corpus-false-pages.png")
	if err := plotDelays(c.delaysByShape(), c.Targets.MedianDelaySec/60, delayPNG); err != nil {
		return err
	}
	if err := plotFalsePages(c.falsePageGroups(), c.Targets.FalsePerWeek, fpPNG); err != nil {
		return err
	}
	l1, err := imageLink(pf.doc, delayPNG, "Detection delay per incident shape, one dot per run, with the 3-minute target")
	if err != nil {
		return err
	}
	l2, err := imageLink(pf.doc, fpPNG, "False pages per week by group of runs, with the target of one a week")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n\n%s\n%s\n", strings.TrimSpace(stripLeadingCommand(string(md))), l1, l2)
	return err
}

// rupturesResults is the part of ruptures_bench.py's results.json the plot
// needs.
type rupturesResults struct {
	Summary map[string]struct {
		Runs            int      `json:"runs"`
		MeanF1          *float64 `json:"mean_f1"`
		TotalSeconds    *float64 `json:"total_seconds"`
		InProcessSecond *float64 `json:"in_process_total_seconds"`
	} `json:"summary"`
	Runs []json.RawMessage `json:"runs"`
}

// points is one point per method with a mean F1 and a positive time. For
// culprit's detectors the in-process time (the Go benchmark) is the one
// comparable with ruptures' in-process calls; `culprit correlate`'s time is
// its whole pipeline from gzipped logs and is labelled so, while the
// correlator on the series alone is in-process like the others and only
// needs a label short enough for the plot.
func (r *rupturesResults) points() []methodPoint {
	var out []methodPoint
	for name, s := range r.Summary {
		if s.MeanF1 == nil {
			continue
		}
		secs := s.TotalSeconds
		if s.InProcessSecond != nil {
			secs = s.InProcessSecond
		}
		if secs == nil || !(*secs > 0) || math.IsInf(*secs, 0) {
			continue
		}
		label := strings.TrimPrefix(name, "ruptures ")
		switch {
		case strings.HasPrefix(name, "culprit correlate"):
			label = "culprit correlate (whole pipeline)"
		case strings.HasPrefix(name, "culprit correlator on the series"):
			label = "culprit correlator (series alone)"
		}
		out = append(out, methodPoint{Name: label, F1: *s.MeanF1, Seconds: *secs, Culprit: strings.HasPrefix(name, "culprit")})
	}
	slices.SortFunc(out, func(a, b methodPoint) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func cmdRuptures(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ruptures", flag.ContinueOnError)
	fs.SetOutput(stderr)
	results := fs.String("results", ".bench/ruptures/results.json", "ruptures_bench.py's results")
	tables := fs.String("tables", "", "run-ruptures.sh's standard output (its Markdown tables)")
	var pf plotFlags
	pf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tables == "" || fs.NArg() > 0 {
		return fmt.Errorf("want -tables FILE")
	}
	var r rupturesResults
	if err := readJSON(*results, &r); err != nil {
		return err
	}
	md, err := os.ReadFile(*tables)
	if err != nil {
		return fmt.Errorf("read tables: %w", err)
	}
	if strings.TrimSpace(string(md)) == "" {
		return fmt.Errorf("%s is empty", *tables)
	}
	png := filepath.Join(pf.plots, "ruptures-f1-time.png")
	if err := plotF1Time(r.points(), len(r.Runs), png); err != nil {
		return err
	}
	link, err := imageLink(pf.doc, png, "Mean F1 against time for all series, per method, log scale")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n\n%s\n", strings.TrimSpace(string(md)), link)
	return err
}
