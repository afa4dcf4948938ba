package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
	"github.com/culprithq/culprit/rules"
	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fastjson"
)

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t testing.TB, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func open(t testing.TB, path string, opts ...Option) *Logs {
	t.Helper()
	l, err := OpenLogs(path, rules.Default().Fields, time.Minute, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func window(t testing.TB, from, to string, step time.Duration) correlate.Window {
	t.Helper()
	w, err := correlate.NewWindow(ts(from), ts(to), step)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// scopeOne runs a Scope over the whole day for one service and message.
func scopeOne(t *testing.T, l *Logs, service string, msgs ...string) *correlate.Scope {
	t.Helper()
	w := window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:10:00Z", time.Minute)
	masked := make([]string, len(msgs))
	for i, m := range msgs {
		masked[i] = template.Mask(m)
	}
	sc, err := l.Scope(context.Background(), correlate.ScopeQuery{
		Service: service, Messages: masked, From: w.From, To: w.To, Window: w,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestFieldShapes(t *testing.T) {
	const want = `{"organization.id":{"42":1},"url.domain":{"shop.example":1},"host.name":{"web-1":1},"cloud.provider":{"aws":1},"cloud.region":{"eu-west-1":1},"service.version":{"1.2.3":1},"url.path":{"/cart":1}}`
	tests := []struct {
		name string
		line string
	}{
		{"nested", `{"@timestamp":"2026-11-20T14:00:00Z","service":{"name":"checkout","version":"1.2.3"},"host":{"name":"web-1"},"organization":{"id":"42"},"url":{"domain":"shop.example","path":"/cart"},"cloud":{"provider":"aws","region":"eu-west-1"},"http":{"response":{"status_code":503}},"error":{"message":"boom"}}`},
		{"dotted", `{"@timestamp":"2026-11-20T14:00:00Z","service.name":"checkout","service.version":"1.2.3","host.name":"web-1","organization.id":"42","url.domain":"shop.example","url.path":"/cart","cloud.provider":"aws","cloud.region":"eu-west-1","http.response.status_code":503,"error.message":"boom"}`},
		{"mixed", `{"@timestamp":"2026-11-20T14:00:00Z","service":{"name":"checkout"},"service.version":"1.2.3","host":{"name":"web-1"},"organization.id":"42","url":{"domain":"shop.example"},"url.path":"/cart","cloud":{"provider":"aws","region":"eu-west-1"},"http":{"response.status_code":503},"error.message":"boom"}`},
		{"partial dotting", `{"@timestamp":"2026-11-20T14:00:00Z","service":{"name":"checkout","version":"1.2.3"},"host":{"name":"web-1"},"organization":{"id":"42"},"url":{"domain":"shop.example","path":"/cart"},"cloud.provider":"aws","cloud":{"region":"eu-west-1"},"http.response":{"status_code":"503"},"error":{"message":"boom"}}`},
		{"numeric org id", `{"@timestamp":"2026-11-20T14:00:00Z","service.name":"checkout","service.version":"1.2.3","host.name":"web-1","organization":{"id":42},"url.domain":"shop.example","url.path":"/cart","cloud.provider":"aws","cloud.region":"eu-west-1","http.response.status_code":503,"message":"boom"}`},
		{"org id as double", `{"@timestamp":"2026-11-20T14:00:00Z","service.name":"checkout","service.version":"1.2.3","host.name":"web-1","organization":{"id":42.0},"url.domain":"shop.example","url.path":"/cart","cloud.provider":"aws","cloud.region":"eu-west-1","http.response.status_code":"503","error.message":"boom"}`},
		{"irrelevant subtrees", `{"@timestamp":"2026-11-20T14:00:00Z","labels":{"service":{"name":"decoy"}},"user_agent":{"original":"x","os":{"name":"linux"}},"tags":["a",{"b":1}],"service":{"name":"checkout","version":"1.2.3","node":{"name":"n"}},"host":{"name":"web-1","ip":["10.0.0.1"]},"organization":{"id":"42"},"url":{"domain":"shop.example","path":"/cart"},"cloud":{"provider":"aws","region":"eu-west-1"},"http":{"response":{"status_code":503}},"error":{"message":"boom","stack_trace":"..."}}`},
	}
	var wantErrs map[string]map[string]float64
	if err := json.Unmarshal([]byte(want), &wantErrs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, writeFile(t, "logs.ndjson", lines(tc.line)))
			tr, err := l.Traffic(context.Background(), window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:01:00Z", time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.Services) != 1 || tr.Services[0].Service != "checkout" {
				t.Fatalf("services = %+v, want checkout", tr.Services)
			}
			st := tr.Services[0]
			if st.Errors[0] != 1 || len(st.Messages) != 1 || st.Messages[0].Message != template.Mask("boom") {
				t.Fatalf("errors %v messages %+v, want one error \"boom\"", st.Errors, st.Messages)
			}
			sc := scopeOne(t, l, "checkout", "boom")
			if !reflect.DeepEqual(sc.Errors, wantErrs) {
				t.Errorf("Errors = %v\nwant %v", sc.Errors, wantErrs)
			}
			if !reflect.DeepEqual(sc.Requests, wantErrs) {
				t.Errorf("Requests = %v\nwant %v", sc.Requests, wantErrs)
			}
		})
	}
}

func TestErrorRule(t *testing.T) {
	tests := []struct {
		name    string
		fields  string
		isError bool
		message string
	}{
		{"success 200", `"event":{"outcome":"success"},"http":{"response":{"status_code":200}}`, false, ""},
		{"success wins over 503", `"event":{"outcome":"success"},"http":{"response":{"status_code":503}}`, false, ""},
		{"failure wins over 200", `"event":{"outcome":"failure"},"http":{"response":{"status_code":200}},"message":"declined"`, true, "declined"},
		{"failure any case", `"event":{"outcome":"FAILURE"},"message":"declined"`, true, "declined"},
		{"no outcome 500", `"http":{"response":{"status_code":500}},"error":{"message":"db down"}`, true, "db down"},
		{"no outcome 499", `"http":{"response":{"status_code":499}}`, false, ""},
		{"unknown outcome 502", `"event":{"outcome":"unknown"},"http":{"response":{"status_code":502}}`, true, "HTTP 502"},
		{"unknown outcome 404", `"event":{"outcome":"unknown"},"http":{"response":{"status_code":404}}`, false, ""},
		{"string status", `"http":{"response":{"status_code":"504"}}`, true, "HTTP 504"},
		{"garbage status", `"http":{"response":{"status_code":"5xx"}}`, false, ""},
		{"failure without status or text", `"event":{"outcome":"failure"}`, true, "error without message"},
		{"error.message before message", `"event":{"outcome":"failure"},"message":"generic","error":{"message":"specific"}`, true, "specific"},
		{"empty error.message falls back", `"event":{"outcome":"failure"},"message":"generic","error":{"message":""}`, true, "generic"},
		{"no status at all", `"message":"hello"`, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := `{"@timestamp":"2026-11-20T14:00:30Z","service":{"name":"api"},` + tc.fields + `}`
			l := open(t, writeFile(t, "l.ndjson", lines(line)))
			tr, err := l.Traffic(context.Background(), window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:01:00Z", time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			st := tr.Services[0]
			if got := st.Errors[0] == 1; got != tc.isError {
				t.Fatalf("error = %v, want %v", got, tc.isError)
			}
			if tc.isError {
				if len(st.Messages) != 1 || st.Messages[0].Message != template.Mask(tc.message) || st.Messages[0].Examples[0] != tc.message {
					t.Errorf("messages = %+v, want %q", st.Messages, tc.message)
				}
			} else if len(st.Messages) != 0 {
				t.Errorf("messages = %+v, want none", st.Messages)
			}
		})
	}
}

// trafficFile is small enough to count by hand: step one minute, window
// 14:00 to 14:05.
var trafficFile = lines(
	`{"@timestamp":"2026-11-20T13:59:59.999Z","service.name":"checkout","http.response.status_code":500,"error.message":"before window"}`,
	`{"@timestamp":"2026-11-20T14:00:10Z","service.name":"checkout","http.response.status_code":200,"event.outcome":"success"}`,
	`{"@timestamp":"2026-11-20T14:00:20Z","service.name":"checkout","http.response.status_code":503,"error.message":"db timeout id=1"}`,
	`{"@timestamp":"2026-11-20T14:01:05+00:00","service.name":"checkout","http.response.status_code":200}`,
	`{"@timestamp":"2026-11-20T15:01:30+01:00","service.name":"checkout","http.response.status_code":200,"event.outcome":"failure","message":"payment declined"}`,
	`{"@timestamp":1795183320000,"service.name":"checkout","http.response.status_code":500,"error.message":"db timeout id=2"}`,
	`{"@timestamp":"2026-11-20T14:03:59.999999999Z","service.name":"search","http.response.status_code":200}`,
	`{"@timestamp":"2026-11-20T14:04:00Z","http.response.status_code":502}`,
	`{"@timestamp":"2026-11-20T14:05:00Z","service.name":"checkout","http.response.status_code":500,"error.message":"after window"}`,
)

func TestTrafficCounts(t *testing.T) {
	// 1795183320000 ms is 2026-11-20T14:02:00Z.
	l := open(t, writeFile(t, "traffic.ndjson", trafficFile))
	from, to, err := l.Range(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !from.Equal(ts("2026-11-20T13:59:59.999Z")) || !to.Equal(ts("2026-11-20T14:05:00Z")) {
		t.Fatalf("Range = %s, %s", from, to)
	}
	w := window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:05:00Z", time.Minute)
	tr, err := l.Traffic(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	checkout := correlate.ServiceTraffic{
		Service:  "checkout",
		Requests: []float64{2, 2, 1, 0, 0},
		Errors:   []float64{1, 1, 1, 0, 0},
	}
	// Masked messages are grouped the way the masker groups them, whatever
	// it does to the ids.
	msgs := map[string][]float64{}
	examples := map[string][]string{}
	for _, e := range []struct {
		raw    string
		bucket int
	}{{"db timeout id=1", 0}, {"payment declined", 1}, {"db timeout id=2", 2}} {
		k := template.Mask(e.raw)
		if msgs[k] == nil {
			msgs[k] = make([]float64, 5)
		}
		msgs[k][e.bucket]++
		examples[k] = append(examples[k], e.raw)
	}
	for k, c := range msgs {
		checkout.Messages = append(checkout.Messages, correlate.MessageCounts{Message: k, Counts: correlate.NewCounts(c), Examples: examples[k]})
	}
	sortMessages(checkout.Messages)
	want := &correlate.Traffic{Window: w, Services: []correlate.ServiceTraffic{
		{Service: "(none)", Requests: []float64{0, 0, 0, 0, 1}, Errors: []float64{0, 0, 0, 0, 1},
			Messages: []correlate.MessageCounts{{Message: template.Mask("HTTP 502"), Counts: correlate.NewCounts([]float64{0, 0, 0, 0, 1}), Examples: []string{"HTTP 502"}}}},
		checkout,
		{Service: "search", Requests: []float64{0, 0, 0, 1, 0}, Errors: []float64{0, 0, 0, 0, 0}},
	}}
	if !reflect.DeepEqual(tr, want) {
		t.Errorf("Traffic =\n%+v\nwant\n%+v", tr, want)
	}
	st := l.Stats()
	if st.Lines != 9 || st.Used != 9 || len(st.Problems) != 0 {
		t.Errorf("Stats = %+v", st)
	}

	// A coarser window on the same grid is served from the cache.
	w5 := window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:10:00Z", 5*time.Minute)
	tr5, err := l.Traffic(context.Background(), w5)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr5.Services[1].Requests; !reflect.DeepEqual(got, []float64{5, 1}) {
		t.Errorf("5m requests = %v, want [5 1]", got)
	}
}

func sortMessages(m []correlate.MessageCounts) {
	for i := range m {
		for j := i + 1; j < len(m); j++ {
			if m[j].Message < m[i].Message {
				m[i], m[j] = m[j], m[i]
			}
		}
	}
}

func TestTrafficOffGrid(t *testing.T) {
	l := open(t, writeFile(t, "traffic.ndjson", trafficFile))
	// 90 s does not divide into the one-minute cache: the file is read
	// again for this window alone.
	w := correlate.Window{From: ts("2026-11-20T14:00:00Z"), To: ts("2026-11-20T14:03:00Z"), Step: 90 * time.Second}
	tr, err := l.Traffic(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Services[0]; got.Service != "checkout" || !reflect.DeepEqual(got.Requests, []float64{3, 2}) || !reflect.DeepEqual(got.Errors, []float64{1, 2}) {
		t.Errorf("checkout = %+v", got)
	}
}

func TestTrafficExamplesInsideWindow(t *testing.T) {
	var ls []string
	for i := range 6 {
		ls = append(ls, `{"@timestamp":"2026-11-20T14:0`+string(rune('0'+i))+`:00Z","service.name":"a","http.response.status_code":500,"error.message":"same"}`)
	}
	l := open(t, writeFile(t, "ex.ndjson", lines(ls...)))
	tr, err := l.Traffic(context.Background(), window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:06:00Z", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if ex := tr.Services[0].Messages[0].Examples; len(ex) != 3 {
		t.Errorf("examples = %v, want 3", ex)
	}
	// Later window: the cached earliest examples lie before it, so the
	// examples must come from inside it.
	tr, err = l.Traffic(context.Background(), window(t, "2026-11-20T14:04:00Z", "2026-11-20T14:06:00Z", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c := tr.Services[0].Messages[0]; !reflect.DeepEqual(c.Counts.Dense(), []float64{1, 1}) || len(c.Examples) != 2 {
		t.Errorf("late window = %+v", c)
	}
}

func TestExamplesEarliestFirst(t *testing.T) {
	l := open(t, writeFile(t, "ex.ndjson", lines(
		`{"@timestamp":"2026-11-20T14:00:40Z","service.name":"a","http.response.status_code":500,"error.message":"delta failed"}`,
		`{"@timestamp":"2026-11-20T14:00:10Z","service.name":"a","http.response.status_code":500,"error.message":"alpha failed"}`,
		`{"@timestamp":"2026-11-20T14:00:30Z","service.name":"a","http.response.status_code":500,"error.message":"charlie failed"}`,
		`{"@timestamp":"2026-11-20T14:00:20Z","service.name":"a","http.response.status_code":500,"error.message":"bravo failed"}`,
	)), WithMaxMessages(1))
	tr, err := l.Traffic(context.Background(), window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:01:00Z", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// With the cap at one message, the first keeps its own key and the rest go to
	// "<other>", earliest first, whatever the file order.
	var other correlate.MessageCounts
	for _, m := range tr.Services[0].Messages {
		if m.Message == "<other>" {
			other = m
		}
	}
	if !reflect.DeepEqual(other.Examples, []string{"alpha failed", "bravo failed", "charlie failed"}) || other.Counts.At(0) != 3 {
		t.Errorf("<other> = %+v", other)
	}
	if got := l.Stats().OtherErrors; got != 3 {
		t.Errorf("OtherErrors = %d, want 3", got)
	}
	// A signature over "<other>" scopes exactly the folded errors.
	sc := scopeOne(t, l, "a", "<other>")
	if len(sc.Samples) != 3 || sc.Samples[0].Message != "alpha failed" {
		t.Errorf("samples = %+v", sc.Samples)
	}
}

func TestMalformedLines(t *testing.T) {
	long := `{"@timestamp":"2026-11-20T14:00:00Z","service.name":"a","message":"` + strings.Repeat("x", 300) + `"}`
	content := lines(
		`{"@timestamp":"2026-11-20T14:00:00Z","service.name":"a"}`, // 1 ok
		`not json at all`,                                         // 2
		`["@timestamp","2026-11-20T14:00:00Z"]`,                   // 3 array
		`{"service.name":"a"}`,                                    // 4 no timestamp
		`{"@timestamp":"2026-11-20 14:31:00","service.name":"a"}`, // 5 space
		`{"@timestamp":"yesterday","service.name":"a"}`,           // 6
		``, // 7 blank
		`{"@timestamp":"2026-11-20T14:00:00","service.name":"a"}`, // 8 no zone
		long, // 9 too long
		`{"@timestamp":"2026-02-30T14:00:00Z","service.name":"a"}`,        // 10 no such day
		`{"@timestamp":null,"service.name":"a"}`,                          // 11 null = none
		`{"@timestamp":"2026-11-20T14:00:01.5+02:00","service.name":"a"}`, // 12 ok
		`{"@timestamp":"2026-11-20T14:00:00Z","service.name":"a"`,         // 13 truncated
		`"just a string"`, // 14
		`{"@timestamp":{"x":1},"service.name":"a"}`, // 15 object time
	)
	l := open(t, writeFile(t, "bad.ndjson", content), WithMaxLineBytes(200))
	if _, _, err := l.Range(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	wantSkipped := map[string]int64{
		"not JSON": 2, "not a JSON object": 2, "no timestamp": 2, "unusable timestamp": 5,
		"empty line": 1, "line too long": 1,
	}
	if st.Lines != 15 || st.Used != 2 || !reflect.DeepEqual(st.Skipped, wantSkipped) {
		t.Errorf("stats = %+v", st)
	}
	wantProblems := []Problem{{2, "not JSON"}, {3, "not a JSON object"}, {4, "no timestamp"}, {5, "unusable timestamp"}, {6, "unusable timestamp"}}
	if !reflect.DeepEqual(st.Problems, wantProblems) {
		t.Errorf("problems = %+v\nwant %+v", st.Problems, wantProblems)
	}
	if s := st.String(); !strings.Contains(s, "bad.ndjson:2: not JSON") {
		t.Errorf("String() = %q", s)
	}
}

func TestNoUsableLines(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "logs %s: file is empty"},
		{"only blank", "\n\n", "logs %s: no usable line in 2 lines (2 skipped: 2 empty line)"},
		{"all bad", lines(`nope`, `{"service.name":"a"}`, `nope`), "logs %s: no usable line in 3 lines (3 skipped: 2 not JSON, 1 no timestamp)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "x.ndjson", tc.content)
			l := open(t, p)
			_, _, err := l.Range(context.Background())
			if err == nil || err.Error() != strings.ReplaceAll(tc.want, "%s", p) {
				t.Errorf("Range err = %v, want %q", err, strings.ReplaceAll(tc.want, "%s", p))
			}
			_, err = l.Traffic(context.Background(), window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:01:00Z", time.Minute))
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("Traffic err = %v", err)
			}
		})
	}
}

func TestOpenLogsErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.ndjson")
	tests := []struct {
		name   string
		path   string
		fields func(*rules.Fields)
		want   string
	}{
		{"missing", missing, nil, "logs " + missing + ": open " + missing + ": no such file or directory"},
		{"directory", dir, nil, "logs " + dir + ": is a directory"},
		{"no time field", writeFile(t, "x", "{}"), func(f *rules.Fields) { f.Time = "" }, "fields.time must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := rules.Default().Fields
			if tc.fields != nil {
				tc.fields(&f)
			}
			_, err := OpenLogs(tc.path, f, time.Minute)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if os.Geteuid() != 0 { // root reads anything
		p := writeFile(t, "secret.ndjson", "{}")
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenLogs(p, rules.Default().Fields, time.Minute); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("unreadable: err = %v", err)
		}
	}
}

func TestGzip(t *testing.T) {
	plain := open(t, writeFile(t, "a.ndjson", trafficFile))
	w := window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:05:00Z", time.Minute)
	want, err := plain.Traffic(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	// Detected by content: the second name has no .gz.
	for _, name := range []string{"a.ndjson.gz", "a.ndjson"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(p, gz(t, trafficFile), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := open(t, p).Traffic(context.Background(), w)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("gzip traffic differs:\n%+v\n%+v", got, want)
			}
		})
	}
}

func TestCorruptGzip(t *testing.T) {
	var big strings.Builder
	for range 2000 {
		big.WriteString(`{"@timestamp":"2026-11-20T14:00:00Z","service.name":"a","http.response.status_code":200,"message":"padding padding padding"}` + "\n")
	}
	z := gz(t, big.String())
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", z[:len(z)/2]},
		{"bad checksum", append(append([]byte{}, z[:len(z)-8]...), 0, 0, 0, 0, 0, 0, 0, 0)},
		{"garbage after magic", []byte{0x1f, 0x8b, 0x08, 0x00, 1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.ndjson.gz")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := OpenLogs(p, rules.Default().Fields, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = l.Range(context.Background())
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want an error naming %s", err, p)
			}
			if tc.name == "truncated" && l.Stats().Used == 0 {
				t.Errorf("lines before the corruption were not counted: %+v", l.Stats())
			}
		})
	}
}

func TestScope(t *testing.T) {
	content := lines(
		// Outside [From, To) but inside the window: host series only.
		`{"@timestamp":"2026-11-20T14:00:30Z","service.name":"api","host.name":"h1","organization.id":1,"http.response.status_code":500,"error.message":"db down"}`,
		`{"@timestamp":"2026-11-20T14:02:10Z","service.name":"api","host.name":"h1","organization.id":1,"url.domain":"a.example","url.path":"/x","service.version":"2","cloud.provider":"aws","cloud.region":"r1","http.response.status_code":500,"error.message":"db down"}`,
		`{"@timestamp":"2026-11-20T14:02:20Z","service.name":"api","host.name":"h2","organization.id":"2","url.domain":"b.example","url.path":"/x","service.version":"1","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:02:30Z","service.name":"api","host.name":"h1","organization.id":1,"url.domain":"a.example","url.path":"/y","service.version":"2","http.response.status_code":503,"error.message":"db down"}`,
		`{"@timestamp":"2026-11-20T14:02:40Z","service.name":"api","host.name":"h2","organization.id":2,"http.response.status_code":500,"error.message":"other thing"}`,
		`{"@timestamp":"2026-11-20T14:03:10Z","service.name":"api","organization.id":3,"http.response.status_code":500,"error.message":"db down"}`,
		`{"@timestamp":"2026-11-20T14:03:20Z","service.name":"web","host.name":"h1","organization.id":1,"http.response.status_code":500,"error.message":"db down"}`,
		`{"@timestamp":"2026-11-20T14:04:00Z","service.name":"api","host.name":"h1","http.response.status_code":500,"error.message":"db down"}`,
	)
	l := open(t, writeFile(t, "s.ndjson", content))
	w := window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:05:00Z", time.Minute)
	sc, err := l.Scope(context.Background(), correlate.ScopeQuery{
		Service: "api", Messages: []string{template.Mask("db down")},
		From: ts("2026-11-20T14:02:00Z"), To: ts("2026-11-20T14:04:00Z"), Window: w,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &correlate.Scope{
		Errors: map[string]map[string]float64{
			"organization.id": {"1": 2, "3": 1},
			"url.domain":      {"a.example": 2},
			"host.name":       {"h1": 2},
			"cloud.provider":  {"aws": 1},
			"cloud.region":    {"r1": 1},
			"service.version": {"2": 2},
			"url.path":        {"/x": 1, "/y": 1},
		},
		Requests: map[string]map[string]float64{
			"organization.id": {"1": 2, "2": 2, "3": 1},
			"url.domain":      {"a.example": 2, "b.example": 1},
			"host.name":       {"h1": 2, "h2": 2},
			"cloud.provider":  {"aws": 1},
			"cloud.region":    {"r1": 1},
			"service.version": {"1": 1, "2": 2},
			"url.path":        {"/x": 2, "/y": 1},
		},
		HostErrors: map[string][]float64{"h1": {1, 0, 2, 0, 1}},
		HostRequests: map[string][]float64{
			"h1": {1, 0, 2, 0, 1},
			"h2": {0, 0, 2, 0, 0},
		},
		Samples: []correlate.Sample{
			{Time: ts("2026-11-20T14:02:10Z"), Host: "h1", Customer: "1", Site: "a.example", Version: "2", Message: "db down"},
			{Time: ts("2026-11-20T14:02:30Z"), Host: "h1", Customer: "1", Site: "a.example", Version: "2", Message: "db down"},
			{Time: ts("2026-11-20T14:03:10Z"), Customer: "3", Message: "db down"},
		},
	}
	if !reflect.DeepEqual(sc, want) {
		t.Errorf("Scope =\n%+v\nwant\n%+v", sc, want)
	}
}

func TestScopeValueCap(t *testing.T) {
	// Many distinct paths overflow the cap; the values that carry errors
	// must still get their exact request counts.
	var ls []string
	for i := range 50 {
		p := "/p" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		ls = append(ls, `{"@timestamp":"2026-11-20T14:01:00Z","service.name":"api","url.path":"`+p+`","http.response.status_code":200}`)
	}
	ls = append(ls,
		`{"@timestamp":"2026-11-20T14:01:00Z","service.name":"api","url.path":"/hot","http.response.status_code":200}`,
		`{"@timestamp":"2026-11-20T14:01:00Z","service.name":"api","url.path":"/hot","http.response.status_code":500,"error.message":"x"}`,
	)
	l := open(t, writeFile(t, "cap.ndjson", lines(ls...)), WithMaxScopeValues(10))
	sc := scopeOne(t, l, "api", "x")
	req := sc.Requests["url.path"]
	if req["/hot"] != 2 || req["<other>"] != 50 || len(req) != 2 {
		t.Errorf("Requests[url.path] = %v, want /hot:2 <other>:50", req)
	}
}

func TestCancel(t *testing.T) {
	l := open(t, writeFile(t, "traffic.ndjson", trafficFile))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := l.Range(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), l.Path()) {
		t.Errorf("Range err = %v", err)
	}
	_, err = l.Scope(ctx, correlate.ScopeQuery{Service: "checkout"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Scope err = %v", err)
	}
	// A cancelled pass is not cached: the next call reads for real.
	if _, _, err := l.Range(context.Background()); err != nil {
		t.Errorf("Range after cancel: %v", err)
	}
}

func TestTimestamps(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = unusable
	}{
		{`"2026-11-20T14:31:00Z"`, "2026-11-20T14:31:00Z"},
		{`"2026-11-20T14:31:00.123Z"`, "2026-11-20T14:31:00.123Z"},
		{`"2026-11-20T14:31:00.123456789Z"`, "2026-11-20T14:31:00.123456789Z"},
		{`"2026-11-20T14:31:00+02:00"`, "2026-11-20T12:31:00Z"},
		{`"2026-11-20T14:31:00.5-05:30"`, "2026-11-20T20:01:00.5Z"},
		{`"2024-02-29T00:00:00Z"`, "2024-02-29T00:00:00Z"},
		{`"1969-12-31T23:59:59Z"`, "1969-12-31T23:59:59Z"},
		{`1795183320000`, "2026-11-20T14:02:00Z"},
		{`1795183320000.0`, "2026-11-20T14:02:00Z"},
		{`"2023-02-29T00:00:00Z"`, ""},
		{`"2026-11-20 14:31:00"`, ""},
		{`"2026-11-20T14:31:00"`, ""},
		{`"2026-11-20T24:00:00Z"`, ""},
		{`"2026-11-20T14:31:60Z"`, ""},
		{`"2026-11-20T14:31:00.Z"`, ""},
		{`"2026-11-20"`, ""},
		{`"yesterday"`, ""},
		{`"1795183320000"`, ""},
		{`"3000-01-01T00:00:00Z"`, ""},
		{`true`, ""},
		{`1e300`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var p fastjson.Parser
			v, err := p.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			ns, ok := valueTime(v)
			if tc.want == "" {
				if ok {
					t.Errorf("got %s, want unusable", time.Unix(0, ns).UTC())
				}
				return
			}
			if !ok || !time.Unix(0, ns).Equal(ts(tc.want)) {
				t.Errorf("got %s ok=%v, want %s", time.Unix(0, ns).UTC(), ok, tc.want)
			}
		})
	}
}

// TestFastTimestampAgreesWithTimeParse checks the hand-rolled path against
// the standard library across calendar edges.
func TestFastTimestampAgreesWithTimeParse(t *testing.T) {
	start := time.Date(1999, 12, 25, 23, 59, 58, 0, time.UTC)
	for i := range 20000 {
		tm := start.Add(time.Duration(i) * 97 * time.Minute).Add(time.Duration(i%1000) * time.Millisecond)
		for _, layout := range []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.000-07:00"} {
			zone := time.FixedZone("", (i%27-13)*1800)
			s := tm.In(zone).Format(layout)
			got, ok := parseRFC3339([]byte(s))
			want, err := time.Parse(time.RFC3339Nano, s)
			if !ok || err != nil || got != want.UnixNano() {
				t.Fatalf("%s: got %d ok=%v, want %d (%v)", s, got, ok, want.UnixNano(), err)
			}
		}
	}
}

func FuzzLine(f *testing.F) {
	f.Add([]byte(`{"@timestamp":"2026-11-20T14:31:00Z","service":{"name":"a"},"http.response.status_code":503}`))
	f.Add([]byte(`{"@timestamp":1795183320000,"service.name":{"x":1},"event":{"outcome":"failure"},"error":{"message":12}}`))
	f.Add([]byte(`{"a":{"b":{"c":[1,2,{"d":null}]}}}`))
	spec, err := newFieldSpec(rules.Default().Fields)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		x := newExtractor(spec)
		a := newAgg(0, int64(time.Minute), -1<<63, 1<<63-1, 10)
		if ts, reason := x.parse(line); reason == rNone {
			a.add(x, ts)
			x.isError()
			x.message()
		}
	})
}

func TestScopePrefilterIsSafe(t *testing.T) {
	tests := []struct {
		name, service, encoded string
	}{
		{"unicode escape", "checkout", `check\u006fut`},
		{"escaped slash", "team/api", `team\/api`},
		{"number", "123", `123.0`},
		{"plain", "checkout", `checkout`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := `"` + tc.encoded + `"`
			if tc.name == "number" {
				svc = tc.encoded
			}
			l := open(t, writeFile(t, "p.ndjson", lines(
				`{"@timestamp":"2026-11-20T14:01:00Z","service.name":`+svc+`,"host.name":"h1","http.response.status_code":500,"error.message":"x"}`,
				`{"@timestamp":"2026-11-20T14:01:00Z","service.name":"other","host.name":"h1","http.response.status_code":500,"error.message":"x"}`,
			)))
			sc := scopeOne(t, l, tc.service, "x")
			if got := sc.Errors[correlate.FieldHost]["h1"]; got != 1 {
				t.Errorf("errors on h1 = %v, want 1", got)
			}
		})
	}
}

// TestConcurrentUse is for the race detector: the correlator may scope
// several signatures at once while Traffic is being served.
func TestConcurrentUse(t *testing.T) {
	l := open(t, writeFile(t, "traffic.ndjson", trafficFile))
	w := window(t, "2026-11-20T14:00:00Z", "2026-11-20T14:05:00Z", time.Minute)
	done := make(chan error, 8)
	for i := range 8 {
		go func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = l.Traffic(context.Background(), w)
			case 1:
				_, err = l.Scope(context.Background(), correlate.ScopeQuery{Service: "checkout", Messages: []string{"<other>", template.Mask("payment declined")}, From: w.From, To: w.To, Window: w})
			default:
				_, _, err = l.Range(context.Background())
				_ = l.Stats()
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
