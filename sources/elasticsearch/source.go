// Package elasticsearch reads culprit's traffic from log documents in
// Elasticsearch: one ECS document per HTTP request, as the file source reads
// them from NDJSON.
//
// Elasticsearch does the counting. A Traffic call is a handful of searches
// whose composite aggregations return counts per service, raw message and
// bucket, paged by after_key; no document is scrolled. Each search's query
// selects only the documents it counts (the errors, a few per mille of the
// requests, are counted apart from the requests), and no aggregation runs
// over a field whose values are on every document and nearly all distinct
// (the access-log line) unless it must: such fields cost a table of every
// value, rebuilt at each refresh of a live index. Only the masking of
// raw messages (template.Mask) happens here, because it is culprit's own
// algorithm and must be the file source's to the byte: the two sources give
// the same Traffic and Scope for the same documents, which is what lets
// findings from a file export and from the cluster be compared.
//
// The file source's rules are reproduced as queries:
//   - a document is an error when its outcome is "failure" (any ASCII case);
//     when it is "success" it is not; otherwise when its status is 500 to 9999;
//   - its message is the first non-empty field of rules.Fields.Message, else
//     "HTTP <status>", else "error without message";
//   - a document without a service counts under "(none)".
//
// "First non-empty field" has no aggregation in Elasticsearch (and painless,
// which a runtime field would need, is not always installed), so each message
// field is its own level: errors whose first field is present, then errors
// lacking it whose second is present, and so on, then the rest by status.
// Values too long for their keyword field (ignore_above), and text fields
// without a keyword sub-field, cannot be aggregated; those documents are
// fetched (at most maxFetch per call, earliest first) and their message read
// from _source. Past that bound they count under "<other>", as the file
// source does past its distinct-message cap.
//
// An index pattern that matches no index is an error, not an empty answer:
// a typo in the pattern must not read as "no errors".
package elasticsearch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	es8 "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

var _ correlate.Source = (*Source)(nil)

// Config says where the logs are and how to read them.
type Config struct {
	// URLs are the cluster's HTTP endpoints, e.g. http://127.0.0.1:9200.
	// Credentials in a URL are used but never printed.
	URLs []string
	// Index is an index name, alias or pattern such as "logs-*"; several may
	// be given separated by commas.
	Index string

	// APIKey is the base64 "id:key" form. It excludes Username/Password.
	APIKey             string
	Username, Password string
	// CACertFile is a PEM file of the CAs to trust for https URLs.
	CACertFile string

	// Timeout bounds each HTTP attempt: the time to the response headers
	// (the Transport's ResponseHeaderTimeout) and the whole attempt (a
	// context deadline). Default 30s.
	Timeout time.Duration
	// MaxRetries is how often a request is retried after a 429, a 5xx or a
	// connection failure, with exponential backoff and jitter, waiting at
	// least as long as a Retry-After header asks. 0 means the default (3);
	// a negative value disables retries.
	MaxRetries int

	// Fields maps culprit's roles to document fields; the zero value means
	// rules.Default().Fields.
	Fields rules.Fields
	// Lag is the ingestion delay: buckets ending after now-Lag may still be
	// filling and are reported as incomplete (Traffic.Complete).
	Lag time.Duration
	// Now is the clock, for Lag (default time.Now).
	Now func() time.Time
	// Logger gets one debug record per request (took, latency, attempt)
	// and warnings about data it cannot read exactly. Default: discard.
	Logger *slog.Logger
}

// Stats are cumulative counters over a Source's lifetime.
type Stats struct {
	// Requests is the number of HTTP requests sent, retries included.
	Requests int64
	// Retries is how many of them were retries.
	Retries int64
	// Took is the sum of Elasticsearch's own "took" times.
	Took time.Duration
	// Latency is the sum of the wall-clock time of every request.
	Latency time.Duration
}

// Source reads traffic from Elasticsearch. It is safe for concurrent use.
type Source struct {
	es      *es8.TypedClient
	index   string
	name    string // the cluster's URLs, credentials removed, for messages
	fields  rules.Fields
	timeout time.Duration
	retries int
	backoff time.Duration // first retry delay; doubled per attempt
	lag     time.Duration
	now     func() time.Time
	log     *slog.Logger
	// termsBuckets is maxTermsBuckets and levelFetch is maxFetch; tests
	// lower them to reach the composite fallbacks with a handful of
	// documents.
	termsBuckets, levelFetch int

	requests, retried atomic.Int64
	took, latency     atomic.Int64 // nanoseconds

	mu      sync.Mutex
	mapping *mapping // last field_caps answer
	// noResolve: the index pattern cannot be resolved with these
	// credentials, so the mapping is read at every Traffic.
	noResolve bool
	// sigs are the raw messages behind the masked ones of the last few
	// Traffic calls, newest last (see signature).
	sigs []*signatureMap
	// wide are the fields found to have more values than a terms
	// aggregation of Scope may return; they are counted with composites
	// from then on (see breakdown).
	wide map[string]bool
	// shares are the requests per value of each service's last breakdown
	// (Scope), for CountConjunctions to judge how many documents its
	// conjunctions can meet (supportBound).
	shares map[string]valueShares
}

