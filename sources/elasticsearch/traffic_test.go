package elasticsearch

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
	"github.com/culprithq/culprit/rules"
)

// The hand-made set spans midnight so that it lands in two date-suffixed
// indices: buckets b0 23:58, b1 23:59, b2 00:00, b3 00:01, b4 00:02.
const (
	handFrom = "2026-11-19T23:58:00Z"
	handTo   = "2026-11-20T00:03:00Z"
)

// longMessage is over every ignore_above used here, so it is never in a
// keyword field and must be read from _source.
var longMessage = "java.lang.IllegalStateException: order 12345 cannot move from PAID to SHIPPED" +
	strings.Repeat("\n\tat com.shop.orders.Transitions.apply(Transitions.java:88)", 6)

// handDocs is the hand-made set. Each line's comment says what it tests.
// withCloud adds cloud fields to one document; without them the fields are
// absent from the mapping altogether.
func handDocs(withCloud bool, oddStatus bool) (day1, day2 []string) {
	cloud := ""
	if withCloud {
		cloud = `,"cloud":{"provider":"aws","region":"eu-west-1"}`
	}
	day1 = []string{
		// outside the window: before From
		`{"@timestamp":"2026-11-19T23:57:59.999Z","service.name":"api","http.response.status_code":500,"error.message":"outside"}`,
		// nested objects, numeric customer
		`{"@timestamp":"2026-11-19T23:58:05Z","service":{"name":"api","version":"1.0"},"host":{"name":"h1"},"organization":{"id":42},"url":{"domain":"a.example","path":"/pay"}` + cloud + `,"http":{"response":{"status_code":500}},"error":{"message":"db timeout after 30s on 10.0.0.1"}}`,
		// literal dotted keys, customer as a string
		`{"@timestamp":"2026-11-19T23:58:20Z","service.name":"api","service.version":"1.0","host.name":"h2","organization.id":"42","http.response.status_code":503,"error.message":"db timeout after 31s on 10.0.0.2"}`,
		// a success
		`{"@timestamp":"2026-11-19T23:59:00Z","service.name":"api","host.name":"h1","organization.id":7,"http.response.status_code":200}`,
		// outcome failure in upper case wins over status 200; the message is in the second field; mixed spelling
		`{"@timestamp":"2026-11-19T23:59:30Z","service":{"name":"api"},"host.name":"h2","organization.id":42,"event.outcome":"FAILURE","http.response.status_code":200,"message":"payment declined for order 1234"}`,
	}
	day2 = []string{
		// outcome success wins over status 503
		`{"@timestamp":"2026-11-20T00:00:10Z","service.name":"api","host.name":"h1","event.outcome":"Success","http.response.status_code":503,"error.message":"should not count"}`,
		// outcome unknown defers to the status; no message at all
		`{"@timestamp":"2026-11-20T00:00:20Z","service.name":"api","host.name":"h1","event.outcome":"unknown","http.response.status_code":502}`,
		// status as a string
		`{"@timestamp":"2026-11-20T00:00:40Z","service.name":"web","host.name":"w1","http.response.status_code":"503"}`,
		// empty first message field: the second one wins
		`{"@timestamp":"2026-11-20T00:01:05Z","service.name":"web","host.name":"w1","http.response.status_code":500,"error.message":"","message":"fallback text 7"}`,
		// no service
		`{"@timestamp":"2026-11-20T00:01:10Z","http.response.status_code":500}`,
		// failure without status or message
		`{"@timestamp":"2026-11-20T00:01:20Z","service.name":"web","event.outcome":"failure"}`,
		// a message too long for any keyword field
		`{"@timestamp":"2026-11-20T00:02:00Z","service.name":"web","host.name":"w2","http.response.status_code":500,"error.message":` + jsonString(longMessage) + `}`,
		// status out of range: not an error
		`{"@timestamp":"2026-11-20T00:02:30Z","service.name":"web","host.name":"w2","http.response.status_code":10000}`,
		// outside the window: To is exclusive
		`{"@timestamp":"2026-11-20T00:03:00Z","service.name":"api","http.response.status_code":500,"error.message":"outside"}`,
	}
	if oddStatus {
		// a status string with spaces, which only a keyword status can hold
		day2 = append(day2, `{"@timestamp":"2026-11-20T00:02:40Z","service.name":"web","host.name":"w2","http.response.status_code":" 503 ","error.message":null}`)
	}
	return day1, day2
}

