package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testKnown = []string{"a", "b", "corpus"}

func TestSplice(t *testing.T) {
	doc := strings.Join([]string{
		"# Title",
		"prose before",
		"<!-- bench:a -->",
		"old a",
		"<!-- /bench:a -->",
		"prose between",
		"<!-- bench:b -->",
		"",
		"| old | b |",
		"",
		"<!-- /bench:b -->",
		"prose after",
		"",
	}, "\n")
	cases := []struct {
		name      string
		doc       string
		fragments map[string]string
		want      string
		wantDone  []string
	}{
		{"no fragments leaves the document byte for byte", doc, nil, doc, nil},
		{"a region without its fragment is untouched", doc, map[string]string{"b": "| new | b |\n"},
			strings.Replace(doc, "\n| old | b |\n", "\n| new | b |\n", 1), []string{"b"}},
		{"content is set off by blank lines", doc, map[string]string{"a": "new a"},
			strings.Replace(doc, "<!-- bench:a -->\nold a\n", "<!-- bench:a -->\n\nnew a\n\n", 1), []string{"a"}},
		{"surplus newlines of a fragment are trimmed", doc, map[string]string{"a": "\n\nnew a\n\n\n"},
			strings.Replace(doc, "<!-- bench:a -->\nold a\n", "<!-- bench:a -->\n\nnew a\n\n", 1), []string{"a"}},
		{"every region at once", doc, map[string]string{"a": "A", "b": "B"},
			"# Title\nprose before\n<!-- bench:a -->\n\nA\n\n<!-- /bench:a -->\nprose between\n<!-- bench:b -->\n\nB\n\n<!-- /bench:b -->\nprose after\n",
			[]string{"a", "b"}},
		{"an empty region is filled", "x\n<!-- bench:a -->\n<!-- /bench:a -->\ny", map[string]string{"a": "A\n"},
			"x\n<!-- bench:a -->\n\nA\n\n<!-- /bench:a -->\ny", []string{"a"}},
		{"markers in a code fence are text", "```md\n<!-- bench:zzz -->\n```\n<!-- bench:a -->\nold\n<!-- /bench:a -->\n",
			map[string]string{"a": "new"}, "```md\n<!-- bench:zzz -->\n```\n<!-- bench:a -->\n\nnew\n\n<!-- /bench:a -->\n", []string{"a"}},
		{"a longer fence is closed only by a fence as long", "````\n```\n<!-- bench:zzz -->\n````\n", nil,
			"````\n```\n<!-- bench:zzz -->\n````\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, done, err := splice(c.doc, c.fragments, testKnown)
			if err != nil {
				t.Fatalf("splice: %v", err)
			}
			if got != c.want {
				t.Errorf("splice =\n%s\nwant\n%s", got, c.want)
			}
			if strings.Join(done, ",") != strings.Join(c.wantDone, ",") {
				t.Errorf("regenerated %v, want %v", done, c.wantDone)
			}
			// Splicing the same fragments again changes nothing.
			again, _, err := splice(got, c.fragments, testKnown)
			if err != nil || again != got {
				t.Errorf("second splice differs (err %v):\n%s", err, again)
			}
		})
	}
}

func TestSpliceErrors(t *testing.T) {
	cases := []struct {
		name      string
		doc       string
		fragments map[string]string
		want      []string // substrings of the error, each required
	}{
		{"never closed", "<!-- bench:a -->\nx\n", nil, []string{`line 1: region "a" is never closed`}},
		{"closed but not open", "x\n<!-- /bench:a -->\n", nil, []string{`line 2: region "a" closes but is not open`}},
		{"nested", "<!-- bench:a -->\n<!-- bench:b -->\n<!-- /bench:b -->\n<!-- /bench:a -->\n", nil,
			[]string{`line 2: region "b" opens inside region "a"`}},
		{"closed by another name", "<!-- bench:a -->\n<!-- /bench:b -->\n", nil,
			[]string{`line 2: region "b" closes while region "a" (line 1) is open`}},
		{"unknown name", "<!-- bench:corpsu -->\n<!-- /bench:corpsu -->\n", nil,
			[]string{`line 1: unknown region "corpsu"`, `line 2: unknown region "corpsu"`}},
		{"opened twice", "<!-- bench:a -->\n<!-- /bench:a -->\n<!-- bench:a -->\n<!-- /bench:a -->\n", nil,
			[]string{`line 3: region "a" opened again (first on line 1)`}},
		{"malformed marker", "<!-- bench: a -->\n<!--bench:b-->\n", nil,
			[]string{`line 1: malformed marker`, `line 2: malformed marker`}},
		{"unclosed fence", "```\n<!-- bench:a -->\n", nil, []string{"never closed"}},
		{"fragment without a region", "<!-- bench:a -->\n<!-- /bench:a -->\n", map[string]string{"b": "B", "corpus": "C"},
			[]string{"fragments with no region in the document: b, corpus"}},
		{"every problem at once", "<!-- /bench:a -->\n<!-- bench:nope -->\n", nil,
			[]string{`line 1: region "a" closes`, `line 2: unknown region "nope"`, `line 2: region "nope" is never closed`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := splice(c.doc, c.fragments, testKnown)
			if err == nil {
				t.Fatal("splice succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The real document must parse with the real region names: a marker typo
// there would otherwise surface only at the end of an hour-long run.
func TestBenchmarksDocParses(t *testing.T) {
	b, err := os.ReadFile("../../../BENCHMARKS.md")
	if err != nil {
		t.Skipf("no BENCHMARKS.md: %v", err)
	}
	regions, err := parseRegions(strings.Split(string(b), "\n"), regionNames)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range regions {
		got[r.name] = true
	}
	for _, n := range regionNames {
		if !got[n] {
			t.Errorf("BENCHMARKS.md has no region %q, so its step's figures would have nowhere to go", n)
		}
	}
}

func TestCmdSplice(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "DOC.md")
	frags := filepath.Join(dir, "fragments")
	if err := os.WriteFile(doc, []byte("x\n<!-- bench:tcpd -->\nold\n<!-- /bench:tcpd -->\n<!-- bench:big -->\nkeep\n<!-- /bench:big -->\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(frags, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(frags, "tcpd.md"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if err := cmdSplice([]string{"-doc", doc, "-fragments", frags}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := "x\n<!-- bench:tcpd -->\n\nnew\n\n<!-- /bench:tcpd -->\n<!-- bench:big -->\nkeep\n<!-- /bench:big -->\n"
	if string(b) != want {
		t.Errorf("document =\n%s\nwant\n%s", b, want)
	}
	if st, err := os.Stat(doc); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode after splice: %v, %v; want 0640 kept", st.Mode().Perm(), err)
	}
	if !strings.Contains(out.String(), "regenerated tcpd") {
		t.Errorf("output %q does not say what was regenerated", out.String())
	}

	// A bad document is reported and left as it was.
	bad := "<!-- bench:tcpd -->\n"
	if err := os.WriteFile(doc, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmdSplice([]string{"-doc", doc, "-fragments", frags}, &out, &errOut); err == nil {
		t.Error("splice of an unbalanced document succeeded")
	}
	if b, _ := os.ReadFile(doc); string(b) != bad {
		t.Errorf("document changed after a failed splice: %q", b)
	}
}
