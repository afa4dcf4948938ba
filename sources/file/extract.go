package file

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/culprithq/culprit/rules"
	"github.com/valyala/fastjson"
)

// role is what culprit uses a log field for.
type role int

const (
	roleTime role = iota
	roleService
	roleVersion
	roleHost
	roleCustomer
	roleSite
	rolePath
	roleProvider
	roleRegion
	roleStatus
	roleOutcome
	numRoles
)

// keyInfo says what a flattened key means: a wanted field (slot >= 0), the
// dotted prefix of a wanted field (descend), or both, e.g. "service" when
// both "service" and "service.name" are mapped.
type keyInfo struct {
	slot    int
	descend bool
}

// fieldSpec is the immutable, shareable part of field extraction: which
// flattened names matter. Each pass builds its own extractor on top of it,
// because a fastjson.Parser is not safe for concurrent use.
type fieldSpec struct {
	keys     map[string]keyInfo
	slots    int
	roleSlot [numRoles]int // -1 when the role is not mapped
	msgSlots []int         // in the order the message fields are tried
}

func newFieldSpec(f rules.Fields) (*fieldSpec, error) {
	if strings.TrimSpace(f.Time) == "" {
		return nil, fmt.Errorf("fields.time must not be empty")
	}
	if strings.TrimSpace(f.Service) == "" {
		return nil, fmt.Errorf("fields.service must not be empty")
	}
	s := &fieldSpec{keys: map[string]keyInfo{}}
	slotOf := map[string]int{}
	add := func(name string) int {
		name = strings.TrimSpace(name)
		if name == "" {
			return -1
		}
		if i, ok := slotOf[name]; ok {
			return i
		}
		i := s.slots
		s.slots++
		slotOf[name] = i
		ki := s.keys[name]
		ki.slot = i
		s.keys[name] = ki
		// Every dotted prefix is a place where the document may switch from
		// nested objects to literal dotted keys, so each must be descended.
		for j := 0; j < len(name); j++ {
			if name[j] == '.' && j > 0 {
				p := name[:j]
				pk, ok := s.keys[p]
				if !ok {
					pk.slot = -1
				}
				pk.descend = true
				s.keys[p] = pk
			}
		}
		return i
	}
	names := [numRoles]string{
		roleTime: f.Time, roleService: f.Service, roleVersion: f.Version,
		roleHost: f.Host, roleCustomer: f.Customer, roleSite: f.Site,
		rolePath: f.Path, roleProvider: f.Provider, roleRegion: f.Region,
		roleStatus: f.Status, roleOutcome: f.Outcome,
	}
	for r, n := range names {
		s.roleSlot[r] = add(n)
	}
	for _, n := range f.Message {
		if i := add(n); i >= 0 {
			s.msgSlots = append(s.msgSlots, i)
		}
	}
	// A key registered as a prefix before it was registered as a field
	// kept slot -1 from the zero keyInfo; fix the ones that are fields.
	for name, i := range slotOf {
		ki := s.keys[name]
		ki.slot = i
		s.keys[name] = ki
	}
	return s, nil
}

// extractor finds the wanted fields of one document at a time. Values point
// into the parser's memory and are valid until the next parse.
type extractor struct {
	spec *fieldSpec
	p    fastjson.Parser
	vals []*fastjson.Value
	key  []byte // scratch for flattened key names
	num  []byte // scratch for number text
}

func newExtractor(s *fieldSpec) *extractor {
	return &extractor{spec: s, vals: make([]*fastjson.Value, s.slots), key: make([]byte, 0, 256)}
}

// Reasons a line is skipped, as indexes into reasonNames, whose text is
// what operators read.
const (
	rEmpty = iota
	rTooLong
	rNotJSON
	rNotObject
	rNoTime
	rUnusableTS
	numReasons

	rNone = -1 // the line is usable
)

var reasonNames = [numReasons]string{
	rEmpty:      "empty line",
	rTooLong:    "line too long",
	rNotJSON:    "not JSON",
	rNotObject:  "not a JSON object",
	rNoTime:     "no timestamp",
	rUnusableTS: "unusable timestamp",
}

// parse reads one line. It returns the timestamp in Unix nanoseconds, or a
// reason index when the line is unusable.
func (x *extractor) parse(line []byte) (int64, int) {
	v, err := x.p.ParseBytes(line)
	if err != nil {
		return 0, rNotJSON
	}
	o, err := v.Object()
	if err != nil {
		return 0, rNotObject
	}
	clear(x.vals)
	x.walk(o, x.key[:0])
	tv := x.vals[x.spec.roleSlot[roleTime]]
	if tv == nil {
		return 0, rNoTime
	}
	t, ok := valueTime(tv)
	if !ok {
		return 0, rUnusableTS
	}
	return t, rNone
}

