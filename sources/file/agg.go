package file

import (
	"math"
	"sort"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
)

// chunkBits sizes the blocks a series is stored in. Series are sparse (a
// rare error shows up in a handful of buckets) and the file's extent is
// unknown until it is read (one stray line from 1970 must not allocate fifty
// years of buckets), so a series is a map of small dense blocks rather than
// one slice.
const (
	chunkBits = 6
	chunkLen  = 1 << chunkBits
)

type chunk [chunkLen]uint32

type series struct {
	chunks  map[int64]*chunk
	lastKey int64
	last    *chunk
}

func (s *series) inc(idx int64) {
	k := idx >> chunkBits
	c := s.last
	if c == nil || k != s.lastKey {
		if s.chunks == nil {
			s.chunks = make(map[int64]*chunk, 4)
		}
		c = s.chunks[k]
		if c == nil {
			c = new(chunk)
			s.chunks[k] = c
		}
		s.last, s.lastKey = c, k
	}
	c[idx&(chunkLen-1)]++
}

// into adds the series' counts in absolute buckets [base, base+n*ratio) to
// out, ratio buckets to an output bucket. It reports whether any count fell
// inside.
func (s *series) into(out []float64, base, ratio int64) bool {
	hit := false
	end := base + int64(len(out))*ratio
	for k, c := range s.chunks {
		lo := k << chunkBits
		if lo+chunkLen <= base || lo >= end {
			continue
		}
		for j, v := range c {
			if v == 0 {
				continue
			}
			idx := lo + int64(j)
			if idx < base || idx >= end {
				continue
			}
			out[(idx-base)/ratio] += float64(v)
			hit = true
		}
	}
	return hit
}

// otherMessage collects the errors of a service past its distinct-message
// cap, so that totals stay right while memory stays bounded.
const otherMessage = "<other>"

// noService stands for lines without a service. It is reported rather than
// dropped because those requests are still traffic someone owns, and a
// mapping mistake (wrong service field) then shows up as one loud service
// instead of an empty report.
const noService = "(none)"

var noServiceBytes = []byte(noService)

type example struct {
	t   int64
	msg string
}

const maxExamples = 3

type msgAgg struct {
	counts   series
	examples []example // earliest first
}

func (m *msgAgg) example(t int64, raw string) {
	if len(m.examples) == maxExamples && t >= m.examples[maxExamples-1].t {
		return
	}
	e := example{t: t, msg: template.Truncate(raw)}
	i := sort.Search(len(m.examples), func(i int) bool { return m.examples[i].t > t })
	if len(m.examples) < maxExamples {
		m.examples = append(m.examples, example{})
	}
	copy(m.examples[i+1:], m.examples[i:])
	m.examples[i] = e
}

type svcAgg struct {
	name     string
	requests series
	errors   series
	messages map[string]*msgAgg
}

// agg is the pass-1 aggregate: per service, counts per bucket, where a
// bucket index is floor((t - origin) / step).
type agg struct {
	origin, step int64
	// lo and hi restrict the lines counted; the cached whole-file aggregate
	// uses the full int64 range.
	lo, hi      int64
	maxMessages int

	services map[string]*svcAgg
	last     *svcAgg
	minT     int64
	maxT     int64
	n        int64
	other    int64 // errors folded into otherMessage
}

func newAgg(origin, step, lo, hi int64, maxMessages int) *agg {
	return &agg{
		origin: origin, step: step, lo: lo, hi: hi, maxMessages: maxMessages,
		services: map[string]*svcAgg{},
		minT:     math.MaxInt64, maxT: math.MinInt64,
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (a *agg) add(x *extractor, t int64) {
	if t < a.lo || t >= a.hi {
		return
	}
	a.n++
	a.minT = min(a.minT, t)
	a.maxT = max(a.maxT, t)
	name := x.text(roleService)
	if len(name) == 0 {
		name = noServiceBytes
	}
	s := a.last
	// Logs come in runs of the same service; comparing to the last one
	// skips a map lookup on most lines.
	if s == nil || s.name != string(name) {
		s = a.services[string(name)]
		if s == nil {
			s = &svcAgg{name: string(name), messages: map[string]*msgAgg{}}
			a.services[s.name] = s
		}
		a.last = s
	}
	idx := floorDiv(t-a.origin, a.step)
	s.requests.inc(idx)
	if !x.isError() {
		return
	}
	s.errors.inc(idx)
	raw := x.message()
	key := template.Truncate(template.Mask(raw))
	m := s.messages[key]
	if m == nil {
		if len(s.messages) >= a.maxMessages {
			a.other++
			key = otherMessage
			m = s.messages[key]
		}
		if m == nil {
			m = &msgAgg{}
			s.messages[key] = m
		}
	}
	m.counts.inc(idx)
	m.example(t, raw)
}

// traffic reads the aggregate over w. base is the absolute bucket index of
// w.From and ratio how many aggregate buckets make one bucket of w. It
// returns ok=false when the cached examples cannot be trusted for w (some
// example precedes w.From, so the earliest examples inside w are unknown).
func (a *agg) traffic(w correlate.Window, base, ratio int64) (*correlate.Traffic, bool) {
	n := w.Len()
	from, to := w.From.UnixNano(), w.To.UnixNano()
	tr := &correlate.Traffic{Window: w}
	for _, s := range a.services {
		req := make([]float64, n)
		if !s.requests.into(req, base, ratio) {
			continue
		}
		st := correlate.ServiceTraffic{Service: s.name, Requests: req, Errors: make([]float64, n)}
		s.errors.into(st.Errors, base, ratio)
		for key, m := range s.messages {
			counts := make([]float64, n)
			if !m.counts.into(counts, base, ratio) {
				continue
			}
			mc := correlate.MessageCounts{Message: key, Counts: correlate.NewCounts(counts)}
			for _, e := range m.examples {
				if e.t < from {
					return nil, false
				}
				if e.t < to {
					mc.Examples = append(mc.Examples, e.msg)
				}
			}
			st.Messages = append(st.Messages, mc)
		}
		sort.Slice(st.Messages, func(i, j int) bool { return st.Messages[i].Message < st.Messages[j].Message })
		tr.Services = append(tr.Services, st)
	}
	sort.Slice(tr.Services, func(i, j int) bool { return tr.Services[i].Service < tr.Services[j].Service })
	return tr, true
}
