package webauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// Authenticator says who sent a request. ErrNoSession, ErrNotFromProxy
// or no token mean "not this way", and the gate tries the next one; any
// other error refuses the user (403), such as an email domain not allowed.
type Authenticator interface {
	Authenticate(r *http.Request) (User, error)
}

// Gate lets through only authenticated requests.
type Gate struct {
	// Authenticators are tried in order; the first to name a user wins.
	Authenticators []Authenticator
	// Login, when set, is where a browser is sent to log in; without it,
	// or for anything but a page a browser navigates to, the answer is 401.
	Login bool
	// Insecure lets everyone through: ui.insecure.
	Insecure bool
	Logger   *slog.Logger
}

// Wrap serves next to authenticated requests only.
func (g *Gate) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Insecure {
			next.ServeHTTP(w, r)
			return
		}
		var refused error
		for _, a := range g.Authenticators {
			u, err := a.Authenticate(r)
			if err == nil {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
				return
			}
			if !errors.Is(err, ErrNoSession) && !errors.Is(err, ErrNotFromProxy) && !errors.Is(err, errNoToken) {
				refused = err
			}
		}
		if refused != nil {
			if g.Logger != nil {
				g.Logger.Warn("refused", "path", r.URL.Path, "err", refused)
			}
			http.Error(w, "forbidden: "+refused.Error(), http.StatusForbidden)
			return
		}
		if g.Login && r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, LoginURL(r.URL.RequestURI()), http.StatusFound)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="culprit"`)
		http.Error(w, "unauthorized: log in first", http.StatusUnauthorized)
	})
}

// Token authenticates a bearer token, for a client that cannot log in:
// Prometheus scraping /metrics.
type Token struct {
	Secret string
	// Subject names whoever holds it, for the logs.
	Subject string
}

var errNoToken = errors.New("no bearer token")

// Authenticate compares the bearer token in constant time.
func (t Token) Authenticate(r *http.Request) (User, error) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || t.Secret == "" {
		return User{}, errNoToken
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(t.Secret)) != 1 {
		return User{}, errors.New("wrong bearer token")
	}
	return User{Subject: t.Subject}, nil
}
