package listener

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxBody is the largest body any route accepts: a deploy batch or a page
// of Zendesk's export fits, and nothing bigger is worth buffering.
const MaxBody = 1 << 20

// DefaultRetryAfter is what a busy class tells clients to wait. Webhook
// senders retry on 503 (GitHub only by hand, PagerDuty and Zendesk by
// themselves), so the answer must be quick and the wait short.
const DefaultRetryAfter = time.Second

// A request that finds its class full may wait for a turn: up to
// QueueFactor times the class's concurrency of them, each for at most
// MaxWait. A short burst (a browser fetching a page's two charts while
// another person does the same) is then served rather than refused, while
// a flood still gets its 503 at once, and no request waits long.
const (
	QueueFactor = 8
	MaxWait     = 2 * time.Second
)

// Class is a kind of route sharing one concurrency limit: the token intake,
// one webhook vendor, Slack, the charts. Each class has its own slots, so a
// flood of chart requests cannot take the webhooks' turn, and a full class
// answers 503 with Retry-After at once instead of queueing without bound.
//
// A request takes a slot only after its body has arrived: a client sending
// its body slowly waits on its own connection (which the connection cap may
// shed) without holding a slot that a real webhook needs.
type Class struct {
	name       string
	slots      chan struct{}
	queue      chan struct{} // a token per request waiting for a slot
	maxWait    time.Duration
	retryAfter time.Duration
	busy       prometheus.Counter
}

// NewClass makes a class allowing concurrency handlers at once; 0 means no
// limit. Rejections are counted in busy, which may be nil.
func NewClass(name string, concurrency int, busy *prometheus.CounterVec) (*Class, error) {
	if concurrency < 0 {
		return nil, fmt.Errorf("concurrency of %s must not be negative, got %d", name, concurrency)
	}
	c := &Class{name: name, retryAfter: DefaultRetryAfter, maxWait: MaxWait}
	if concurrency > 0 {
		c.slots = make(chan struct{}, concurrency)
		c.queue = make(chan struct{}, QueueFactor*concurrency)
	}
	if busy != nil {
		c.busy = busy.WithLabelValues(name)
	}
	return c, nil
}

// BusyCounter is the metric NewClass counts rejections in, by class.
func BusyCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "culprit_http_busy_total",
		Help: "Requests answered 503 because their route class was at its concurrency limit."}, []string{"class"})
}

// Guard serves h within the class's limit and with bodies of at most
// maxBody bytes (MaxBody when 0 or larger): a longer body gets a 413 naming
// the limit before h runs. The body is read in full first and handed to h
// from memory; h may still wrap it in its own, larger, limit.
func (c *Class) Guard(maxBody int64, h http.Handler) http.Handler {
	if maxBody <= 0 || maxBody > MaxBody {
		maxBody = MaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			tooLarge(w, r, maxBody)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			markPhase(r.Context(), waiting)
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					tooLarge(w, r, maxBody)
					return
				}
				// The client stopped sending, or was shed; nobody reads
				// an answer, but net/http needs one.
				http.Error(w, fmt.Sprintf("read body of %s: %v", r.URL.Path, err), http.StatusBadRequest)
				return
			}
			markPhase(r.Context(), working)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if c.slots != nil {
			if !c.acquire(r) {
				if c.busy != nil {
					c.busy.Inc()
				}
				w.Header().Set("Retry-After", strconv.Itoa(int(c.retryAfter/time.Second)))
				http.Error(w, fmt.Sprintf("too many %s requests at once; retry shortly", c.name), http.StatusServiceUnavailable)
				return
			}
			defer func() { <-c.slots }()
		}
		h.ServeHTTP(w, r)
	})
}

// acquire takes a slot: at once if one is free, else after waiting in the
// bounded queue for at most maxWait. It reports false when the queue is
// full, the wait ran out, or the client went away.
func (c *Class) acquire(r *http.Request) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case c.queue <- struct{}{}:
		defer func() { <-c.queue }()
	default:
		return false
	}
	t := time.NewTimer(c.maxWait)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	http.Error(w, fmt.Sprintf("body of %s %s exceeds %d bytes", r.Method, r.URL.Path, limit), http.StatusRequestEntityTooLarge)
}