func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// explicitMapping: keywords, a long status, a short ignore_above on the
// first message field and a text-only second message field.
const explicitMapping = `{"mappings":{"properties":{
  "@timestamp":{"type":"date"},
  "service":{"properties":{"name":{"type":"keyword"},"version":{"type":"keyword"}}},
  "host":{"properties":{"name":{"type":"keyword"}}},
  "organization":{"properties":{"id":{"type":"keyword"}}},
  "url":{"properties":{"domain":{"type":"keyword"},"path":{"type":"keyword"}}},
  "cloud":{"properties":{"provider":{"type":"keyword"},"region":{"type":"keyword"}}},
  "http":{"properties":{"response":{"properties":{"status_code":{"type":"long"}}}}},
  "event":{"properties":{"outcome":{"type":"keyword"}}},
  "error":{"properties":{"message":{"type":"keyword","ignore_above":128}}},
  "message":{"type":"text"}}}}`

// dynamicLikeMapping is what dynamic mapping gives strings (text with a
// keyword sub-field, ignore_above 256), pinned so that the status is a
// string field whichever document arrives first; the customer is a long.
const dynamicLikeMapping = `{"mappings":{"properties":{
  "http":{"properties":{"response":{"properties":{"status_code":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}}}}}},
  "organization":{"properties":{"id":{"type":"long"}}}}}}`

type handSet struct {
	src   *Source
	file  []string
	index string
}

// handLoads are the hand-made set's two mappings, for tests that hold
// both to the same answers.
var handLoads = []struct {
	name string
	load func(*testing.T, cluster) handSet
}{
	{"explicit keyword mapping", loadExplicit},
	{"text fields with keyword sub-fields", loadDynamic},
}

func loadExplicit(t *testing.T, c cluster) handSet {
	base := indexName(t, "")
	day1, day2 := handDocs(true, false)
	c.createIndex(t, base+"-2026.11.19", explicitMapping)
	c.createIndex(t, base+"-2026.11.20", explicitMapping)
	c.load(t, base+"-2026.11.19", day1)
	c.load(t, base+"-2026.11.20", day2)
	pattern := base + "-*"
	return handSet{src: c.source(t, pattern, farFuture), file: append(day1, day2...), index: pattern}
}

func loadDynamic(t *testing.T, c cluster) handSet {
	name := indexName(t, "")
	day1, day2 := handDocs(false, true)
	c.createIndex(t, name, dynamicLikeMapping)
	docs := append(day1, day2...)
	c.load(t, name, docs)
	return handSet{src: c.source(t, name, farFuture), file: docs, index: name}
}

func farFuture(c *Config) { c.Now = func() time.Time { return ts("2030-01-01T00:00:00Z") } }

