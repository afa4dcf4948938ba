package elasticsearch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"

	"github.com/culprithq/culprit/sources/elasticsearch/estest"
)

func kts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// friday is the finding of the Friday incident as culprit reports it.
func friday() *correlate.Finding {
	rec := kts("2026-11-20T17:12:00Z")
	return &correlate.Finding{
		ID:        "f-edge-router-1a2b",
		Service:   "edge-router",
		Kind:      correlate.KindNewError,
		Signature: "function invocation failed: fn-<*> returned <*> from upstream <*>",
		Onset:     kts("2026-11-20T16:01:00Z"),
		Detected:  kts("2026-11-20T18:00:00Z"),
		Recovered: &rec,
	}
}

// TestDiscoverURL pins the whole link for a realistic finding: Kibana 8.x
// Discover, state in the hash as Rison, encoded as Kibana encodes it.
func TestDiscoverURL(t *testing.T) {
	got, err := DiscoverURL("http://localhost:5601/", "culprit-logs", rules.Default().Fields, friday(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	const want = "http://localhost:5601/app/discover#/" +
		"?_g=(time:(from:'2026-11-20T15:46:00.000Z',to:'2026-11-20T17:17:00.000Z'))" +
		"&_a=(columns:!(service.name,host.name,organization.id,error.message)," +
		"dataSource:(dataViewId:culprit-logs,type:dataView)," +
		"query:(language:kuery,query:'service.name:%22edge-router%22%20and%20" +
		"(error.message:%22function%20invocation%20failed:%20fn-%22%20or%20error.message:function*invocation*failed%5C:*fn-*%20or%20" +
		"message:%22function%20invocation%20failed:%20fn-%22%20or%20message:function*invocation*failed%5C:*fn-*)%20and%20" +
		"(error.message:%22from%20upstream%22%20or%20error.message:*from*upstream*%20or%20" +
		"message:%22from%20upstream%22%20or%20message:*from*upstream*)'))"
	if got != want {
		t.Errorf("DiscoverURL:\ngot  %s\nwant %s", got, want)
	}

	// The same state, decoded, is what Kibana parses.
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(u.Fragment, "/?"))
	if err != nil {
		t.Fatal(err)
	}
	if g := q.Get("_g"); g != "(time:(from:'2026-11-20T15:46:00.000Z',to:'2026-11-20T17:17:00.000Z'))" {
		t.Errorf("_g = %s", g)
	}
	wantA := `(columns:!(service.name,host.name,organization.id,error.message),dataSource:(dataViewId:culprit-logs,type:dataView),` +
		`query:(language:kuery,query:'service.name:"edge-router" and ` +
		`(error.message:"function invocation failed: fn-" or error.message:function*invocation*failed\:*fn-* or message:"function invocation failed: fn-" or message:function*invocation*failed\:*fn-*) and ` +
		`(error.message:"from upstream" or error.message:*from*upstream* or message:"from upstream" or message:*from*upstream*)'))`
	if a := q.Get("_a"); a != wantA {
		t.Errorf("_a:\ngot  %s\nwant %s", a, wantA)
	}
}

func TestDiscoverURLVariants(t *testing.T) {
	tests := []struct {
		name     string
		base     string
		dataView string
		finding  func() *correlate.Finding
		from, to time.Time
		// prefix of the URL, and substrings of the decoded _g and _a.
		prefix     string
		wantG      string
		wantA      []string
		wantErr    string
		notInError string
	}{
		{
			name: "base path, space and explicit range", base: "https://kb.example.com/s/ops/", dataView: "1f2e-uuid",
			finding: friday, from: kts("2026-11-20T16:00:00Z"), to: kts("2026-11-20T16:30:00Z"),
			prefix: "https://kb.example.com/s/ops/app/discover#/?_g=",
			wantG:  "(time:(from:'2026-11-20T16:00:00.000Z',to:'2026-11-20T16:30:00.000Z'))",
			wantA:  []string{"dataSource:(dataViewId:'1f2e-uuid',type:dataView)"},
		},
		{
			name: "quotes and bangs are Rison-escaped", base: "http://kb:5601", dataView: "it's mine!",
			finding: func() *correlate.Finding {
				f := friday()
				f.Service = "shop's api"
				f.Signature = "payment declined by issuer! card <*> rejected"
				f.Recovered = nil
				return f
			},
			prefix: "http://kb:5601/app/discover#/?_g=",
			wantG:  "(time:(from:'2026-11-20T15:46:00.000Z',to:'2026-11-20T18:00:00.000Z'))",
			wantA: []string{
				"dataSource:(dataViewId:'it!'s mine!!',type:dataView)",
				`query:'service.name:"shop!'s api" and (error.message:"payment declined by issuer!! card" or error.message:payment*declined*by*issuer!!*card* or `,
				`(error.message:"rejected" or error.message:*rejected or message:"rejected" or message:*rejected)'))`,
			},
		},
		{
			name: "ongoing finding without detection time", base: "http://kb", dataView: "v",
			finding: func() *correlate.Finding {
				f := friday()
				f.Recovered, f.Detected = nil, time.Time{}
				return f
			},
			prefix: "http://kb/app/discover#/?_g=",
			wantG:  "(time:(from:'2026-11-20T15:46:00.000Z',to:'2026-11-20T17:01:00.000Z'))",
		},
		{name: "ticket surge", base: "http://kb", dataView: "v", finding: func() *correlate.Finding {
			return &correlate.Finding{ID: "t1", Kind: correlate.KindTicketSurge, Signature: "ticket volume: email", Onset: kts("2026-11-20T16:00:00Z")}
		}, wantErr: "ticket surge"},
		{name: "no data view", base: "http://kb", dataView: " ", finding: friday, wantErr: "data view"},
		{name: "no scheme", base: "localhost:5601", dataView: "v", finding: friday, wantErr: "not an absolute http(s) URL"},
		{name: "other scheme", base: "ftp://kb", dataView: "v", finding: friday, wantErr: "not an absolute http(s) URL"},
		{name: "query in base", base: "http://kb/?space=ops", dataView: "v", finding: friday, wantErr: "query or fragment"},
		{name: "credentials stay out of errors", base: "http://elastic:s3cret@kb/#/x", dataView: "v", finding: friday, wantErr: "query or fragment", notInError: "s3cret"},
		{name: "range backwards", base: "http://kb", dataView: "v", finding: friday, from: kts("2026-11-20T17:00:00Z"), to: kts("2026-11-20T16:00:00Z"), wantErr: "before it starts"},
		{name: "no finding", base: "http://kb", dataView: "v", finding: func() *correlate.Finding { return nil }, wantErr: "no finding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DiscoverURL(tc.base, tc.dataView, rules.Default().Fields, tc.finding(), tc.from, tc.to)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				if tc.notInError != "" && strings.Contains(err.Error(), tc.notInError) {
					t.Errorf("error %q leaks %q", err, tc.notInError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tc.prefix) {
				t.Errorf("%s does not start with %s", got, tc.prefix)
			}
			frag := got[strings.Index(got, "#")+1:]
			if strings.Count(frag, "&") != 1 || strings.ContainsAny(frag, " \"\\#") {
				t.Errorf("fragment is not one encoded _g and one encoded _a: %s", frag)
			}
			q, err := url.ParseQuery(strings.TrimPrefix(frag, "/?"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantG != "" && q.Get("_g") != tc.wantG {
				t.Errorf("_g = %s, want %s", q.Get("_g"), tc.wantG)
			}
			for _, w := range tc.wantA {
				if !strings.Contains(q.Get("_a"), w) {
					t.Errorf("_a = %s\nlacks %s", q.Get("_a"), w)
				}
			}
		})
	}
}

func TestDiscoverQuery(t *testing.T) {
	def := rules.Default().Fields
	tests := []struct {
		name      string
		fields    rules.Fields
		service   string
		signature string
		want      string
	}{
		{
			name: "message without wildcards matches whole", fields: def, service: "api", signature: "database connection refused",
			want: `service.name:"api" and (error.message:"database connection refused" or message:"database connection refused")`,
		},
		{
			name: "the phrase keeps what a tokenizer splits off a glued token", fields: def, service: "api",
			signature: "upstream timeout after <*>s talking to db-<*>",
			want: `service.name:"api" and (error.message:"upstream timeout after" or error.message:upstream*timeout*after* or message:"upstream timeout after" or message:upstream*timeout*after*)` +
				` and (error.message:"talking to db-" or error.message:*s*talking*to*db-* or message:"talking to db-" or message:*s*talking*to*db-*)`,
		},
		{
			name: "glued token split at a slash", fields: rules.Fields{Message: []string{"msg"}}, service: "api",
			signature: "<*>/api/v1/sites returned <*>",
			want:      `service.name:"api" and (msg:"/api/v1/sites returned" or msg:*/api/v1/sites*returned*)`,
		},
		{
			name: "glued token without a break is left out", fields: rules.Fields{Message: []string{"msg"}}, service: "api",
			signature: "no such user<*>",
			want:      `service.name:"api" and (msg:"no such" or msg:no*such*user*)`,
		},
		{
			name: "only the two longest runs, in order", fields: rules.Fields{Service: "svc", Message: []string{"msg"}}, service: "api",
			signature: "queue <*> overflow while draining <*> retrying in <*> seconds",
			want:      `svc:"api" and (msg:"overflow while draining" or msg:*overflow*while*draining*) and (msg:"retrying in" or msg:*retrying*in*)`,
		},
		{
			name: "special characters are escaped", fields: def, service: "api",
			signature: "cannot read (config) or a:b <*>",
			want:      `service.name:"api" and (error.message:"cannot read (config) or a:b" or error.message:cannot*read*\(config\)*or*a\:b* or message:"cannot read (config) or a:b" or message:cannot*read*\(config\)*or*a\:b*)`,
		},
		{
			name: "truncated signature", fields: rules.Fields{Message: []string{"msg"}}, service: "api",
			signature: "panic: runtime error: index out of range…",
			want:      `service.name:"api" and (msg:"panic: runtime error: index out of" or msg:panic\:*runtime*error\:*index*out*of*range*)`,
		},
		{
			name: "nothing literal to search", fields: def, service: "api", signature: "<*> <*>: <*>",
			want: `service.name:"api"`,
		},
		{
			name: "made-up message for a status", fields: def, service: "api", signature: "HTTP 502",
			want: `service.name:"api" and not error.message:* and not message:* and http.response.status_code:502`,
		},
		{
			name: "made-up message, masked", fields: def, service: "api", signature: "HTTP <*>",
			want: `service.name:"api" and not error.message:* and not message:* and (event.outcome:failure or http.response.status_code >= 500)`,
		},
		{
			name: "error without message", fields: def, service: "api", signature: "error without message",
			want: `service.name:"api" and not error.message:* and not message:* and (event.outcome:failure or http.response.status_code >= 500)`,
		},
		{
			name: "documents without a service", fields: def, service: "(none)", signature: "<other>",
			want: `not service.name:* and (event.outcome:failure or http.response.status_code >= 500)`,
		},
		{
			name: "no fields to tell errors by", fields: rules.Fields{Service: "svc", Host: "h", Message: []string{"msg"}}, service: "api", signature: "<other>",
			want: `svc:"api"`,
		},
		{
			name: "zero fields mean the ECS defaults", fields: rules.Fields{}, service: `a"b\c`, signature: "disk full",
			want: `service.name:"a\"b\\c" and (error.message:"disk full" or message:"disk full")`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DiscoverQuery(tc.fields, &correlate.Finding{Service: tc.service, Signature: tc.signature})
			if got != tc.want {
				t.Errorf("\ngot  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestEscaping(t *testing.T) {
	tests := []struct {
		name, fn, in, want string
	}{
		{"kql specials", "kql", `a:b (c) <d> "e" *f* {g} \h`, `a\:b \(c\) \<d\> \"e\" \*f\* \{g\} \\h`},
		{"kql not inside a word", "kql", "cannot connect", `can\not connect`},
		{"kql not at the end", "kql", "could not", "could not"},
		{"kql or and and between spaces", "kql", "this or that AND more", `this \or that \AND more`},
		{"kql words containing operators", "kql", "order android notify", "order android notify"},
		{"kql operator after a tab", "kql", "a\tor\tb", "a\t\\or\tb"},
		{"quoted", "quoted", `say "hi" \o/`, `"say \"hi\" \\o/"`},
		{"rison identifier", "rison", "culprit-logs", "culprit-logs"},
		{"rison quote", "rison", "it's", "'it!'s'"},
		{"rison bang", "rison", "wow!", "'wow!!'"},
		{"rison bang before quote", "rison", "!'", "'!!!''"},
		{"rison leading digit", "rison", "1abc", "'1abc'"},
		{"rison leading minus", "rison", "-x", "'-x'"},
		{"rison empty", "rison", "", "''"},
		{"rison space", "rison", "a b", "'a b'"},
		{"uri reserved", "uri", "a b&c=d#e/f?g+h%", "a%20b%26c%3Dd%23e%2Ff%3Fg%2Bh%25"},
		{"uri rison punctuation kept", "uri", "(x:'y',!z*)@$;~", "(x:'y',!z*)@$;~"},
		{"uri utf-8", "uri", "é", "%C3%A9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			switch tc.fn {
			case "kql":
				got = kqlUnquoted(tc.in)
			case "quoted":
				got = kqlQuoted(tc.in)
			case "rison":
				got = risonString(tc.in)
			case "uri":
				got = encodeURIQuery(tc.in)
			}
			if got != tc.want {
				t.Errorf("%s(%q) = %q, want %q", tc.fn, tc.in, got, tc.want)
			}
		})
	}
}

// kibanaQueryString is what Kibana sends for a KQL wildcard value such as
// literalRun.pattern: the value unescaped as Kibana's KQL grammar does,
// then a query_string query whose pieces between wildcards are escaped by
// escapeQueryString in @kbn/es-query (whose character class, [+-=…], also
// covers the range from '+' to '=': digits, ',', '.', '/', ';'). Spaces
// are not escaped there, which is why a pattern must hold none.
func kibanaQueryString(kql string) string {
	esc := func(s string) string {
		var b strings.Builder
		for _, c := range s {
			if c >= '+' && c <= '=' || strings.ContainsRune(`&|><!(){}[]^"~*?:\/`, c) {
				b.WriteByte('\\')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	var pieces []string
	var cur strings.Builder
	rs := []rune(kql)
	for i := 0; i < len(rs); i++ {
		switch {
		case rs[i] == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
		case rs[i] == '*':
			pieces = append(pieces, esc(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(rs[i])
		}
	}
	pieces = append(pieces, esc(cur.String()))
	return strings.Join(pieces, "*")
}

// TestDiscoverQueryOnElasticsearch runs the queries Kibana derives from a
// link's KQL (match_phrase for a phrase, query_string for a wildcard) on a
// real cluster, against text, keyword and text+keyword fields: the choice
// of both forms must find exactly a signature's documents on each.
func TestDiscoverQueryOnElasticsearch(t *testing.T) {
	base := strings.TrimRight(estest.URL(t), "/")
	index := fmt.Sprintf("culprit-kibana-test-%d", time.Now().UnixNano())
	do := func(method, path, body string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, base+"/"+index, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	do(http.MethodPut, "/"+index, `{"mappings":{"properties":{
		"text":{"type":"text"},"keyword":{"type":"keyword"},
		"multi":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}},"n":{"type":"integer"}}}}`)
	messages := []string{
		0:  "function invocation failed: fn-8812 returned 502 from upstream 10.0.3.7:8080",
		1:  "function invocation failed: fn-17 returned 500 from upstream 10.1.1.1:80",
		2:  "function invocation succeeded: fn-8812 returned 200 from upstream 10.0.3.7:8080",
		3:  "upstream from failed invocation function fn-1",
		4:  "upstream timeout after 30s talking to db-3",
		5:  "upstream timeout after 5s talking to cache-1",
		6:  "cannot connect to 10.0.0.1:5432 (pool exhausted)",
		7:  "Cannot connect to 10.0.0.2:5432 (pool exhausted)",
		8:  "database connection refused",
		9:  "no such user42",
		10: "no such group7",
	}
	var bulk strings.Builder
	for i, m := range messages {
		doc, _ := json.Marshal(map[string]any{"text": m, "keyword": m, "multi": m, "n": i})
		bulk.WriteString(`{"index":{}}` + "\n" + string(doc) + "\n")
	}
	do(http.MethodPost, "/"+index+"/_bulk?refresh=true", bulk.String())

	tests := []struct {
		name      string
		signature string
		want      []int
		// onlyText lists documents a text field finds beyond want: its
		// analyser ignores case and punctuation.
		onlyText []int
	}{
		{"friday", "function invocation failed: fn-<*> returned <*> from upstream <*>", []int{0, 1}, nil},
		{"glued tokens", "upstream timeout after <*>s talking to db-<*>", []int{4}, nil},
		{"punctuation", "cannot connect to <*> (pool exhausted)", []int{6}, []int{7}},
		{"no wildcard", "database connection refused", []int{8}, nil},
		{"glued token without a break", "no such user<*>", []int{9}, []int{10}},
	}
	for _, tc := range tests {
		for _, field := range []string{"text", "keyword", "multi", "multi.keyword"} {
			t.Run(tc.name+"/"+field, func(t *testing.T) {
				var must []any
				for _, r := range literalRuns(tc.signature) {
					var should []any
					if r.phrase != "" {
						should = append(should, map[string]any{"match_phrase": map[string]any{field: r.phrase}})
					}
					if !r.whole {
						should = append(should, map[string]any{"query_string": map[string]any{"fields": []string{field}, "query": kibanaQueryString(r.pattern())}})
					}
					must = append(must, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
				}
				body, _ := json.Marshal(map[string]any{"size": 100, "query": map[string]any{"bool": map[string]any{"must": must}}, "sort": []string{"n"}})
				res := do(http.MethodPost, "/"+index+"/_search", string(body))
				var got []int
				for _, h := range res["hits"].(map[string]any)["hits"].([]any) {
					got = append(got, int(h.(map[string]any)["_source"].(map[string]any)["n"].(float64)))
				}
				want := tc.want
				if field == "text" || field == "multi" {
					want = append(slices.Clone(tc.want), tc.onlyText...)
					slices.Sort(want)
				}
				if !slices.Equal(got, want) {
					t.Errorf("documents %v, want %v", got, want)
				}
			})
		}
	}
}
