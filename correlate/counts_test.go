package correlate

import (
	"math"
	"reflect"
	"slices"
	"testing"
)

func TestCountsStoresEveryWidth(t *testing.T) {
	sparse := make([]float64, 10080)
	sparse[3], sparse[5000], sparse[10079] = 2, 300, 1
	cases := []struct {
		name string
		in   []float64
		want []float64
		// most is the most bytes the cells may take.
		most int
	}{
		{"empty", nil, nil, 0},
		{"all zero", []float64{0, 0, 0}, []float64{0, 0, 0}, 0},
		{"quiet most minutes", sparse, sparse, 8 * 3},
		{"small counts", []float64{1, 2, 0, 3, 255}, []float64{1, 2, 0, 3, 255}, 5},
		{"hundreds", []float64{1, 256, 2, 3}, []float64{1, 256, 2, 3}, 8},
		{"hundreds of thousands", []float64{70000, 1}, []float64{70000, 1}, 8},
		{"rounded, never negative", []float64{2.6, -4, math.NaN(), 1e12}, []float64{3, 0, 0, math.MaxUint32}, 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := NewCounts(c.in)
			if k.Len() != len(c.want) {
				t.Fatalf("Len %d, want %d", k.Len(), len(c.want))
			}
			if got := k.Dense(); !slices.Equal(got, c.want) && len(c.want) > 0 {
				t.Errorf("Dense %v, want %v", got, c.want)
			}
			var total float64
			for i, v := range c.want {
				if k.At(i) != v {
					t.Errorf("At(%d) = %g, want %g", i, k.At(i), v)
				}
				total += v
			}
			if k.At(-1) != 0 || k.At(len(c.want)) != 0 {
				t.Error("At outside the series is not zero")
			}
			if s := k.Sum(-5, len(c.want)+5); s != total {
				t.Errorf("Sum %g, want %g", s, total)
			}
			if b := k.Bytes(); b > c.most {
				t.Errorf("%d bytes, want at most %d", b, c.most)
			}
		})
	}
}

func TestCountsSpansAndBlocks(t *testing.T) {
	dense := []float64{1, 0, 2, 0, 0, 3, 4, 0, 0, 5, 0, 6}
	for _, x := range [][]float64{dense, append(make([]float64, 200), dense...)} {
		k := NewCounts(x)
		n := len(x)
		// A span that starts before the series and ends inside it.
		dst := make([]float64, 8)
		k.AddTo(dst, n-10)
		want := make([]float64, 8)
		for i := range want {
			if j := n - 10 + i; j >= 0 && j < n {
				want[i] = x[j]
			}
		}
		if !slices.Equal(dst, want) {
			t.Errorf("n=%d AddTo %v, want %v", n, dst, want)
		}
		if got, want := k.Sum(n-7, n-2), x[n-7]+x[n-6]+x[n-5]+x[n-4]+x[n-3]; got != want {
			t.Errorf("n=%d Sum %g, want %g", n, got, want)
		}
		blocks := make([]float64, n/5)
		k.AddBlocks(blocks, 5)
		for b := range blocks {
			var s float64
			for _, v := range x[b*5 : b*5+5] {
				s += v
			}
			if blocks[b] != s {
				t.Errorf("n=%d block %d sums %g, want %g", n, b, blocks[b], s)
			}
		}
	}
}

// TestCountsFromBytesAndEntries: the constructors for sources that hold
// their counts already (bytes, or the buckets that are not zero) store
// what NewCounts stores for the same values, representation included.
func TestCountsFromBytesAndEntries(t *testing.T) {
	quiet := make([]float64, 10080)
	quiet[3], quiet[5000], quiet[10079] = 2, 200, 1
	busy := make([]float64, 600)
	for i := range busy {
		busy[i] = float64(i % 7)
	}
	wide := []float64{1, 256, 0, 3}
	wider := []float64{70000, 0, 1, 2}
	for _, in := range [][]float64{nil, {0, 0, 0}, quiet, busy, {1, 2, 0, 3, 255}, wide, wider} {
		want := NewCounts(in)
		var idx, val []uint32
		fits := true
		b := make([]uint8, len(in))
		for i, v := range in {
			if v != 0 {
				idx, val = append(idx, uint32(i)), append(val, uint32(v))
			}
			fits = fits && v <= 255
			b[i] = uint8(v)
		}
		if got := NewCountsSparse(len(in), idx, val); !reflect.DeepEqual(got, want) {
			t.Errorf("NewCountsSparse of %d buckets (%d not zero) = %+v, want %+v", len(in), len(idx), got.Bytes(), want.Bytes())
		} else if len(idx) > 0 {
			// It keeps neither slice: the caller reuses them.
			idx[0], val[0] = 1<<30, 1<<30
			if !reflect.DeepEqual(got, NewCounts(in)) {
				t.Errorf("NewCountsSparse kept the caller's slices")
			}
		}
		if fits {
			if got := NewCountsBytes(b); !slices.Equal(got.Dense(), want.Dense()) || got.Bytes() != want.Bytes() || got.Len() != want.Len() {
				t.Errorf("NewCountsBytes of %d buckets: %d bytes %v, want %d bytes", len(in), got.Bytes(), got.Dense()[:min(5, got.Len())], want.Bytes())
			}
		}
	}
}

// TestNonZeroBytes checks the eight-at-a-time count against a byte at a
// time, on every byte value in every lane and on lengths that leave a tail.
func TestNonZeroBytes(t *testing.T) {
	naive := func(x []uint8) int {
		n := 0
		for _, v := range x {
			if v != 0 {
				n++
			}
		}
		return n
	}
	for v := range 256 {
		for lane := range 8 {
			for _, n := range []int{8, 9, 15, 16, 17} {
				x := make([]uint8, n)
				x[lane] = uint8(v)
				x[n-1] |= uint8(v) // the tail, or the same word
				if got, want := nonZeroBytes(x), naive(x); got != want {
					t.Fatalf("byte %#x in lane %d of %d: %d not zero, want %d", v, lane, n, got, want)
				}
			}
		}
	}
	r := uint64(1)
	for n := range 100 {
		x := make([]uint8, n)
		for i := range x {
			r = r*6364136223846793005 + 1442695040888963407
			if r>>62 != 0 { // a quarter of them zero
				x[i] = uint8(r >> 33)
			}
		}
		if got, want := nonZeroBytes(x), naive(x); got != want {
			t.Fatalf("%d random bytes: %d not zero, want %d", n, got, want)
		}
	}
}
