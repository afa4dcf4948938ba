package elasticsearch

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	t.Logf("error: %v", err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\n  does not contain %q", err, p)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Index: "logs-*"}, "no URL"},
		{Config{URLs: []string{"127.0.0.1:9200"}, Index: "logs-*"}, "not an http(s) URL"},
		{Config{URLs: []string{"http://u:secret@127.0.0.1:9200"}}, "no index"},
		{Config{URLs: []string{"http://127.0.0.1:9200"}, Index: "x", APIKey: "k", Username: "u"}, "either an API key"},
		{Config{URLs: []string{"http://127.0.0.1:9200"}, Index: "x", Fields: rules.Fields{Time: "@timestamp"}}, "fields.service"},
		{Config{URLs: []string{"http://127.0.0.1:9200"}, Index: "x", CACertFile: "/nonexistent/ca.pem"}, "CA certificates"},
	} {
		_, err := New(tc.cfg)
		mustContain(t, err, tc.want)
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks a password: %v", err)
		}
	}
}

func TestErrorIndexNotFound(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	w := window(t, handFrom, handTo, time.Minute)

	missing := indexName(t, "missing")
	s := c.source(t, missing)
	_, err := s.Traffic(ctx, w)
	mustContain(t, err, "index not found (404)", missing, redact(c.url))
	_, _, err = s.Range(ctx)
	mustContain(t, err, "index not found (404)", missing)

	// A pattern matching nothing is an error too: an empty answer would
	// read as "no errors".
	pattern := indexName(t, "nomatch") + "-*"
	_, err = c.source(t, pattern).Traffic(ctx, w)
	mustContain(t, err, "matches no index", pattern)
	_, err = c.source(t, pattern).Scope(ctx, correlate.ScopeQuery{Service: "api", Messages: []string{"x"}, From: w.From, To: w.To, Window: w})
	mustContain(t, err, "matches no index", pattern)
}

