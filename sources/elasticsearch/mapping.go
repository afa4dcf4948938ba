package elasticsearch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/core/fieldcaps"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"

	"github.com/culprithq/culprit/rules"
)

// kind is how a field can be queried, whatever its exact mapping type.
type kind int

const (
	// kindMissing: not mapped in any matched index (or an object): no
	// document has a value, which is not an error.
	kindMissing kind = iota
	kindString       // aggregatable, string terms: keyword and friends
	kindNumber       // aggregatable, numeric terms
	kindBool
	kindDate
	// kindText: searchable but not aggregatable, e.g. text without a
	// keyword sub-field. Only its existence can be asked for; its values
	// must be read from _source.
	kindText
)

func (k kind) aggregatable() bool { return k >= kindString && k <= kindDate }

// field is one configured field as the matched indices map it.
type field struct {
	name string // as configured; "" when the role is not mapped
	agg  string // what to aggregate and match terms on: name or name.keyword
	kind kind
}

// mapping is the resolution of every configured field against the index.
type mapping struct {
	indices []string
	// resolved is what the index pattern resolved to when the mapping was
	// read (freshMapping), and loaded when.
	resolved                                              []string
	loaded                                                time.Time
	time, service, status, outcome                        field
	host, customer, site, version, path, provider, region field
	messages                                              []field
	levels                                                []level
}

var kindOfType = map[string]kind{
	"keyword": kindString, "constant_keyword": kindString, "wildcard": kindString,
	"version": kindString, "ip": kindString,
	"long": kindNumber, "integer": kindNumber, "short": kindNumber, "byte": kindNumber,
	"double": kindNumber, "float": kindNumber, "half_float": kindNumber,
	"scaled_float": kindNumber, "unsigned_long": kindNumber,
	"boolean": kindBool,
	"date":    kindDate, "date_nanos": kindDate,
	"text": kindText, "match_only_text": kindText, "annotated_text": kindText,
	"search_as_you_type": kindText,
}

// loadMapping asks _field_caps how every configured field is mapped in the
// indices the pattern matches. It is one request, made by Traffic when the
// pattern's indices changed (freshMapping), so that a new daily index with a
// changed mapping is seen. resolved is what the pattern resolved to just
// before, when known.
func (s *Source) loadMapping(ctx context.Context, resolved []string) (*mapping, error) {
	f := s.fields
	names := []string{f.Time, f.Service, f.Version, f.Host, f.Customer, f.Site, f.Path, f.Provider, f.Region, f.Status, f.Outcome}
	names = append(names, f.Message...)
	var ask []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			ask = append(ask, n, n+".keyword")
		}
	}
	var res *fieldcaps.Response
	err := s.call(ctx, "read field mappings", func(ctx context.Context) (int64, error) {
		r, err := s.es.FieldCaps().Index(s.index).Fields(ask...).Do(ctx)
		res = r
		return 0, err
	})
	if err != nil {
		return nil, err
	}
	if len(res.Indices) == 0 {
		return nil, fmt.Errorf("elasticsearch %s: index pattern %q matches no index", s.name, s.index)
	}
	m, err := resolveMapping(f, res)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s: index %q: %w", s.name, s.index, err)
	}
	m.resolved, m.loaded = resolved, s.now()
	s.mu.Lock()
	s.mapping = m
	s.mu.Unlock()
	return m, nil
}

// mappingMaxAge bounds how long a mapping is trusted while the indices
// stay the same: a field mapped for the first time inside an existing
// index (its first document that carries it) changes no index list.
const mappingMaxAge = 10 * time.Minute

