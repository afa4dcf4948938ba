// Package slack is culprit's Slack app: the /correlate command, the
// buttons on its answers, and the daemon's channel posts.
//
// Support engineers live in Slack; when a customer reports "functions are
// failing since four", they should be able to ask culprit there and get the
// evidence (the error class, how often, who is hit, the suspect deploy, the
// tickets) without opening a terminal, and page on-call from the answer when
// it shows an incident.
//
// Slack gives an app 3 seconds to answer a command or a click and shows a
// timeout error after that, while a correlation over hours of logs takes
// longer. So every request is verified, acknowledged at once with a short
// ephemeral reply, and the work runs in the background under the App's own
// context; the result goes to the request's response_url, retried on 429,
// 5xx and network errors. The same core serves HTTP (Commands,
// Interactions) and Socket Mode (RunSocketMode).
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// Correlator answers a /correlate question.
type Correlator interface {
	// Correlate runs the analysis q asks for. It must honour ctx: the App
	// cancels it on timeout and shutdown. An error is shown to the person
	// who asked, so it must say what failed without secrets.
	Correlate(ctx context.Context, q Query) (Answer, error)
}

// Answer is what the Correlator found.
type Answer struct {
	// Headline sums the answer up, e.g. "2 findings for edge-router in
	// the last 2h" or "nothing changed".
	Headline string
	Items    []Item
}

// Item is one finding of an answer, with where to see and act on it.
type Item struct {
	Finding correlate.Finding
	// IncidentID is the incident the finding belongs to; with it the
	// answer offers a "Page on-call" button. Empty for findings that are
	// not (yet) incidents.
	IncidentID string
	// EvidenceURL is the evidence page; empty means no button.
	EvidenceURL string
	// ChartURL is a public https URL of a PNG chart; may be empty. Slack
	// fetches it itself, so it must be reachable from the internet.
	ChartURL string
}

// Pager pages on-call for an incident when someone presses "Page on-call".
type Pager interface {
	// Page asks for on-call to be paged for incidentID on behalf of by.
	// An error means nobody will be paged; its text is shown to the person
	// who pressed the button, so it must not carry secrets.
	Page(ctx context.Context, incidentID string, by Actor) error
}

// Actor is the Slack user behind a command or a click.
type Actor struct {
	UserID, UserName, TeamID, ChannelID string
}

// Recorder writes what people did in Slack on the incident timeline.
type Recorder interface {
	// Record notes one event. incidentID is empty for a question that is
	// not (yet) about an incident. An error is logged and otherwise
	// ignored: a timeline gap must not stop an answer or a page.
	Record(ctx context.Context, incidentID string, kind, text string, by Actor) error
}

// Timeline event kinds passed to Recorder.
const (
	// EventQuery: someone asked /correlate. Recorded once with no
	// incident when asked, then once per incident the answer showed.
	EventQuery = "slack_query"
	// EventPageRequested: someone pressed "Page on-call"; the text says
	// whether the page was accepted.
	EventPageRequested = "page_requested"
)

// Config wires an App. SigningSecret and Correlator are required.
type Config struct {
	// SigningSecret is the app's signing secret (Basic Information page).
	// Empty only in Socket Mode: the HTTP endpoints then refuse every
	// request.
	SigningSecret string
	Correlator    Correlator
	// Pager is optional; without it the "Page on-call" button explains
	// that paging from Slack is not configured.
	Pager Pager
	// Recorder is optional.
	Recorder Recorder
	// Replays, when set, remembers verified requests in durable storage,
	// so a request captured before a restart cannot be replayed after
	// it. Without it the replay set lives in memory only.
	Replays ReplayGuard
	// BaseContext is the parent of all background work; cancelling it
	// stops correlations and posts. Default context.Background().
	BaseContext context.Context
	// InChannel posts answers for the whole channel to see; the default
	// shows them only to the person who asked.
	InChannel bool
	// Now is the clock for signature windows and HH:MM times.
	Now func() time.Time
	// Sleep waits between post attempts; it returns early with ctx's
	// error. Injected so tests do not wait. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// HTTPClient posts to response URLs. Default: a client with a 10s
	// timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// CorrelateTimeout bounds one correlation. Default 2m.
	CorrelateTimeout time.Duration
	// MaxConcurrent bounds correlations running at once, to protect the
	// log store from a burst of questions. Default 4.
	MaxConcurrent int
	// MaxAttempts bounds posts to one response URL. Slack accepts 5 posts
	// per response_url within 30 minutes. Default 5.
	MaxAttempts int
	// Backoff is the first retry delay, doubled per attempt up to
	// MaxBackoff. Defaults 1s and 30s.
	Backoff, MaxBackoff time.Duration
}

