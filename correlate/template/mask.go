package template

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Wildcard is what a variable part of a message becomes. Mask and Drain use
// the same string, so a value masked at the source and a slot Drain
// generalised later look alike in a signature.
const Wildcard = "<*>"

// Byte classes, looked up in a table because Mask runs on every error line
// and a table lookup is cheaper than a chain of comparisons.
const (
	cAlpha  uint8 = 1 << iota // A-Z a-z
	cDigit                    // 0-9
	cHex                      // 0-9 A-F a-f
	cSpace                    // ASCII white space
	cPath                     // may continue a filesystem or URL path
	cURL                      // may continue a URL
	cLocal                    // may appear in the local part of an email address
	cScheme                   // may appear in a URL scheme
)

var class = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cAlpha
		t[c-'a'+'A'] |= cAlpha
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cHex
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= cHex
		t[c-'a'+'A'] |= cHex
	}
	for _, c := range " \t\n\v\f\r" {
		t[c] |= cSpace
	}
	// Paths stop at quotes and brackets so that "(/a/b)" or "'/a/b'" keep
	// their punctuation, at '<' and '>' so that they never swallow a
	// placeholder (Mask must be idempotent), and at '\' so that a masked
	// path can never hide the backslash escaping a quote.
	for c := 0x21; c < 0x7f; c++ {
		if !strings.ContainsRune("\"'`<>()[]{},;\\", rune(c)) {
			t[c] |= cPath
		}
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] |= cPath | cURL
	}
	for c := 0x21; c < 0x7f; c++ {
		if !strings.ContainsRune("\"'`<>\\", rune(c)) {
			t[c] |= cURL
		}
	}
	for c := 0; c < 0x80; c++ {
		if t[c]&(cAlpha|cDigit) != 0 {
			t[c] |= cLocal | cScheme
		}
	}
	for _, c := range "._%+-" {
		t[c] |= cLocal
	}
	for _, c := range "+.-" {
		t[c] |= cScheme
	}
	return t
}()

// Length limits of the values whose matchers scan ahead before they know
// whether they match. Without them a message of a million "a." before an
// '@' would cost a million scans; with them Mask stays linear.
const (
	maxScheme = 32
	maxLocal  = 64  // RFC 5321
	maxDomain = 255 // RFC 1035
	maxIPv6   = 45  // ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255
)

const (
	cAlnum = cAlpha | cDigit
	// Quote characters index noClose in Mask.
	quoteChars = "\"'`"
)

