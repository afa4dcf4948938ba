// Package changepoint segments a series offline: it finds where the
// behaviour of a series changes, after the fact, by minimising a penalised
// cost over all segmentations.
//
// Change points are 0-based indices at which a new segment begins. Index 0
// is never one (the first segment always begins there) and results are
// sorted ascending.
//
// The package is pure computation: no I/O, no goroutines, no global state.
// The TCPD metrics (F1, Cover) live here rather than in a test file so that
// a benchmark command can score any detector the same way the published
// TCPDBench results were scored.
package changepoint
