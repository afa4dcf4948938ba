package intake

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// statusRecorder remembers the status code a handler wrote, for the metric.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument counts every request of an endpoint by the status it got.
func (s *server) instrument(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.requests.WithLabelValues(endpoint, strconv.Itoa(rec.code)).Inc()
	})
}

// requireToken guards the token endpoints. Both sides are hashed before the
// constant-time compare so that not even the token's length leaks.
func (s *server) requireToken(h http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" {
			writeError(w, http.StatusNotFound, "token endpoints are disabled: no intake token is configured")
			return
		}
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="culprit"`)
			s.reject(w, r, http.StatusUnauthorized, "missing bearer token")
			return
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="culprit", error="invalid_token"`)
			s.reject(w, r, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// reject answers an error and logs why, naming the caller but never what it
// sent.
func (s *server) reject(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.log.Warn("intake: request rejected", slog.String("path", r.URL.Path), slog.Int("code", code),
		slog.String("reason", msg), slog.String("remote", r.RemoteAddr))
	writeError(w, code, msg)
}

// readBody reads the whole body within the size limit; webhook signatures
// cover the raw bytes, and decoding twice (envelope, then records) needs them
// too. ok is false when an error has been answered.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		s.reject(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("content encoding %q is not supported: send plain JSON", ce))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", s.maxBody))
			return nil, false
		}
		s.reject(w, r, http.StatusBadRequest, "read body: "+err.Error())
		return nil, false
	}
	return body, true
}

// writeJSON answers v. Encoding our own response types cannot fail, and a
// failed write means the client is gone, so neither error is actionable.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// item is one record of a request body, with where it starts for messages.
type item struct {
	raw   json.RawMessage
	index int // position in the array or value sequence
	line  int
}

// splitBody cuts a body holding one JSON value, an array of values, or a
// sequence of values (NDJSON) into records, the shapes the file source reads.
// array says the body was one array. Syntax errors name line, column and
// byte offset.
func splitBody(body []byte) (items []item, array bool, err error) {
	body = bytes.TrimPrefix(body, []byte{0xEF, 0xBB, 0xBF})
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, errors.New("empty body: expected a JSON object or an array")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	lines := lineIndex(body)
	if trimmed[0] == '[' {
		if _, err := dec.Token(); err != nil {
			return nil, false, jsonErr(body, 0, err)
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, false, jsonErr(body, 0, err)
			}
			off := dec.InputOffset() - int64(len(raw))
			items = append(items, item{raw: raw, index: len(items), line: lines.line(off)})
		}
		if _, err := dec.Token(); err != nil {
			return nil, false, jsonErr(body, 0, err)
		}
		if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
			line, col := lines.position(dec.InputOffset() + int64(bytes.Index(body[dec.InputOffset():], rest[:1])))
			return nil, false, fmt.Errorf("invalid JSON at line %d, column %d: unexpected data after the closing ]", line, col)
		}
		return items, true, nil
	}
	for {
		start := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, jsonErr(body, start, err)
		}
		off := dec.InputOffset() - int64(len(raw))
		items = append(items, item{raw: raw, index: len(items), line: lines.line(off)})
	}
	return items, false, nil
}

// jsonErr places a decoding error on its line and column. The decoder's
// offsets depend on how far its buffer had got, so a syntax error is located
// again by scanning the failing value (from base) in one piece.
func jsonErr(body []byte, base int64, err error) error {
	_, syntax := errors.AsType[*json.SyntaxError](err)
	if !syntax && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	at, msg := int64(len(body)), "body ends in the middle of a value"
	var v json.RawMessage
	if se, ok := errors.AsType[*json.SyntaxError](json.Unmarshal(body[base:], &v)); ok && !strings.HasPrefix(se.Error(), "unexpected end") {
		// Offset counts the bytes read, the offending one included.
		at, msg = base+se.Offset-1, se.Error()
	}
	line, col := lineIndex(body).position(at)
	return fmt.Errorf("invalid JSON at line %d, column %d (byte %d): %s", line, col, at, msg)
}

// lineIndex maps byte offsets to lines and columns.
type lineIndex []byte

// position is the 1-based line and column of byte offset off.
func (b lineIndex) position(off int64) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	before := b[:off]
	return bytes.Count(before, []byte{'\n'}) + 1, int(off) - bytes.LastIndexByte(before, '\n')
}

func (b lineIndex) line(off int64) int {
	l, _ := b.position(off)
	return l
}

// typeErr turns encoding/json's type errors, which name Go types, into the
// JSON field and kind the sender wrote.
func typeErr(err error) error {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		want := "a different type"
		if te.Type != nil {
			switch te.Type.Kind().String() {
			case "string":
				want = "a string"
			case "slice", "array":
				want = "an array"
			case "struct", "map":
				want = "an object"
			case "int", "int64", "int32", "uint64", "float64":
				want = "a number"
			case "bool":
				want = "true or false"
			}
		}
		if te.Field == "" {
			return fmt.Errorf("expected %s, got %s", want, te.Value)
		}
		return fmt.Errorf("%s: expected %s, got %s", te.Field, want, te.Value)
	}
	return err
}
