package file

import (
	"bytes"
	"context"
	"sort"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
)

// scopeRole maps a canonical scope field to the role that carries it in the
// operator's mapping; fields culprit does not know are left out.
func scopeRole(field string) (role, bool) {
	switch field {
	case correlate.FieldCustomer:
		return roleCustomer, true
	case correlate.FieldSite:
		return roleSite, true
	case correlate.FieldHost:
		return roleHost, true
	case correlate.FieldProvider:
		return roleProvider, true
	case correlate.FieldRegion:
		return roleRegion, true
	case correlate.FieldVersion:
		return roleVersion, true
	case correlate.FieldPath:
		return rolePath, true
	case correlate.FieldService:
		return roleService, true
	}
	return 0, false
}

// tally counts values with a cap on distinct ones. Values past the cap go to
// otherMessage, and the tally remembers it overflowed so that Scope can
// recount the values that matter exactly.
type tally struct {
	m          map[string]*float64
	limit      int
	overflowed bool
}

func newTally(limit int) *tally { return &tally{m: map[string]*float64{}, limit: limit} }

func (t *tally) add(v []byte) {
	// Pointers make the common case, a value already seen, a lookup that
	// does not allocate a string key.
	if p := t.m[string(v)]; p != nil {
		*p++
		return
	}
	k := string(v)
	if len(t.m) >= t.limit {
		t.overflowed = true
		k = otherMessage
		if p := t.m[k]; p != nil {
			*p++
			return
		}
	}
	one := 1.0
	t.m[k] = &one
}

func (t *tally) result() map[string]float64 {
	out := make(map[string]float64, len(t.m))
	for k, p := range t.m {
		out[k] = *p
	}
	return out
}

type scopeField struct {
	name string
	role role
}

// scopeMatcher decides, line by line, whether a document belongs to the
// service and whether it is one of the signature's errors.
type scopeMatcher struct {
	service  []byte
	none     bool
	messages map[string]bool
	// known are the service's capped messages from pass 1; with them an
	// "<other>" signature matches exactly the errors pass 1 folded there.
	other bool
	known map[string]*msgAgg
}

func (m *scopeMatcher) serviceOK(x *extractor) bool {
	s := x.text(roleService)
	if len(s) == 0 {
		return m.none
	}
	return bytes.Equal(s, m.service)
}

// prefilter skips, unparsed, the lines that cannot belong to the service
// because its name does not occur in them: with a handful of services most
// lines go, at the cost of a substring search instead of a parse. It is
// only used where it cannot be wrong: the name must contain a letter (so it
// is not a number a producer might write as 1.5e3) and nothing a JSON
// encoder could escape (so it appears verbatim), and lines holding a \u
// escape are always parsed.
func (m *scopeMatcher) prefilter() func([]byte) bool {
	if m.none || len(m.service) == 0 {
		return nil
	}
	letter := false
	for _, c := range m.service {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':', c == ' ':
		default:
			return nil
		}
	}
	if !letter {
		return nil
	}
	name := m.service
	return func(line []byte) bool {
		return bytes.Contains(line, name) || bytes.Contains(line, unicodeEscape)
	}
}

// match reports whether the line is a signature error, and its raw message.
func (m *scopeMatcher) match(x *extractor) (bool, string) {
	if !x.isError() {
		return false, ""
	}
	raw := x.message()
	key := template.Truncate(template.Mask(raw))
	if m.messages[key] {
		return true, raw
	}
	if m.other && m.known != nil && m.known[key] == nil {
		return true, raw
	}
	return false, ""
}

const maxSamples = 5

var unicodeEscape = []byte(`\u`)

// matcher selects the signature's errors of service, made of messages.
func (l *Logs) matcher(ctx context.Context, service string, messages []string) (*scopeMatcher, error) {
	m := &scopeMatcher{service: []byte(service), none: service == noService, messages: map[string]bool{}}
	for _, msg := range messages {
		m.messages[msg] = true
		if msg == otherMessage {
			m.other = true
		}
	}
	if m.other {
		a, err := l.load(ctx)
		if err != nil {
			return nil, err
		}
		if s := a.services[service]; s != nil {
			m.known = s.messages
		}
	}
	return m, nil
}

