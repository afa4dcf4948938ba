package cache

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/culprithq/culprit/correlate"
)

// cells is one series' error count per bucket, by global bucket index
// (Source.index), stored the way correlate.Counts stores a window's:
// sparse (the buckets that are not zero, 8 bytes each) or dense in the
// narrowest unsigned width that holds the largest count, whichever is
// smaller. Unlike correlate.Counts it changes in place: buckets are added
// at the end as they are read, read again in the middle (re-checks,
// top-ups) and trimmed at the head (eviction). So the representation is
// switched only when the other one is at most 3/4 of the size of the one
// in use: a series on the edge between the two does not convert back and
// forth at every bucket.
//
// Why not one float64 per bucket: a week of 1-minute buckets for 10,000
// series is 100 M cells; counts are small whole numbers, so a dense series
// takes 1 byte a bucket, and a quiet one (an error an hour) 8 bytes an
// error, 0.13 bytes a bucket.
//
// The zero value is an empty series.
type cells struct {
	// base is the bucket index of dense cell 0, and the origin of the
	// sparse offsets.
	base int64
	// width is 0 for sparse, else the bytes of a dense cell (1, 2 or 4).
	width uint8
	// hi is the largest count stored since the series was empty: the
	// width a dense copy needs.
	hi uint32
	// nz is the number of buckets that are not zero.
	nz int
	// dense holds little-endian cells; its first and last cells are never
	// zero (tidy).
	dense []byte
	// idx are the sparse buckets, as offsets from base, ascending; val
	// their counts, never zero.
	idx []uint32
	val []uint32
	// shared is how many leading bytes of dense's array, from dense[0],
	// windows handed out (view) may hold: they are correlate.Counts of
	// Traffic answers, which must not change after, so a write there
	// copies the array first (putCell, unshare). Those of them at or past
	// len(dense) are zero. It is what lets a week of dense series reach
	// the correlator without copying 100 M cells at every evaluation.
	shared int
}

// widthFor is correlate's width for counts up to v, in the cells' type.
func widthFor(v uint32) uint8 { return uint8(correlate.CountWidth(v)) }

// cellsLen is the number of dense cells.
func (c *cells) cellsLen() int {
	if c.width == 0 {
		return 0
	}
	return len(c.dense) / int(c.width)
}

func (c *cells) cell(k int) uint32 {
	switch c.width {
	case 1:
		return uint32(c.dense[k])
	case 2:
		return uint32(binary.LittleEndian.Uint16(c.dense[2*k:]))
	}
	return binary.LittleEndian.Uint32(c.dense[4*k:])
}

func (c *cells) putCell(k int, v uint32) {
	if k*int(c.width) < c.shared {
		c.unshare()
	}
	switch c.width {
	case 1:
		c.dense[k] = uint8(v)
	case 2:
		binary.LittleEndian.PutUint16(c.dense[2*k:], uint16(v))
	default:
		binary.LittleEndian.PutUint32(c.dense[4*k:], v)
	}
}

// bounds are the first and last buckets that are not zero; ok is false
// for an empty series.
func (c *cells) bounds() (first, last int64, ok bool) {
	if c.nz == 0 {
		return 0, 0, false
	}
	if c.width != 0 {
		return c.base, c.base + int64(c.cellsLen()) - 1, true
	}
	return c.base + int64(c.idx[0]), c.base + int64(c.idx[len(c.idx)-1]), true
}

// get is the count in bucket g.
func (c *cells) get(g int64) uint32 {
	if c.nz == 0 || g < c.base {
		return 0
	}
	if c.width != 0 {
		if k := g - c.base; k < int64(c.cellsLen()) {
			return c.cell(int(k))
		}
		return 0
	}
	off := g - c.base
	if off > math.MaxUint32 {
		return 0
	}
	if p, ok := slices.BinarySearch(c.idx, uint32(off)); ok {
		return c.val[p]
	}
	return 0
}

// set stores v as bucket g's count; zero clears it.
func (c *cells) set(g int64, v uint32) {
	if v == 0 {
		c.clear(g, g+1)
		return
	}
	if c.nz > 0 && c.get(g) == v {
		// Unchanged (a bucket read again): no write, so a window
		// handed out keeps sharing the cells (view).
		return
	}
	if c.nz == 0 {
		*c = cells{base: g, hi: v, nz: 1, idx: []uint32{0}, val: []uint32{v}}
		return
	}
	c.hi = max(c.hi, v)
	if c.width != 0 {
		if first, last, _ := c.bounds(); g < first || g > last {
			// A bucket far from the others (a window reaching far back)
			// would make the dense copy span the gap: go sparse first
			// when that copy would be the larger, as reshape would.
			if span := max(last, g) - min(first, g) + 1; 4*8*int64(c.nz+1) <= 3*int64(widthFor(max(c.hi, v)))*span {
				c.toSparse()
				c.setSparse(g, v)
				c.reshape()
				return
			}
		}
		c.setDense(g, v)
	} else {
		c.setSparse(g, v)
	}
	c.reshape()
}

