package rules

import (
	"strings"
	"testing"
	"time"
)

func TestHTTPLimits(t *testing.T) {
	c, err := Parse([]byte("http:\n  read_timeout: 20s\n  max_connections: 900\n  concurrency:\n    charts: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.ReadTimeout.D() != 20*time.Second || c.HTTP.MaxConnections != 900 || c.HTTP.Concurrency.Charts != 2 || c.HTTP.IdleTimeout != 0 {
		t.Errorf("parsed %+v", c.HTTP)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"negative", "http:\n  idle_timeout: -1s\n  max_connections: -5\n  concurrency:\n    github: -1\n", []string{
			"line 2: http.idle_timeout: must not be negative, got -1s",
			"line 3: http.max_connections: must not be negative, got -5",
			"line 5: http.concurrency.github: must not be negative, got -1",
		}},
		{"tiny header limit", "http:\n  max_header_bytes: 100\n", []string{
			"line 2: http.max_header_bytes: must be at least 4096 (or 0 for the default), got 100",
		}},
		{"header timeout past the read timeout", "http:\n  read_header_timeout: 20s\n  read_timeout: 10s\n", []string{
			"line 2: http.read_header_timeout: 20s is longer than http.read_timeout 10s, which bounds the headers too",
		}},
		{"unknown class", "http:\n  concurrency:\n    webhooks: 3\n", []string{
			"line 3: http.concurrency.webhooks: unknown key",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("error lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
