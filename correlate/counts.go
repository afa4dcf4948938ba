package correlate

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
)

// Counts is one message's error count per bucket, stored compactly.
//
// A daemon that keeps a week of one-minute buckets for 10,000 signatures
// holds 100 M cells; as float64 that alone is 800 MB. Error counts are small
// non-negative integers, and most signatures are zero most minutes, so a
// series is kept either sparse (the buckets that are not zero) or dense in
// the narrowest unsigned width that holds its largest count, whichever is
// smaller. The zero value is an empty series.
type Counts struct {
	n int
	// Exactly one representation is in use: sparse (idx, val) when both
	// are set or the series is all zero, else the one dense slice set.
	idx []uint32 // sparse: bucket indexes, ascending
	val []uint32 // sparse: the counts at idx, never zero
	d8  []uint8
	d16 []uint16
	d32 []uint32
}

// maxCount is the largest count a bucket holds; larger ones saturate. At
// 4.29 billion errors a minute in one signature the distinction no longer
// informs anything.
const maxCount = math.MaxUint32

// NewCounts stores x compactly. Counts are whole numbers: each value is
// rounded to the nearest integer, a negative or NaN value (which no source
// produces) counts as zero, and values above maxCount saturate.
func NewCounts(x []float64) Counts {
	nz := 0
	var hi uint32
	for _, v := range x {
		c := toCount(v)
		if c > 0 {
			nz++
			hi = max(hi, c)
		}
	}
	c := Counts{n: len(x)}
	width := CountWidth(hi)
	if nz == 0 {
		return c
	}
	// A sparse entry costs 8 bytes, a dense cell width bytes.
	if 8*nz < width*len(x) {
		c.idx, c.val = make([]uint32, 0, nz), make([]uint32, 0, nz)
		for i, v := range x {
			if k := toCount(v); k > 0 {
				c.idx = append(c.idx, uint32(i))
				c.val = append(c.val, k)
			}
		}
		return c
	}
	switch width {
	case 1:
		c.d8 = make([]uint8, len(x))
		for i, v := range x {
			c.d8[i] = uint8(toCount(v))
		}
	case 2:
		c.d16 = make([]uint16, len(x))
		for i, v := range x {
			c.d16[i] = uint16(toCount(v))
		}
	default:
		c.d32 = make([]uint32, len(x))
		for i, v := range x {
			c.d32[i] = toCount(v)
		}
	}
	return c
}

// NewCountsBytes stores counts of at most 255 a bucket, as NewCounts
// stores the same values: dense, keeping x itself (the caller must not
// change it after), or sparse when that is smaller. It is for a source
// that already holds its counts as bytes (the incremental cache's dense
// series): a week of 10,000 series is 100 M cells to copy at every
// evaluation, and the float64 round trip through NewCounts costs ten times
// a byte copy.
func NewCountsBytes(x []uint8) Counts {
	c := Counts{n: len(x)}
	nz := nonZeroBytes(x)
	switch {
	case nz == 0:
		return c
	case 8*nz < len(x):
		c.idx, c.val = make([]uint32, 0, nz), make([]uint32, 0, nz)
		for i, v := range x {
			if v != 0 {
				c.idx = append(c.idx, uint32(i))
				c.val = append(c.val, uint32(v))
			}
		}
		return c
	}
	c.d8 = x
	return c
}

// nonZeroBytes counts the bytes of x that are not zero, eight at a time:
// NewCountsBytes counts a week of 10,000 series, 100 M bytes, at every
// evaluation of the daemon's largest setting, and a byte at a time that
// was a tenth of its CPU.
func nonZeroBytes(x []uint8) int {
	const lo7 = 0x7f7f7f7f7f7f7f7f
	nz := 0
	for len(x) >= 8 {
		v := binary.LittleEndian.Uint64(x)
		// A byte's high bit is set in t exactly when the byte is not
		// zero: its low seven bits plus 0x7f carry into bit 7 unless
		// they are all zero, and bit 7 of v itself is or-ed in. No
		// carry crosses a byte, since 0x7f+0x7f < 0x100.
		t := ((v & lo7) + lo7) | v
		nz += bits.OnesCount64(t &^ lo7)
		x = x[8:]
	}
	for _, v := range x {
		if v != 0 {
			nz++
		}
	}
	return nz
}

// NewCountsSparse stores a series of n buckets given by its buckets that
// are not zero: idx ascending, within [0, n), and val their counts, none
// zero. It stores them as NewCounts stores the same values (dense when
// that is smaller), and keeps neither slice, so a caller may reuse them.
// It costs the entries, plus the span only when stored dense: a quiet
// series is assembled without walking its week.
func NewCountsSparse(n int, idx, val []uint32) Counts {
	c := Counts{n: n}
	if len(idx) == 0 || len(idx) != len(val) {
		return c
	}
	var hi uint32
	for _, v := range val {
		hi = max(hi, v)
	}
	width := CountWidth(hi)
	if 8*len(idx) < width*n {
		c.idx, c.val = slices.Clone(idx), slices.Clone(val)
		return c
	}
	switch width {
	case 1:
		c.d8 = make([]uint8, n)
		for k, i := range idx {
			c.d8[i] = uint8(val[k])
		}
	case 2:
		c.d16 = make([]uint16, n)
		for k, i := range idx {
			c.d16[i] = uint16(val[k])
		}
	default:
		c.d32 = make([]uint32, n)
		for k, i := range idx {
			c.d32[i] = val[k]
		}
	}
	return c
}

