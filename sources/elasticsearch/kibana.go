package elasticsearch

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/template"
	"github.com/culprithq/culprit/rules"
)

// DiscoverTitle is the title of the link DiscoverURL builds, so that every
// channel (report, page, chat) names it alike.
const DiscoverTitle = "Kibana Discover"

// DiscoverURL links a finding to its documents in Kibana 8.x Discover, so
// that whoever is paged lands on the evidence rather than on a blank
// search. kibanaBase is Kibana's public URL, with any base path or space
// (http://localhost:5601, https://kb.example.com/s/ops); dataView is the id
// of a data view over the log indices. The time range is [from, to]; when
// either is zero, DiscoverRange(f) supplies it.
//
// The query is KQL selecting the finding's service and signature. A
// signature is a masked template ("function invocation failed: fn-<*>
// returned <*> …"), so it cannot be searched as a whole: its (at most two)
// longest literal runs are. Each run is matched on every message field of
// fields, in two forms, because the field's type decides which works: a
// quoted phrase matches a text field (match_phrase over analysed tokens)
// but a keyword field only when it equals the whole value, and a wildcard
// (*from*upstream*: KQL cannot escape a space, so words are joined by
// wildcards) matches a keyword field but in effect never a text one, whose
// terms are single words. Or-ing the two works on text, match_only_text,
// keyword and wildcard fields, and on the text+keyword pair of a dynamic
// mapping. The wildcard form needs Kibana's default
// query:allowLeadingWildcards. The phrase leaves out the part of a token
// glued to a wildcard that an analyser would not split off ("s" in
// "<*>s"; "fn-" in "fn-<*>" stays, as "fn" is a token of "fn-8812").
//
// Messages that culprit made up for errors without one ("HTTP <*>",
// "error without message") select errors whose message fields are all
// missing instead. The result is a link, not a proof: the query may show a
// few documents of similar signatures, never fewer than the finding's.
//
// It fails for a ticket surge, which has no log documents, for an empty
// data view, and for a base that is not an absolute http(s) URL without
// query or fragment; the errors never repeat the base, which may carry
// credentials.
func DiscoverURL(kibanaBase, dataView string, fields rules.Fields, f *correlate.Finding, from, to time.Time) (string, error) {
	if f == nil {
		return "", errors.New("kibana link: no finding")
	}
	if f.Kind == correlate.KindTicketSurge {
		return "", fmt.Errorf("kibana link for finding %s: a ticket surge has no log documents", f.ID)
	}
	base, err := kibanaURL(kibanaBase)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(dataView) == "" {
		return "", errors.New("kibana link: no data view id")
	}
	if from.IsZero() || to.IsZero() {
		from, to = DiscoverRange(f)
	}
	if to.Before(from) {
		return "", fmt.Errorf("kibana link for finding %s: range ends %s before it starts %s", f.ID, kibanaTime(to), kibanaTime(from))
	}
	fields = withDefaultFields(fields)

	columns := []string{fields.Service, fields.Host, fields.Customer}
	if len(fields.Message) > 0 {
		columns = append(columns, fields.Message[0])
	}
	columns = slices.DeleteFunc(columns, func(c string) bool { return c == "" })
	g := "(time:(from:" + risonString(kibanaTime(from)) + ",to:" + risonString(kibanaTime(to)) + "))"
	a := "(columns:" + risonList(columns) +
		",dataSource:(dataViewId:" + risonString(dataView) + ",type:dataView)" +
		",query:(language:kuery,query:" + risonString(DiscoverQuery(fields, f)) + "))"
	return base + "/app/discover#/?_g=" + encodeURIQuery(g) + "&_a=" + encodeURIQuery(a), nil
}

// DiscoverRange is the time range a Discover link shows: from 15 minutes
// before the onset, so that the calm before it is on screen, to 5 minutes
// after the recovery or, while the finding lasts, its detection (an hour
// after the onset if it has none).
func DiscoverRange(f *correlate.Finding) (from, to time.Time) {
	from = f.Onset.Add(-15 * time.Minute)
	switch {
	case f.Recovered != nil:
		to = f.Recovered.Add(5 * time.Minute)
	case !f.Detected.IsZero():
		to = f.Detected
	default:
		to = f.Onset.Add(time.Hour)
	}
	if to.Before(from) {
		to = from
	}
	return from.UTC(), to.UTC()
}

