package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkChangepointsCLI100k times the whole `culprit changepoints`
// command on a 100,000-row CSV: reading, parsing and detection.
func BenchmarkChangepointsCLI100k(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var sb strings.Builder
	sb.WriteString("t,value\n")
	level := 0.0
	for i := range 100_000 {
		if i%20_000 == 0 {
			level = float64(r.IntN(10))
		}
		fmt.Fprintf(&sb, "%d,%.4f\n", i, level+r.NormFloat64())
	}
	p := filepath.Join(b.TempDir(), "s.csv")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		env := []string{"changepoints", "--input", p}
		if err := run(b.Context(), env, func(string) string { return "" }, nil, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