// freeURL is an address where nothing listens.
func freeURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestErrorUnreachable(t *testing.T) {
	// No cluster needed: nothing listens at the address.
	u := freeURL(t)
	withCreds := strings.Replace(u, "http://", "http://culprit:s3cret-pw@", 1)
	s, err := New(Config{URLs: []string{withCreds}, Index: "logs-*", MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = time.Millisecond
	w := window(t, handFrom, handTo, time.Minute)
	_, err = s.Traffic(context.Background(), w)
	mustContain(t, err, "cluster unreachable", u, `"logs-*"`, "after 3 attempts", "connection refused")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if st := s.Stats(); st.Requests != 3 || st.Retries != 2 {
		t.Errorf("stats %+v: want 3 requests, 2 of them retries", st)
	}
}

func TestErrorAuthentication(t *testing.T) {
	u := os.Getenv("CULPRIT_TEST_ES_SECURE_URL")
	if u == "" {
		t.Skip("set CULPRIT_TEST_ES_SECURE_URL to a cluster with security on (CULPRIT_ES_SECURITY=1 scripts/es-up.sh) to test authentication")
	}
	user, pass := os.Getenv("CULPRIT_TEST_ES_SECURE_USERNAME"), os.Getenv("CULPRIT_TEST_ES_SECURE_PASSWORD")
	if user == "" {
		user = "elastic"
	}
	if pass == "" {
		pass = "culprit-test-password"
	}
	c := cluster{url: u, user: user, pass: pass}
	ctx := context.Background()
	w := window(t, handFrom, handTo, time.Minute)
	index := indexName(t, "")
	c.createIndex(t, index, explicitMapping)
	day1, day2 := handDocs(true, false)
	c.load(t, index, append(day1, day2...))

	// The right password works, in the config or in the URL.
	if _, err := c.source(t, index).Traffic(ctx, w); err != nil {
		t.Fatalf("with the right credentials: %v", err)
	}
	inURL := strings.Replace(u, "://", "://"+url.UserPassword(user, pass).String()+"@", 1)
	if _, err := New(Config{URLs: []string{inURL}, Index: index}); err != nil {
		t.Fatal(err)
	} else if s, _ := New(Config{URLs: []string{inURL}, Index: index}); s != nil {
		if _, err := s.Traffic(ctx, w); err != nil {
			t.Fatalf("with credentials in the URL: %v", err)
		}
	}

	for name, cfg := range map[string]Config{
		"wrong password": {URLs: []string{u}, Index: index, Username: user, Password: "not-the-password"},
		"no credentials": {URLs: []string{u}, Index: index},
	} {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Traffic(ctx, w)
		mustContain(t, err, "authentication failed (401)", redact(u))
		if strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
		if st := s.Stats(); st.Retries != 0 {
			t.Errorf("%s: a 401 was retried %d times", name, st.Retries)
		}
	}
}

func TestErrorRejectedQuery(t *testing.T) {
	c := testCluster(t)
	ctx := context.Background()
	index := indexName(t, "")
	// A cluster may cap terms queries lower than culprit's chunk; it then
	// refuses the query, and the operator must read which setting.
	c.createIndex(t, index, `{"settings":{"index":{"max_terms_count":1}}}`)
	c.load(t, index, []string{
		`{"@timestamp":"2026-11-20T00:00:10Z","service.name":"api","http.response.status_code":500,"error.message":"user 1 not found"}`,
		`{"@timestamp":"2026-11-20T00:00:20Z","service.name":"api","http.response.status_code":500,"error.message":"user 2 not found"}`,
	})
	s := c.source(t, index)
	w := window(t, handFrom, handTo, time.Minute)
	if _, err := s.Traffic(ctx, w); err != nil {
		t.Fatal(err)
	}
	_, err := s.Scope(ctx, correlate.ScopeQuery{Service: "api", Messages: []string{"user <*> not found"}, From: w.From, To: w.To, Window: w})
	mustContain(t, err, "query rejected (400)", index, "index.max_terms_count", "exceeded the allowed maximum of [1]")
	if st := s.Stats(); st.Retries != 0 {
		t.Errorf("a 400 was retried %d times", st.Retries)
	}
}

func TestErrorMappingConflict(t *testing.T) {
	c := testCluster(t)
	base := indexName(t, "")
	c.createIndex(t, base+"-2026.11.19", `{"mappings":{"properties":{"organization":{"properties":{"id":{"type":"long"}}}}}}`)
	c.createIndex(t, base+"-2026.11.20", `{"mappings":{"properties":{"organization":{"properties":{"id":{"type":"keyword"}}}}}}`)
	c.load(t, base+"-2026.11.19", []string{`{"@timestamp":"2026-11-19T23:59:00Z","service.name":"api","organization.id":1}`})
	c.load(t, base+"-2026.11.20", []string{`{"@timestamp":"2026-11-20T00:01:00Z","service.name":"api","organization.id":"1"}`})
	_, err := c.source(t, base+"-*").Traffic(context.Background(), window(t, handFrom, handTo, time.Minute))
	mustContain(t, err, "fields.customer", `"organization.id" is mapped inconsistently`, "long in "+base+"-2026.11.19", "keyword in "+base+"-2026.11.20")
}

// proxy puts a handler in front of the real cluster: answers still come
// from Elasticsearch, except those the test injects.
func proxy(t *testing.T, c cluster, inject func(w http.ResponseWriter, r *http.Request) bool) string {
	target, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inject(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func isSearch(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/_search") }

func TestRetryHonoursRetryAfter(t *testing.T) {
	c := testCluster(t)
	set := loadExplicit(t, c)
	var injected atomic.Int32
	u := proxy(t, c, func(w http.ResponseWriter, r *http.Request) bool {
		if isSearch(r) && injected.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		return false
	})
	pc := c
	pc.url = u
	s := pc.source(t, set.index, farFuture)
	w := window(t, handFrom, handTo, time.Minute)
	start := time.Now()
	got, err := s.Traffic(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("retried after %s, sooner than Retry-After: 1", el)
	}
	if st := s.Stats(); st.Retries != 1 {
		t.Errorf("stats %+v: want exactly one retry", st)
	}
	want, err := set.src.Traffic(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "traffic after a 429", diffTraffic(want, got))
}

func TestRetryGivesUp(t *testing.T) {
	c := testCluster(t)
	set := loadExplicit(t, c)
	var searches atomic.Int32
	u := proxy(t, c, func(w http.ResponseWriter, r *http.Request) bool {
		if isSearch(r) {
			searches.Add(1)
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	pc := c
	pc.url = u
	s := pc.source(t, set.index, func(c *Config) { c.MaxRetries = 2 })
	_, err := s.Traffic(context.Background(), window(t, handFrom, handTo, time.Minute))
	mustContain(t, err, "overloaded or failing (HTTP 503)", "after 3 attempts", u)
	if n := searches.Load(); n != 3 {
		t.Errorf("%d search attempts, want 3 (1 + MaxRetries)", n)
	}
}

func TestTimeout(t *testing.T) {
	c := testCluster(t)
	set := loadExplicit(t, c)
	var searches atomic.Int32
	stop := make(chan struct{})
	u := proxy(t, c, func(w http.ResponseWriter, r *http.Request) bool {
		if isSearch(r) {
			searches.Add(1)
			// Never answer. Reading the body lets the server notice when
			// the client hangs up; stop releases the handler at the end.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return true
		}
		return false
	})
	t.Cleanup(func() { close(stop) }) // runs before the proxy's Close
	pc := c
	pc.url = u
	s := pc.source(t, set.index, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	_, err := s.Traffic(context.Background(), window(t, handFrom, handTo, time.Minute))
	mustContain(t, err, "no answer within 300ms", set.index)
	if n := searches.Load(); n != 1 {
		t.Errorf("%d attempts: a timeout must not be retried", n)
	}
}

func TestContextCancelled(t *testing.T) {
	c := testCluster(t)
	set := loadExplicit(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := set.src.Traffic(ctx, window(t, handFrom, handTo, time.Minute))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// A server that answers but is not Elasticsearch (another product, or a
// misrouted URL) is named as such.
func TestErrorNotElasticsearch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"indices":["logs"],"fields":{}}`)
	}))
	defer srv.Close()
	s, err := New(Config{URLs: []string{srv.URL}, Index: "logs"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Traffic(context.Background(), window(t, handFrom, handTo, time.Minute))
	mustContain(t, err, "not Elasticsearch", srv.URL)
}