const (
	defaultTimeout = 30 * time.Second
	defaultRetries = 3
	defaultBackoff = 200 * time.Millisecond
)

// New checks cfg and builds a client. It does not contact the cluster: the
// first Traffic, Scope or Range call does, so that a culprit started before
// its cluster still starts.
func New(cfg Config) (*Source, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("elasticsearch: no URL configured")
	}
	names := make([]string, len(cfg.URLs))
	for i, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("elasticsearch: URL %q is not an http(s) URL", redact(raw))
		}
		names[i] = redact(raw)
	}
	name := strings.Join(names, ",")
	if strings.TrimSpace(cfg.Index) == "" {
		return nil, fmt.Errorf("elasticsearch %s: no index configured", name)
	}
	if cfg.APIKey != "" && (cfg.Username != "" || cfg.Password != "") {
		return nil, fmt.Errorf("elasticsearch %s: set either an API key or a username and password, not both", name)
	}
	fields := cfg.Fields
	if isZeroFields(fields) {
		fields = rules.Default().Fields
	}
	if err := checkFields(fields); err != nil {
		return nil, fmt.Errorf("elasticsearch %s: %w", name, err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = defaultRetries
	case retries < 0:
		retries = 0
	}

	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = timeout
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch %s: read CA certificates: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("elasticsearch %s: %s holds no PEM certificate", name, cfg.CACertFile)
		}
		base.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client, err := es8.NewTypedClient(es8.Config{
		Addresses: cfg.URLs,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		Transport: &recorder{next: base},
		// Retries are ours (call): the client's cannot honour Retry-After
		// and would hide attempts from Stats.
		DisableRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s: %w", name, err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		es: client, index: cfg.Index, name: name, fields: fields,
		timeout: timeout, retries: retries, backoff: defaultBackoff,
		lag: cfg.Lag, now: now, log: logger, termsBuckets: maxTermsBuckets, levelFetch: maxFetch,
	}, nil
}

// Stats returns the cumulative request counters.
func (s *Source) Stats() Stats {
	return Stats{
		Requests: s.requests.Load(),
		Retries:  s.retried.Load(),
		Took:     time.Duration(s.took.Load()),
		Latency:  time.Duration(s.latency.Load()),
	}
}

// Index is the configured index or pattern.
func (s *Source) Index() string { return s.index }

func isZeroFields(f rules.Fields) bool {
	return f.Time == "" && f.Service == "" && f.Version == "" && f.Host == "" &&
		f.Customer == "" && f.Site == "" && f.Path == "" && f.Provider == "" &&
		f.Region == "" && f.Status == "" && f.Outcome == "" && len(f.Message) == 0
}

func checkFields(f rules.Fields) error {
	var errs []error
	for _, r := range []struct{ name, v string }{{"time", f.Time}, {"service", f.Service}, {"status", f.Status}} {
		if strings.TrimSpace(r.v) == "" {
			errs = append(errs, fmt.Errorf("fields.%s must not be empty", r.name))
		}
	}
	if len(f.Message) == 0 {
		errs = append(errs, errors.New("fields.message must list at least one field"))
	}
	return errors.Join(errs...)
}

// redact removes the user information from a URL so that it can be printed.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	return u.String()
}

// Range is the time of the earliest and of the latest document, for the
// CLI's default window. Like the file source's, both are instants that carry
// data, so a window built from them must end after to.
func (s *Source) Range(ctx context.Context) (from, to time.Time, err error) {
	m, err := s.currentMapping(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	format := timeFormat
	req := newSearch()
	req.Aggregations = map[string]types.Aggregations{
		"lo": {Min: &types.MinAggregation{Field: &m.time.agg, Format: &format}},
		"hi": {Max: &types.MaxAggregation{Field: &m.time.agg, Format: &format}},
	}
	res, err := s.search(ctx, "range", req)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	lo, okLo := res.Aggregations["lo"].(*types.MinAggregate)
	hi, okHi := res.Aggregations["hi"].(*types.MaxAggregate)
	if !okLo || !okHi || lo.ValueAsString == nil || hi.ValueAsString == nil {
		return time.Time{}, time.Time{}, fmt.Errorf("elasticsearch %s: index %q: no document has a %s", s.name, s.index, s.fields.Time)
	}
	from, err1 := parseTime(*lo.ValueAsString)
	to, err2 := parseTime(*hi.ValueAsString)
	if err := errors.Join(err1, err2); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("elasticsearch %s: index %q: %w", s.name, s.index, err)
	}
	return from, to, nil
}