// Mask replaces the variable parts of an error message with Wildcard and
// collapses white space, so that messages differing only in ids, addresses,
// numbers or quoted values become one string.
//
// What is masked: quoted values ('...', "...", `...`), URLs, paths of two or
// more segments, email addresses, UUIDs, IPv4 and IPv6 addresses with an
// optional port (and, by the same rule, MAC addresses and clock times),
// 0x-prefixed hex, runs of eight or more hex characters containing a digit,
// and every other decimal number, including one glued to letters: "fn-1234"
// becomes "fn-<*>" and "30s" becomes "<*>s", keeping the unit. Invalid
// UTF-8 becomes U+FFFD, so the result is always valid UTF-8 and survives a
// round trip through JSON unchanged. Runs of white space, Unicode included,
// become one ASCII space, and the result is trimmed.
//
// Mask is idempotent and its output contains no ASCII digit. It is a single
// hand-written pass over the bytes rather than a series of regular
// expressions because it runs on every error line a source ingests.
func Mask(msg string) string {
	var stack [256]byte
	out := stack[:0]
	// Cheap whole-message checks let the common message skip the email
	// and URL matchers entirely.
	hasAt := strings.IndexByte(msg, '@') >= 0
	hasScheme := strings.Contains(msg, "://")
	// A quote with no closing quote after it means no later opening quote
	// of the same kind has one either; remembering that keeps Mask linear
	// on messages full of apostrophes.
	var noClose [len(quoteChars)]bool
	space := false
	for i := 0; i < len(msg); {
		c := msg[i]
		cl := class[c]
		if cl&cSpace != 0 {
			space = len(out) > 0
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(msg[i:])
			if unicode.IsSpace(r) {
				// Treated like ASCII white space so that a no-break space
				// in one source and a plain one in another mask alike, and
				// so Mask's tokens are the ones Group splits on.
				space = len(out) > 0
				i += size
				continue
			}
			if space {
				out = append(out, ' ')
				space = false
			}
			if r == utf8.RuneError && size == 1 {
				out = append(out, "\uFFFD"...)
			} else {
				out = append(out, msg[i:i+size]...)
			}
			i += size
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		if wordStart(out) {
			end := -1
			switch {
			case cl&cAlnum != 0:
				end = matchWord(msg, i, hasAt, hasScheme)
			case c == '"' || c == '\'' || c == '`':
				q := strings.IndexByte(quoteChars, c)
				if requestLine(msg, i+1) {
					// Left open so that the method survives and the
					// path and version inside are masked one by one.
					break
				}
				if !noClose[q] {
					if end = quoteEnd(msg, i); end < 0 {
						noClose[q] = true
					}
				}
			case c == '/':
				end = pathEnd(msg, i)
			case c == '[':
				end = bracketEnd(msg, i)
			case c == ':':
				if i+1 < len(msg) && msg[i+1] == ':' {
					end = hexColonEnd(msg, i)
				}
			}
			if end > i {
				out = append(out, Wildcard...)
				i = end
				continue
			}
		}
		switch {
		case cl&cDigit != 0:
			i = numberEnd(msg, i)
			out = append(out, Wildcard...)
		case cl&cAlpha != 0:
			// Letters after the first are never at a word start, so the
			// whole run can be copied at once.
			j := i + 1
			for j < len(msg) && class[msg[j]]&cAlpha != 0 {
				j++
			}
			if j-i >= 3 && wordStart(out) && dateWord(msg, i, j) {
				out = append(out, Wildcard...)
			} else {
				out = append(out, msg[i:j]...)
			}
			i = j
		default:
			out = append(out, c)
			i++
		}
	}
	if string(out) == msg {
		return msg // no allocation for messages that need no masking
	}
	return string(out)
}

// wordStart reports whether the next byte may begin a maskable value. It
// looks at what has been written, not at the input, so that a second pass
// over Mask's own output takes exactly the same decisions: that is what
// makes Mask idempotent. A value glued to a placeholder ("<*>/a/b") is not
// at a word start.
func wordStart(out []byte) bool {
	n := len(out)
	if n == 0 {
		return true
	}
	b := out[n-1]
	if b >= utf8.RuneSelf || class[b]&cAlnum != 0 {
		return false
	}
	return !(b == '>' && n >= 3 && out[n-2] == '*' && out[n-3] == '<')
}

// rightBoundary reports whether a value may end before s[i]. '<' counts as
// part of a word because in Mask's output it starts a placeholder that
// replaced something which, in the input, did not end the value; without
// that, a second pass could match where the first did not.
func rightBoundary(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	c := s[i]
	if c >= utf8.RuneSelf {
		return unicodeSpace(s, i)
	}
	return class[c]&cAlnum == 0 && c != '<'
}

// unicodeSpace reports whether the non-ASCII rune at s[i] is white space.
// Values must end there exactly as they end at an ASCII space, since Mask
// turns one into the other.
func unicodeSpace(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsSpace(r)
}

// numberEnd returns the end of the decimal number at s[i]: digits with
// optional dotted groups, so "10.5" and "1.2.3" are one value.
func numberEnd(s string, i int) int {
	for {
		for i < len(s) && class[s[i]]&cDigit != 0 {
			i++
		}
		if i+1 < len(s) && s[i] == '.' && class[s[i+1]]&cDigit != 0 {
			i++
			continue
		}
		return i
	}
}

// matchWord tries the matchers for values that begin with a letter or a
// digit at s[i]. It returns the end of the match, or -1.
func matchWord(s string, i int, hasAt, hasScheme bool) int {
	j := i
	allHex, allDigit, digit := true, true, false
	for j < len(s) {
		cl := class[s[j]]
		if cl&cAlnum == 0 {
			break
		}
		if cl&cHex == 0 {
			allHex = false
		}
		if cl&cDigit == 0 {
			allDigit = false
		} else {
			digit = true
		}
		j++
	}
	var next byte
	if j < len(s) {
		next = s[j]
	}
	n := j - i
	if hasScheme && class[s[i]]&cAlpha != 0 && (next == ':' || class[next]&cScheme != 0) {
		if e := urlEnd(s, i); e > 0 {
			return e
		}
	}
	if hasAt && (next == '@' || class[next]&cLocal != 0) {
		if e := emailEnd(s, i); e > 0 {
			return e
		}
	}
	if next == '.' || next == '-' {
		if e := hostEnd(s, i); e > 0 {
			return e
		}
	}
	if s[i] == '0' && i+2 < len(s) && s[i+1]|0x20 == 'x' && class[s[i+2]]&cHex != 0 {
		e := i + 2
		for e < len(s) && class[s[e]]&cHex != 0 {
			e++
		}
		return e
	}
	if !allHex {
		return -1
	}
	switch {
	case n == 8 && next == '-':
		if e := uuidEnd(s, i); e > 0 {
			return e
		}
	case allDigit && n <= 3 && next == '.':
		if e := ipv4End(s, i); e > 0 {
			return e
		}
	case n <= 4 && next == ':':
		if e := hexColonEnd(s, i); e > 0 {
			return e
		}
	}
	if digit && n >= 8 {
		return j
	}
	return -1
}

// quoteEnd returns the end of the quoted value opening at s[i]: the first
// unescaped matching quote that ends a word. Requiring the closing quote to
// end a word is what keeps apostrophes ("can't") from closing a quote.
func quoteEnd(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); {
		k := strings.IndexByte(s[j:], q)
		if k < 0 {
			return -1
		}
		k += j
		if rightBoundary(s, k+1) && !escaped(s, i, k) {
			return k + 1
		}
		j = k + 1
	}
	return -1
}