func TestTrafficHandMade(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	w := window(t, handFrom, handTo, time.Minute)
	for _, tc := range []struct {
		name string
		load func(*testing.T, cluster) handSet
		// extra is the dynamic set's " 503 " document: one more web error.
		extra float64
	}{
		{"explicit keyword mapping, date-suffixed indices", loadExplicit, 0},
		{"text fields with keyword sub-fields, string status", loadDynamic, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.load(t, c)
			got, err := set.src.Traffic(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			svc := map[string]correlate.ServiceTraffic{}
			for _, s := range got.Services {
				svc[s.Service] = s
			}
			if len(got.Services) != 3 {
				t.Fatalf("services: got %d, want api, web and (none): %+v", len(got.Services), got.Services)
			}
			eq := func(what string, got, want []float64) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v, want %v", what, got, want)
				}
			}
			eq("api requests", svc["api"].Requests, []float64{2, 2, 2, 0, 0})
			eq("api errors", svc["api"].Errors, []float64{2, 1, 1, 0, 0})
			eq("web requests", svc["web"].Requests, []float64{0, 0, 1, 2, 2 + tc.extra})
			eq("web errors", svc["web"].Errors, []float64{0, 0, 1, 2, 1 + tc.extra})
			eq("(none) requests", svc["(none)"].Requests, []float64{0, 0, 0, 1, 0})
			msgs := func(s string) map[string]correlate.MessageCounts {
				out := map[string]correlate.MessageCounts{}
				for _, m := range svc[s].Messages {
					out[m.Message] = m
				}
				return out
			}
			api, web, none := msgs("api"), msgs("web"), msgs("(none)")
			db := api["db timeout after <*>s on <*>"]
			eq("db timeout", db.Counts.Dense(), []float64{2, 0, 0, 0, 0})
			if want := []string{"db timeout after 30s on 10.0.0.1", "db timeout after 31s on 10.0.0.2"}; !reflect.DeepEqual(db.Examples, want) {
				t.Errorf("db timeout examples: got %q, want %q", db.Examples, want)
			}
			eq("payment declined (second message field)", api["payment declined for order <*>"].Counts.Dense(), []float64{0, 1, 0, 0, 0})
			eq("api HTTP 502", api["HTTP <*>"].Counts.Dense(), []float64{0, 0, 1, 0, 0})
			if ex := api["HTTP <*>"].Examples; !reflect.DeepEqual(ex, []string{"HTTP 502"}) {
				t.Errorf("api HTTP examples: %q", ex)
			}
			eq("web HTTP 503", web["HTTP <*>"].Counts.Dense(), []float64{0, 0, 1, 0, tc.extra})
			eq("empty first field", web["fallback text <*>"].Counts.Dense(), []float64{0, 0, 0, 1, 0})
			eq("no message", web["error without message"].Counts.Dense(), []float64{0, 0, 0, 1, 0})
			long := web[template.Truncate(template.Mask(longMessage))]
			eq("long message", long.Counts.Dense(), []float64{0, 0, 0, 0, 1})
			if !reflect.DeepEqual(long.Examples, []string{longMessage}) {
				t.Errorf("long message examples: %q", long.Examples)
			}
			eq("(none) HTTP 500", none["HTTP <*>"].Counts.Dense(), []float64{0, 0, 0, 1, 0})
			if _, ok := api["should not count"]; ok {
				t.Error("an outcome of success counted as an error")
			}
			if len(api) != 3 || len(web) != 4 || len(none) != 1 {
				t.Errorf("message counts: api %d, web %d, (none) %d; want 3, 4, 1", len(api), len(web), len(none))
			}

			want, err := fileLogs(t, set.file, time.Minute).Traffic(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			report(t, "traffic", diffTraffic(want, got))
		})
	}
}

