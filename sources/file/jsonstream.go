package file

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// lineCounter maps stream offsets to line numbers without keeping the
// stream: it queues the offsets of newlines the decoder has read ahead and
// drops them as queries pass them. Queries must not go backwards.
type lineCounter struct {
	r     io.Reader
	off   int64
	nl    []int64
	lines int64
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	b := p[:n]
	base := c.off
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		c.nl = append(c.nl, base+int64(i))
		base += int64(i) + 1
		b = b[i+1:]
	}
	c.off += int64(n)
	return n, err
}

// lineAt is the 1-based line holding byte offset o.
func (c *lineCounter) lineAt(o int64) int64 {
	i := 0
	for i < len(c.nl) && c.nl[i] < o {
		i++
	}
	c.lines += int64(i)
	c.nl = c.nl[i:]
	return c.lines + 1
}

// jsonStream reads a file holding either one JSON array or a sequence of
// JSON values (NDJSON, or pretty-printed values back to back), value by
// value, so that memory is one record, not one file.
type jsonStream struct {
	kind  string // "deploys" or "tickets", for messages
	path  string
	dec   *json.Decoder
	lc    *lineCounter
	array bool
	close func() error
	index int // of the next array element
}

func openJSONStream(kind, path string) (*jsonStream, error) {
	r, closeFn, err := openReader(path, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, path, err)
	}
	// A byte-order mark is invisible in editors and fatal to the decoder.
	if b, _ := r.Peek(3); bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		r.Discard(3)
	}
	lc := &lineCounter{r: r}
	s := &jsonStream{kind: kind, path: path, dec: json.NewDecoder(lc), lc: lc, close: closeFn}
	first, err := firstByte(r)
	if err != nil && !errors.Is(err, io.EOF) {
		closeFn()
		return nil, s.readErr(err)
	}
	if first == '[' {
		s.array = true
		if _, err := s.dec.Token(); err != nil {
			closeFn()
			return nil, s.syntaxErr(err)
		}
	}
	return s, nil
}

func firstByte(r *bufio.Reader) (byte, error) {
	for n := 1; ; n++ {
		b, err := r.Peek(n)
		if len(b) < n {
			return 0, err
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n':
			continue
		default:
			return c, nil
		}
	}
}

// record is one top-level value (or array element) with where it starts.
type record struct {
	raw   json.RawMessage
	line  int64
	index int // array index, or -1 in a value sequence
}

// where names a record in error messages.
func (r record) where() string {
	if r.index >= 0 {
		return fmt.Sprintf("index %d (line %d)", r.index, r.line)
	}
	return fmt.Sprintf("line %d", r.line)
}

// next returns the next record, or io.EOF after the last one.
func (s *jsonStream) next() (record, error) {
	if s.array {
		if !s.dec.More() {
			tok, err := s.dec.Token()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return record{}, s.syntaxErr(err)
			}
			if tok != json.Delim(']') {
				return record{}, s.syntaxErr(fmt.Errorf("unexpected %v in array", tok))
			}
			// Anything after the closing bracket is a second document the
			// operator probably did not mean to have ignored.
			if _, err := s.dec.Token(); err != io.EOF {
				if err == nil {
					err = errors.New("unexpected data after the closing ]")
				}
				return record{}, s.syntaxErr(err)
			}
			return record{}, io.EOF
		}
	}
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		if err == io.EOF && !s.array {
			return record{}, io.EOF
		}
		return record{}, s.syntaxErr(err)
	}
	start := s.dec.InputOffset() - int64(len(raw))
	r := record{raw: raw, line: s.lc.lineAt(start), index: -1}
	if s.array {
		r.index = s.index
		s.index++
	}
	return r, nil
}

func (s *jsonStream) readErr(err error) error {
	return fmt.Errorf("%s %s: %w", s.kind, s.path, err)
}

// syntaxErr places a decoding error on its line. An unexpected EOF inside a
// value is also where a truncated gzip shows up.
func (s *jsonStream) syntaxErr(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s %s: line %d: invalid JSON: %s", s.kind, s.path, s.lc.lineAt(se.Offset-1), se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s %s: line %d: file ends in the middle of a JSON value: %w", s.kind, s.path, s.lc.lineAt(s.lc.off), err)
	}
	return fmt.Errorf("%s %s: %w", s.kind, s.path, err)
}

// typeErr rewrites encoding/json's type errors, which name Go types, into
// the JSON kinds an operator sees in the file.
func typeErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return fmt.Errorf("expected %s, got %s", jsonKind(te.Type), te.Value)
		}
		return fmt.Errorf("field %q: expected %s, got %s", field, jsonKind(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON: %s", se.Error())
	}
	return err
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Uint64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	}
	return "a different type"
}

// stringOf reads a string or a number as text: deploy ids and versions are
// numbers in some CI systems and strings in others.
func stringOf(field string, raw json.RawMessage) (string, error) {
	b := bytes.TrimSpace(raw)
	switch {
	case len(b) == 0 || string(b) == "null":
		return "", nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", fmt.Errorf("%s: invalid string %s", field, shortJSON(b))
		}
		return s, nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		return string(b), nil
	}
	return "", fmt.Errorf("%s: expected a string or a number, got %s", field, shortJSON(b))
}

// intOf reads a number, a string of digits, or null (set is false).
func intOf(field string, raw json.RawMessage) (n int64, set bool, err error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || string(b) == "null" {
		return 0, false, nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, false, fmt.Errorf("%s: invalid string %s", field, shortJSON(b))
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return 0, false, nil
		}
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Zendesk ids are integers; 1.2e9 style doubles still are.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, false, fmt.Errorf("%s: expected an integer, got %s", field, shortJSON(b))
		}
		n = int64(f)
	}
	return n, true, nil
}

func shortJSON(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// parseTime reads an RFC 3339 time, naming the field when it is not one.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time (like 2026-11-20T14:31:00Z)", field, s)
	}
	return t.UTC(), nil
}

// objectOnly rejects records that are not JSON objects before decoding, so
// the message says what was found instead of naming a Go type.
func objectOnly(raw json.RawMessage) error {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("expected a JSON object, got %s", shortJSON(b))
	}
	return nil
}
