package correlate

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Relevance weights. A ticket is related when its text alone reaches
// relatedScore: two independent cues (two of the error's words, a word and
// the status code, the product and the error's path, or a quote of the
// error). A ticket from an affected customer needs one cue plus a
// complaint: the customer's errors are why a vague "our functions fail"
// is about this incident, yet a customer's other questions ("raise the
// bandwidth limit") never are.
const (
	weightQuote     = 2.0
	weightCue       = 1.0
	weightComplaint = 0.5
	relatedScore    = 2.0
	relatedAffected = 1.5
	// rank bonuses: they order related tickets, never admit one.
	rankAffected = 1.0
	rankTimely   = 0.5
	// timelyAfter is how long after the episode a ticket still counts as
	// filed in its wake; customers write in 10-40 minutes after noticing.
	timelyAfter = time.Hour
)

// phraseSynonyms rewrite the multi-word ways people name a status code or
// a symptom into one token before words are compared. The table is about
// HTTP and failure vocabulary in general, not about any one incident.
var phraseSynonyms = strings.NewReplacer(
	"bad gateway", " 502 ",
	"gateway timeout", " 504 ", "gateway time-out", " 504 ",
	"service unavailable", " 503 ", "service temporarily unavailable", " 503 ",
	"internal server error", " 500 ", "server error", " 500 ", "internal error", " 500 ",
	"not found", " 404 ",
	"too many requests", " 429 ", "rate limited", " 429 ", "rate-limited", " 429 ",
	"timed out", " timeout ", "times out", " timeout ", "timing out", " timeout ",
	"time out", " timeout ", "time-out", " timeout ",
	"not working", " fail ", "doesn't work", " fail ", "does not work", " fail ",
	"don't work", " fail ", "do not work", " fail ", "stopped working", " fail ",
	"e-mail", "email", "web site", "website",
)

// wordSynonyms map stems to a shared concept, so that "functions",
// "lambda" and "function" agree, and so do "deadline" and "timeout".
var wordSynonyms = map[string]string{
	"function": "function", "lambda": "function", "fn": "function",
	"invok": "invoke", "invoc": "invoke",
	"timeout": "timeout", "deadlin": "timeout", "hang": "timeout", "hung": "timeout",
	"cert": "certificate", "certificat": "certificate", "ssl": "certificate", "tls": "certificate", "x509": "certificate", "https": "certificate",
	"db": "database", "databas": "database", "postgr": "database", "postgresql": "database", "mysql": "database", "sql": "database",
	"connect": "connect", "connectiv": "connect",
	"upstream": "upstream", "origin": "upstream", "backend": "upstream",
	"deploy": "deploy", "releas": "deploy", "rollout": "deploy",
	"email": "email", "mail": "email",
	"websit": "site", "site": "site", "domain": "site",
	"expir": "expire", "expiry": "expire",
	"limit": "limit", "quota": "limit",
	"pool":  "pool",
	"panic": "crash",
	// places, as customers say them and as cloud regions are named
	"europe": "europe", "european": "europe", "eu": "europe", "emea": "europe",
	"asia": "asia", "asian": "asia", "apac": "asia",
	"australia": "australia", "australian": "australia",
}

// complaints are the words of any failure. They show a ticket is a
// complaint, which alone says nothing about which incident it is about.
var complaints = map[string]bool{
	"fail": true, "failur": true, "error": true, "err": true, "broken": true, "break": true, "broke": true,
	"crash": true, "down": true, "outag": true, "unreachabl": true, "unavail": true, "issu": true,
	"problem": true, "slow": true, "intermitt": true, "flaky": true, "refus": true, "reject": true,
}