// freshMapping is the last mapping while the index pattern resolves to the
// same indices, aliases and data streams as when it was read, and it is
// younger than mappingMaxAge; otherwise it is read again. Resolving a
// pattern is answered from the cluster state by the node asked, where
// _field_caps asks every shard of every matched index: over thirty daily
// indices, the difference between a lookup and a fan-out at every
// evaluation. A new daily index, or a rollover, changes the resolution, so
// its mapping is read before any search runs against it.
func (s *Source) freshMapping(ctx context.Context) (*mapping, error) {
	s.mu.Lock()
	m, blind := s.mapping, s.noResolve
	s.mu.Unlock()
	if blind {
		return s.loadMapping(ctx, nil)
	}
	names, err := s.resolve(ctx)
	var ee *types.ElasticsearchError
	if errors.As(err, &ee) && ee.Status == http.StatusForbidden {
		// Resolving needs view_index_metadata, which a key made only to
		// read and search may lack: read the mapping every time then.
		s.log.Warn("elasticsearch: cannot resolve the index pattern (grant view_index_metadata on it to cache its field mappings); reading them at every evaluation",
			"index", s.index, "error", err.Error())
		s.mu.Lock()
		s.noResolve = true
		s.mu.Unlock()
		return s.loadMapping(ctx, nil)
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if m != nil && slices.Equal(m.resolved, names) && !now.Before(m.loaded) && now.Sub(m.loaded) < mappingMaxAge {
		return m, nil
	}
	return s.loadMapping(ctx, names)
}

// resolve is what the index pattern names now: indices, aliases and data
// streams, sorted.
func (s *Source) resolve(ctx context.Context) ([]string, error) {
	var names []string
	err := s.call(ctx, "resolve the index pattern", func(ctx context.Context) (int64, error) {
		r, err := s.es.Indices.ResolveIndex(s.index).IgnoreUnavailable(true).Do(ctx)
		if err != nil {
			return 0, err
		}
		names = names[:0]
		for _, x := range r.Indices {
			names = append(names, "i:"+x.Name)
		}
		for _, x := range r.Aliases {
			names = append(names, "a:"+x.Name)
		}
		for _, x := range r.DataStreams {
			names = append(names, "d:"+x.Name)
		}
		return 0, nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// currentMapping is the last mapping, loading it if there is none.
func (s *Source) currentMapping(ctx context.Context) (*mapping, error) {
	s.mu.Lock()
	m := s.mapping
	s.mu.Unlock()
	if m != nil {
		return m, nil
	}
	return s.loadMapping(ctx, nil)
}

func resolveMapping(f rules.Fields, res *fieldcaps.Response) (*mapping, error) {
	m := &mapping{indices: res.Indices}
	var errs []string
	get := func(role, name string) field {
		fd, err := resolveField(strings.TrimSpace(name), res.Fields)
		if err != nil {
			errs = append(errs, fmt.Sprintf("fields.%s: %v", role, err))
		}
		return fd
	}
	m.time = get("time", f.Time)
	m.service = get("service", f.Service)
	m.status = get("status", f.Status)
	m.outcome = get("outcome", f.Outcome)
	m.host = get("host", f.Host)
	m.customer = get("customer", f.Customer)
	m.site = get("site", f.Site)
	m.version = get("version", f.Version)
	m.path = get("path", f.Path)
	m.provider = get("provider", f.Provider)
	m.region = get("region", f.Region)
	for _, n := range f.Message {
		m.messages = append(m.messages, get("message", n))
	}
	switch {
	case m.time.kind == kindMissing:
		errs = append(errs, fmt.Sprintf("fields.time: %q is not mapped in any matched index (%s)", f.Time, strings.Join(m.indices, ", ")))
	case m.time.kind != kindDate:
		errs = append(errs, fmt.Sprintf("fields.time: %q is not mapped as a date", f.Time))
	}
	// Service and status are aggregated on; a text mapping without a
	// keyword sub-field cannot be, and reading them from _source for every
	// document is exactly the scrolling this package refuses to do.
	for _, x := range []struct {
		role string
		f    field
	}{{"service", m.service}, {"status", m.status}} {
		if x.f.kind == kindText {
			errs = append(errs, fmt.Sprintf("fields.%s: %q is a text field without a keyword sub-field and cannot be aggregated; map it as keyword (or add a .keyword multi-field)", x.role, x.f.name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	m.levels = buildLevels(m.messages)
	return m, nil
}

// resolveField classifies one field. A field mapped with incompatible kinds
// in different indices (long in one daily index, keyword in the next) is an
// error naming them: aggregations over it would fail on some shards.
func resolveField(name string, caps map[string]map[string]types.FieldCapability) (field, error) {
	fd := field{name: name}
	if name == "" {
		return fd, nil
	}
	byType := caps[name]
	kinds := map[kind][]string{}
	aggregatable := true
	for typ, c := range byType {
		k, ok := kindOfType[typ]
		if !ok {
			continue // object, nested, geo_point…: no scalar value to read
		}
		kinds[k] = append(kinds[k], typ+describeIndices(c.Indices))
		if !c.Aggregatable {
			aggregatable = false
		}
	}
	switch len(kinds) {
	case 0:
		return fd, nil
	case 1:
	default:
		var parts []string
		for _, ts := range kinds {
			parts = append(parts, ts...)
		}
		sort.Strings(parts)
		return fd, fmt.Errorf("%q is mapped inconsistently across indices (%s); make the mappings agree (an index template) or narrow the index pattern", name, strings.Join(parts, "; "))
	}
	for k := range kinds {
		fd.kind = k
	}
	fd.agg = name
	if fd.kind == kindText || !aggregatable {
		fd.kind = kindText
		if kw, ok := caps[name+".keyword"]["keyword"]; ok && len(caps[name+".keyword"]) == 1 && kw.Aggregatable {
			fd.kind, fd.agg = kindString, name+".keyword"
		}
	}
	return fd, nil
}

func describeIndices(ix []string) string {
	if len(ix) == 0 {
		return ""
	}
	if len(ix) > 3 {
		return fmt.Sprintf(" in %s and %d more", strings.Join(ix[:3], ", "), len(ix)-3)
	}
	return " in " + strings.Join(ix, ", ")
}

// level is one message field of the "first non-empty field wins" rule.
type level struct {
	f field
	// has matches documents whose value can be aggregated: present,
	// non-empty and short enough to be indexed. nil for text fields.
	has *types.Query
	// long matches documents with a non-empty value that cannot be
	// aggregated (longer than ignore_above, or a text field): they are
	// fetched and read from _source. nil when impossible.
	long *types.Query
}

func (l level) present() types.Query {
	var qs []types.Query
	if l.has != nil {
		qs = append(qs, *l.has)
	}
	if l.long != nil {
		qs = append(qs, *l.long)
	}
	return or(qs...)
}

func buildLevels(msgs []field) []level {
	var out []level
	for _, f := range msgs {
		l := level{f: f}
		switch f.kind {
		case kindMissing:
			continue
		case kindString:
			// An empty string is indexed as a term and "exists", but the
			// file source treats it as absent. A value over ignore_above is
			// not indexed and is listed in _ignored instead.
			l.has = ptr(and(ptr(exists(f.agg)), ptr(not(term(f.agg, "")))))
			l.long = ptr(term("_ignored", f.agg))
		case kindNumber, kindBool, kindDate:
			l.has = ptr(exists(f.agg))
		case kindText:
			// exists also matches "" here; such documents are fetched and
			// _source decides, which gives the file source's answer.
			l.long = ptr(exists(f.name))
		}
		out = append(out, l)
	}
	return out
}

// notBefore excludes documents whose message came from an earlier level.
func (m *mapping) notBefore(i int) *types.Query {
	if i == 0 {
		return nil
	}
	qs := make([]types.Query, i)
	for j := range i {
		qs[j] = m.levels[j].present()
	}
	return ptr(not(qs...))
}

// longAny matches errors whose message must be read from _source.
func (m *mapping) longAny() *types.Query {
	var qs []types.Query
	for i, l := range m.levels {
		if l.long != nil {
			qs = append(qs, and(m.notBefore(i), l.long))
		}
	}
	if len(qs) == 0 {
		return nil
	}
	return ptr(or(qs...))
}

// statusSpace is what bytes.TrimSpace removes, which the file source applies
// to a status given as a string. Lucene regexps take these characters
// literally inside a class.
const statusSpace = "[ \t\n\v\f\r\u0085\u00a0]*"

// isError is the file source's rule as a query: outcome "failure" (ASCII
// case-insensitive) is an error and "success" is not; otherwise a status of
// 500 to 9999 is. A status string counts only when, spaces trimmed, it is
// one to four digits, hence the regexp on keyword status fields.
func (m *mapping) isError() types.Query {
	var bad *types.Query
	switch m.status.kind {
	case kindNumber:
		bad = ptr(numRange(m.status.agg, 500, 9999))
	case kindString:
		bad = ptr(regexpQ(m.status.agg, statusSpace+"([5-9][0-9][0-9]|[1-9][0-9][0-9][0-9]|0[5-9][0-9][0-9])"+statusSpace))
	}
	var fail, ok *types.Query
	switch m.outcome.kind {
	case kindString:
		fail, ok = ptr(termFold(m.outcome.agg, "failure")), ptr(termFold(m.outcome.agg, "success"))
	case kindText:
		// Analysed text: the standard analyzer lowercases, so a term query
		// for the lowercase word matches any case. It also matches
		// "failure" within a longer outcome, which ECS does not produce.
		fail, ok = ptr(term(m.outcome.name, "failure")), ptr(term(m.outcome.name, "success"))
	}
	switch {
	case bad == nil && fail == nil:
		return matchNone()
	case fail == nil:
		return *bad
	case bad == nil:
		return *fail
	}
	return or(*fail, and(bad, ptr(not(*ok))))
}

// noMessage matches errors with none of the message fields: their message is
// built from the status.
func (m *mapping) noMessage() *types.Query { return m.notBefore(len(m.levels)) }

// serviceIs matches the documents of one service as Traffic names them:
// noService stands for documents without one (or with an empty one).
func (m *mapping) serviceIs(name string) types.Query {
	f := m.service
	if !f.kind.aggregatable() {
		if name == noService {
			return matchAll()
		}
		return matchNone()
	}
	if name == noService {
		qs := []types.Query{not(exists(f.agg))}
		if f.kind == kindString {
			qs = append(qs, term(f.agg, ""), term(f.agg, noService))
		}
		return or(qs...)
	}
	v, ok := termValue(f, name)
	if !ok {
		return matchNone()
	}
	return term(f.agg, v)
}

// termValue converts a rendered value back into a term for f, or reports
// that no document of f's kind can have it (a term query for "web" on a
// long field would be rejected by Elasticsearch).
func termValue(f field, s string) (types.FieldValue, bool) {
	switch f.kind {
	case kindNumber:
		if _, ok := parseNumber(s); !ok {
			return nil, false
		}
	case kindBool:
		if s != "true" && s != "false" {
			return nil, false
		}
	}
	return s, true
}
