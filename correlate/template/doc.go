// Package template turns raw error messages into signatures.
//
// It works in two steps, and the split between them is deliberate.
//
// Mask runs where logs are read, inside every source, on every error line.
// It replaces the variable parts of a message (ids, addresses, numbers,
// quoted values, ...) with "<*>". Sources aggregate counts by the masked
// message, so what they ship to the correlator has bounded cardinality
// instead of one series per request id. Because Mask is a pure function of
// the message text, a line read from a file and the same line fetched from
// Elasticsearch mask to the same string, which is what lets signatures be
// compared across sources and across runs.
//
// Group runs in the correlator, over the masked messages of one service. It
// applies Drain (He et al., ICWS 2017) to merge masked messages that differ
// only in a free-text slot Mask cannot know about, such as a user name. It
// then splits clusters again on slots that hold only a few distinct words
// ("Link ok", "Link error"), because one differing word is what usually
// tells two events apart, and joins clusters of different lengths whose
// only differences are values and their units ("<*> bytes sent", "<*>
// bytes (<*> KB) sent"). Measured on the public loghub-2k benchmark, see
// BENCHMARKS.md. Drain is an online algorithm whose clusters depend on arrival
// order; Group feeds it the sorted, de-duplicated set of messages instead of
// the log stream, so a signature depends only on which messages occurred in
// the window, never on which source produced them first or how a source
// ordered its output.
package template