// escaped reports whether s[k] follows an odd run of backslashes that
// starts after s[i].
func escaped(s string, i, k int) bool {
	n := 0
	for p := k - 1; p > i && s[p] == '\\'; p-- {
		n++
	}
	return n%2 == 1
}

// pathEnd returns the end of the path starting at s[i] == '/'. One segment
// ("/healthz") is kept: it names an endpoint rather than an instance.
func pathEnd(s string, i int) int {
	j := i + 1
	if j >= len(s) || s[j] == '/' || class[s[j]]&cPath == 0 {
		return -1
	}
	nested := false
	for j < len(s) && class[s[j]]&cPath != 0 && (s[j] < utf8.RuneSelf || !unicodeSpace(s, j)) {
		if s[j] == '/' {
			nested = true
		}
		j++
	}
	for strings.IndexByte(".:!?", s[j-1]) >= 0 {
		j--
	}
	if !nested {
		return -1
	}
	return j
}

// urlEnd returns the end of the URL whose scheme starts at s[i], or -1.
func urlEnd(s string, i int) int {
	j := i
	for j < len(s) && j-i <= maxScheme && class[s[j]]&cScheme != 0 {
		j++
	}
	if !strings.HasPrefix(s[j:], "://") {
		return -1
	}
	j += 3
	k := j
	for k < len(s) && class[s[k]]&cURL != 0 && (s[k] < utf8.RuneSelf || !unicodeSpace(s, k)) {
		k++
	}
	for k > j && strings.IndexByte(".,;:!?)]}", s[k-1]) >= 0 {
		k--
	}
	if k == j {
		return -1
	}
	return k
}

// emailEnd returns the end of the email address whose local part starts
// at s[i], or -1. The domain needs a dot and an alphabetic top-level label,
// which keeps "pkg@1.2" and "user@localhost" out.
func emailEnd(s string, i int) int {
	j := i
	for j < len(s) && j-i <= maxLocal && class[s[j]]&cLocal != 0 {
		j++
	}
	if j == i || j >= len(s) || s[j] != '@' {
		return -1
	}
	start := j + 1
	j = start
	for j < len(s) && (class[s[j]]&cAlnum != 0 || s[j] == '.' || s[j] == '-') {
		if j-start == maxDomain {
			return -1
		}
		j++
	}
	// Checked before trimming: a domain cut short by a placeholder must
	// not match on a second pass when the full one did not on the first.
	if !rightBoundary(s, j) {
		return -1
	}
	for j > start && (s[j-1] == '.' || s[j-1] == '-') {
		j--
	}
	dot := strings.LastIndexByte(s[start:j], '.')
	if dot <= 0 || strings.Contains(s[start:j], "..") {
		return -1
	}
	tld := s[start+dot+1 : j]
	if len(tld) < 2 {
		return -1
	}
	for k := 0; k < len(tld); k++ {
		if class[tld[k]]&cAlpha == 0 {
			return -1
		}
	}
	return j
}

// uuidEnd returns the end of the UUID at s[i], or -1.
func uuidEnd(s string, i int) int {
	if len(s)-i < 36 {
		return -1
	}
	digit := false
	for k := 0; k < 36; k++ {
		c := s[i+k]
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if c != '-' {
				return -1
			}
			continue
		}
		if class[c]&cHex == 0 {
			return -1
		}
		if class[c]&cDigit != 0 {
			digit = true
		}
	}
	if !digit || !rightBoundary(s, i+36) {
		return -1
	}
	return i + 36
}

