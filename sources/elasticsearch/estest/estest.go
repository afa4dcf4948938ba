// Package estest finds the Elasticsearch that tests run against. Tests
// that need one run whenever one is reachable: the cluster named by
// CULPRIT_TEST_ES_URL, or else one answering on the default local port
// (scripts/es-up.sh starts one there). Without either they skip, except on
// CI, where a missing cluster is a broken pipeline, not a reason to skip.
package estest

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"
)

// LocalURL is where scripts/es-up.sh starts a cluster by default.
const LocalURL = "http://127.0.0.1:9200"

// URL returns the test cluster's URL, or skips the test (fails it on CI).
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("CULPRIT_TEST_ES_URL"); u != "" {
		return u
	}
	if reachable(LocalURL) {
		return LocalURL
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no Elasticsearch: CULPRIT_TEST_ES_URL is not set and nothing answers on " + LocalURL + " (.ci/run must start one)")
	}
	t.Skip("no Elasticsearch: set CULPRIT_TEST_ES_URL or start one with scripts/es-up.sh (make es-up)")
	return ""
}

// reachable reports whether an open (security off) cluster answers its
// health endpoint.
func reachable(u string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/_cluster/health", nil)
	if err != nil {
		return false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}