func (c *cells) setDense(g int64, v uint32) {
	if w := widthFor(v); w > c.width {
		c.toDense(w)
	}
	n := c.cellsLen()
	switch {
	case g < c.base:
		// Before the first cell: a bucket older than any read so far
		// (a window reaching further back). Rare, so a copy.
		k := int(c.base - g)
		d := make([]byte, (k+n)*int(c.width))
		copy(d[k*int(c.width):], c.dense)
		c.dense, c.base, c.shared = d, g, 0
		c.putCell(0, v)
		c.nz++
		return
	case g >= c.base+int64(n):
		m := int(g-c.base) + 1
		switch w := int(c.width); {
		case (m-1)*w < c.shared:
			// The new cell is in a window handed out, as a zero.
			c.unshare()
		case m*w > cap(c.dense):
			c.shared = 0 // grow moves the cells to a new array
		case len(c.dense) < c.shared:
			// The shared cells past the end are zero already: extend
			// over them without the write of grow's clear.
			c.dense = c.dense[:c.shared]
		}
		c.dense = grow(c.dense, m*int(c.width))
		c.putCell(m-1, v)
		c.nz++
		return
	}
	k := int(g - c.base)
	if c.cell(k) == 0 {
		c.nz++
	}
	c.putCell(k, v)
}

func (c *cells) setSparse(g int64, v uint32) {
	if g < c.base {
		c.rebase(g)
	}
	off := g - c.base
	if off > math.MaxUint32 {
		// Only a series spanning 4 billion buckets gets here, which no
		// window holds; keep the later part.
		c.trim(g - math.MaxUint32/2)
		if c.nz == 0 {
			*c = cells{base: g, hi: v, nz: 1, idx: []uint32{0}, val: []uint32{v}}
			return
		}
		off = g - c.base
	}
	o := uint32(off)
	if n := len(c.idx); o > c.idx[n-1] {
		c.idx, c.val = grow(c.idx, n+1), grow(c.val, n+1)
		c.idx[n], c.val[n] = o, v
		c.nz++
		return
	}
	p, ok := slices.BinarySearch(c.idx, o)
	if ok {
		c.val[p] = v
		return
	}
	c.idx, c.val = slices.Insert(c.idx, p, o), slices.Insert(c.val, p, v)
	c.nz++
}

// rebase moves the sparse offsets' origin back to g.
func (c *cells) rebase(g int64) {
	d := c.base - g
	if c.nz > 0 && int64(c.idx[len(c.idx)-1])+d > math.MaxUint32 {
		return // setSparse trims
	}
	for k := range c.idx {
		c.idx[k] += uint32(d)
	}
	c.base = g
}

// clear zeroes buckets [lo, hi).
func (c *cells) clear(lo, hi int64) {
	first, last, ok := c.bounds()
	if !ok || hi <= first || lo > last {
		return
	}
	lo, hi = max(lo, first), min(hi, last+1)
	if c.width != 0 {
		for k := int(lo - c.base); k < int(hi-c.base); k++ {
			if c.cell(k) != 0 {
				c.putCell(k, 0)
				c.nz--
			}
		}
		c.tidy()
	} else {
		p, _ := slices.BinarySearch(c.idx, uint32(lo-c.base))
		q, _ := slices.BinarySearch(c.idx, uint32(hi-c.base))
		c.idx, c.val = slices.Delete(c.idx, p, q), slices.Delete(c.val, p, q)
		c.nz -= q - p
	}
	c.reshape()
}

// trim drops the buckets before from.
func (c *cells) trim(from int64) {
	first, last, ok := c.bounds()
	if !ok || from <= first {
		return
	}
	if from > last {
		*c = cells{}
		return
	}
	if c.width != 0 {
		k := min(int(from-c.base), c.cellsLen())
		for j := range k {
			if c.cell(j) != 0 {
				c.nz--
			}
		}
		c.dense = c.dense[k*int(c.width):]
		c.base += int64(k)
		c.shared = max(c.shared-k*int(c.width), 0)
		c.tidy()
	} else {
		p, _ := slices.BinarySearch(c.idx, uint32(from-c.base))
		c.idx, c.val = c.idx[p:], c.val[p:]
		c.nz -= p
		if c.nz > 0 && c.idx[0] > math.MaxUint32/2 {
			c.rebase(c.base + int64(c.idx[0]))
		}
	}
	c.reshape()
}

// tidy drops a dense series' zero cells at either end, so that its
// bounds are its first and last cells.
func (c *cells) tidy() {
	if c.nz == 0 {
		*c = cells{}
		return
	}
	n := c.cellsLen()
	a := 0
	for a < n && c.cell(a) == 0 {
		a++
	}
	b := n
	for b > a && c.cell(b-1) == 0 {
		b--
	}
	c.dense = c.dense[a*int(c.width) : b*int(c.width)]
	c.base += int64(a)
	c.shared = max(c.shared-a*int(c.width), 0)
}