func TestScopeHandMade(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	w := window(t, handFrom, handTo, time.Minute)
	for _, tc := range handLoads {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.load(t, c)
			logs := fileLogs(t, set.file, time.Minute)
			tr, err := set.src.Traffic(ctx, w)
			if err != nil {
				t.Fatal(err)
			}

			// Exact numbers for one signature, worked out by hand.
			q := correlate.ScopeQuery{Service: "api", Messages: []string{"db timeout after <*>s on <*>"},
				From: ts("2026-11-19T23:58:00Z"), To: ts("2026-11-20T00:00:00Z"), Window: w}
			got, err := set.src.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v, want %v", what, got, want)
				}
			}
			check("errors by customer", got.Errors[correlate.FieldCustomer], map[string]float64{"42": 2})
			check("requests by customer", got.Requests[correlate.FieldCustomer], map[string]float64{"42": 3, "7": 1})
			check("errors by host", got.Errors[correlate.FieldHost], map[string]float64{"h1": 1, "h2": 1})
			check("requests by host", got.Requests[correlate.FieldHost], map[string]float64{"h1": 2, "h2": 2})
			check("errors by version", got.Errors[correlate.FieldVersion], map[string]float64{"1.0": 2})
			check("host requests", got.HostRequests, map[string][]float64{"h1": {1, 1, 2, 0, 0}, "h2": {1, 1, 0, 0, 0}})
			check("host errors", got.HostErrors, map[string][]float64{"h1": {1, 0, 0, 0, 0}, "h2": {1, 0, 0, 0, 0}})
			if len(got.Samples) != 2 || got.Samples[0].Host != "h1" || got.Samples[0].Customer != "42" ||
				got.Samples[1].Message != "db timeout after 31s on 10.0.0.2" || !got.Samples[0].Time.Equal(ts("2026-11-19T23:58:05Z")) {
				t.Errorf("samples: %+v", got.Samples)
			}
			want, err := logs.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			report(t, "scope of api db timeout", diffScope(want, got))

			// Every signature of every service, and a range inside the
			// window, agree with the file source.
			for _, st := range tr.Services {
				for _, m := range st.Messages {
					q := correlate.ScopeQuery{Service: st.Service, Messages: []string{m.Message},
						From: ts("2026-11-19T23:59:00Z"), To: ts("2026-11-20T00:03:00Z"), Window: w}
					got, err := set.src.Scope(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					want, err := logs.Scope(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					report(t, "scope of "+st.Service+" "+m.Message, diffScope(want, got))
				}
			}

			// A fresh Source has no Traffic to remember raw messages from:
			// it must find them itself and give the same answer.
			fresh := c.source(t, set.index, farFuture)
			got2, err := fresh.Scope(ctx, correlate.ScopeQuery{Service: "web", Messages: []string{"HTTP <*>", template.Truncate(template.Mask(longMessage))},
				From: ts("2026-11-20T00:00:00Z"), To: ts("2026-11-20T00:03:00Z"), Window: w})
			if err != nil {
				t.Fatal(err)
			}
			want2, err := logs.Scope(ctx, correlate.ScopeQuery{Service: "web", Messages: []string{"HTTP <*>", template.Truncate(template.Mask(longMessage))},
				From: ts("2026-11-20T00:00:00Z"), To: ts("2026-11-20T00:03:00Z"), Window: w})
			if err != nil {
				t.Fatal(err)
			}
			report(t, "scope without a prior Traffic", diffScope(want2, got2))
		})
	}
}

func TestTrafficComplete(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	set := loadExplicit(t, c)
	w := window(t, handFrom, handTo, time.Minute)
	for _, tc := range []struct {
		now  string
		lag  time.Duration
		want int
	}{
		{"2030-01-01T00:00:00Z", time.Minute, 0},      // long past: all complete
		{"2026-11-20T00:03:00Z", 0, 0},                // at the window's end, no lag
		{"2026-11-20T00:03:30Z", time.Minute, 4},      // the last bucket may still fill
		{"2026-11-20T00:01:45Z", 30 * time.Second, 3}, // cutoff 00:01:15: b0..b2 ended
		{"2026-11-20T00:00:30Z", time.Minute, 1},      // cutoff 23:59:30: only b0 ended
		{"2026-11-19T23:58:30Z", time.Minute, 1},      // nothing ended: the least there is
	} {
		now := ts(tc.now)
		s := c.source(t, set.index, func(c *Config) { c.Now = func() time.Time { return now }; c.Lag = tc.lag })
		tr, err := s.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Complete != tc.want {
			t.Errorf("now %s lag %s: Complete = %d, want %d", tc.now, tc.lag, tr.Complete, tc.want)
		}
	}
}

func TestRange(t *testing.T) {
	c := testCluster(t)
	set := loadExplicit(t, c)
	from, to, err := set.src.Range(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !from.Equal(ts("2026-11-19T23:57:59.999Z")) || !to.Equal(ts("2026-11-20T00:03:00Z")) {
		t.Errorf("Range = %s, %s", from, to)
	}
}

// A step that does not divide an hour still buckets from w.From, not from
// the Unix epoch.
func TestTrafficOddStep(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	set := loadExplicit(t, c)
	w := correlate.Window{From: ts("2026-11-19T23:57:59Z"), To: ts("2026-11-20T00:03:07Z"), Step: 7 * time.Second}
	got, err := set.src.Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fileLogs(t, set.file, time.Second).Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "traffic with a 7s step", diffTraffic(want, got))
}