// walk flattens o under prefix, visiting each key once and descending only
// into objects that lead to a wanted field, so the cost of a document is its
// number of top-level keys plus the few nested ones culprit maps.
func (x *extractor) walk(o *fastjson.Object, prefix []byte) {
	o.Visit(func(k []byte, v *fastjson.Value) {
		name := k
		if len(prefix) > 0 {
			name = append(prefix, k...)
		}
		ki, ok := x.spec.keys[string(name)]
		if !ok {
			return
		}
		t := v.Type()
		if ki.slot >= 0 {
			// First usable value wins. An empty string or null is as good
			// as absent, so a later spelling of the same field (dotted vs
			// nested) may still fill the slot; an object or array is kept
			// only until a scalar turns up, so that a timestamp given as an
			// object reads as unusable rather than missing.
			cur := x.vals[ki.slot]
			switch t {
			case fastjson.TypeString:
				if (cur == nil || !scalar(cur.Type())) && len(v.GetStringBytes()) > 0 {
					x.vals[ki.slot] = v
				}
			case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
				if cur == nil || !scalar(cur.Type()) {
					x.vals[ki.slot] = v
				}
			case fastjson.TypeObject, fastjson.TypeArray:
				if cur == nil {
					x.vals[ki.slot] = v
				}
			}
		}
		if ki.descend && t == fastjson.TypeObject {
			sub, _ := v.Object()
			if len(prefix) == 0 {
				name = append(x.key[:0], k...)
			}
			x.walk(sub, append(name, '.'))
		}
	})
}

func scalar(t fastjson.Type) bool {
	return t == fastjson.TypeString || t == fastjson.TypeNumber || t == fastjson.TypeTrue || t == fastjson.TypeFalse
}

// text returns the string form of a role's value, or nil when absent. The
// result aliases parser memory or scratch and is valid until the next call.
func (x *extractor) text(r role) []byte {
	i := x.spec.roleSlot[r]
	if i < 0 {
		return nil
	}
	return x.slotText(i)
}

func (x *extractor) slotText(i int) []byte {
	v := x.vals[i]
	if v == nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeString:
		return v.GetStringBytes()
	case fastjson.TypeNumber:
		x.num = numberText(v.MarshalTo(x.num[:0]))
		return x.num
	case fastjson.TypeTrue:
		return []byte("true")
	case fastjson.TypeFalse:
		return []byte("false")
	}
	return nil
}

// numberText turns integral numbers written as floats (12345.0, 1.2345e4)
// into their decimal form, so that an organization id reads the same whether
// the producer serialised it as an integer or a double.
func numberText(b []byte) []byte {
	if !bytes.ContainsAny(b, ".eE") {
		return b
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1e18 {
		return b
	}
	return strconv.AppendInt(b[:0], int64(f), 10)
}

// status returns the HTTP status, or 0 when absent or not a number.
func (x *extractor) status() int {
	i := x.spec.roleSlot[roleStatus]
	if i < 0 || x.vals[i] == nil {
		return 0
	}
	v := x.vals[i]
	var b []byte
	switch v.Type() {
	case fastjson.TypeString:
		b = bytes.TrimSpace(v.GetStringBytes())
	case fastjson.TypeNumber:
		if n, err := v.Int(); err == nil {
			return clampStatus(n)
		}
		f, err := v.Float64()
		if err != nil || f != math.Trunc(f) {
			return 0
		}
		return clampStatus(int(f))
	default:
		return 0
	}
	n := 0
	if len(b) == 0 || len(b) > 4 {
		return 0
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func clampStatus(n int) int {
	if n < 0 || n > 9999 {
		return 0
	}
	return n
}

// isError applies the error rule: an explicit outcome wins; without a usable
// one, the status decides. "unknown" is ECS's own word for "the producer
// could not tell", so it defers to the status like an absent outcome.
func (x *extractor) isError() bool {
	if o := x.text(roleOutcome); o != nil {
		if asciiEqualFold(o, "failure") {
			return true
		}
		if asciiEqualFold(o, "success") {
			return false
		}
	}
	return x.status() >= 500
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// message is the raw error text: the first non-empty message field, else a
// stand-in built from the status so that errors without text still group.
func (x *extractor) message() string {
	for _, i := range x.spec.msgSlots {
		if b := x.slotText(i); len(b) > 0 {
			return string(b)
		}
	}
	if s := x.status(); s > 0 {
		return "HTTP " + strconv.Itoa(s)
	}
	return "error without message"
}
