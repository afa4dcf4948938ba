package intake

import "net/http"

// routes is the whole API surface. Each endpoint is registered twice: with
// its method, and without one to answer other methods with a counted JSON
// 405 instead of the mux's plain-text one.
func (s *server) routes(mux *http.ServeMux) {
	s.handle(mux, "/api/v1/deploys", "deploys", s.requireToken(s.handleDeploys()))
	s.handle(mux, "/api/v1/deploys/{id}/progress", "progress", s.requireToken(s.handleProgress()))
	s.handle(mux, "/api/v1/tickets", "tickets", s.requireToken(s.handleTickets()))
	s.handle(mux, "/api/v1/webhooks/github", "github", s.handleGitHub())
	s.handle(mux, "/api/v1/webhooks/zendesk", "zendesk", s.handleZendesk())
	mux.Handle("/", s.instrument("unknown", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})))
}

// handle registers a POST endpoint under its metric label.
func (s *server) handle(mux *http.ServeMux, path, endpoint string, h http.Handler) {
	mux.Handle("POST "+path, s.instrument(endpoint, h))
	mux.Handle(path, s.instrument(endpoint, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use POST")
	})))
}
