package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The documented example must stay exactly the defaults, so the README
// never lies about them.
func TestExampleIsDefault(t *testing.T) {
	c, err := Load("example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("example.yml differs from Default():\n%+v\n%+v", c, Default())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every substring must appear
	}{
		{"unknown key", "fields:\n  tme: x\n", []string{"line 2: field tme not found"}},
		{"unknown top-level key", "correlation:\n  fdr: 0.1\n", []string{"line 1: field correlation not found"}},
		{"bad duration", "correlate:\n  bucket: 5\n", []string{"line 2", `invalid duration "5"`}},
		{"every error at once", "fields:\n  tme: x\ncorrelate:\n  bucket: five\n  nope: 1\n",
			[]string{"line 2: field tme", "line 4: invalid duration", "line 5: field nope"}},
		{"out of range", "correlate:\n  fdr: 2\n  min_ratio: 0.5\n", []string{"correlate.fdr must be between 0 and 1", "correlate.min_ratio must be at least 1"}},
		{"empty field", "fields:\n  time: \"\"\n", []string{"fields.time must not be empty"}},
		{"not yaml", "fields: [\n", []string{"line"}},
		{"wrong type", "correlate:\n  min_errors: lots\n", []string{"line 2", "lots"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "rules.") {
				t.Errorf("error %q leaks Go type names", err)
			}
		})
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	c, err := Parse([]byte("correlate:\n  bucket: 30s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Correlate.Bucket.D() != 30*time.Second {
		t.Errorf("bucket = %s", c.Correlate.Bucket.D())
	}
	if c.Fields.Service != "service.name" || c.Correlate.FDR != 0.01 {
		t.Error("keys left out lost their defaults")
	}
	if _, err := Parse(nil); err != nil {
		t.Errorf("empty config: %v", err)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(p, []byte("nope: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v does not name %s", err, p)
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.yml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("error %v does not name the missing file", err)
	}
}