// noise are words too common in tickets or log lines to say what either
// is about.
var noise = map[string]bool{
	"the": true, "and": true, "for": true, "our": true, "with": true, "from": true, "sinc": true, "this": true,
	"that": true, "have": true, "has": true, "are": true, "was": true, "not": true, "all": true, "any": true,
	"some": true, "can": true, "you": true, "your": true, "get": true, "got": true, "when": true, "what": true,
	"how": true, "why": true, "after": true, "befor": true, "whil": true, "again": true, "still": true,
	"very": true, "just": true, "today": true, "afternoon": true, "morn": true, "now": true, "pleas": true,
	"help": true, "urgent": true, "thank": true, "hi": true, "hello": true, "into": true, "onto": true,
	"yet": true, "been": true, "being": true, "there": true, "their": true, "them": true, "they": true,
	"we": true, "us": true, "it": true, "its": true, "is": true, "be": true, "or": true, "of": true,
	"to": true, "in": true, "on": true, "at": true, "by": true, "an": true, "as": true, "if": true,
	"no": true, "my": true, "me": true, "do": true, "doe": true, "did": true, "does": true, "return": true,
	"call": true, "request": true, "respons": true, "receiv": true, "valu": true, "length": true,
	"id": true, "null": true, "nil": true, "true": true, "fals": true, "go": true, "goroutin": true,
	"every": true, "other": true, "more": true, "than": true, "about": true, "also": true, "only": true,
	"customer": true, "visitor": true, "user": true, "random": true, "sometim": true, "keep": true,
	"out": true, "up": true, "off": true, "over": true, "under": true, "new": true, "old": true,
}

// Words most of the support queue uses before the onset ("site", the
// company's own product) say nothing about which incident a ticket is
// about. They are learnt from the tickets themselves, so that no list has
// to know what a given company's customers write.
const (
	commonMinTickets = 5
	commonShare      = 0.5
)

// commonConcepts are the concepts in more than commonShare of the tickets
// filed before the onset, when there are enough of them to tell.
func commonConcepts(tickets []Ticket, onset time.Time) map[string]bool {
	df := map[string]int{}
	n := 0
	for _, t := range tickets {
		if !t.CreatedAt.Before(onset) || excludedTicket(t) {
			continue
		}
		n++
		for c := range readText(t.Subject + "\n" + t.Description).concepts {
			df[c]++
		}
	}
	out := map[string]bool{}
	if n < commonMinTickets {
		return out
	}
	for c, k := range df {
		if float64(k) > commonShare*float64(n) {
			out[c] = true
		}
	}
	return out
}

var (
	codeRe   = regexp.MustCompile(`^[45][0-9][0-9]$`)
	domainRe = regexp.MustCompile(`[a-z0-9_-]+(?:\.[a-z0-9_-]+)+(?::[0-9]+)?`)
	pathRe   = regexp.MustCompile(`/[a-z][a-z0-9._~-]*(?:/[a-z0-9._~-]+)*`)
)

// stem is a small Porter-style suffix stripper: enough that "failing",
// "failed" and "fails" meet, and "functions" meets "function". It keeps at
// least three letters so short words stay recognisable.
func stem(w string) string {
	if len(w) <= 3 {
		return w
	}
	switch {
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:len(w)-1]
	}
	undouble := false
	for _, suf := range []string{"ations", "ation", "ments", "ment", "ness", "ingly", "ing", "edly", "ed", "ions", "ion", "ly", "er"} {
		if strings.HasSuffix(w, suf) && len(w)-len(suf) >= 3 {
			w = w[:len(w)-len(suf)]
			undouble = suf == "ing" || suf == "ed" || suf == "ingly" || suf == "edly"
			break
		}
	}
	if n := len(w); undouble && n > 3 && w[n-1] == w[n-2] && !strings.ContainsRune("lsz", rune(w[n-1])) {
		w = w[:n-1]
	}
	if n := len(w); n > 3 && w[n-1] == 'e' {
		w = w[:n-1]
	}
	return w
}

// stemSynonyms is wordSynonyms keyed by stem too, so that a synonym
// written in full ("function") meets its inflections ("functions").
var stemSynonyms = func() map[string]string {
	m := make(map[string]string, 2*len(wordSynonyms))
	for k, v := range wordSynonyms {
		m[k] = v
		m[stem(k)] = v
	}
	return m
}()

// concept is the normalised form of one word: its stem, through the
// synonym table.
func concept(w string) string {
	if c, ok := stemSynonyms[w]; ok {
		return c
	}
	s := stem(w)
	if c, ok := stemSynonyms[s]; ok {
		return c
	}
	return s
}

