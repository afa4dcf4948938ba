package simulate

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// File names written by WriteFiles.
const (
	LogsFile    = "logs.ndjson.gz"
	DeploysFile = "deploys.json"
	TicketsFile = "tickets.json"
	TruthFile   = "truth.json"
)

// WriteFiles generates a run into dir (created if missing): the logs as
// gzipped NDJSON, the deploys as a JSON array in correlate.Deploy's shape,
// the tickets as a Zendesk incremental-export page and the ground truth.
// The same Config always writes byte-identical files.
func WriteFiles(ctx context.Context, dir string, cfg Config) (*Run, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	logsPath := filepath.Join(dir, LogsFile)
	run, err := writeLogs(ctx, logsPath, cfg)
	if err != nil {
		return nil, err
	}
	if err := WriteSidecars(dir, run); err != nil {
		return nil, err
	}
	return run, nil
}

// WriteSidecars writes a run's deploys, tickets, customers and ground truth into dir:
// everything but the logs, for runs whose logs went elsewhere.
func WriteSidecars(dir string, run *Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	deploys, err := json.MarshalIndent(run.Deploys, "", "  ")
	if err != nil {
		return fmt.Errorf("simulate: deploys: %w", err)
	}
	tickets, err := MarshalTickets(run.Tickets)
	if err != nil {
		return fmt.Errorf("simulate: tickets: %w", err)
	}
	truth, err := json.MarshalIndent(run.Truth, "", "  ")
	if err != nil {
		return fmt.Errorf("simulate: truth: %w", err)
	}
	custs, err := customersCSV(run.Customers)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{DeploysFile: deploys, TicketsFile: tickets, TruthFile: truth, CustomersFile: []byte(strings.TrimSuffix(custs, "\n"))} {
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
	}
	return nil
}

// logsCompression is gzip's default level: against the fastest level it
// costs a sixth more time to write and saves a quarter of the file, which
// is read several times (once per analysis pass) for each write.
const logsCompression = gzip.DefaultCompression

func writeLogs(ctx context.Context, path string, cfg Config) (run *Run, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("simulate: %w", cerr)
		}
		if err != nil {
			run = nil
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, logsCompression)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	const flushAt = 256 << 10
	buf := make([]byte, 0, flushAt+4096)
	run, err = Generate(ctx, cfg, func(d *Doc) error {
		buf = d.AppendJSON(buf)
		buf = append(buf, '\n')
		if len(buf) >= flushAt {
			if _, err := zw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("simulate: %s: %w", path, err)
	}
	if _, err := zw.Write(buf); err != nil {
		return nil, fmt.Errorf("simulate: %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("simulate: %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("simulate: %s: %w", path, err)
	}
	return run, nil
}
