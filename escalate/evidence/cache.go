package evidence

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"
)

// DefaultChartCacheBytes bounds the rendered charts kept in memory: a PNG
// chart is 30–100 KB, so a few hundred incidents' charts fit.
const DefaultChartCacheBytes = 32 << 20

// renderCache keeps rendered charts by a key that changes whenever what
// they are drawn from changes, evicting the least recently used past a
// byte budget. Concurrent requests for one key render it once: a page
// posted to a busy Slack channel is fetched by every client at the same
// moment, and 500 such requests used to render 500 times (309 MB, 10 s
// p50).
type renderCache struct {
	max   int64
	group singleflight.Group

	mu    sync.Mutex
	size  int64
	order *list.List // of *cached, most recently used first
	items map[string]*list.Element
}

type cached struct {
	key string
	b   []byte
}

// newRenderCache makes a cache of at most max bytes; 0 or less keeps
// nothing but still renders concurrent requests once.
func newRenderCache(max int64) *renderCache {
	return &renderCache{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

// get returns the bytes under key, rendering them with render when absent.
// A render's error is not cached: the next request tries again.
func (c *renderCache) get(key string, render func() ([]byte, error)) ([]byte, error) {
	if b, ok := c.lookup(key); ok {
		return b, nil
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		if b, ok := c.lookup(key); ok {
			return b, nil
		}
		b, err := render()
		if err != nil {
			return nil, err
		}
		c.add(key, b)
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func (c *renderCache) lookup(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*cached).b, true
	}
	return nil, false
}

func (c *renderCache) add(key string, b []byte) {
	n := int64(len(b))
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.order.PushFront(&cached{key: key, b: b})
	c.size += n
	for c.size > c.max {
		e := c.order.Back()
		old := e.Value.(*cached)
		c.order.Remove(e)
		delete(c.items, old.key)
		c.size -= int64(len(old.b))
	}
}

// chartKey names one rendering of an incident's chart: the incident, the
// chart and its format, and a version that is a digest of everything the
// drawing reads (the finding and, for the rate chart, the deploys around
// it). Any new evidence (an evaluation updating the finding, a deploy's
// progress, a rollback) changes the digest, so a cached chart is never
// stale and nothing has to invalidate it.
func chartKey(id string, kind fileKind, format string, parts ...any) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%q %d %q\n", id, kind, format)
	enc := json.NewEncoder(h)
	for _, p := range parts {
		if err := enc.Encode(p); err != nil {
			return "", fmt.Errorf("chart version: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
