package cache

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// model checks c against want, the counts it should hold, in every way
// the cache reads cells.
func model(t *testing.T, c *cells, want map[int64]uint32, lo, hi int64) {
	t.Helper()
	nz := 0
	for g := lo; g < hi; g++ {
		if got := c.get(g); got != want[g] {
			t.Fatalf("bucket %d: %d, want %d (width %d)", g, got, want[g], c.width)
		}
		if want[g] != 0 {
			nz++
		}
	}
	if c.nz != nz {
		t.Fatalf("%d buckets not zero, want %d", c.nz, nz)
	}
	prev := lo - 1
	seen := 0
	c.each(lo, hi, func(g int64, v uint32) bool {
		if g <= prev || v == 0 || want[g] != v {
			t.Fatalf("each gave bucket %d = %d after %d; want ascending non-zero %d", g, v, prev, want[g])
		}
		prev = g
		seen++
		return true
	})
	if seen != nz {
		t.Fatalf("each gave %d buckets, want %d", seen, nz)
	}
}

// TestCellsWidenOnLargeCount: a dense series of small counts is one byte a
// bucket, and a count that does not fit widens it without changing the
// others.
func TestCellsWidenOnLargeCount(t *testing.T) {
	var c cells
	want := map[int64]uint32{}
	for g := int64(100); g < 200; g++ {
		c.set(g, uint32(g%7+1))
		want[g] = uint32(g%7 + 1)
	}
	if c.width != 1 || len(c.dense) != 100 {
		t.Fatalf("100 small counts in a row: width %d, %d bytes; want dense, 1 byte a bucket", c.width, len(c.dense))
	}
	c.set(150, 300)
	want[150] = 300
	if c.width != 2 {
		t.Fatalf("a count of 300: width %d, want 2", c.width)
	}
	c.set(151, 70000)
	want[151] = 70000
	if c.width != 4 {
		t.Fatalf("a count of 70,000: width %d, want 4", c.width)
	}
	model(t, &c, want, 90, 210)
}

// TestCellsSparseDense: a series with few errors over a long span is
// sparse, turns dense when it fills in, and sparse again when most of it
// is trimmed or cleared; its counts never change on the way.
func TestCellsSparseDense(t *testing.T) {
	var c cells
	want := map[int64]uint32{}
	for g := int64(0); g < 6000; g += 60 {
		c.set(g, 1)
		want[g] = 1
	}
	if c.width != 0 {
		t.Fatalf("an error an hour: width %d, want sparse", c.width)
	}
	model(t, &c, want, -10, 6010)
	for g := int64(3000); g < 6000; g++ {
		c.set(g, 2)
		want[g] = 2
	}
	if c.width == 0 {
		t.Fatalf("an error every minute over half the span: still sparse (%d bytes)", c.bytes())
	}
	model(t, &c, want, -10, 6010)
	c.clear(3001, 6000)
	for g := int64(3001); g < 6000; g++ {
		delete(want, g)
	}
	if c.width != 0 {
		t.Fatalf("the minutes cleared again: width %d, want sparse", c.width)
	}
	model(t, &c, want, -10, 6010)
	c.trim(2000)
	for g := range want {
		if g < 2000 {
			delete(want, g)
		}
	}
	model(t, &c, want, -10, 6010)
	c.trim(7000)
	if c.nz != 0 || c.bytes() != 0 {
		t.Fatalf("trimmed past its end: %d buckets, %d bytes left", c.nz, c.bytes())
	}
}

// TestCellsRandom: random sets, clears and trims, in both
// representations, against a map.
func TestCellsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var c cells
		want := map[int64]uint32{}
		lo, span := int64(r.IntN(1000))-500, int64(1+r.IntN(400))
		density := 1 + r.IntN(30)
		for range 600 {
			g := lo + r.Int64N(span)
			switch op := r.IntN(20); {
			case op == 0:
				from := lo + r.Int64N(span)
				c.trim(from)
				for k := range want {
					if k < from {
						delete(want, k)
					}
				}
				lo = from
			case op == 1:
				n := r.Int64N(20)
				c.clear(g, g+n)
				for k := range want {
					if k >= g && k < g+n {
						delete(want, k)
					}
				}
			case r.IntN(density) == 0:
				v := uint32(r.IntN(4))
				if r.IntN(50) == 0 {
					v = uint32(r.IntN(100000))
				}
				setBoth(&c, want, g, v)
			}
		}
		for k := range want {
			if k < lo {
				delete(want, k)
			}
		}
		t.Run("", func(t *testing.T) {
			t.Logf("round %d", round)
			model(t, &c, want, lo-5, lo+span+5)
		})
	}
}

