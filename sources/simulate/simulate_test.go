package simulate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/culprithq/culprit/correlate"
)

// demoConfig is what `culprit demo` runs.
var demoConfig = Config{Seed: 42, Shape: ShapeFriday, Rollback: 5*time.Hour + 10*time.Minute}

func generate(t testing.TB, cfg Config, fn func(d *Doc)) *Run {
	t.Helper()
	run, err := Generate(context.Background(), cfg, func(d *Doc) error {
		fn(d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// versionAt replays the deploy records: the version each host runs at t,
// as an analysis reading deploys.json would reconstruct it.
type versionAt map[string][]struct {
	at      time.Time
	version string
	id      string
}

func newVersionAt(deploys []correlate.Deploy) versionAt {
	v := versionAt{}
	for _, d := range deploys {
		for _, h := range d.Hosts {
			v[h.Name] = append(v[h.Name], struct {
				at      time.Time
				version string
				id      string
			}{h.At, d.Version, d.ID})
		}
	}
	for _, tl := range v {
		slices.SortFunc(tl, func(a, b struct {
			at      time.Time
			version string
			id      string
		}) int {
			return a.at.Compare(b.at)
		})
	}
	return v
}

// get returns the version and deploy id of host at t; ok is false before
// the host's first deploy.
func (v versionAt) get(host string, t time.Time) (version, id string, ok bool) {
	tl := v[host]
	for i := len(tl) - 1; i >= 0; i-- {
		if !tl[i].at.After(t) {
			return tl[i].version, tl[i].id, true
		}
	}
	return "", "", false
}

func TestShapes(t *testing.T) {
	seen := map[Shape]bool{}
	for _, s := range Shapes() {
		if seen[s] {
			t.Errorf("shape %s listed twice", s)
		}
		seen[s] = true
	}
	if len(seen) != 14 || !slices.Equal(Shapes(), Shapes()) {
		t.Errorf("Shapes() = %v", Shapes())
	}
}

// TestFriday checks the story the project exists for: a threshold alert on
// the fleet's 5xx share misses it, and the injected errors are exactly
// where the truth says.
func TestFriday(t *testing.T) {
	t.Parallel()
	type injected struct {
		t                  time.Time
		host, ver, org     string
		provider, svc, msg string
	}
	var inj []injected
	w5 := map[int64][2]int{}
	var prev time.Time
	run := generate(t, demoConfig, func(d *Doc) {
		if d.Time.Before(prev) {
			t.Fatalf("documents out of order: %s after %s", d.Time, prev)
		}
		prev = d.Time
		k := d.Time.Unix() / 300
		x := w5[k]
		x[0]++
		if d.Status >= 500 {
			x[1]++
		}
		w5[k] = x
		if d.Injected {
			inj = append(inj, injected{d.Time, d.Host, d.Version, d.Org, d.Provider, d.Service, d.Error})
		}
		if strings.Contains(d.Error, "function invocation failed") != d.Injected {
			t.Fatalf("injected flag disagrees with message: %+v", *d)
		}
	})
	truth := run.Truth
	if truth.Shape != ShapeFriday || truth.Kind != correlate.KindNewError || !truth.ExpectPage ||
		truth.Service != "edge-router" || truth.Field != correlate.FieldProvider || truth.Value != "aws" {
		t.Fatalf("truth %+v", truth)
	}
	for k, x := range w5 {
		if share := float64(x[1]) / float64(x[0]); share >= 0.01 {
			t.Errorf("5xx share %.2f%% in the 5 minutes from %s: a threshold alert would fire", 100*share, time.Unix(k*300, 0).UTC())
		}
	}
	if truth.AffectedCustomers < 20 {
		t.Errorf("only %d affected customers, want dozens", truth.AffectedCustomers)
	}

	var bad correlate.Deploy
	for _, d := range run.Deploys {
		if d.ID == truth.SuspectDeployID {
			bad = d
		}
	}
	if bad.ID == "" || bad.Service != truth.Service {
		t.Fatalf("suspect %q is not an edge-router deploy in %+v", truth.SuspectDeployID, run.Deploys)
	}
	if len(bad.Hosts) != 24 || bad.FinishedAt.Sub(bad.StartedAt) < 15*time.Minute {
		t.Errorf("bad deploy should roll out host by host over ~20m: %d hosts, %s–%s", len(bad.Hosts), bad.StartedAt, bad.FinishedAt)
	}
	firstAWS := time.Time{}
	for _, h := range bad.Hosts {
		if strings.Contains(h.Name, "-aws-") && (firstAWS.IsZero() || h.At.Before(firstAWS)) {
			firstAWS = h.At
		}
	}
	if !truth.Onset.Equal(firstAWS) {
		t.Errorf("onset %s, first aws host switched at %s", truth.Onset, firstAWS)
	}
	if truth.Recovered == nil {
		t.Fatal("rollback within the run but no recovery")
	}
	versions := newVersionAt(run.Deploys)
	orgs := map[string]bool{}
	for _, e := range inj {
		orgs[e.org] = true
		if e.provider != "aws" || e.svc != "edge-router" || !strings.Contains(e.host, "-aws-") {
			t.Fatalf("injected error outside aws edge-router: %+v", e)
		}
		v, id, _ := versions.get(e.host, e.t)
		if id != bad.ID || v != e.ver || v != bad.Version {
			t.Fatalf("injected error on %s at %s, which then ran %s (%s), not the bad deploy %s", e.host, e.t, v, id, bad.ID)
		}
		if e.t.Before(truth.Onset) || !e.t.Before(*truth.Recovered) {
			t.Fatalf("injected error at %s outside [%s, %s)", e.t, truth.Onset, truth.Recovered)
		}
	}
	if len(orgs) != truth.AffectedCustomers || len(inj) != truth.InjectedErrors {
		t.Errorf("counted %d customers and %d errors, truth says %d and %d", len(orgs), len(inj), truth.AffectedCustomers, truth.InjectedErrors)
	}
	first := inj[0].t
	for _, e := range inj {
		if e.t.Before(first) {
			first = e.t
		}
	}
	if !truth.FirstError.Equal(first) || truth.FirstError.Before(truth.Onset) {
		t.Errorf("first injected error at %s, truth says %s (onset %s)", first, truth.FirstError, truth.Onset)
	}
	// The error rate accelerates as the rollout spreads.
	var early, late int
	for _, e := range inj {
		switch {
		case e.t.Before(truth.Onset.Add(5 * time.Minute)):
			early++
		case e.t.After(bad.FinishedAt) && e.t.Before(bad.FinishedAt.Add(5*time.Minute)):
			late++
		}
	}
	if late <= 2*early {
		t.Errorf("errors did not accelerate with the rollout: %d in the first 5m, %d after it finished", early, late)
	}

	var related int
	for _, tk := range run.Tickets {
		if orgs[strconv.FormatInt(tk.OrganizationID, 10)] && !tk.CreatedAt.Before(truth.Onset.Add(10*time.Minute)) && strings.Contains(strings.Join(tk.Tags, ","), "functions") {
			related++
		}
	}
	if related < 3 {
		t.Errorf("%d tickets from affected customers, want a trickle", related)
	}
}

// TestDocsFollowDeploys checks every document's version against the
// deploy records, so that rollout alignment in the analysis sees what the
// records say.
func TestDocsFollowDeploys(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 7, Shape: ShapeCanary, Rollback: 5 * time.Hour}
	run := generate(t, cfg, func(*Doc) {})
	planned, err := Deploys(cfg)
	if err != nil || !reflect.DeepEqual(planned, run.Deploys) {
		t.Errorf("Deploys() differs from the run's deploys (%v)", err)
	}
	versions := newVersionAt(run.Deploys)
	initial := map[string]string{}
	for _, d := range serviceDefs {
		initial[d.name] = d.version.String()
	}
	start, end := DefaultStart, DefaultStart.Add(defaultDuration)
	n := 0
	generate(t, cfg, func(d *Doc) {
		n++
		if d.Time.Before(start) || !d.Time.Before(end) {
			t.Fatalf("document at %s outside the run", d.Time)
		}
		want, _, ok := versions.get(d.Host, d.Time)
		if !ok {
			want = initial[d.Service]
		}
		if d.Version != want {
			t.Fatalf("%s at %s runs %s, deploys say %s", d.Host, d.Time, d.Version, want)
		}
	})
	if n != run.Docs {
		t.Errorf("emitted %d documents, run says %d", n, run.Docs)
	}
	var canary correlate.Deploy
	for _, d := range run.Deploys {
		if d.ID == run.Truth.SuspectDeployID {
			canary = d
		}
	}
	if len(canary.Hosts) != 1 || canary.Hosts[0].Name != run.Truth.Value || run.Truth.Field != correlate.FieldHost {
		t.Errorf("canary deploy %+v, truth %s=%s", canary, run.Truth.Field, run.Truth.Value)
	}
}

// TestTruths checks each shape's ground truth against what was generated.
func TestTruths(t *testing.T) {
	for _, shape := range Shapes() {
		t.Run(string(shape), func(t *testing.T) {
			t.Parallel()
			cfg := Config{Seed: 42, Shape: shape}
			hosts, orgs := map[string]bool{}, map[string]bool{}
			regions := map[string]bool{}
			var first, last time.Time
			run := generate(t, cfg, func(d *Doc) {
				if !d.Injected {
					return
				}
				if first.IsZero() {
					first = d.Time
				}
				last = d.Time
				hosts[d.Host], orgs[d.Org], regions[d.Region] = true, true, true
				if !strings.Contains(d.Error, run0(shape)) || d.Service != serviceOf(shape) {
					t.Fatalf("injected %s %q", d.Service, d.Error)
				}
			})
			tr := run.Truth
			if tr.Shape != shape {
				t.Fatalf("truth shape %s", tr.Shape)
			}
			if len(orgs) != tr.AffectedCustomers && shape != ShapeTicketSurge {
				t.Errorf("affected customers %d, counted %d", tr.AffectedCustomers, len(orgs))
			}
			if !first.IsZero() && first.Before(tr.Onset) {
				t.Errorf("first injected error %s before onset %s", first, tr.Onset)
			}
			if tr.Recovered != nil && !last.Before(*tr.Recovered) {
				t.Errorf("injected error at %s after recovery %s", last, tr.Recovered)
			}
			if tr.SuspectDeployID != "" {
				found := false
				for _, d := range run.Deploys {
					found = found || (d.ID == tr.SuspectDeployID && d.Service == tr.Service)
				}
				if !found {
					t.Errorf("suspect %s is not a deploy of %s", tr.SuspectDeployID, tr.Service)
				}
			}
			// Every incident has another team's deploy shortly before it.
			if tr.Kind != "" && tr.Kind != correlate.KindTicketSurge {
				decoy := false
				for _, d := range run.Deploys {
					if d.ID != tr.SuspectDeployID && d.StartedAt.Before(tr.Onset) && tr.Onset.Sub(d.StartedAt) <= 30*time.Minute {
						decoy = true
					}
				}
				if !decoy {
					t.Errorf("no innocent deploy in the half hour before the onset %s", tr.Onset)
				}
			}
			switch shape {
			case ShapeQuiet, ShapeTrafficSurge:
				if tr.Kind != "" || tr.ExpectPage || tr.InjectedErrors != 0 {
					t.Errorf("truth %+v", tr)
				}
			case ShapeFriday, ShapeIncrease, ShapeSlowRamp, ShapeQuickIncrease, ShapeLateLeak, ShapeDecoyIncrease, ShapeBurstBeforeDeploy, ShapeSecondDeploy:
				if tr.SuspectDeployID == "" || !tr.ExpectPage || tr.AffectedCustomers < 20 {
					t.Errorf("truth %+v", tr)
				}
			case ShapeCanary:
				if len(hosts) != 1 || !hosts[tr.Value] || tr.SuspectDeployID == "" {
					t.Errorf("canary errors on %v, truth %+v", hosts, tr)
				}
			case ShapeRegionOutage:
				if tr.SuspectDeployID != "" || len(regions) != 1 || !regions[tr.Value] || tr.Recovered == nil {
					t.Errorf("outage in %v, truth %+v", regions, tr)
				}
				// The trap: a same-service deploy finished shortly before.
				trap := false
				for _, d := range run.Deploys {
					if d.Service == tr.Service && d.FinishedAt.Before(tr.Onset) && tr.Onset.Sub(d.StartedAt) <= 30*time.Minute {
						trap = true
					}
				}
				if !trap {
					t.Errorf("no %s deploy in the half hour before the outage", tr.Service)
				}
			case ShapeSingleCustomer:
				if tr.AffectedCustomers != 1 || tr.ExpectPage || !orgs[tr.Value] || tr.SuspectDeployID != "" {
					t.Errorf("truth %+v, orgs %v", tr, orgs)
				}
			case ShapeTicketSurge:
				n, surgeOrgs := 0, map[int64]bool{}
				for _, tk := range run.Tickets {
					if strings.Contains(tk.Subject, tr.MessageContains) {
						n++
						surgeOrgs[tk.OrganizationID] = true
						if tk.CreatedAt.Before(tr.Onset) || tk.CreatedAt.After(tr.Onset.Add(30*time.Minute)) {
							t.Errorf("surge ticket at %s, onset %s", tk.CreatedAt, tr.Onset)
						}
					}
				}
				if n < 8 || n > 15 || len(surgeOrgs) != tr.AffectedCustomers || len(surgeOrgs) < 4 || tr.ExpectPage {
					t.Errorf("%d surge tickets from %d orgs, truth %+v", n, len(surgeOrgs), tr)
				}
			}
		})
	}
}

func run0(s Shape) string {
	switch s {
	case ShapeFriday:
		return "function invocation failed"
	case ShapeIncrease, ShapeQuickIncrease, ShapeDecoyIncrease, ShapeBurstBeforeDeploy, ShapeSecondDeploy:
		return "context deadline exceeded"
	case ShapeCanary:
		return "index out of range"
	case ShapeSlowRamp, ShapeLateLeak:
		return "connection pool exhausted"
	case ShapeRegionOutage:
		return "no healthy upstream"
	case ShapeSingleCustomer:
		return "certificate verify failed"
	}
	return "\x00never"
}

func serviceOf(s Shape) string {
	switch s {
	case ShapeIncrease, ShapeCanary, ShapeSlowRamp, ShapeQuickIncrease, ShapeLateLeak, ShapeDecoyIncrease, ShapeBurstBeforeDeploy, ShapeSecondDeploy:
		return "api"
	}
	return "edge-router"
}

// TestQuietIsBursty: background errors are overdispersed, so a detector
// assuming Poisson noise would page on them.
func TestQuietIsBursty(t *testing.T) {
	t.Parallel()
	for _, seed := range []int64{1, 2, 42} {
		perMin := make([]int, int(defaultDuration/time.Minute))
		run := generate(t, Config{Seed: seed}, func(d *Doc) {
			if d.Injected {
				t.Fatalf("quiet run injected %q", d.Error)
			}
			if d.Error != "" {
				perMin[int(d.Time.Sub(DefaultStart)/time.Minute)]++
			}
		})
		if run.Truth.Kind != "" || run.Truth.ExpectPage {
			t.Errorf("quiet truth %+v", run.Truth)
		}
		sorted := slices.Clone(perMin)
		slices.Sort(sorted)
		median, top := sorted[len(sorted)/2], sorted[len(sorted)-1]
		if median == 0 || top < 5*median {
			t.Errorf("seed %d: busiest minute has %d errors, median %d: no burst", seed, top, median)
		}
		var sum, sq float64
		for _, n := range perMin {
			sum += float64(n)
			sq += float64(n) * float64(n)
		}
		mean := sum / float64(len(perMin))
		if v := sq/float64(len(perMin)) - mean*mean; v < 2*mean {
			t.Errorf("seed %d: variance %.1f of errors per minute is Poisson-like (mean %.1f)", seed, v, mean)
		}
	}
}

// TestTrafficSurge: errors follow traffic, their share does not move.
func TestTrafficSurge(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 42, Shape: ShapeTrafficSurge}
	onset := DefaultStart.Add(defaultOnset)
	var before, after [2]float64
	quiet := 0.0
	generate(t, Config{Seed: 42}, func(d *Doc) {
		if d.Service == "edge-router" && !d.Time.Before(onset) {
			quiet++
		}
	})
	generate(t, cfg, func(d *Doc) {
		if d.Service != "edge-router" {
			return
		}
		p := &before
		if !d.Time.Before(onset) {
			p = &after
		}
		p[0]++
		if d.Error != "" {
			p[1]++
		}
	})
	if after[0] < 1.3*quiet {
		t.Errorf("edge requests after onset %.0f, %.0f without the surge: no surge", after[0], quiet)
	}
	ratio := (after[1] / after[0]) / (before[1] / before[0])
	if ratio < 0.7 || ratio > 1.3 {
		t.Errorf("error share moved by %.0f%% with traffic", 100*(ratio-1))
	}
}

// TestBackgroundIndependentOfShape: one seed's background is the same
// whatever is injected, so that shapes are comparable.
func TestBackgroundIndependentOfShape(t *testing.T) {
	key := func(d *Doc) string {
		return d.Time.String() + d.Host + d.Org + d.Path + d.Domain + strconv.FormatBool(d.Dotted)
	}
	var quiet []string
	limit := DefaultStart.Add(90 * time.Minute)
	generate(t, Config{Seed: 3, Duration: 2 * time.Hour, Onset: time.Hour}, func(d *Doc) {
		if d.Time.Before(limit) {
			quiet = append(quiet, key(d))
		}
	})
	var other []string
	generate(t, Config{Seed: 3, Duration: 2 * time.Hour, Onset: time.Hour, Shape: ShapeRegionOutage}, func(d *Doc) {
		if d.Time.Before(limit) {
			other = append(other, key(d))
		}
	})
	if !slices.Equal(quiet, other) {
		t.Errorf("background differs between shapes (%d vs %d documents)", len(quiet), len(other))
	}
}

func TestDocJSON(t *testing.T) {
	base := Doc{
		Time: time.Date(2026, 11, 20, 16, 4, 5, 123_000_000, time.UTC), Service: "edge-router", Version: "2.42.0",
		Host: "edge-aws-use1-03", Org: "10234", Domain: "shop-10234.example.net", Path: "/fn/checkout", Method: "POST",
		Provider: "aws", Region: "us-east-1", Status: 502, Outcome: "failure", Duration: 23_000_000,
		Error:   "function invocation failed: fn-3f2a9c1d returned 502 from upstream 10.1.2.3:8443 \"quoted\" \\ \n\t\x01 é \xff",
		Message: `"POST /fn/checkout HTTP/1.1" 502 1532 23ms "shop-10234.example.net"`,
	}
	want := map[string]any{
		"@timestamp": "2026-11-20T16:04:05.123Z", "service.name": "edge-router", "service.version": "2.42.0",
		"host.name": "edge-aws-use1-03", "organization.id": "10234", "url.domain": "shop-10234.example.net",
		"url.path": "/fn/checkout", "http.request.method": "POST", "cloud.provider": "aws", "cloud.region": "us-east-1",
		"http.response.status_code": 502.0, "event.outcome": "failure", "event.duration": 23e6,
		"error.message": strings.ToValidUTF8(base.Error, "\ufffd"), "message": base.Message,
	}
	for _, dotted := range []bool{false, true} {
		d := base
		d.Dotted = dotted
		b := d.AppendJSON(nil)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("dotted=%v: %v\n%s", dotted, err, b)
		}
		got := flatten("", m)
		if dotted {
			if _, ok := m["service.name"]; !ok {
				t.Errorf("dotted document has no literal \"service.name\" key: %s", b)
			}
		} else if _, ok := m["service"].(map[string]any); !ok {
			t.Errorf("nested document has no service object: %s", b)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("dotted=%v: %s = %#v, want %#v", dotted, k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("dotted=%v: keys %v", dotted, got)
		}
	}
	d := base
	d.Error = ""
	d.Outcome = "success"
	var m map[string]any
	if err := json.Unmarshal(d.AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["error"]; ok {
		t.Error("a success carries an error object")
	}
}

func flatten(prefix string, m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			for k2, v2 := range flatten(prefix+k+".", sub) {
				out[k2] = v2
			}
			continue
		}
		out[prefix+k] = v
	}
	return out
}

// TestGeneratedJSON checks real documents: both layouts occur, every line
// parses, errors and outcomes agree.
func TestGeneratedJSON(t *testing.T) {
	t.Parallel()
	var nested, dotted, errs int
	var b []byte
	generate(t, Config{Seed: 5, Duration: 40 * time.Minute, Onset: 10 * time.Minute, Shape: ShapeFriday}, func(d *Doc) {
		b = d.AppendJSON(b[:0])
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		f := flatten("", m)
		if _, ok := m["service.name"]; ok {
			dotted++
		} else {
			nested++
		}
		if (f["error.message"] != nil) != (f["event.outcome"] == "failure") {
			t.Fatalf("error and outcome disagree: %s", b)
		}
		if f["error.message"] != nil {
			errs++
		}
		if _, err := time.Parse(time.RFC3339, f["@timestamp"].(string)); err != nil {
			t.Fatal(err)
		}
	})
	share := float64(dotted) / float64(dotted+nested)
	if share < 0.15 || share > 0.25 {
		t.Errorf("%.0f%% dotted documents, want about 20%%", 100*share)
	}
	if errs == 0 {
		t.Error("no errors in an hour")
	}
}

func TestWriteFiles(t *testing.T) {
	t.Parallel()
	dirs := []string{t.TempDir(), t.TempDir()}
	cfgs := []Config{demoConfig, demoConfig}
	sums := make([]map[string][32]byte, len(dirs))
	var run *Run
	for i, dir := range dirs {
		r, err := WriteFiles(context.Background(), dir, cfgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			run = r
		}
		sums[i] = map[string][32]byte{}
		for _, name := range []string{LogsFile, DeploysFile, TicketsFile, TruthFile} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			sums[i][name] = sha256.Sum256(b)
		}
	}
	for name, sum := range sums[0] {
		if sums[1][name] != sum {
			t.Errorf("%s differs between two runs of one config", name)
		}
	}
	hour := func(seed int64) [32]byte {
		h := sha256.New()
		var b []byte
		generate(t, Config{Seed: seed, Duration: time.Hour, Onset: 30 * time.Minute}, func(d *Doc) {
			b = d.AppendJSON(b[:0])
			h.Write(b)
		})
		return [32]byte(h.Sum(nil))
	}
	if hour(42) == hour(43) {
		t.Error("another seed generated the same logs")
	}

	dir := dirs[0]
	f, err := os.Open(filepath.Join(dir, LogsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		if lines%1000 == 0 && !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %s", lines+1, sc.Bytes())
		}
		lines++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != run.Docs {
		t.Errorf("%d lines, run says %d documents", lines, run.Docs)
	}

	var deploys []correlate.Deploy
	readJSON(t, filepath.Join(dir, DeploysFile), &deploys)
	if len(deploys) != len(run.Deploys) {
		t.Fatalf("deploys.json has %d deploys, run %d", len(deploys), len(run.Deploys))
	}
	for i, d := range deploys {
		w := run.Deploys[i]
		if d.ID != w.ID || d.Version != w.Version || !d.StartedAt.Equal(w.StartedAt) || len(d.Hosts) != len(w.Hosts) ||
			!strings.HasPrefix(d.ID, "dep-") || len(d.ID) != 10 || d.Environment != "production" || d.URL == "" {
			t.Errorf("deploy %d: %+v, want %+v", i, d, w)
		}
	}

	var page struct {
		Tickets []struct {
			ID             json.Number    `json:"id"`
			CreatedAt      string         `json:"created_at"`
			OrganizationID any            `json:"organization_id"`
			Via            map[string]any `json:"via"`
		} `json:"tickets"`
		EndOfStream *bool            `json:"end_of_stream"`
		AfterCursor *json.RawMessage `json:"after_cursor"`
	}
	readJSON(t, filepath.Join(dir, TicketsFile), &page)
	raw, _ := os.ReadFile(filepath.Join(dir, TicketsFile))
	if page.EndOfStream == nil || !*page.EndOfStream || !bytes.Contains(raw, []byte(`"after_cursor": null`)) {
		t.Errorf("not a last export page: end_of_stream %v", page.EndOfStream)
	}
	if len(page.Tickets) != len(run.Tickets) || len(page.Tickets) == 0 {
		t.Fatalf("%d tickets in the file, %d in the run", len(page.Tickets), len(run.Tickets))
	}
	for i, tk := range page.Tickets {
		if _, ok := tk.OrganizationID.(float64); !ok {
			t.Errorf("ticket %d: organization_id %#v is not a number", i, tk.OrganizationID)
		}
		if ch, _ := tk.Via["channel"].(string); ch != "web" && ch != "email" {
			t.Errorf("ticket %d: via %v", i, tk.Via)
		}
		if at, err := time.Parse(time.RFC3339, tk.CreatedAt); err != nil || !at.Equal(run.Tickets[i].CreatedAt) {
			t.Errorf("ticket %d: created_at %q (%v)", i, tk.CreatedAt, err)
		}
		if i > 0 && run.Tickets[i].ID <= run.Tickets[i-1].ID {
			t.Errorf("ticket ids not increasing at %d", i)
		}
	}

	var truth Truth
	readJSON(t, filepath.Join(dir, TruthFile), &truth)
	if truth.SuspectDeployID != run.Truth.SuspectDeployID || !truth.Onset.Equal(run.Truth.Onset) ||
		truth.Recovered == nil || !truth.Recovered.Equal(*run.Truth.Recovered) || truth.AffectedCustomers != run.Truth.AffectedCustomers {
		t.Errorf("truth.json %+v, run %+v", truth, run.Truth)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Shape: "meteor"},
		{Shape: ShapeFriday, Rollback: 4*time.Hour + 10*time.Minute},
		{Onset: 7 * time.Hour},
		{Duration: time.Minute},
		{PeakPerMin: -1},
	} {
		if _, err := Generate(context.Background(), cfg, func(*Doc) error { return nil }); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
		if _, err := WriteFiles(context.Background(), filepath.Join(t.TempDir(), "out"), cfg); err == nil {
			t.Errorf("%+v: WriteFiles wrote anyway", cfg)
		}
	}
}

