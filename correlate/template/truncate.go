package template

import "unicode/utf8"

// MaxMessageBytes bounds a stored message, masked key or raw example. Stack
// traces can be megabytes, and keeping thousands of them would break every
// source's memory bound. Every source cuts with Truncate after masking, so
// the same document yields the same key whichever source read it, and a cut
// never splits a token the masker would have replaced.
const MaxMessageBytes = 4096

// Truncate cuts s to at most MaxMessageBytes on a rune boundary and marks
// the cut with "…".
func Truncate(s string) string {
	if len(s) <= MaxMessageBytes {
		return s
	}
	i := MaxMessageBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