// dottedQuadEnd returns the end of four dot-separated groups of one to
// three digits at s[i], or -1.
func dottedQuadEnd(s string, i int) int {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(s) || s[j] != '.' {
				return -1
			}
			j++
		}
		k := j
		for j < len(s) && j-k < 3 && class[s[j]]&cDigit != 0 {
			j++
		}
		if j == k {
			return -1
		}
	}
	return j
}

// ipv4End returns the end of the IPv4 address, with optional port, at s[i],
// or -1.
func ipv4End(s string, i int) int {
	j := dottedQuadEnd(s, i)
	if j < 0 {
		return -1
	}
	j = portEnd(s, j)
	if !rightBoundary(s, j) || j+1 < len(s) && s[j] == '.' && class[s[j+1]]&cDigit != 0 {
		return -1
	}
	return j
}

// hexColonEnd returns the end of the colon-separated hex groups at s[i], or
// -1. One rule covers IPv6 addresses (with at most one "::" and an optional
// dotted IPv4 tail), MAC addresses and clock times such as 10:30:00: all
// are variable values, and telling them apart would not change the mask.
func hexColonEnd(s string, i int) int {
	j := i
	for j < len(s) && (class[s[j]]&cHex != 0 || s[j] == ':') {
		if j-i == maxIPv6 {
			return -1
		}
		j++
	}
	// "at fe80::1: refused" - a single trailing colon is punctuation.
	if j-i >= 2 && s[j-1] == ':' && s[j-2] != ':' {
		j--
	}
	if s[i] == ':' && (j-i < 2 || s[i+1] != ':') {
		return -1
	}
	colons, run, last := 0, 0, i
	double, digit := false, false
	for k := i; k < j; k++ {
		c := s[k]
		if c == ':' {
			colons++
			if k > i && s[k-1] == ':' {
				if double {
					return -1
				}
				double = true
			}
			run, last = 0, k+1
			continue
		}
		if run++; run > 4 {
			return -1
		}
		if class[c]&cDigit != 0 {
			digit = true
		}
	}
	if colons < 2 || !digit {
		return -1
	}
	if j < len(s) && s[j] == '.' && last < j {
		if e := dottedQuadEnd(s, last); e > 0 {
			j = e
		}
	}
	if !rightBoundary(s, j) {
		return -1
	}
	return j
}

// bracketEnd returns the end of a bracketed IPv6 address with optional
// port ("[::1]:8080") at s[i] == '[', or -1.
func bracketEnd(s string, i int) int {
	if i+1 >= len(s) || class[s[i+1]]&cHex == 0 && s[i+1] != ':' {
		return -1
	}
	j := hexColonEnd(s, i+1)
	if j < 0 || j >= len(s) || s[j] != ']' {
		return -1
	}
	j++
	j = portEnd(s, j)
	if !rightBoundary(s, j) {
		return -1
	}
	return j
}

// httpMethods are the request methods of RFC 9110 and RFC 5789.
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// requestLine reports whether s[i:] starts with an HTTP method and a
// space, as in the quoted request line of an access log ("GET /a/b
// HTTP/1.1"). Such a quote is not one value: the method is what tells a
// read from a write, so it must survive while the path, query and version
// are masked as anywhere else.
func requestLine(s string, i int) bool {
	for _, m := range httpMethods {
		if strings.HasPrefix(s[i:], m) && len(s) > i+len(m) && s[i+len(m)] == ' ' {
			return true
		}
	}
	return false
}

