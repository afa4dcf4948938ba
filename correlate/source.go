package correlate

import "context"

// Source is where the correlator reads traffic. It is declared here, where it
// is consumed, so that the file reader, Elasticsearch and the simulator can
// each satisfy it without the correlator knowing them.
//
// Both methods honour ctx. Errors are returned wrapped with the source's own
// context (file name, cluster, index); the correlator adds none.
type Source interface {
	// Traffic returns request volume and masked-message error counts for
	// every service in w.
	Traffic(ctx context.Context, w Window) (*Traffic, error)
	// Scope breaks down the errors of one signature by dimension.
	Scope(ctx context.Context, q ScopeQuery) (*Scope, error)
}
