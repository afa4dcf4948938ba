package file

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
	"github.com/culprithq/culprit/rules"
)

// genLine writes one realistic ECS request document of about 380 bytes:
// a mix of nested and dotted producers, ~2% errors, ids in paths. With
// uniqueMsgs every error message carries a request id for the masker to
// remove; without, messages come from a small set, which is what the real
// masker leaves and what memory tests need while the masker is a
// placeholder (Traffic's per-message series are dense, so unmasked unique
// messages cost messages × buckets × 8 bytes).
func genLine(b []byte, r *rand.Rand, t time.Time, uniqueMsgs bool) []byte {
	services := [...]string{"checkout", "search", "cart", "auth", "catalog"}
	svc := services[r.IntN(len(services))]
	host := "web-" + strconv.Itoa(r.IntN(40))
	org := r.IntN(5000)
	path := "/api/v1/" + svc + "/" + strconv.Itoa(r.IntN(100000))
	status, outcome, msg := 200, "success", ""
	if r.IntN(50) == 0 {
		status, outcome = 503, "failure"
		if uniqueMsgs {
			msg = fmt.Sprintf("upstream timeout after %dms calling %s-db (request %08x)", 1000+r.IntN(4000), svc, r.Uint32())
		} else {
			msg = fmt.Sprintf("upstream timeout calling %s-db shard %d", svc, r.IntN(20))
		}
	}
	ts := t.UTC().Format("2006-01-02T15:04:05.000Z")
	if r.IntN(2) == 0 {
		b = fmt.Appendf(b, `{"@timestamp":"%s","service":{"name":"%s","version":"3.14.%d"},"host":{"name":"%s"},"organization":{"id":%d},"url":{"domain":"shop.example.com","path":"%s"},"cloud":{"provider":"aws","region":"eu-west-1"},"http":{"response":{"status_code":%d}},"event":{"outcome":"%s","duration":%d}`,
			ts, svc, r.IntN(3), host, org, path, status, outcome, r.IntN(900000000))
	} else {
		b = fmt.Appendf(b, `{"@timestamp":"%s","service.name":"%s","service.version":"3.14.%d","host.name":"%s","organization.id":"%d","url.domain":"shop.example.com","url.path":"%s","cloud.provider":"aws","cloud.region":"eu-west-1","http.response.status_code":%d,"event.outcome":"%s","event.duration":%d`,
			ts, svc, r.IntN(3), host, org, path, status, outcome, r.IntN(900000000))
	}
	if msg != "" {
		b = fmt.Appendf(b, `,"error":{"message":%q}`, msg)
	} else {
		b = fmt.Appendf(b, `,"message":"GET %s %d"`, path, status)
	}
	return append(b, "}\n"...)
}

// genBlock is n lines one second apart from start.
func genBlock(n int, start time.Time, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	var b []byte
	for i := range n {
		b = genLine(b, r, start.Add(time.Duration(i)*time.Second), true)
	}
	return b
}

// cycleReader serves a block over and over for exactly n lines, so that a
// benchmark op is one line whatever b.N is, without a b.N-sized file.
type cycleReader struct {
	block []byte
	pos   int
	left  int // lines still to serve
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && c.left > 0 {
		rest := c.block[c.pos:]
		end := bytes.IndexByte(rest, '\n') + 1 // the block ends with a newline
		k := copy(p[n:], rest[:end])
		n += k
		c.pos += k
		if k < end {
			break
		}
		c.left--
		if c.pos == len(c.block) {
			c.pos = 0
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func BenchmarkIngest(b *testing.B) {
	block := genBlock(20000, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 1)
	nlines := strings.Count(string(block), "\n")
	b.SetBytes(int64(len(block) / nlines))
	spec, err := newFieldSpec(rules.Default().Fields)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	a := newAgg(0, int64(time.Minute), math.MinInt64, math.MaxInt64, 20000)
	var st lineStats
	cr := &cycleReader{block: block, left: b.N}
	if err := scanReader(context.Background(), bufio.NewReaderSize(cr, 1<<20), "bench", spec, &st, nil, a.add); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if st.used != int64(b.N) {
		b.Fatalf("used %d of %d lines", st.used, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestBigFileRSS is the memory bound: a ~1 GB file through Range, Traffic
// and Scope. It takes minutes, so it runs only on request.
func TestBigFileRSS(t *testing.T) {
	if os.Getenv("CULPRIT_BIG") != "1" {
		t.Skip("set CULPRIT_BIG=1 to generate a ~1 GB log file and measure peak RSS (CULPRIT_BIG_UNIQUE=1: every error message unique)")
	}
	dir := t.TempDir()
	if d := os.Getenv("CULPRIT_BIG_DIR"); d != "" {
		dir = d
	}
	p := filepath.Join(dir, "big.ndjson")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(7, 7))
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var line []byte
	var size int64
	n := 0
	for size < 1<<30 {
		// Three days at ~12 requests a second.
		line = genLine(line[:0], r, start.Add(time.Duration(n)*85*time.Millisecond), os.Getenv("CULPRIT_BIG_UNIQUE") == "1")
		w.Write(line)
		size += int64(len(line))
		n++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := vmHWM(t)
	begin := time.Now()

	l := open(t, p)
	ctx := context.Background()
	from, to, err := l.Range(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pass1 := time.Since(begin)
	t.Logf("after Range: VmHWM %d MB, %s", vmHWM(t)>>20, heap())
	win, err := correlate.NewWindow(from, to.Add(time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := l.Traffic(ctx, win)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after Traffic: VmHWM %d MB, %s", vmHWM(t)>>20, heap())
	var msgs []string
	for _, s := range tr.Services {
		if s.Service == "checkout" {
			for _, m := range s.Messages {
				msgs = append(msgs, m.Message)
			}
		}
	}
	sbegin := time.Now()
	sc, err := l.Scope(ctx, correlate.ScopeQuery{Service: "checkout", Messages: msgs, From: win.From, To: win.To, Window: win})
	if err != nil {
		t.Fatal(err)
	}
	scopeTime := time.Since(sbegin)
	peak := vmHWM(t)
	t.Logf("file %.2f GB, %d lines; pass 1 %s (%.0f lines/s), scope %s; services %d, checkout messages %d (masker: %q), scope paths %d",
		float64(size)/1e9, n, pass1.Round(time.Millisecond), float64(n)/pass1.Seconds(), scopeTime.Round(time.Millisecond),
		len(tr.Services), len(msgs), template.Mask("x 123"), len(sc.Requests[correlate.FieldPath]))
	t.Logf("peak RSS (VmHWM) %d MB (before reading: %d MB)", peak>>20, before>>20)
	// The bound holds with unique messages too, because the masker
	// collapses ids before anything is stored per message.
	if peak > 200<<20 {
		t.Errorf("peak RSS %d MB exceeds 200 MB", peak>>20)
	}
}

func heap() string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("heap in use %d MB, total allocated %d MB", m.HeapInuse>>20, m.TotalAlloc>>20)
}

// vmHWM is the process's peak resident set in bytes.
func vmHWM(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}
