package intake

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkIntakeDeploys measures deploys per second through the whole
// handler (auth, metrics, decoding, validation, in-memory store), one deploy
// per request and 100 per request. The SQLite store's cost comes on top.
func BenchmarkIntakeDeploys(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			e := newEnv(b, func(c *Config) { c.OnDeploy, c.Logger = nil, nil })
			bodies := make([]string, 64)
			for i := range bodies {
				var sb strings.Builder
				sb.WriteByte('[')
				for j := range batch {
					if j > 0 {
						sb.WriteByte(',')
					}
					sb.WriteString(`{"id":"dep-` + strconv.Itoa(i*batch+j) + `","service":"edge-router","version":"3.8.0","environment":"production","started_at":"2026-11-20T16:00:00Z","finished_at":"2026-11-20T16:21:00Z","author":"jo","hosts":[{"name":"edge-aws-use1-03","at":"2026-11-20T16:00:40Z"},{"name":"edge-aws-use1-04","at":"2026-11-20T16:01:40Z"}]}`)
				}
				sb.WriteByte(']')
				bodies[i] = sb.String()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r := httptest.NewRequest(http.MethodPost, "/api/v1/deploys", strings.NewReader(bodies[i%len(bodies)]))
				r.Header.Set("Authorization", "Bearer "+testToken)
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
				if w.Code != http.StatusCreated && w.Code != http.StatusOK {
					b.Fatalf("code %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
