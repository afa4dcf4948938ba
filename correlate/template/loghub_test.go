package template

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// loghubDir is where CI and the engineers' machines keep the loghub-2k
// benchmark: ../shared beside the clone (see ../shared/bench/loghub).
var loghubDir = filepath.Join("..", "..", "..", "shared", "bench", "loghub", "data", "loghub_2k")

// loghubDatasets are the 16 systems of loghub-2k, in the order of the
// published tables.
var loghubDatasets = []string{"HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Thunderbird",
	"Windows", "Linux", "Android", "HealthApp", "Apache", "Proxifier", "OpenSSH", "OpenStack", "Mac"}

// The bar of issue 15: a mean above 0.90, near the best published parser
// per system (0.926 on average), with no system below 0.70, so that a
// change cannot buy the mean by giving up one kind of log.
const (
	loghubMinMean    = 0.90
	loghubMinDataset = 0.70
)

// TestLoghubGroupingAccuracy runs culprit's templating, exactly as a source
// and the correlator do (Truncate(Mask(line)), then one Group with the
// default Options per system), over loghub-2k and scores it with the
// Grouping Accuracy of logparser's evaluator, against the original
// loghub_2k ground truth, the one the published figures use.
func TestLoghubGroupingAccuracy(t *testing.T) {
	if _, err := os.Stat(loghubDir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("no loghub-2k data at %s: it comes with ../shared/bench/loghub beside the clone", loghubDir)
	}
	sum, low := 0.0, 1.0
	for _, ds := range loghubDatasets {
		path := filepath.Join(loghubDir, ds, ds+"_2k.log_structured.csv")
		content, events, err := readLoghub(path)
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, len(content))
		for i, c := range content {
			keys[i] = Truncate(Mask(c))
		}
		clusters := Group(keys, Options{})
		// Real logs exercise every step of Group (the word-slot split,
		// the join of lengths) far more than hand-made cases: the result
		// must still not depend on the order lines arrive in.
		shuffled := slices.Clone(keys)
		rng := rand.New(rand.NewPCG(uint64(len(ds)), 15))
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if !reflect.DeepEqual(Group(shuffled, Options{}), clusters) {
			t.Errorf("%s: signatures depend on the order of the lines", ds)
		}
		cluster := make(map[string]int, len(keys))
		for ci, c := range clusters {
			for _, m := range c.Members {
				if _, dup := cluster[m]; dup {
					t.Fatalf("%s: %q in two clusters", ds, m)
				}
				if !Match(c.Template, m) {
					t.Errorf("%s: member %q does not match its template %q", ds, m, c.Template)
				}
				cluster[m] = ci
			}
		}
		pred := make([]string, len(keys))
		for i, k := range keys {
			ci, ok := cluster[k]
			if !ok {
				t.Fatalf("%s: line %d: %q is in no cluster", ds, i+1, k)
			}
			pred[i] = fmt.Sprint(ci)
		}
		ga := groupingAccuracy(events, pred)
		t.Logf("%-12s GA %.4f (%d signatures)", ds, ga, len(clusters))
		sum += ga
		if ga < loghubMinDataset {
			t.Errorf("%s: GA %.4f, want at least %.2f", ds, ga, loghubMinDataset)
		}
		low = min(low, ga)
	}
	mean := sum / float64(len(loghubDatasets))
	t.Logf("mean GA %.4f, lowest %.4f", mean, low)
	if mean <= loghubMinMean {
		t.Errorf("mean GA %.4f, want above %.2f", mean, loghubMinMean)
	}
}

// pandasNA are the strings pandas.read_csv reads as missing: logparser's
// evaluator drops the lines whose ground-truth EventId is one of them.
var pandasNA = map[string]bool{"": true, "#N/A": true, "#N/A N/A": true, "#NA": true, "-1.#IND": true,
	"-1.#QNAN": true, "-NaN": true, "-nan": true, "1.#IND": true, "1.#QNAN": true, "<NA>": true, "N/A": true,
	"NA": true, "NULL": true, "NaN": true, "None": true, "n/a": true, "nan": true, "null": true}

// groupingAccuracy is the "accuracy" of logparser's evaluator (Zhu et al.,
// ICSE-SEIP 2019): a line is parsed correctly when the lines of its
// predicted group are exactly the lines of its true group. Lines whose
// true event is missing are left out, as the evaluator does.
func groupingAccuracy(truth, pred []string) float64 {
	trueSize := map[string]int{}
	byPred := map[string]map[string]int{}
	n := 0
	for i, g := range truth {
		if pandasNA[g] {
			continue
		}
		n++
		trueSize[g]++
		if byPred[pred[i]] == nil {
			byPred[pred[i]] = map[string]int{}
		}
		byPred[pred[i]][g]++
	}
	if n == 0 {
		return 0
	}
	correct := 0
	for _, gs := range byPred {
		if len(gs) != 1 {
			continue
		}
		for g, k := range gs {
			if k == trueSize[g] {
				correct += k
			}
		}
	}
	return float64(correct) / float64(n)
}

func TestGroupingAccuracy(t *testing.T) {
	tests := []struct {
		name        string
		truth, pred []string
		want        float64
	}{
		{"perfect under other names", []string{"a", "a", "b"}, []string{"x", "x", "y"}, 1},
		// b's lines are exactly a predicted group; a is split in two.
		{"split event", []string{"a", "a", "b"}, []string{"x", "z", "y"}, 1.0 / 3},
		// The merged group matches no true group; c alone is right.
		{"merged events", []string{"a", "b", "c"}, []string{"x", "x", "y"}, 1.0 / 3},
		{"missing truth left out", []string{"a", "", "NaN", "b"}, []string{"x", "x", "x", "y"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := groupingAccuracy(tc.truth, tc.pred); got != tc.want {
				t.Errorf("groupingAccuracy(%q, %q) = %v, want %v", tc.truth, tc.pred, got, tc.want)
			}
		})
	}
}

// readLoghub returns the Content and EventId columns of a loghub
// structured CSV, in file order.
func readLoghub(path string) (content, events []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("loghub: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("loghub: %s: header: %w", path, err)
	}
	iContent, iEvent := -1, -1
	for i, h := range header {
		switch strings.TrimPrefix(h, "\ufeff") {
		case "Content":
			iContent = i
		case "EventId":
			iEvent = i
		}
	}
	if iContent < 0 || iEvent < 0 {
		return nil, nil, fmt.Errorf("loghub: %s: no Content or EventId column in %q", path, header)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return content, events, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("loghub: %s: %w", path, err)
		}
		content = append(content, rec[iContent])
		events = append(events, rec[iEvent])
	}
}
