package rules

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// redacted is what every printing path shows instead of a secret.
const redacted = "<redacted>"

// Secret is a credential in the configuration: a routing key, a token, a
// password. In YAML it is {env: NAME}, {file: PATH} or, discouraged, the
// value itself. Every way of printing it — fmt verbs, YAML, JSON, slog —
// shows "<redacted>", so a logged or dumped Config never leaks it; only
// Reveal gives the value.
//
// References are resolved when the file is loaded with LoadWith, so a
// missing variable stops the daemon at start-up, not at the first page.
type Secret struct {
	env, file string
	value     string
	inline    bool
}

// NewSecret wraps a value known in code, for tests and programmatic
// configuration.
func NewSecret(value string) Secret { return Secret{value: value, inline: value != ""} }

// IsSet reports whether the configuration gives this secret at all,
// resolved or not.
func (s Secret) IsSet() bool { return s.env != "" || s.file != "" || s.inline }

// Reveal returns the value. It is empty when the secret is not set, and for
// an {env: …} or {file: …} reference loaded without resolution (Load,
// Parse, or LoadWith with a nil getenv).
func (s Secret) Reveal() string { return s.value }

// Source says where the value comes from — "env NAME", "file PATH",
// "inline" or "" — which is safe to print and helps an operator find which
// credential a rejection was about.
func (s Secret) Source() string {
	switch {
	case s.env != "":
		return "env " + s.env
	case s.file != "":
		return "file " + s.file
	case s.inline:
		return "inline"
	}
	return ""
}

// String shows "<redacted>" when set, "" when not.
func (s Secret) String() string {
	if s.IsSet() {
		return redacted
	}
	return ""
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalYAML writes "<redacted>": a dumped configuration shows which
// secrets are set but never their values.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON writes "<redacted>", like MarshalYAML.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// LogValue keeps slog from logging the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// UnmarshalYAML accepts {env: NAME}, {file: PATH} or a plain string. It
// checks the shape only; LoadWith resolves the reference.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	fail := func(format string, a ...any) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, a...)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		// The value itself is never echoed in an error.
		*s = NewSecret(n.Value)
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return fail("a secret is exactly one of {env: NAME} or {file: PATH}")
		}
		k, v := n.Content[0], n.Content[1]
		if k.Value != "env" && k.Value != "file" {
			return fail("unknown key %q: a secret is {env: NAME}, {file: PATH} or a string", k.Value)
		}
		if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
			return fail("%s: must not be empty", k.Value)
		}
		if k.Value == "file" {
			*s = Secret{file: v.Value}
			return nil
		}
		if !isEnvName(v.Value) {
			return fail("env: %q is not an environment variable name", v.Value)
		}
		*s = Secret{env: v.Value}
		return nil
	}
	return fail("a secret is {env: NAME}, {file: PATH} or a string")
}

func isEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// resolve reads the referenced value. A variable set to the empty string
// counts as unset: an empty credential is never what was meant. Relative
// file paths are taken from dir, the configuration file's directory.
func (s *Secret) resolve(getenv func(string) string, dir string) error {
	switch {
	case s.env != "":
		v := getenv(s.env)
		if v == "" {
			return fmt.Errorf("environment variable %s is not set", s.env)
		}
		s.value = v
	case s.file != "":
		p := s.file
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read secret file: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return fmt.Errorf("secret file %s is empty", p)
		}
		s.value = v
	}
	return nil
}

var secretType = reflect.TypeFor[Secret]()

// eachSecret calls fn with every Secret in v (a pointer to a struct) and
// its key path, found through the yaml tags, so that a secret added to the
// schema is resolved and checked without another list to keep in step.
func eachSecret(v reflect.Value, path string, fn func(path string, s *Secret)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			eachSecret(v.Elem(), path, fn)
		}
	case reflect.Struct:
		if v.Type() == secretType {
			fn(path, v.Addr().Interface().(*Secret))
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			eachSecret(v.Field(i), joinPath(path, name), fn)
		}
	case reflect.Slice:
		for i := range v.Len() {
			eachSecret(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}
