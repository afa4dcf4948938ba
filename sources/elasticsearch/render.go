package elasticsearch

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
)

// The names and bounds below are the file source's (sources/file), repeated
// rather than imported because that package keeps them unexported; the
// parity test holds the two together.
const (
	// noService stands for documents without a service.
	noService = "(none)"
	// otherMessage collects errors whose message could not be read within
	// the fetch bound (see maxFetch).
	otherMessage = "<other>"
	maxExamples  = 3
	maxSamples   = 5
)

// keyText renders an aggregation key of a field of kind k as the file
// source renders the document's value: strings as they are, integral
// numbers in decimal (an organization id reads "42" whether mapped as long
// or keyword), booleans as true/false. ok is false for a missing value.
func keyText(v types.FieldValue, k kind) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		if k == kindBool {
			return strconv.FormatBool(x != 0), true
		}
		return formatNumber(x), true
	case json.Number:
		return numberText(x.String()), true
	}
	return "", false
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// numberText turns integral numbers written as floats (12345.0, 1.2345e4)
// into decimal, as the file source does.
func numberText(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1e18 {
		return s
	}
	return strconv.FormatInt(int64(f), 10)
}

// statusOfString is the file source's reading of a status string: spaces
// trimmed, one to four digits, else 0.
func statusOfString(s string) int {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 || len(b) > 4 {
		return 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func clampStatus(f float64) int {
	if f != math.Trunc(f) || f < 0 || f > 9999 {
		return 0
	}
	return int(f)
}

// statusOfKey reads a status aggregation key.
func statusOfKey(v types.FieldValue) int {
	switch x := v.(type) {
	case string:
		return statusOfString(x)
	case float64:
		return clampStatus(x)
	}
	return 0
}

// fallbackMessage is the message of an error without message text.
func fallbackMessage(status int) string {
	if status > 0 {
		return "HTTP " + strconv.Itoa(status)
	}
	return "error without message"
}

// doc is a decoded _source.
type doc map[string]any

func decodeSource(raw json.RawMessage) (doc, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m doc
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// lookup finds a dotted field in a document that may spell it with nested
// objects, literal dotted keys or a mix, as Elasticsearch and the file
// source both accept. Only usable scalars count: an empty string, null,
// object or array is as good as absent, so another spelling may still
// supply the value.
func (d doc) lookup(path string) any {
	if v, ok := d[path]; ok && usable(v) {
		return v
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := d[path[:i]].(map[string]any); ok {
			if v := doc(sub).lookup(path[i+1:]); v != nil {
				return v
			}
		}
	}
	return nil
}

func usable(v any) bool {
	switch x := v.(type) {
	case string:
		return x != ""
	case json.Number, bool:
		return true
	}
	return false
}

// text is the string form of a field, "" when absent.
func (d doc) text(path string) string {
	if path == "" {
		return ""
	}
	switch x := d.lookup(path).(type) {
	case string:
		return x
	case json.Number:
		return numberText(x.String())
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func (d doc) status(path string) int {
	if path == "" {
		return 0
	}
	switch x := d.lookup(path).(type) {
	case string:
		return statusOfString(x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			if n < 0 || n > 9999 {
				return 0
			}
			return int(n)
		}
		f, err := x.Float64()
		if err != nil {
			return 0
		}
		return clampStatus(f)
	}
	return 0
}

// message is the raw error text by the file source's rule: the first
// non-empty message field, else a stand-in built from the status.
func (d doc) message(fields []string, status string) string {
	for _, f := range fields {
		if t := d.text(strings.TrimSpace(f)); t != "" {
			return t
		}
	}
	return fallbackMessage(d.status(status))
}
