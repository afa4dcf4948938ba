package correlate

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// The daemon's largest setting: 10,000 signatures (100 services of 100)
// over a 7-day lookback of 1-minute buckets, 100.8 M cells. Built once per
// process, since building it takes longer than evaluating it.
var (
	weekOnce    sync.Once
	weekTraffic *Traffic
)

// BenchmarkLargestSetting7d is issue 17's "memory and CPU at the
// daemon's largest setting": one evaluation of a week of 10,000 series.
// Every signature errs about once a minute, the dense worst case (a quiet
// class is stored sparse and costs less), and one in each service steps up
// tenfold 90 minutes before the end, so explanation is part of the cost. It reports the CPU per
// evaluation (user+system, so the collector's work counts) and the
// process's peak RSS, which holds the week of counts as a daemon would.
// Run it alone, so the peak is its own:
//
//	go test -run '^$' -bench '^BenchmarkLargestSetting7d$' -benchtime 3x ./correlate/
func BenchmarkLargestSetting7d(b *testing.B) {
	weekOnce.Do(func() { weekTraffic = syntheticTrafficStep(100, 100, 7*24*60, 7*24*60-90, 1) })
	benchScale(b, weekTraffic)
}

// BenchmarkLargestSetting7dQuiet is the week where 90% of the signatures
// err about once an hour, as most classes do: they are stored sparse.
func BenchmarkLargestSetting7dQuiet(b *testing.B) {
	benchScale(b, syntheticTrafficMix(100, 100, 7*24*60, 7*24*60-90, 0.9, 1))
}

// BenchmarkLargestSetting12h is the same family over 12 hours, the
// default detection_span: a week costs this plus one pass over the older
// buckets to summarise them.
func BenchmarkLargestSetting12h(b *testing.B) {
	benchScale(b, syntheticTrafficStep(100, 100, 12*60, 12*60-90, 1))
}

// BenchmarkLargestSetting6h is the same family over the default 6-hour
// lookback: what a week's evaluation should cost about as much as.
func BenchmarkLargestSetting6h(b *testing.B) {
	benchScale(b, syntheticTrafficStep(100, 100, 6*60, 6*60-90, 1))
}

func benchScale(b *testing.B, tr *Traffic) {
	cfg := rules.Default().Correlate
	var cells int
	for _, s := range tr.Services {
		for _, m := range s.Messages {
			cells += m.Counts.Bytes()
		}
	}
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	var res *Result
	for b.Loop() {
		var err error
		res, err = Run(context.Background(), staticSource{tr: tr}, Input{Window: tr.Window}, cfg)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(cells)/(1<<20), "counts-MB")
	b.ReportMetric(float64(res.Stats.Tested), "series")
	b.ReportMetric(float64(len(res.Findings)), "findings")
}

// cpuTime is the process's user and system CPU so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func peakRSS(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("peak RSS needs /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
