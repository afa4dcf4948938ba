package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/simulate"
)

// correlateJSON runs `culprit correlate --format json` exactly as a user
// would and decodes its output.
func correlateJSON(t *testing.T, args ...string) correlate.Result {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"correlate", "--format", "json"}, args...)
	if err := run(context.Background(), args, func(string) string { return "" }, nil, &out, &errb); err != nil {
		t.Fatalf("culprit %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	var res correlate.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("decode output: %v\n%s", err, out.String())
	}
	return res
}

// TestScenarios runs every incident shape of the simulator end to end,
// through the files and the CLI, and checks the verdict against the ground
// truth: the right suspect or none, the onset, the concentrating dimension,
// and whether it pages.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("scenario tests simulate hours of traffic; run without -short")
	}
	seeds := []int64{42}
	// CULPRIT_SCENARIO_SEEDS=1,2,3 checks more seeds than the default one.
	if v := os.Getenv("CULPRIT_SCENARIO_SEEDS"); v != "" {
		seeds = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("CULPRIT_SCENARIO_SEEDS: %v", err)
			}
			seeds = append(seeds, n)
		}
	}
	for _, seed := range seeds {
		for _, shape := range simulate.Shapes() {
			runScenario(t, seed, shape)
		}
	}
}

func runScenario(t *testing.T, seed int64, shape simulate.Shape) {
	name := string(shape)
	if seed != 42 {
		name = fmt.Sprintf("%s/seed=%d", shape, seed)
	}
	{
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			run, err := simulate.WriteFiles(context.Background(), dir, simulate.Config{Seed: seed, Shape: shape})
			if err != nil {
				t.Fatal(err)
			}
			truth := run.Truth
			res := correlateJSON(t,
				"--logs", filepath.Join(dir, "logs.ndjson.gz"),
				"--deploys", filepath.Join(dir, "deploys.json"),
				"--tickets", filepath.Join(dir, "tickets.json"))
			checkScenario(t, truth, res)
		})
	}
}

func checkScenario(t *testing.T, truth simulate.Truth, res correlate.Result) {
	t.Helper()
	pages := 0
	for _, f := range res.Findings {
		if f.Severity == correlate.SeverityPage {
			pages++
		}
	}
	if !truth.ExpectPage && pages > 0 {
		for _, f := range res.Findings {
			if f.Severity == correlate.SeverityPage {
				t.Errorf("unexpected page: %s", f.Headline)
			}
		}
	}
	if truth.Kind == "" {
		return
	}
	f, ok := matchFinding(truth, res)
	if !ok {
		var heads []string
		for _, f := range res.Findings {
			heads = append(heads, string(f.Severity)+": "+f.Headline)
		}
		t.Fatalf("no %s finding for %q in %s; findings:\n%s", truth.Kind, truth.MessageContains, truth.Service, strings.Join(heads, "\n"))
	}
	t.Logf("%s: %s", f.Severity, f.Headline)
	if truth.ExpectPage && f.Severity != correlate.SeverityPage {
		t.Errorf("severity %s (%v), want page", f.Severity, f.SeverityReasons)
	}
	if truth.Kind == correlate.KindTicketSurge {
		if d := f.Onset.Sub(truth.Onset); d < -30*time.Minute || d > 30*time.Minute {
			t.Errorf("surge onset %s, truth %s", f.Onset, truth.Onset)
		}
		return
	}
	tol := 3 * time.Minute
	if truth.Shape == simulate.ShapeSlowRamp {
		tol = 20 * time.Minute
	}
	if d := f.Onset.Sub(truth.Onset); d < -tol || d > tol {
		t.Errorf("onset %s, truth %s (off by %s, tolerance %s)", f.Onset.Format(time.TimeOnly), truth.Onset.Format(time.TimeOnly), d, tol)
	}
	if truth.SuspectDeployID == "" {
		if len(f.SuspectedDeploys) > 0 {
			t.Errorf("blamed %s (%v), want no suspect", f.SuspectedDeploys[0].ID, f.SuspectedDeploys[0].Reasons)
		}
	} else if len(f.SuspectedDeploys) == 0 || f.SuspectedDeploys[0].ID != truth.SuspectDeployID {
		t.Errorf("suspects %+v, want %s first", f.SuspectedDeploys, truth.SuspectDeployID)
	}
	if truth.Field != "" {
		found := false
		for i, c := range f.Scope.Concentration {
			if i < 3 && c.Field == truth.Field && c.Value == truth.Value {
				found = true
			}
		}
		if !found {
			t.Errorf("%s=%s not in the top three concentrations %+v", truth.Field, truth.Value, f.Scope.Concentration)
		}
	}
	if truth.Recovered != nil {
		if f.Recovered == nil {
			t.Errorf("not recovered, truth recovered at %s", truth.Recovered.Format(time.TimeOnly))
		} else if d := f.Recovered.Sub(*truth.Recovered); d < -5*time.Minute || d > 5*time.Minute {
			t.Errorf("recovered %s, truth %s", f.Recovered.Format(time.TimeOnly), truth.Recovered.Format(time.TimeOnly))
		}
	}
}

