package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/sources/simulate"
)

// TestDemoServe runs `culprit demo --serve` in-process on a random port,
// 300 times faster than real time, and watches the evidence pages' API as
// a user would watch /incidents: the Friday incident must appear, be paged
// (into the page log, not PagerDuty), and resolve, all within a few
// minutes of wall time.
func TestDemoServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon over a simulated Friday")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dir := t.TempDir()
	stderr := &syncBuffer{}
	env := &environ{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr}
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- demo(ctx, env, []string{"--serve", "--out", dir, "--listen", "127.0.0.1:0", "--speed", "300"}, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("demo --serve stopped before serving: %v\n%s", err, stderr)
	case <-time.After(3 * time.Minute):
		t.Fatalf("demo --serve not serving after 3 minutes:\n%s", stderr)
	}
	truth := readTruth(t, dir)

	// Poll the incidents as the browser would, until ours resolves.
	var ours escalate.Incident
	sawOpen := false
	deadline := time.Now().Add(4 * time.Minute)
	for ours.Status != escalate.StatusResolved {
		if time.Now().After(deadline) {
			t.Fatalf("the incident blaming %s did not resolve within 4 minutes (seen open: %v):\n%s", truth.SuspectDeployID, sawOpen, stderr)
		}
		select {
		case err := <-errc:
			t.Fatalf("demo --serve stopped: %v\n%s", err, stderr)
		case <-time.After(100 * time.Millisecond):
		}
		var list struct {
			Incidents []escalate.Incident `json:"incidents"`
		}
		getJSON(t, "http://"+addr+"/api/v1/incidents", &list)
		for _, in := range list.Incidents {
			if in.Service == truth.Service && strings.HasSuffix(in.Key, "/"+truth.SuspectDeployID) {
				ours = in
				sawOpen = sawOpen || in.Status == escalate.StatusOpen
			}
		}
	}
	if !sawOpen || !ours.Paged() || ours.Action != escalate.ActionPage {
		t.Errorf("incident %s: seen open %v, paged at %s, action %s; want it seen open, then paged", ours.ID, sawOpen, ours.PagedAt, ours.Action)
	}
	if !ours.OpenedAt.After(truth.Onset) || truth.Recovered == nil || !ours.ResolvedAt.After(*truth.Recovered) {
		t.Errorf("opened %s, resolved %s; want after the onset %s and the recovery %v", ours.OpenedAt, ours.ResolvedAt, truth.Onset, truth.Recovered)
	}
	page, err := http.Get("http://" + addr + "/incidents/" + ours.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.Contains(string(body), truth.SuspectDeployID) {
		t.Errorf("evidence page %s: %d, names %s: %v", ours.ID, page.StatusCode, truth.SuspectDeployID, strings.Contains(string(body), truth.SuspectDeployID))
	}

	// The outbox delivers the resolve just after the evaluation records
	// it; wait for it on the page log with a deadline.
	var actions []string
	for deadline := time.Now().Add(time.Minute); ; {
		actions = pageLogActions(t, filepath.Join(dir, "pages.ndjson"), ours.Key)
		if len(actions) >= 2 || time.Now().After(deadline) {
			break
		}
		<-time.After(50 * time.Millisecond)
	}
	if strings.Join(actions, ",") != "trigger,resolve" {
		t.Errorf("page log for %s: %v, want one trigger, then one resolve", ours.Key, actions)
	}
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("demo --serve returned %v", err)
	}
	out := stderr.String()
	for _, want := range []string{"evaluating minute 1 of", "watch the incident open and resolve at http://" + addr + "/incidents",
		"served on loopback only", "paged " + ours.ID, "resolved " + ours.ID} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// pageLogActions lists the event actions the page log holds for key.
func pageLogActions(t *testing.T, path, key string) []string {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var actions []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Action string `json:"action"`
			Event  struct {
				DedupKey   string `json:"dedup_key"`
				RoutingKey string `json:"routing_key"`
			} `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("page log line %q: %v", sc.Text(), err)
		}
		if line.Event.RoutingKey != "" {
			t.Errorf("page log carries a routing key: %s", sc.Text())
		}
		if line.Event.DedupKey == key {
			actions = append(actions, line.Action)
		}
	}
	return actions
}

// readTruth reads the truth.json a simulation wrote into dir.
func readTruth(t *testing.T, dir string) simulate.Truth {
	t.Helper()
	var truth simulate.Truth
	b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	return truth
}

// TestDemoServeRefusesExposure: the demo's pages have no login, so a
// --listen off loopback is a usage error, before anything is generated.
func TestDemoServeRefusesExposure(t *testing.T) {
	for _, tc := range []struct{ listen, speed, want string }{
		{"0.0.0.0:8080", "60", "only on loopback"},
		{":8080", "60", "only on loopback"},
		{"10.1.2.3:8080", "60", "only on loopback"},
		{"localhost", "60", "not host:port"},
		{"127.0.0.1:8080", "0", "--speed 0"},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		_, stderr, err := runCLI("demo", "--serve", "--out", dir, "--listen", tc.listen, "--speed", tc.speed)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--listen %s --speed %s: %v (%s), want a usage error saying %q", tc.listen, tc.speed, err, stderr, tc.want)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--listen %s: the output directory was created before the flags were checked", tc.listen)
		}
	}
}