// App serves the Slack endpoints and owns the work they start.
type App struct {
	cfg    Config
	verify *verifier
	post   *poster
	log    *slog.Logger
	sem    chan struct{}

	ctx    context.Context // background work; cancelled by Shutdown's deadline
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// New checks cfg and builds an App.
func New(cfg Config) (*App, error) {
	var errs []error
	if cfg.Correlator == nil {
		errs = append(errs, errors.New("slack config: Correlator is required"))
	}
	if cfg.CorrelateTimeout < 0 || cfg.MaxConcurrent < 0 || cfg.MaxAttempts < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 {
		errs = append(errs, errors.New("slack config: timeouts, limits and backoffs must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.BaseContext == nil {
		cfg.BaseContext = context.Background()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CorrelateTimeout == 0 {
		cfg.CorrelateTimeout = 2 * time.Minute
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 4
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(cfg.BaseContext)
	log := cfg.Logger.With("component", "slack")
	return &App{
		cfg:    cfg,
		verify: newVerifier(cfg.SigningSecret, cfg.Now, cfg.Replays),
		post: &poster{client: cfg.HTTPClient, sleep: cfg.Sleep, attempts: cfg.MaxAttempts,
			backoff: cfg.Backoff, maxBackoff: cfg.MaxBackoff, now: cfg.Now, log: log},
		log:    log,
		sem:    make(chan struct{}, cfg.MaxConcurrent),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// errClosed: the App is shutting down and starts no new work.
var errClosed = errors.New("shutting down")

// job is background work reserved before the ack is sent and started
// after it, so the answer can never overtake the "Correlating…" reply and
// Shutdown never misses work a request has promised.
type job struct {
	a       *App
	release func()
}

// reserve counts a job in. limited jobs also take a correlation slot;
// errBusy means all slots are taken.
func (a *App) reserve(limited bool) (*job, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	release := func() {}
	if limited {
		select {
		case a.sem <- struct{}{}:
			release = func() { <-a.sem }
		default:
			return nil, errBusy
		}
	}
	a.wg.Add(1)
	return &job{a: a, release: release}, nil
}

var errBusy = errors.New("busy")

// start runs f in the background under the App's context.
func (j *job) start(f func(ctx context.Context)) {
	go func() {
		defer j.a.wg.Done()
		defer j.release()
		f(j.a.ctx)
	}()
}

// Wait blocks until all background work started so far has finished.
// It is for callers that know no request is in flight (tests); a daemon
// should call Shutdown.
func (a *App) Wait() { a.wg.Wait() }

// Shutdown stops accepting work (new commands get a "restarting" reply)
// and waits for running work to finish. When ctx ends first it cancels the
// work, waits for it to return (posting a short "interrupted" note where
// it can) and returns ctx's error.
func (a *App) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		a.cancel()
		return nil
	case <-ctx.Done():
		a.cancel()
		<-done
		return fmt.Errorf("slack shutdown: %w", ctx.Err())
	}
}

// isOpen reports whether the App still takes new work.
func (a *App) isOpen() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.closed
}

// record writes a timeline event, logging (not returning) failures.
func (a *App) record(ctx context.Context, incidentID, kind, text string, by Actor) {
	if a.cfg.Recorder == nil {
		return
	}
	if err := a.cfg.Recorder.Record(ctx, incidentID, kind, text, by); err != nil {
		a.log.Warn("slack: record on timeline failed", "incident", incidentID, "kind", kind, "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