// ticketText is a text reduced to what relevance compares.
type ticketText struct {
	flat     string          // lowercased, synonyms applied, single spaces
	concepts map[string]bool // concepts of its words, noise dropped
	codes    map[string]bool // 4xx and 5xx status codes
	families map[string]bool // "5xx" when any 5xx is named or a code family is written so
	paths    []string
	complain bool
}

func readText(s string) ticketText {
	low := strings.ToLower(s)
	t := ticketText{concepts: map[string]bool{}, codes: map[string]bool{}, families: map[string]bool{}}
	// Host and domain names are some customer's, never the topic: drop
	// them before paths and words are read.
	low = domainRe.ReplaceAllString(low, " ")
	t.paths = pathRe.FindAllString(low, -1)
	low = phraseSynonyms.Replace(low)
	var words []string
	for _, w := range strings.FieldsFunc(low, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' }) {
		w = strings.Trim(w, "'")
		if w == "" {
			continue
		}
		words = append(words, w)
		switch {
		case codeRe.MatchString(w):
			// A status code is a complaint too: "returns 503" says
			// something fails even when the finding's code is unknown.
			t.codes[w] = true
			t.families[w[:1]+"xx"] = true
			t.complain = true
			continue
		case w == "4xx" || w == "5xx":
			t.families[w] = true
			t.complain = true
			continue
		}
		c := concept(w)
		if complaints[c] || complaints[w] {
			t.complain = true
			continue
		}
		if len(c) < 2 || noise[c] || noise[w] || isNumber(w) {
			continue
		}
		t.concepts[c] = true
	}
	t.flat = " " + strings.Join(words, " ") + " "
	return t
}

func isNumber(w string) bool {
	_, err := strconv.Atoi(w)
	return err == nil
}

// ticketTopic is what a finding is about, in the words a customer could
// use for it.
type ticketTopic struct {
	concepts map[string]string // concept -> the word a reason shows
	codes    map[string]bool
	paths    []string          // the error's paths and their templated prefixes
	names    map[string]string // concept or phrase of the service and its products -> shown name
	quotes   []string          // runs of three or more literal words of the error, flattened
	// endpoints are the words naming the paths that carry most errors:
	// customers say "the deploys endpoint" for /api/v1/deploys.
	endpoints map[string]string
}

// places are the continents cloud regions are named after, for regions
// whose names run words together.
var places = []string{"europe", "asia", "australia", "africa", "america"}

// endpointWords are the distinctive words of the paths that carry at
// least a tenth of the errors, at most five of them: a fleet-wide error
// spread over every path names none.
func endpointWords(paths map[string]float64) map[string]string {
	var total float64
	for _, n := range paths {
		total += n
	}
	type pv struct {
		p string
		n float64
	}
	var top []pv
	for p, n := range paths {
		if total > 0 && n >= total/10 {
			top = append(top, pv{p, n})
		}
	}
	sort.Slice(top, func(a, b int) bool {
		if top[a].n != top[b].n {
			return top[a].n > top[b].n
		}
		return top[a].p < top[b].p
	})
	out := map[string]string{}
	for _, t := range top[:min(5, len(top))] {
		for _, seg := range strings.Split(strings.ToLower(t.p), "/") {
			if len(seg) < 3 || strings.IndexFunc(seg, unicode.IsDigit) >= 0 || seg == "api" {
				continue
			}
			if c := concept(seg); !noise[c] && !complaints[c] {
				out[c] = seg
			}
		}
	}
	return out
}