// CountWidth is the bytes of the narrowest unsigned cell that holds hi:
// the width a dense series whose largest count is hi is stored in. The
// incremental cache stores its series the same way, so that it hands them
// over as bytes (NewCountsBytes).
func CountWidth(hi uint32) int {
	switch {
	case hi <= math.MaxUint8:
		return 1
	case hi <= math.MaxUint16:
		return 2
	}
	return 4
}

func toCount(v float64) uint32 {
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= maxCount:
		return maxCount
	}
	return uint32(math.Round(v))
}

// Len is the number of buckets.
func (c Counts) Len() int { return c.n }

// At is the count in bucket i, zero outside [0, Len).
func (c Counts) At(i int) float64 {
	if i < 0 || i >= c.n {
		return 0
	}
	switch {
	case c.d8 != nil:
		return float64(c.d8[i])
	case c.d16 != nil:
		return float64(c.d16[i])
	case c.d32 != nil:
		return float64(c.d32[i])
	}
	// Binary search over the sparse indexes.
	lo, hi := 0, len(c.idx)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if int(c.idx[m]) < i {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(c.idx) && int(c.idx[lo]) == i {
		return float64(c.val[lo])
	}
	return 0
}

// AddTo adds buckets [from, from+len(dst)) to dst, dst[0] receiving bucket
// from. Buckets outside [0, Len) add nothing. It costs the non-zero buckets
// of a sparse series, not the span.
func (c Counts) AddTo(dst []float64, from int) {
	lo, hi := max(from, 0), min(from+len(dst), c.n)
	if lo >= hi {
		return
	}
	switch {
	case c.d8 != nil:
		for i, v := range c.d8[lo:hi] {
			dst[lo-from+i] += float64(v)
		}
	case c.d16 != nil:
		for i, v := range c.d16[lo:hi] {
			dst[lo-from+i] += float64(v)
		}
	case c.d32 != nil:
		for i, v := range c.d32[lo:hi] {
			dst[lo-from+i] += float64(v)
		}
	default:
		for k, at := range c.idx {
			if i := int(at); i >= lo && i < hi {
				dst[i-from] += float64(c.val[k])
			} else if i >= hi {
				break
			}
		}
	}
}

// Dense is the series as one float64 per bucket, for callers that index it
// freely (charts, tests). It allocates; the correlator itself reads spans
// with AddTo.
func (c Counts) Dense() []float64 {
	out := make([]float64, c.n)
	c.AddTo(out, 0)
	return out
}

// Sum is the total over buckets [from, to), clipped to the series.
func (c Counts) Sum(from, to int) float64 {
	lo, hi := max(from, 0), min(to, c.n)
	var s float64
	if lo >= hi {
		return 0
	}
	switch {
	case c.d8 != nil:
		for _, v := range c.d8[lo:hi] {
			s += float64(v)
		}
	case c.d16 != nil:
		for _, v := range c.d16[lo:hi] {
			s += float64(v)
		}
	case c.d32 != nil:
		for _, v := range c.d32[lo:hi] {
			s += float64(v)
		}
	default:
		for k, at := range c.idx {
			if i := int(at); i >= lo && i < hi {
				s += float64(c.val[k])
			} else if i >= hi {
				break
			}
		}
	}
	return s
}

// Bytes is the memory the series' cells take, for benchmarks and sizing.
func (c Counts) Bytes() int {
	return 4*(len(c.idx)+len(c.val)+len(c.d32)) + 2*len(c.d16) + len(c.d8)
}

// AddBlocks adds each bucket i < len(dst)*block to dst[i/block]: the block
// sums that dispersion is measured on, at the cost of the non-zero buckets
// of a sparse series. It returns the sum of the buckets it added, so one
// pass over a week of history yields both.
func (c Counts) AddBlocks(dst []float64, block int) float64 {
	if block <= 0 {
		return 0
	}
	hi := min(len(dst)*block, c.n)
	var total float64
	switch {
	case c.d8 != nil:
		total = denseBlocks(c.d8[:hi], dst, block)
	case c.d16 != nil:
		total = denseBlocks(c.d16[:hi], dst, block)
	case c.d32 != nil:
		total = denseBlocks(c.d32[:hi], dst, block)
	default:
		for k, at := range c.idx {
			if int(at) >= hi {
				break
			}
			v := float64(c.val[k])
			dst[int(at)/block] += v
			total += v
		}
	}
	return total
}

func denseBlocks[T uint8 | uint16 | uint32](x []T, dst []float64, block int) float64 {
	var total float64
	for b := 0; b*block < len(x); b++ {
		// Integer sums are exact and cheaper than float ones.
		var s uint64
		for _, v := range x[b*block : min((b+1)*block, len(x))] {
			s += uint64(v)
		}
		dst[b] += float64(s)
		total += float64(s)
	}
	return total
}
