package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

var (
	// One dataset row of ../shared/bench/loghub/run.sh: dataset, lines,
	// ground-truth events, predicted groups, GA, F1, PA, Drain's
	// published GA, the best published GA and the parsers that reach it.
	loghubRowRE       = regexp.MustCompile(`^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+|nan)\s+([\d.]+|nan)\s*(\S*)$`)
	loghubMeanRE      = regexp.MustCompile(`^mean\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+|nan)\s+([\d.]+|nan)\s*$`)
	loghubCorrectedRE = regexp.MustCompile(`corrected ground truth \(loghub_2k_corrected\): ([\d.]+)`)
)

// formatLoghub reads the output of ../shared/bench/loghub/run.sh and
// writes culprit's Grouping Accuracy per loghub-2k system beside the
// published figures of Drain and of the best parser.
func formatLoghub(in io.Reader, out io.Writer) error {
	lines, err := readLines(in)
	if err != nil {
		return err
	}
	var rows [][]string
	var mean, corrected []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if m := loghubMeanRE.FindStringSubmatch(l); m != nil {
			mean = m
		} else if m := loghubRowRE.FindStringSubmatch(l); m != nil {
			rows = append(rows, m)
		} else if m := loghubCorrectedRE.FindStringSubmatch(l); m != nil {
			corrected = m
		}
	}
	if len(rows) == 0 || mean == nil {
		return fmt.Errorf("no loghub table in the input (is ../shared/bench/loghub there?)")
	}
	f := func(s string) string {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) {
			return "–" // no published figure for this system
		}
		return fmt.Sprintf("%.3f", v)
	}
	var b strings.Builder
	b.WriteString("| system | events | culprit signatures | **culprit GA** | Drain (published, tuned per system) | best published | by |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	low, lowName := 2.0, ""
	for _, r := range rows {
		if v, err := strconv.ParseFloat(r[5], 64); err == nil && v < low {
			low, lowName = v, r[1]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | **%s** | %s | %s | %s |\n", r[1], r[3], r[4], f(r[5]), f(r[8]), f(r[9]), r[10])
	}
	fmt.Fprintf(&b, "| **mean** | | | **%s** | %s | %s | |\n", f(mean[1]), f(mean[4]), f(mean[5]))
	fmt.Fprintf(&b, "\n%d systems of 2,000 lines; lowest culprit GA %.3f (%s).", len(rows), low, lowName)
	if corrected != nil {
		fmt.Fprintf(&b, " Against the ICSE'22-corrected ground truth (loghub_2k_corrected) the mean is %s.", f(corrected[1]))
	}
	b.WriteString("\n")
	_, err = io.WriteString(out, b.String())
	return err
}