// newTicketTopic gathers the finding's words: its signature and examples,
// the status codes in them, the paths that carry its errors, and the
// service with the product names configured for it.
func newTicketTopic(f Finding, sc *Scope, products []string) ticketTopic {
	tp := ticketTopic{concepts: map[string]string{}, codes: map[string]bool{}, names: map[string]string{}}
	for _, s := range append([]string{f.Signature}, f.Examples...) {
		t := readText(strings.ReplaceAll(s, "<*>", " "))
		for c := range t.concepts {
			if _, ok := tp.concepts[c]; !ok {
				tp.concepts[c] = c
			}
		}
		for c := range t.codes {
			tp.codes[c] = true
		}
	}
	tp.quotes = quotes(f.Signature)
	if sc != nil {
		for p := range sc.Errors[FieldPath] {
			tp.paths = append(tp.paths, pathPrefixes(strings.ToLower(p))...)
		}
		// A region or provider the errors concentrate on is how a
		// customer places them: "down in Europe".
		for _, field := range []string{FieldRegion, FieldProvider} {
			for v, n := range sc.Errors[field] {
				if n <= 0 || len(sc.Errors[field]) > 2 {
					continue
				}
				v = strings.ToLower(v)
				for _, w := range strings.FieldsFunc(v, func(r rune) bool { return !unicode.IsLetter(r) }) {
					if len(w) >= 3 {
						tp.concepts[concept(w)] = w
					}
				}
				// Cloud regions run words together ("westeurope").
				for _, place := range places {
					if strings.Contains(v, place) {
						tp.concepts[concept(place)] = place
					}
				}
			}
		}
		tp.endpoints = endpointWords(sc.Errors[FieldPath])
	}
	sort.Strings(tp.paths)
	tp.paths = dedupe(tp.paths)
	for _, n := range append([]string{f.Service}, products...) {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if strings.ContainsAny(n, " -_") {
			tp.names[" "+strings.Join(strings.FieldsFunc(n, func(r rune) bool { return r == ' ' || r == '-' || r == '_' }), " ")+" "] = n
		} else {
			tp.names[concept(n)] = n
		}
	}
	return tp
}

// quotes are the signature's literal runs of at least three words: text a
// customer can only have copied from the error.
func quotes(sig string) []string {
	var out []string
	for _, part := range strings.Split(strings.ToLower(sig), "<*>") {
		var run []string
		flush := func() {
			if len(run) >= 3 {
				out = append(out, " "+strings.Join(run, " ")+" ")
			}
			run = run[:0]
		}
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return unicode.IsSpace(r) }) {
			clean := strings.TrimFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
			if clean == "" || clean != strings.Trim(w, ".,:;\"'()[]") {
				flush()
				continue
			}
			run = append(run, clean)
			if clean != w {
				flush()
			}
		}
		flush()
	}
	return out
}

// pathPrefixes are a path and its templated prefixes: /api/v1/sites/123
// gives /api/v1/sites and /api/v1 (a number or id segment ends the
// template), so a ticket naming the endpoint matches the errors' paths.
func pathPrefixes(p string) []string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var out []string
	for i := range segs {
		if segs[i] == "" || strings.IndexFunc(segs[i], unicode.IsDigit) >= 0 && i > 0 && !strings.HasPrefix(segs[i], "v") {
			break
		}
		out = append(out, "/"+strings.Join(segs[:i+1], "/"))
	}
	return out
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// relevance is one ticket's fit to a topic.
type relevance struct {
	text      float64  // from the ticket's words alone
	cues      []string // what it mentions, for the reason
	complaint bool
}

