package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/simulate"

	"github.com/culprithq/culprit/sources/elasticsearch/estest"
)

// esURL returns the test cluster, skipping with one line when there is
// none, except in CI, which always provides one.
func esURL(t *testing.T) string {
	t.Helper()
	return estest.URL(t)
}

// TestSimulateAndCorrelateES runs the Friday story through Elasticsearch
// as a user would: `culprit simulate --es`, then `culprit correlate --es`,
// and checks the verdict against the ground truth and the file path.
func TestSimulateAndCorrelateES(t *testing.T) {
	if testing.Short() {
		t.Skip("loads six hours of simulated traffic into Elasticsearch")
	}
	u := esURL(t)
	prefix := fmt.Sprintf("culprit-e2e-%d-", time.Now().UnixNano())
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, u+"/"+prefix+"*", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	dir := t.TempDir()
	out, stderr, err := runCLI("simulate", "--es", u, "--index-prefix", prefix, "--seed", "42", "--out", dir)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr)
	}
	t.Log(out)
	req, _ := http.NewRequest(http.MethodPost, u+"/"+prefix+"*/_refresh", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	res := correlateJSON(t, "--es", u, "--index", prefix+"*",
		"--deploys", filepath.Join(dir, "deploys.json"), "--tickets", filepath.Join(dir, "tickets.json"))
	truth := readTruth(t, dir)
	checkScenario(t, truth, res)

	// The same run from files must give the same findings.
	fdir := t.TempDir()
	if _, err := simulate.WriteFiles(context.Background(), fdir, simulate.Config{Seed: 42, Shape: simulate.ShapeFriday}); err != nil {
		t.Fatal(err)
	}
	fres := correlateJSON(t, "--logs", filepath.Join(fdir, "logs.ndjson.gz"),
		"--deploys", filepath.Join(fdir, "deploys.json"), "--tickets", filepath.Join(fdir, "tickets.json"))
	if got, want := summary(res), summary(fres); got != want {
		t.Errorf("Elasticsearch and file findings differ:\nes:   %s\nfile: %s", got, want)
	}
}

func summary(r correlate.Result) string {
	var s string
	for _, f := range r.Findings {
		s += fmt.Sprintf("[%s %s %s %s %v %d]", f.ID, f.Kind, f.Severity, f.Onset.Format(time.RFC3339), f.Scope.Affected, len(f.SuspectedDeploys))
	}
	return s
}
