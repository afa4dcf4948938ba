package correlate

// The external tests of this package (package correlate_test) may import
// what imports correlate, as the incremental cache does; these give them
// the benchmarks' generators and process measurements, so that the week
// through the cache is built and measured as the rows beside it are.
var (
	SyntheticWords = syntheticWords
	SyntheticName  = syntheticName
	CPUTime        = cpuTime
	PeakRSS        = peakRSS
)