func TestRanges(t *testing.T) {
	var r ranges
	r.add(10, 20)
	r.add(30, 40)
	r.add(20, 25) // adjacent: merged
	r.add(50, 60)
	r.remove(35, 55)
	want := ranges{{10, 25}, {30, 35}, {55, 60}}
	if len(r) != len(want) {
		t.Fatalf("got %v, want %v", r, want)
	}
	for k := range want {
		if r[k] != want[k] {
			t.Fatalf("got %v, want %v", r, want)
		}
	}
	for g, in := range map[int64]bool{9: false, 10: true, 24: true, 25: false, 34: true, 35: false, 55: true, 60: false} {
		if r.has(g) != in {
			t.Errorf("has(%d) = %v, want %v", g, !in, in)
		}
	}
	if !r.overlaps(0, 11) || r.overlaps(25, 30) {
		t.Errorf("overlaps wrong on %v", r)
	}
	r.remove(0, 100)
	if len(r) != 0 {
		t.Errorf("all removed: %v left", r)
	}
}

// TestCellsViewsNeverChange: a window handed out as the cells themselves
// (view) keeps the counts it was given whatever is done to the series
// after (counts set, re-set to the same value, cleared, appended, trimmed,
// widened, made sparse), and the series keeps reading as the model.
func TestCellsViewsNeverChange(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	views, shared := 0, 0
	for round := range 300 {
		var c cells
		want := map[int64]uint32{}
		lo, hi := int64(0), int64(0)
		type handed struct {
			v    []byte
			want []byte
		}
		var out []handed
		for range 400 {
			switch op := r.IntN(24); {
			case op < 12:
				// The next bucket, as a series erring most minutes.
				v := uint32(r.IntN(4))
				if r.IntN(200) == 0 {
					v = 300 // widens
				}
				c.set(hi, v)
				if v != 0 {
					want[hi] = v
				}
				hi++
			case op < 16 && hi > lo:
				// A bucket read again: mostly the same count.
				g := lo + r.Int64N(hi-lo)
				v := want[g]
				if r.IntN(3) == 0 {
					v = uint32(r.IntN(4))
				}
				setBoth(&c, want, g, v)
			case op == 16 && hi > lo:
				g := lo + r.Int64N(hi-lo)
				n := r.Int64N(5)
				c.clear(g, g+n)
				for k := range want {
					if k >= g && k < g+n {
						delete(want, k)
					}
				}
			case op == 17:
				lo += r.Int64N(3)
				c.trim(lo)
				for k := range want {
					if k < lo {
						delete(want, k)
					}
				}
			default:
				from, n := lo+r.Int64N(max(hi-lo, 1)), 1+r.IntN(int(hi-lo)+4)
				v, ok := c.view(from, n)
				if !ok {
					continue
				}
				views++
				w := make([]byte, n)
				for i := range w {
					w[i] = byte(want[from+int64(i)])
				}
				if string(v) != string(w) {
					t.Fatalf("round %d: view of [%d, %d) is %v, want %v", round, from, from+int64(n), v, w)
				}
				out = append(out, handed{v, w})
			}
		}
		for _, h := range out {
			if string(h.v) != string(h.want) {
				t.Fatalf("round %d: a view handed out changed to %v, was %v", round, h.v, h.want)
			}
		}
		if c.shared > 0 {
			shared++
		}
		model(t, &c, want, lo-5, hi+5)
	}
	if views == 0 || shared == 0 {
		t.Fatalf("%d views, %d series still sharing: the test exercises nothing", views, shared)
	}
}

// TestCellsViewsReadWhileWritten: the windows handed out are read by the
// correlator while the cache goes on storing buckets (a bucket read
// again, one cleared, the end extended over the zeros of a window that
// reached past the last count, the head trimmed), so no store may change
// their bytes, and under go test -race none may write them.
func TestCellsViewsReadWhileWritten(t *testing.T) {
	var c cells
	for g := range int64(200) {
		c.set(g, uint32(1+g%3))
	}
	c.clear(180, 200) // the end tidied away, zeros in the capacity
	var views, want [][]byte
	for _, lo := range []int64{0, 50, 90} {
		v, ok := c.view(lo, 100)
		if !ok {
			t.Fatalf("no view of [%d, %d)", lo, lo+100)
		}
		views, want = append(views, v), append(want, slices.Clone(v))
	}
	done := make(chan int)
	go func() {
		sum := 0
		for range 50 {
			for _, v := range views {
				for _, b := range v {
					sum += int(b)
				}
			}
		}
		done <- sum
	}()
	c.set(195, 2) // past the views: extends over their zeros
	c.set(120, 3) // within them
	c.set(121, 2)
	c.clear(130, 140)
	r := rand.New(rand.NewPCG(9, 10))
	for g := int64(196); g < 400; g++ {
		c.set(g, uint32(r.IntN(3)))
		c.set(r.Int64N(g), uint32(r.IntN(3)))
		if g%50 == 0 {
			c.trim(g - 180)
		}
	}
	<-done
	for k, v := range views {
		if !slices.Equal(v, want[k]) {
			t.Fatalf("view %d changed", k)
		}
	}
}

// setBoth sets bucket g to v in the cells and in the map that mirrors
// them, where a zero is no entry.
func setBoth(c *cells, want map[int64]uint32, g int64, v uint32) {
	c.set(g, v)
	if v == 0 {
		delete(want, g)
	} else {
		want[g] = v
	}
}
