package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
)

// openReader opens path for streaming, transparently gunzipping it. Gzip is
// recognised by its magic bytes rather than the name, because exports are
// often renamed or compressed in place. bufSize is the line buffer: the
// caller reads lines straight out of the returned reader's buffer.
func openReader(path string, bufSize int) (*bufio.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, bufSize)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		closeBoth := func() error {
			zr.Close()
			return f.Close()
		}
		// The file side only needs a modest buffer; lines are cut from the
		// decompressed side.
		return bufio.NewReaderSize(zr, bufSize), closeBoth, nil
	}
	return br, f.Close, nil
}

// lineStats is the running account of a pass over the file.
type lineStats struct {
	lines    int64
	used     int64
	skipped  [numReasons]int64
	problems []Problem
}

const maxProblems = 5

func (s *lineStats) skip(line int64, reason int) {
	s.skipped[reason]++
	// Blank lines are harmless padding; listing them would hide real problems.
	if reason != rEmpty && len(s.problems) < maxProblems {
		s.problems = append(s.problems, Problem{Line: line, Reason: reasonNames[reason]})
	}
}

// ctxEvery is how many lines pass between cancellation checks: often enough
// to stop within a millisecond, rarely enough to cost nothing.
const ctxEvery = 4096

// scan streams the file, calling fn for every usable line with its time.
// The extractor holds the line's fields during fn. keep, when not nil, may
// reject a raw line before it is parsed; rejected lines are not counted.
func (l *Logs) scan(ctx context.Context, st *lineStats, keep func([]byte) bool, fn func(x *extractor, t int64)) error {
	r, closeFn, err := openReader(l.path, l.cfg.maxLine+1)
	if err != nil {
		return fmt.Errorf("logs %s: %w", l.path, err)
	}
	defer closeFn()
	return scanReader(ctx, r, l.path, l.spec, st, keep, fn)
}

func scanReader(ctx context.Context, r *bufio.Reader, path string, spec *fieldSpec, st *lineStats, keep func([]byte) bool, fn func(x *extractor, t int64)) error {
	x := newExtractor(spec)
	var n int64
	for {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("logs %s: stopped after line %d: %w", path, n, err)
			}
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			n++
			st.lines++
			st.skip(n, rTooLong)
			// Drop the rest of the line: it cannot be parsed anyway, and
			// holding it would let one bad line decide the memory bound.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return readError(path, n, err)
			}
			continue
		}
		if len(line) > 0 {
			n++
			st.lines++
			line = bytes.TrimRight(line, "\r\n")
			switch {
			case keep != nil && !keep(line):
				// Not this pass's business.
			case len(bytes.TrimSpace(line)) == 0:
				st.skip(n, rEmpty)
			default:
				t, reason := x.parse(line)
				if reason != rNone {
					st.skip(n, reason)
					break
				}
				st.used++
				fn(x, t)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readError(path, n, err)
		}
	}
}

func readError(path string, n int64, err error) error {
	return fmt.Errorf("logs %s: reading after line %d: %w", path, n, err)
}