// unshare moves the dense cells to an array of their own, leaving the
// old one to the windows handed out (view).
func (c *cells) unshare() {
	d := make([]byte, len(c.dense), cap(c.dense))
	copy(d, c.dense)
	c.dense, c.shared = d, 0
}

// view is buckets [lo, lo+n) of a dense series of one byte a bucket as
// the cells themselves, without a copy, when they lie within the array's
// capacity from base: its buckets after the last cell are zeroed in the
// capacity past len(dense) (no cell is stored there), and the bytes are
// marked shared so that any later write there copies the array first.
// ok is false when the window starts before base or reaches past the
// capacity; the caller copies then.
func (c *cells) view(lo int64, n int) (v []byte, ok bool) {
	if c.width != 1 || lo < c.base || n <= 0 {
		return nil, false
	}
	a := lo - c.base
	if a > int64(cap(c.dense)) || int64(n) > int64(cap(c.dense))-a {
		return nil, false
	}
	b := int(a) + n
	full := c.dense[:cap(c.dense)]
	if z := max(len(c.dense), c.shared); z < b {
		clear(full[z:b])
	}
	c.shared = max(c.shared, b)
	return full[a:b:b], true
}

// reshape switches representation when the other is at most 3/4 the size.
func (c *cells) reshape() {
	if c.nz == 0 {
		*c = cells{}
		return
	}
	first, last, _ := c.bounds()
	sparse := 8 * c.nz
	switch {
	case c.width == 0:
		if dense := int(widthFor(c.hi)) * int(last-first+1); 4*dense <= 3*sparse {
			c.toDense(widthFor(c.hi))
		}
	case 4*sparse <= 3*len(c.dense):
		c.toSparse()
	}
}

// toDense rewrites the series dense, w bytes a cell.
func (c *cells) toDense(w uint8) {
	first, last, _ := c.bounds()
	d := cells{base: first, width: w, hi: c.hi, nz: c.nz, dense: make([]byte, int(last-first+1)*int(w))}
	c.each(first, last+1, func(g int64, v uint32) bool {
		d.putCell(int(g-first), v)
		return true
	})
	*c = d
}

func (c *cells) toSparse() {
	first, last, _ := c.bounds()
	d := cells{base: first, hi: c.hi, nz: c.nz, idx: make([]uint32, 0, c.nz), val: make([]uint32, 0, c.nz)}
	c.each(first, last+1, func(g int64, v uint32) bool {
		d.idx, d.val = append(d.idx, uint32(g-first)), append(d.val, v)
		return true
	})
	*c = d
}

// each calls fn on the buckets of [lo, hi) that are not zero, in order,
// until it returns false.
func (c *cells) each(lo, hi int64, fn func(g int64, v uint32) bool) {
	first, last, ok := c.bounds()
	if !ok {
		return
	}
	lo, hi = max(lo, first), min(hi, last+1)
	if lo >= hi {
		return
	}
	if c.width != 0 {
		for k := int(lo - c.base); k < int(hi-c.base); k++ {
			if v := c.cell(k); v != 0 && !fn(c.base+int64(k), v) {
				return
			}
		}
		return
	}
	p, _ := slices.BinarySearch(c.idx, uint32(lo-c.base))
	for ; p < len(c.idx); p++ {
		g := c.base + int64(c.idx[p])
		if g >= hi || !fn(g, c.val[p]) {
			return
		}
	}
}

// fill sets dst[g-lo] to the count of each bucket g in [lo, lo+len(dst))
// that is not zero, leaving the others as they are. It is each without a
// call per cell: assembling a week of 10,000 series walks 100 M cells at
// every evaluation, and a callback apiece made that most of the cache's
// cost.
func (c *cells) fill(dst []float64, lo int64) {
	first, last, ok := c.bounds()
	if !ok {
		return
	}
	a, b := max(lo, first), min(lo+int64(len(dst)), last+1)
	if a >= b {
		return
	}
	out := dst[a-lo : b-lo]
	k0 := int(a - c.base)
	switch c.width {
	case 0:
		p, _ := slices.BinarySearch(c.idx, uint32(a-c.base))
		for ; p < len(c.idx); p++ {
			g := c.base + int64(c.idx[p])
			if g >= b {
				break
			}
			out[g-a] = float64(c.val[p])
		}
	case 1:
		for i, v := range c.dense[k0 : k0+len(out)] {
			if v != 0 {
				out[i] = float64(v)
			}
		}
	default:
		for i := range out {
			if v := c.cell(k0 + i); v != 0 {
				out[i] = float64(v)
			}
		}
	}
}

// bytes is what the cells take, capacity included.
func (c *cells) bytes() int {
	return cap(c.dense) + 4*(cap(c.idx)+cap(c.val))
}

// grow extends s to n elements, zeroed, with room for an eighth more:
// series grow by one bucket per evaluation, and append's doubling would
// leave up to half of a long series unused.
func grow[T any](s []T, n int) []T {
	if n <= cap(s) {
		old := len(s)
		s = s[:n]
		clear(s[old:])
		return s
	}
	out := make([]T, n, n+n/8+4)
	copy(out, s)
	return out
}
