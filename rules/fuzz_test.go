package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds the config decoder arbitrary YAML. It must never panic,
// a refusal must be a *ConfigError with problems, and an accepted
// configuration must validate again unchanged: what the daemon runs with
// is exactly what passed the checks. Seeds: the example, the golden test
// files and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	files = append(files, "example.yml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("pagerduty:\n  routing_key: R02ABCDEFGHIJKLMNOPQRSTUVWXYZ01\n  change_events: true\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if ce, ok := err.(*ConfigError); ok && len(ce.Problems) == 0 {
				t.Fatalf("refused with no problem listed: %v", err)
			}
			return
		}
		if problems, _ := validate(&c, nil, false); len(problems) > 0 {
			t.Fatalf("accepted, but validating the result again finds %v", problems)
		}
	})
}
