package changepoint

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// tcpdDir is the shared copy of the TCPD benchmark, relative to this
// package's directory.
const tcpdDir = "../../../shared/bench/tcpd"

type tcpdSeries struct {
	name        string
	n, dims     int
	x           []float64 // first dimension; NaN where the value is missing
	annotations [][]int
}

// loadTCPD reads every series in the benchmark folder with its annotations,
// sorted by name. It skips the test when the folder is absent.
func loadTCPD(t testing.TB) []tcpdSeries {
	t.Helper()
	if _, err := os.Stat(tcpdDir); err != nil {
		t.Skipf("TCPD benchmark folder %s not present (%v): skipping", tcpdDir, err)
	}
	raw, err := os.ReadFile(filepath.Join(tcpdDir, "annotations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ann map[string]map[string][]int
	if err := json.Unmarshal(raw, &ann); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(tcpdDir, "datasets", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no datasets in %s: %v", tcpdDir, err)
	}
	var out []tcpdSeries
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Name   string `json:"name"`
			NObs   int    `json:"n_obs"`
			NDim   int    `json:"n_dim"`
			Series []struct {
				Raw []*float64 `json:"raw"`
			} `json:"series"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		a, ok := ann[d.Name]
		if !ok {
			t.Fatalf("%s: no annotations", d.Name)
		}
		s := tcpdSeries{name: d.Name, n: d.NObs, dims: d.NDim}
		for _, v := range d.Series[0].Raw {
			if v == nil {
				s.x = append(s.x, math.NaN())
			} else {
				s.x = append(s.x, *v)
			}
		}
		if len(s.x) != s.n {
			t.Fatalf("%s: n_obs %d but %d values", d.Name, s.n, len(s.x))
		}
		users := make([]string, 0, len(a))
		for u := range a {
			users = append(users, u)
		}
		sort.Strings(users)
		for _, u := range users {
			s.annotations = append(s.annotations, a[u])
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// publishedScores maps dataset → metric (default_f1, ...) → method → score.
func publishedScores(t testing.TB) map[string]map[string]map[string]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(tcpdDir, "published_scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := rows[0]
	out := map[string]map[string]map[string]float64{}
	for _, r := range rows[1:] {
		ds, metric := r[0], r[1]
		if out[ds] == nil {
			out[ds] = map[string]map[string]float64{}
		}
		out[ds][metric] = map[string]float64{}
		for i := 2; i < len(r); i++ {
			if strings.TrimSpace(r[i]) == "" {
				continue // the method failed on this series
			}
			v, err := strconv.ParseFloat(r[i], 64)
			if err != nil {
				t.Fatalf("published_scores.csv: %s/%s/%s: %v", ds, metric, header[i], err)
			}
			out[ds][metric][header[i]] = v
		}
	}
	return out
}

// benchmarkSeries are the univariate series the README's reference numbers
// average over: every one-dimensional series except the five simulated
// quality_control series and uk_coal_employ.
func benchmarkSeries(all []tcpdSeries) []tcpdSeries {
	var out []tcpdSeries
	for _, s := range all {
		if s.dims != 1 || strings.HasPrefix(s.name, "quality_control") || s.name == "uk_coal_employ" {
			continue
		}
		out = append(out, s)
	}
	return out
}

// An empty prediction has one deterministic score per series, so matching
// the published "zero" method on every series checks both metrics, the
// annotation handling and the n used, against TCPDBench's own numbers.
func TestTCPDZeroMatchesPublished(t *testing.T) {
	all := loadTCPD(t)
	pub := publishedScores(t)
	checked := 0
	for _, s := range all {
		p, ok := pub[s.name]
		if !ok {
			t.Errorf("%s: no published scores", s.name)
			continue
		}
		f1 := F1(s.annotations, nil, s.n, 5)
		cover := Cover(s.annotations, nil, s.n)
		if want := p["default_f1"]["zero"]; math.Abs(f1-want) > 1e-5 {
			t.Errorf("%s: F1(zero) = %.5f, published %.5f", s.name, f1, want)
		}
		if want := p["default_cover"]["zero"]; math.Abs(cover-want) > 1e-5 {
			t.Errorf("%s: Cover(zero) = %.5f, published %.5f", s.name, cover, want)
		}
		checked++
	}
	if checked < 25 {
		t.Errorf("checked only %d series", checked)
	}
}

// Published predictions of other default methods exercise the matching
// (nearby predictions competing for one true point, end-of-series points)
// that an empty prediction cannot. The predictions are the cplocations
// TCPDBench recorded; the expected scores are published_scores.csv's.
func TestTCPDMetricsMatchPublishedPredictions(t *testing.T) {
	all := loadTCPD(t)
	pub := publishedScores(t)
	byName := map[string]tcpdSeries{}
	for _, s := range all {
		byName[s.name] = s
	}
	for _, tc := range []struct {
		series, method string
		predicted      []int
	}{
		{"nile", "pelt", []int{27}},
		{"nile", "bocpdms", []int{3, 28}},
		{"nile", "rbocpdms", []int{1, 2}},
		{"well_log", "binseg", []int{178, 280, 460}},
		{"well_log", "pelt", []int{178, 280, 431, 657, 660}},
		{"well_log", "bocpd", []int{4, 173, 179, 202, 204, 239, 255, 281, 311, 343, 402, 412, 432, 462, 464, 657, 661}},
		{"well_log", "cpnp", []int{3, 170, 178, 201, 203, 254, 280, 310, 340, 401, 411, 431, 461, 463, 656, 660}},
		{"well_log", "rfpop", []int{3, 172, 178, 254, 280, 310, 342, 401, 411, 421, 431, 461, 463, 621, 642, 672}},
		{"well_log", "wbs", []int{1, 3, 172, 178, 201, 203, 237, 238, 254, 280, 310, 342, 401, 411, 421, 431, 461, 463, 611, 612, 657, 660, 672}},
	} {
		s, ok := byName[tc.series]
		if !ok {
			t.Fatalf("series %s missing", tc.series)
		}
		f1 := F1(s.annotations, tc.predicted, s.n, 5)
		cover := Cover(s.annotations, tc.predicted, s.n)
		if want := pub[tc.series]["default_f1"][tc.method]; math.Abs(f1-want) > 1e-5 {
			t.Errorf("%s/%s: F1 = %.5f, published %.5f", tc.series, tc.method, f1, want)
		}
		if want := pub[tc.series]["default_cover"][tc.method]; math.Abs(cover-want) > 1e-5 {
			t.Errorf("%s/%s: Cover = %.5f, published %.5f", tc.series, tc.method, cover, want)
		}
	}
}

// The examples TCPDBench documents for its own metric functions.
func TestTCPDMetricExamples(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ann       [][]int
		pred      []int
		n         int
		f1, cover float64
	}{
		{"exact", [][]int{{10, 20}, {11, 20}, {10}, {0, 5}}, []int{10, 20}, 45, 1, math.NaN()},
		{"one annotator agrees", [][]int{{}, {10}, {50}}, []int{10}, 100, 0.9090909090909091, math.NaN()},
		{"empty prediction", [][]int{{}, {10}, {50}}, nil, 100, 0.8, math.NaN()},
		{"cover exact", [][]int{{10, 20}, {10}, {0, 5}}, []int{10, 20}, 45, math.NaN(), 0.7962962962962963},
		{"cover one", [][]int{{}, {10}, {40}}, []int{10}, 45, math.NaN(), 0.7954144620811286},
		{"cover empty", [][]int{{}, {10}, {40}}, nil, 45, math.NaN(), 0.8189300411522634},
		{"duplicates and end points dropped", [][]int{{10}}, []int{0, 10, 10, 44}, 45, 1, math.NaN()},
		{"each prediction used once", [][]int{{10, 12}}, []int{11}, 45, 0.8, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !math.IsNaN(tc.f1) {
				if got := F1(tc.ann, tc.pred, tc.n, 5); math.Abs(got-tc.f1) > 1e-12 {
					t.Errorf("F1 = %v, want %v", got, tc.f1)
				}
			}
			if !math.IsNaN(tc.cover) {
				if got := Cover(tc.ann, tc.pred, tc.n); math.Abs(got-tc.cover) > 1e-12 {
					t.Errorf("Cover = %v, want %v", got, tc.cover)
				}
			}
		})
	}
	if !math.IsNaN(F1(nil, []int{3}, 10, 5)) || !math.IsNaN(Cover(nil, []int{3}, 10)) {
		t.Error("no annotators should give NaN")
	}
}

// MeanShift's fixed settings must beat, on average over the univariate TCPD
// series, every published method run at its default setting — on F1 (margin
// 5) and on cover separately. The reference is recomputed from
// published_scores.csv over exactly the series scored here, taking each
// metric's best method.
func TestTCPDDefaults(t *testing.T) {
	all := loadTCPD(t)
	pub := publishedScores(t)
	series := benchmarkSeries(all)
	if len(series) < 20 {
		t.Fatalf("only %d univariate series found", len(series))
	}
	var f1, cover float64
	for _, s := range series {
		p := MeanShift(s.x)
		fs, cs := F1(s.annotations, p, s.n, 5), Cover(s.annotations, p, s.n)
		t.Logf("%-20s n=%4d F1=%.3f cover=%.3f changes=%v", s.name, s.n, fs, cs, p)
		f1 += fs
		cover += cs
	}
	k := float64(len(series))
	f1, cover = f1/k, cover/k

	best := map[string]struct {
		method string
		mean   float64
	}{}
	means := map[string]map[string]float64{} // method → metric → mean
	for _, metric := range []string{"default_f1", "default_cover"} {
		sums, counts := map[string]float64{}, map[string]int{}
		for _, s := range series {
			for m, v := range pub[s.name][metric] {
				sums[m] += v
				counts[m]++
			}
		}
		for m, sum := range sums {
			if counts[m] != len(series) {
				continue // failed on some series: not comparable
			}
			mean := sum / k
			if means[m] == nil {
				means[m] = map[string]float64{}
			}
			means[m][metric] = mean
			if mean > best[metric].mean {
				best[metric] = struct {
					method string
					mean   float64
				}{m, mean}
			}
		}
	}
	// Every published method beside ours, best F1 first, for BENCHMARKS.md.
	methods := make([]string, 0, len(means))
	for m := range means {
		methods = append(methods, m)
	}
	sort.Slice(methods, func(i, j int) bool {
		a, b := means[methods[i]]["default_f1"], means[methods[j]]["default_f1"]
		return a > b || a == b && methods[i] < methods[j]
	})
	for _, m := range methods {
		f, okF := means[m]["default_f1"]
		c, okC := means[m]["default_cover"]
		t.Logf("published default: %s F1 %s, cover %s", m, meanOrNA(f, okF), meanOrNA(c, okC))
	}
	bf, bc := best["default_f1"], best["default_cover"]
	t.Logf("MeanShift over %d univariate series: F1 %.4f, cover %.4f", len(series), f1, cover)
	t.Logf("best published default: F1 %.4f (%s), cover %.4f (%s)", bf.mean, bf.method, bc.mean, bc.method)
	if f1 < bf.mean {
		t.Errorf("mean F1 %.4f is below the best published default %.4f (%s)", f1, bf.mean, bf.method)
	}
	if cover < bc.mean {
		t.Errorf("mean cover %.4f is below the best published default %.4f (%s)", cover, bc.mean, bc.method)
	}
}

func meanOrNA(v float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}
