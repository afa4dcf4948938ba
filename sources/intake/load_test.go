package intake_test

import (
	"context"
	"fmt"
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

	"github.com/culprithq/culprit/escalate/store"
	"github.com/culprithq/culprit/sources/intake"
)

// BenchmarkIntakeLoadSQLite holds a steady rate of deploy and ticket
// events against the intake API, over real HTTP on the loopback, into the
// embedded SQLite store, and then checks that every accepted event is in
// the store. Each iteration is one run of CULPRIT_LOAD_SECONDS (default
// 60) at CULPRIT_LOAD_RATE events a second (default 2000), one event per
// request as webhooks send them, alternating deploys and tickets.
//
// The load is open-loop: event i is due at start + i/rate whatever the
// server's speed, and its latency counts from when it was due, so a stall
// shows as latency instead of quietly lowering the rate (coordinated
// omission). The run fails if any request is refused, if the achieved
// rate falls short of 99% of the target, or if the store holds a different
// number of events than were accepted.
//
//	go test -run '^$' -bench IntakeLoadSQLite -benchtime 1x ./sources/intake/
func BenchmarkIntakeLoadSQLite(b *testing.B) {
	rate := envInt(b, "CULPRIT_LOAD_RATE", 2000)
	seconds := envInt(b, "CULPRIT_LOAD_SECONDS", 60)
	const token = "load-test-token-0123456789"
	for i := 0; b.Loop(); i++ {
		st, err := store.Open(context.Background(), b.TempDir(), time.Now)
		if err != nil {
			b.Fatal(err)
		}
		h, err := intake.New(intake.Config{Token: token, Deploys: st, Tickets: st, Deliveries: st, Now: time.Now,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		res := runLoad(b, srv.URL, token, rate, time.Duration(seconds)*time.Second)
		srv.Close()

		ctx := context.Background()
		span := [2]time.Time{loadEpoch.Add(-time.Hour), loadEpoch.Add(1000 * time.Hour)}
		deploys, err := st.Deploys(ctx, span[0], span[1])
		if err != nil {
			b.Fatal(err)
		}
		tickets, err := st.Tickets(ctx, span[0], span[1])
		if err != nil {
			b.Fatal(err)
		}
		st.Close()
		if res.failed > 0 {
			b.Fatalf("%d of %d requests failed; first: %s", res.failed, res.sent, res.firstErr)
		}
		if len(deploys) != res.deploys || len(tickets) != res.tickets {
			b.Fatalf("lost events: accepted %d deploys and %d tickets, store holds %d and %d", res.deploys, res.tickets, len(deploys), len(tickets))
		}
		achieved := float64(res.sent) / res.elapsed.Seconds()
		if achieved < 0.99*float64(rate) {
			b.Fatalf("achieved %.0f events/s, target %d", achieved, rate)
		}
		slices.Sort(res.latency)
		q := func(p float64) float64 {
			return float64(res.latency[int(p*float64(len(res.latency)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(achieved, "events/s")
		b.ReportMetric(float64(res.sent), "events")
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
		b.ReportMetric(0, "lost")
	}
}

// loadEpoch dates the generated events; their times do not matter to the
// intake, only that the store can be asked for all of them.
var loadEpoch = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)

type loadResult struct {
	sent, failed     int
	deploys, tickets int
	firstErr         string
	elapsed          time.Duration
	latency          []time.Duration
}

func runLoad(b *testing.B, base, token string, rate int, dur time.Duration) loadResult {
	b.Helper()
	total := rate * int(dur/time.Second)
	interval := time.Second / time.Duration(rate)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 30 * time.Second}
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, total)
	var (
		mu  sync.Mutex
		res = loadResult{latency: make([]time.Duration, 0, total)}
		wg  sync.WaitGroup
	)
	var deploys, tickets atomic.Int64
	for range 64 {
		wg.Go(func() {
			for j := range jobs {
				path, body := loadEvent(j.i)
				req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				lat := time.Since(j.due)
				ok := err == nil && resp.StatusCode/100 == 2
				msg := ""
				if err != nil {
					msg = err.Error()
				} else {
					if !ok {
						raw, _ := io.ReadAll(resp.Body)
						msg = fmt.Sprintf("%s: %d %s", path, resp.StatusCode, raw)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if ok && j.i%2 == 0 {
					deploys.Add(1)
				} else if ok {
					tickets.Add(1)
				}
				mu.Lock()
				res.sent++
				res.latency = append(res.latency, lat)
				if !ok {
					res.failed++
					if res.firstErr == "" {
						res.firstErr = msg
					}
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d) // pacing the load generator, not synchronising a test
		}
		jobs <- job{i: i, due: due}
	}
	close(jobs)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.deploys, res.tickets = int(deploys.Load()), int(tickets.Load())
	return res
}

// loadEvent is the i-th event: deploys on even i, tickets on odd i, each
// with a distinct id so that none replaces another in the store.
func loadEvent(i int) (path, body string) {
	at := loadEpoch.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
	if i%2 == 0 {
		return "/api/v1/deploys", `{"id":"load-` + strconv.Itoa(i) + `","service":"edge-router","version":"3.8.` + strconv.Itoa(i) +
			`","environment":"production","started_at":"` + at + `","author":"load","hosts":[{"name":"edge-aws-use1-03","at":"` + at + `"}]}`
	}
	return "/api/v1/tickets", `{"id":` + strconv.Itoa(1_000_000+i) + `,"created_at":"` + at +
		`","subject":"502 from /fn endpoints","priority":"high","status":"new","tags":["functions","502"],"organization_id":` + strconv.Itoa(1000+i%200) + `}`
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}