// matchFinding finds the finding that corresponds to the injected incident.
func matchFinding(truth simulate.Truth, res correlate.Result) (correlate.Finding, bool) {
	for _, f := range res.Findings {
		if f.Kind != truth.Kind {
			continue
		}
		if truth.Kind == correlate.KindTicketSurge {
			return f, true
		}
		if f.Service != truth.Service {
			continue
		}
		for _, e := range f.Examples {
			if strings.Contains(e, truth.MessageContains) {
				return f, true
			}
		}
	}
	return correlate.Finding{}, false
}

// TestDemo is the new user's first command: it must name the injected
// deploy, the new error class, its scope and the related tickets.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo simulates six hours of traffic; run without -short")
	}
	dir := t.TempDir()
	out, stderr, err := runCLI("demo", "--out", dir)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr)
	}
	truth := readTruth(t, dir)
	// What it is doing goes to stderr as it goes; stdout is the report.
	for _, want := range []string{"demo: generating", "demo: correlating", "demo: writing report"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("demo's stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(out, "demo: ") {
		t.Errorf("demo's progress is on stdout, with the report:\n%.2000s", out)
	}
	head := strings.SplitN(strings.SplitN(out, "\n\n", 3)[1], "\n", 2)[0]
	for _, want := range []string{truth.SuspectDeployID, "new error class", truth.Field + "=" + truth.Value, "related ticket"} {
		if !strings.Contains(head, want) {
			t.Errorf("demo headline does not name %q:\n%s", want, head)
		}
	}
	if strings.Contains(head, "; 0 related tickets") {
		t.Errorf("demo headline links no tickets: %s", head)
	}
	// The story ends with the rollback: the report must say it ended it.
	var deploys []correlate.Deploy
	if b, err := os.ReadFile(filepath.Join(dir, "deploys.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &deploys); err != nil {
		t.Fatal(err)
	}
	rollback := ""
	for _, d := range deploys {
		if correlate.SaysRollback(d) {
			rollback = d.ID
		}
	}
	if rollback == "" || !regexp.MustCompile(`Recovery +recovered \d\d:\d\d UTC, .*rollback `+rollback).MatchString(out) {
		t.Errorf("demo report does not tie the recovery to rollback %q:\n%s", rollback, out)
	}
	// The ticket surge counts only tickets on its topic: the Friday's
	// functions, not an affected customer's "Upgrade to the Pro plan".
	var rep correlate.Result
	if b, err := os.ReadFile(filepath.Join(dir, "report.json")); err != nil {
		t.Error(err)
	} else if err := json.Unmarshal(b, &rep); err != nil {
		t.Error(err)
	}
	surges := 0
	for _, f := range rep.Findings {
		if f.Kind != correlate.KindTicketSurge {
			continue
		}
		surges++
		about := 0
		for _, tk := range f.Tickets {
			if strings.Contains(tk.Subject, "Pro plan") {
				t.Errorf("the surge counts %q", tk.Subject)
			}
			if slices.Contains(truth.IncidentTickets, tk.ID) {
				about++
			}
		}
		if about*10 < len(f.Tickets)*9 {
			t.Errorf("%d of the surge's %d tickets are about the incident, want 90%%", about, len(f.Tickets))
		}
	}
	if surges != 1 {
		t.Errorf("%d ticket surges in the demo, want 1", surges)
	}
	// With the simulated CRM's customers file, the page names its
	// enterprise customers and every finding has a P-level.
	for _, f := range rep.Findings {
		if f.Priority == nil || !slices.Contains(rules.Priorities, f.Priority.Level) {
			t.Errorf("finding %s has no P-level: %+v", f.ID, f.Priority)
		}
		if f.Severity != correlate.SeverityPage {
			continue
		}
		if f.Customers == nil {
			t.Errorf("the demo's page names no customers")
		} else if f.Customers.Tiers["enterprise"] == 0 || !regexp.MustCompile(`^\d+ enterprise.* customers, including [^(]+\(enterprise\)`).MatchString(f.Customers.Summary) {
			t.Errorf("the demo's page does not name its enterprise customers: %+v", f.Customers.Summary)
		}
	}
	if !regexp.MustCompile(`(?m)^  Priority +P[1-4]: `).MatchString(out) || !regexp.MustCompile(`(?m)^  Customers +\d+ enterprise`).MatchString(out) {
		t.Errorf("demo report shows no P-level or no enterprise customers:\n%.3000s", out)
	}
	for _, f := range []string{"logs.ndjson.gz", "deploys.json", "tickets.json", "customers.csv", "report.json", "report.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("demo left no %s: %v", f, err)
		}
	}
}
