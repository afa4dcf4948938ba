package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/culprithq/culprit/correlate/changepoint"
)

const changepointsUsage = "changepoints --input FILE.csv [--format json|text]"

func cmdChangepoints(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("changepoints", changepointsUsage, env.stderr)
	input := fs.String("input", "", "CSV file with a header and a 'value' column ('-' for stdin)")
	format := fs.String("format", "json", "output format: json or text (one index per line)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *input == "" {
		fs.Usage()
		return usagef("changepoints: --input is required")
	}
	if err := checkFormat(*format, "json", "text"); err != nil {
		return err
	}
	var r io.Reader = env.stdin
	name := "stdin"
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return fmt.Errorf("changepoints: %w", err)
		}
		defer f.Close()
		r, name = f, *input
	}
	x, err := readValues(ctx, r, name)
	if err != nil {
		return err
	}
	cps := changepoint.MeanShift(x)
	if cps == nil {
		cps = []int{}
	}
	if *format == "text" {
		for _, c := range cps {
			fmt.Fprintln(env.stdout, c)
		}
		return nil
	}
	return json.NewEncoder(env.stdout).Encode(map[string][]int{"changepoints": cps})
}

// readValues reads the 'value' column; an empty cell is a missing value
// (NaN) so that indices keep pointing at the user's rows.
func readValues(ctx context.Context, r io.Reader, name string) ([]float64, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file: expected a header with a 'value' column", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := -1
	for i, h := range header {
		if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")), "value") {
			col = i
			break
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("%s: header has no 'value' column (found %s)", name, strings.Join(header, ", "))
	}
	var x []float64
	for line := 2; ; line++ {
		if line%65536 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if col >= len(rec) || strings.TrimSpace(rec[col]) == "" {
			x = append(x, math.NaN())
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[col]), 64)
		if err != nil || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s:%d: value %q is not a number", name, line, rec[col])
		}
		x = append(x, v)
	}
	if len(x) == 0 {
		return nil, fmt.Errorf("%s: no data rows after the header", name)
	}
	return x, nil
}