// Scope reads the file once more for one signature. Missing field values are
// not counted: "" is no customer, and counting it would dilute every share.
func (l *Logs) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	m, err := l.matcher(ctx, q.Service, q.Messages)
	if err != nil {
		return nil, err
	}
	var fields []scopeField
	for _, f := range correlate.ScopeFields {
		if r, ok := scopeRole(f); ok && l.spec.roleSlot[r] >= 0 {
			fields = append(fields, scopeField{f, r})
		}
	}

	from, to := q.From.UnixNano(), q.To.UnixNano()
	if q.From.IsZero() || q.To.IsZero() {
		from, to = 0, 0 // no breakdown range: only the host series
	}
	nw := q.Window.Len()
	wFrom, wTo, wStep := q.Window.From.UnixNano(), q.Window.To.UnixNano(), int64(q.Window.Step)
	if nw <= 0 {
		wFrom, wTo = 0, 0
	}

	errs := make([]*tally, len(fields))
	reqs := make([]*tally, len(fields))
	for i := range fields {
		errs[i] = newTally(l.cfg.maxScopeVals)
		reqs[i] = newTally(l.cfg.maxScopeVals)
	}
	hostErr := map[string][]float64{}
	hostReq := map[string][]float64{}
	var samples []correlate.Sample

	var st lineStats
	err = l.scan(ctx, &st, m.prefilter(), func(x *extractor, t int64) {
		inRange := t >= from && t < to
		inWindow := t >= wFrom && t < wTo
		if !inRange && !inWindow {
			return
		}
		if !m.serviceOK(x) {
			return
		}
		match, raw := m.match(x)
		if inRange {
			for i, f := range fields {
				v := x.text(f.role)
				if len(v) == 0 {
					continue
				}
				reqs[i].add(v)
				if match {
					errs[i].add(v)
				}
			}
			if match && (len(samples) < maxSamples || t < samples[len(samples)-1].Time.UnixNano()) {
				samples = addSample(samples, x, t, raw)
			}
		}
		if inWindow {
			host := x.text(roleHost)
			if len(host) == 0 {
				return
			}
			b := (t - wFrom) / wStep
			hs := hostReq[string(host)]
			if hs == nil {
				hs = make([]float64, nw)
				hostReq[string(host)] = hs
			}
			hs[b]++
			if match {
				he := hostErr[string(host)]
				if he == nil {
					he = make([]float64, nw)
					hostErr[string(host)] = he
				}
				he[b]++
			}
		}
	})
	if err != nil {
		return nil, err
	}

	// A capped request tally would understate exactly the values the
	// concentration test compares against, so recount those fields,
	// limited to the values that carry errors.
	var recount []int
	for i := range fields {
		if reqs[i].overflowed || errs[i].overflowed {
			recount = append(recount, i)
		}
	}
	if len(recount) > 0 {
		if err := l.recountRequests(ctx, m, fields, recount, errs, reqs, from, to); err != nil {
			return nil, err
		}
	}

	sc := newScope(hostErr, hostReq, samples)
	for i, f := range fields {
		sc.Errors[f.name] = errs[i].result()
		sc.Requests[f.name] = reqs[i].result()
	}
	return sc, nil
}

func (l *Logs) recountRequests(ctx context.Context, m *scopeMatcher, fields []scopeField, recount []int, errs, reqs []*tally, from, to int64) error {
	allowed := make([]map[string]bool, len(recount))
	for j, i := range recount {
		allowed[j] = map[string]bool{}
		for k := range errs[i].m {
			if k != otherMessage {
				allowed[j][k] = true
			}
		}
		// Unbounded is safe now: at most the error values plus one.
		reqs[i] = newTally(int(^uint(0) >> 1))
	}
	var st lineStats
	return l.scan(ctx, &st, m.prefilter(), func(x *extractor, t int64) {
		if t < from || t >= to || !m.serviceOK(x) {
			return
		}
		for j, i := range recount {
			v := x.text(fields[i].role)
			if len(v) == 0 {
				continue
			}
			if !allowed[j][string(v)] {
				v = []byte(otherMessage)
			}
			reqs[i].add(v)
		}
	})
}

// addSample keeps the earliest samples, ties in file order.
func addSample(s []correlate.Sample, x *extractor, t int64, raw string) []correlate.Sample {
	smp := correlate.Sample{
		Time:     time.Unix(0, t).UTC(),
		Host:     string(x.text(roleHost)),
		Customer: string(x.text(roleCustomer)),
		Site:     string(x.text(roleSite)),
		Version:  string(x.text(roleVersion)),
		Message:  template.Truncate(raw),
	}
	i := sort.Search(len(s), func(i int) bool { return s[i].Time.UnixNano() > t })
	if len(s) < maxSamples {
		s = append(s, correlate.Sample{})
	}
	copy(s[i+1:], s[i:])
	s[i] = smp
	return s
}

// newScope is a Scope with an empty breakdown for every scope field, so a
// field nobody's errors touched reads as empty, not as missing.
func newScope(hostErr, hostReq map[string][]float64, samples []correlate.Sample) *correlate.Scope {
	sc := &correlate.Scope{
		Errors:       map[string]map[string]float64{},
		Requests:     map[string]map[string]float64{},
		HostErrors:   hostErr,
		HostRequests: hostReq,
		Samples:      samples,
	}
	for _, f := range correlate.ScopeFields {
		sc.Errors[f] = map[string]float64{}
		sc.Requests[f] = map[string]float64{}
	}
	return sc
}