// DiscoverQuery is the KQL of DiscoverURL: the finding's service and
// signature (see DiscoverURL for how a signature becomes a query).
func DiscoverQuery(fields rules.Fields, f *correlate.Finding) string {
	fields = withDefaultFields(fields)
	var parts []string
	switch f.Service {
	case "", "(none)":
		// Sources count documents without a service under "(none)".
		parts = append(parts, "not "+kqlField(fields.Service)+":*")
	default:
		parts = append(parts, kqlField(fields.Service)+":"+kqlQuoted(f.Service))
	}
	sig := f.Signature
	switch {
	case sig == "<other>":
		// The errors past the distinct-message cap: no text in common.
		parts = appendNonEmpty(parts, errorClause(fields))
	case sig == "error without message" || httpSignature.MatchString(sig):
		for _, m := range fields.Message {
			parts = append(parts, "not "+kqlField(m)+":*")
		}
		if m := httpSignature.FindStringSubmatch(sig); m != nil && m[1] != template.Wildcard && fields.Status != "" {
			parts = append(parts, kqlField(fields.Status)+":"+m[1])
		} else {
			parts = appendNonEmpty(parts, errorClause(fields))
		}
	default:
		runs := literalRuns(sig)
		for _, r := range runs {
			var alts []string
			for _, m := range fields.Message {
				field := kqlField(m)
				if r.phrase != "" {
					alts = append(alts, field+":"+kqlQuoted(r.phrase))
				}
				if !r.whole {
					alts = append(alts, field+":"+r.pattern())
				}
			}
			if len(alts) > 0 {
				parts = append(parts, "("+strings.Join(alts, " or ")+")")
			}
		}
	}
	return strings.Join(parts, " and ")
}

// httpSignature matches the message sources make up for an error without
// one, "HTTP <status>", masked or not.
var httpSignature = regexp.MustCompile(`^HTTP (<\*>|[0-9]{3})$`)

// errorClause selects errors as sources define them, "" when the fields to
// tell are not configured.
func errorClause(fields rules.Fields) string {
	var alts []string
	if fields.Outcome != "" {
		alts = append(alts, kqlField(fields.Outcome)+":failure")
	}
	if fields.Status != "" {
		alts = append(alts, kqlField(fields.Status)+" >= 500")
	}
	if len(alts) == 0 {
		return ""
	}
	return "(" + strings.Join(alts, " or ") + ")"
}

func appendNonEmpty(parts []string, s string) []string {
	if s == "" {
		return parts
	}
	return append(parts, s)
}

// withDefaultFields fills the roles a link needs from the ECS defaults when
// a configuration left them empty.
func withDefaultFields(f rules.Fields) rules.Fields {
	def := rules.Default().Fields
	if f.Service == "" {
		f.Service = def.Service
	}
	if len(f.Message) == 0 {
		f.Message = def.Message
	}
	if f.Host == "" && f.Customer == "" && f.Status == "" && f.Outcome == "" {
		f.Host, f.Customer, f.Status, f.Outcome = def.Host, def.Customer, def.Status, def.Outcome
	}
	return f
}

// literalRun is one stretch of a signature between wildcards.
type literalRun struct {
	pos int
	// text is the run trimmed of spaces, for the wildcard form.
	text string
	// phrase is text without tokens glued to a wildcard, for the phrase form.
	phrase string
	// open says which ends of text continue into a wildcard.
	openLeft, openRight bool
	// whole says the run is the entire message: no wildcard form needed.
	whole bool
	score int
}

// pattern is the run as a KQL wildcard value, *text*, anchored on the side
// where the message starts or ends. Its spaces become wildcards too: KQL
// has no escape for a space, and Kibana hands the value to a query_string
// query unescaped, where a space would split it into two patterns.
func (r literalRun) pattern() string {
	words := strings.Fields(r.text)
	for i, w := range words {
		words[i] = kqlUnquoted(w)
	}
	p := strings.Join(words, "*")
	if r.openLeft {
		p = "*" + p
	}
	if r.openRight {
		p += "*"
	}
	return p
}

// maxRuns bounds the runs queried: two distinctive runs already pin a
// signature down, and each costs a clause per message field.
const maxRuns = 2

// minRunScore is the fewest letters and digits a run needs to be worth
// searching: "to" or ": " would match nearly everything.
const minRunScore = 3

// tokenBreaks are characters at which Elasticsearch's standard tokenizer
// (Unicode word boundaries) always splits a word, whatever surrounds them;
// periods, commas, colons and apostrophes are left out, as they may join
// letters or digits.
const tokenBreaks = "-/=()[]{}<>\"|#"