func (tp ticketTopic) score(t ticketText) relevance {
	var r relevance
	for _, q := range tp.quotes {
		if strings.Contains(t.flat, q) {
			r.text += weightQuote
			r.cues = append(r.cues, "quotes \""+strings.TrimSpace(q)+"\"")
			break
		}
	}
	seen := map[string]bool{}
	var words []string
	for c := range t.concepts {
		if shown, ok := tp.concepts[c]; ok && !seen[c] {
			seen[c] = true
			words = append(words, shown)
		}
	}
	sort.Strings(words)
	r.text += weightCue * float64(len(words))
	if len(words) > 0 {
		r.cues = append(r.cues, "mentions "+strings.Join(words, ", "))
	}
	var codes []string
	for c := range t.codes {
		if tp.codes[c] {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 {
		for c := range tp.codes {
			if t.families[c[:1]+"xx"] && !t.codes[c] && len(t.codes) == 0 {
				codes = append(codes, c[:1]+"xx")
				break
			}
		}
	}
	if len(codes) > 0 {
		sort.Strings(codes)
		r.text += weightCue
		r.cues = append(r.cues, "status "+strings.Join(codes, ", "))
	}
	pathHit := false
	for _, p := range t.paths {
		p = strings.TrimRight(p, "/.")
		if p != "" && containsString(tp.paths, p) {
			r.text += weightCue
			r.cues = append(r.cues, "path "+p)
			pathHit = true
			break
		}
	}
	// An endpoint's name is the same cue as its path, in words.
	var endpoints []string
	for c := range t.concepts {
		if shown, ok := tp.endpoints[c]; ok && !seen[c] && !pathHit {
			seen[c] = true
			endpoints = append(endpoints, shown)
		}
	}
	if len(endpoints) > 0 {
		sort.Strings(endpoints)
		r.text += weightCue
		r.cues = append(r.cues, "endpoint "+strings.Join(endpoints, ", "))
	}
	var names []string
	for key, shown := range tp.names {
		hit := false
		if strings.HasPrefix(key, " ") {
			hit = strings.Contains(t.flat, key)
		} else {
			hit = t.concepts[key] && !seen[key]
		}
		if hit {
			names = append(names, shown)
			seen[key] = true
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		r.text += weightCue
		r.cues = append(r.cues, "names "+strings.Join(names, ", "))
	}
	if t.complain {
		r.complaint = true
		r.text += weightComplaint
	}
	return r
}

func containsString(s []string, v string) bool {
	i := sort.SearchStrings(s, v)
	return i < len(s) && s[i] == v
}

// linkTickets ranks the tickets created from the onset on by how well
// their text fits the finding. It returns the related ones, best first,
// each with its reason, and the ids of the remaining tickets from affected
// customers: support wants to know they exist, not to read them as
// evidence. Tickets corroborate a finding; they never make one.
func linkTickets(f Finding, sc *Scope, tickets []Ticket, until time.Time, products []string) (related []TicketRef, others []int64) {
	var affected map[string]float64
	if sc != nil {
		affected = sc.Errors[FieldCustomer]
	}
	tp := newTicketTopic(f, sc, products)
	for c := range commonConcepts(tickets, f.Onset) {
		delete(tp.concepts, c)
		delete(tp.endpoints, c)
	}
	related = []TicketRef{}
	for _, t := range tickets {
		if t.CreatedAt.Before(f.Onset) || excludedTicket(t) {
			continue
		}
		isAffected := t.OrganizationID != 0 && affected[strconv.FormatInt(t.OrganizationID, 10)] > 0
		r := tp.score(readText(t.Subject + "\n" + t.Description))
		if r.text < relatedScore && !(isAffected && r.text >= relatedAffected && r.complaint) {
			if isAffected {
				others = append(others, t.ID)
			}
			continue
		}
		rank := r.text
		reasons := r.cues
		if isAffected {
			rank += rankAffected
			reasons = append(reasons, fmt.Sprintf("organization %d is affected", t.OrganizationID))
		}
		after := t.CreatedAt.Sub(f.Onset)
		if until.IsZero() || !t.CreatedAt.After(until.Add(timelyAfter)) {
			rank += rankTimely
		}
		reasons = append(reasons, "filed "+shortDuration(after)+" after onset")
		related = append(related, TicketRef{
			ID: t.ID, Subject: t.Subject, CreatedAt: t.CreatedAt, OrganizationID: t.OrganizationID,
			Reason: strings.Join(reasons, "; "), Score: roundScore(rank), Affected: isAffected,
		})
	}
	sort.SliceStable(related, func(a, b int) bool {
		if related[a].Score != related[b].Score {
			return related[a].Score > related[b].Score
		}
		return related[a].CreatedAt.Before(related[b].CreatedAt)
	})
	return related, others
}

func roundScore(x float64) float64 { return float64(int(x*10+0.5)) / 10 }

// excludedTicket is a ticket that is no evidence at all: deleted, and so
// also spam, which Zendesk deletes.
func excludedTicket(t Ticket) bool {
	return strings.EqualFold(t.Status, "deleted")
}

func shortDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Hour {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	h := d / time.Hour
	m := (d - h*time.Hour) / time.Minute
	if m == 0 {
		return strconv.Itoa(int(h)) + "h"
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}
