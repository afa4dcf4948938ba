package evidence

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// chartServer is a Handler over st, returned with its mux so a test can
// read how many charts it drew.
func chartServer(t testing.TB, st *fakeStore, cacheBytes int64) (*Handler, *http.ServeMux) {
	t.Helper()
	h, err := New(Config{Store: st, Now: func() time.Time { return fixNow }, Logger: slog.New(slog.DiscardHandler), ChartCacheBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	return h, mux
}

// A chart is drawn once per version of its evidence: again when a deploy
// around it or the finding changes, never for a repeated request.
func TestChartCachedPerVersion(t *testing.T) {
	st := fixture()
	h, mux := chartServer(t, st, 0)
	path := "/incidents/" + fridayID + "/chart.svg"
	first := get(t, mux, path)
	if first.code != http.StatusOK {
		t.Fatalf("status %d: %s", first.code, first.body)
	}
	again := get(t, mux, path)
	if n := h.renders.Load(); n != 1 || !bytes.Equal(first.body, again.body) {
		t.Fatalf("a repeated request drew %d charts (same bytes: %v), want 1", n, bytes.Equal(first.body, again.body))
	}

	// A deploy arrives inside the chart's window: a new version.
	st.deploys = append(st.deploys, correlate.Deploy{ID: "dep-late", Service: "edge-router", Version: "3.8.1",
		StartedAt: at(16, 30)})
	third := get(t, mux, path)
	if n := h.renders.Load(); n != 2 || !bytes.Contains(third.body, []byte("3.8.1")) {
		t.Fatalf("after a new deploy: %d renders, chart shows it: %v", n, bytes.Contains(third.body, []byte("3.8.1")))
	}

	// An evaluation updates the finding: a new version again.
	i := slices.IndexFunc(st.incidents, func(in escalate.Incident) bool { return in.ID == fridayID })
	in := &st.incidents[i]
	f := *in.Finding
	f.Frequency.Count++
	in.Finding = &f
	get(t, mux, path)
	if n := h.renders.Load(); n != 3 {
		t.Fatalf("after the finding changed: %d renders, want 3", n)
	}
	// The other format and the scope chart are versions of their own.
	get(t, mux, "/incidents/"+fridayID+"/chart.png")
	get(t, mux, "/incidents/"+fridayID+"/scope.svg")
	if n := h.renders.Load(); n != 5 {
		t.Fatalf("after two other charts: %d renders, want 5", n)
	}
}

// Concurrent requests for one chart draw it once.
func TestChartRenderedOnceUnderConcurrency(t *testing.T) {
	h, mux := chartServer(t, fixture(), 0)
	const n = 50
	start := make(chan struct{})
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/incidents/"+fridayID+"/chart.png", nil))
			codes <- rec.Code
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a request got %d", c)
		}
	}
	if got := h.renders.Load(); got != 1 {
		t.Errorf("%d concurrent requests drew %d charts, want 1", n, got)
	}
}

// The version is the ETag: a client that has the chart gets a 304.
func TestChartETag(t *testing.T) {
	_, mux := chartServer(t, fixture(), 0)
	path := "/incidents/" + fridayID + "/scope.png"
	res := get(t, mux, path)
	etag := res.header.Get("ETag")
	if res.code != http.StatusOK || len(etag) != 34 {
		t.Fatalf("status %d, ETag %q", res.code, etag)
	}
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("If-None-Match", etag)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("If-None-Match got %d with %d bytes, want 304 and none", rec.Code, rec.Body.Len())
	}
}

// The cache keeps within its budget, evicting the least recently used,
// and does not keep failures.
func TestRenderCacheBound(t *testing.T) {
	c := newRenderCache(10)
	renders := 0
	val := func(s string) func() ([]byte, error) {
		return func() ([]byte, error) { renders++; return []byte(s), nil }
	}
	mustGet := func(key string, render func() ([]byte, error)) {
		t.Helper()
		if _, err := c.get(key, render); err != nil {
			t.Fatal(err)
		}
		if c.size > c.max {
			t.Fatalf("cache holds %d bytes over its %d", c.size, c.max)
		}
	}
	mustGet("a", val("aaaa"))
	mustGet("b", val("bbbb"))
	mustGet("a", val("aaaa")) // a is now the most recent
	mustGet("c", val("cccc")) // evicts b
	if renders != 3 {
		t.Fatalf("%d renders, want 3", renders)
	}
	mustGet("a", val("aaaa"))
	if renders != 3 {
		t.Errorf("a was evicted though recently used")
	}
	mustGet("b", val("bbbb"))
	if renders != 4 {
		t.Errorf("b was kept past the budget")
	}
	mustGet("big", val("0123456789x"))
	mustGet("big", val("0123456789x"))
	if renders != 6 {
		t.Errorf("a value over the budget was cached")
	}
	boom := errors.New("boom")
	if _, err := c.get("e", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	mustGet("e", val("e"))
	if renders != 7 {
		t.Errorf("a failed render was cached")
	}
}

// BenchmarkChartsConcurrent sends 500 requests for one incident's PNG
// chart at once over real HTTP on the loopback, as a Slack channel's
// clients or an attacker would, and reports their latency, how many
// charts were drawn, and the process's peak RSS. Before charts were cached,
// the same took RSS to 309 MB with a 10 s p50.
//
//	go test -run '^$' -bench ChartsConcurrent -benchtime 1x ./escalate/evidence/
func BenchmarkChartsConcurrent(b *testing.B) {
	const n = 500
	for b.Loop() {
		h, mux := chartServer(b, fixture(), 0)
		srv := httptest.NewServer(mux)
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
		var peak atomic.Int64
		stop := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				if v := rssBytes(); v > peak.Load() {
					peak.Store(v)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
		start := make(chan struct{})
		lat := make([]float64, n)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range n {
			wg.Go(func() {
				<-start
				t0 := time.Now()
				resp, err := client.Get(srv.URL + "/incidents/" + fridayID + "/chart.png")
				if err != nil {
					failed.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				lat[i] = float64(time.Since(t0).Microseconds()) / 1000
			})
		}
		close(start)
		wg.Wait()
		close(stop)
		sampler.Wait()
		srv.Close()
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d requests failed", f, n)
		}
		slices.Sort(lat)
		b.ReportMetric(n, "requests")
		b.ReportMetric(float64(h.renders.Load()), "renders")
		b.ReportMetric(lat[n/2], "p50-ms")
		b.ReportMetric(lat[n*99/100], "p99-ms")
		b.ReportMetric(float64(peak.Load())/(1<<20), "rss-max-MB")
	}
}

// rssBytes is this process's resident set from /proc, 0 where there is
// none.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