// Month and weekday names in full, as syslog, ctime and RFC 1123 dates
// spell them; their first three letters are the abbreviations.
var (
	months = []string{"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}
	weekdays = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
)

// dateWord reports whether the letters s[i:j] are the month or weekday
// name of a date embedded in the message: a month followed by a day or
// year ("Jun 20", "Jun  3 10:05:25"), a weekday followed by a month or a
// day ("Mon Jun 20", "Mon, 20 Jun"). A date is a value like any number,
// and leaving its names behind splits one event by the day it happened.
// Names are matched only before a digit or another date word, so "May"
// or "Sun" in prose stay. The decision never depends on a digit being
// present in Mask's output, which has none, so a second pass keeps names
// the first kept.
func dateWord(s string, i, j int) bool {
	// Cheap checks first: Mask calls this on every word.
	if s[i] < 'A' || s[i] > 'Z' || j >= len(s) || spaceAt(s, j) == 0 && s[j] != ',' {
		return false
	}
	w := s[i:j]
	month, day := isName(w, months), isName(w, weekdays)
	if !month && !day {
		return false
	}
	k := j
	if day && k < len(s) && s[k] == ',' {
		k++
	}
	if spaceAt(s, k) == 0 {
		return false
	}
	for n := spaceAt(s, k); n > 0; n = spaceAt(s, k) {
		k += n
	}
	if k < len(s) && class[s[k]]&cDigit != 0 {
		return true
	}
	if !day {
		return false
	}
	e := k
	for e < len(s) && class[s[e]]&cAlpha != 0 {
		e++
	}
	return isName(s[k:e], months)
}

// spaceAt returns the width of the white space at s[k], ASCII or Unicode,
// or 0. A date must read the same whatever space separates its words,
// since Mask turns every kind into one ASCII space and a second pass
// must decide as the first did.
func spaceAt(s string, k int) int {
	if k >= len(s) {
		return 0
	}
	if s[k] < utf8.RuneSelf {
		if class[s[k]]&cSpace != 0 {
			return 1
		}
		return 0
	}
	r, size := utf8.DecodeRuneInString(s[k:])
	if unicode.IsSpace(r) {
		return size
	}
	return 0
}

// isName reports whether w is one of names, abbreviated to three letters
// ("Jun") or in full ("June").
func isName(w string, names []string) bool {
	if len(w) < 3 {
		return false
	}
	for _, n := range names {
		if w == n || w == n[:3] {
			return true
		}
	}
	return false
}

// tlds are the top-level labels that make a dotted word a host name. The
// list is short on purpose: the generic and the most common country
// domains, and the private suffixes fleets use. Labels such as "go",
// "py", "info" or "io" would mask file and class names ("main.go",
// "logging.info", "java.io").
var tlds = []string{"com", "net", "org", "edu", "gov", "mil", "uk", "de", "fr", "nl", "jp", "cn",
	"ru", "hk", "au", "ca", "br", "es", "se", "ch", "kr", "tw", "eu", "biz",
	"local", "internal", "lan", "localdomain", "arpa"}

// tld reports whether label can end a host name of dots+1 labels: one
// of tlds, or, after at least two dots, any two lower-case letters (a
// country domain: "wsi.edu.pl"). Two letters after a single dot are too
// often a file or module name ("util.js", "log.py") to count.
func tld(label string, dots int) bool {
	if slices.Contains(tlds, strings.ToLower(label)) {
		return true
	}
	return dots >= 2 && len(label) == 2 && label[0] >= 'a' && label[0] <= 'z' && label[1] >= 'a' && label[1] <= 'z'
}

// hostEnd returns the end of the host name at s[i], with an optional
// port, or -1: dot-separated labels of letters, digits and '-', the last
// one in tlds ("proxy.cse.cuhk.edu.hk:5070", "db-3.internal",
// "shop.example.net"). A host names an instance, like an address, and
// customers' site names are hosts.
func hostEnd(s string, i int) int {
	j, start, dots := i, i, 0
scan:
	for j < len(s) && j-i <= maxDomain {
		c := s[j]
		switch {
		case class[c]&cAlnum != 0 || c == '-':
		case c == '.' && j > start && j+1 < len(s) && class[s[j+1]]&cAlnum != 0:
			dots++
			start = j + 1
		default:
			break scan
		}
		j++
	}
	if dots == 0 || j-i > maxDomain || !tld(s[start:j], dots) {
		return -1
	}
	if j+1 < len(s) && s[j] == '.' && strings.HasPrefix(s[j+1:], Wildcard) {
		// "a.hk.<*>" is what the first pass makes of "a.hk.00", a dotted
		// value it did not take for a host; the second must not either.
		return -1
	}
	j = portEnd(s, j)
	if !rightBoundary(s, j) {
		return -1
	}
	return j
}

// portEnd returns the end of the optional ":port" at s[j] after an address
// or host name: j itself when there is none.
func portEnd(s string, j int) int {
	if j+1 < len(s) && s[j] == ':' && class[s[j+1]]&cDigit != 0 {
		k := j + 1
		for k < len(s) && class[s[k]]&cDigit != 0 {
			k++
		}
		// Digits glued to letters ("a.ca:0000000a") are a value of their
		// own, not a port: taking them as one would make the host's match
		// depend on how that value is masked.
		if rightBoundary(s, k) {
			return k
		}
	}
	return j
}
