package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/file"
	"github.com/culprithq/culprit/sources/simulate"
)

// demoServe is `culprit demo --serve`: the real daemon (assembleParts: the
// same evaluator, routes, outbox and evidence pages as `culprit serve`)
// over the simulated Friday, on an accelerated clock, with the generated
// log file as its source and pages written to DIR/pages.ndjson through
// pagerduty.deliver: log. ready, if not nil, receives the evidence pages'
// address once they are served.
type demoServe struct {
	dir    string
	run    *simulate.Run
	listen string
	speed  float64
	// lead is how long before the incident's onset the clock starts: the
	// daemon needs some evaluations to see it begin.
	lead time.Duration
	// wall is the real clock the accelerated one runs on.
	wall func() time.Time
}

// checkDemoListen refuses a listen address off loopback: the demo serves
// its pages without a login (ui.insecure), which is only safe where no
// one else can connect.
func checkDemoListen(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usagef("demo: --listen %q: not host:port (example: 127.0.0.1:8080)", listen)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return usagef("demo: --listen %q: the demo serves its pages without a login, so only on loopback (127.0.0.1 or [::1])", listen)
	}
	return nil
}

func (d demoServe) serve(ctx context.Context, env *environ, ready chan<- string) error {
	progress := func(format string, a ...any) { fmt.Fprintf(env.stderr, "demo: "+format+"\n", a...) }
	cfg := rules.Default()
	step, interval := cfg.Correlate.Bucket.D(), cfg.Evaluation.Interval.D()
	lag := cfg.Sources.Elasticsearch.Lag.D()
	cfg.Store.Dir = filepath.Join(d.dir, "store")
	// Each run replays the same Friday from the start: yesterday's
	// store would already know its incidents.
	if err := os.RemoveAll(cfg.Store.Dir); err != nil {
		return fmt.Errorf("demo: clear the previous run's store: %w", err)
	}
	if err := os.MkdirAll(cfg.Store.Dir, 0o755); err != nil {
		return fmt.Errorf("demo: create the store: %w", err)
	}
	// The public listener is not what the demo is about: it feeds the
	// deploys and tickets itself. Intake still needs a way in, so it gets
	// a token nobody knows, on a port nobody is told.
	cfg.Intake.Listen, cfg.Intake.Token = "127.0.0.1:0", rules.NewSecret(rand.Text())
	cfg.UI.Listen, cfg.UI.Insecure = d.listen, true
	if _, port, _ := net.SplitHostPort(d.listen); port != "0" {
		cfg.UI.ExternalURL = "http://" + d.listen
	}
	cfg.Routes = []rules.Route{{Name: "demo-on-call", Action: rules.ActionPage}}
	// The simulated CRM names the customers and their tiers, as in the
	// demo's report; a run generated before it existed has none.
	if p := filepath.Join(d.dir, simulate.CustomersFile); fileExists(p) {
		cfg.Customers.File = p
	}
	pagesPath := filepath.Join(d.dir, "pages.ndjson")
	cfg.PagerDuty.Deliver, cfg.PagerDuty.LogFile = rules.DeliverLog, pagesPath
	if err := os.Remove(pagesPath); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("demo: clear the previous run's pages: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo: its own configuration: %w", err)
	}

	progress("indexing the generated logs …")
	l, err := file.OpenLogs(filepath.Join(d.dir, simulate.LogsFile), cfg.Fields, step)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	x, err := file.NewIndex(ctx, l)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	sim := d.run.Config
	start := d.run.Truth.Onset.Add(-d.lead).Truncate(step)
	end := sim.Start.Add(sim.Duration)
	clock := newFastClock(start, end, d.speed, d.wall)
	src := &tickSource{Source: x.Until(start.Add(-lag))}
	replay := newIntakeReplay(d.run.Deploys, d.run.Tickets)
	total := int(end.Sub(start) / interval)
	var s *server
	watch := incidentWatch{seen: map[string]escalate.Incident{}}
	// Each evaluation first gets what had arrived by its time (the logs
	// up to its lag, the deploys and tickets), then says what changed.
	wrap := func(eval evalFunc) evalFunc {
		return func(ctx context.Context, at time.Time) error {
			if m := int(at.Sub(start) / interval); m%10 == 0 {
				progress("%s evaluating minute %d of %d", at.UTC().Format("15:04"), m+1, total)
			}
			src.Source = x.Until(at.Add(-lag))
			if err := replay.until(ctx, s.store, at); err != nil {
				return err
			}
			if err := eval(ctx, at); err != nil {
				return err
			}
			if at.Add(interval).After(end) {
				progress("%s the simulated Friday is over: the clock stops, the pages stay up until Ctrl-C", at.UTC().Format("15:04"))
			}
			return watch.report(ctx, s.store, progress, pagesPath)
		}
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err = assembleParts(ctx, &cfg, parts{now: clock.Now, after: clock.After, source: src,
		sourceName: "the simulated Friday's logs", wrapEval: wrap}, log)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer s.Close()
	up := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, up) }()
	select {
	case err := <-errc:
		return err
	case <-up:
	}
	url := "http://" + s.uiAddr + "/incidents"
	progress("the daemon runs the simulated Friday from %s to %s UTC at %g× speed (a simulated minute every %s)",
		start.Format("15:04"), end.Format("15:04"), d.speed, time.Duration(float64(interval)/d.speed).Round(time.Millisecond))
	progress("watch the incident open and resolve at %s", url)
	progress("those pages need no login (ui.insecure), which is why they are served on loopback only")
	progress("pages go to %s instead of PagerDuty (pagerduty.deliver: log); Ctrl-C stops", pagesPath)
	if ready != nil {
		ready <- s.uiAddr
	}
	return <-errc
}

