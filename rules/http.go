package rules

// HTTP limits every listener culprit serves. Zero values take the
// defaults documented in README.md (set by the listener package), so a
// configuration names only what it changes.
type HTTP struct {
	// ReadHeaderTimeout bounds the request line and headers (5s).
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds the whole request, body included (15s).
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds a request from its headers to the end of the
	// response (30s).
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request (30s).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers (65536).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections caps open connections; past it the one waiting
	// longest on its client is closed (512).
	MaxConnections int `yaml:"max_connections"`
	// Concurrency bounds the handlers running at once per route class.
	Concurrency Concurrency `yaml:"concurrency"`
}

// Concurrency is the number of requests of each route class handled at
// once; a full class answers 503 with Retry-After. Zero takes the default.
type Concurrency struct {
	// Intake is the bearer-token API: deploys, progress, tickets (8).
	Intake int `yaml:"intake"`
	// GitHub, Zendesk and PagerDuty are each vendor's webhook (8 each).
	GitHub    int `yaml:"github"`
	Zendesk   int `yaml:"zendesk"`
	PagerDuty int `yaml:"pagerduty"`
	// Slack is /slack/commands and /slack/interactions together (8).
	Slack int `yaml:"slack"`
	// Charts are the chart images, the dearest thing to serve (4).
	Charts int `yaml:"charts"`
	// Pages are the evidence pages, timelines and the JSON API (8).
	Pages int `yaml:"pages"`
}

// minHeaderBytes is the smallest header limit accepted: below it ordinary
// browser requests fail with 431.
const minHeaderBytes = 4096

func (ck *checker) http(c *Config) {
	h := c.HTTP
	for _, d := range []struct {
		key string
		v   Duration
	}{{"read_header_timeout", h.ReadHeaderTimeout}, {"read_timeout", h.ReadTimeout}, {"write_timeout", h.WriteTimeout}, {"idle_timeout", h.IdleTimeout}} {
		if d.v < 0 {
			ck.errf("http."+d.key, "must not be negative, got %s", short(d.v.D()))
		}
	}
	if h.ReadHeaderTimeout > 0 && h.ReadTimeout > 0 && h.ReadHeaderTimeout > h.ReadTimeout {
		ck.errf("http.read_header_timeout", "%s is longer than http.read_timeout %s, which bounds the headers too",
			short(h.ReadHeaderTimeout.D()), short(h.ReadTimeout.D()))
	}
	if h.MaxHeaderBytes != 0 && h.MaxHeaderBytes < minHeaderBytes {
		ck.errf("http.max_header_bytes", "must be at least %d (or 0 for the default), got %d", minHeaderBytes, h.MaxHeaderBytes)
	}
	if h.MaxConnections < 0 {
		ck.errf("http.max_connections", "must not be negative, got %d", h.MaxConnections)
	}
	k := h.Concurrency
	for _, v := range []struct {
		key string
		n   int
	}{{"intake", k.Intake}, {"github", k.GitHub}, {"zendesk", k.Zendesk}, {"pagerduty", k.PagerDuty}, {"slack", k.Slack}, {"charts", k.Charts}, {"pages", k.Pages}} {
		if v.n < 0 {
			ck.errf("http.concurrency."+v.key, "must not be negative, got %d", v.n)
		}
	}
}