// literalRuns returns the signature's longest literal runs in signature
// order.
func literalRuns(sig string) []literalRun {
	// A signature cut at MaxMessageBytes ends in "…", which no document
	// holds: the last run then continues into the unknown.
	truncated := strings.HasSuffix(sig, "…")
	sig = strings.TrimSuffix(sig, "…")
	pieces := strings.Split(sig, template.Wildcard)
	var runs []literalRun
	for i, p := range pieces {
		last := i == len(pieces)-1
		left := i > 0
		right := !last || truncated
		text := strings.TrimFunc(p, unicode.IsSpace)
		if text == "" {
			continue
		}
		score := 0
		for _, c := range text {
			if unicode.IsLetter(c) || unicode.IsDigit(c) {
				score++
			}
		}
		if score < minRunScore {
			continue
		}
		toks := strings.Fields(p)
		// A token touching a wildcard is only part of a word: the phrase
		// keeps what a tokenizer splits off it for sure, and drops the
		// rest ("db-<*>" keeps "db-", "<*>s" drops "s").
		if left && !unicode.IsSpace(firstRune(p)) {
			if k := strings.IndexAny(toks[0], tokenBreaks); k >= 0 {
				toks[0] = toks[0][k:]
			} else {
				toks = toks[1:]
			}
		}
		if right && len(toks) > 0 && !unicode.IsSpace(lastRune(p)) {
			last := toks[len(toks)-1]
			if k := strings.LastIndexAny(last, tokenBreaks); k >= 0 {
				toks[len(toks)-1] = last[:k+1]
			} else {
				toks = toks[:len(toks)-1]
			}
		}
		runs = append(runs, literalRun{
			pos: i, text: text, phrase: strings.Join(toks, " "),
			openLeft: left, openRight: right,
			whole: !left && !right, score: score,
		})
	}
	// The longest runs, ties to the earliest, then back in order.
	slices.SortStableFunc(runs, func(a, b literalRun) int { return b.score - a.score })
	runs = runs[:min(len(runs), maxRuns)]
	slices.SortFunc(runs, func(a, b literalRun) int { return a.pos - b.pos })
	return runs
}

func firstRune(s string) rune {
	for _, r := range s {
		return r
	}
	return 0
}

func lastRune(s string) rune {
	r := []rune(s)
	if len(r) == 0 {
		return 0
	}
	return r[len(r)-1]
}

// kqlQuoted is s as a KQL quoted string: a phrase, in which only the
// backslash and the double quote are special.
func kqlQuoted(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		if c == '\\' || c == '"' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}

// kqlField is a field name as an unquoted KQL literal.
func kqlField(name string) string { return kqlUnquoted(name) }

// kqlUnquoted escapes s for an unquoted KQL value, following Kibana's KQL
// grammar: the special characters \():<>"*{} take a backslash, and so do
// the words that would otherwise end the value as operators: "or" and
// "and" between spaces, and "not" before one (even inside a word:
// "cannot connect" would parse as "can" NOT "connect").
func kqlUnquoted(s string) string {
	rs := []rune(s)
	isSpace := func(i int) bool {
		return i >= 0 && i < len(rs) && strings.ContainsRune(" \t\r\n\u00a0", rs[i])
	}
	word := func(i int, w string) bool {
		if i+len(w) > len(rs) {
			return false
		}
		return strings.EqualFold(string(rs[i:i+len(w)]), w)
	}
	var b strings.Builder
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case strings.ContainsRune(`\():<>"*{}`, c):
			b.WriteByte('\\')
		case word(i, "not") && isSpace(i+3),
			isSpace(i-1) && word(i, "and") && isSpace(i+3),
			isSpace(i-1) && word(i, "or") && isSpace(i+2):
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// kibanaTime is how Kibana writes absolute times in its URLs.
func kibanaTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// risonString encodes s as a Rison string (the notation of Kibana's URL
// state): bare when it is a valid Rison identifier, else quoted with ' and
// with ' and ! escaped by a !, as Kibana's own encoder does.
func risonString(s string) string {
	if risonID(s) {
		return s
	}
	s = strings.ReplaceAll(s, "!", "!!")
	s = strings.ReplaceAll(s, "'", "!'")
	return "'" + s + "'"
}

// risonID reports whether s needs no quotes in Rison: not empty, no
// character of " '!:(),*@$", and not starting with a digit or '-', which
// would read as a number.
func risonID(s string) bool {
	if s == "" || strings.ContainsAny(s[:1], "-0123456789") {
		return false
	}
	return !strings.ContainsAny(s, " '!:(),*@$")
}

func risonList(items []string) string {
	enc := make([]string, len(items))
	for i, s := range items {
		enc[i] = risonString(s)
	}
	return "!(" + strings.Join(enc, ",") + ")"
}

// encodeURIQuery percent-encodes a URL state value as Kibana does
// (JavaScript's encodeURIComponent, then @ : $ , ; left as they are), so
// links look like the ones Kibana itself shares.
func encodeURIQuery(s string) string {
	const keep = "-_.!~*'()@:$,;"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// kibanaURL checks and normalises a Kibana base URL.
func kibanaURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("kibana link: the Kibana URL is not an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", errors.New("kibana link: the Kibana URL must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}
