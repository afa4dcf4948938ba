package elasticsearch

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	es8 "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

// BulkWriter loads documents through the bulk API, into one index per day
// (prefix + "2006.01.02"), the way log shippers name them. It exists for
// `culprit simulate --es` and benchmarks: culprit itself never writes logs.
type BulkWriter struct {
	bi     esutil.BulkIndexer
	prefix string
	name   string

	mu       sync.Mutex
	firstErr error
}

// BulkStats counts what the cluster accepted.
type BulkStats struct {
	Added, Indexed, Failed uint64
}

// NewBulkWriter connects with cfg's URLs and credentials; Index in cfg is
// ignored in favour of prefix.
func NewBulkWriter(cfg Config, prefix string) (*BulkWriter, error) {
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("elasticsearch: no URL")
	}
	name := redact(cfg.URLs[0])
	client, err := es8.NewClient(es8.Config{
		Addresses: cfg.URLs, Username: cfg.Username, Password: cfg.Password, APIKey: cfg.APIKey,
		// The indexer retries 429 itself; the client retries overloads.
		RetryOnStatus: []int{http.StatusTooManyRequests, 502, 503, 504},
		MaxRetries:    5,
		RetryBackoff:  func(i int) time.Duration { return time.Duration(1<<min(i, 6)) * 100 * time.Millisecond },
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s: %w", name, err)
	}
	w := &BulkWriter{prefix: prefix, name: name}
	w.bi, err = esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:        client,
		NumWorkers:    2,
		FlushBytes:    5 << 20,
		FlushInterval: time.Second,
		OnError: func(_ context.Context, err error) {
			w.fail(fmt.Errorf("elasticsearch %s: bulk request: %w", name, err))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s: %w", name, err)
	}
	return w, nil
}

func (w *BulkWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// Add queues one JSON document stamped at t. doc is copied.
func (w *BulkWriter) Add(ctx context.Context, t time.Time, doc []byte) error {
	w.mu.Lock()
	err := w.firstErr
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.bi.Add(ctx, esutil.BulkIndexerItem{
		Index:  w.prefix + t.UTC().Format("2006.01.02"),
		Action: "index",
		Body:   bytes.NewReader(bytes.Clone(doc)),
		OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
			if err == nil {
				err = fmt.Errorf("%s: %s", res.Error.Type, res.Error.Reason)
			}
			w.fail(fmt.Errorf("elasticsearch %s: index document: %w", w.name, err))
		},
	})
}

// Close flushes what is queued and reports the counts and the first
// failure, if any.
func (w *BulkWriter) Close(ctx context.Context) (BulkStats, error) {
	err := w.bi.Close(ctx)
	st := w.bi.Stats()
	out := BulkStats{Added: st.NumAdded, Indexed: st.NumIndexed, Failed: st.NumFailed}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.firstErr != nil {
		return out, w.firstErr
	}
	if err != nil {
		return out, fmt.Errorf("elasticsearch %s: close bulk indexer: %w", w.name, err)
	}
	if out.Failed > 0 {
		return out, fmt.Errorf("elasticsearch %s: %d documents failed", w.name, out.Failed)
	}
	return out, nil
}