// incidentWatch reports incidents as they open, page and resolve.
type incidentWatch struct {
	seen map[string]escalate.Incident
}

func (w *incidentWatch) report(ctx context.Context, st interface {
	Incidents(ctx context.Context, limit int) ([]escalate.Incident, error)
}, progress func(string, ...any), pages string) error {
	ins, err := st.Incidents(ctx, 200)
	if err != nil {
		return err
	}
	for i := len(ins) - 1; i >= 0; i-- {
		in := ins[i]
		was, ok := w.seen[in.ID]
		w.seen[in.ID] = in
		if !ok {
			progress("%s opened %s %s [%s, %s]: %s", in.OpenedAt.UTC().Format("15:04"), in.ID, in.Service, in.Severity, in.Action, headline(in))
		}
		if in.Paged() && !was.Paged() {
			progress("%s paged %s (written to %s)", in.PagedAt.UTC().Format("15:04"), in.ID, pages)
		}
		if in.Status == escalate.StatusResolved && (!ok || was.Status != escalate.StatusResolved) {
			progress("%s resolved %s: %s", in.ResolvedAt.UTC().Format("15:04"), in.ID, in.Why)
		}
	}
	return nil
}

func headline(in escalate.Incident) string {
	if in.Finding != nil {
		return in.Finding.Headline
	}
	return in.Signature
}

// fastClock is the demo's injected clock: simulated time that runs speed
// times faster than wall, from start, and stops at end, when the
// simulated data does. Everything in the daemon that waits (the schedule,
// outbox retries, pruning) waits through After, so it keeps pace; past
// end After never fires and the daemon idles, its pages still served.
type fastClock struct {
	start, end time.Time
	speed      float64
	wall       func() time.Time
	mu         sync.Mutex
	began      time.Time
}

func newFastClock(start, end time.Time, speed float64, wall func() time.Time) *fastClock {
	return &fastClock{start: start, end: end, speed: speed, wall: wall, began: wall()}
}

// Now is the simulated time.
func (c *fastClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.start.Add(time.Duration(float64(c.wall().Sub(c.began)) * c.speed))
	if t.After(c.end) {
		return c.end
	}
	return t
}

// After fires once d of simulated time has passed, or never when that is
// past the end.
func (c *fastClock) After(d time.Duration) <-chan time.Time {
	if c.Now().Add(d).After(c.end) {
		return nil
	}
	return time.After(time.Duration(float64(d) / c.speed))
}

// fileExists reports whether p names an existing file.
func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
