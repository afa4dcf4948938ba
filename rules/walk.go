package rules

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The file is read twice: once into a yaml.Node tree, walked against the
// Go types to find unknown keys and malformed values with their key paths
// and to remember each key's line; then decoded into Config. The yaml
// package's own strict decoding stops being precise on one-line flow
// mappings and would leave checks that run after decoding without lines.

// locator maps key paths (routes[0].when[1].from) to lines.
type locator struct{ lines map[string]int }

// line is the line of path or, for a key left out, of its nearest
// ancestor that is in the file; 0 when there is none.
func (l *locator) line(path string) int {
	if l == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if n, ok := l.lines[p]; ok {
			return n
		}
	}
	return 0
}

// has reports whether the file sets path itself.
func (l *locator) has(path string) bool {
	if l == nil {
		return false
	}
	_, ok := l.lines[path]
	return ok
}

// parentPath drops the last key or index: a.b[2].c → a.b[2] → a.b → a.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// yamlName is the key a struct field is read from, "" for none.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("yaml")
	if tag == "-" {
		return ""
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return strings.ToLower(f.Name)
}

// aliases are second names for one setting. The daemon's sections speak
// in its own terms (an incident resolves, a page needs customers), and the
// correlator's settings already say the same; both names are accepted, but
// they fill one field so that they can never disagree.
var aliases = map[string]struct {
	canonical string
	field     func(*Config) *int
}{
	"thresholds.min_customers": {"correlate.page_min_customers", func(c *Config) *int { return &c.Correlate.PageMinCustomers }},
	"evaluation.resolve_after": {"correlate.recovery_buckets", func(c *Config) *int { return &c.Correlate.RecoveryBuckets }},
}

type walker struct {
	lines    map[string]int
	problems []Problem
	// aliased holds the value nodes of alias keys found in the file.
	aliased map[string]*yaml.Node
}

func newWalker() *walker {
	return &walker{lines: map[string]int{}, aliased: map[string]*yaml.Node{}}
}

func (w *walker) add(line int, path, format string, a ...any) {
	w.problems = append(w.problems, Problem{Line: line, Path: path, Msg: fmt.Sprintf(format, a...)})
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walk checks node n against type t at path.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return // null keeps the default
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		w.leaf(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		// An optional section or value (a route's customers condition):
		// checked as what it points to.
		w.walk(n, t.Elem(), path)
	case reflect.Struct:
		w.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(n.Line, path, "must be a list")
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	case reflect.Map:
		// Maps keyed by free-form names (products per service): any key,
		// each value checked against the element type.
		if n.Kind != yaml.MappingNode {
			w.add(n.Line, path, "must be a mapping of names")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			w.lines[p] = k.Line
			w.walk(v, t.Elem(), p)
		}
	default:
		w.leaf(n, t, path)
	}
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.add(n.Line, path, "must be a mapping of keys")
		return
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			fields[name] = t.Field(i).Type
		}
	}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			w.merge(v, t, path)
			continue
		}
		p := joinPath(path, k.Value)
		if line, dup := first[k.Value]; dup {
			w.add(k.Line, p, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		w.lines[p] = k.Line
		if ft, ok := fields[k.Value]; ok {
			w.walk(v, ft, p)
			continue
		}
		if _, ok := aliases[p]; ok {
			w.aliased[p] = v
			w.walk(v, reflect.TypeFor[int](), p)
			continue
		}
		w.add(k.Line, p, "unknown key")
	}
}

// merge follows a YAML merge key (<<: *anchor), one mapping or a list.
func (w *walker) merge(v *yaml.Node, t reflect.Type, path string) {
	for v != nil && v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v != nil && v.Kind == yaml.SequenceNode {
		for _, m := range v.Content {
			w.merge(m, t, path)
		}
		return
	}
	if v != nil {
		w.mapping(v, t, path)
	}
}

// leaf decodes a single value with the yaml package's own rules, the same
// ones Decode applies, and words the failure for an operator.
func (w *walker) leaf(n *yaml.Node, t reflect.Type, path string) {
	custom := reflect.PointerTo(t).Implements(unmarshalerType)
	if !custom && n.Kind != yaml.ScalarNode {
		w.add(n.Line, path, "must be a single value, not a list or mapping")
		return
	}
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	if custom {
		w.add(n.Line, path, "%s", yamlMessage(err))
		return
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.add(n.Line, path, "%q is not a whole number", n.Value)
	case reflect.Float32, reflect.Float64:
		w.add(n.Line, path, "%q is not a number", n.Value)
	case reflect.Bool:
		w.add(n.Line, path, "%q is not true or false", n.Value)
	default:
		w.add(n.Line, path, "%s", yamlMessage(err))
	}
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlMessage is the text of a yaml error without its line prefix, Go type
// names or the package's "unmarshal errors" heading.
func yamlMessage(err error) string {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for i, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: unmarshal errors:")
		m = strings.TrimSpace(m)
		m = yamlLine.ReplaceAllString(m, "")
		if j := strings.Index(m, " in type "); j >= 0 {
			m = m[:j]
		}
		msgs[i] = strings.TrimPrefix(m, "yaml: ")
	}
	return strings.Join(msgs, "; ")
}

// yamlProblems turns an error of the yaml package into problems with
// their lines: the syntax error that stopped the parser, or the type
// errors of a decode.
func yamlProblems(err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	ps := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		line := 0
		if sm := yamlLine.FindStringSubmatch(strings.TrimSpace(m)); sm != nil {
			line, _ = strconv.Atoi(sm[1])
		}
		ps = append(ps, Problem{Line: line, Msg: yamlMessage(errors.New(m))})
	}
	return ps
}