// Fields configured but absent from every mapping (a typo, or data that
// never carries them) read as missing values, exactly as in the file
// source: no service is "(none)", no customer is no breakdown.
func TestUnmappedFields(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	set := loadExplicit(t, c)
	w := window(t, handFrom, handTo, time.Minute)
	fields := rules.Default().Fields
	fields.Service = "svc.not_there"
	fields.Customer = "customer_not_there"
	fields.Outcome = "outcome.not_there"
	fields.Message = []string{"no.such.message", "error.message", "message"}
	s := c.source(t, set.index, farFuture, func(c *Config) { c.Fields = fields })
	logs := fileLogsWith(t, set.file, time.Minute, fields)
	got, err := s.Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	want, err := logs.Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "traffic with unmapped fields", diffTraffic(want, got))
	if len(got.Services) != 1 || got.Services[0].Service != "(none)" {
		t.Errorf("services: %+v", got.Services)
	}
	for _, m := range got.Services[0].Messages {
		q := correlate.ScopeQuery{Service: "(none)", Messages: []string{m.Message}, From: w.From, To: w.To, Window: w}
		gs, err := s.Scope(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := logs.Scope(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		report(t, "scope of "+m.Message, diffScope(ws, gs))
	}
}

// Scope is safe to call concurrently, as a daemon may.
func TestScopeConcurrent(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	set := loadExplicit(t, c)
	w := window(t, handFrom, handTo, time.Minute)
	tr, err := set.src.Traffic(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	logs := fileLogs(t, set.file, time.Minute)
	var wg sync.WaitGroup
	for _, st := range tr.Services {
		for _, m := range st.Messages {
			q := correlate.ScopeQuery{Service: st.Service, Messages: []string{m.Message}, From: w.From, To: w.To, Window: w}
			want, err := logs.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				got, err := set.src.Scope(ctx, q)
				if err != nil {
					t.Error(err)
					return
				}
				if d := diffScope(want, got); len(d) > 0 {
					t.Errorf("concurrent scope of %s %s: %v", q.Service, m.Message, d)
				}
			})
		}
	}
	wg.Go(func() {
		if _, err := set.src.Traffic(ctx, w); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
}

// TestTrafficOneBucket: a one-bucket window, as an incremental evaluation
// reads its new bucket, counts requests with a terms aggregation, not the
// composite: each bucket read alone has the requests per service of the
// same bucket in a read of the whole window, documents without a service
// included, also when the terms answer cannot hold every service and the
// composite counts them after all.
func TestTrafficOneBucket(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	w := window(t, handFrom, handTo, time.Minute)
	for _, tc := range handLoads {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.load(t, c)
			whole, err := set.src.Traffic(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			for _, terms := range []int{maxTermsBuckets, 1} {
				src := c.source(t, set.index, farFuture)
				src.termsBuckets = terms
				for i := range w.Len() {
					one := correlate.Window{From: w.Start(i), To: w.Start(i + 1), Step: w.Step}
					got, err := src.Traffic(ctx, one)
					if err != nil {
						t.Fatal(err)
					}
					want := map[string]float64{}
					for _, st := range whole.Services {
						if st.Requests[i] > 0 {
							want[st.Service] = st.Requests[i]
						}
					}
					have := map[string]float64{}
					for _, st := range got.Services {
						if st.Requests[0] > 0 {
							have[st.Service] = st.Requests[0]
						}
					}
					if !reflect.DeepEqual(have, want) {
						t.Errorf("terms size %d, bucket %d alone: requests %v, want %v as in the whole window", terms, i, have, want)
					}
				}
			}
		})
	}
}