func TestStops(t *testing.T) {
	stop := errors.New("enough")
	n := 0
	_, err := Generate(context.Background(), Config{Seed: 1}, func(*Doc) error {
		n++
		if n == 1000 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 1000 {
		t.Errorf("emit error: got %v after %d documents", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	_, err = Generate(ctx, Config{Seed: 1}, func(*Doc) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n > 5000 {
		t.Errorf("cancel: got %v after %d documents", err, n)
	}
	if _, err := WriteFiles(ctx, t.TempDir(), Config{Seed: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteFiles with a cancelled context: %v", err)
	}
}

// TestShortRun covers a run shorter than a minute's multiple, at a tiny
// rate, where every minute is a corner case.
func TestShortRun(t *testing.T) {
	cfg := Config{Seed: 9, Duration: 30*time.Minute + 30*time.Second, Onset: 10 * time.Minute, PeakPerMin: 30, Shape: ShapeSingleCustomer}
	var last time.Time
	run := generate(t, cfg, func(d *Doc) { last = d.Time })
	if !last.Before(DefaultStart.Add(cfg.Duration)) {
		t.Errorf("document at %s after the end", last)
	}
	if run.Docs == 0 || run.Docs > 2000 {
		t.Errorf("%d documents at 30/min for half an hour", run.Docs)
	}
}

// BenchmarkGenerate is generation and serialisation of a default six-hour
// run, without compression or I/O.
func BenchmarkGenerate(b *testing.B) {
	var buf []byte
	var docs, bytes int
	for b.Loop() {
		run, err := Generate(context.Background(), demoConfig, func(d *Doc) error {
			buf = d.AppendJSON(buf[:0])
			bytes += len(buf) + 1
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		docs += run.Docs
	}
	b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/run")
}

// BenchmarkWriteFiles is what `culprit demo` waits for.
func BenchmarkWriteFiles(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if _, err := WriteFiles(context.Background(), dir, demoConfig); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHarderShapes checks what makes each harder deploy shape hard.
func TestHarderShapes(t *testing.T) {
	for _, shape := range []Shape{ShapeQuickIncrease, ShapeLateLeak, ShapeDecoyIncrease, ShapeBurstBeforeDeploy, ShapeSecondDeploy} {
		t.Run(string(shape), func(t *testing.T) {
			t.Parallel()
			burstOrgs := map[string]int{}
			var run *Run
			onset := DefaultStart.Add(4 * time.Hour)
			run = generate(t, Config{Seed: 7, Shape: shape}, func(d *Doc) {
				if !d.Injected && strings.Contains(d.Error, run0(shape)) && d.Time.Before(onset) && d.Time.After(onset.Add(-10*time.Minute)) {
					burstOrgs[d.Org]++
				}
			})
			tr := run.Truth
			var bad correlate.Deploy
			for _, d := range run.Deploys {
				if d.ID == tr.SuspectDeployID {
					bad = d
				}
			}
			last := bad.Hosts[len(bad.Hosts)-1].At
			if roll := last.Sub(bad.StartedAt); roll < 90*time.Second || roll > 5*time.Minute+15*time.Second {
				t.Errorf("suspect rolled out in %s, want 2–5 min", roll)
			}
			switch shape {
			case ShapeLateLeak:
				if gap := tr.Onset.Sub(last); gap < 10*time.Minute || gap > 21*time.Minute {
					t.Errorf("leak began %s after the rollout's last host, want 10–20 min", gap)
				}
				rollback := false
				for _, d := range run.Deploys {
					rollback = rollback || (d.Service == bad.Service && d.StartedAt.After(tr.Onset) && correlate.SaysRollback(d))
				}
				if !rollback || tr.Recovered == nil {
					t.Errorf("no rollback ending the leak: recovered %v", tr.Recovered)
				}
			case ShapeDecoyIncrease:
				near := false
				for _, d := range run.Deploys {
					lead := bad.StartedAt.Sub(d.StartedAt)
					near = near || (d.Service != bad.Service && lead >= time.Minute && lead <= 4*time.Minute)
				}
				if !near {
					t.Error("no other service's deploy 1–4 min before the suspect")
				}
			case ShapeBurstBeforeDeploy:
				top, all := 0, 0
				for _, n := range burstOrgs {
					top, all = max(top, n), all+n
				}
				if top < 10 || top < all*3/4 {
					t.Errorf("class errors in the 10 min before the deploy by customer: %v; want one customer's burst", burstOrgs)
				}
			case ShapeSecondDeploy:
				first := false
				for _, d := range run.Deploys {
					first = first || (d.Service == bad.Service && d.ID != bad.ID && bad.StartedAt.Sub(d.StartedAt) == 15*time.Minute)
				}
				if !first {
					t.Error("no harmless deploy of the same service 15 min before the suspect")
				}
			}
		})
	}
}
